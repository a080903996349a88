"""Hand-checked values for the NCA parameters beyond Cmax/Tmax/Clast/Tlast/AUClast/AUCint
(adam.nca), and PKNCA's own published test values (humanpred/pknca, tests/testthat)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cdisc.adam.nca import (ALL_PARAMETERS, BLQRule, LambdaZRule, accumulation_ratios,
                      nca_lambda_z_flags, nca_parameters, renal_clearance, time_since_dose,
                      urine_parameters)
from cdisc.errors import DataError, SpecError

LN2 = np.log(2.0)


def frame(t, c, uid="S1", **cols):
    return pd.DataFrame({"USUBJID": uid, "T": t, "C": c, **cols})


def run(df, params, **kw):
    out = nca_parameters(df, by=["USUBJID"], time="T", value="C", parameters=params, **kw)
    return out.set_index("PARAMCD")["AVAL"].to_dict(), out


# Profile A: a peak at 1 h, then halving every 2 h from t = 2 (8, 4, 2, 1):
# ln C on t = 2, 4, 6, 8 lies on one line of slope -ln2/2, so lambda z = ln2/2 = 0.34657,
# half-life 2 h, R2 = adjusted R2 = 1 for the last 3 and the last 4 points; the tie goes to
# the fit with most points: 4 points, LAMZLL 2 h, LAMZUL 8 h (Tmax = 1 h excluded).
A_T = [0, 1, 2, 4, 6, 8]
A_C = [0, 16, 8, 4, 2, 1]


def test_lambda_z_exact_exponential_tail():
    v, out = run(frame(A_T, A_C), ["LAMZ", "LAMZHL", "LAMZNPT", "R2", "R2ADJ", "LAMZLL",
                                   "LAMZUL", "LAMZSPN"])
    assert v["LAMZ"] == pytest.approx(LN2 / 2)
    assert v["LAMZHL"] == pytest.approx(2.0)
    assert v["LAMZNPT"] == 4
    assert v["R2"] == pytest.approx(1.0) and v["R2ADJ"] == pytest.approx(1.0)
    assert (v["LAMZLL"], v["LAMZUL"]) == (2.0, 8.0)
    assert v["LAMZSPN"] == pytest.approx((8 - 2) / 2.0)        # span / half-life = 3
    assert list(out["AVALU"]) == ["1/h", "h", "", "", "", "h", "h", ""]


def test_auc_methods_aucinf_aumc_mrt_and_dose():
    df = frame(A_T, A_C, DOSE=100.0)
    params = ["AUCLST", "AUCIFO", "AUCIFP", "AUCPEO", "AUCPEP", "AUMCLST", "AUMCIFO",
              "MRTEVLST", "MRTEVIFO", "MRTICIFO", "CLFO", "CLO", "CLP", "VZFO", "VZO", "CMAXD",
              "AUCLSTD", "AUCIFOD"]
    lin, out = run(df, params, auc_method="linear", dose="DOSE", dose_unit="mg",
                   conc_unit="ug/mL", infusion_duration=1.0)
    # linear trapezoids: [0,1] 8, [1,2] 12, [2,4] 12, [4,6] 6, [6,8] 3 -> 41
    assert lin["AUCLST"] == pytest.approx(41.0)
    # Clast/lambda z = 1 / (ln2/2) = 2/ln2 = 2.88539; Clast pred = 1 exactly
    ext = 2 / LN2
    assert lin["AUCIFO"] == pytest.approx(41 + ext)
    assert lin["AUCIFP"] == pytest.approx(41 + ext)
    assert lin["AUCPEO"] == pytest.approx(100 * ext / (41 + ext))   # 6.575 %
    # AUMC (PKNCA linear: dt (t1 C1 + t2 C2)/2): 8 + 16 + 32 + 28 + 20 = 104
    assert lin["AUMCLST"] == pytest.approx(104.0)
    # AUMCinf = 104 + Clast Tlast/lz + Clast/lz^2 = 104 + 8*2/ln2 + (2/ln2)^2
    aumcifo = 104 + 16 / LN2 + ext ** 2
    assert lin["AUMCIFO"] == pytest.approx(aumcifo)
    assert lin["MRTEVLST"] == pytest.approx(104 / 41)
    assert lin["MRTEVIFO"] == pytest.approx(aumcifo / (41 + ext))
    assert lin["MRTICIFO"] == pytest.approx(aumcifo / (41 + ext) - 0.5)   # - duration/2
    # CL = dose/AUCinf, Vz = CL/lz; the O and FO codes are the same number
    assert lin["CLFO"] == pytest.approx(100 / (41 + ext)) and lin["CLO"] == lin["CLFO"]
    assert lin["CLP"] == pytest.approx(100 / (41 + ext))
    assert lin["VZFO"] == pytest.approx(100 / (41 + ext) / (LN2 / 2)) and lin["VZO"] == lin["VZFO"]
    assert lin["CMAXD"] == pytest.approx(16 / 100)
    assert lin["AUCLSTD"] == pytest.approx(0.41)
    assert lin["AUCIFOD"] == pytest.approx((41 + ext) / 100)
    units = out.set_index("PARAMCD")["AVALU"]
    assert units["CLFO"] == "mg/(h*ug/mL)" and units["VZFO"] == "mg/(ug/mL)"
    assert units["AUMCLST"] == "h2*ug/mL" and units["CMAXD"] == "ug/mL/mg"
    # lin-up/log-down: [0,1] up 8; declines (C1-C2) dt/ln(C1/C2): 8/ln2 + 8/ln2 + 4/ln2
    # + 2/ln2 = 22/ln2 -> 8 + 31.739 = 39.739
    log, _ = run(df, ["AUCLST", "AUCIFO", "AUMCLST"], dose="DOSE")
    assert log["AUCLST"] == pytest.approx(8 + 22 / LN2)
    assert log["AUCIFO"] == pytest.approx(8 + 24 / LN2)
    # PKNCA log AUMC on [2,4]: dt (t2C2 - t1C1)/ln(C2/C1) - dt^2 (C2-C1)/ln(C2/C1)^2
    # = 2*(16-16)/(-ln2) - 4*(-4)/ln2^2 = 16/ln2^2 = 33.30; check the total against the
    # segment formula written out for all five segments
    def seg(t1, t2, c1, c2):
        if c2 < c1 and c2 > 0:
            r = np.log(c2 / c1)
            return (t2 - t1) * (c2 * t2 - c1 * t1) / r - (t2 - t1) ** 2 * (c2 - c1) / r ** 2
        return (t2 - t1) * (c1 * t1 + c2 * t2) / 2
    assert seg(2, 4, 8, 4) == pytest.approx(16 / LN2 ** 2)
    assert log["AUMCLST"] == pytest.approx(sum(seg(A_T[i], A_T[i + 1], A_C[i], A_C[i + 1])
                                               for i in range(5)))


def test_aucall_triangle_to_first_blq_after_tlast():
    # a BLQ at 12 h after Clast = 1 at 8 h: AUCALL = AUCLST + 1 * (12 - 8) / 2 = +2
    df = frame(A_T + [12], A_C + [np.nan], BLQ=[0] * 6 + [1])
    v, _ = run(df, ["AUCLST", "AUCALL"], auc_method="linear", blq_flag="BLQ",
               blq_rule=BLQRule(trailing="zero"))
    assert (v["AUCLST"], v["AUCALL"]) == (pytest.approx(41.0), pytest.approx(43.0))
    # trailing BLQ excluded by the rule: nothing after Tlast, AUCALL = AUCLST
    v, _ = run(df, ["AUCLST", "AUCALL"], auc_method="linear", blq_flag="BLQ")
    assert v["AUCALL"] == pytest.approx(41.0)


def test_pknca_auc_blq_middle_and_end():
    # PKNCA tests/testthat/test-auc.R "Confirm BLQ in the middle or end": conc 0,2,0,1,2,1,0,0
    # at 0..7, conc.blq="keep" (zeros kept): linear AUClast = 1+1+0.5+1.5+1.5,
    # AUCall = AUClast + 0.5; lin up/log down: 1+1+0.5+1.5+1/ln2 (+0.5)
    df = frame(list(range(8)), [0, 2, 0, 1, 2, 1, 0, 0])
    v, _ = run(df, ["AUCLST", "AUCALL"], auc_method="linear")
    assert (v["AUCLST"], v["AUCALL"]) == (pytest.approx(5.5), pytest.approx(6.0))
    v, _ = run(df, ["AUCLST", "AUCALL"])
    assert v["AUCLST"] == pytest.approx(4 + 1 / LN2)
    assert v["AUCALL"] == pytest.approx(4.5 + 1 / LN2)


def test_pknca_half_life_values():
    # PKNCA tests/testthat/test-half.life.R, pk.calc.half.life(conc=c(1, 0.5, 0.25, 0.1251),
    # time=c(0, 1, 2, 3)): Tmax excluded -> half.life 1.000577
    df = frame([0, 1, 2, 3], [1, 0.5, 0.25, 0.1251])
    v, _ = run(df, ["LAMZHL"])
    assert v["LAMZHL"] == pytest.approx(1.000577, abs=1e-5)
    # allow.tmax.in.half.life=TRUE, adj.r.squared.factor=0.01: 4 points, lambda.z 0.6929073,
    # r.squared 0.9999999, clast.pred 0.12507 (AUCIFP - AUCLST = clast.pred/lambda.z),
    # half.life 1.000346, span.ratio 2.998962
    rule = LambdaZRule(allow_tmax=True, adj_r2_factor=0.01)
    v, _ = run(df, ["LAMZ", "LAMZNPT", "R2", "LAMZHL", "LAMZSPN", "AUCLST", "AUCIFP"],
               lambda_z=rule)
    assert v["LAMZ"] == pytest.approx(0.6929073, rel=1e-6)
    assert v["LAMZNPT"] == 4
    assert v["R2"] == pytest.approx(0.9999999, abs=1e-7)
    assert v["LAMZHL"] == pytest.approx(1.000346, abs=1e-6)
    assert v["LAMZSPN"] == pytest.approx(2.998962, abs=1e-6)
    assert (v["AUCIFP"] - v["AUCLST"]) * v["LAMZ"] == pytest.approx(0.12507, abs=1e-5)


def test_pknca_theophylline_subject_1():
    # datasets::Theoph subject 1 (R), PKNCA tests/testthat/test-half.life.R: pk.nca
    # half.life = 14.30438 (lambda z on the last 3 points, 9.05-24.37 h)
    t = [0, 0.25, 0.57, 1.12, 2.02, 3.82, 5.10, 7.03, 9.05, 12.12, 24.37]
    c = [0.74, 2.84, 6.57, 10.50, 9.66, 8.58, 8.36, 7.47, 6.89, 5.94, 3.28]
    df = frame(t, c)
    v, _ = run(df, ["CMAX", "TMAX", "LAMZHL", "LAMZNPT", "LAMZLL"])
    assert v["LAMZHL"] == pytest.approx(14.30438, abs=1e-5)
    assert (v["CMAX"], v["TMAX"], v["LAMZNPT"], v["LAMZLL"]) == (10.5, 1.12, 3, 9.05)
    flags = nca_lambda_z_flags(df, by=["USUBJID"], time="T", value="C")
    assert list(flags) == [""] * 8 + ["Y"] * 3


def test_tolerance_rule_takes_fewer_points_when_clearly_better():
    # t 1..5 after a peak at 0: the last 3 points (ln C 2, 1, 0 at 3, 4, 5) are exactly
    # linear (adj R2 = 1); adding (2, e^2.5) bends the line: its adj R2 is far below
    # 1 - 1e-4, so the 3-point fit is kept (lambda z = 1).
    df = frame([0, 2, 3, 4, 5], [100, np.exp(2.5), np.exp(2), np.exp(1), 1.0])
    v, _ = run(df, ["LAMZ", "LAMZNPT", "LAMZLL"])
    assert (v["LAMZNPT"], v["LAMZLL"]) == (3, 3.0)
    assert v["LAMZ"] == pytest.approx(1.0)


def test_no_lambda_z_reasons():
    v, out = run(frame([0, 1, 2, 3, 4], [0, 5, 2, 3, 4]), ["LAMZ", "AUCIFO"])
    # after Tmax (t=1): 2, 3, 4 rise -> every fit has lambda z < 0 -> none selected
    assert np.isnan(v["LAMZ"]) and np.isnan(v["AUCIFO"])
    r = out.set_index("PARAMCD")["REASON"]
    assert r["LAMZ"].startswith("no terminal phase")
    assert r["AUCIFO"].startswith("no terminal phase")
    v, out = run(frame([0, 1, 2], [0, 5, 2]), ["LAMZ"])
    assert np.isnan(v["LAMZ"])
    assert "fewer than 3" in out["REASON"].iloc[0]
    # every positive concentration equal: no variability in ln C (PKNCA #503)
    v, out = run(frame([0, 1, 2, 3, 4], [0, 2, 2, 2, 2]), ["LAMZ"])
    assert np.isnan(v["LAMZ"]) and "no variability" in out["REASON"].iloc[0]


def test_manual_lambda_z_selection():
    # PKNCA include_half.life: exactly the flagged points (here Tmax and the two after)
    df = frame(A_T, A_C, INC=[False, True, True, True, False, False])
    v, _ = run(df, ["LAMZ", "LAMZNPT", "LAMZLL", "LAMZUL"], lamz_include="INC")
    # points (1,16), (2,8), (4,4): ln 16, ln 8, ln 4 at 1, 2, 4; least squares slope
    x, y = np.array([1, 2, 4.0]), np.log([16, 8, 4.0])
    slope = ((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()
    assert v["LAMZ"] == pytest.approx(-slope)      # = 0.6931*9/14... = 0.4951
    assert (v["LAMZNPT"], v["LAMZLL"], v["LAMZUL"]) == (3, 1.0, 4.0)
    flags = nca_lambda_z_flags(df, by=["USUBJID"], time="T", value="C", lamz_include="INC")
    assert list(flags) == ["", "Y", "Y", "Y", "", ""]


def test_dosing_interval_parameters():
    # steady state, tau = 8 h: pre-dose 2 (placed at t = 0), peak 10 at 1 h, then halving
    # every 2 h from 8 at 2 h: lambda z = ln2/2.
    df = frame([-0.25, 1, 2, 4, 6, 8], [2, 10, 8, 4, 2, 1])
    v, out = run(df, ["CMAX", "CMIN", "CTROUGH", "AUCTAU", "CAVG", "FLUCP", "SWING", "AILAMZ"],
                 tau=8.0, impute_c0=False, auc_method="linear")
    # linear: [0,1] 6, [1,2] 9, [2,4] 12, [4,6] 6, [6,8] 3 -> 36
    assert v["AUCTAU"] == pytest.approx(36.0)
    assert v["CAVG"] == pytest.approx(4.5)
    assert (v["CMIN"], v["CTROUGH"]) == (1.0, 1.0)
    assert v["FLUCP"] == pytest.approx(100 * (10 - 1) / 4.5)        # 200 %
    assert v["SWING"] == pytest.approx(900.0)                        # 100 (10 - 1) / 1
    assert v["AILAMZ"] == pytest.approx(16 / 15)                     # 1/(1 - e^(-ln2/2*8))
    o = out.set_index("PARAMCD")
    assert (o.loc["AUCTAU", "PPSTINT"], o.loc["AUCTAU", "PPENINT"]) == ("PT0H", "PT8H")
    # no sample at tau: CTROUGH missing with its reason
    v, out = run(frame([0, 1, 2, 4, 6, 9], [2, 10, 8, 4, 2, 1]), ["CTROUGH"], tau=8.0)
    assert np.isnan(v["CTROUGH"]) and "no sample at tau" in out["REASON"].iloc[0]


def test_time_since_dose_and_accumulation():
    # doses at 0 and 24 h (2 mg, then 3 mg); samples on one clock
    conc = pd.DataFrame({"USUBJID": "S1", "T": [-0.5, 1, 23.9, 24, 25]})
    doses = pd.DataFrame({"USUBJID": ["S1", "S1"], "DT": [24.0, 0.0], "AMT": [3.0, 2.0]})
    out = time_since_dose(conc, doses, by=["USUBJID"], time="T", dose_time="DT",
                          dose_amount="AMT")
    assert list(out["ARRLT"]) == pytest.approx([-0.5, 1, 23.9, 0, 1])
    assert list(out["DOSENUM"]) == [1, 1, 1, 2, 2]
    assert list(out["DOSEA"]) == [2, 2, 2, 3, 3]
    params = pd.DataFrame({"USUBJID": "S1", "DOSENUM": [1, 1, 2, 2],
                           "PARAMCD": ["AUCTAU", "CMAX", "AUCTAU", "CMAX"],
                           "AVAL": [10.0, 4.0, 15.0, 5.0]})
    ar = accumulation_ratios(params, by=["USUBJID"], profile="DOSENUM", reference=1)
    assert ar.set_index("PARAMCD")["AVAL"].to_dict() == {"ARAUC": 1.5, "ARCMAX": 1.25}


def test_urine_parameters_and_renal_clearance():
    # two collections: 10 mg/L x 0.2 L + 5 mg/L x 0.4 L = 4 mg; dose 10 mg -> fe 0.4;
    # plasma AUClast 8 h*mg/L -> CLR = 4/8 = 0.5 L/h
    urine = pd.DataFrame({"USUBJID": "S1", "C": [10.0, 5.0], "V": [0.2, 0.4],
                          "S": [0.0, 6.0], "E": [6.0, 12.0], "DOSE": 10.0})
    u = urine_parameters(urine, by=["USUBJID"], value="C", start="S", end="E", volume="V",
                         dose="DOSE", amount_unit="mg")
    got = u.set_index("PARAMCD")
    assert got.loc["RCAMINT", "AVAL"] == pytest.approx(4.0)
    assert got.loc["FREXINT", "AVAL"] == pytest.approx(0.4)
    assert (got.loc["RCAMINT", "PPSTINT"], got.loc["RCAMINT", "PPENINT"]) == ("PT0H", "PT12H")
    plasma = pd.DataFrame({"USUBJID": ["S1"], "PARAMCD": ["AUCLST"], "AVAL": [8.0]})
    clr = renal_clearance(u, plasma, by=["USUBJID"], unit="L/h")
    assert clr["AVAL"].iloc[0] == pytest.approx(0.5)


def _pknca_lambda_z(t, c, min_points=3, factor=1e-4):
    """PKNCA pk.calc.half.life written out with a loop (reference for the vectorised one)."""
    t, c = np.asarray(t, float), np.asarray(c, float)
    tmax = t[np.argmax(c)]
    keep = (c > 0) & (t > tmax)
    tk, yk = t[keep], np.log(c[keep])
    if len(tk) < min_points or np.ptp(np.log(c[c > 0])) == 0:
        return np.nan, 0
    fits = []
    for k in range(min_points, len(tk) + 1):
        x, y = tk[-k:], yk[-k:]
        b, a = np.polyfit(x, y, 1)
        rss = ((y - (a + b * x)) ** 2).sum()
        r2 = 1 - rss / ((y - y.mean()) ** 2).sum()
        fits.append((1 - (1 - r2) * (k - 1) / (k - 2), -b, k))
    best = max(f[0] for f in fits)
    ok = [f for f in fits if f[1] > 0 and f[0] > best - factor]
    if not ok:
        return np.nan, 0
    f = max(ok, key=lambda f: f[2])
    return f[1], f[2]


def test_vectorised_lambda_z_equals_loop_reference():
    rng = np.random.default_rng(14)
    rows = []
    ref = {}
    for i in range(300):
        n = rng.integers(4, 12)
        t = np.cumsum(rng.uniform(0.5, 3, n))
        c = 50 * (np.exp(-0.1 * t) - np.exp(-1.5 * t)) * np.exp(rng.normal(0, 0.15, n))
        if i % 17 == 0:
            c[-1] = c[-2] * 1.2        # a rising last point now and then
        uid = f"S{i:03d}"
        ref[uid] = _pknca_lambda_z(t, c)
        rows.append(pd.DataFrame({"USUBJID": uid, "T": t, "C": c}))
    df = pd.concat(rows, ignore_index=True)
    out = nca_parameters(df, by=["USUBJID"], time="T", value="C",
                         parameters=["LAMZ", "LAMZNPT"])
    got = out.pivot(index="USUBJID", columns="PARAMCD", values="AVAL")
    for uid, (lam, k) in ref.items():
        if np.isnan(lam):
            assert np.isnan(got.loc[uid, "LAMZ"]), uid
        else:
            assert got.loc[uid, "LAMZ"] == pytest.approx(lam, rel=1e-9), uid
            assert got.loc[uid, "LAMZNPT"] == k, uid


def test_bad_parameter_arguments():
    df = frame(A_T, A_C)
    with pytest.raises(SpecError, match="unknown NCA parameter"):
        run(df, ["CMAX", "AUCXYZ"])
    with pytest.raises(SpecError, match="need the dose"):
        run(df, ["CLFO"])
    with pytest.raises(SpecError, match="tau"):
        run(df, ["AUCTAU"])
    with pytest.raises(SpecError, match="auc_method"):
        run(df, ["AUCLST"], auc_method="log")
    two = frame(A_T, A_C, DOSE=[1, 1, 1, 2, 2, 2])
    with pytest.raises(DataError, match="more than one dose"):
        run(two, ["CLFO"], dose="DOSE")


def test_every_parameter_computes_on_a_full_profile():
    df = frame([-0.1] + A_T[1:], [0.5] + A_C[1:], DOSE=100.0)   # pre-dose 0.5: Cmin > 0
    out = nca_parameters(df, by=["USUBJID"], time="T", value="C", parameters=ALL_PARAMETERS,
                         dose="DOSE", tau=8.0, auc_start=0, auc_end=8)
    assert list(out["PARAMCD"]) == list(ALL_PARAMETERS)
    assert out["AVAL"].notna().all(), out[out["AVAL"].isna()]
    assert (out["REASON"] == "").all()


def test_runner_nca_step_parameters_and_lambda_z_flag():
    """The ADaM spec step `derivation: nca`: parameters (as before), and with
    `lambda_z_flag: VAR` the records kept with VAR = "Y" on the samples of the fit."""
    from cdisc.adam.runner import _Runner
    from cdisc.adam.spec import Step

    runner = _Runner(spec=None, display="specs/adam/adpc.yaml", frames={})
    df = frame(A_T, A_C)
    args = {"by": ["USUBJID"], "time": "T", "value": "C", "parameters": ["LAMZ", "LAMZNPT"],
            "lambda_z": {"min_points": 3}, "auc_method": "linear"}
    params = runner.step(Step(derivation="nca", args=args), df, "steps[0] nca")
    assert params.set_index("PARAMCD")["AVAL"].to_dict() == pytest.approx(
        {"LAMZ": LN2 / 2, "LAMZNPT": 4})
    flagged = runner.step(Step(derivation="nca", args={**args, "lambda_z_flag": "LAMZFL"}), df,
                          "steps[1] nca")
    assert list(flagged["T"]) == A_T
    assert list(flagged["LAMZFL"]) == ["", "", "Y", "Y", "Y", "Y"]


def test_tlag_and_infusion_end():
    # PKNCA pk.calc.tlag: time of the sample before the first increase: 0, 0, 3, 5 at
    # 0, 0.5, 1, 2 -> first increase 0.5 -> 1: TLAG = 0.5
    v, _ = run(frame([0, 0.5, 1, 2, 3, 4, 6], [0, 0, 3, 5, 4, 2, 1]), ["TLAG"])
    assert v["TLAG"] == 0.5
    # Cmax 9 at 2 h, then C = 4 * 2^(-(t-4)/2) exactly from 3 h on (5.657, 4, 2, 1):
    # without an infusion all 4 points after Tmax fit exactly and the most points win
    # (LAMZLL 3 h); a 3 h infusion keeps samples up to its end out of lambda z (PKNCA
    # duration.dose): the fit starts at 4 h with 3 points.
    df = frame([0, 1, 2, 3, 4, 6, 8], [0, 5, 9, 4 * np.sqrt(2), 4, 2, 1])
    v, _ = run(df, ["LAMZLL", "LAMZNPT"])
    assert (v["LAMZLL"], v["LAMZNPT"]) == (3.0, 4)
    v, _ = run(df, ["LAMZLL", "LAMZNPT"], infusion_duration=3.0)
    assert (v["LAMZLL"], v["LAMZNPT"]) == (4.0, 3)
    flags = nca_lambda_z_flags(df, by=["USUBJID"], time="T", value="C", infusion_duration=3.0)
    assert list(flags) == ["", "", "", "", "Y", "Y", "Y"]


def test_multiple_dose_end_to_end():
    # doses at 0 and 12 h; samples on one clock, pre-dose of dose 2 at 11.9 h.
    # dose 1 (t since dose): 0 -> C 0 (imputed C(0)), 6 -> 6, 11.9 -> 2
    # dose 2: the 11.9 h sample repeated at -0.1 (pre-dose, placed at 0): 2; 18 -> 8 (6 h);
    #         23.9 -> 3 (11.9 h)
    conc = pd.DataFrame({"USUBJID": "S1", "T": [6.0, 11.9, 18.0, 23.9],
                         "C": [6.0, 2.0, 8.0, 3.0]})
    doses = pd.DataFrame({"USUBJID": "S1", "DT": [0.0, 12.0], "AMT": [5.0, 5.0]})
    adpc = time_since_dose(conc, doses, by=["USUBJID"], time="T", dose_time="DT",
                           dose_amount="AMT", predose_window=0.5)
    assert list(adpc["DOSENUM"]) == [1, 1, 2, 2, 1 + 1]
    assert list(adpc["ARRLT"]) == pytest.approx([6, 11.9, 6, 11.9, -0.1])
    out = nca_parameters(adpc, by=["USUBJID", "DOSENUM"], time="ARRLT", value="C",
                         parameters=["CMAX", "AUCTAU"], tau=11.9, auc_method="linear")
    v = out.set_index(["DOSENUM", "PARAMCD"])["AVAL"]
    # dose 1: (0+6)/2*6 + (6+2)/2*5.9 = 18 + 23.6 = 41.6
    assert v[(1, "AUCTAU")] == pytest.approx(41.6)
    # dose 2: (2+8)/2*6 + (8+3)/2*5.9 = 30 + 32.45 = 62.45
    assert v[(2, "AUCTAU")] == pytest.approx(62.45)
    ar = accumulation_ratios(out, by=["USUBJID"], profile="DOSENUM", reference=1)
    assert ar.set_index("PARAMCD")["AVAL"].to_dict() == pytest.approx(
        {"ARAUC": 62.45 / 41.6, "ARCMAX": 8 / 6})
