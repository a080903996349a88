"""Issue 12 (second part): ADSL from the new SDTM (CM, MH, PR, VS), HSCT censoring in ADTTE,
ADCM/ADMH/ADVS and the CRS/ICANS event dataset, checked against raw/truth.csv and hand-checked
values."""
from pathlib import Path

import pandas as pd
import pytest


ROOT = Path(__file__).resolve().parent.parent
UID = "VGO-Cs01p-"


@pytest.fixture(scope="module")
def built(adam_frames):
    return adam_frames


@pytest.fixture(scope="module")
def truth(truth_by_usubjid):
    return truth_by_usubjid


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


# ---------------------------------------------------------------- ADTTE: HSCT censoring
@pytest.mark.parametrize("paramcd", ["LFS", "DOR"])
def test_lfs_dor_censored_at_post_infusion_hsct(built, truth, paramcd):
    tte = built["ADTTE"]
    p = tte[tte.PARAMCD == paramcd].set_index("USUBJID")
    hsct = truth.index[truth.POST_HSCT == "Y"]
    assert sorted(hsct.str[-7:]) == ["101-002", "102-003"]
    # 101-002: first CR 2024-08-25, HSCT 2024-11-18 (day 112) -> 85 days later, AVAL 86;
    # 102-003: first CR 2025-01-12, HSCT 2025-03-24 (day 98) -> AVAL 72. Both were censored at
    # the last disease assessment before (AVAL 342 and 330).
    assert p.loc[hsct, "AVAL"].to_dict() == {UID + "101-002": 86, UID + "102-003": 72}
    assert (p.loc[hsct, "CNSR"] == 1).all()
    assert set(p.loc[hsct, "CNSDTDSC"]) == {"POST-INFUSION ALLOGENEIC HSCT"}
    assert _date_text(p.loc[hsct, "ADT"]).to_dict() == truth.loc[hsct, "POST_HSCT_DATE"].to_dict()
    # the others keep their censoring at the last disease assessment or their event
    others = p.drop(index=hsct)
    assert "POST-INFUSION ALLOGENEIC HSCT" not in set(others["CNSDTDSC"])
    assert int((others.CNSR == 0).sum()) == 2  # 101-003 death in remission, 103-002 relapse


def test_os_not_censored_at_hsct(built, truth):
    tte = built["ADTTE"]
    for code in ("OS", "OSSENS"):
        p = tte[tte.PARAMCD == code].set_index("USUBJID")
        # alive at the last date known alive, not at the HSCT: 101-002 day 368, 102-003 day 356
        assert p.loc[UID + "101-002", "AVAL"] == 368 and p.loc[UID + "102-003", "AVAL"] == 356
        assert _date_text(p.loc[[UID + "101-002"], "ADT"]).iloc[0] == truth.loc[UID + "101-002", "LAST_ALIVE_DATE"]
        assert "POST-INFUSION ALLOGENEIC HSCT" not in set(p["CNSDTDSC"])


# ---------------------------------------------------------------- ADVS
def test_advs_records_parameters_and_baseline(built):
    v = built["ADVS"]
    assert len(v) == 841 == len(built["VS"])                      # one record per VS record
    assert sorted(v.PARAMCD.unique()) == ["BSA", "DIABP", "HEIGHT", "HR", "OXYSAT", "SYSBP", "TEMP", "WEIGHT"]
    b = v[v.ABLFL == "Y"]
    assert len(b) == 72 and not b.duplicated(["USUBJID", "PARAMCD"]).any()  # 8 parameters x 9 subjects
    # the 5 vitals: the Day 1 pre-infusion record is baseline for all 9 subjects (45 records)
    assert (b[b.PARAMCD.isin(["SYSBP", "DIABP", "HR", "TEMP", "OXYSAT"])].ATPT == "PRE-INFUSION").all()
    assert int((b.ADY == 1).sum()) == 45
    assert not (b.ATPT == "1 H POST-INFUSION").any()


def test_advs_body_size_baseline_equals_adsl(built, truth):
    v = built["ADVS"]
    b = v[v.ABLFL == "Y"].set_index(["USUBJID", "PARAMCD"])["AVAL"]
    adsl = built["ADSL"].set_index("USUBJID")
    for code, var, col in (("WEIGHT", "BLWT", "BASE_WEIGHT_KG"), ("HEIGHT", "BLHT", "BASE_HEIGHT_CM"),
                           ("BSA", "BLBSA", "BASE_BSA_M2")):
        got = b.xs(code, level="PARAMCD")
        assert (got - adsl[var].reindex(got.index)).abs().max() < 1e-9
        assert (got - truth[col].reindex(got.index).astype(float)).abs().max() < 1e-9


