"""`cdisc spec export` / `cdisc spec import`: a study's specs to a workbook and back, losslessly."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from cdisc.cli import main
from cdisc.errors import SpecError
from cdisc.excel.specs import _diff, export_specs, import_specs, load_specs

ROOT = Path(__file__).resolve().parent.parent
STUDIES = {"shipped": ROOT / "specs", "edc2": ROOT / "tests" / "studies" / "edc2" / "specs",
           "pilot": ROOT / "studies" / "cdiscpilot01" / "specs"}
# spec files of each study (ls, not counting ct/README.md):
# shipped: study, trial_design, pp, validation, waivers, ct/study-ct + 18 SDTM + 13 ADaM = 37
# edc2: study, waivers + 5 SDTM = 7; pilot: study, validation, waivers + 5 ADaM = 8
N_FILES = {"shipped": 37, "edc2": 7, "pilot": 8}


@pytest.fixture(scope="module")
def shipped_xlsx(tmp_path_factory):
    out = tmp_path_factory.mktemp("x") / "specs.xlsx"
    export_specs(STUDIES["shipped"], out)
    return out


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_round_trip_gives_equal_models(study, tmp_path):
    src = STUDIES[study]
    before = load_specs(src)
    assert len(before.files) == N_FILES[study]
    xlsx = tmp_path / "specs.xlsx"
    r = CliRunner().invoke(main, ["spec", "export", "--specs", str(src), "--xlsx", str(xlsx)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["spec", "import", str(xlsx), "--specs", str(tmp_path / "specs")])
    assert r.exit_code == 0, r.output
    after = load_specs(tmp_path / "specs")
    assert sorted(after.files) == sorted(before.files)
    # model equality, file by file (pydantic ==: every field, nested, in order)
    for rel, model in before.comparable().items():
        assert after.comparable()[rel] == model, rel


def test_workbook_shape_hand_checked(shipped_xlsx):
    wb = load_workbook(shipped_xlsx)
    names = wb.sheetnames
    assert names[:2] == ["Study", "Datasets"] and {"AE", "DM", "ADSL", "ADTTE", "Steps", "Parameters",
                                                   "Codelists", "Synonyms", "Arms", "Visits", "Waivers"} <= set(names)
    ae = [list(r) for r in wb["AE"].iter_rows(values_only=True)]
    h = ae[0]
    assert h[:9] == ["section", "name", "label", "type", "length", "core", "codelist", "origin", "rule"]
    row = {r[1]: dict(zip(h, r)) for r in ae[1:]}
    # specs/sdtm/ae.yaml: {name: AESTDTC, ..., core: Exp, iso8601: {date: AESTDAT, time: AESTTIM}}
    assert row["AESTDTC"]["rule"] == "iso8601"
    assert row["AESTDTC"]["rule value"] == "{date: AESTDAT, time: AESTTIM}"
    # {name: AESER, label: Serious Event, core: Exp, codelist: NY, map: AESER}
    assert (row["AESER"]["label"], row["AESER"]["codelist"], row["AESER"]["rule"], row["AESER"]["rule value"]) == \
        ("Serious Event", "NY", "map", "AESER")
    # {name: AESEQ, ..., type: Num, sequence: [AESTDTC, AEDECOD, AETERM]}
    assert row["AESEQ"]["type"] == "Num" and row["AESEQ"]["rule value"] == "[AESTDTC, AEDECOD, AETERM]"
    # {name: DOMAIN, ..., value: AE}; a supplemental qualifier is a row of section "supplemental"
    assert row["DOMAIN"]["rule value"] == "AE"
    assert row["AECRSGR"]["section"] == "supplemental" and row["AECRSGR"]["qeval"] == "INVESTIGATOR"
    ds = {r[1]: r for r in wb["Datasets"].iter_rows(values_only=True)}
    dh = list(ds["dataset"])
    assert ds["AE"][dh.index("keys")] == "[STUDYID, USUBJID, AEDECOD, AESTDTC]"
    assert ds["AE"][dh.index("class")] == "EVENTS" and ds["ADSL"][dh.index("standard")] == "ADaM"
    # ADSL's steps are rows of Steps, in order
    adsl = load_specs(STUDIES["shipped"]).files["adam/adsl.yaml"]
    steps = [r for r in wb["Steps"].iter_rows(min_row=2, values_only=True) if r[0] == "ADSL"]
    assert [s[1] for s in steps] == [s.derivation for s in adsl.steps]
    # specs/ct/study-ct.yaml: AEREL is a sponsor codelist whose first term is RELATED / Related
    cl = [r for r in wb["Codelists"].iter_rows(min_row=2, values_only=True) if r[1] == "AEREL"]
    assert cl[0][:8] == ("codelist", "AEREL", "Causality (sponsor-defined; SDTMIG 3.4 leaves AEREL values to the sponsor)",
                         None, False, "RELATED", None, "Related")
    assert len(cl) == 4


def test_an_edit_in_the_workbook_changes_exactly_that_spec(shipped_xlsx, tmp_path):
    wb = load_workbook(shipped_xlsx)
    ws = wb["AE"]
    h = [c.value for c in ws[1]]
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, h.index("name") + 1).value == "AETERM":
            ws.cell(r, h.index("label") + 1).value = "Reported Term (edited)"
            ws.cell(r, h.index("rule value") + 1).value = "AETERM_RAW"
    wb.save(tmp_path / "edited.xlsx")
    import_specs(tmp_path / "edited.xlsx", tmp_path / "specs")
    before, after = load_specs(STUDIES["shipped"]), load_specs(tmp_path / "specs")
    assert _diff(before, after) == ["sdtm/ae.yaml"]
    v = next(v for v in after.files["sdtm/ae.yaml"].variables if v.name == "AETERM")
    assert (v.label, v.assign) == ("Reported Term (edited)", "AETERM_RAW")


def test_same_specs_same_bytes(tmp_path):
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    export_specs(STUDIES["edc2"], a)
    export_specs(STUDIES["edc2"], b)
    assert a.read_bytes() == b.read_bytes()


def test_import_never_overwrites_without_force(tmp_path):
    xlsx = tmp_path / "e.xlsx"
    export_specs(STUDIES["edc2"], xlsx)
    target = tmp_path / "specs"
    target.mkdir()
    (target / "study.yaml").write_text("# mine\n")
    r = CliRunner().invoke(main, ["spec", "import", str(xlsx), "--specs", str(target)])
    assert r.exit_code == 2 and "not empty; nothing written" in r.output
    assert (target / "study.yaml").read_text() == "# mine\n" and sorted(p.name for p in target.iterdir()) == ["study.yaml"]
    r = CliRunner().invoke(main, ["spec", "import", str(xlsx), "--specs", str(target), "--force"])
    assert r.exit_code == 0, r.output
    assert load_specs(target).files["study.yaml"] == load_specs(STUDIES["edc2"]).files["study.yaml"]


def _set(xlsx, sheet, name, column, value, out):
    wb = load_workbook(xlsx)
    ws = wb[sheet]
    h = [c.value for c in ws[1]]
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, h.index("name") + 1).value == name:
            ws.cell(r, h.index(column) + 1).value = value
    wb.save(out)


def test_bad_cells_are_spec_errors_naming_sheet_row_and_column(tmp_path):
    xlsx = tmp_path / "e.xlsx"
    export_specs(STUDIES["edc2"], xlsx)
    _set(xlsx, "AE", "AESTDTC", "rule value", "{date: AESTDAT, time: ", tmp_path / "bad1.xlsx")
    with pytest.raises(SpecError) as e:
        import_specs(tmp_path / "bad1.xlsx", tmp_path / "s1")
    assert "sheet 'AE'" in str(e.value) and "column 'rule value'" in str(e.value) and "invalid YAML" in str(e.value)
    _set(xlsx, "AE", "AESTDTC", "rule", "isodate", tmp_path / "bad2.xlsx")
    with pytest.raises(SpecError, match="unknown rule 'isodate'"):
        import_specs(tmp_path / "bad2.xlsx", tmp_path / "s2")
    _set(xlsx, "AE", "AESTDTC", "type", "Date", tmp_path / "bad3.xlsx")   # pydantic: Char or Num
    with pytest.raises(SpecError) as e:
        import_specs(tmp_path / "bad3.xlsx", tmp_path / "s3")
    assert "sdtm/ae.yaml" in str(e.value) and "variables[" in str(e.value)
    assert not (tmp_path / "s1").exists() and not (tmp_path / "s3").exists()   # nothing written


def test_a_study_built_from_imported_specs_is_byte_identical(tmp_path):
    """The strongest round-trip check: EDC2 built from the imported specs writes the same datasets."""
    from cdisc.pipeline import build_sdtm, write_outputs

    study = ROOT / "tests" / "studies" / "edc2"
    xlsx = tmp_path / "e.xlsx"
    export_specs(study / "specs", xlsx)
    import_specs(xlsx, tmp_path / "specs")
    outs = []
    for specs, out in ((study / "specs", tmp_path / "a"), (tmp_path / "specs", tmp_path / "b")):
        write_outputs(build_sdtm(specs, study / "raw"), out, specs_dir=specs, raw_dir=study / "raw")
        outs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "sdtm").glob("*.xpt"))})
    assert len(outs[0]) >= 5 and outs[0] == outs[1]


EDGE = {
    "study.yaml": """\
