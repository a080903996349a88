"""adam.derive.joined and adam.derive.records (issue 14): derive_vars_joined, filter_joined,
derive_var_obs_number, derive_locf_records, derive_summary_records."""
import numpy as np
import pandas as pd
import pytest

from cdisc.adam.derive import (DERIVATIONS, derive_locf_records, derive_summary_records,
                         derive_var_obs_number, derive_vars_joined, filter_joined)
from cdisc.errors import DataError, SpecError


def dt(*values):
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"), dtype="datetime64[s]")


def col(frame, name):
    return [None if pd.isna(v) else v for v in frame[name].tolist()]


@pytest.fixture
def ae():
    return pd.DataFrame({"USUBJID": ["1", "1", "2", "3", "1"],
                         "AESEQ": [1, 2, 1, 1, 3],
                         "ASTDTM": dt("2020-01-05T09:00", "2020-01-01T00:00",
                                      "2020-02-10T10:00", None, "2020-01-04T08:00")})


@pytest.fixture
def ex():
    return pd.DataFrame({"USUBJID": ["1", "1", "1", "2"],
                         "EXSEQ": [1, 2, 3, 1],
                         "EXSTDTM": dt("2020-01-02T08:00", "2020-01-04T08:00",
                                       "2020-01-06T08:00", "2020-02-11T08:00"),
                         "EXDOSE": [10.0, 20.0, 30.0, 5.0],
                         "EXDOSU": ["mg", "mg", "mg", "mg"]})


def test_last_dose_before_ae(ae, ex):
    out = derive_vars_joined(
        ae, dataset_add=ex, by_vars=["USUBJID"],
        new_vars={"LDOSEDTM": "EXSTDTM", "DOSEON": "EXDOSE", "DOSEU": "EXDOSU"},
        filter_join="EXSTDTM <= ASTDTM", order=["EXSTDTM", "EXSEQ"], mode="last",
        exist_flag="LDOSFL")
    # subject 1, AE 01-05 09:00: doses 01-02 and 01-04 are before it -> the last, 01-04 (20 mg)
    # subject 1, AE 01-01: no dose before -> missing
    # subject 2, AE 02-10: its only dose is 02-11, after -> missing
    # subject 3: no AE start, no EX -> missing
    # subject 1, AE 01-04 08:00: the dose at exactly 01-04 08:00 counts (<=) -> 20 mg
    assert col(out, "DOSEON") == [20.0, None, None, None, 20.0]
    assert col(out, "DOSEU") == ["mg", None, None, None, "mg"]
    assert out["LDOSEDTM"].tolist()[0] == pd.Timestamp("2020-01-04 08:00")
    assert out["LDOSEDTM"].isna().tolist() == [False, True, True, True, False]
    assert col(out, "LDOSFL") == ["Y", None, None, None, "Y"]
    assert list(out.index) == list(ae.index) and list(out["AESEQ"]) == [1, 2, 1, 1, 3]
    assert DERIVATIONS["derive_vars_joined"] is derive_vars_joined


def test_joined_clash_uses_join_suffix_and_missing_values():
    adlb = pd.DataFrame({"USUBJID": ["1", "1"], "ADY": [5.0, 20.0], "AVAL": [1.0, 2.0]})
    add = pd.DataFrame({"USUBJID": ["1", "1"], "ADY": [3.0, 10.0], "AVAL": [100.0, 200.0]})
    out = derive_vars_joined(adlb, dataset_add=add, by_vars=["USUBJID"],
                             new_vars={"PREVAL": "AVAL.join"}, filter_join="ADY.join < ADY",
                             order=["ADY.join"], mode="last",
                             missing_values={"PREVAL": -1})
    # ADY 5: only add ADY 3 is before -> 100; ADY 20: 3 and 10 before, last (10) -> 200
    assert out["PREVAL"].tolist() == [100.0, 200.0]
    out = derive_vars_joined(adlb, dataset_add=add, by_vars=["USUBJID"],
                             new_vars={"PREVAL": "AVAL.join"}, filter_join="ADY.join > 15",
                             missing_values={"PREVAL": -1.0})
    assert out["PREVAL"].tolist() == [-1.0, -1.0]
    with pytest.raises(SpecError, match="AVAL.join"):
        derive_vars_joined(adlb, dataset_add=add, by_vars=["USUBJID"],
                           new_vars={"PREVAL": "AVAL"})


def test_joined_several_matches_without_mode_is_data_error(ae, ex):
    with pytest.raises(DataError, match="more than one"):
        derive_vars_joined(ae, dataset_add=ex, by_vars=["USUBJID"],
                           new_vars={"LDOSEDTM": "EXSTDTM"}, filter_join="EXSTDTM <= ASTDTM")
    with pytest.raises(SpecError, match="order and mode"):
        derive_vars_joined(ae, dataset_add=ex, by_vars=["USUBJID"],
                           new_vars={"X": "EXDOSE"}, order=["EXSTDTM"])
    with pytest.raises(SpecError, match="already exist"):
        derive_vars_joined(ae, dataset_add=ex, by_vars=["USUBJID"], new_vars={"AESEQ": "EXSEQ"},
                           order=["EXSTDTM"], mode="last")


