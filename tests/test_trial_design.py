"""Trial design datasets TA/TE/TV/TI/TS built from the shipped specs (SDTMIG 3.4 §7).

Expected values were read by hand off specs/study.yaml, specs/trial_design.yaml and
specs/ct/sdtm-ct.yaml; each test says where a number comes from.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cdisc.ct import load_terminology
from cdisc.errors import SpecError
from cdisc.study import load_study
from cdisc.xpt import check_xpt
from cdisc.sdtm.trial_design import (
    build_trial_design,
    load_trial_design,
    shift_study_day,
    split_text,
    ts_values_from_dm,
)

SPECS = Path(__file__).resolve().parents[1] / "specs"


@pytest.fixture(scope="module")
def study():
    return load_study(SPECS)


@pytest.fixture(scope="module")
def ct():
    return load_terminology(SPECS)


@pytest.fixture(scope="module")
def design():
    return load_trial_design(SPECS)


@pytest.fixture(scope="module")
def built(study, design, ct):
    return build_trial_design(study, design, ct)


@pytest.fixture(scope="module")
def raw_yaml():
    return yaml.safe_load((SPECS / "trial_design.yaml").read_text(encoding="utf-8"))


def _load(tmp_path: Path, data: dict):
    (tmp_path / "trial_design.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_trial_design(tmp_path)


def _keys(exc: pytest.ExceptionInfo) -> list[str]:
    return [p.key for p in exc.value.problems]


# --- structure shared by all five datasets ------------------------------------------------

def test_columns_keys_class_and_xpt_conformance(built):
    assert sorted(built) == ["TA", "TE", "TI", "TS", "TV"]
    expected_keys = {"TS": ["STUDYID", "TSPARMCD", "TSSEQ"], "TA": ["STUDYID", "ARMCD", "TAETORD"],
                     "TE": ["STUDYID", "ETCD"], "TV": ["STUDYID", "VISITNUM", "ARMCD"],
                     "TI": ["STUDYID", "IETESTCD", "TIVERS"]}
    for name, (df, meta) in built.items():
        assert list(df.columns) == meta.names, name
        assert meta.keys == expected_keys[name]
        assert meta.class_ == "TRIAL DESIGN"
        assert (df["STUDYID"] == "VGO-Cs01p").all() and (df["DOMAIN"] == name).all()
        # natural keys identify each record (ARMCD is blank in TV, so VISITNUM alone)
        assert not df.duplicated([k for k in meta.keys]).any(), name
        assert check_xpt(df, meta) == [], name      # XPT v5 / TCG §4.1 limits hold
        assert all(len(v.label) <= 40 for v in meta.variables)


# --- TE -----------------------------------------------------------------------------------

def test_te_elements_from_study(built):
    te, _ = built["TE"]
    # study.yaml elements: SCRN, LD, CARNK (duration P28D), FU; only CARNK has a fixed duration
    assert te["ETCD"].tolist() == ["SCRN", "LD", "CARNK", "FU"]
    carnk = te.set_index("ETCD").loc["CARNK"]
    assert carnk["TEDUR"] == "P28D"
    assert carnk["TESTRL"] == "First VGO-Cs01p infusion"
    assert te["TEDUR"].isna().sum() == 3
    assert te.set_index("ETCD").loc["SCRN", "TESTRL"] == "Informed consent"


# --- TA -----------------------------------------------------------------------------------

def test_ta_three_arms_by_four_elements(built):
    ta, _ = built["TA"]
    assert len(ta) == 12                                   # 3 dose levels x 4 elements
    assert ta["ARMCD"].tolist() == ["DL1"] * 4 + ["DL2"] * 4 + ["DL3"] * 4
    for _, arm in ta.groupby("ARMCD"):
        assert arm["TAETORD"].tolist() == [1.0, 2.0, 3.0, 4.0]
        assert arm["ETCD"].tolist() == ["SCRN", "LD", "CARNK", "FU"]
        assert arm["EPOCH"].tolist() == ["SCREENING", "LYMPHODEPLETION", "TREATMENT", "FOLLOW-UP"]
    assert ta.loc[ta["ARMCD"] == "DL3", "ARM"].iloc[0] == "VGO-Cs01p 1x10^7 cells/kg"
    # TABRANCH only on the branch element SCRN (TA assumption 3): 3 records, one per arm
    branch = ta[ta["TABRANCH"].notna()]
    assert branch["ETCD"].tolist() == ["SCRN"] * 3
    assert branch["TABRANCH"].iloc[1].startswith("Assigned to dose level 2 (3x10^6")
    assert ta["TATRANS"].isna().all()                       # no transitions in the spec


def test_ta_transitions_and_unknown_codes(tmp_path, study, raw_yaml):
    data = copy.deepcopy(raw_yaml)
    data["trial_arms"]["transitions"] = {"LD": "If VGO-Cs01p is not infused, go to the Follow-up Epoch"}
    from cdisc.sdtm.trial_design import build_ta
    ta = build_ta(study, _load(tmp_path, data))
    assert ta["TATRANS"].notna().sum() == 3                 # the LD record of each of the 3 arms
    assert set(ta.loc[ta["TATRANS"].notna(), "ETCD"]) == {"LD"}
    data["trial_arms"]["transitions"] = {"LDX": "x"}
    data["trial_arms"]["branch"]["DL9"] = "y"
    with pytest.raises(SpecError) as exc:
        build_ta(study, _load(tmp_path, data))
    assert set(_keys(exc)) == {"trial_arms.transitions.LDX", "trial_arms.branch.DL9"}


# --- TV -----------------------------------------------------------------------------------

def test_tv_schedule_and_windows(built):
    tv, _ = built["TV"]
    assert len(tv) == 12                                    # 12 planned visits in study.yaml
    assert tv["ARMCD"].isna().all()                         # same schedule for all arms
    d28 = tv[tv["VISIT"] == "DAY 28"].iloc[0]
    assert (d28["VISITNUM"], d28["VISITDY"]) == (6.0, 28.0)
    # window 3 before / 3 after: 28 - 3 = 25, 28 + 3 = 31
    assert d28["TVSTRL"].endswith("not before study day 25")
    assert d28["TVENRL"] == "Not after study day 31"
    scr = tv[tv["VISITNUM"] == 1].iloc[0]
    # screening day -14, window 14 before / 7 after: -28 and -7 (no day 0 crossed)
    assert "study day -14" in scr["TVSTRL"] and scr["TVSTRL"].endswith("study day -28")
    assert scr["TVENRL"] == "Not after study day -7"
    eos = tv[tv["VISITNUM"] == 99].iloc[0]
    assert np.isnan(eos["VISITDY"])
    assert eos["TVSTRL"].startswith("Completion of the 12-month follow-up")


def test_shift_study_day_skips_day_zero():
    day = pd.Series([-1.0, 1.0, -3.0, 2.0, 28.0, np.nan])
    off = pd.Series([1.0, -1.0, 5.0, -3.0, 3.0, 1.0])
    # -1+1 -> 1 (no day 0); 1-1 -> -1; -3+5: -2,-1,1,2,3 -> 3; 2-3: 1,-1,-2 -> -2; 28+3 = 31
    out = shift_study_day(day, off)
    assert out.iloc[:5].tolist() == [1.0, -1.0, 3.0, -2.0, 31.0]
    assert np.isnan(out.iloc[5])


def test_tv_visit_without_day_needs_a_rule(tmp_path, study, raw_yaml):
    data = copy.deepcopy(raw_yaml)
    data["trial_visits"]["rules"] = []
    from cdisc.sdtm.trial_design import build_tv
    with pytest.raises(SpecError) as exc:
        build_tv(study, _load(tmp_path, data))
    assert "END OF STUDY" in str(exc.value) and _keys(exc) == ["trial_visits.rules"]


def test_tv_template_placeholders_checked(tmp_path, raw_yaml):
    data = copy.deepcopy(raw_yaml)
    data["trial_visits"]["start_template"] = "Day {day} {study.title}"
    with pytest.raises(SpecError) as exc:
        _load(tmp_path, data)
    assert _keys(exc) == ["trial_visits.start_template"]


# --- TI -----------------------------------------------------------------------------------

def test_ti_criteria(built):
    ti, _ = built["TI"]
    assert ti["IETESTCD"].is_unique
    assert ti["IETEST"].str.len().max() <= 200
    assert ti["IETEST"].map(str.isascii).all()
    counts = ti["IECAT"].value_counts().to_dict()
    assert counts == {"INCLUSION": 11, "EXCLUSION": 10}     # 11 INCL.., 10 EXCL.. in the spec
    assert (ti["TIVERS"] == "1.0").all()
    assert ti.loc[ti["IETESTCD"] == "INCL01", "IETEST"].iloc[0].startswith("Age 2 to 17 years")


def test_ti_rejects_long_or_non_ascii_text(tmp_path, raw_yaml):
    data = copy.deepcopy(raw_yaml)
    data["inclusion_exclusion"]["criteria"][0]["ietest"] = "Age \u2265 2 years"
    data["inclusion_exclusion"]["criteria"][1]["ietest"] = "x" * 201
    with pytest.raises(SpecError) as exc:
        _load(tmp_path, data)
    assert _keys(exc) == ["inclusion_exclusion.criteria[0].ietest", "inclusion_exclusion.criteria[1].ietest"]


# --- TS -----------------------------------------------------------------------------------

def _ts_value(ts: pd.DataFrame, parmcd: str) -> pd.Series:
    return ts[ts["TSPARMCD"] == parmcd].iloc[0]


def test_ts_core_values(built, ct):
    ts, meta = built["TS"]
    sst = _ts_value(ts, "SSTDTC")
    assert (sst["TSVAL"], sst["TSVCDREF"]) == ("2024-03-06", "ISO 8601")
    assert _ts_value(ts, "SDTIGVER")["TSVAL"] == "3.4"
    assert _ts_value(ts, "SDTMVER")["TSVAL"] == "2.0"
    tph = _ts_value(ts, "TPHASE")
    # TPHASE "PHASE I TRIAL" is C15600 in SDTM CT 2025-03-28 (study.yaml ct.sdtm)
    assert (tph["TSVAL"], tph["TSVALCD"], tph["TSVCDREF"], tph["TSVCDVER"]) == \
        ("PHASE I TRIAL", "C15600", "CDISC CT", "2025-03-28")
    assert _ts_value(ts, "STYPE")["TSVALCD"] == "C98388"
    assert _ts_value(ts, "RANDOM")[["TSVAL", "TSVALCD"]].tolist() == ["N", "C49487"]
    assert _ts_value(ts, "SENDTC")[["TSVALNF"]].tolist() == ["NAV"]
    assert pd.isna(_ts_value(ts, "REGID")["TSVAL"]) and _ts_value(ts, "REGID")["TSVALNF"] == "NA"
    assert _ts_value(ts, "DCUTDTC")[["TSVAL", "TSGRPID"]].tolist() == ["2026-02-28", "DCUT"]
    assert _ts_value(ts, "NARMS")["TSVAL"] == "3"
    # every TSPARMCD is a CT term and TSPARM is its decode
    cl = ct["TSPARMCD"]
    assert set(ts["TSPARMCD"]) <= set(cl.values)
    assert (ts["TSPARM"] == ts["TSPARMCD"].map(cl.decode_of())).all()
    assert ts["TSPARM"].str.len().max() <= 40


def test_ts_fda_parameters_present_and_valued(built):
    ts, _ = built["TS"]
    # validation/rules.yaml CDISC-XD-008 (error) and CDISC-XD-009 (warning) parameter lists
    required = {"SSTDTC", "SDTIGVER", "SDTMVER", "STYPE", "TPHASE", "TTYPE", "TITLE"}
    recommended = {"ACTSUB", "ADDON", "AGEMAX", "AGEMIN", "INDIC", "INTMODEL", "INTTYPE", "LENGTH",
                   "NARMS", "OBJPRIM", "PLANSUB", "RANDOM", "REGID", "SENDTC", "SEXPOP", "SPONSOR",
                   "TBLIND", "TCNTRL", "TDIGRP", "TINDTP", "TRT"}
    assert (required | recommended) <= set(ts["TSPARMCD"])
    # TSVAL xor TSVALNF on every record (TS: TSVAL null only when TSVALNF is populated)
    assert (ts["TSVAL"].notna() ^ ts["TSVALNF"].notna()).all()
    assert (ts["TSVALCD"].isna() | ts["TSVAL"].notna()).all()


def test_ts_sequence_groups_and_doses(built):
    ts, _ = built["TS"]
    ttype = ts[ts["TSPARMCD"] == "TTYPE"]
    assert ttype["TSSEQ"].tolist() == [1.0, 2.0, 3.0, 4.0]   # 4 TTYPE entries in the spec
    assert ttype["TSVAL"].tolist() == ["SAFETY", "DOSE FINDING", "PHARMACOKINETIC", "EFFICACY"]
    dose = ts[ts["TSPARMCD"] == "DOSE"]
    # study.yaml arm doses 1.0, 3.0, 10.0 (10^6 cells/kg), grouped by ARMCD
    assert dose[["TSSEQ", "TSGRPID", "TSVAL"]].values.tolist() == \
        [[1.0, "DL1", "1"], [2.0, "DL2", "3"], [3.0, "DL3", "10"]]
    assert ts[ts["TSPARMCD"] == "FCNTRY"]["TSVAL"].tolist() == ["CHN", "CAN", "USA"]


def test_ts_title_split_over_200(built, study):
    ts, meta = built["TS"]
    title = _ts_value(ts, "TITLE")
    full = " ".join(study.title.split())
    assert len(full) == 214                                 # > 200: needs TSVAL1
    assert "TSVAL1" in meta.names and meta.names.index("TSVAL1") == meta.names.index("TSVAL") + 1
    assert len(title["TSVAL"]) <= 200 and title["TSVAL"] + " " + title["TSVAL1"] == full
    assert ts["TSVAL"].dropna().str.len().max() <= 200


def test_split_text_pieces():
    words = " ".join(["abcdefghi"] * 45)                  # 45 * 10 - 1 = 449 characters
    long_word = "x" * 250
    out = split_text(pd.Series([words, long_word, np.nan, "short"]))
    assert out.shape[1] == 3
    first = out.iloc[0].tolist()
    # 20 words = 199 characters fit; 20 + 20 + 5 words
    assert [len(p) for p in first] == [199, 199, 49] and " ".join(first) == words
    assert [len(out.iloc[1, 0]), len(out.iloc[1, 1])] == [200, 50]
    assert out.iloc[2].isna().all() and out.iloc[3, 0] == "short"


def test_ts_overrides_from_dm(study, design, ct):
    dm = pd.DataFrame({
        "USUBJID": ["S-1", "S-2", "S-3"],
        "ARMCD": ["DL1", np.nan, "DL2"],                    # S-2 is a screen failure
        "RFICDTC": ["2024-03-08T09:10", "2024-03-01", "2024-04-10"],
    })
    values = ts_values_from_dm(dm)
    # enrolled: S-1 and S-3 -> ACTSUB 2; earliest consent among them 2024-03-08
    assert values == {"ACTSUB": "2", "SSTDTC": "2024-03-08"}
    ts = build_trial_design(study, design, ct, overrides=values)["TS"][0]
    assert _ts_value(ts, "ACTSUB")["TSVAL"] == "2"
    assert _ts_value(ts, "SSTDTC")["TSVAL"] == "2024-03-08"
    with pytest.raises(SpecError) as exc:                  # RANDQT is not in the spec
        build_trial_design(study, design, ct, overrides={"RANDQT": "0.5"})
    assert "RANDQT" in str(exc.value)
    with pytest.raises(SpecError) as exc:
        build_trial_design(study, design, ct, overrides={"SSTDTC": "06-MAR-2024"})
    assert _keys(exc) == ["overrides.SSTDTC"]


# --- bad specs ----------------------------------------------------------------------------

def test_bad_yaml_unknown_key_and_missing_value(tmp_path, raw_yaml):
    data = copy.deepcopy(raw_yaml)
    data["trial_summary"][2] = {"parmcd": "REGID"}                          # neither value nor valnf
    data["trial_summary"][3] = {"parmcd": "SDTIGVER", "vlaue": "3.4"}       # misspelt key
    data["trial_summary"][4] = {"parmcd": "SDTMVER", "value": "2.0", "valnf": "NA"}  # both
    with pytest.raises(SpecError) as exc:
        _load(tmp_path, data)
    keys = _keys(exc)
    assert "trial_summary[2]" in keys and "trial_summary[3].vlaue" in keys and "trial_summary[4]" in keys
    assert "exactly one of value, valnf, derive" in str(exc.value)
    assert all(p.file == "specs/trial_design.yaml" for p in exc.value.problems)


def test_bad_yaml_boolean_and_null_flavor(tmp_path, raw_yaml):
    data = copy.deepcopy(raw_yaml)
    data["trial_summary"][0] = {"parmcd": "RANDOM", "value": True}          # unquoted yes
    data["trial_summary"][1] = {"parmcd": "SENDTC", "valnf": "NOTYET"}
    with pytest.raises(SpecError) as exc:
        _load(tmp_path, data)
    assert _keys(exc) == ["trial_summary[0].value", "trial_summary[1].valnf"]


def test_build_rejects_values_outside_ct_and_bad_formats(tmp_path, study, ct, raw_yaml):
    data = copy.deepcopy(raw_yaml)
    params = data["trial_summary"]
    idx = {p["parmcd"]: i for i, p in enumerate(params)}
    params[idx["TPHASE"]]["value"] = "PHASE 1"                              # not a TPHASE term
    params[idx["SSTDTC"]]["value"] = "2024-13-06"                           # month 13
    params[idx["AGEMAX"]]["value"] = "17 years"
    params.append({"parmcd": "PDOSFRM", "value": "SUSPENSION"})             # not a TSPARMCD term
    design = _load(tmp_path, data)
    with pytest.raises(SpecError) as exc:
        build_trial_design(study, design, ct)
    assert set(_keys(exc)) == {f"trial_summary[{idx['TPHASE']}].value",
                               f"trial_summary[{idx['SSTDTC']}].value",
                               f"trial_summary[{idx['AGEMAX']}].value",
                               f"trial_summary[{len(params) - 1}].parmcd"}
    assert "PHASE I TRIAL" in str(exc.value)                                # the hint lists terms


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError) as exc:
        load_trial_design(tmp_path)
    assert "not found" in str(exc.value)
