"""Bad input gets one clear message and the right exit code, never a traceback.

Each test copies the shipped study (specs/ + raw/) to a tmp folder, breaks one thing and
runs `cdisc build`. Exit codes (README): 1 the data has errors, 2 bad usage, bad spec or
unreadable input. A message names where the problem is, as ``cdisc.errors.Problem``
renders it: ``<file>, row <n>, column <col>: ...`` for raw data (row = the file's line
number, header = 1) and ``<spec file>, key <path>: ...`` for specs.
"""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from conftest import Study, copy_study, tree_bytes

DATA, USAGE = 1, 2


@pytest.fixture
def study(tmp_path, built) -> Study:
    """The study slimmed to DM, AE and EX, with an earlier good build in ``root/out`` that
    every failing build must leave as it was (``assert_error`` checks it byte for byte)."""
    s = copy_study(tmp_path, domains=("DM", "AE", "EX"))
    shutil.copytree(built.out, s.root / "out")
    s.earlier = tree_bytes(s.root / "out")
    return s


@pytest.fixture
def full_study(tmp_path, built) -> Study:
    s = copy_study(tmp_path)
    shutil.copytree(built.out, s.root / "out")
    s.earlier = tree_bytes(s.root / "out")
    return s


def assert_error(res, code: int, *fragments: str) -> None:
    """Exit code, every fragment in stderr, no traceback, no internal error, nothing written:
    the study's specs/ and raw/ and an earlier build in its out/ are unchanged byte for byte,
    and no temporary folder is left beside out/."""
    assert res.code == code, f"exit {res.code}, expected {code}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert res.exception is None, repr(res.exception)
    assert "Traceback" not in res.output and "internal error" not in res.stderr, res.stderr
    assert res.stderr.startswith("cdisc: "), res.stderr
    assert "Wrote" not in res.stdout
    for f in fragments:
        assert f in res.stderr, f"{f!r} not in:\n{res.stderr}"
    assert res.changed == [], f"inputs changed: {res.changed}"
    study = res.study
    if study is not None and getattr(study, "earlier", None) is not None:
        assert tree_bytes(study.root / "out") == study.earlier, "the earlier build changed"
        # a build stopped by errors leaves only its report (OUT.failed: report.html, errors.json)
        report_only = [".cdisc-output.json", "errors.json", "report.html"]
        left = [p.name for p in study.root.iterdir() if p.name.startswith(".") or
                (p.name.endswith(".failed") and sorted(f.name for f in p.iterdir()) != report_only)]
        assert left == [], f"left beside out/: {left}"


def var_index(study: Study, domain: str, name: str) -> int:
    names = [v["name"] for v in study.read_spec(f"sdtm/{domain}.yaml")["variables"]]
    return names.index(name)


# ------------------------------------------------------------------------------ raw data

def test_malformed_date(study):
    # ae.csv line 5 is 101-001 RECORDPOSITION 4 (AESTDAT 11-APR-2024); February has no 31st
    study.set_raw("ae", 5, "AESTDAT", "31-FEB-2025")
    assert_error(study.build(), DATA, "ae.csv, row 5, column AESTDAT:", "'31-FEB-2025", "DD-MON-YYYY")


def test_unknown_term_names_the_codelist(study):
    # dm.csv line 3 is 101-002 (SEX Female)
    study.set_raw("dm", 3, "SEX", "Unknown gender")
    assert_error(study.build(), DATA, "dm.csv, row 3, column SEX:", "'Unknown gender'",
                 "non-extensible codelist SEX (C66731)", "synonyms.SEX in specs/ct/study-ct.yaml")


def test_unknown_term_in_a_supplemental_qualifier(study):
    # ae.csv line 3: 101-001 CRS, AECRSGR 1 -> SUPPAE QNAM AECRSGR through the sponsor codelist ASTCTGR
    study.set_raw("ae", 3, "AECRSGR", "Grade 9")
    assert_error(study.build(), DATA, "ae.csv, row 3, column AECRSGR:", "'Grade 9'", "codelist ASTCTGR")


def test_text_that_is_not_a_number(study):
    study.set_raw("ae", 3, "AELLTCD", "abc")
    assert_error(study.build(), DATA, "ae.csv, row 3, column AELLTCD:", "'abc' is not a number")


