"""adam.derive.baseline: ABLFL, BASE, CHG, PCHG."""
import numpy as np
import pandas as pd
import pytest

from cdisc.adam.derive import (DERIVATIONS, derive_var_ablfl, derive_var_base, derive_var_chg,
                         derive_var_pchg)
from cdisc.errors import DataError, SpecError


def dates(*values):
    return pd.Series(pd.to_datetime(list(values)), dtype="datetime64[s]").to_numpy()


def col(frame, name):
    return [None if pd.isna(v) else v for v in frame[name].tolist()]


@pytest.fixture
def bds():
    # TRTSDT = 2021-03-10 for everyone. Subject 1 CD7: screening (AVAL 10), a
    # missing value the day before, one on the day of the infusion (12) and day 4 (15).
    # Subject 2 has only post-dose values.
    return pd.DataFrame({
        "USUBJID": ["1", "1", "1", "1", "2", "2"],
        "PARAMCD": ["CD7"] * 6,
        "ADT": dates("2021-03-05", "2021-03-09", "2021-03-10", "2021-03-13",
                     "2021-03-11", "2021-03-12"),
        "AVAL": [10.0, np.nan, 12.0, 15.0, 4.0, 5.0],
        "TRTSDT": dates(*["2021-03-10"] * 6),
    })


def test_ablfl_last_non_missing_on_or_before_first_dose(bds):
    out = derive_var_ablfl(bds, by_vars=["USUBJID", "PARAMCD"])
    # candidates subject 1: 03-05 (10), 03-10 (12); 03-09 is missing -> last = 03-10
    assert col(out, "ABLFL") == [None, None, "Y", None, None, None]
    strict = derive_var_ablfl(bds, by_vars=["USUBJID", "PARAMCD"], on_reference_date=False)
    # strictly before: 03-05 only (03-09 has no value)
    assert col(strict, "ABLFL") == ["Y", None, None, None, None, None]
    assert "ABLFL" not in bds.columns


def test_ablfl_filter_and_character_values(bds):
    bds = bds.assign(AVALC=["10", "", "12", "15", "4", "5"])
    out = derive_var_ablfl(bds, by_vars=["USUBJID", "PARAMCD"], source_var="AVALC",
                           filter="ADT != '2021-03-10'")
    # the blank AVALC on 03-09 is missing; 03-10 excluded by the filter -> 03-05
    assert col(out, "ABLFL") == ["Y", None, None, None, None, None]


def test_base_chg_pchg(bds):
    flagged = derive_var_ablfl(bds, by_vars=["USUBJID", "PARAMCD"])
    base = derive_var_base(flagged, by_vars=["USUBJID", "PARAMCD"])
    # subject 1 baseline 12 on every record; subject 2 has none
    assert col(base, "BASE") == [12.0, 12.0, 12.0, 12.0, None, None]
    chg = derive_var_chg(base)
    # 10-12, missing, 12-12, 15-12
    assert col(chg, "CHG") == [-2.0, None, 0.0, 3.0, None, None]
    pchg = derive_var_pchg(chg)
    # (15-12)/12*100 = 25; (10-12)/12*100 = -16.666...
    assert col(pchg, "PCHG")[2:4] == [0.0, 25.0]
    assert pchg["PCHG"].iloc[0] == pytest.approx(-200 / 12)
    post = derive_var_chg(base, filter="ADT > TRTSDT")
    assert col(post, "CHG") == [None, None, None, 3.0, None, None]


def test_pchg_zero_and_negative_baseline():
    df = pd.DataFrame({"AVAL": [5.0, -2.0, 0.0], "BASE": [0.0, -4.0, 0.0]})
    out = derive_var_pchg(derive_var_chg(df))
    # BASE 0 -> CHG defined (5, 0) but PCHG missing; -2 vs -4: CHG 2, 2/|-4|*100 = 50
    assert col(out, "CHG") == [5.0, 2.0, 0.0]
    assert col(out, "PCHG") == [None, 50.0, None]


def test_base_duplicates_and_basec(bds):
    dup = bds.assign(ABLFL=["Y", None, "Y", None, None, None])
    with pytest.raises(DataError) as err:
        derive_var_base(dup, by_vars=["USUBJID", "PARAMCD"])
    assert "USUBJID=1" in str(err.value) and "PARAMCD=CD7" in str(err.value)
    char = bds.assign(ABLFL=[None, None, "Y", None, None, "Y"],
                      AVALC=["10", None, "12", "15", "4", "5"], BASEC="old")
    out = derive_var_base(char, by_vars=["USUBJID", "PARAMCD"], source_var="AVALC",
                          new_var="BASEC", filter="ABLFL == 'Y'")
    assert col(out, "BASEC") == ["12", "12", "12", "12", "5", "5"]   # old BASEC replaced


def test_argument_errors(bds):
    with pytest.raises(SpecError, match="numeric"):
        derive_var_chg(bds.assign(BASE="12"))
    with pytest.raises(SpecError, match="not a date"):
        derive_var_ablfl(bds.assign(ADT="2021-03-05"), by_vars=["USUBJID"])
    for name in ("derive_var_ablfl", "derive_var_base", "derive_var_chg", "derive_var_pchg"):
        assert callable(DERIVATIONS[name])