def test_advs_change_hand_checked(built):
    v = built["ADVS"]
    s = v[(v.USUBJID == UID + "101-001") & (v.PARAMCD == "SYSBP")].set_index("VSSEQ")
    # baseline Day 1 pre-infusion 116 mmHg (screening 107 and lymphodepletion 108 are earlier)
    assert (s.BASE == 116).all() and s.loc[19, "ABLFL"] == "Y"
    assert s.loc[24, "CHG"] == -5 and s.loc[24, "ANL01FL"] == "Y"    # Day 1 1 h post-infusion 111
    assert s.loc[29, "CHG"] == -8 and s.loc[29, "ANL01FL"] == ""        # CRS monitoring: not flagged
    assert pd.isna(s.loc[6, "CHG"])                                  # screening: no change
    t = v[(v.USUBJID == UID + "103-001") & (v.PARAMCD == "TEMP")].set_index("VSSEQ")
    assert t.loc[30, "AVISIT"] == "CRS MONITORING" and t.loc[30, "CHG"] == pytest.approx(38.5 - 36.9)


# ---------------------------------------------------------------- ADCM, ADMH
def test_adcm_prior_and_concomitant(built, truth):
    c = built["ADCM"]
    assert len(c) == 68 == len(built["CM"])
    prior = c[c.PREFL == "Y"]
    # prior = exactly the prior anti-cancer lines (sum of PRIOR_LINES = 23), none continuing
    assert set(prior.CMCAT) == {"PRIOR ANTI-CANCER THERAPY"}
    assert len(prior) == 23 == truth.PRIOR_LINES.astype(int).sum()
    assert prior.groupby("USUBJID").CMLINEN.max().astype(int).astype(str).to_dict() == \
        truth.PRIOR_LINES.to_dict()
    con = c[c.ONTRTFL == "Y"]
    assert len(con) == 45 and set(con.CMCAT) == {"CONCOMITANT MEDICATION"}
    # prophylaxis started on the first lymphodepletion day (study day -5) is concomitant, not prior
    acic = c[(c.CMDECOD == "ACICLOVIR")]
    assert (acic.ASTDY == -5).all() and (acic.ONTRTFL == "Y").all() and not (acic.PREFL == "Y").any()
    toci = c[c.CMDECOD == "TOCILIZUMAB"]
    assert sorted(toci.USUBJID.str[-7:].unique()) == ["102-001", "102-003", "103-003"]
    assert (toci.TRTA != "").all()


def test_adcm_partial_start_imputed(built):
    c = built["ADCM"].set_index(["USUBJID", "CMSEQ"])
    r = c.loc[(UID + "101-002", 4)]          # CMSTDTC 2022-11 -> 2022-11-01, day imputed
    assert r.CMSTDTC == "2022-11" and r.ASTDTF == "D"
    assert pd.Timestamp(r.ASTDT).strftime("%Y-%m-%d") == "2022-11-01"


def test_admh_against_truth(built, truth):
    m = built["ADMH"]
    assert len(m) == 12
    tx = set(m.loc[m.MHCAT == "TRANSPLANT HISTORY", "USUBJID"])
    assert tx == set(truth.index[truth.PRIOR_HSCT == "Y"])
    prim = m[m.MHCAT == "PRIMARY DIAGNOSIS"].set_index("USUBJID")
    assert prim.DISSTAT.to_dict() == truth.DISEASE_STATUS.reindex(prim.index).to_dict()
    assert prim.CNSSTAT.to_dict() == truth.CNS_STATUS.reindex(prim.index).to_dict()
    assert prim.PRLINES.astype(int).astype(str).to_dict() == truth.PRIOR_LINES.reindex(prim.index).to_dict()
    # diagnosis typed partial (YYYY-MM) for 101-002 and 102-003: day imputed to the 1st
    assert sorted(prim.index[prim.ASTDTF == "D"].str[-7:]) == ["101-002", "102-003"]


