"""Cross-domain integrity checks (sdtm/integrity.py): clean on the shipped study, and each
rule fires on one injected defect with a message naming dataset, subject and record/raw row."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from cdisc.pipeline import build_sdtm
from cdisc.errors import DataError
from cdisc.sdtm.integrity import check_integrity

ROOT = Path(__file__).resolve().parent.parent
TREATMENTS = ["VGO-CS01P"]


@pytest.fixture(scope="module")
def built():
    return build_sdtm(ROOT / "specs", ROOT / "raw")


def frames(built) -> tuple[dict, dict]:
    """Fresh copies of every SDTM dataset and its trace (a test may break them)."""
    data = {n: ds.data.copy() for n, ds in built.datasets.items() if ds.standard == "SDTM"}
    trace = {n: ds.trace.copy() for n, ds in built.datasets.items() if ds.standard == "SDTM" and ds.trace is not None}
    return data, trace


def run(data, trace, **kw):
    kw.setdefault("study_treatments", TREATMENTS)
    return check_integrity(data, trace, **kw)


def row_of(df: pd.DataFrame, **where) -> int:
    m = pd.Series(True, index=df.index)
    for k, v in where.items():
        m &= df[k] == v
    assert m.sum() == 1, where
    return int(df.index[m][0])


def test_shipped_study_is_consistent(built):
    data, trace = frames(built)
    assert run(data, trace) == []


def test_subject_not_in_dm(built):
    data, trace = frames(built)
    i = row_of(data["LB"], USUBJID="VGO-Cs01p-101-001", LBTESTCD="HGB", VISIT="SCREENING")
    data["LB"].loc[i, "USUBJID"] = "VGO-Cs01p-109-009"
    probs = run(data, trace)
    # lb.csv line 4 is 101-001 Screening Hemoglobin (WBC, ANC, Hemoglobin are lines 2-4)
    assert [(p.file, p.row, p.column) for p in probs] == [("lb.csv", 4, "USUBJID")]
    assert probs[0].message.startswith(f"LB record {i + 1}, USUBJID VGO-Cs01p-109-009: subject is not in DM")


def test_seq_not_unique(built):
    data, trace = frames(built)
    ae = data["AE"]
    first = ae.index[ae.USUBJID == "VGO-Cs01p-102-002"][:2]
    ae.loc[first[1], "AESEQ"] = ae.loc[first[0], "AESEQ"]
    probs = run(data, trace)
    assert len(probs) == 2 and {p.column for p in probs} == {"AESEQ"} and {p.file for p in probs} == {"ae.csv"}
    assert all("VGO-Cs01p-102-002" in p.message and "not unique" in p.message for p in probs)


def test_date_before_consent_and_the_spec_exemption(built):
    data, trace = frames(built)
    i = row_of(data["PC"], USUBJID="VGO-Cs01p-101-002", PCTPT="Pre-dose")
    data["PC"].loc[i, "PCDTC"] = "2024-07-08T09:00"      # consent 2024-07-08T09:15: 15 min before
    data["PC"].loc[i, "PCDY"] = -22.0                    # keep --DY consistent: only the consent rule fires
    probs = run(data, trace)
    assert [(p.file, p.column) for p in probs] == [("pk.csv", "PCDTC")]
    assert "before informed consent (RFICDTC 2024-07-08T09:15)" in probs[0].message
    # same day without a time compares dates only: 2024-07-08 is not before 2024-07-08T09:15
    data["PC"].loc[i, "PCDTC"] = "2024-07-08"
    assert run(data, trace) == []
    data["PC"].loc[i, "PCDTC"] = "2024-06"                 # a partial date a month earlier
    data["PC"].loc[i, "PCDY"] = float("nan")
    assert len(run(data, trace)) == 1
    assert run(data, trace, dates_before_consent_allowed={"PC": "test"}) == []


def test_study_day_inconsistent(built):
    data, trace = frames(built)
    i = row_of(data["RS"], USUBJID="VGO-Cs01p-103-002", RSTESTCD="OVRLRESP", VISIT="UNSCHEDULED 8.02")
    data["RS"].loc[i, "RSDY"] = 149.0                     # 2025-02-27 - 2024-10-01 + 1 = 150
    probs = run(data, trace)
    assert [(p.file, p.column) for p in probs] == [("rs.csv", "RSDY")]
    assert "RSDY = 149.0 but RSDTC 2025-02-27 is study day 150.0" in probs[0].message


def test_rfstdtc_not_first_dose(built):
    data, trace = frames(built)
    dm = data["DM"]
    i = row_of(dm, USUBJID="VGO-Cs01p-103-003")
    dm.loc[i, "RFSTDTC"] = "2025-01-28T10:00"             # the third infusion, not the first
    probs = [p for p in run(data, trace) if p.column == "RFSTDTC"]
    assert len(probs) == 1 and probs[0].file == "dm.csv"
    assert "RFSTDTC 2025-01-28T10:00 is not the first study-treatment EXSTDTC 2025-01-14T10:00" in probs[0].message


def test_death_flags_and_ds_record(built):
    data, trace = frames(built)
    dm, ds = data["DM"], data["DS"]
    died = row_of(dm, USUBJID="VGO-Cs01p-101-001")
    dm.loc[died, "DTHFL"] = ""                               # DTHDTC present, flag lost
    probs = run(data, trace)
    assert [(p.column, p.message.split(": ", 1)[1]) for p in probs] == \
        [("DTHFL", "DTHDTC is present but DTHFL is not Y")]

    data, trace = frames(built)
    ds = data["DS"]
    j = row_of(ds, USUBJID="VGO-Cs01p-103-002", DSDECOD="DEATH")
    data["DS"] = ds.drop(index=j).reset_index(drop=True)
    trace["DS"] = trace["DS"].drop(index=j).reset_index(drop=True)
    probs = run(data, trace)
    assert len(probs) == 1 and "died (DTHFL/DTHDTC) but DS has no record with DSDECOD DEATH" in probs[0].message
    assert "VGO-Cs01p-103-002" in probs[0].message

    data, trace = frames(built)
    k = row_of(data["DS"], USUBJID="VGO-Cs01p-102-001", DSCAT="DISPOSITION EVENT")
    data["DS"].loc[k, "DSDECOD"] = "DEATH"                   # alive subject with a DS death
    probs = run(data, trace)
    assert [(p.file, p.column) for p in probs] == [("eos.csv", "DSDECOD")]

    data, trace = frames(built)
    j = row_of(data["DS"], USUBJID="VGO-Cs01p-101-003", DSDECOD="DEATH")
    data["DS"].loc[j, "DSSTDTC"] = "2025-01-30"              # DM.DTHDTC 2025-01-29
    data["DS"].loc[j, "DSSTDY"] = 80.0
    probs = run(data, trace)
    assert len(probs) == 1 and "DTHDTC 2025-01-29 differs from the DS death date 2025-01-30" in probs[0].message


def test_build_reports_integrity_problem_with_raw_row(tmp_path):
    """End to end: an AE dated before consent stops the build with ae.csv, its row and column."""
    specs, raw = tmp_path / "specs", tmp_path / "raw"
    shutil.copytree(ROOT / "specs", specs, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "raw", raw, ignore=shutil.ignore_patterns("__pycache__"))
    ae = pd.read_csv(raw / "ae.csv", dtype=str, keep_default_na=False)
    line = int(ae.index[(ae.SUBJECT == "101-001") & (ae.RECORDPOSITION == "1")][0]) + 2
    ae.loc[line - 2, ["AESTDAT", "AESTTIM", "AEENDAT", "AEENTIM"]] = ["01-MAR-2024", "", "02-MAR-2024", ""]
    ae.to_csv(raw / "ae.csv", index=False, lineterminator="\n")
    with pytest.raises(DataError) as err:
        build_sdtm(specs, raw)
    got = [(p.file, p.row, p.column) for p in err.value.problems]
    # consent 2024-03-06: both the start and the end date are before it
    assert got == [("ae.csv", line, "AESTDTC"), ("ae.csv", line, "AEENDTC")]