studyid: S1
title: "Edge: a title with a colon, ° and ×"
sponsor: Me
data_cut: 2025-01-31
arms: [{armcd: A, arm: Arm A, dose: 1}]
lookups: {sites: [{SITE: '001', COUNTRY: FRA, OPENED: 2024-01-01}]}
""",
    "sdtm/dm.yaml": """\
domain: DM
label: Demographics
class: SPECIAL PURPOSE
structure: One record per subject
keys: [STUDYID, USUBJID]
subject_level: true
sources: [{form: dm, set: {X: ""}}]
variables:
  - {name: STUDYID, label: Study Identifier, study: studyid}
  - {name: USUBJID, label: Unique Subject Identifier, template: "{STUDYID}-{SUBJECT}", comment: "=not a formula"}
  - {name: AGE, label: Age, type: Num, number: AGE, range: [0, 120], significant_digits: 0}
  - {name: ARMNRS, label: Reason Arm and/or Actual Arm is Null, value: ""}
  - {name: COUNTRY, label: Country, lookup: {from: SITE, table: sites, key: SITE, field: COUNTRY}, case: upper}
  - {name: DMDY, label: Study Day of Collection, type: Num, value: 1}
  - {name: RACEOTH, label: Race Other, value: "1"}
supplemental:
  - {qnam: RACEOTH2, qlabel: "Race, other  (two blanks)", assign: RACEO, qorig: CRF}
