"""Tests for raw/generate.py, the synthetic EDC export of VGO-Cs01p and its truth table.

The truth table is the contract later SDTM/ADaM tests check against, so these tests pin
(1) that the committed files are exactly what the generator writes, (2) the EDC
conventions every form follows, and (3) a set of truth facts re-checked by hand against
the form text (the hand calculation is in the comment next to each value).
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "raw"
FORMS = ["dm", "ic", "ld", "ex", "ae", "dth", "eos", "sv", "rs", "mrd", "lb", "fc", "pk",
         "ada", "vs", "conmed", "pt", "dh", "sct", "icu", "crsa"]  # issue 12: the last seven
HEADER = ["PROJECT", "SITENUMBER", "SITE", "SUBJECT", "FOLDER", "FOLDERNAME", "FORM",
          "RECORDPOSITION", "RECSTATUS"]
DATE_RE = re.compile(r"^(\d{2}|UN)-(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|UNK)-\d{4}$")


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(RAW / f"{name}.csv", dtype=str, keep_default_na=False, encoding="utf-8")


@pytest.fixture(scope="module")
def gen():
    """The generator module, imported from its file (raw/ is not a package)."""
    spec = importlib.util.spec_from_file_location("raw_generate", RAW / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def forms() -> dict[str, pd.DataFrame]:
    return {name: _read(name) for name in FORMS}


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    return _read("truth").set_index("SUBJECT")


def test_regenerates_byte_identical(tmp_path):
    """`generate.py --out DIR` writes exactly the committed CSV files, byte for byte."""
    run = subprocess.run([sys.executable, str(RAW / "generate.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    written = sorted(p.name for p in tmp_path.glob("*.csv"))
    assert written == sorted([f"{f}.csv" for f in FORMS] + ["truth.csv"])
    assert written == sorted(p.name for p in RAW.glob("*.csv"))
    for name in written:
        assert (tmp_path / name).read_bytes() == (RAW / name).read_bytes(), name
    assert b"\r" not in (RAW / "lb.csv").read_bytes()


def test_every_form_has_the_edc_header(forms):
    for name, df in forms.items():
        assert list(df.columns[:9]) == HEADER, name
        assert df.PROJECT.eq("VGO-Cs01p").all(), name
        assert df.FORM.eq(name.upper()).all(), name
        assert (df.SITENUMBER == df.SUBJECT.str[:3]).all(), name
        assert df.SUBJECT.str.fullmatch(r"10[123]-00[123]").all(), name
        assert df.RECORDPOSITION.str.fullmatch(r"\d+").all(), name
        assert df.RECSTATUS.isin(["Active", "Deleted"]).all(), name
        assert df.FOLDERNAME.ne("").all(), name
    site = forms["dm"].drop_duplicates("SITENUMBER").set_index("SITENUMBER")["SITE"]
    assert site["102"] == "Hôpital Universitaire Sainte-Élisabeth de Montréal"


def test_dates_and_times_are_well_formed(forms):
    """Every *DAT is DD-MON-YYYY or one of the two partial forms; every *TIM is HH:MM."""
    for name, df in forms.items():
        for col in df.columns:
            if col.endswith("DAT"):
                bad = df.loc[df[col].ne("") & ~df[col].str.match(DATE_RE), col]
                assert bad.empty, (name, col, bad.tolist())
            if col.endswith("TIM"):
                bad = df.loc[df[col].ne("") & ~df[col].str.fullmatch(r"([01]\d|2[0-3]):[0-5]\d"),
                             col]
                assert bad.empty, (name, col, bad.tolist())
    partial = {v for df in forms.values() for c in df.columns if c.endswith("DAT")
               for v in df[c] if v.startswith("UN-")}
    assert partial == {"UN-JUN-2012", "UN-UNK-2007", "UN-MAY-2024", "UN-JUN-2024",
                       "UN-SEP-2024", "UN-OCT-2024",
                       "UN-NOV-2022", "UN-JUL-2020"}     # issue 12: dh.csv / pt.csv diagnosis


def test_nine_subjects_three_per_dose_level(forms, truth):
    dm = forms["dm"]
    assert len(dm) == 9 and dm.SUBJECT.is_unique
    dl = forms["ex"].drop_duplicates("SUBJECT").DOSELVL.value_counts().to_dict()
    assert dl == {"DL1": 3, "DL2": 3, "DL3": 3}
    assert truth.DOSELVL.value_counts().to_dict() == {"DL1": 3, "DL2": 3, "DL3": 3}
    # infusions: 101-001 (Days 1, 15), 102-001 and 103-002 (Days 1, 8), 103-003 (1, 8, 15)
    assert truth.N_INFUSIONS.to_dict() == {
        "101-001": "2", "101-002": "1", "101-003": "1", "102-001": "2", "102-002": "1",
        "102-003": "1", "103-001": "1", "103-002": "2", "103-003": "3"}


def test_first_infusion_of_101_001(forms, truth):
    ex = forms["ex"]
    first = ex[(ex.SUBJECT == "101-001") & (ex.EXNUM == "1")].iloc[0]
    assert (first.FOLDER, first.EXDAT, first.EXSTTIM) == ("D1", "27-MAR-2024", "10:35")
    assert truth.loc["101-001", "FIRST_INF_DATE"] == "2024-03-27"
    # second infusion on Day 15 = 27-MAR + 14 days = 10-APR-2024
    second = ex[(ex.SUBJECT == "101-001") & (ex.EXNUM == "2")].iloc[0]
    assert (second.FOLDER, second.EXDAT) == ("D15", "10-APR-2024")
    assert truth.loc["101-001", "LAST_INF_DATE"] == "2024-04-10"
    # lymphodepletion Day -5 .. -3 = 22-MAR .. 24-MAR-2024 (no Day 0)
    ld = forms["ld"][forms["ld"].SUBJECT == "101-001"]
    assert ld.LDSTDAT.unique().tolist() == ["22-MAR-2024"]
    assert ld.LDENDAT.unique().tolist() == ["24-MAR-2024"]


def test_deleted_ae_row(forms):
    ae = forms["ae"]
    deleted = ae[ae.RECSTATUS == "Deleted"]
    assert list(zip(deleted.SUBJECT, deleted.AETERM)) == [("101-002", "Hypotension"), ("101-002", "Headache"),
                                                          ("103-003", "Hypotension")]
    row = deleted.iloc[1]
    assert (row.SUBJECT, row.RECORDPOSITION, row.AETERM) == ("101-002", "6", "Headache")
    original = ae[(ae.SUBJECT == "101-002") & (ae.RECORDPOSITION == "5")].iloc[0]
    same = [c for c in ae.columns[9:] if c != "AECOMM"]
    assert (row[same] == original[same]).all()
    assert len(ae) == 60 and (ae.RECSTATUS == "Active").sum() == 57


def test_deaths_and_end_of_study(forms, truth):
    dth = forms["dth"].set_index("SUBJECT")
    # 101-001 Day 84: 27-MAR-2024 + 83 d = 18-JUN-2024
    # 101-003 Day 79: 12-NOV-2024 + 78 d = 29-JAN-2025
    # 103-002 Day 228: 01-OCT-2024 + 227 d = 16-MAY-2025
    assert dth.DTHDAT.to_dict() == {"101-001": "18-JUN-2024", "101-003": "29-JAN-2025",
                                    "103-002": "16-MAY-2025"}
    dead = truth[truth.DEATH_DATE != ""]
    assert dead.DEATH_DATE.to_dict() == {"101-001": "2024-06-18", "101-003": "2025-01-29",
                                         "103-002": "2025-05-16"}
    assert dead.DEATH_IN_REMISSION.to_dict() == {"101-001": "N", "101-003": "Y",
                                                "103-002": "N"}
    assert dead.DEATH_CAUSE.to_dict() == {"101-001": "DISEASE PROGRESSION",
                                          "101-003": "INFECTION",
                                          "103-002": "DISEASE PROGRESSION"}
    assert truth.EOS_REASON.value_counts().to_dict() == {
        "COMPLETED": 4, "DEATH": 3, "WITHDRAWAL BY PARENT/GUARDIAN": 1, "LOST TO FOLLOW-UP": 1}
    eos = forms["eos"].set_index("SUBJECT")
    # lost to follow-up: last contact Day 118 = 04-JUN-2024 + 117 d = 29-SEP-2024
    assert (eos.loc["103-001", "LSTCONDAT"], eos.loc["103-001", "EOSDAT"]) == (
        "29-SEP-2024", "22-MAR-2025")
    assert truth.loc["103-001", "LAST_ALIVE_DATE"] == "2024-09-29"
    # each death has exactly one fatal AE ending on the death date
    ae = forms["ae"]
    fatal = ae[(ae.RECSTATUS == "Active") & (ae.AEOUT == "Fatal")].set_index("SUBJECT")
    assert fatal.AEENDAT.to_dict() == dth.DTHDAT.to_dict()
    assert set(fatal.AETOXGR) == {"5"}


def test_responses(forms, truth):
    assert truth.D28_RESPONSE.to_dict() == {
        "101-001": "NR", "101-002": "CR", "101-003": "CR", "102-001": "PR", "102-002": "CRh",
        "102-003": "CR", "103-001": "CRi", "103-002": "CR", "103-003": "CR"}
    # 102-001: PR at Day 28, "Complete remission" at Month 2 (04-JUL-2024) -> best CR
    assert truth.loc["102-001", ["BEST_RESPONSE", "FIRST_CR_DATE"]].tolist() == [
        "CR", "2024-07-04"]
    assert truth.loc["101-001", ["BEST_RESPONSE", "FIRST_CR_DATE"]].tolist() == ["NR", ""]
    rs = forms["rs"]
    relapse = rs[rs.OVRLRESP == "Relapse"]
    assert relapse[["SUBJECT", "FOLDER", "RSDAT"]].values.tolist() == [
        ["103-002", "UNS2", "27-FEB-2025"]]              # Day 150 = 01-OCT-2024 + 149 d
    assert truth.loc["103-002", "RELAPSE_DATE"] == "2025-02-27"
    assert (truth.RELAPSE_DATE != "").sum() == 1
    assert set(rs.OVRLRESP) == {"", "CR", "cr", "Complete remission", "CRh", "CRi", "PR",
                                "No response", "PD", "Relapse"}
    assert rs.loc[rs.FOLDER == "SCR", "OVRLRESP"].eq("").all()


def test_count_recovery_agrees_with_labs(forms):
    """102-002 Day 28 is CRh: Neutrophils 3.10 (>= 1.0) but Platelets 88 (50 to < 100)."""
    lb = forms["lb"]
    v = lb[(lb.SUBJECT == "102-002") & (lb.FOLDER == "D28")].set_index("LBTEST")["LBORRES"]
    assert (v["Neutrophils"], v["Platelets"], v["Blasts"]) == ("3.10", "88", "0.0")
    rs = forms["rs"]
    row = rs[(rs.SUBJECT == "102-002") & (rs.FOLDER == "D28")].iloc[0]
    assert (row.OVRLRESP, row.ANCCAT, row.PLTCAT) == (
        "CRh", "ANC >= 1.0 x10^9/L", "PLT 50 to < 100 x10^9/L")
    # every assessment: the lab counts fall inside the recorded categories
    anc = lb[lb.LBTEST.isin(["ANC", "Neutrophils"])][["SUBJECT", "FOLDER", "LBORRES"]]
    plt_ = lb[lb.LBTEST == "Platelets"][["SUBJECT", "FOLDER", "LBORRES"]]
    m = rs.merge(anc, on=["SUBJECT", "FOLDER"]).merge(plt_, on=["SUBJECT", "FOLDER"],
                                                      suffixes=("_ANC", "_PLT"))
    a = m.LBORRES_ANC.astype(float)
    p = m.LBORRES_PLT.astype(float)
    anc_ok = m.ANCCAT.map({"ANC >= 1.0 x10^9/L": 0, "ANC 0.5 to < 1.0 x10^9/L": 1,
                           "ANC < 0.5 x10^9/L": 2}) == (a < 1.0).astype(int) + (a < 0.5)
    plt_ok = m.PLTCAT.map({"PLT >= 100 x10^9/L": 0, "PLT 50 to < 100 x10^9/L": 1,
                           "PLT < 50 x10^9/L": 2}) == (p < 100).astype(int) + (p < 50)
    assert len(m) == len(rs) and anc_ok.all() and plt_ok.all()


def test_mrd_day28(forms, truth):
    mrd = forms["mrd"]
    d28 = mrd[mrd.FOLDER == "D28"].set_index("SUBJECT")
    assert (d28.loc["102-002", "MRDRES"], d28.loc["102-002", "MRDSTAT"]) == ("0.003", "Negative")
    assert truth.loc["102-002", ["MRD_D28", "MRD_D28_VALUE"]].tolist() == ["NEGATIVE", "0.003"]
    responders = truth[truth.D28_RESPONSE.isin(["CR", "CRh", "CRi", "PR"])]
    assert responders.MRD_D28.value_counts().to_dict() == {"NEGATIVE": 5, "POSITIVE": 3}


def test_ada_status(forms, truth):
    ada = forms["ada"]
    t101 = ada[ada.SUBJECT == "101-002"].set_index("FOLDER")["ADATITER"]
    # baseline 1:20, Month 3 1:160 -> 8-fold rise (>= 4) -> BOOSTED
    assert (t101["D1"], t101["M3"]) == ("1:20", "1:160")
    assert truth.loc["101-002", ["ADA_STATUS", "ADA_MAX_TITER"]].tolist() == ["BOOSTED", "160"]
    # baseline 1:40, highest 1:80 -> 2-fold only -> PRE-EXISTING
    assert truth.loc["102-002", ["ADA_STATUS", "ADA_MAX_TITER"]].tolist() == [
        "PRE-EXISTING", "80"]
    # 103-002 Day 28 screen Positive, confirm Negative -> never confirmed -> NEGATIVE
    row = ada[(ada.SUBJECT == "103-002") & (ada.FOLDER == "D28")].iloc[0]
    assert (row.ADASCR, row.ADACONF, row.ADATITER) == ("Positive", "Negative", "")
    assert truth.loc["103-002", "ADA_STATUS"] == "NEGATIVE"
    assert truth.ADA_STATUS.value_counts().to_dict() == {
        "NEGATIVE": 5, "TREATMENT-EMERGENT": 2, "BOOSTED": 1, "PRE-EXISTING": 1}
    assert ada.loc[ada.ADASCR == "Negative", ["ADACONF", "ADATITER"]].eq("").all().all()


def test_cmax_tmax_101_001(forms, truth):
    pk = forms["pk"]
    p = pk[pk.SUBJECT == "101-001"].set_index("PKTPT")
    assert (p.loc["Day 10", "PKRES"], p.loc["Day 10", "PKDAT"], p.loc["Day 10", "PKTIM"]) == (
        "4.20", "05-APR-2024", "09:45")
    # infusion 1 started 27-MAR-2024 10:35; 05-APR 09:45 is 9 days - 50 min later:
    # 216 h - 0.8333 h = 215.1667 h -> "215.17"
    assert truth.loc["101-001", ["CMAX", "TMAX_H"]].tolist() == ["4.20", "215.17"]
    assert p.loc["Pre-dose", "PKRES"] == "BLQ" and p.loc["Day 28", "PKRES"] == "BLQ"
    assert "Month 3" not in p.index                    # died on Day 84, before Month 3


def test_pk_kinetics(forms, truth):
    pk = forms["pk"]
    assert pk.loc[pk.PKTPT == "Pre-dose", "PKRES"].isin(["BLQ", "<LLOQ"]).all()
    assert set(pk.loc[pk.SITENUMBER == "103", "PKRES"]) & {"BLQ"} == set()
    peak = pk.merge(truth.reset_index()[["SUBJECT", "CMAX"]], left_on=["SUBJECT", "PKRES"],
                    right_on=["SUBJECT", "CMAX"])
    assert len(peak) == 9 and peak.PKTPT.isin(["Day 7", "Day 10", "Day 14"]).all()
    mapping = dict(zip(pk.PKTPT, pk.PKTPTNUM))
    assert mapping == {"Pre-dose": "0", "1 h": "1", "4 h": "4", "Day 2": "24", "Day 4": "72",
                       "Day 7": "144", "Day 10": "216", "Day 14": "312", "Day 21": "480",
                       "Day 28": "648", "Month 2": "1416", "Month 3": "2136"}


def test_missed_visits(forms):
    sv = forms["sv"]
    nd = sv[sv.VISND == "Not done"]
    assert nd[["SUBJECT", "FOLDER", "VISDAT"]].values.tolist() == [
        ["102-002", "M9", ""], ["103-001", "M6", ""]]
    for name in ["rs", "mrd", "lb", "fc", "ada"]:
        df = forms[name]
        hit = df.merge(nd[["SUBJECT", "FOLDER"]], on=["SUBJECT", "FOLDER"])
        assert hit.empty, name


def test_first_cd7_count(forms, truth):
    fc = forms["fc"]
    scr = fc[(fc.SUBJECT == "101-001") & (fc.FOLDER == "SCR")].set_index("FCTEST")
    assert scr.loc["CD7+ cells absolute count", ["FCRES", "FCRESU"]].tolist() == [
        "2135.2", "cells/µL"]
    assert truth.loc["101-001", ["FIRST_CD7_COUNT", "FIRST_CD7_UNIT"]].tolist() == [
        "2135.2", "cells/uL"]


def test_ae_design(forms, truth):
    ae = forms["ae"][forms["ae"].RECSTATUS == "Active"]
    assert ae.groupby("SUBJECT").size().between(3, 12).all()
    crs = ae[ae.AECRS == "Yes"]
    assert crs.groupby("SUBJECT").AECRSGR.apply(lambda g: g.isin(["1", "2"]).any()).all()
    dlt = ae[ae.AEDLT == "Yes"]
    assert dlt[["SUBJECT", "AECRSGR", "AETOXGR"]].values.tolist() == [["103-003", "3", "Grade 3"]]
    assert truth.DLT.to_dict()["103-003"] == "Y" and (truth.DLT == "Y").sum() == 1
    assert set(ae.loc[ae.AEICANS == "Yes", "SUBJECT"]) == {"101-003", "102-002", "103-003"}
    assert ae.loc[ae.AEONGO == "Yes", "AEENDAT"].eq("").all()
    # one code per MedDRA term at every level
    for name, code in [("AELLT", "AELLTCD"), ("AEDECOD", "AEPTCD"), ("AESOC", "AESOCCD")]:
        pairs = ae[[name, code]].drop_duplicates()
        assert pairs[name].is_unique and pairs[code].is_unique
    assert ae.loc[ae.AEDECOD == "Cytokine release syndrome", "AEPTCD"].unique().tolist() == [
        "10011693"]


def test_non_ascii_only_in_documented_columns(forms):
    allowed = {"SITE", "AECOMM", "LBORRESU", "FCRESU", "PKRESU", "TEMPU"}   # TEMPU: vs.csv °C/°F
    found = set()
    for name, df in forms.items():
        for col in df.columns:
            if df[col].map(lambda v: not v.isascii()).any():
                found.add(col)
    assert found == allowed


def test_truth_rederived_from_committed_forms(gen, forms):
    """The committed files themselves (not the in-memory ones) reproduce truth.csv."""
    derived = gen.truth_from_forms(forms)
    committed = _read("truth")
    pd.testing.assert_frame_equal(derived.reset_index(drop=True), committed)


def test_agreement_check_catches_a_wrong_form(gen, forms):
    truth = _read("truth")
    bad = {k: v.copy() for k, v in forms.items()}
    ex = bad["ex"]
    ex.loc[(ex.SUBJECT == "101-001") & (ex.EXNUM == "1"), "EXDAT"] = "28-MAR-2024"
    with pytest.raises(AssertionError, match="101-001 FIRST_INF_DATE"):
        gen.check_agreement(truth, bad)
    bad = {k: v.copy() for k, v in forms.items()}
    ae = bad["ae"]
    ae.loc[ae.RECSTATUS == "Deleted", "AEDLT"] = "Yes"   # a deleted line must not count
    gen.check_agreement(truth, bad)
    ae.loc[ae.RECSTATUS == "Deleted", "RECSTATUS"] = "Active"
    with pytest.raises(AssertionError, match="101-002 DLT"):
        gen.check_agreement(truth, bad)


def test_readme_documents_every_file_and_column(forms):
    readme = (RAW / "README.md").read_text(encoding="utf-8")
    for name, df in {**forms, "truth": _read("truth")}.items():
        assert f"`{name}.csv`" in readme, name
        for col in df.columns:
            assert f"`{col}`" in readme, (name, col)
    assert "## Known data issues" in readme
