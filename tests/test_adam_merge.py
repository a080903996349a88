"""adam.derive.merge: merged variables, exist flags, summaries."""
import pandas as pd
import pytest

from cdisc.adam.derive import (DERIVATIONS, derive_var_merged_exist_flag,
                         derive_var_merged_summary, derive_vars_merged)
from cdisc.errors import DataError, SpecError


def dates(*values):
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[s]").to_numpy()


def col(frame, name):
    return [None if pd.isna(v) else v for v in frame[name].tolist()]


@pytest.fixture
def adsl():
    return pd.DataFrame({"STUDYID": ["S"] * 3, "USUBJID": ["1", "2", "3"],
                         "TRTSDT": dates("2021-03-10", "2021-04-01", None),
                         "DTHFL": ["Y", None, None]})


@pytest.fixture
def ae():
    return pd.DataFrame({"STUDYID": ["S"] * 4, "USUBJID": ["2", "1", "4", "2"],
                         "AESEQ": [1, 1, 1, 2], "AESER": ["N", "Y", "Y", "N"],
                         "AETOXGRN": [1, 3, 2, 2]}, index=[7, 8, 9, 6])


def test_merge_keeps_rows_order_and_index(adsl, ae):
    out = derive_vars_merged(ae, dataset_add=adsl, by_vars=["STUDYID", "USUBJID"],
                             new_vars=["TRTSDT", "DTHFL"], missing_values={"DTHFL": "N"})
    assert list(out.index) == [7, 8, 9, 6] and len(out) == 4
    assert col(out, "TRTSDT") == [pd.Timestamp("2021-04-01"), pd.Timestamp("2021-03-10"),
                                  None, pd.Timestamp("2021-04-01")]
    # subject 4 is not in ADSL -> missing_values; subject 2 is in ADSL with DTHFL missing
    assert col(out, "DTHFL") == [None, "Y", "N", None]
    assert "TRTSDT" not in ae.columns


def test_merge_rename_filter_order_mode(adsl):
    ex = pd.DataFrame({"USUBJID": ["1", "1", "2", "1"],
                       "EXSTDT": dates("2021-03-10", "2021-03-24", "2021-04-01", "2021-03-17"),
                       "EXDOSE": [1e6, 1e6, 0.0, 3e6]})
    out = derive_vars_merged(adsl, dataset_add=ex, by_vars=["USUBJID"],
                             new_vars={"TRTEDT": "EXSTDT", "LASTDOSE": "EXDOSE"},
                             filter_add="EXDOSE > 0", order=["EXSTDT"], mode="last")
    # subject 1 last dose 03-24 (1e6); subject 2's only record has dose 0 -> filtered
    assert col(out, "TRTEDT") == [pd.Timestamp("2021-03-24"), None, None]
    assert col(out, "LASTDOSE") == [1e6, None, None]
    renamed = derive_vars_merged(adsl, dataset_add=ex.rename(columns={"USUBJID": "SUBJ"}),
                                 by_vars={"USUBJID": "SUBJ"}, new_vars={"FIRSTDT": "EXSTDT"},
                                 order=["EXSTDT"], mode="first")
    assert col(renamed, "FIRSTDT")[:2] == [pd.Timestamp("2021-03-10"),
                                           pd.Timestamp("2021-04-01")]


def test_merge_duplicates_are_named(adsl, ae):
    with pytest.raises(DataError) as err:
        derive_vars_merged(adsl, dataset_add=ae, by_vars=["STUDYID", "USUBJID"],
                           new_vars=["AESER"])
    assert "USUBJID=2" in str(err.value) and "USUBJID=1" not in str(err.value)
    first = derive_vars_merged(adsl, dataset_add=ae, by_vars=["STUDYID", "USUBJID"],
                               new_vars=["AESEQ"], check_unique=False)
    # subject 2: first record in row order of dataset_add is AESEQ 1 (index 7)
    assert col(first, "AESEQ") == [1, 1, None]


