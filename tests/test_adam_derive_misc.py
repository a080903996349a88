"""Issue 14 derivations: create_single_dose_dataset, compute_duration / ages, shift,
on-treatment flag, derive_param_computed with a formula, the max_dates fix of
derive_vars_dtm, derive_param_tte without a start date, merged exist flag defaults."""
import warnings

import numpy as np
import pandas as pd
import pytest

from cdisc.adam.derive import (DERIVATIONS, MissingStartWarning, compute_duration,
                         create_single_dose_dataset, derive_param_computed, derive_param_tte,
                         derive_var_age_years, derive_var_merged_exist_flag,
                         derive_var_ontrtfl, derive_var_shift, derive_vars_aage,
                         derive_vars_dtm, derive_vars_duration)
from cdisc.errors import DataError, SpecError


def dt(*values):
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"), dtype="datetime64[s]")


def col(frame, name):
    return [None if pd.isna(v) else v for v in frame[name].tolist()]


def days(series):
    return [None if pd.isna(v) else v.strftime("%m-%d") for v in series]


# --------------------------------------------------------------- single doses

def test_single_doses_admiral_example():
    # admiral's documented example: Q2D 01-01..01-07, Q3D 01-08..01-14, EVERY 2 WEEKS 01-15..01-29
    ex = pd.DataFrame({"USUBJID": ["P01"] * 4,
                       "EXDOSFRQ": ["Q2D", "Q3D", "EVERY 2 WEEKS", "ONCE"],
                       "ASTDT": dt("2021-01-01", "2021-01-08", "2021-01-15", "2021-02-01"),
                       "AENDT": dt("2021-01-07", "2021-01-14", "2021-01-29", "2021-02-01"),
                       "EXDOSE": [10.0, 20.0, 30.0, 40.0]})
    out = create_single_dose_dataset(ex)
    # Q2D: 7 days x 1/2 = 3.5 -> 4 doses on days +0, +2, +4, +6;
    # Q3D: 7 x 1/3 = 2.33 -> 3 doses +0, +3, +6; 2-weekly: (15 days / 7) x 1/2 = 1.07 -> 2 doses
    # +0, +14; the ONCE record first, unchanged
    assert days(out["ASTDT"]) == ["02-01", "01-01", "01-03", "01-05", "01-07", "01-08",
                                  "01-11", "01-14", "01-15", "01-29"]
    assert days(out["AENDT"]) == days(out["ASTDT"])
    assert out["EXDOSE"].tolist() == [40.0] + [10.0] * 4 + [20.0] * 3 + [30.0] * 2
    assert set(out["EXDOSFRQ"]) == {"ONCE"}
    assert DERIVATIONS["create_single_dose_dataset"] is create_single_dose_dataset


def test_single_doses_bid_and_qd_with_times():
    ex = pd.DataFrame({"USUBJID": ["1", "2"], "EXDOSFRQ": ["BID", "QD"], "NFRLT": [0.0, 0.0],
                       "ASTDT": dt("2021-01-01", "2021-03-01"),
                       "ASTDTM": dt("2021-01-01T08:00", "2021-03-01T09:00"),
                       "AENDT": dt("2021-01-02", "2021-03-03"),
                       "AENDTM": dt("2021-01-02T20:00", "2021-03-03T10:30")})
    out = create_single_dose_dataset(ex, start_datetime="ASTDTM", end_datetime="AENDTM",
                                     nominal_time="NFRLT")
    bid = out[out["USUBJID"] == "1"]
    # BID: (36 h + 1) x 1/12 = 3.08 -> 4 doses every 12 h: 01-01 08:00, 20:00, 01-02 08:00, 20:00
    assert [t.strftime("%d %H:%M") for t in bid["ASTDTM"]] == ["01 08:00", "01 20:00",
                                                               "02 08:00", "02 20:00"]
    assert days(bid["ASTDT"]) == ["01-01", "01-01", "01-02", "01-02"]
    assert bid["NFRLT"].tolist() == [0.0, 12.0, 24.0, 36.0]
    assert (bid["AENDTM"] == bid["ASTDTM"]).all()
    qd = out[out["USUBJID"] == "2"]
    # QD: 3 days -> 3 doses at 09:00; each dose's end time is the period's end time (10:30)
    assert [t.strftime("%d %H:%M") for t in qd["ASTDTM"]] == ["01 09:00", "02 09:00", "03 09:00"]
    assert [t.strftime("%d %H:%M") for t in qd["AENDTM"]] == ["01 10:30", "02 10:30", "03 10:30"]


