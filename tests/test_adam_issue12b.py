"""Issue 12 (second part): ADSL from the new SDTM (CM, MH, PR, VS), HSCT censoring in ADTTE,
ADCM/ADMH/ADVS and the CRS/ICANS event dataset, checked against raw/truth.csv and hand-checked
values."""
from pathlib import Path

import pandas as pd
import pytest

from adam.build import add_adam
from cdisc.build import build_sdtm

ROOT = Path(__file__).resolve().parent.parent
UID = "VGO-Cs01p-"


@pytest.fixture(scope="module")
def built():
    result = build_sdtm(ROOT / "specs", ROOT / "raw")
    add_adam(result, ROOT / "specs")
    return {name: ds.data for name, ds in result.datasets.items()}


@pytest.fixture(scope="module")
def truth():
    t = pd.read_csv(ROOT / "raw" / "truth.csv", dtype=str, keep_default_na=False)
    t["USUBJID"] = UID + t["SUBJECT"]
    return t.set_index("USUBJID")


def _date_text(s):
    return pd.to_datetime(s).dt.strftime("%Y-%m-%d").fillna("")


# ---------------------------------------------------------------- ADSL
@pytest.mark.parametrize("var,col", [("TOCIFL", "TOCILIZUMAB"), ("STERFL", "STEROID"),
                                     ("PHSCTFL", "POST_HSCT"), ("PRHSCTFL", "PRIOR_HSCT"),
                                     ("DISSTAT", "DISEASE_STATUS")])
def test_adsl_flags_equal_truth(built, truth, var, col):
    adsl = built["ADSL"].set_index("USUBJID")
    assert adsl[var].to_dict() == truth[col].reindex(adsl.index).to_dict()


def test_adsl_flag_counts_hand_checked(built):
    adsl = built["ADSL"]
    # tocilizumab 102-001, 102-003, 103-003; dexamethasone 101-003 (ICANS), 103-003 (CRS grade 3)
    assert sorted(adsl.loc[adsl.TOCIFL == "Y", "USUBJID"].str[-7:]) == ["102-001", "102-003", "103-003"]
    assert sorted(adsl.loc[adsl.STERFL == "Y", "USUBJID"].str[-7:]) == ["101-003", "103-003"]
    assert (adsl.PRHSCTFL == "Y").sum() == 3 and (adsl.DISSTAT == "RELAPSED").sum() == 5


def test_adsl_post_hsct_date_equals_truth(built, truth):
    adsl = built["ADSL"].set_index("USUBJID")
    assert _date_text(adsl["PHSCTDT"]).to_dict() == truth["POST_HSCT_DATE"].reindex(adsl.index).to_dict()
    # day 112 (101-002) and day 98 (102-003) after the first infusion (study day = date - TRTSDT + 1)
    dy = (adsl["PHSCTDT"] - adsl["TRTSDT"]).dt.days + 1
    assert dy.dropna().astype(int).to_dict() == {UID + "101-002": 112, UID + "102-003": 98}


def test_adsl_prior_lines_equal_truth(built, truth):
    adsl = built["ADSL"].set_index("USUBJID")
    assert adsl["PRLINES"].astype(int).astype(str).to_dict() == truth["PRIOR_LINES"].reindex(adsl.index).to_dict()
    assert adsl["PRLINES"].sum() == 23


@pytest.mark.parametrize("var,col,digits", [("BLWT", "BASE_WEIGHT_KG", 1), ("BLHT", "BASE_HEIGHT_CM", 1),
                                            ("BLBSA", "BASE_BSA_M2", 2)])
def test_adsl_baseline_body_size_equals_truth(built, truth, var, col, digits):
    # ADaM baseline = last before the first infusion; truth = last before lymphodepletion: the
    # same records here (no weight/height/BSA between lymphodepletion and the infusion)
    adsl = built["ADSL"].set_index("USUBJID")
    got = adsl[var].round(digits)
    want = truth[col].reindex(adsl.index).astype(float)
    assert (got - want).abs().max() < 1e-9


def test_adsl_baseline_weight_hand_checked(built):
    adsl = built["ADSL"].set_index("USUBJID")
    # 103-001: 27.1 LB at lymphodepletion -> 12.3 kg; height 34.3 in -> 87.1 cm
    assert adsl.loc[UID + "103-001", "BLWT"] == pytest.approx(12.3)
    assert adsl.loc[UID + "103-001", "BLHT"] == pytest.approx(87.1)
    # screening weight 33.0 is not baseline for 101-001 (lymphodepletion 32.4 is later)
    assert adsl.loc[UID + "101-001", "BLWT"] == pytest.approx(32.4)
