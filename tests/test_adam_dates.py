"""adam.derive.dates: partial ISO 8601 dates -> *DT/*DTM with DTF/TMF, and --DY."""
import numpy as np
import pandas as pd
import pytest

from cdisc.adam.derive import DERIVATIONS, derive_vars_dt, derive_vars_dtm, derive_vars_dy
from cdisc.errors import DataError, SpecError


def dates(*values):
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[s]")


def ts(text):
    return pd.Timestamp(text) if text is not None else pd.NaT


def col(frame, name):
    return [None if pd.isna(v) else v for v in frame[name].tolist()]


def test_every_partial_form_first_imputation_up_to_month():
    df = pd.DataFrame({"DTC": ["2021-03-15", "2021-03", "2021", "", np.nan,
                               "2021-03-15T10:30", "2019---07", "--06-01"]})
    out = derive_vars_dt(df, new_vars_prefix="AST", dtc="DTC", highest_imputation="M")
    assert str(out["ASTDT"].dtype) == "datetime64[s]"
    assert col(out, "ASTDT") == [
        ts("2021-03-15"),   # complete
        ts("2021-03-01"),   # day missing -> 1st
        ts("2021-01-01"),   # month and day missing -> 1 January
        None, None,         # nothing collected; year imputation not allowed
        ts("2021-03-15"),   # time part ignored
        ts("2019-01-01"),   # '2019---07': month missing, so the day 07 is dropped too
        None,               # year missing
    ]
    # ADaM CT DATEFL: D = day imputed, M = month and day; complete -> missing
    assert col(out, "ASTDTF") == [None, "D", "M", None, None, None, "M", None]
    assert "ASTDTF" not in df.columns and list(df.columns) == ["DTC"]   # input untouched


def test_highest_imputation_limits_the_levels():
    df = pd.DataFrame({"DTC": ["2021-03-15", "2021-03", "2021"]})
    day_only = derive_vars_dt(df, new_vars_prefix="A", dtc="DTC", highest_imputation="D")
    assert col(day_only, "ADT") == [ts("2021-03-15"), ts("2021-03-01"), None]
    assert col(day_only, "ADTF") == [None, "D", None]
    none = derive_vars_dt(df, new_vars_prefix="A", dtc="DTC")    # highest 'n'
    assert col(none, "ADT") == [ts("2021-03-15"), None, None]
    assert col(none, "ADTF") == [None, None, None]


def test_missing_year_is_imputed_only_from_min_dates():
    df = pd.DataFrame({"DTC": ["", "2021-05"], "TRTSDT": dates("2021-03-10", "2021-03-10")})
    out = derive_vars_dt(df, new_vars_prefix="AST", dtc="DTC", highest_imputation="Y",
                         min_dates=["TRTSDT"])
    # blank -> the minimum date itself, flag Y; 2021-05 is out of range of TRTSDT -> 1 May
    assert col(out, "ASTDT") == [ts("2021-03-10"), ts("2021-05-01")]
    assert col(out, "ASTDTF") == ["Y", "D"]
    with pytest.raises(SpecError, match="min_dates"):
        derive_vars_dt(df, new_vars_prefix="AST", dtc="DTC", highest_imputation="Y")


def test_start_in_month_of_first_dose_is_clamped_to_trtsdt():
    df = pd.DataFrame({"AESTDTC": ["2021-03", "2021-02", "2021", "2021-03-02", "2021-04"],
                       "TRTSDT": dates(*["2021-03-10"] * 5)})
    out = derive_vars_dt(df, new_vars_prefix="AST", dtc="AESTDTC", highest_imputation="M",
                         min_dates="TRTSDT")
    assert col(out, "ASTDT") == [
        ts("2021-03-10"),  # March 2021 contains 10 March -> max(1 March, 10 March)
        ts("2021-02-01"),  # February cannot contain the dose date -> plain 1st
        ts("2021-03-10"),  # the year 2021 contains it -> 10 March, not 1 January
        ts("2021-03-02"),  # complete dates are never moved
        ts("2021-04-01"),  # April is after the dose date: 1 April already >= it
    ]
    assert col(out, "ASTDTF") == ["D", "D", "M", None, "D"]