def test_single_doses_bad_input():
    ex = pd.DataFrame({"EXDOSFRQ": ["QD", "Q5W"], "ASTDT": dt("2021-01-01", "2021-01-01"),
                       "AENDT": dt("2021-01-02", "2021-01-02")})
    with pytest.raises(SpecError, match="Q5W"):
        create_single_dose_dataset(ex)
    ex["EXDOSFRQ"] = ["QD", "BID"]
    with pytest.raises(SpecError, match="start_datetime"):
        create_single_dose_dataset(ex)
    ex["EXDOSFRQ"] = ["QD", "QD"]
    ex.loc[1, "AENDT"] = pd.NaT
    with pytest.raises(DataError, match="record 2"):
        create_single_dose_dataset(ex)
    ex.loc[1, "AENDT"] = pd.Timestamp("2020-12-31")
    with pytest.raises(DataError, match="record 2: AENDT 2020-12-31 is before ASTDT"):
        create_single_dose_dataset(ex)
    # a study's own frequency table
    ex.loc[1, "AENDT"] = pd.Timestamp("2021-01-05")
    ex["EXDOSFRQ"] = ["Q5W", "QD"]
    out = create_single_dose_dataset(ex, lookup_table=[
        {"value": "Q5W", "dose_count": "1/5", "dose_window": "WEEK"},
        {"value": "QD", "dose_count": 1, "dose_window": "DAY"}])
    assert len(out) == 1 + 5


# --------------------------------------------------------------- durations and ages

def test_compute_duration_admiral_examples():
    s = dt("2020-12-06T15:00", "2020-12-06T09:00")
    e = dt("2020-12-24T08:15", "2020-12-06T13:30")
    # admiral examples: days (integer, inclusive) 19; float days 17.71875; hours 4.5
    assert compute_duration(s[:1], e[:1]).tolist() == [19.0]
    assert compute_duration(s[:1], e[:1], floor_in=False, add_one=False).tolist() == [17.71875]
    assert compute_duration(s[1:], e[1:], out_unit="hours", floor_in=False,
                            add_one=False).tolist() == [4.5]
    # age: born 1984-09-06, on 2020-02-24 -> 35 completed years
    assert compute_duration(dt("1984-09-06"), dt("2020-02-24"), out_unit="years",
                            add_one=False, trunc_out=True).tolist() == [35.0]
    # before the start: negative, no +1
    assert compute_duration(dt("2020-01-10"), dt("2020-01-01")).tolist() == [-9.0]


def test_derive_vars_aage_birthdays():
    adsl = pd.DataFrame({"BRTHDT": dt("2000-03-15", "2000-03-15", "2000-02-29", "2000-02-29", None),
                         "RANDDT": dt("2021-03-14", "2021-03-15", "2021-02-28", "2021-03-01",
                                      "2021-01-01")})
    out = derive_vars_aage(adsl)
    # the day before the 21st birthday -> 20; on it -> 21; 29 Feb birthday: 28 Feb -> 20,
    # 1 March -> 21; missing birth date -> missing
    assert col(out, "AAGE") == [20.0, 21.0, 20.0, 21.0, None]
    assert col(out, "AAGEU") == ["YEARS"] * 4 + [None]
    adsl.loc[0, "RANDDT"] = pd.Timestamp("1999-01-01")
    with pytest.raises(DataError, match="record 1"):
        derive_vars_aage(adsl)
    m = derive_vars_aage(adsl.iloc[1:2], age_unit="months")
    assert m["AAGE"].tolist() == [252.0] and m["AAGEU"].tolist() == ["MONTHS"]