@pytest.fixture
def adrs():
    return pd.DataFrame({
        "USUBJID": ["1"] * 5 + ["2"] * 3,
        "ADT": dt("2020-01-01", "2020-01-10", "2020-02-01", "2020-02-10", "2020-03-20",
                  "2020-01-01", "2020-01-20", "2020-03-01"),
        "AVALC": ["PR", "CR", "NE", "CR", "PD", "CR", "PD", "CR"],
    })


def test_filter_joined_confirmed_response(adrs):
    out = filter_joined(
        adrs, by_vars=["USUBJID"], order=["ADT"], join_vars=["AVALC", "ADT"],
        join_type="after", filter="AVALC == 'CR'",
        first_cond_upper="AVALC.join == 'CR' and days_between(ADT, ADT.join) >= 28",
        filter_join="AVALC.join in ('CR', 'NE')")
    # 1: CR 01-10 -> first later CR >= 28 days is 02-10 (31 days); in between NE, CR: kept.
    #    CR 02-10 -> no later CR: dropped.
    # 2: CR 01-01 -> later CR 03-01 (60 days) but PD 01-20 in between: dropped.
    #    CR 03-01 -> nothing after: dropped.
    assert list(out.index) == [1]
    # join_mode any: CR 01-01 of subject 2 is kept (the confirming CR itself is CR)
    out = filter_joined(
        adrs, by_vars=["USUBJID"], order=["ADT"], join_vars=["AVALC", "ADT"],
        filter="AVALC == 'CR'",
        first_cond_upper="AVALC.join == 'CR' and days_between(ADT, ADT.join) >= 28",
        filter_join="AVALC.join in ('CR', 'NE')", join_mode="any")
    assert list(out.index) == [1, 5]


def test_filter_joined_within_n_days_and_before(adrs):
    # a record followed by any assessment within 20 days
    out = filter_joined(adrs, by_vars=["USUBJID"], order=["ADT"], join_vars=["ADT"],
                        filter_join="days_between(ADT, ADT.join) <= 20", join_mode="any")
    # 1: 01-01->01-10 (9) yes; 01-10->02-01 (22) no; 02-01->02-10 (9) yes; 02-10 -> 03-20 (39) no;
    #    03-20 last: no. 2: 01-01->01-20 (19) yes; 01-20->03-01 (41) no; last no.
    assert list(out.index) == [0, 2, 5]
    out = filter_joined(adrs, by_vars=["USUBJID"], order=["ADT"], join_vars=["AVALC"],
                        join_type="before", filter="AVALC == 'PD'",
                        filter_join="AVALC.join != 'CR'")
    # PD 03-20 (subject 1) has CRs before -> dropped; PD 01-20 (subject 2) has CR 01-01 -> dropped
    assert len(out) == 0
    with pytest.raises(SpecError, match="join_type"):
        filter_joined(adrs, by_vars=["USUBJID"], order=["ADT"], join_vars=["ADT"],
                      join_type="later")


def test_obs_number():
    d = pd.DataFrame({"USUBJID": ["2", "1", "1", "1"], "PARAMCD": ["A", "B", "A", "A"],
                      "ADT": dt("2020-01-01", "2020-01-01", "2020-01-05", "2020-01-02")})
    out = derive_var_obs_number(d, by_vars=["USUBJID"], order=["PARAMCD", "ADT"])
    # subject 1 sorted: (A, 01-02)=1, (A, 01-05)=2, (B, 01-01)=3; subject 2: 1
    assert out["ASEQ"].tolist() == [1.0, 3.0, 2.0, 1.0]
    d2 = pd.concat([d, d.iloc[[1]]], ignore_index=True)
    with pytest.raises(DataError, match="more than one record"):
        derive_var_obs_number(d2, by_vars=["USUBJID"], order=["PARAMCD", "ADT"])
    out = derive_var_obs_number(d2, by_vars=["USUBJID"], order=["PARAMCD", "ADT"],
                                check_unique=False)
    # the duplicate (row 4) ties with row 1 and follows it in row order
    assert out["ASEQ"].tolist() == [1.0, 3.0, 2.0, 1.0, 4.0]


@pytest.fixture
def advs():
    return pd.DataFrame({"USUBJID": ["1", "1", "1", "2", "2"], "PARAMCD": ["DBP"] * 5,
                         "PARAMN": [1.0] * 5, "AVISITN": [0.0, 2.0, 4.0, 0.0, 4.0],
                         "AVISIT": ["BASELINE", "WEEK 2", "WEEK 4", "BASELINE", "WEEK 4"],
                         "AVAL": [80.0, np.nan, 90.0, 70.0, 75.0]})


@pytest.fixture
def visits():
    one = pd.DataFrame({"PARAMCD": "DBP", "AVISITN": [0.0, 2.0, 4.0, 6.0],
                        "AVISIT": ["BASELINE", "WEEK 2", "WEEK 4", "WEEK 6"]})
    return pd.concat([one.assign(USUBJID="1"), one.assign(USUBJID="2"),
                      one.assign(USUBJID="3")], ignore_index=True)