def test_missing_raw_column_is_an_input_error(study):
    study.write_csv("ae", study.read_csv("ae").drop(columns="AETERM"))
    i = var_index(study, "ae", "AETERM")
    assert_error(study.build(), USAGE, "specs/sdtm/ae.yaml", f"key variables[{i}]", "column AETERM", "ae.csv")


def test_missing_column_of_a_form_read_for_dm_reference_dates(study):
    # RFICDTC aggregates ic.csv ICDAT: the message names the raw file, column and spec key
    study.write_csv("ic", study.read_csv("ic").drop(columns="ICDAT"))
    i = var_index(study, "dm", "RFICDTC")
    assert_error(study.build(), USAGE, "ic.csv, column ICDAT", f"variables[{i}].aggregate.sources[0]",
                 "specs/sdtm/dm.yaml", "did you mean ICTIM?")


def test_duplicate_key(study):
    # line 4 (101-001 Anaemia, 26-MAR-2024) typed twice -> lines 4 and 5 share the AE natural key
    ae = study.read_csv("ae")
    study.write_csv("ae", pd.concat([ae.iloc[:3], ae.iloc[[2]], ae.iloc[3:]], ignore_index=True))
    assert_error(study.build(), DATA, "ae.csv, row 4:", "ae.csv, row 5:", "duplicate key in AE",
                 "STUDYID/USUBJID/AEDECOD/AESTDTC", "Anaemia / 2024-03-26")


def test_subject_missing_from_dm(study):
    # 60 data rows are lines 2-61, so the appended row is line 62
    ae = study.read_csv("ae")
    extra = ae.iloc[[0]].assign(SUBJECT="999-999")
    study.write_csv("ae", pd.concat([ae, extra], ignore_index=True))
    assert_error(study.build(), DATA, "ae.csv, row 62, column USUBJID:", "'VGO-Cs01p-999-999' in AE is not in DM")


def test_non_ascii_text_reaching_an_sdtm_value(study):
    """FDA TCG §4.1: XPT v5 values are ASCII; the message leads back to the raw cell."""
    study.set_raw("ae", 5, "AETERM", "fièvre")
    assert_error(study.build(), DATA, "ae.csv, row 5, column AETERM:", "AE record", "'è' (U+00E8)", "'fièvre'")


def test_non_ascii_in_raw_columns_no_spec_maps_is_fine(built):
    """SITE (site 102 'Hôpital ... Montréal') and AECOMM ('Fièvre 38,9 °C') are non-ASCII in
    raw but mapped nowhere: the build succeeds and every written character value is ASCII."""
    from conftest import RAW

    dm = pd.read_csv(RAW / "dm.csv", dtype=str, keep_default_na=False)
    assert "Hôpital Universitaire Sainte-Élisabeth de Montréal" in set(dm["SITE"])
    for o in built.manifest["outputs"]:
        df, meta = built.read(o["dataset"])
        for c in [c for c, t in meta.readstat_variable_types.items() if t == "string"]:
            assert df[c].str.isascii().all(), f"{o['dataset']}.{c}"


def test_text_longer_than_200_bytes(study):
    """XPT v5 / TCG §4.1: character values at most 200 bytes; never truncated silently."""
    study.set_raw("ae", 5, "AETERM", "x" * 201)
    assert_error(study.build(), DATA, "ae.csv, row 5, column AETERM:", "201 bytes", "limit of 200")


def test_text_of_exactly_200_bytes_is_accepted(study):
    study.set_raw("ae", 5, "AETERM", "x" * 200)
    res = study.build()
    assert res.code == 0, res.stderr
    import pyreadstat

    ae, meta = pyreadstat.read_xport(str(study.root / "out" / "sdtm" / "ae.xpt"))
    assert meta.variable_storage_width["AETERM"] == 200 and (ae["AETERM"] == "x" * 200).sum() == 1


