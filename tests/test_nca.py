"""Tests for adam.nca: values computed by hand, arithmetic in the comments.

ln = natural log. Linear trapezoid: (C1 + C2) / 2 * dt; log trapezoid (C1 > C2 > 0):
(C1 - C2) * dt / ln(C1 / C2).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cdisc.adam.nca import BLQRule, PARAMETER_ORDER, iso_hours, nca_parameters
from cdisc.errors import DataError, InputError, SpecError

LN2 = math.log(2.0)
REL = 1e-9


def profile(usubjid, times, concs, blq=None, studyid="VGO-Cs01p"):
    n = len(times)
    return pd.DataFrame({
        "STUDYID": [studyid] * n,
        "USUBJID": [usubjid] * n,
        "AFRLT": [float(x) for x in times],
        "PCSTRESN": [np.nan if x is None else float(x) for x in concs],
        "PCBLFL": blq if blq is not None else [""] * n,
    })


def run(df, **kw):
    kw.setdefault("blq_flag", "PCBLFL")
    return nca_parameters(df, by=["STUDYID", "USUBJID"], time="AFRLT", value="PCSTRESN", **kw)


def val(out, paramcd, usubjid=None):
    rows = out[out["PARAMCD"] == paramcd]
    if usubjid is not None:
        rows = rows[rows["USUBJID"] == usubjid]
    assert len(rows) == 1
    return rows.iloc[0]


# t = 0, 1, 4, 24, 72, 168 h; C = 0, 2, 10, 40, 20, 5 cells/uL
BASIC = profile("S1", [0, 1, 4, 24, 72, 168], [0, 2, 10, 40, 20, 5])
# linear up: 0-1: (0+2)/2*1 = 1; 1-4: (2+10)/2*3 = 18; 4-24: (10+40)/2*20 = 500 -> 519
# log down: 24-72: (40-20)*48/ln(40/20) = 960/ln2; 72-168: (20-5)*96/ln(4) = 1440/(2 ln2)
#           = 720/ln2 -> 1680/ln2
BASIC_AUCLST = 519.0 + 1680.0 / LN2   # = 2942.7276686934...


def test_rising_then_falling_profile():
    out = run(BASIC)
    assert val(out, "CMAX").AVAL == 40.0
    assert val(out, "TMAX").AVAL == 24.0
    assert val(out, "CLST").AVAL == 5.0
    assert val(out, "TLST").AVAL == 168.0
    assert val(out, "AUCLST").AVAL == pytest.approx(BASIC_AUCLST, rel=REL)
    assert val(out, "AUCLST").AVAL == pytest.approx(2942.7276686934, rel=1e-12)
    assert val(out, "CMAX").NPTS == 6
    assert val(out, "AUCLST").NPTS == 6
    # units: time in hours, AUC in h*cells/uL
    assert list(out["AVALU"]) == ["cells/uL", "h", "cells/uL", "h", "h*cells/uL", "h*cells/uL"]
    assert val(out, "CMAX").PARAM == "Max Conc"
    assert val(out, "AUCINT").PARAM == "AUC from T1 to T2"
    assert (out["REASON"].iloc[:5] == "").all()


def test_log_down_interpolation_inside_interval():
    # AUC 0-48 h: 48 h lies in the log-down segment 24-72 h (40 -> 20):
    # C(48) = 40 * exp(-(24/48) * ln2) = 40/sqrt(2) = 20*sqrt(2)
    # area 24-48 = (40 - 20*sqrt(2)) * 48 / ln2   (exponential through both points)
    # AUC 0-48 = 519 + (40 - 20 sqrt2) * 48 / ln2 = 1330.30674104...
    out = run(BASIC, auc_end=48.0)
    r = val(out, "AUCINT")
    assert r.AVAL == pytest.approx(519.0 + (40.0 - 20.0 * math.sqrt(2.0)) * 48.0 / LN2, rel=REL)
    assert r.NPTS == 4          # observed samples at 0, 1, 4, 24 h
    assert (r.PPSTINT, r.PPENINT) == ("PT0H", "PT48H")
    assert r.NOTE == "C(48 h) interpolated (log-linear)"


def test_interval_start_inside_profile():
    # AUC 4-72 h: 4-24 linear (10+40)/2*20 = 500; 24-72 log 960/ln2 -> 500 + 960/ln2
    out = run(BASIC, auc_start=4.0, auc_end=72.0)
    r = val(out, "AUCINT")
    assert r.AVAL == pytest.approx(500.0 + 960.0 / LN2, rel=REL)
    assert (r.PPSTINT, r.PPENINT) == ("PT4H", "PT72H")
    assert r.NPTS == 3
    # AUC 2-72 h: C(2) on the linear segment 1-4 (2 -> 10) = 2 + (1/3)*8 = 14/3;
    # area 2-4 = (14/3 + 10)/2 * 2 = 44/3; + 500 + 960/ln2
    r = val(run(BASIC, auc_start=2.0, auc_end=72.0), "AUCINT")
    assert r.AVAL == pytest.approx(44.0 / 3.0 + 500.0 + 960.0 / LN2, rel=REL)
    assert r.NOTE == "C(2 h) interpolated (linear)"


def test_profile_ending_before_672h_has_missing_aucint_with_reason():
    r = val(run(BASIC), "AUCINT")
    assert math.isnan(r.AVAL)
    assert r.REASON == "last usable concentration at 168 h is before the interval end (672 h)"
    assert r.NOTE == ""
    assert (r.PPSTINT, r.PPENINT) == ("PT0H", "PT672H")


def test_sample_after_672h_log_interpolation():
    # t = 0, 24, 336, 504, 840 h; C = 0, 100, 50, 20, 10
    df = profile("S2", [0, 24, 336, 504, 840], [0, 100, 50, 20, 10])
    # 0-24 linear: 100/2*24 = 1200
    # 24-336 log: (100-50)*312/ln2 = 15600/ln2
    # 336-504 log: (50-20)*168/ln(2.5) = 5040/ln2.5
    # 504-840 declines 20 -> 10 (log); 672 is half way: C(672) = 20*2^-0.5 = 10 sqrt2,
    # area 504-672 = (20 - 10 sqrt2) * 336 / ln2   (dt of the whole segment / ln(C1/C2))
    expected = (1200.0 + 15600.0 / LN2 + 5040.0 / math.log(2.5)
                + (20.0 - 10.0 * math.sqrt(2.0)) * 336.0 / LN2)   # = 32046.0538...
    r = val(run(df), "AUCINT")
    assert r.AVAL == pytest.approx(expected, rel=REL)
    assert r.NPTS == 4          # 840 h is outside the interval
    assert r.NOTE == "C(672 h) interpolated (log-linear)"
    # AUCLST runs to Tlast = 840: 504-840 full log segment (20-10)*336/ln2 = 3360/ln2
    lst = 1200.0 + 15600.0 / LN2 + 5040.0 / math.log(2.5) + 3360.0 / LN2
    assert val(run(df), "AUCLST").AVAL == pytest.approx(lst, rel=REL)


def test_sample_after_672h_linear_interpolation_when_rising():
    # t = 0, 600, 744; C = 0, 10, 16 (still rising at 672 h)
    # C(672) = 10 + (72/144)*(16-10) = 13
    # 0-600: (0+10)/2*600 = 3000; 600-672: (10+13)/2*72 = 828 -> 3828
    df = profile("S3", [0, 600, 744], [0, 10, 16])
    r = val(run(df), "AUCINT")
    assert r.AVAL == pytest.approx(3828.0, rel=REL)
    assert r.NOTE == "C(672 h) interpolated (linear)"
    # last observation exactly at 672 h: no interpolation needed
    df = profile("S3", [0, 600, 672], [0, 10, 13])
    r = val(run(df), "AUCINT")
    assert r.AVAL == pytest.approx(3828.0, rel=REL)
    assert r.NOTE == ""


# pre-dose BLQ at -0.5 h, embedded BLQ at 4 h, trailing BLQ at 336, 504, 672 h
BLQ_TIMES = [-0.5, 1, 4, 24, 72, 168, 336, 504, 672]
BLQ_CONCS = [None, 5, None, 40, 20, 5, None, None, None]
BLQ_FLAGS = ["Y", "N", "Y", "N", "N", "N", "Y", "Y", "Y"]


def test_blq_default_rule():
    out = run(profile("S4", BLQ_TIMES, BLQ_CONCS, BLQ_FLAGS))
    # used points: (0, 0) [pre-dose BLQ -> 0, placed at t=0], (1, 5), (24, 40), (72, 20),
    # (168, 5); the embedded BLQ at 4 h and the trailing BLQs are excluded.
    # 0-1: (0+5)/2*1 = 2.5; 1-24: (5+40)/2*23 = 517.5; 24-72: 960/ln2; 72-168: 720/ln2
    assert val(out, "AUCLST").AVAL == pytest.approx(520.0 + 1680.0 / LN2, rel=REL)
    assert val(out, "CMAX").AVAL == 40.0
    assert val(out, "CMAX").NPTS == 5
    assert val(out, "TLST").AVAL == 168.0
    assert val(out, "AUCLST").NOTE == ""     # pre-dose sample exists, no C(0) imputed
    r = val(out, "AUCINT")
    assert math.isnan(r.AVAL)
    assert r.REASON == ("last usable concentration at 168 h is before the interval end "
                        "(672 h); 3 BLQ sample(s) after Clast excluded by "
                        "BLQRule.trailing='missing'")


def test_blq_zero_rules():
    rule = BLQRule(leading="zero", embedded="zero", trailing="zero")
    out = run(profile("S4", BLQ_TIMES, BLQ_CONCS, BLQ_FLAGS), blq_rule=rule)
    # points: (0,0) (1,5) (4,0) (24,40) (72,20) (168,5) (336,0) (504,0) (672,0)
    # 0-1: 2.5; 1-4 declines to 0 -> linear (log needs both > 0): (5+0)/2*3 = 7.5;
    # 4-24: (0+40)/2*20 = 400; 24-168: 1680/ln2 (as above); 168-336: (5+0)/2*168 = 420;
    # 336-672: 0
    assert val(out, "AUCLST").AVAL == pytest.approx(410.0 + 1680.0 / LN2, rel=REL)
    assert val(out, "AUCINT").AVAL == pytest.approx(830.0 + 1680.0 / LN2, rel=REL)
    assert val(out, "AUCINT").NPTS == 9
    assert val(out, "TLST").AVAL == 168.0    # zeros are not "nonzero" concentrations


def test_blq_from_lloq_column():
    # Same profile, BLQ coded as a value below the row's LLOQ (0.5 cells/uL) instead of a flag
    df = profile("S4", BLQ_TIMES, [0.1, 5, 0.2, 40, 20, 5, 0.3, 0, 0.1])
    df["LLOQ"] = 0.5
    out = run(df, blq_flag=None, lloq="LLOQ")
    assert val(out, "AUCLST").AVAL == pytest.approx(520.0 + 1680.0 / LN2, rel=REL)
    assert math.isnan(val(out, "AUCINT").AVAL)


def test_no_predose_sample_imputes_c0():
    df = BASIC.iloc[1:]     # drop the t=0 sample
    out = run(df)
    # C(0)=0 imputed, so the area is unchanged: 519 + 1680/ln2
    r = val(out, "AUCLST")
    assert r.AVAL == pytest.approx(BASIC_AUCLST, rel=REL)
    assert r.NPTS == 5      # the imputed C(0) is not an observed point
    assert r.NOTE == "C(0)=0 imputed (no pre-dose sample)"
    r = val(run(df, impute_c0=False), "AUCLST")
    assert math.isnan(r.AVAL)
    assert r.REASON == "no concentration at time 0 (no pre-dose sample and impute_c0=False)"


def test_quantifiable_predose_at_negative_time_is_c0():
    # pre-dose 3 at -1 h (placed at t = 0), an older pre-dose sample at -24 h is ignored
    df = profile("S5", [-24, -1, 2, 10], [100, 3, 9, 1])
    out = run(df)
    # 0-2: (3+9)/2*2 = 12; 2-10 log: (9-1)*8/ln9 = 64/ln9
    assert val(out, "AUCLST").AVAL == pytest.approx(12.0 + 64.0 / math.log(9.0), rel=REL)
    assert val(out, "CMAX").AVAL == 9.0       # the -24 h sample is not used
    assert val(out, "CMAX").NPTS == 3


def test_cmax_ties_take_first_occurrence():
    df = profile("S6", [0, 1, 2, 3], [0, 10, 10, 5])
    out = run(df)
    assert val(out, "CMAX").AVAL == 10.0
    assert val(out, "TMAX").AVAL == 1.0
    # 0-1: 5; 1-2 equal -> linear: 10; 2-3 log: (10-5)*1/ln2 -> 15 + 5/ln2
    assert val(out, "AUCLST").AVAL == pytest.approx(15.0 + 5.0 / LN2, rel=REL)


def test_all_blq_subject():
    df = profile("S7", [0, 24, 168, 672], [None] * 4, ["Y"] * 4)
    out = run(df)
    # all BLQ are "leading" (no quantifiable sample) -> 0
    assert val(out, "CMAX").AVAL == 0.0
    assert val(out, "CMAX").NPTS == 4
    assert math.isnan(val(out, "TMAX").AVAL)
    assert val(out, "TMAX").REASON == "all usable concentrations are BLQ or zero: Tmax undefined"
    assert math.isnan(val(out, "CLST").AVAL) and math.isnan(val(out, "TLST").AVAL)
    assert val(out, "AUCLST").AVAL == 0.0
    assert val(out, "AUCLST").NOTE == "all usable concentrations are BLQ or zero: AUC = 0"
    assert val(out, "AUCINT").AVAL == 0.0    # samples reach 672 h, all zero
    # with leading BLQ excluded nothing is left
    out = run(df, blq_rule=BLQRule(leading="missing"))
    assert out["AVAL"].isna().all()
    assert (out["REASON"].str.startswith("no usable concentration")).all()
    assert (out["NPTS"] == 0).all()


def test_vectorised_equals_one_at_a_time_and_sorted_output():
    s1 = profile("S1", [0, 1, 4, 24, 72, 168], [0, 2, 10, 40, 20, 5])
    s2 = profile("S2", [0, 24, 336, 504, 840], [0, 100, 50, 20, 10])
    s4 = profile("S4", BLQ_TIMES, BLQ_CONCS, BLQ_FLAGS)
    together = pd.concat([s4, s2, s1], ignore_index=True).sample(frac=1.0, random_state=7)
    out = run(together)
    assert list(out["USUBJID"]) == [u for u in ("S1", "S2", "S4") for _ in PARAMETER_ORDER]
    assert list(out["PARAMCD"]) == list(PARAMETER_ORDER) * 3
    assert list(out.columns) == ["STUDYID", "USUBJID", "PARAMCD", "PARAM", "AVAL", "AVALU",
                                 "NPTS", "PPSTINT", "PPENINT", "REASON", "NOTE"]
    for single in (s1, s2, s4):
        usubjid = single["USUBJID"].iloc[0]
        part = out[out["USUBJID"] == usubjid].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, run(single))
    # by-column order is the order given
    swapped = nca_parameters(together, by=["USUBJID", "STUDYID"], time="AFRLT",
                             value="PCSTRESN", blq_flag="PCBLFL")
    assert list(swapped.columns[:2]) == ["USUBJID", "STUDYID"]
    assert swapped["AVAL"].equals(out["AVAL"])


def test_bad_inputs_raise_located_errors():
    dup = pd.concat([BASIC, BASIC.iloc[[3]]], ignore_index=True)
    with pytest.raises(DataError, match="same time 24 h"):
        run(dup)
    no_time = BASIC.copy()
    no_time.loc[2, "AFRLT"] = np.nan
    with pytest.raises(DataError, match="no actual time"):
        run(no_time)
    # a not-done sample (no value, not BLQ) without a time is simply ignored
    not_done = pd.concat([BASIC, profile("S1", [np.nan], [None])], ignore_index=True)
    assert val(run(not_done), "AUCLST").AVAL == pytest.approx(BASIC_AUCLST, rel=REL)
    bad_flag = BASIC.assign(PCBLFL="maybe")
    with pytest.raises(DataError, match="not Y/N/blank"):
        run(bad_flag)
    with pytest.raises(InputError, match="column PCORRES"):
        nca_parameters(BASIC, by=["USUBJID"], time="AFRLT", value="PCORRES")
    with pytest.raises(SpecError):
        run(BASIC, auc_start=10.0, auc_end=5.0)


def test_iso_hours():
    assert iso_hours(672) == "PT672H"
    assert iso_hours(0.5) == "PT0.5H"