def test_merge_argument_errors(adsl, ae):
    with pytest.raises(SpecError, match="already exist"):
        derive_vars_merged(adsl, dataset_add=adsl, by_vars=["USUBJID"], new_vars=["DTHFL"])
    with pytest.raises(SpecError, match="order and mode"):
        derive_vars_merged(adsl, dataset_add=ae, by_vars=["USUBJID"], new_vars=["AESEQ"],
                           mode="last")
    with pytest.raises(SpecError, match="NOPE"):
        derive_vars_merged(adsl, dataset_add=ae, by_vars=["USUBJID"], new_vars=["NOPE"])
    with pytest.raises(SpecError, match="missing_values"):
        derive_vars_merged(ae, dataset_add=adsl, by_vars=["USUBJID"], new_vars=["TRTSDT"],
                           missing_values={"OTHER": 1})


def test_exist_flag(adsl, ae):
    out = derive_var_merged_exist_flag(adsl, dataset_add=ae, by_vars=["STUDYID", "USUBJID"],
                                       new_var="SAEFL", condition="AESER == 'Y'")
    # 1 has a serious AE; 2 has AEs, none serious; 3 has none (missing_value = false)
    assert col(out, "SAEFL") == ["Y", "N", "N"]
    nulls = derive_var_merged_exist_flag(adsl, dataset_add=ae, by_vars=["USUBJID"],
                                         new_var="SAEFL", condition="AESER == 'Y'",
                                         false_value="N", missing_value=None)
    assert col(nulls, "SAEFL") == ["Y", "N", None]
    anyae = derive_var_merged_exist_flag(adsl, dataset_add=ae, by_vars=["USUBJID"],
                                         new_var="AEFL", filter_add="AETOXGRN >= 2",
                                         false_value=None)
    # grade >= 2: subject 1 (3), subject 2 (AESEQ 2, grade 2)
    assert col(anyae, "AEFL") == ["Y", "Y", None]


def test_summary(adsl, ae):
    count = derive_var_merged_summary(adsl, dataset_add=ae, by_vars=["USUBJID"],
                                      new_var="NAE", source_var="AESEQ")
    assert count["NAE"].tolist() == [1, 2, 0]          # 0 for no records
    mx = derive_var_merged_summary(adsl, dataset_add=ae, by_vars=["USUBJID"],
                                   new_var="MAXGR", source_var="AETOXGRN", summary="max")
    assert col(mx, "MAXGR") == [3, 2, None]
    sm = derive_var_merged_summary(adsl, dataset_add=ae, by_vars=["USUBJID"],
                                   new_var="SUMGR", source_var="AETOXGRN", summary="sum",
                                   filter_add="AESER == 'N'")
    # subject 1's only AE is serious -> no records -> missing (not 0); subject 2: 1 + 2
    assert col(sm, "SUMGR") == [None, 3, None]
    last = derive_var_merged_summary(adsl, dataset_add=ae, by_vars=["USUBJID"],
                                     new_var="LASTGR", source_var="AETOXGRN", summary="last",
                                     order=["AESEQ"])
    # subject 2: AESEQ 2 (grade 2) is last by order
    assert col(last, "LASTGR") == [3, 2, None]
    # desc(AESEQ): subject 2's first is AESEQ 2 (grade 2), not the first row (grade 1)
    first = derive_var_merged_summary(adsl, dataset_add=ae, by_vars=["USUBJID"],
                                      new_var="FIRSTGR", source_var="AETOXGRN",
                                      summary="first", order=["desc(AESEQ)"])
    assert col(first, "FIRSTGR") == [3, 2, None]
    with pytest.raises(SpecError, match="summary"):
        derive_var_merged_summary(adsl, dataset_add=ae, by_vars=["USUBJID"], new_var="X",
                                  source_var="AESEQ", summary="median")


def test_registered():
    for name in ("derive_vars_merged", "derive_var_merged_exist_flag",
                 "derive_var_merged_summary"):
        assert callable(DERIVATIONS[name])