def test_age_years_and_duration():
    dm = pd.DataFrame({"AGE": [24.0, 30.0, 365.25, 5.0], "AGEU": ["MONTHS", "YEARS", "DAYS", "WEEKS"]})
    out = derive_var_age_years(dm)
    # 24 months = 2 years; 365.25 days = 1 year; 5 weeks = 35 / 365.25 years
    assert out["AAGE"].round(6).tolist() == [2.0, 30.0, 1.0, round(35 / 365.25, 6)]
    dm["AGEU"] = ["MONTHS", "YEARS", "FORTNIGHTS", None]
    with pytest.raises(DataError, match="FORTNIGHTS"):
        derive_var_age_years(dm)
    ae = pd.DataFrame({"ASTDT": dt("2021-01-01", "2021-01-01"), "AENDT": dt("2021-01-10", None)})
    out = derive_vars_duration(ae, new_var="ADURN", new_var_unit="ADURU", start_date="ASTDT",
                               end_date="AENDT")
    assert col(out, "ADURN") == [10.0, None] and col(out, "ADURU") == ["DAYS", None]


# --------------------------------------------------------------- shift and on-treatment

def test_shift():
    d = pd.DataFrame({"BNRIND": ["NORMAL", "LOW", None, "HIGH"],
                      "ANRIND": ["HIGH", "", "NORMAL", None]})
    out = derive_var_shift(d, new_var="SHIFT1", from_var="BNRIND", to_var="ANRIND")
    assert out["SHIFT1"].tolist() == ["NORMAL to HIGH", "LOW to NULL", "NULL to NORMAL",
                                      "HIGH to NULL"]
    out = derive_var_shift(d, new_var="SHIFT1", from_var="BNRIND", to_var="ANRIND",
                           missing_value="MISSING", sep_val=" -> ")
    assert out["SHIFT1"].tolist()[1] == "LOW -> MISSING"


def test_ontrtfl_window_and_pre_timepoint():
    d = pd.DataFrame({
        "ADT": dt("2020-01-01", "2020-01-01", "2019-12-31", "2020-02-10", "2020-02-11",
                  None, "2020-01-05"),
        "TRTSDT": dt(*["2020-01-01"] * 6, None),
        "TRTEDT": dt(*["2020-01-31"] * 6, None),
        "ATPT": ["PRE-DOSE", "POST-DOSE", None, None, None, None, None]})
    out = derive_var_ontrtfl(d, start_date="ADT", ref_start_date="TRTSDT",
                             ref_end_date="TRTEDT", ref_end_window=10,
                             filter_pre_timepoint="ATPT == 'PRE-DOSE'")
    # day 1 pre-dose -> not on treatment; day 1 post-dose -> Y; before -> no;
    # 02-10 = last dose 01-31 + 10 -> Y; 02-11 -> no; missing ADT -> Y; not treated -> no
    assert col(out, "ONTRTFL") == [None, "Y", None, "Y", None, "Y", None]
    out = derive_var_ontrtfl(d, start_date="ADT", ref_start_date="TRTSDT",
                             ref_end_date="TRTEDT")
    assert col(out, "ONTRTFL") == ["Y", "Y", None, None, None, "Y", None]
    # a missing last-dose date: not flagged after day 1 (admiral), no ref_end_date: flagged
    d.loc[3, "TRTEDT"] = pd.NaT
    assert col(derive_var_ontrtfl(d, start_date="ADT", ref_start_date="TRTSDT",
                                  ref_end_date="TRTEDT"), "ONTRTFL")[3] is None
    assert col(derive_var_ontrtfl(d, start_date="ADT", ref_start_date="TRTSDT"),
               "ONTRTFL")[3] == "Y"


def test_ontrtfl_interval_records_span_period():
    cm = pd.DataFrame({"ASTDT": dt("2019-12-01", "2019-12-01", "2019-12-01", None),
                       "AENDT": dt("2019-12-15", "2020-01-05", None, "2019-12-20"),
                       "TRTSDT": dt(*["2020-01-01"] * 4), "TRTEDT": dt(*["2020-03-01"] * 4)})
    out = derive_var_ontrtfl(cm, start_date="ASTDT", end_date="AENDT", ref_start_date="TRTSDT",
                             ref_end_date="TRTEDT", span_period=True)
    # ended before first dose -> no; spans first dose -> Y; ongoing -> Y;
    # unknown start but ended before first dose -> no (rule 2 before rule 3)
    assert col(out, "ONTRTFL") == [None, "Y", "Y", None]
    out = derive_var_ontrtfl(cm, start_date="ASTDT", end_date="AENDT", ref_start_date="TRTSDT")
    assert col(out, "ONTRTFL") == [None, None, None, None]
    with pytest.raises(SpecError, match="end_date"):
        derive_var_ontrtfl(cm, start_date="ASTDT", ref_start_date="TRTSDT", span_period=True)


