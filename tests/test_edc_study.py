"""A second study from another EDC layout (tests/studies/edc2), built with specs alone.

The expected SDTM values below were worked out by hand from tests/studies/edc2/raw:
dates MM/DD/YYYY (partial forms UN/UNK/2024, 02/UN/2024, 03/2024, 2024), vital signs dated
DD.MM.YYYY, temperatures in degrees F converted to C with (F - 32) x 5/9, the site code inside
the subject number (201-004), raw columns named IT.XXX, a death recorded only on the
disposition form.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cdisc.pipeline import build_sdtm
from cdisc.errors import DataError, SpecError

STUDY = Path(__file__).resolve().parent / "studies" / "edc2"


@pytest.fixture(scope="module")
def built():
    return build_sdtm(STUDY / "specs", STUDY / "raw")


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "edc2"
    shutil.copytree(STUDY, dst)
    return dst


def _col(built, dom, var):
    s = built.datasets[dom].data[var]
    return [None if pd.isna(v) else v for v in s.tolist()]


def test_dm_value_by_value(built):
    dm = built.datasets["DM"].data
    assert dm["USUBJID"].tolist()[:3] == ["EDC2-001-201-001", "EDC2-001-201-002", "EDC2-001-201-003"]
    assert _col(built, "DM", "SITEID") == ["201"] * 4 + ["202"] * 4 + ["203"] * 4     # substr(PATNO, 1, 3)
    assert _col(built, "DM", "SUBJID") == ["001", "002", "003", "004"] * 3              # scan(PATNO, 2, '-')
    # first dose from ex.csv "01/22/2024 09:30" (MM/DD/YYYY HH:MM)
    assert _col(built, "DM", "RFSTDTC") == [
        "2024-01-22T09:30", "2024-01-24T08:45", "2024-01-29T11:15", "2024-02-05T09:00", "2024-02-15T13:20",
        "2024-02-19T09:10", "2024-02-21T10:30", "2024-02-26T08:00", "2024-03-04T09:45", "2024-03-05T14:00",
        "2024-03-11T10:05", "2024-03-15T09:00"]
    assert _col(built, "DM", "RFICDTC")[0] == "2024-01-08"
    # the death is only on ds.csv (202-003, Death, 05/20/2024)
    assert _col(built, "DM", "DTHDTC") == [None] * 6 + ["2024-05-20"] + [None] * 5
    assert _col(built, "DM", "DTHFL") == [None] * 6 + ["Y"] + [None] * 5
    # DMDY against RFSTDTC of the DM being built: 2024-01-08 vs 2024-01-22 -> -14 (no day 0)
    assert _col(built, "DM", "DMDY") == [-14, -14, -13, -14, -14, -13, -14, -14, -14, -14, -14, -11]
    assert _col(built, "DM", "SEX")[:2] == ["M", "F"]
    assert _col(built, "DM", "AGE")[:2] == [54.0, 61.0]


def test_ae_partial_dates_and_expressions(built):
    ae = built.datasets["AE"].data
    assert list(ae.columns) == ["STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AETERM", "AESER", "AESTDTC", "AEENDTC",
                                "AESTDY", "AEDUR"]          # the helper TERM is not written
    assert _col(built, "AE", "AETERM") == ["HEADACHE", "NAUSEA", "RASH", "FATIGUE", "SEPSIS", "DIZZINESS",
                                           "HEADACHE"]
    # 01/23/2024, 02/UN/2024, UN/UNK/2024, 03/2024, 05/10/2024 22:15, 2024, 03/16/2024
    assert _col(built, "AE", "AESTDTC") == ["2024-01-23", "2024-02", "2024", "2024-03", "2024-05-10T22:15",
                                            "2024", "2024-03-16"]
    assert _col(built, "AE", "AEENDTC") == ["2024-01-24", None, None, "2024-04-02", "2024-05-20", None,
                                            "2024-03-16"]
    assert _col(built, "AE", "AESTDY") == [2, None, None, None, 80, None, 2]
    assert _col(built, "AE", "AEDUR") == [2, None, None, None, 11, None, 1]   # days_between(...) + 1
    assert _col(built, "AE", "AESER") == ["N", "N", "N", "N", "Y", "N", "N"]
    assert _col(built, "AE", "AESEQ") == [1, 2, 1, 1, 1, 1, 1]


def test_vs_fahrenheit_affine_conversion_visits_and_layout(built):
    vs = built.datasets["VS"].data
    rows = list(zip(vs["USUBJID"].str.slice(9), vs["VSTESTCD"], vs["VSORRES"], vs["VSORRESU"], vs["VSSTRESC"],
                    vs["VSSTRESN"], vs["VSSTRESU"], vs["VISITNUM"], vs["VISIT"], vs["VSDTC"], vs["VSDY"]))
    assert rows == [
        ("201-001", "TEMP", "98.6", "F", "37", 37.0, "C", 1.0, "SCREENING", "2024-01-08", -14.0),
        ("201-001", "TEMP", "99.5", "F", "37.5", 37.5, "C", 2.0, "DAY 1", "2024-01-22", 1.0),
        ("201-001", "TEMP", "101.3", "F", "38.5", 38.5, "C", 2.1, "UNSCHEDULED 2.1", "2024-01-29", 8.0),
        ("201-001", "WEIGHT", "80.5", "kg", "80.5", 80.5, "kg", 1.0, "SCREENING", "2024-01-08", -14.0),
        ("201-001", "WEIGHT", "80.1", "kg", "80.1", 80.1, "kg", 2.0, "DAY 1", "2024-01-22", 1.0),
        ("201-002", "TEMP", "97.7", "F", "36.5", 36.5, "C", 1.0, "SCREENING", "2024-01-10", -14.0),
        ("201-002", "TEMP", "37.2", "C", "37.2", 37.2, "C", 2.0, "DAY 1", "2024-01-24", 1.0),
        ("201-002", "WEIGHT", "176.0", "LB", "79.8", 79.8, "kg", 1.0, "SCREENING", "2024-01-10", -14.0),
        ("201-002", "WEIGHT", "79.8", "kg", "79.8", 79.8, "kg", 2.0, "DAY 1", "2024-01-24", 1.0),
        ("202-003", "TEMP", "98.24", "F", "36.8", 36.8, "C", 1.0, "SCREENING", "2024-02-07", -14.0),
        ("202-003", "TEMP", "100.4", "F", "38", 38.0, "C", 2.0, "DAY 1", "2024-02-21", 1.0),
        ("202-003", "TEMP", "102.2", "F", "39", 39.0, "C", 3.2, "UNSCHEDULED 3.2", "2024-05-12", 82.0),
        ("202-003", "WEIGHT", "72.0", "kg", "72.0", 72.0, "kg", 1.0, "SCREENING", "2024-02-07", -14.0),
        ("202-003", "WEIGHT", "71.6", "kg", "71.6", 71.6, "kg", 2.0, "DAY 1", "2024-02-21", 1.0),
    ]
    assert _col(built, "VS", "VSSEQ") == [1, 2, 3, 4, 5, 1, 2, 3, 4, 1, 2, 3, 4, 5]


def test_ds_and_ex(built):
    assert _col(built, "DS", "DSDECOD")[2] == "WITHDRAWAL BY SUBJECT"
    assert _col(built, "DS", "DSSTDTC")[2] == "2024-03"             # 03/2024
    assert _col(built, "DS", "DSDECOD")[6] == "DEATH"
    # ex.csv's visit is in VISIT.OID (a per-form visit column); 03/04/2024 without a time
    assert _col(built, "EX", "VISITNUM") == [2, 3, 2, 2, 2, 2, 2, 3, 2, 2, 2, 2, 2, 2]
    assert _col(built, "EX", "EXSTDTC")[7] == "2024-03-04"
    assert _col(built, "EX", "EXSTDY")[:2] == [1, 15]


def test_every_raw_column_read(built):
    read = {c["form"]: set(c["read"]) for c in built.columns}
    assert "IT.AETERM" in read["ae"] and "EVENT" in read["vs"] and "VISIT.OID" in read["ex"]


def test_unparseable_date_names_file_row_column_and_layouts(tmp_path):
    study = _copy(tmp_path)
    text = (study / "raw" / "ae.csv").read_text().replace("03/16/2024,03/16/2024", "16/03/2024,03/16/2024")
    (study / "raw" / "ae.csv").write_text(text)
    with pytest.raises(DataError) as err:
        build_sdtm(study / "specs", study / "raw")
    msgs = [str(p) for p in err.value.problems]
    hit = [m for m in msgs if "16/03/2024" in m]
    assert hit == ["ae.csv, row 8, column IT.AESTDAT: date '16/03/2024' is not a valid date in any of the "
                   "layouts tried: MM/DD/YYYY HH:MM (correct the date in the EDC, or add its layout to "
                   "raw.date_formats in specs/study.yaml)"]


def test_bad_layout_in_study_yaml_is_a_spec_error(tmp_path):
    study = _copy(tmp_path)
    y = yaml.safe_load((study / "specs" / "study.yaml").read_text())
    y["raw"]["date_formats"]["vs"] = ["DD.MM.YY"]
    (study / "specs" / "study.yaml").write_text(yaml.safe_dump(y))
    with pytest.raises(SpecError) as err:
        build_sdtm(study / "specs", study / "raw")
    assert "has no YYYY" in str(err.value)


def test_integrity_finding_waived_with_reason(tmp_path):
    study = _copy(tmp_path)
    # DS death date no longer equals... make DM's death come from a different source: drop DTHDTC rule
    dm = yaml.safe_load((study / "specs" / "sdtm" / "dm.yaml").read_text())
    dm["variables"] = [v for v in dm["variables"] if v["name"] not in ("DTHDTC", "DTHFL")]
    (study / "specs" / "sdtm" / "dm.yaml").write_text(yaml.safe_dump(dm, sort_keys=False))
    with pytest.raises(DataError) as err:
        build_sdtm(study / "specs", study / "raw")
    assert [str(p) for p in err.value.problems] == [
        "ds.csv, row 8, column DSDECOD: DS record 7, USUBJID EDC2-001-202-003: DSDECOD is DEATH but DM has no "
        "DTHFL/DTHDTC for the subject"]
    (study / "specs" / "waivers.yaml").write_text(yaml.safe_dump({"waivers": [], "integrity": [
        {"rule": "death_consistency", "dataset": "DS", "usubjid": "EDC2-001-202-003",
         "reason": "death date not collected on DM in this test"}]}))
    res = build_sdtm(study / "specs", study / "raw")
    assert res.integrity_waived == [{
        "rule": "death_consistency", "dataset": "DS", "usubjid": "EDC2-001-202-003", "variable": "DSDECOD",
        "message": "DS record 7, USUBJID EDC2-001-202-003: DSDECOD is DEATH but DM has no DTHFL/DTHDTC for the "
                   "subject", "reason": "death date not collected on DM in this test", "approved_by": None}]


def test_integrity_waiver_needs_a_known_check_and_reason(tmp_path):
    from cdisc.sdtm.integrity import integrity_waivers

    with pytest.raises(SpecError) as err:
        integrity_waivers({"integrity": [{"rule": "death", "dataset": "DM", "reason": " "}]})
    text = str(err.value)
    assert "unknown integrity check 'death'" in text and "reason must say why" in text


def test_study_day_against_a_sponsor_reference(tmp_path):
    study = _copy(tmp_path)
    spec = yaml.safe_load((study / "specs" / "sdtm" / "ds.yaml").read_text())
    for v in spec["variables"]:
        if v["name"] == "DSSTDY":
            v["study_day"] = {"date": "DSSTDTC", "reference": "RFICDTC"}     # days since consent
    (study / "specs" / "sdtm" / "ds.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    res = build_sdtm(study / "specs", study / "raw")
    # 201-001: consent 2024-01-08, completed 2024-06-30: 174 days later -> day 175;
    # 201-002: 2024-01-10 -> 2024-07-01: 173 days later -> day 174
    assert res.datasets["DS"].data["DSSTDY"].tolist()[:2] == [175.0, 174.0]


def test_helper_clashing_with_a_variable_is_a_spec_error(tmp_path):
    study = _copy(tmp_path)
    spec = yaml.safe_load((study / "specs" / "sdtm" / "ae.yaml").read_text())
    spec["helpers"].append({"name": "AETERM", "expr": "IT.AETERM"})
    (study / "specs" / "sdtm" / "ae.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(SpecError) as err:
        build_sdtm(study / "specs", study / "raw")
    assert "helper names repeat variables or each other: ['AETERM']" in str(err.value)


def test_visit_column_of_a_form_must_exist(tmp_path):
    study = _copy(tmp_path)
    spec = yaml.safe_load((study / "specs" / "sdtm" / "vs.yaml").read_text())
    spec["sources"][0]["visit"] = "VISIT.OID"          # that is ex.csv's column, not vs.csv's
    (study / "specs" / "sdtm" / "vs.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(Exception) as err:
        build_sdtm(study / "specs", study / "raw")
    text = str(err.value)
    assert "VISIT.OID" in text and "vs.csv" in text and "sources[0].visit" in text
