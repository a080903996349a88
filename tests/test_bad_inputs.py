"""Bad input gets one clear message and the right exit code, never a traceback.

Each test copies the shipped study (specs/ + raw/) to a tmp folder, breaks one thing and
runs `cdisc build`. Exit codes (README): 1 the data has errors, 2 bad usage, bad spec or
unreadable input. A message names where the problem is, as ``cdisc.errors.Problem``
renders it: ``<file>, row <n>, column <col>: ...`` for raw data (row = the file's line
number, header = 1) and ``<spec file>, key <path>: ...`` for specs.
"""
from __future__ import annotations

import pandas as pd
import pytest

from conftest import Study, tree_bytes

DATA, USAGE = 1, 2


def assert_error(res, code: int, *fragments: str) -> None:
    """Exit code, every fragment in stderr, no traceback, no internal error, nothing written."""
    assert res.code == code, f"exit {res.code}, expected {code}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert res.exception is None, repr(res.exception)
    assert "Traceback" not in res.output and "internal error" not in res.stderr, res.stderr
    assert res.stderr.startswith("cdisc: "), res.stderr
    assert "Wrote" not in res.stdout
    for f in fragments:
        assert f in res.stderr, f"{f!r} not in:\n{res.stderr}"


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
def test_failed_build_leaves_earlier_build_intact(built, study, breaker):
    import shutil

    out = study.root / "out"
    shutil.copytree(built.out, out)
    before = tree_bytes(out)
    code = breaker(study)
    assert_error(study.build(out), code)
    assert tree_bytes(out) == before
    # no half-written temporary folder (.out.*) left next to it
    assert sorted(p.name for p in study.root.iterdir()) == ["out", "raw", "specs"]


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