def test_all_problems_are_reported_together(study):
    study.set_raw("ae", 5, "AESTDAT", "31-FEB-2025")
    study.set_raw("dm", 3, "SEX", "Unknown gender")
    ae = study.read_csv("ae")
    study.write_csv("ae", pd.concat([ae, ae.iloc[[0]].assign(SUBJECT="999-999")], ignore_index=True))
    assert_error(study.build(), DATA, "dm.csv, row 3, column SEX:", "ae.csv, row 5, column AESTDAT:",
                 "ae.csv, row 62, column USUBJID:")


def test_raw_file_not_mapped_and_not_listed(study):
    """Nothing lost: every raw file is read by a spec or listed in forms_not_mapped."""
    (study.raw / "cm.csv").write_bytes((study.raw / "dm.csv").read_bytes())
    assert_error(study.build(), DATA, "cm.csv:", "not mapped by any spec and not listed in forms_not_mapped")


# ------------------------------------------------------------------------------ specs

def _unknown_variable_key(s: Study):
    d = s.read_spec("sdtm/ae.yaml")
    i = var_index(s, "ae", "AETERM")
    d["variables"][i]["colour"] = "red"
    s.write_spec("sdtm/ae.yaml", d)
    return [f"specs/sdtm/ae.yaml, key variables[{i}].colour:", "unknown key"]


def _unknown_top_level_key(s: Study):
    d = s.read_spec("sdtm/ae.yaml")
    d["colour"] = "red"
    s.write_spec("sdtm/ae.yaml", d)
    return ["specs/sdtm/ae.yaml, key colour:", "unknown key"]


def _rule_missing(s: Study):
    d = s.read_spec("sdtm/ae.yaml")
    i = var_index(s, "ae", "AETERM")
    del d["variables"][i]["assign"]
    s.write_spec("sdtm/ae.yaml", d)
    return [f"specs/sdtm/ae.yaml, key variables[{i}]:", "needs exactly one rule", "found none"]


def _two_rules(s: Study):
    d = s.read_spec("sdtm/ae.yaml")
    i = var_index(s, "ae", "AETERM")
    d["variables"][i]["value"] = "X"
    s.write_spec("sdtm/ae.yaml", d)
    return [f"specs/sdtm/ae.yaml, key variables[{i}]:", "found ['assign', 'value']"]


def _codelist_missing(s: Study):
    d = s.read_spec("sdtm/ae.yaml")
    i = var_index(s, "ae", "AESER")
    d["variables"][i]["codelist"] = "NOSUCH"
    s.write_spec("sdtm/ae.yaml", d)
    return [f"specs/sdtm/ae.yaml, key variables[{i}]:", "codelist 'NOSUCH' is not in specs/ct"]


def _invalid_yaml(s: Study):
    p = s.specs / "sdtm" / "ae.yaml"
    lines = p.read_text(encoding="utf-8").split("\n")
    n = lines.index("label: Adverse Events") + 1
    lines[n - 1] = "label: Adverse: Events"          # a second ': ' on one line
    p.write_text("\n".join(lines), encoding="utf-8")
    return [f"specs/sdtm/ae.yaml, row {n}:", "invalid YAML"]


def _python_tag(s: Study):
    """Safe loading: a Python object tag is refused, not constructed."""
    (s.specs / "sdtm" / "ae.yaml").write_text("!!python/object/apply:os.system ['echo hi']\n", encoding="utf-8")
    return ["specs/sdtm/ae.yaml, row 1:", "invalid YAML", "python/object/apply"]


def _study_unknown_key(s: Study):
    d = s.read_spec("study.yaml")
    d["colour"] = "red"
    s.write_spec("study.yaml", d)
    return ["specs/study.yaml, key colour:", "unknown key"]


@pytest.mark.parametrize("breaker", [_unknown_variable_key, _unknown_top_level_key, _rule_missing, _two_rules,
                                     _codelist_missing, _invalid_yaml, _python_tag, _study_unknown_key],
                         ids=lambda f: f.__name__.strip("_"))
def test_bad_spec_names_file_and_key(study, breaker):
    location, *rest = breaker(study)
    res = study.build()
    # the location starts the message line and uses the study-relative name, not a tmp path
    assert_error(res, USAGE, "spec error", "\n" + location, *rest)


@pytest.mark.parametrize("where", ["__import__('os').system('touch {marker}')",
                                   "open('{marker}', 'w')",
                                   "RECSTATUS.startswith('D')"])
