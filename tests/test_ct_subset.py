"""Tests of the CDISC Controlled Terminology subset shipped in specs/ct/ and of the
maintenance script tools/extract_ct.py that writes it.

The shipped YAML files are facts; the values asserted below were checked by hand
against the shared packages (sdtmct-2015-12-18.json for C-codes, sdtmct-2024-03-29.json
for membership, extensible and preferred terms, adamct-2026-03-27.json for ADaM).
The rules of the script are also tested on a tiny synthetic package, so they are
covered even where ../shared is absent.
"""
from __future__ import annotations

import copy
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CT_DIR = ROOT / "specs" / "ct"
SHARED = ROOT.parent / "shared"
TOOL = ROOT / "tools" / "extract_ct.py"


def _load_tool():
    spec = importlib.util.spec_from_file_location("extract_ct", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool():
    return _load_tool()


@pytest.fixture(scope="module")
def sdtm() -> dict:
    return yaml.safe_load((CT_DIR / "sdtm-ct.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def adam() -> dict:
    return yaml.safe_load((CT_DIR / "adam-ct.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def readme() -> str:
    return (CT_DIR / "README.md").read_text(encoding="utf-8")


def term(doc: dict, codelist: str, value: str) -> dict:
    matches = [t for t in doc["codelists"][codelist]["terms"] if t["value"] == value]
    assert len(matches) == 1, f"{codelist} {value}: {len(matches)} terms"
    return matches[0]


def values(doc: dict, codelist: str) -> list[str]:
    return [t["value"] for t in doc["codelists"][codelist]["terms"]]


# ---------------------------------------------------------------------------------------
# Shipped SDTM CT: real values
# ---------------------------------------------------------------------------------------
def test_sdtm_header_claims_2024(sdtm):
    assert sdtm["package"] == "SDTM CT 2024-03-29"
    assert [s["file"] for s in sdtm["sources"]] == ["sdtmct-2024-03-29.json",
                                                    "sdtmct-2015-12-18.json"]
    assert list(sdtm) == ["package", "sources", "codelists"]


def test_sex(sdtm):
    # SEX C66731, non-extensible in 2024. 2015 terms F/M/U/UNDIFFERENTIATED; 2024 lists
    # Female,F / Intersex,INTERSEX / Male,M / Unknown,U: UNDIFFERENTIATED is gone and
    # INTERSEX is new (no C-code in our data -> null). Sorted casefold: F, INTERSEX, M, U.
    sex = sdtm["codelists"]["SEX"]
    assert (sex["code"], sex["name"], sex["extensible"]) == ("C66731", "Sex", False)
    assert values(sdtm, "SEX") == ["F", "INTERSEX", "M", "U"]
    assert term(sdtm, "SEX", "F") == {"value": "F", "code": "C16576", "decode": "Female",
                                      "synonyms": ["Female"]}
    assert term(sdtm, "SEX", "M")["code"] == "C20197"
    assert term(sdtm, "SEX", "INTERSEX") == {"value": "INTERSEX", "code": None,
                                             "decode": "Intersex", "synonyms": None}
    # 2015 U: synonyms [U, Unknown]; both still listed in 2024, so both kept.
    assert term(sdtm, "SEX", "U") == {"value": "U", "code": "C17998", "decode": "Unknown",
                                      "synonyms": ["U", "Unknown"]}


def test_race_and_ny(sdtm):
    # RACE: 5 terms in 2015 + NOT REPORTED/OTHER/UNKNOWN only in 2024 = 8. 2024 changed the
    # preferred term of BLACK OR AFRICAN AMERICAN from "African American" (2015).
    assert len(values(sdtm, "RACE")) == 8
    black = term(sdtm, "RACE", "BLACK OR AFRICAN AMERICAN")
    assert (black["code"], black["decode"]) == ("C16352", "Black or African American")
    assert term(sdtm, "RACE", "UNKNOWN")["code"] is None
    # NY C66742 non-extensible, N/NA/U/Y; Y = C49488 "Yes".
    assert sdtm["codelists"]["NY"]["extensible"] is False
    assert values(sdtm, "NY") == ["N", "NA", "U", "Y"]
    assert (term(sdtm, "NY", "Y")["code"], term(sdtm, "NY", "Y")["decode"]) == ("C49488", "Yes")


def test_lab_tests_pair_with_names(sdtm):
    # LBTESTCD NEUT: C63321 in 2015, test name "Neutrophils" (LBTEST term with the same
    # C-code); the LBTEST term's decode is the preferred term "Absolute Neutrophil Count".
    assert term(sdtm, "LBTESTCD", "NEUT") == {"value": "NEUT", "code": "C63321",
                                              "decode": "Neutrophils",
                                              "synonyms": ["Neutrophils"]}
    assert term(sdtm, "LBTEST", "Neutrophils") == {"value": "Neutrophils", "code": "C63321",
                                                   "decode": "Absolute Neutrophil Count",
                                                   "synonyms": ["Neutrophils"]}
    # IL-6 is INTLK6 (C74834) in CDISC; MRD's closest LB test is LEUKCE (C116195) whose
    # 2015 synonyms include "Residual Leukemic Cells".
    assert term(sdtm, "LBTESTCD", "INTLK6")["code"] == "C74834"
    assert "Residual Leukemic Cells" in term(sdtm, "LBTESTCD", "LEUKCE")["synonyms"]
    assert not any("CD7" in v for v in values(sdtm, "LBTESTCD"))


@pytest.mark.parametrize("codes, names", [("LBTESTCD", "LBTEST"), ("ISTESTCD", "ISTEST"),
                                          ("ONCRTSCD", "ONCRTS"), ("PKPARMCD", "PKPARM"),
                                          ("TSPARMCD", "TSPARM")])
def test_testcd_and_test_codelists_match(sdtm, codes, names):
    # A code/name pair is one concept: same C-code, TESTCD decode = TEST value.
    by_code = {(t["decode"], t["code"]) for t in sdtm["codelists"][codes]["terms"]}
    by_name = {(t["value"], t["code"]) for t in sdtm["codelists"][names]["terms"]}
    assert by_code == by_name
    assert len(by_code) == len(sdtm["codelists"][codes]["terms"])


def test_ts_parameters(sdtm):
    # All 63 TSPARMCD terms of 2015 are still in 2024, plus 63 parameters new since 2015:
    # 126. TINDTP's test name was renamed in 2024: "Trial Indication Type" -> "Trial
    # Intent Type"; the C-code (C49652) is the concept's, unchanged.
    assert len(values(sdtm, "TSPARMCD")) == 126
    assert term(sdtm, "TSPARMCD", "TINDTP")["decode"] == "Trial Intent Type"
    assert term(sdtm, "TSPARM", "Trial Intent Type")["code"] == "C49652"
    assert term(sdtm, "TSPARMCD", "SDTIGVER") == {"value": "SDTIGVER", "code": None,
                                                  "decode": "SDTM IG Version", "synonyms": None}


def test_units(sdtm):
    # HOURS is the UNIT submission value ("h" is its synonym in 2024 and not a term);
    # cells per microliter is 10^6/L (2024 lists "/uL" as its synonym); cells per kg
    # is 10^6/kg, only in 2024 (code null). ng/mL is a synonym of ug/L (C67306).
    units = values(sdtm, "UNIT")
    assert "h" not in units and "/uL" not in units and "ng/mL" not in units
    assert term(sdtm, "UNIT", "HOURS")["code"] == "C25529"
    assert term(sdtm, "UNIT", "10^6/L")["code"] == "C67452"
    assert term(sdtm, "UNIT", "10^6/kg") == {"value": "10^6/kg", "code": None,
                                             "decode": "Million per Kilogram", "synonyms": None}
    assert "ng/mL" in term(sdtm, "UNIT", "ug/L")["synonyms"]


def test_response_codelists(sdtm):
    # ONCRSR keeps CR (C4870, "Complete Remission"), CRi, PR, PD, NR (C123600); CRh does
    # not exist in CDISC CT.
    assert term(sdtm, "ONCRSR", "CR")["code"] == "C4870"
    assert term(sdtm, "ONCRSR", "NR")["decode"] == "No Response"
    assert {"CRi", "PR", "PD", "RELAPSED DISEASE"} <= set(values(sdtm, "ONCRSR"))
    assert "CRh" not in values(sdtm, "ONCRSR")
    assert term(sdtm, "ONCRTSCD", "OVRLRESP")["code"] == "C96613"


def test_new_codelists_have_only_null_codes(sdtm):
    # ARMNULRS (C142179) is not in the 2015 file: 4 terms, all without C-code;
    # extensible = true per the 2024 file.
    arm = sdtm["codelists"]["ARMNULRS"]
    assert (arm["code"], arm["extensible"]) == ("C142179", True)
    assert [t["code"] for t in arm["terms"]] == [None] * 4
    assert "COUNTRY" not in sdtm["codelists"] and "TOXGRV4" not in sdtm["codelists"]


# ---------------------------------------------------------------------------------------
# Shipped files: structure rules
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["sdtm", "adam"])
def test_every_term_well_formed(request, which):
    doc = request.getfixturevalue(which)
    for name, cl in doc["codelists"].items():
        assert re.fullmatch(r"C\d+", cl["code"]), name
        assert list(cl) == ["code", "name", "extensible", "terms"], name
        assert isinstance(cl["extensible"], bool), name
        assert cl["terms"], f"{name} has no terms"
        codes = [t["code"] for t in cl["terms"] if t["code"] is not None]
        vals = [t["value"] for t in cl["terms"]]
        assert len(codes) == len(set(codes)), f"{name}: duplicate C-code"
        assert len(vals) == len(set(vals)), f"{name}: duplicate value"
        for t in cl["terms"]:
            assert list(t) == ["value", "code", "decode", "synonyms"], (name, t)
            assert isinstance(t["value"], str) and t["value"].strip() == t["value"] != ""
            assert isinstance(t["decode"], str) and t["decode"], (name, t)
            assert t["code"] is None or re.fullmatch(r"C\d+", t["code"]), (name, t)
            # Synonyms are unknown (null) exactly when the term has no 2015 record.
            assert (t["synonyms"] is None) == (t["code"] is None and which == "sdtm"), (name, t)


@pytest.mark.parametrize("which", ["sdtm", "adam"])
def test_sorted_as_written(request, which):
    doc = request.getfixturevalue(which)
    assert list(doc["codelists"]) == sorted(doc["codelists"])
    for name, cl in doc["codelists"].items():
        vals = [t["value"] for t in cl["terms"]]
        assert vals == sorted(vals, key=lambda v: (v.casefold(), v)), name


def test_readme_lists_null_codes_and_non_extensible(sdtm, adam, readme):
    assert "SDTM CT 2024-03-29" in readme and "ADaM CT 2026-03-27" in readme
    assert "python tools/extract_ct.py --shared ../shared --out specs/ct" in readme
    rows = set(re.findall(r"^\| (\w+) \| (.+?) \| ", readme, flags=re.M))
    for name, cl in sdtm["codelists"].items():
        for t in cl["terms"]:
            if t["code"] is None:
                assert (name, t["value"].replace("|", "\\|")) in rows, (name, t["value"])
    sdtm_line = next(line for line in readme.splitlines() if line.startswith("- SDTM: "))
    adam_line = next(line for line in readme.splitlines() if line.startswith("- ADaM: "))
    for doc, line in ((sdtm, sdtm_line), (adam, adam_line)):
        listed = set(re.findall(r"(\w+) \(C\d+\)", line))
        assert listed == {n for n, cl in doc["codelists"].items() if not cl["extensible"]}
    assert "ISO 3166-1 alpha-3" in readme   # COUNTRY sponsor note


# ---------------------------------------------------------------------------------------
# Shipped ADaM CT
# ---------------------------------------------------------------------------------------
def test_adam(adam):
    assert adam["package"] == "ADaM CT 2026-03-27"
    datefl = adam["codelists"]["DATEFL"]
    assert (datefl["code"], datefl["extensible"]) == ("C81223", False)
    assert [(t["value"], t["code"]) for t in datefl["terms"]] == [
        ("D", "C81212"), ("M", "C81211"), ("Y", "C81210")]
    assert term(adam, "TIMEFL", "H")["decode"] == "Hours Minutes Seconds Imputed"
    assert term(adam, "PARAMTYP", "DERIVED")["code"] == "C81197"
    assert len(adam["codelists"]["DTYPE"]["terms"]) == 29
    assert term(adam, "DTYPE", "LOCF")["code"] == "C81198"


# ---------------------------------------------------------------------------------------
# Regeneration
# ---------------------------------------------------------------------------------------
@pytest.mark.skipif(not (SHARED / "ct").is_dir(), reason="shared CT packages not available")
def test_regeneration_is_byte_identical(tmp_path):
    out = tmp_path / "ct"
    run = subprocess.run([sys.executable, str(TOOL), "--shared", str(SHARED), "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    for name in ("sdtm-ct.yaml", "adam-ct.yaml", "README.md"):
        assert (out / name).read_bytes() == (CT_DIR / name).read_bytes(), name


def test_missing_shared_folder_is_an_input_error(tool, tmp_path, capsys):
    assert tool.main(["--shared", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "CT package not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------
# Rules of the script, on a tiny synthetic package
# ---------------------------------------------------------------------------------------
def _cl(code, short, name, terms, extensible=False):
    return {"conceptId": code, "submissionValue": short, "name": name, "extensible": extensible,
            "definition": "", "preferredTerm": name, "synonyms": [],
            "terms": [{"conceptId": c, "submissionValue": v, "preferredTerm": p, "synonyms": s,
                       "definition": ""} for c, v, p, s in terms]}


CT2015 = {"package": "sdtmct-test-2015", "codelists": [
    _cl("C66731", "SEX", "Sex", [("C16576", "F", "Female", ["Female"]),
                                 ("C20197", "M", "Male", ["Male"]),
                                 ("C45908", "UNDIFFERENTIATED", "Intersex", [])]),
    _cl("C71620", "UNIT", "Unit",
        [("C67254", "/uL", "Per Microliter", ["/mm3", "Per Microliter"]),
         ("C67452", "10^6/L", "Thousand per Milliliter", ["1/mm3", "1/uL"])], extensible=True),
    _cl("C65047", "XTESTCD", "X Test Code", [("C63321", "NEUT", "Absolute Neutrophil Count",
                                              ["Neutrophils"])], extensible=True),
    _cl("C67154", "XTEST", "X Test Name", [("C63321", "Neutrophils", "Absolute Neutrophil Count",
                                            ["Neutrophils"])], extensible=True),
    _cl("C66786", "COUNTRY", "Country", [("C16636", "FRA", "France", [])]),
]}
# 2024 layout: preferred term, submission value, synonyms...; SEX swaps UNDIFFERENTIATED
# for INTERSEX; UNIT "/uL" is now a synonym of 10^6/L; PLAT is a new lab test.
CT2024 = {"package": "sdtmct-test-2024",
          "C66731": {"allowed_terms": ["Female", "F", "Female", "Intersex", "INTERSEX", "Male",
                                       "M", "Male"], "extensible": False},
          "C71620": {"allowed_terms": ["Thousand per Milliliter", "10^6/L", "/mm3", "/uL",
                                       "1/mm3", "1/uL"], "extensible": True},
          "C65047": {"allowed_terms": ["Absolute Neutrophil Count", "NEUT", "Neutrophils",
                                       "Platelet Count", "PLAT", "Platelets"], "extensible": True},
          "C67154": {"allowed_terms": ["Absolute Neutrophil Count", "Neutrophils", "Neutrophils",
                                       "Platelet Count", "Platelets", "Platelets"],
                     "extensible": True}}


def _subset(**codelists):
    return {"package": "SDTM CT test", "codelists": codelists}


def _problems(tool, subset) -> str:
    with pytest.raises(tool.SpecError) as err:
        tool.extract_sdtm(CT2015, CT2024, subset)
    return str(err.value)


def test_rule_all_terms_plus_2024_only(tool):
    doc, report = tool.extract_sdtm(CT2015, CT2024, _subset(
        SEX={"terms": "all", "plus": ["INTERSEX"], "decodes": {"INTERSEX": "Intersex"}}))
    sex = doc["codelists"]["SEX"]
    assert (sex["code"], sex["name"], sex["extensible"]) == ("C66731", "Sex", False)
    assert [(t["value"], t["code"]) for t in sex["terms"]] == [
        ("F", "C16576"), ("INTERSEX", None), ("M", "C20197")]
    assert report["dropped"] == [("SEX", "UNDIFFERENTIATED", "C45908")]
    # The null code is reported with a lead (same preferred term in 2015), never used.
    (row,) = report["null_codes"]
    assert row[:3] == ("SEX", "INTERSEX", "Intersex") and "C45908" in row[3]


@pytest.mark.parametrize("spec, message", [
    ({"terms": ["F", "XX"]}, "'XX' is in neither"),
    ({"terms": ["UNDIFFERENTIATED"]}, "'UNDIFFERENTIATED' is in sdtmct-2015-12-18.json only"),
    ({"terms": ["INTERSEX"]}, "'INTERSEX' is only in 2024: give the 2024 decode"),
    ({"terms": ["INTERSEX"], "decodes": {"INTERSEX": "Male"}}, "does not precede 'INTERSEX'"),
    ({"terms": ["F", "F"]}, "'F' requested twice"),
    ({"terms": ["F"], "decodes": {"M": "Male"}}, "decode given for 'M'"),
])
def test_rule_term_errors(tool, spec, message):
    assert message in _problems(tool, _subset(SEX=spec))


def test_rule_synonym_is_not_a_term(tool):
    # "1/uL" is a 2015 synonym of 10^6/L; "/uL" (a 2015 term) sits in 2024 between
    # "/mm3" and "1/mm3", inside the synonyms of 10^6/L, so it is refused too.
    assert "'1/uL' is a synonym of '10^6/L'" in _problems(tool, _subset(UNIT={"terms": ["1/uL"]}))
    text = _problems(tool, _subset(UNIT={"terms": ["/uL"], "decodes": {"/uL": "/mm3"}}))
    assert "'/uL' sits among the synonyms of '10^6/L'" in text


def test_rule_testcd_pairs_with_test_names(tool):
    doc, report = tool.extract_sdtm(CT2015, CT2024, _subset(
        XTESTCD={"names": "XTEST", "terms": ["NEUT", "PLAT"]}, XTEST={"codes": "XTESTCD"}))
    # NEUT: 2015 C63321, name "Neutrophils". PLAT: only in 2024; its preferred term
    # "Platelet Count" is followed by "Platelets" in the XTEST list -> name "Platelets".
    assert doc["codelists"]["XTESTCD"]["terms"] == [
        {"value": "NEUT", "code": "C63321", "decode": "Neutrophils", "synonyms": ["Neutrophils"]},
        {"value": "PLAT", "code": None, "decode": "Platelets", "synonyms": None}]
    assert doc["codelists"]["XTEST"]["terms"] == [
        {"value": "Neutrophils", "code": "C63321", "decode": "Absolute Neutrophil Count",
         "synonyms": ["Neutrophils"]},
        {"value": "Platelets", "code": None, "decode": "Platelet Count", "synonyms": None}]
    assert {r[:2] for r in report["null_codes"]} == {("XTESTCD", "PLAT"), ("XTEST", "Platelets")}


def test_rule_absent_findings_are_checked(tool):
    ok = _subset(SEX={"terms": ["F"]})
    ok["absent_codelists"] = {"COUNTRY": {"code": "C66786", "note": "ISO 3166"}}
    _, report = tool.extract_sdtm(CT2015, CT2024, ok)
    assert report["absent_codelists"] == [("COUNTRY", "C66786", "Country", "ISO 3166")]
    # SEX is in the 2024 file, so declaring it absent is an error; so is a pattern that
    # matches a term ("Neutrophils" in XTEST).
    bad = copy.deepcopy(ok)
    bad["absent_codelists"]["SEX"] = {"code": "C66731", "note": "x"}
    bad["absent_terms"] = [{"codelists": ["XTEST"], "pattern": "Neutro", "note": "x"}]
    text = _problems(tool, bad)
    assert "SEX (C66731) is in sdtmct-2024-03-29.json after all" in text
    assert "the finding no longer holds" in text


def test_rule_new_codelist_needs_code_and_name(tool):
    text = _problems(tool, _subset(ARMNULRS={"new_in_2024": True, "terms": ["X"]}))
    assert "needs code (C-code) and name" in text


def test_rule_adam_missing_term(tool):
    adamct = {"package": "adamct-test", "codelists": [
        _cl("C81223", "DATEFL", "Date Imputation Flag", [("C81212", "D", "Day Imputed", [])])]}
    doc, _ = tool.extract_adam(adamct, {"package": "ADaM CT test",
                                        "codelists": {"DATEFL": {"terms": "all"}}})
    assert doc["codelists"]["DATEFL"]["terms"] == [
        {"value": "D", "code": "C81212", "decode": "Day Imputed", "synonyms": []}]
    with pytest.raises(tool.SpecError, match="term 'Q' not in DATEFL"):
        tool.extract_adam(adamct, {"package": "x", "codelists": {"DATEFL": {"terms": ["Q"]}}})