# ---------------------------------------------------------------- ADCRS (CRS/ICANS events)
def test_adcrs_events_per_subject_and_max_grade(built, truth):
    c = built["ADCRS"]
    ae = built["SUPPAE"]
    # one record per AE line flagged CRS or ICANS in SUPPAE (AECRS / AEICANS = Y)
    n_ae = ae[ae.QNAM.isin(["AECRS", "AEICANS"]) & (ae.QVAL == "Y")].groupby(["USUBJID", "QNAM"]).size()
    crs = c[c.ACAT1 == "CYTOKINE RELEASE SYNDROME"]
    ican = c[c.ACAT1 == "ICANS"]
    assert crs.groupby("USUBJID").size().to_dict() == n_ae.xs("AECRS", level="QNAM").to_dict()
    assert ican.groupby("USUBJID").size().to_dict() == n_ae.xs("AEICANS", level="QNAM").to_dict()
    # hand-checked: 14 CRS events (2 for 101-001, 102-001, 103-002; 3 for 103-003), 3 ICANS
    assert len(crs) == 14 and len(ican) == 3
    assert crs.groupby("USUBJID").size()[UID + "103-003"] == 3
    # every subject had CRS: max ASTCT grade per subject = MAX_CRS_GRADE; ICANS likewise (0 = none)
    mx = crs.groupby("USUBJID").ASTCTGRN.max().astype(int).astype(str)
    assert mx.to_dict() == truth.MAX_CRS_GRADE.reindex(mx.index).to_dict()
    assert set(mx.index) == set(truth.index[truth.MAX_CRS_GRADE != "0"])
    mi = ican.groupby("USUBJID").ASTCTGRN.max().astype(int).astype(str)
    assert mi.to_dict() == truth.MAX_ICANS_GRADE[truth.MAX_ICANS_GRADE != "0"].to_dict()


def test_adcrs_onset_duration_management(built, truth):
    c = built["ADCRS"].set_index(["USUBJID", "AESEQ"])
    # 103-003: third CRS on study day 16, the day after the third infusion (day 15): onset day 2
    # of that infusion, grade 3, tocilizumab + dexamethasone, ICU (RELREC AE6 -> CM4..7, HO1)
    r = c.loc[(UID + "103-003", 7)]
    assert (r.ASTDY, r.LINFNUM, r.ASTLINDY, r.ASTCTGRN, r.ADURN) == (16, 3, 2, 3, 5)
    assert (r.ETOCIFL, r.ESTERFL, r.EICUFL) == ("Y", "Y", "Y")
    # 101-003 ICANS grade 2 on day 4, dexamethasone (RELREC AE4 -> CM5), no tocilizumab
    r = c.loc[(UID + "101-003", 4)]
    assert (r.ASTLINDY, r.ASTCTGRN, r.ETOCIFL, r.ESTERFL, r.EICUFL) == (4, 2, "N", "Y", "N")
    # subject-level: an event with tocilizumab / steroid / ICU <=> the truth flags (every use
    # of the three in this study is for CRS/ICANS); 101-003's ICU stay was for septic shock
    adcrs = built["ADCRS"]
    for flag, col in (("ETOCIFL", "TOCILIZUMAB"), ("ESTERFL", "STEROID")):
        subj = set(adcrs.loc[adcrs[flag] == "Y", "USUBJID"])
        assert subj == set(truth.index[truth[col] == "Y"])
    assert set(adcrs.loc[adcrs.EICUFL == "Y", "USUBJID"]) == {UID + "103-003"}
    assert set(truth.index[truth.ICU == "Y"]) == {UID + "101-003", UID + "103-003"}
    assert (adcrs.ADURU == "DAYS").all() and adcrs.ADURN.min() >= 1


def test_relrec_exist_flag_small_frame():
    from cdisc.adam.derive import derive_var_relrec_exist_flag
    ds = pd.DataFrame({"USUBJID": ["A", "A", "B"], "AESPID": ["1", "2", "1"]})
    rel = pd.DataFrame({"USUBJID": ["A", "A", "A", "A", "B", "B"],
                        "RDOMAIN": ["AE", "CM", "AE", "CM", "AE", "CM"],
                        "IDVAR": ["AESPID", "CMSPID", "AESPID", "CMSPID", "AESPID", "CMSPID"],
                        "IDVARVAL": ["1", "5", "2", "6", "1", "5"],
                        "RELID": ["R1", "R1", "R2", "R2", "R1", "R1"]})
    cm = pd.DataFrame({"USUBJID": ["A", "A", "B"], "CMSPID": [5.0, 6.0, 5.0],
                       "CMDECOD": ["TOCILIZUMAB", "DEXAMETHASONE", "DEXAMETHASONE"]})
    out = derive_var_relrec_exist_flag(ds, dataset_relrec=rel, dataset_add=cm, rdomain="AE", idvar="AESPID",
                                       rdomain_add="CM", idvar_add="CMSPID", new_var="TOCIFL",
                                       condition="CMDECOD == 'TOCILIZUMAB'")
    # A/1 -> CM 5 tocilizumab; A/2 -> CM 6 dexamethasone; B/1 -> B's CM 5 is dexamethasone
    # (RELID R1 is per subject: A's R1 does not link B's records)
    assert out["TOCIFL"].tolist() == ["Y", "N", "N"]