def test_unsafe_condition_is_refused_not_run(study, tmp_path, where):
    """Conditions are parsed with ast against a whitelist (cdisc/expr.py), never eval'ed."""
    marker = tmp_path / "PWNED"
    d = study.read_spec("sdtm/ae.yaml")
    d["sources"][0]["exclude"][0]["where"] = where.format(marker=marker)
    study.write_spec("sdtm/ae.yaml", d)
    assert_error(study.build(), USAGE, "specs/sdtm/ae.yaml", "sources[0].exclude[0].where", "is not allowed")
    assert not marker.exists()


def test_unsafe_condition_in_an_aggregate_source(study):
    d = study.read_spec("sdtm/dm.yaml")
    i = var_index(study, "dm", "RFICDTC")
    d["variables"][i]["aggregate"]["sources"][0]["where"] = "open('/etc/passwd')"
    study.write_spec("sdtm/dm.yaml", d)
    assert_error(study.build(), USAGE, "specs/sdtm/dm.yaml", f"variables[{i}].aggregate.sources[0].where",
                 "function 'open' is not allowed")


@pytest.mark.parametrize("form", ["../x", "../raw/ae", "/etc/passwd", "..\\x"])
def test_spec_path_escaping_the_study_is_refused(study, form):
    """Every path a spec names stays inside the study's raw folder (even when the target exists)."""
    (study.root / "x.csv").write_bytes((study.raw / "ae.csv").read_bytes())
    d = study.read_spec("sdtm/ae.yaml")
    d["sources"][0]["form"] = form
    study.write_spec("sdtm/ae.yaml", d)
    assert_error(study.build(), USAGE, f"form name {form!r}", "plain file name")


def test_spec_path_escaping_in_an_aggregate_source_is_refused(study):
    d = study.read_spec("sdtm/dm.yaml")
    i = var_index(study, "dm", "RFICDTC")
    d["variables"][i]["aggregate"]["sources"][0]["form"] = "../raw/ic"
    study.write_spec("sdtm/dm.yaml", d)
    assert_error(study.build(), USAGE, "form name '../raw/ic'", "specs/sdtm/dm.yaml",
                 f"variables[{i}].aggregate.sources[0].form")


# ----------------------------------------------------------------- earlier build survives

def _bad_date(s: Study):
    s.set_raw("ae", 5, "AESTDAT", "31-FEB-2025")
    return DATA


def _too_long(s: Study):          # fails later, in the XPT checks of write_outputs
    s.set_raw("ae", 5, "AETERM", "x" * 201)
    return DATA


def _bad_spec(s: Study):
    d = s.read_spec("sdtm/ae.yaml")
    d["colour"] = "red"
    s.write_spec("sdtm/ae.yaml", d)
    return USAGE


@pytest.mark.parametrize("breaker", [_bad_date, _too_long, _bad_spec], ids=lambda f: f.__name__.strip("_"))
def test_failed_build_leaves_earlier_build_intact(study, breaker):
    """assert_error checks out/ byte for byte and that no temporary folder is left beside it."""
    code = breaker(study)
    assert_error(study.build(), code)


# ---------------------------------------------------------- located messages, one each

def test_malformed_time_names_the_time_column(study):
    # ae.csv line 3: AESTDAT 28-MAR-2024, AESTTIM 21:30 -> 25:00 is not a time
    study.set_raw("ae", 3, "AESTTIM", "25:00")
    assert_error(study.build(), DATA, "ae.csv, row 3, column AESTTIM:", "'25:00'")


def test_spec_path_escape_names_spec_file_and_key(study):
    d = study.read_spec("sdtm/ae.yaml")
    d["sources"][0]["form"] = "../x"
    study.write_spec("sdtm/ae.yaml", d)
    assert_error(study.build(), USAGE, "specs/sdtm/ae.yaml", "sources[0].form", "'../x'")


def test_unsafe_when_condition_names_spec_file_and_key(study):
    d = study.read_spec("sdtm/ae.yaml")
    i = var_index(study, "ae", "AEENRTPT")
    d["variables"][i]["when"] = "AEONGO.upper() == 'YES'"
    study.write_spec("sdtm/ae.yaml", d)
    assert_error(study.build(), USAGE, "specs/sdtm/ae.yaml", f"variables[{i}].when",
                 "method call '.upper(...)' is not allowed")