def test_end_dates_last_day_leap_february_mid_and_fixed():
    df = pd.DataFrame({"DTC": ["2024-02", "2023-02", "2021", "2021-04"]})
    last = derive_vars_dt(df, new_vars_prefix="AEN", dtc="DTC", highest_imputation="M",
                          date_imputation="last")
    # 2024 is a leap year (divisible by 4, not by 100) -> 29 February
    assert col(last, "AENDT") == [ts("2024-02-29"), ts("2023-02-28"), ts("2021-12-31"),
                                  ts("2021-04-30")]
    mid = derive_vars_dt(df, new_vars_prefix="A", dtc="DTC", highest_imputation="M",
                         date_imputation="mid")
    # mid: missing day -> 15th, missing month and day -> 30 June
    assert col(mid, "ADT") == [ts("2024-02-15"), ts("2023-02-15"), ts("2021-06-30"),
                               ts("2021-04-15")]
    fixed = derive_vars_dt(df, new_vars_prefix="A", dtc="DTC", highest_imputation="M",
                           date_imputation="02-29")
    # the day is capped at the month's length (2023 and 2021 are not leap years);
    # with a known month only the day (29) is used
    assert col(fixed, "ADT") == [ts("2024-02-29"), ts("2023-02-28"), ts("2021-02-28"),
                                 ts("2021-04-29")]
    with pytest.raises(SpecError, match="date_imputation"):
        derive_vars_dt(df, new_vars_prefix="A", dtc="DTC", highest_imputation="M",
                       date_imputation="04-31")


def test_fixed_imputation_month_and_day():
    df = pd.DataFrame({"DTC": ["2021"]})
    out = derive_vars_dt(df, new_vars_prefix="A", dtc="DTC", highest_imputation="M",
                         date_imputation="04-06")
    assert col(out, "ADT") == [ts("2021-04-06")]


def test_end_imputed_last_is_capped_at_max_dates_and_end_before_start_is_kept():
    df = pd.DataFrame({
        "AESTDTC": ["2021-05-02", "2021-05-02", "2021-05-10"],
        "AEENDTC": ["2021-05", "2021-05", "2021-05-03"],
        "DTHDT": dates("2021-05-20", "2021-06-03", None),
        "DCUTDT": dates("2021-12-31", "2021-05-25", "2021-12-31"),
    })
    out = derive_vars_dt(df, new_vars_prefix="AEN", dtc="AEENDTC", highest_imputation="M",
                         date_imputation="last", max_dates=["DTHDT", "DCUTDT"])
    assert col(out, "AENDT") == [
        ts("2021-05-20"),  # min(31 May, death 20 May)
        ts("2021-05-25"),  # death 3 June is outside May (ignored); cut-off 25 May applies
        ts("2021-05-03"),  # complete end before start: left as is (validation reports it)
    ]
    assert col(out, "AENDTF") == ["D", "D", None]


def test_invalid_dates_raise_dataerror_naming_record():
    for bad in ("2021-13-01", "2021-02-30", "15MAR2021", "2021-03-15T25:00"):
        df = pd.DataFrame({"DTC": ["2021-01-01", bad]})
        with pytest.raises(DataError) as err:
            derive_vars_dt(df, new_vars_prefix="A", dtc="DTC", highest_imputation="M")
        assert "record 2" in str(err.value) and bad in str(err.value)


def test_flag_imputation_options_and_argument_errors():
    df = pd.DataFrame({"DTC": ["2021-03"]})
    assert "ADTF" not in derive_vars_dt(df, new_vars_prefix="A", dtc="DTC",
                                        highest_imputation="M", flag_imputation=False)
    assert "ADTF" not in derive_vars_dt(df, new_vars_prefix="A", dtc="DTC",
                                        flag_imputation="auto")
    assert "ADTF" in derive_vars_dt(df, new_vars_prefix="A", dtc="DTC",
                                    highest_imputation="D", flag_imputation="auto")
    with pytest.raises(SpecError, match="highest_imputation"):
        derive_vars_dt(df, new_vars_prefix="A", dtc="DTC", highest_imputation="X")
    with pytest.raises(SpecError, match="NOPE"):
        derive_vars_dt(df, new_vars_prefix="A", dtc="NOPE")
    with pytest.raises(SpecError, match="not a date"):
        derive_vars_dt(df.assign(T="2021-01-01"), new_vars_prefix="A", dtc="DTC",
                       highest_imputation="M", min_dates=["T"])


