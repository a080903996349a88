"""derive_vars_merged_summary (adam/derive/summary.py): per-key summaries of an expression."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cdisc.adam.derive import DERIVATIONS, derive_vars_merged_summary
from cdisc.errors import SpecError

ADSL = pd.DataFrame({"USUBJID": ["S1", "S2", "S3"],
                     "RFENDTC": ["2014-01-20", "2014-02-10", "2014-03-01"]})
EX = pd.DataFrame({
    "USUBJID": ["S1", "S1", "S1", "S2", "S2"],
    "EXDOSE": [54.0, 81.0, 54.0, 0.0, 54.0],
    "EXSTDTC": ["2014-01-01", "2014-01-15", "2014-01-18", "2014-02-01", "2014-02-05"],
    "EXENDTC": ["2014-01-14", "2014-01-17", None, "2014-02-04", None],
})
CUM = {"summary": "sum", "value": "EXDOSE * (days_between(EXSTDTC, coalesce(EXENDTC, RFENDTC)) + 1)"}


def test_registered():
    assert DERIVATIONS["derive_vars_merged_summary"] is derive_vars_merged_summary


def test_cumulative_dose_with_open_record_ending_on_dataset_date():
    out = derive_vars_merged_summary(ADSL, dataset_add=EX, by_vars=["USUBJID"], dataset_vars=["RFENDTC"],
                                     new_vars={"CUMDOSE": CUM, "NREC": {"summary": "count", "value": "EXDOSE"}})
    # S1: 54 x 14 days (01-01..01-14) + 81 x 3 (01-15..01-17) + 54 x 3 (01-18..RFENDTC 01-20)
    #     = 756 + 243 + 162 = 1161
    # S2: 0 x 4 + 54 x 6 (02-05..RFENDTC 02-10) = 324
    # S3: no EX record -> CUMDOSE missing, NREC 0
    assert out["CUMDOSE"].iloc[0] == 1161.0
    assert out["CUMDOSE"].iloc[1] == 324.0
    assert np.isnan(out["CUMDOSE"].iloc[2])
    assert out["NREC"].tolist() == [3, 2, 0]
    assert list(out.columns[:2]) == ["USUBJID", "RFENDTC"] and len(out) == 3
    assert "RFENDTC" not in EX.columns            # the input is not modified


def test_filter_and_mean_max():
    out = derive_vars_merged_summary(
        ADSL, dataset_add=EX, by_vars=["USUBJID"], filter_add="EXDOSE > 0",
        new_vars={"MEANDOSE": {"summary": "mean", "value": "EXDOSE"},
                  "MAXDOSE": {"summary": "max", "value": "EXDOSE * 2"}})
    # S1 doses 54, 81, 54: mean 63, max 2 x 81 = 162; S2: only the 54 record (0 filtered out)
    assert out["MEANDOSE"].tolist()[:2] == [63.0, 54.0]
    assert out["MAXDOSE"].tolist()[:2] == [162.0, 108.0]


def test_without_dataset_vars_the_open_record_is_missing_and_skipped():
    out = derive_vars_merged_summary(
        ADSL, dataset_add=EX, by_vars=["USUBJID"],
        new_vars={"CUMDOSE": {"summary": "sum", "value": "EXDOSE * (days_between(EXSTDTC, EXENDTC) + 1)"}})
    # S1: 756 + 243 (the open record gives a missing value, not 0); S2: 0 x 4 = 0
    assert out["CUMDOSE"].tolist()[:2] == [999.0, 0.0]


@pytest.mark.parametrize("new_vars, message", [
    ({"RFENDTC": {"summary": "sum", "value": "EXDOSE"}}, "already exist"),
    ({"X": {"summary": "median", "value": "EXDOSE"}}, "summary must be one of"),
    ({"X": {"value": "EXDOSE"}}, "must be {summary"),
])
def test_bad_arguments(new_vars, message):
    with pytest.raises(SpecError, match=message):
        derive_vars_merged_summary(ADSL, dataset_add=EX, by_vars=["USUBJID"], new_vars=new_vars)


def test_dataset_vars_need_unique_keys():
    two = pd.concat([ADSL, ADSL.iloc[:1]], ignore_index=True)
    with pytest.raises(SpecError, match="one dataset record per USUBJID"):
        derive_vars_merged_summary(two, dataset_add=EX, by_vars=["USUBJID"], dataset_vars=["RFENDTC"],
                                   new_vars={"CUMDOSE": CUM})