def test_unknown_term_is_reported_once(study):
    """The unknown SEX is one problem, not also a 'required variable missing' for the same cell."""
    study.set_raw("dm", 3, "SEX", "Unknown gender")
    res = study.build()
    assert_error(res, DATA, "dm.csv, row 3, column SEX:")
    assert res.stderr.count("dm.csv, row 3, column SEX:") == 1, res.stderr


def _make_cycle(study: Study) -> None:
    d = study.read_spec("sdtm/ae.yaml")
    i, j = var_index(study, "ae", "AETERM"), var_index(study, "ae", "AEDECOD")
    d["variables"][i]["assign"] = "AEDECOD"          # AETERM reads AEDECOD, AEDECOD reads AETERM
    d["variables"][j]["assign"] = "AETERM"
    study.write_spec("sdtm/ae.yaml", d)


def test_variables_depending_on_each_other_is_a_spec_error(study):
    _make_cycle(study)
    assert_error(study.build(), USAGE, "specs/sdtm/ae.yaml", "variables depend on each other in a cycle",
                 "AEDECOD -> AETERM -> AEDECOD")


# ====================================================================== catalogue (issue 10)
# Each case is one small mutation of the shipped study. The build must exit with the stated
# code, name the file / row / column (or spec key) in its message, print no traceback, and
# leave specs/, raw/ and the earlier build in out/ byte for byte as they were (assert_error).

def _add_column(form: str, column: str, value: str):
    def breaker(s: Study):
        df = s.read_csv(form)
        df[column] = value
        s.write_csv(form, df)
    return breaker


def _set_status(value: str):
    def breaker(s: Study):
        s.set_raw("ae", 13, "RECSTATUS", value)      # line 13: the deleted duplicate Headache
    return breaker


def _edit_study(**top):
    def breaker(s: Study):
        d = s.read_spec("study.yaml")
        for k, v in top.items():
            if isinstance(v, dict) and isinstance(d.get(k), dict):
                d[k].update(v)
            else:
                d[k] = v
        s.write_spec("study.yaml", d)
    return breaker


def _replace_in(rel: str, old: str, new: str, count: int = 1):
    def breaker(s: Study):
        p = s.root / rel
        text = p.read_text(encoding="utf-8")
        assert old in text, (rel, old)
        p.write_text(text.replace(old, new, count), encoding="utf-8")
    return breaker


def _line_of(s: Study, rel: str, startswith: str) -> int:
    lines = (s.root / rel).read_text(encoding="utf-8").split("\n")
    return next(i for i, line in enumerate(lines, 1) if line.startswith(startswith))


def _link(rel: str, target):
    def breaker(s: Study):
        p = s.root / rel
        if p.exists() or p.is_symlink():
            p.unlink()
        p.symlink_to(target(s) if callable(target) else target)
    return breaker