# --------------------------------------------------------------- computed parameter

@pytest.fixture
def advs():
    return pd.DataFrame({
        "USUBJID": ["1", "1", "1", "1", "2", "2", "3"],
        "PARAMCD": ["HEIGHT", "WEIGHT", "WEIGHT", "SYSBP", "WEIGHT", "WEIGHT", "HEIGHT"],
        "AVISIT": ["SCREENING", "BASELINE", "WEEK 2", "BASELINE", "BASELINE", "WEEK 2",
                   "SCREENING"],
        "AVAL": [170.0, 70.0, 72.0, 120.0, 80.0, np.nan, 150.0]})


def test_bmi_formula_with_constant_height(advs):
    out = derive_param_computed(
        advs, by_vars=["USUBJID", "AVISIT"], parameters=["WEIGHT"],
        constant_by_vars=["USUBJID"], constant_parameters=["HEIGHT"],
        formula="AVAL.WEIGHT / ((AVAL.HEIGHT / 100) * (AVAL.HEIGHT / 100))",
        set_values_to={"PARAMCD": "BMI", "PARAM": "Body Mass Index (kg/m2)"})
    bmi = out[out["PARAMCD"] == "BMI"]
    # 1: 70 / 1.7^2 = 24.2215..., 72 / 2.89 = 24.9135...; 2: no height -> none;
    # 3: height but no weight -> none
    assert bmi["AVISIT"].tolist() == ["BASELINE", "WEEK 2"]
    assert bmi["AVAL"].round(4).tolist() == [24.2215, 24.9135]
    assert len(out) == len(advs) + 2


def test_formula_keep_nas_and_errors(advs):
    advs.loc[len(advs)] = ["2", "HEIGHT", "SCREENING", 180.0]
    out = derive_param_computed(
        advs, by_vars=["USUBJID", "AVISIT"], parameters=["WEIGHT"],
        constant_by_vars=["USUBJID"], constant_parameters=["HEIGHT"],
        formula="AVAL.WEIGHT / ((AVAL.HEIGHT / 100) * (AVAL.HEIGHT / 100))",
        set_values_to={"PARAMCD": "BMI"}, keep_nas=True)
    bmi = out[out["PARAMCD"] == "BMI"]
    # 2 WEEK 2 has a missing weight: kept with a missing value only with keep_nas
    assert col(bmi, "AVAL")[2] == pytest.approx(80 / 1.8 ** 2) and col(bmi, "AVAL")[3] is None
    with pytest.raises(SpecError, match="VAR.PARAMCD"):
        derive_param_computed(advs, by_vars=["USUBJID", "AVISIT"], parameters=["WEIGHT"],
                              formula="AVAL.WEIGHT / AVAL.HGT", set_values_to={"PARAMCD": "X"})
    with pytest.raises(SpecError, match="either operation or formula"):
        derive_param_computed(advs, by_vars=["USUBJID"], parameters=["WEIGHT"],
                              set_values_to={"PARAMCD": "X"})
    # two parameters on the same visit, no constant: MAP = (SYSBP + 2 x DIABP) / 3
    bp = pd.DataFrame({"USUBJID": ["1", "1"], "AVISIT": ["BASELINE"] * 2,
                       "PARAMCD": ["SYSBP", "DIABP"], "AVAL": [120.0, 75.0]})
    out = derive_param_computed(bp, by_vars=["USUBJID", "AVISIT"], parameters=["SYSBP", "DIABP"],
                                formula="(AVAL.SYSBP + 2 * AVAL.DIABP) / 3",
                                set_values_to={"PARAMCD": "MAP"})
    assert out["AVAL"].tolist()[-1] == 90.0      # (120 + 150) / 3


# --------------------------------------------------------------- max_dates fix

