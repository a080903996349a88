"""adam.derive.params: extreme records (best response), computed and exist-flag parameters."""
import pandas as pd
import pytest

from cdisc.adam.derive import (DERIVATIONS, derive_extreme_records, derive_param_computed,
                         derive_param_exist_flag)
from cdisc.errors import DataError, SpecError

RANKING = {"CR": 1, "CRH": 2, "CRI": 3, "PR": 4, "NR": 5, "PD": 6}


def dates(*values):
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[s]").to_numpy()


def col(frame, name):
    return [None if pd.isna(v) else v for v in frame[name].tolist()]


@pytest.fixture
def adrs():
    return pd.DataFrame({
        "USUBJID": ["1", "1", "1", "2", "2", "2", "3"],
        "PARAMCD": ["OVR"] * 7,
        "AVALC": ["PR", "CR", "PD", "NE", "CRI", "CRI", "NE"],
        "ADT": dates("2021-04-07", "2021-05-05", "2021-06-02", "2021-04-07", "2021-05-05",
                     "2021-04-20", "2021-04-07"),
    })


def test_best_overall_response(adrs):
    adsl = pd.DataFrame({"USUBJID": ["1", "2", "3", "4"]})
    out = derive_extreme_records(
        adrs, by_vars=["USUBJID"], mode="first", filter="PARAMCD == 'OVR'",
        order=[{"var": "AVALC", "ranking": RANKING}, "ADT"],
        set_values_to={"PARAMCD": "BOR", "PARAM": "Best Overall Response"},
        dataset_ref=adsl, missing_values={"AVALC": "MISSING"})
    assert len(out) == 7 + 4 and list(out.index) == list(range(11))
    bor = out[out["PARAMCD"] == "BOR"]
    # 1: CR (rank 1) beats PR/PD; 2: two CRI, the earlier (04-20) wins; NE is unranked
    # 3: only NE (unranked sorts as missing, but is the only candidate); 4: no record
    assert col(bor, "USUBJID") == ["1", "2", "3", "4"]
    assert col(bor, "AVALC") == ["CR", "CRI", "NE", "MISSING"]
    assert col(bor, "ADT") == [pd.Timestamp("2021-05-05"), pd.Timestamp("2021-04-20"),
                               pd.Timestamp("2021-04-07"), None]
    assert col(bor, "PARAM") == ["Best Overall Response"] * 4
    assert col(out, "PARAM")[:7] == [None] * 7     # source records untouched
    assert "PARAM" not in adrs.columns


def test_extreme_records_from_dataset_add_and_keep_vars(adrs):
    out = derive_extreme_records(None, dataset_add=adrs, by_vars=["USUBJID"],
                                 order=["ADT"], mode="last", keep_source_vars=["ADT"],
                                 set_values_to={"DTYPE": "LOV"})
    # last assessment: 1 -> 06-02, 2 -> 05-05, 3 -> 04-07; only USUBJID, ADT, DTYPE kept
    assert list(out.columns) == ["USUBJID", "ADT", "DTYPE"]
    assert col(out, "ADT") == [pd.Timestamp("2021-06-02"), pd.Timestamp("2021-05-05"),
                               pd.Timestamp("2021-04-07")]
    with pytest.raises(SpecError, match="constant"):
        derive_extreme_records(adrs, by_vars=["USUBJID"], order=["ADT"], mode="last",
                               set_values_to={"PARAM": ["a"]})


@pytest.fixture
def adlb():
    return pd.DataFrame({
        "USUBJID": ["1", "1", "2", "3", "3", "1"],
        "AVISIT": ["D28"] * 5 + ["D56"],
        "PARAMCD": ["CD4", "CD8", "CD4", "CD4", "CD8", "CD4"],
        "AVAL": [600.0, 300.0, 500.0, 200.0, 0.0, 700.0],
    })