CATALOGUE = {
    # -- every raw column is read or listed with a reason
    "EDC adds a column no spec reads": (
        _add_column("ae", "AEOUT2", "Recovered"), DATA,
        ["ae.csv, column AEOUT2:", "not read by any spec", "columns_not_mapped.ae"]),
    "a new column on the DM form": (
        _add_column("dm", "ETHNICOTH", ""), DATA, ["dm.csv, column ETHNICOTH:", "not read by any spec"]),
    "columns_not_mapped lists a column a spec reads": (
        _edit_study(columns_not_mapped={"ae": {"AETERM": "not needed"}}), DATA,
        ["ae.csv, column AETERM:", "listed under columns_not_mapped.ae", "but a spec reads it"]),
    "columns_not_mapped names a form no spec reads": (
        _edit_study(columns_not_mapped={"aex": {"X": "typo"}}), DATA,
        ["specs/study.yaml, key columns_not_mapped.aex:", "no spec reads"]),
    "columns_not_mapped without a reason": (
        _edit_study(columns_not_mapped={"ae": {"AEOUT": ""}}), USAGE,
        ["specs/study.yaml", "columns_not_mapped.ae.AEOUT: give the reason"]),
    "forms_not_mapped without a reason": (
        _edit_study(forms_not_mapped={"truth": " "}), USAGE, ["specs/study.yaml", "forms_not_mapped.truth: give the reason"]),
    # -- deleted records must never be mapped as live
    "record status in lower case": (
        _set_status("deleted"), DATA,
        ["ae.csv, row 13, column RECSTATUS:", "'deleted' differs from 'Deleted'", "only in letter case or blanks"]),
    "record status with a trailing blank": (
        _set_status("Deleted "), DATA, ["ae.csv, row 13, column RECSTATUS:", "'Deleted '"]),
    "record status in capitals": (
        _set_status("DELETED"), DATA, ["ae.csv, row 13, column RECSTATUS:", "'DELETED' differs from 'Deleted'"]),
    "record status the rules do not know": (
        _set_status("Removed"), DATA,
        ["ae.csv, row 13, column RECSTATUS:", "'Removed' is not one of the values study.yaml allows for RECSTATUS"]),
    "record status blank": (
        _set_status(""), DATA, ["ae.csv, row 13, column RECSTATUS:", "'' is not one of the values"]),
    # -- numbers as typed
    "age with a decimal comma": (
        lambda s: s.set_raw("dm", 3, "AGE", "7,5"), DATA, ["dm.csv, row 3, column AGE:", "'7,5' is not a number"]),
    "dose as NaN": (
        lambda s: s.set_raw("ex", 2, "EXDOSE", "NaN"), DATA, ["ex.csv, row 2, column EXDOSE:", "'NaN' is not a number"]),
    "dose as infinity": (
        lambda s: s.set_raw("ex", 2, "EXDOSE", "inf"), DATA, ["ex.csv, row 2, column EXDOSE:", "'inf' is not a number"]),
    "dose overflowing a double": (
        lambda s: s.set_raw("ex", 2, "EXDOSE", "1e400"), DATA, ["ex.csv, row 2, column EXDOSE:", "'1e400' is not a number"]),
    "dose with a thousands separator": (
        lambda s: s.set_raw("ex", 2, "EXDOSE", "1,000"), DATA, ["ex.csv, row 2, column EXDOSE:", "'1,000' is not a number"]),
    # -- control characters never reach a transport file
    "tab inside an AE term": (
        lambda s: s.set_raw("ae", 5, "AETERM", "Anaemia\tgrade 2"), DATA,
        ["ae.csv, row 5, column AETERM:", "control character '\\t' (U+0009)"]),
    "line break inside an AE term": (
        lambda s: s.set_raw("ae", 5, "AETERM", "Anaemia\ngrade 2"), DATA,
        ["ae.csv, row 5, column AETERM:", "control character '\\n' (U+000A)"]),
    "DEL character inside an AE term": (
        lambda s: s.set_raw("ae", 5, "AETERM", "Anaemia\x7f"), DATA,
        ["ae.csv, row 5, column AETERM:", "control character '\\x7f' (U+007F)"]),
    "escape character inside a subject id": (
        lambda s: s.set_raw("ae", 5, "AEDECOD", "Ana\x1bemia"), DATA,
        ["ae.csv, row 5, column AEDECOD:", "control character '\\x1b' (U+001B)"]),
    # -- specs: duplicate keys, impossible dates, paths
    "a variable's key given twice (flow mapping)": (
        _replace_in("specs/sdtm/ae.yaml", "{name: AETERM,", "{name: AETERM, name: AETERM2,"), USAGE,
        ["specs/sdtm/ae.yaml, row", "duplicate key 'name'"]),
    "a top-level key given twice": (
        _replace_in("specs/sdtm/ae.yaml", "label: Adverse Events\n", "label: Adverse Events\nlabel: AE\n"), USAGE,
        ["specs/sdtm/ae.yaml, row", "duplicate key 'label' (first given on line"]),
    "study.yaml key given twice": (
        _replace_in("specs/study.yaml", "sponsor:", "protocol: X\nsponsor:"), USAGE,
        ["specs/study.yaml, row", "duplicate key 'protocol'"]),
    "codelist defined twice in the study CT": (
        _replace_in("specs/ct/study-ct.yaml", "synonyms:", "synonyms: {}\nsynonyms:"), USAGE,
        ["specs/ct/study-ct.yaml, row", "duplicate key 'synonyms'"]),
    "data cut that does not exist": (
        _replace_in("specs/study.yaml", "data_cut: 2026-02-28", "data_cut: 2026-02-30"), USAGE,
        lambda s: [f"specs/study.yaml, row {_line_of(s, 'specs/study.yaml', 'data_cut:')}:",
                   "'2026-02-30' is not a valid date"]),
    "data cut quoted and impossible": (
        _replace_in("specs/study.yaml", "data_cut: 2026-02-28", "data_cut: '2025-13-01'"), USAGE,
        ["specs/study.yaml, key data_cut:"]),
    "data cut as words": (
        _replace_in("specs/study.yaml", "data_cut: 2026-02-28", "data_cut: end of February"), USAGE,
        ["specs/study.yaml, key data_cut:"]),
    "TS start date that does not exist": (
        _replace_in("specs/trial_design.yaml", '{parmcd: SSTDTC, value: "2024-03-06"}', '{parmcd: SSTDTC, value: "2024-02-30"}'),
        USAGE, ["specs/trial_design.yaml", "SSTDTC"]),
    "raw form linked to a file outside the study": (
        _link("raw/ae.csv", lambda s: s.root.parent / "elsewhere.csv"), USAGE,
        ["raw/ae.csv: symbolic link to", "outside the raw folder"]),
    "spec linked to a file outside the study": (
        _link("specs/sdtm/ex.yaml", lambda s: s.root.parent / "ex.yaml"), USAGE,
        ["specs/sdtm/ex.yaml: symbolic link to", "outside the specs folder"]),
    "dangling link in raw": (
        _link("raw/cm.csv", "/nonexistent/cm.csv"), USAGE, ["raw/cm.csv: symbolic link to", "which does not exist"]),
    "link to a whole folder outside specs": (
        _link("specs/docs", "/etc"), USAGE, ["specs/docs: symbolic link to /etc", "outside the specs folder"]),
}


