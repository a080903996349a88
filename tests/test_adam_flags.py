"""adam.derive.flags: extreme/worst/analysis flags and TRTEMFL."""
import numpy as np
import pandas as pd
import pytest

from cdisc.adam.derive import (DERIVATIONS, derive_var_anl_flag, derive_var_extreme_flag,
                         derive_var_trtemfl, derive_var_worst_flag)
from cdisc.errors import SpecError


def dates(*values):
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[s]")


def col(frame, name):
    return [None if pd.isna(v) else v for v in frame[name].tolist()]


@pytest.fixture
def visits():
    # subject 1: rows 0 and 2 tie on ADT; row 3 has no date. subject 2: one record.
    return pd.DataFrame({
        "USUBJID": ["1", "1", "1", "1", "2"],
        "ADT": dates("2021-01-02", "2021-01-01", "2021-01-02", None, "2021-01-05").to_numpy(),
        "AVAL": [5.0, 7.0, 6.0, 1.0, 3.0],
    }, index=[10, 11, 12, 13, 14])


def test_first_picks_earliest(visits):
    out = derive_var_extreme_flag(visits, by_vars=["USUBJID"], order=["ADT"],
                                  new_var="FIRSTFL", mode="first")
    assert col(out, "FIRSTFL") == [None, "Y", None, None, "Y"]
    assert list(out.index) == [10, 11, 12, 13, 14]          # index and rows kept
    assert "FIRSTFL" not in visits.columns                    # input untouched


def test_missing_order_sorts_last_and_is_picked_by_last(visits):
    out = derive_var_extreme_flag(visits, by_vars=["USUBJID"], order=["ADT"],
                                  new_var="LASTFL", mode="last", false_value="N")
    # ascending: 01-01 (r11), 01-02 (r10), 01-02 (r12), missing (r13) -> last = r13
    assert col(out, "LASTFL") == ["N", "N", "N", "Y", "Y"]
    dated = derive_var_extreme_flag(visits, by_vars=["USUBJID"], order=["ADT"],
                                    new_var="LASTFL", mode="last", filter="present(ADT)")
    # r13 is not a candidate (missing flag, not N); tie r10/r12 -> later row r12
    assert col(dated, "LASTFL") == [None, None, "Y", None, "Y"]


def test_ties_keep_row_order_also_descending(visits):
    out = derive_var_extreme_flag(visits, by_vars=["USUBJID"], order=["desc(ADT)"],
                                  new_var="FL", mode="first")
    # descending: 01-02 (r10), 01-02 (r12), 01-01 (r11), missing still last -> r10
    assert col(out, "FL") == ["Y", None, None, None, "Y"]
    two_keys = derive_var_extreme_flag(visits, by_vars=["USUBJID"],
                                       order=["desc(ADT)", "desc(AVAL)"], new_var="FL",
                                       mode="first")
    # the tie on ADT is broken by AVAL 6 > 5 -> r12
    assert col(two_keys, "FL") == [None, None, "Y", None, "Y"]


def test_ranking_order_and_missing_by_values():
    df = pd.DataFrame({"USUBJID": ["1", "1", "1", None, None],
                       "AVALC": ["PR", "CR", "NE", "PD", "SD"]})
    out = derive_var_extreme_flag(
        df, by_vars=["USUBJID"], new_var="BESTFL", mode="first",
        order=[{"var": "AVALC", "ranking": {"CR": 1, "PR": 2, "SD": 3, "PD": 4}}])
    # subject 1: CR ranks 1; the missing-key group is its own group: SD (3) beats PD (4)
    assert col(out, "BESTFL") == [None, "Y", None, None, "Y"]
    with pytest.raises(SpecError, match="order"):
        derive_var_extreme_flag(df, by_vars=["USUBJID"], order=["AVALC + 1"],
                                new_var="X")
    with pytest.raises(SpecError, match="ADT"):
        derive_var_extreme_flag(df, by_vars=["USUBJID"], order=["ADT"], new_var="X")
    with pytest.raises(SpecError, match="mode"):
        derive_var_extreme_flag(df, by_vars=["USUBJID"], order=["AVALC"], new_var="X",
                                mode="max")