def test_max_date_bound_caps_datetime_at_end_of_day():
    d = pd.DataFrame({"AENDTC": ["2020-12", "2020-12-15", "2020-12-15T08:00", "2020-11"],
                      "DCUTDT": dt(*["2020-12-15"] * 4),
                      "DCUTDTM": dt(*["2020-12-15T12:00"] * 4)})
    out = derive_vars_dtm(d, new_vars_prefix="AEN", dtc="AENDTC", highest_imputation="M",
                          date_imputation="last", time_imputation="last", max_dates=["DCUTDT"])
    # a date bound is the whole day: 2020-12 -> 12-31 23:59:59 capped to 12-15 23:59:59 (not
    # 00:00:00); 12-15 -> 23:59:59; a collected time stays (seconds imputed: 08:00:59);
    # 2020-11 is before the bound -> 11-30 23:59:59
    assert [t.strftime("%m-%d %H:%M:%S") for t in out["AENDTM"]] == [
        "12-15 23:59:59", "12-15 23:59:59", "12-15 08:00:59", "11-30 23:59:59"]
    # a datetime bound caps at its own time
    out = derive_vars_dtm(d, new_vars_prefix="AEN", dtc="AENDTC", highest_imputation="M",
                          date_imputation="last", time_imputation="last", max_dates=["DCUTDTM"])
    assert out["AENDTM"].iloc[0].strftime("%m-%d %H:%M:%S") == "12-15 12:00:00"


# --------------------------------------------------------------- traps

def _tte(adsl, **kw):
    ev = [{"dataset_name": "adsl", "date": "DTHDT", "filter": "present(DTHDT)",
           "set_values_to": {"EVNTDESC": "DEATH"}}]
    cn = [{"dataset_name": "adsl", "date": "LSTALVDT", "censor": 1,
           "set_values_to": {"CNSDTDSC": "LAST KNOWN ALIVE"}}]
    return derive_param_tte(adsl, source_datasets={"adsl": adsl}, start_date="TRTSDT",
                            event_conditions=ev, censor_conditions=cn,
                            set_values_to={"PARAMCD": "OS", "PARAM": "Overall Survival"}, **kw)


def test_tte_subject_without_start_date():
    adsl = pd.DataFrame({"STUDYID": ["S"] * 3, "USUBJID": ["1", "2", "3"],
                         "TRTSDT": dt("2020-01-01", None, "2020-01-01"),
                         "DTHDT": dt("2020-01-10", None, None),
                         "LSTALVDT": dt("2020-01-10", "2020-02-01", "2020-03-01")})
    with pytest.raises(DataError, match="1 subject"):
        _tte(adsl)
    with pytest.warns(MissingStartWarning, match="1 subject.*USUBJID=2"):
        out = _tte(adsl, on_missing_start="drop")
    # death on day 10 -> AVAL 10, CNSR 0; subject 3 censored 03-01 -> 31 + 29 + 1 = 61
    assert out["USUBJID"].tolist() == ["1", "3"]
    assert out["AVAL"].tolist() == [10.0, 61.0] and out["CNSR"].tolist() == [0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(_tte(adsl, filter_adsl="present(TRTSDT)")) == 2   # no warning
    with pytest.raises(SpecError, match="on_missing_start"):
        _tte(adsl, on_missing_start="skip")


def test_merged_exist_flag_defaults_and_admiral_form():
    adsl = pd.DataFrame({"USUBJID": ["1", "2", "3"]})
    ae = pd.DataFrame({"USUBJID": ["1", "2"], "AESER": ["Y", "N"]})
    out = derive_var_merged_exist_flag(adsl, dataset_add=ae, by_vars=["USUBJID"],
                                       new_var="SAEFL", condition="AESER == 'Y'")
    # the toolkit default: Y / N / N (no AE at all)
    assert col(out, "SAEFL") == ["Y", "N", "N"]
    out = derive_var_merged_exist_flag(adsl, dataset_add=ae, by_vars=["USUBJID"],
                                       new_var="SAEFL", condition="AESER == 'Y'",
                                       false_value=None)
    # admiral's defaults (false_value = NA, missing_value = NA)
    assert col(out, "SAEFL") == ["Y", None, None]