@pytest.mark.parametrize("case", sorted(CATALOGUE))
def test_catalogue(study, case):
    breaker, code, fragments = CATALOGUE[case]
    for target in ("elsewhere.csv", "ex.yaml"):      # link targets that exist outside the study
        (study.root.parent / target).write_text("x\n", encoding="utf-8")
    breaker(study)
    if callable(fragments):
        fragments = fragments(study)
    assert_error(study.build(), code, *fragments)


@pytest.fixture
def lb_study(tmp_path, built) -> Study:
    """The study slimmed to DM and LB (lb.csv, fc.csv, mrd.csv, rs.csv), with an earlier build."""
    s = copy_study(tmp_path, domains=("DM", "LB"))
    shutil.copytree(built.out, s.root / "out")
    s.earlier = tree_bytes(s.root / "out")
    return s


@pytest.mark.parametrize("typed", ["3,37", "3.370,5", "1,200", "NaN", "n/a", "inf", "3.37.1", "- 3"])
def test_lab_result_that_does_not_parse(lb_study, typed):
    """lb.csv line 2: WBC 3.37 10^9/L. Never a character result without --STRESN/--STRESU."""
    lb_study.set_raw("lb", 2, "LBORRES", typed)
    assert_error(lb_study.build(), DATA, "lb.csv, row 2, column LBORRES:",
                 f"result {typed!r} of test WBC is not a number (unit '10^9/L')")


# -- a raw file must be one well-formed table (end to end through `cdisc build`)
def _csv_lines(s: Study, form: str) -> list[str]:
    return (s.raw / f"{form}.csv").read_text(encoding="utf-8").split("\n")


def _write_lines(s: Study, form: str, lines: list[str]) -> None:
    (s.raw / f"{form}.csv").write_text("\n".join(lines), encoding="utf-8")


def _short_row(s: Study):
    lines = _csv_lines(s, "ae")
    lines[4] = lines[4].rsplit(",", 1)[0]                 # line 5 loses its last field
    _write_lines(s, "ae", lines)