def test_worst_flag_high_low_and_ranking():
    df = pd.DataFrame({
        "USUBJID": ["1", "1", "1", "1", "2"],
        "ATOXGRN": [2.0, 3.0, 3.0, np.nan, np.nan],
        "ASTDT": dates("2021-01-01", "2021-01-09", "2021-01-05", "2021-01-01", "2021-01-01"),
        "AESEV": ["MILD", "SEVERE", "MODERATE", "SEVERE", None],
    })
    high = derive_var_worst_flag(df, by_vars=["USUBJID"], new_var="WORSTFL",
                                 source_var="ATOXGRN", order=["ASTDT"])
    # grade 3 twice (r1 on 01-09, r2 on 01-05) -> the earlier r2; subject 2 only missing
    assert col(high, "WORSTFL") == [None, None, "Y", None, None]
    low = derive_var_worst_flag(df, by_vars=["USUBJID"], new_var="F", source_var="ATOXGRN",
                                worst="low")
    assert col(low, "F") == ["Y", None, None, None, None]
    sev = derive_var_worst_flag(df, by_vars=["USUBJID"], new_var="F", source_var="AESEV",
                                worst={"SEVERE": 1, "MODERATE": 2, "MILD": 3},
                                order=["desc(ASTDT)"])
    # SEVERE on r1 (01-09) and r3 (01-01); desc(ASTDT) tie-break -> r1
    assert col(sev, "F") == [None, "Y", None, None, None]


def test_anl_flag():
    df = pd.DataFrame({"PARAMCD": ["OS", "PFS", None]})
    out = derive_var_anl_flag(df, new_var="ANL01FL", filter="PARAMCD == 'OS'")
    assert col(out, "ANL01FL") == ["Y", None, None]
    yn = derive_var_anl_flag(df, new_var="F", filter="PARAMCD in ('OS', 'PFS')",
                             false_value="N")
    assert col(yn, "F") == ["Y", "Y", "N"]


def test_trtemfl_cases():
    trt = "2021-03-10"
    df = pd.DataFrame({
        "ASTDT": dates("2021-03-12", "2021-03-10", "2021-03-01", None, None, None,
                       "2021-03-01", "2021-03-12"),
        "AENDT": dates("2021-03-20", None, "2021-03-05", "2021-03-15", "2021-03-01", None,
                       None, "2021-03-13"),
        "TRTSDT": dates(*[trt] * 7, None),
    })
    out = derive_var_trtemfl(df, start_date="ASTDT", end_date="AENDT",
                             trt_start_date="TRTSDT")
    assert col(out, "TRTEMFL") == [
        "Y",    # starts after first dose
        "Y",    # starts on the day of first dose (>=)
        None,   # started and ended before first dose
        "Y",    # start missing, ended after first dose
        None,   # start missing but ended before first dose
        "Y",    # start and end missing: conservative Y
        None,   # started before, ongoing, no worsening information
        None,   # subject not treated
    ]
    no_end = derive_var_trtemfl(df, start_date="ASTDT", trt_start_date="TRTSDT")
    # without end_date rule 2 does not exist: row 4 (start missing) becomes Y
    assert col(no_end, "TRTEMFL")[4] == "Y"


def test_trtemfl_end_window_and_worsening():
    df = pd.DataFrame({
        "ASTDT": dates("2021-04-09", "2021-04-10", "2021-03-01", "2021-03-01", "2021-04-10"),
        "AENDT": dates(None, None, "2021-03-20", "2021-03-20", None),
        "TRTSDT": dates(*["2021-03-10"] * 5),
        "TRTEDT": dates("2021-03-10", "2021-03-10", "2021-03-10", "2021-03-10", None),
        "AEITOXGR": ["1", "1", "1", "2", "1"],
        "AETOXGR": ["1", "1", "3", "2", "1"],
    })
    out = derive_var_trtemfl(df, new_var="TRTEM2FL", start_date="ASTDT", end_date="AENDT",
                             trt_start_date="TRTSDT", trt_end_date="TRTEDT", end_window=30,
                             initial_intensity="AEITOXGR", intensity="AETOXGR")
    # 10 March + 30 days = 9 April: 9 April in, 10 April out; pre-dose AE worsening
    # 1 -> 3 is TEAE, 2 -> 2 is not; missing TRTEDT -> no window limit
    assert col(out, "TRTEM2FL") == ["Y", None, "Y", None, "Y"]
    with pytest.raises(SpecError, match="trt_end_date"):
        derive_var_trtemfl(df, start_date="ASTDT", trt_start_date="TRTSDT", end_window=3)
    with pytest.raises(SpecError, match="intensity"):
        derive_var_trtemfl(df, start_date="ASTDT", trt_start_date="TRTSDT",
                           intensity="AETOXGR")
    with pytest.raises(SpecError, match="not a date"):
        derive_var_trtemfl(df, start_date="AETOXGR", trt_start_date="TRTSDT")


def test_registered():
    for name in ("derive_var_extreme_flag", "derive_var_worst_flag", "derive_var_anl_flag",
                 "derive_var_trtemfl"):
        assert callable(DERIVATIONS[name])