def test_param_computed_ratio_and_others(adlb):
    out = derive_param_computed(adlb, by_vars=["USUBJID", "AVISIT"], parameters=["CD4", "CD8"],
                                operation="ratio",
                                set_values_to={"PARAMCD": "CD48R", "PARAM": "CD4/CD8 Ratio"})
    new = out[out["PARAMCD"] == "CD48R"]
    # 1/D28: 600/300 = 2; 3/D28: 200/0 -> missing; 2 and 1/D56 lack CD8 -> no record
    assert col(new, "USUBJID") == ["1", "3"]
    assert col(new, "AVAL") == [2.0, None]
    assert len(out) == len(adlb) + 2
    diff = derive_param_computed(adlb, by_vars=["USUBJID", "AVISIT"], parameters=["CD4", "CD8"],
                                 operation="difference", set_values_to={"PARAMCD": "D"})
    assert col(diff[diff["PARAMCD"] == "D"], "AVAL") == [300.0, 200.0]
    mean = derive_param_computed(adlb, by_vars=["USUBJID", "AVISIT"],
                                 parameters=["CD4", "CD8"], operation="mean", scale=2,
                                 set_values_to={"PARAMCD": "M"})
    # (600 + 300) / 2 * 2 = 900; (200 + 0) / 2 * 2 = 200
    assert col(mean[mean["PARAMCD"] == "M"], "AVAL") == [900.0, 200.0]


def test_param_computed_errors(adlb):
    dup = pd.concat([adlb, adlb.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError, match="USUBJID=1"):
        derive_param_computed(dup, by_vars=["USUBJID", "AVISIT"], parameters=["CD4", "CD8"],
                              operation="ratio", set_values_to={"PARAMCD": "R"})
    with pytest.raises(DataError, match="already exists"):
        derive_param_computed(adlb, by_vars=["USUBJID"], parameters=["CD4", "CD8"],
                              operation="sum", set_values_to={"PARAMCD": "CD4"})
    with pytest.raises(SpecError, match="operation"):
        derive_param_computed(adlb, by_vars=["USUBJID"], parameters=["CD4", "CD8"],
                              operation="AVAL.CD4 / 2", set_values_to={"PARAMCD": "R"})
    with pytest.raises(SpecError, match="exactly two"):
        derive_param_computed(adlb, by_vars=["USUBJID"], parameters=["CD4"],
                              operation="ratio", set_values_to={"PARAMCD": "R"})


def test_param_exist_flag_responders(adrs):
    adsl = pd.DataFrame({"STUDYID": ["S"] * 4, "USUBJID": ["1", "2", "3", "4"]})
    adrs = adrs.assign(STUDYID="S")
    values = {"PARAMCD": "CR28", "PARAM": "CR/CRH/CRI by Day 28"}
    out = derive_param_exist_flag(adsl, dataset_add=adrs, by_vars=["STUDYID", "USUBJID"],
                                  condition="AVALC in ('CR', 'CRH', 'CRI')",
                                  filter_add="ADT <= '2021-05-01'", set_values_to=values)
    # by 05-01: 1 had PR only -> N; 2 had CRI on 04-20 -> Y; 3 NE -> N; 4 none -> N
    assert col(out, "AVALC") == ["N", "Y", "N", "N"]
    assert col(out, "AVAL") == [0.0, 1.0, 0.0, 0.0]
    assert col(out, "PARAMCD") == ["CR28"] * 4 and len(out) == len(adsl)
    assert list(out.columns[:4]) == ["STUDYID", "USUBJID", "AVALC", "AVAL"]
    missing = derive_param_exist_flag(adsl, dataset_add=adrs, by_vars=["STUDYID", "USUBJID"],
                                      condition="AVALC in ('CR', 'CRH', 'CRI')",
                                      set_values_to=values, missing_value=None)
    # no date limit: 1 has CR -> Y; subject 4 has no record -> missing AVALC and AVAL
    assert col(missing, "AVALC") == ["Y", "Y", "N", None]
    assert col(missing, "AVAL") == [1.0, 1.0, 0.0, None]


def test_registered():
    for name in ("derive_extreme_records", "derive_param_computed", "derive_param_exist_flag"):
        assert callable(DERIVATIONS[name])