helpers:
  - {name: AGEGR_H, expr: "'ADULT' if AGE >= 18 else 'CHILD'"}
""",
    "adam/adsl.yaml": """\
dataset: ADSL
label: Subject-Level Analysis Dataset
class: SUBJECT LEVEL ANALYSIS DATASET
structure: One record per subject
keys: [STUDYID, USUBJID]
source: {dataset: DM}
variables:
  - {name: STUDYID, label: Study Identifier, origin: Predecessor, source: DM.STUDYID}
  - {name: USUBJID, label: Unique Subject Identifier, origin: Predecessor, source: DM.USUBJID}
parameters:
  - {paramcd: OS, param: Overall Survival (days), method: "from first dose", avalc: [Y, N]}
""",
    "adam/doses.yaml": """\
dataset: DOSES
output: false
source: {dataset: EX, filter: "EXDOSE > 0"}
steps:
  - {derivation: filter, args: {condition: "EXTRT == 'X'"}, comment: single doses}
  - {derivation: assign, args: {N: 1, WHEN: 2024-01-01, EMPTY: "", LIST: [a, 1, null]}, append: true}
""",
    "ct/study-ct.yaml": """\
codelists:
  EMPTYCL: {name: A codelist without terms yet, extensible: true}
  NUMS: {terms: [{value: 1, decode: One}, {value: "2", synonyms: [two, deux]}]}
extensions:
  EPOCH: [{value: LYMPHODEPLETION, decode: Lymphodepletion}]
synonyms:
  NY: {"yes!": Y, "1": Y}
