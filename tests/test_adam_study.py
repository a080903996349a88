"""ADaM datasets of the shipped study against the generator's truth table (raw/truth.csv)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adam.build import add_adam
from cdisc.build import build_sdtm

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def built():
    result = build_sdtm(ROOT / "specs", ROOT / "raw")
    add_adam(result, ROOT / "specs")
    return {name: ds.data for name, ds in result.datasets.items()}


@pytest.fixture(scope="module")
def truth():
    t = pd.read_csv(ROOT / "raw" / "truth.csv", dtype=str, keep_default_na=False)
    t["USUBJID"] = "VGO-Cs01p-" + t["SUBJECT"]
    return t.set_index("USUBJID")


def _date(s):
    return pd.to_datetime(s.replace("", None))


def test_adsl_one_row_per_dm_subject_with_dose_level(built, truth):
    adsl = built["ADSL"].set_index("USUBJID")
    assert sorted(adsl.index) == sorted(built["DM"]["USUBJID"])
    assert (adsl["TRT01PN"].map({1.0: "DL1", 2.0: "DL2", 3.0: "DL3"}) == truth["DOSELVL"].reindex(adsl.index)).all()
    assert adsl["TRT01AN"].value_counts().to_dict() == {1.0: 3, 2.0: 3, 3.0: 3}


def test_adsl_treatment_dates_and_infusions(built, truth):
    adsl = built["ADSL"].set_index("USUBJID")
    t = truth.reindex(adsl.index)
    assert (adsl["TRTSDT"] == _date(t["FIRST_INF_DATE"])).all()
    assert (adsl["TRTEDT"] == _date(t["LAST_INF_DATE"])).all()
    assert (adsl["NINF"] == t["N_INFUSIONS"].astype(float)).all()
    # 101-001: first infusion started 27-MAR-2024 10:35 (raw/ex.csv)
    assert adsl.loc["VGO-Cs01p-101-001", "TRTSDTM"] == pd.Timestamp("2024-03-27 10:35")


def test_adsl_death_last_alive_and_flags(built, truth):
    adsl = built["ADSL"].set_index("USUBJID")
    t = truth.reindex(adsl.index)
    died = t["DEATH_DATE"] != ""
    assert (adsl.loc[died, "DTHDT"] == _date(t.loc[died, "DEATH_DATE"])).all()
    assert adsl.loc[~died, "DTHDT"].isna().all()
    assert (adsl["DTHFL"].eq("Y") == died).all()
    assert (adsl["LSTALVDT"] == _date(t["LAST_ALIVE_DATE"])).all()
    assert set(adsl["SAFFL"]) == {"Y"}
    # the one DLT of the study: 103-003's grade 3 CRS
    assert adsl["DLTFL"].eq("Y").sum() == 1 and adsl.loc["VGO-Cs01p-103-003", "DLTFL"] == "Y"
    assert (adsl["DLTFL"].eq("Y") == t["DLT"].eq("Y")).all()


def test_adsl_age_groups(built, truth):
    adsl = built["ADSL"].set_index("USUBJID")
    # 103-001 is 2 -> 2-5; 102-002 is 8 -> 6-11; 102-003 is 17 -> 12-17
    assert adsl.loc["VGO-Cs01p-103-001", "AGEGR1"] == "2-5"
    assert adsl.loc["VGO-Cs01p-102-002", "AGEGR1"] == "6-11"
    assert adsl.loc["VGO-Cs01p-102-003", "AGEGR1"] == "12-17"
    assert (adsl["AGE"] == truth.reindex(adsl.index)["AGE"].astype(float)).all()


def test_adae_partial_start_imputed_to_first_dose_and_flagged(built):
    ae = built["ADAE"]
    row = ae[(ae["USUBJID"] == "VGO-Cs01p-102-001") & (ae["AEDECOD"] == "Nausea")].iloc[0]
    # AESTDTC 2024-05 contains TRTSDT 2024-05-02 -> imputed to TRTSDT, not 2024-05-01
    assert row["AESTDTC"] == "2024-05" and row["ASTDT"] == pd.Timestamp("2024-05-02")
    assert row["ASTDTF"] == "D" and row["ASTDY"] == 1.0 and row["TRTEMFL"] == "Y"
    fat = ae[(ae["USUBJID"] == "VGO-Cs01p-101-002") & (ae["AEDECOD"] == "Fatigue")].iloc[0]
    # 2024-09 / 2024-10: start to the 1st, end to the 31st (no death/last-alive bound inside)
    assert fat["ASTDT"] == pd.Timestamp("2024-09-01") and fat["AENDT"] == pd.Timestamp("2024-10-31")
    assert fat["AENDTF"] == "D"


def test_adae_treatment_emergence_and_cell_therapy_flags(built, truth):
    ae = built["ADAE"]
    pre = ae[ae["ASTDY"] < 1]
    assert (pre["TRTEMFL"] == "").all() and len(pre) > 0          # lymphodepletion cytopenias
    assert (ae.loc[ae["ASTDY"] >= 1, "TRTEMFL"] == "Y").all()
    assert ae.loc[ae["DLTFL"] == "Y", "USUBJID"].tolist() == ["VGO-Cs01p-103-003"]
    worst_crs = ae[ae["CRSFL"] == "Y"].groupby("USUBJID")["CRSGRN"].max()
    expected = truth["MAX_CRS_GRADE"].astype(float)
    assert (worst_crs == expected.reindex(worst_crs.index)).all()
    # one first-occurrence record per subject with a TEAE
    assert ae[ae["AOCCFL"] == "Y"].groupby("USUBJID").size().eq(1).all()
    assert ae[ae["AOCCIFL"] == "Y"].groupby("USUBJID").size().eq(1).all()