def _long_row(s: Study):
    lines = _csv_lines(s, "ae")
    lines[4] = lines[4] + ",extra"                         # line 5 gains a field
    _write_lines(s, "ae", lines)


def _duplicate_header(s: Study):
    lines = _csv_lines(s, "dm")
    lines[0] = lines[0].replace("SEX", "AGE", 1) if "SEX" in lines[0] else lines[0]
    _write_lines(s, "dm", lines)


def _nul_byte(s: Study):
    lines = _csv_lines(s, "ae")
    lines[5] = lines[5].replace("Active", "Act\x00ive", 1)
    _write_lines(s, "ae", lines)


def _unnamed_column_with_data(s: Study):
    lines = _csv_lines(s, "ex")
    lines = [lines[0] + ","] + [ln + ("," if ln else "") for ln in lines[1:]]
    lines[2] = lines[2][:-1] + ",see note"
    _write_lines(s, "ex", lines)


def _broken_quoting(s: Study):
    lines = _csv_lines(s, "ae")
    lines[6] = lines[6].replace(",Active,", ',"Active"x,', 1)
    _write_lines(s, "ae", lines)


def _xlsx_two_sheets(s: Study):
    df = s.read_csv("dm")
    with pd.ExcelWriter(s.raw / "dm.xlsx") as w:
        df.to_excel(w, sheet_name="DM", index=False)
        df.iloc[:2].to_excel(w, sheet_name="DM (2)", index=False)
    (s.raw / "dm.csv").unlink()


def _truncated_xpt(s: Study):
    import pyreadstat

    df = s.read_csv("ex")
    path = s.raw / "ex.xpt"
    pyreadstat.write_xport(df, str(path), file_format_version=8, table_name="EX")   # v8: long names
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 45])               # cut inside the last 80-byte record
    (s.raw / "ex.csv").unlink()


RAW_STRUCTURE = {
    "a row with fewer fields than the header": (_short_row, ["ae.csv, row 5:", "fields, the header has"]),
    "a row with more fields than the header": (_long_row, ["ae.csv, row 5:", "fields, the header has"]),
    "a column name given twice": (_duplicate_header, ["dm.csv, row 1, column AGE:", "appears 2 times in the header"]),
    "a NUL byte": (_nul_byte, ["ae.csv, row 6", "NUL byte"]),
    "data under an unnamed column": (_unnamed_column_with_data, ["ex.csv, row 3:", "no name for field"]),
    "broken quoting": (_broken_quoting, ["ae.csv, row 7", "quot"]),
    "an Excel file with data on two sheets": (_xlsx_two_sheets, ["dm.xlsx:", "2 sheets hold data", "'DM', 'DM (2)'"]),
    "a truncated transport file": (_truncated_xpt, ["ex.xpt:"]),
}


@pytest.mark.parametrize("case", sorted(RAW_STRUCTURE))
def test_raw_file_structure(study, case):
    breaker, fragments = RAW_STRUCTURE[case]
    breaker(study)
    assert_error(study.build(), USAGE, *fragments)


def test_text_longer_than_200_bytes_in_a_file_the_forked_writer_makes(study, monkeypatch):
    """The same when a forked child writes the transport files (cdisc.xpt_fork, forced here for
    the small study, AE among its files): the same message, and no file left anywhere, neither
    the child's clean ones nor the parent's."""
    import cdisc.xpt_fork as xf

    shares = []
    monkeypatch.setattr(xf, "MIN_RECORDS", 0)
    monkeypatch.setattr(xf, "can_fork", lambda: True)
    monkeypatch.setattr(xf, "share", lambda sizes: shares.append(set(sizes) - {"DM", "ADSL"}) or shares[-1])
    study.set_raw("ae", 5, "AETERM", "x" * 201)
    assert_error(study.build(), DATA, "ae.csv, row 5, column AETERM:", "201 bytes", "limit of 200")
    assert shares and "AE" in shares[0] and len(shares[0]) > 5
    # the earlier build in out/ is untouched (assert_error); nothing written anywhere else
    assert sorted(p.relative_to(study.root).as_posix() for p in study.root.rglob("*.xpt")
                  if p.relative_to(study.root).parts[0] != "out") == []