""",
    "waivers.yaml": "- {rule: CORE-000001, dataset: DM, row: 3, reason: a list at the top level}\n",
    "validation.yaml": "rules:\n  CDISC-XD-004:\n    params: {extrt: [X, 'Y']}\n",
}


def test_edge_cases_round_trip(tmp_path):
    src = tmp_path / "src"
    for rel, text in EDGE.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text, encoding="utf-8")
    before = load_specs(src)
    assert len(before.files) == 7
    export_specs(src, tmp_path / "e.xlsx")
    import_specs(tmp_path / "e.xlsx", tmp_path / "out")
    after = load_specs(tmp_path / "out")
    assert _diff(before, after) == []
    dm = after.files["sdtm/dm.yaml"]
    v = {x.name: x for x in dm.variables}
    # types kept: "" and "1" stay text, 1 a number; "=..." is text, not an Excel formula
    assert (v["ARMNRS"].value, v["RACEOTH"].value, v["DMDY"].value) == ("", "1", 1)
    assert v["USUBJID"].comment == "=not a formula" and v["AGE"].range == (0, 120)
    assert dm.supplemental[0].label == "Race, other  (two blanks)" and dm.helpers[0].name == "AGEGR_H"
    doses = after.files["adam/doses.yaml"]
    assert doses.output is False and doses.steps[1].args == {"N": 1, "WHEN": __import__("datetime").date(2024, 1, 1),
                                                              "EMPTY": "", "LIST": ["a", 1, None]}
    ct = after.files["ct/study-ct.yaml"]
    assert ct["codelists"]["EMPTYCL"] == {"name": "A codelist without terms yet", "extensible": True, "terms": []}
    assert ct["codelists"]["NUMS"]["terms"] == [{"value": 1, "decode": "One"},
                                                {"value": "2", "synonyms": ["two", "deux"]}]
    assert ct["synonyms"] == {"NY": {"yes!": "Y", "1": "Y"}}
    assert after.files["study.yaml"].lookups == {"sites": [{"SITE": "001", "COUNTRY": "FRA",
                                                            "OPENED": __import__("datetime").date(2024, 1, 1)}]}


def test_import_force_over_the_study_rewrites_only_what_changed(tmp_path):
    import shutil

    specs = tmp_path / "specs"
    shutil.copytree(STUDIES["edc2"], specs)
    before = {p.relative_to(specs).as_posix(): p.read_bytes() for p in specs.rglob("*.yaml")}
    xlsx = tmp_path / "e.xlsx"
    export_specs(specs, xlsx)
    wb = load_workbook(xlsx)
    ws = wb["AE"]
    h = [c.value for c in ws[1]]
    for r in range(2, ws.max_row + 1):
        if ws.cell(r, h.index("name") + 1).value == "AETERM":
            ws.cell(r, h.index("label") + 1).value = "Reported Term (edited)"
    ds = wb["Datasets"]
    vs_row = next(r for r in range(2, ds.max_row + 1) if ds.cell(r, 2).value == "VS")
    ds.delete_rows(vs_row)                        # VS no longer in the workbook
    wb.save(xlsx)
    r = CliRunner().invoke(main, ["spec", "import", str(xlsx), "--specs", str(specs), "--force"])
    assert r.exit_code == 0, r.output
    assert "Wrote 1 spec files" in r.output and "5 unchanged" in r.output      # 7 files - AE - VS
    assert "kept as it is: sdtm/vs.yaml" in r.output
    after = {p.relative_to(specs).as_posix(): p.read_bytes() for p in specs.rglob("*.yaml")}
    assert [k for k in before if before[k] != after[k]] == ["sdtm/ae.yaml"]   # comments of the rest kept
    text = after["sdtm/ae.yaml"].decode()
    assert text.split("\n", 1)[0] == before["sdtm/ae.yaml"].decode().split("\n", 1)[0]   # schema line kept
    assert "label: Reported Term (edited)" in text


def test_a_bad_codelist_cell_is_refused_at_import(tmp_path):
    xlsx = tmp_path / "s.xlsx"
    export_specs(STUDIES["shipped"], xlsx)
    wb = load_workbook(xlsx)
    ws = wb["Codelists"]
    ws.cell(2, 5).value = "maybe"                 # extensible: a yes/no
    wb.save(xlsx)
    with pytest.raises(SpecError) as e:
        import_specs(xlsx, tmp_path / "out")
    assert "ct/study-ct.yaml" in str(e.value) and "extensible" in str(e.value)
    assert not (tmp_path / "out").exists()