def test_dtm_time_imputation_and_tmf():
    df = pd.DataFrame({"DTC": ["2021-03-15T10:30:15", "2021-03-15T10:30", "2021-03-15T10",
                               "2021-03-15", "2021-03", "2021"]})
    out = derive_vars_dtm(df, new_vars_prefix="AST", dtc="DTC", highest_imputation="M")
    assert str(out["ASTDTM"].dtype) == "datetime64[s]"
    assert col(out, "ASTDTM") == [ts("2021-03-15 10:30:15"), ts("2021-03-15 10:30:00"),
                                  ts("2021-03-15 10:00:00"), ts("2021-03-15 00:00:00"),
                                  ts("2021-03-01 00:00:00"), ts("2021-01-01 00:00:00")]
    # TIMEFL: S seconds, M minutes (+seconds), H hour (+all below, and any imputed date)
    assert col(out, "ASTTMF") == [None, "S", "M", "H", "H", "H"]
    assert col(out, "ASTDTF") == [None, None, None, None, "D", "M"]
    last = derive_vars_dtm(df, new_vars_prefix="AEN", dtc="DTC", highest_imputation="D",
                           date_imputation="last", time_imputation="last")
    assert col(last, "AENDTM")[1:5] == [ts("2021-03-15 10:30:59"), ts("2021-03-15 10:59:59"),
                                        ts("2021-03-15 23:59:59"), ts("2021-03-31 23:59:59")]
    assert col(last, "AENDTM")[5] is None        # month missing, highest is D
    quiet = derive_vars_dtm(df, new_vars_prefix="A", dtc="DTC", ignore_seconds_flag=True)
    assert col(quiet, "ATMF")[:4] == [None, None, "M", "H"]
    strict = derive_vars_dtm(df, new_vars_prefix="A", dtc="DTC", highest_imputation="n")
    assert col(strict, "ADTM")[1:] == [None] * 5


def test_dtm_min_dates_uses_datetime_range():
    df = pd.DataFrame({"DTC": ["2021-03-10", "2021-03", "2021-03-10T09:00"],
                       "TRTSDTM": pd.Series(pd.to_datetime(["2021-03-10 14:00"] * 3),
                                            dtype="datetime64[s]")})
    out = derive_vars_dtm(df, new_vars_prefix="AST", dtc="DTC", highest_imputation="M",
                          min_dates=["TRTSDTM"])
    # 10 March spans 00:00-23:59:59 and contains 14:00 -> 14:00; March likewise;
    # a collected time (09:00) is never moved.
    assert col(out, "ASTDTM") == [ts("2021-03-10 14:00"), ts("2021-03-10 14:00"),
                                  ts("2021-03-10 09:00")]
    assert col(out, "ASTTMF") == ["H", "H", "S"]
    assert col(out, "ASTDTF") == [None, "D", None]


def test_study_day_has_no_day_zero():
    adt = dates("2021-03-07", "2021-03-08", "2021-03-09", "2021-03-10", "2021-03-11",
                "2021-03-12", None)
    df = pd.DataFrame({"ADT": adt, "TRTSDT": dates(*["2021-03-10"] * 7)})
    out = derive_vars_dy(df, reference_date="TRTSDT", source_vars=["ADT"])
    # d = ADT - TRTSDT = -3..2 -> -3, -2, -1, then d + 1 = 1, 2, 3
    assert col(out, "ADY") == [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0, None]
    assert 0.0 not in col(out, "ADY")


def test_study_day_names_and_datetimes():
    df = pd.DataFrame({
        "ASTDTM": pd.Series(pd.to_datetime(["2021-03-09 23:59"]), dtype="datetime64[s]"),
        "AENDT": dates("2021-04-09"),
        "TRTSDT": pd.Series(pd.to_datetime(["2021-03-10 08:00"]), dtype="datetime64[s]"),
    })
    out = derive_vars_dy(df, reference_date="TRTSDT", source_vars=["ASTDTM", "AENDT"])
    # times ignored: 9 March is the day before -> -1; 9 April: 30 days after -> 31
    assert out["ASTDY"].tolist() == [-1.0] and out["AENDY"].tolist() == [31.0]
    named = derive_vars_dy(df, reference_date="TRTSDT", source_vars={"XDY": "AENDT"})
    assert named["XDY"].tolist() == [31.0]
    with pytest.raises(SpecError):
        derive_vars_dy(df.assign(VISIT=1), reference_date="TRTSDT", source_vars=["VISIT"])


def test_registered():
    assert DERIVATIONS["derive_vars_dt"] is derive_vars_dt
    assert DERIVATIONS["derive_vars_dy"] is derive_vars_dy