def test_locf_add(advs, visits):
    out = derive_locf_records(advs, dataset_ref=visits, by_vars=["USUBJID", "PARAMCD"],
                              order=["AVISITN"], keep_vars=["PARAMN"])
    new = out[out["DTYPE"] == "LOCF"].sort_values(["USUBJID", "AVISITN"])
    # 1: WEEK 2 has a missing value -> carried 80 (baseline); WEEK 6 absent -> 90 (week 4)
    # 2: WEEK 2 absent -> 70; WEEK 6 absent -> 75. 3: no observation at all -> nothing.
    assert list(zip(new["USUBJID"], new["AVISIT"], new["AVAL"])) == [
        ("1", "WEEK 2", 80.0), ("1", "WEEK 6", 90.0), ("2", "WEEK 2", 70.0),
        ("2", "WEEK 6", 75.0)]
    assert new["PARAMN"].tolist() == [1.0] * 4
    assert len(out) == 5 + 4 and out["DTYPE"].isna().sum() == 5


def test_locf_update(advs, visits):
    out = derive_locf_records(advs, dataset_ref=visits, by_vars=["USUBJID", "PARAMCD"],
                              order=["AVISITN"], imputation="update")
    # the missing WEEK 2 record of subject 1 is replaced, not duplicated
    assert len(out) == 4 + 4
    w2 = out[(out["USUBJID"] == "1") & (out["AVISIT"] == "WEEK 2")]
    assert w2["AVAL"].tolist() == [80.0] and w2["DTYPE"].tolist() == ["LOCF"]
    with pytest.raises(SpecError, match="imputation"):
        derive_locf_records(advs, dataset_ref=visits, by_vars=["USUBJID"], order=["AVISITN"],
                            imputation="carry")


def test_summary_records_average_of_triplicates():
    eg = pd.DataFrame({"USUBJID": ["1"] * 4 + ["2"] * 2, "PARAMCD": ["QT"] * 6,
                       "AVISIT": ["BASELINE"] * 3 + ["WEEK 1"] + ["BASELINE"] * 2,
                       "AVAL": [400.0, 410.0, 420.0, 430.0, 380.0, np.nan],
                       "ADT": dt("2020-01-01", "2020-01-01", "2020-01-02", "2020-01-08",
                                 "2020-01-01", "2020-01-01")})
    out = derive_summary_records(
        eg, by_vars=["USUBJID", "PARAMCD", "AVISIT"],
        summaries={"AVAL": "mean", "ADT": {"fun": "max", "var": "ADT"},
                   "NREC": {"fun": "count", "var": "AVAL"}},
        set_values_to={"DTYPE": "AVERAGE"}, min_records=2)
    new = out[out["DTYPE"] == "AVERAGE"]
    # 1 BASELINE: (400+410+420)/3 = 410, last date 01-02; 1 WEEK 1: one record < 2 -> none;
    # 2 BASELINE: mean of 380 and missing = 380 (missing ignored), count 1
    assert new["AVAL"].tolist() == [410.0, 380.0]
    assert new["NREC"].tolist() == [3, 1]
    assert new["ADT"].tolist() == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-01")]
    assert len(out) == 8
    with pytest.raises(SpecError, match="fun must be"):
        derive_summary_records(eg, by_vars=["USUBJID"], summaries={"AVAL": "geomean"})


def test_joined_after_within_the_same_dataset(adrs):
    out = derive_vars_joined(adrs, dataset_add=adrs, by_vars=["USUBJID"],
                             new_vars={"NEXTRSP": "AVALC.join", "NEXTDT": "ADT.join"},
                             join_type="after", order=["ADT"], mode="first")
    # the next assessment of the same subject; the last one of each subject has none
    assert col(out, "NEXTRSP") == ["CR", "NE", "CR", "PD", None, "PD", "CR", None]
    # the first later CR at least 28 days on (first_cond_upper), i.e. the confirmation date
    out = derive_vars_joined(adrs, dataset_add=adrs, by_vars=["USUBJID"],
                             new_vars={"CONFDT": "ADT.join"}, join_type="after",
                             order=["ADT"], mode="last",
                             first_cond_upper="AVALC.join == 'CR' and "
                                              "days_between(ADT, ADT.join) >= 28")
    # PR 01-01 -> CR 02-10 (40 days; CR 01-10 is only 9 days on); CR 01-10 -> 02-10 (31);
    # NE 02-01 -> none (02-10 is 9 days on); subject 2: CR 01-01 -> CR 03-01; PD 01-20 -> 03-01
    assert days_list(out["CONFDT"]) == ["02-10", "02-10", None, None, None, "03-01", "03-01", None]
    with pytest.raises(SpecError, match="SELF"):
        derive_vars_joined(adrs, dataset_add=adrs.copy(), by_vars=["USUBJID"],
                           new_vars={"X": "AVALC.join"}, join_type="after", order=["ADT"],
                           mode="first")


def days_list(series):
    return [None if pd.isna(v) else v.strftime("%m-%d") for v in series]
