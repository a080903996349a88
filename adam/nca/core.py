"""Non-compartmental analysis (NCA) of concentration-time data, PKNCA's definitions.

Derives per-profile PK parameters that become SDTM PP records (SDTMIG 3.4 PP:
PPTESTCD/PPTEST from the CDISC PKPARMCD/PKPARM codelists, PPSTINT/PPENINT as ISO 8601
durations for interval parameters) and ADPP (ADaMIG 1.3 BDS: PARAMCD/PARAM/AVAL/AVALU).
The definitions are those of PKNCA (R, Denney et al.), the reference NCA users compare
with; the PKNCA name of each parameter is given in ``PKNCA_NAMES``.

Time is in **hours** from the profile's reference (first dose for a single-dose
profile, the most recent dose for a dosing-interval profile, see ``dosing``); AUCs are in
``h*<concentration unit>``.

Everything is vectorised over all profiles at once: the frame is sorted by profile and
time, interval areas are computed with numpy on consecutive rows and summed per profile
(``np.bincount``), λz fits use cumulative sums per profile (``lambda_z``); there is no
per-profile or per-record Python loop.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from cdisc.errors import DataError, InputError, Problem, SpecError

from .lambda_z import fit_lambda_z

__all__ = ["ALL_PARAMETERS", "BLQRule", "LambdaZRule", "PK_PARAMETERS", "PARAMETER_ORDER",
           "nca_lambda_z_flags", "nca_parameters", "iso_hours"]

# PPTESTCD -> PPTEST, CDISC CT PKPARMCD/PKPARM submission values (checked against
# cdisc/standards/ct/sdtmct-2025-03-28: every code below is in PKPARMCD). The first six
# keep the names of the CT version the shipped study pins (later CT packages relabel TMAX
# "Time of CMAX Observation"; sdtm/pp.py decodes PPTEST from the pinned CT anyway).
PK_PARAMETERS: dict[str, str] = {
    "CMAX": "Max Conc",
    "TMAX": "Time of CMAX",
    "CLST": "Last Nonzero Conc",
    "TLST": "Time of Last Nonzero Conc",
    "AUCLST": "AUC to Last Nonzero Conc",
    "AUCINT": "AUC from T1 to T2",
    "AUCALL": "AUC All",
    "LAMZ": "Lambda z",
    "LAMZHL": "Half-Life Lambda z",
    "LAMZNPT": "Number of Points for Lambda z",
    "R2": "R Squared",
    "R2ADJ": "R Squared Adjusted",
    "LAMZLL": "Lambda z Lower Limit",
    "LAMZUL": "Lambda z Upper Limit",
    "LAMZSPN": "Lambda z Span",
    "AUCIFO": "AUC Infinity Obs",
    "AUCIFP": "AUC Infinity Pred",
    "AUCPEO": "AUC %Extrapolation Obs",
    "AUCPEP": "AUC %Extrapolation Pred",
    "AUMCLST": "AUMC to Last Nonzero Conc",
    "AUMCIFO": "AUMC Infinity Obs",
    "AUMCIFP": "AUMC Infinity Pred",
    "AUMCPEO": "AUMC % Extrapolation Obs",
    "AUMCPEP": "AUMC % Extrapolation Pred",
    "MRTEVLST": "MRT Extravasc to Last Nonzero Conc",
    "MRTEVIFO": "MRT Extravasc Infinity Obs",
    "MRTEVIFP": "MRT Extravasc Infinity Pred",
    "MRTIBLST": "MRT IV Bolus to Last Nonzero Conc",
    "MRTIBIFO": "MRT IV Bolus Infinity Obs",
    "MRTIBIFP": "MRT IV Bolus Infinity Pred",
    "MRTICLST": "MRT IV Cont Inf to Last Nonzero Conc",
    "MRTICIFO": "MRT IV Cont Inf Infinity Obs",
    "MRTICIFP": "MRT IV Cont Inf Infinity Pred",
    "CLO": "Total CL Obs",
    "CLP": "Total CL Pred",
    "CLFO": "Total CL Obs by F",
    "CLFP": "Total CL Pred by F",
    "VZO": "Vz Obs",
    "VZP": "Vz Pred",
    "VZFO": "Vz Obs by F",
    "VZFP": "Vz Pred by F",
    "CMAXD": "Max Conc Norm by Dose",
    "AUCLSTD": "AUC to Last Nonzero Conc Norm by Dose",
    "AUCIFOD": "AUC Infinity Obs Norm by Dose",
    "AUCIFPD": "AUC Infinity Pred Norm by Dose",
    "AUCTAU": "AUC Over Dosing Interval",
    "AUCTAUD": "AUC Over Dosing Interval Norm by Dose",
    "CMIN": "Min Conc",
    "CTROUGH": "Conc Trough",
    "CAVG": "Average Concentration",
    "FLUCP": "Fluctuation%",
    "SWING": "Swing",
    "AILAMZ": "Accumulation Index using Lambda z",
    "TLAG": "Time Until First Nonzero Conc",
}
# The PKNCA parameter each code is (PKNCA's own CDISC mapping, R/pk.calc.*.R).
PKNCA_NAMES: dict[str, str] = {
    "CMAX": "cmax", "TMAX": "tmax", "CLST": "clast.obs", "TLST": "tlast", "AUCLST": "auclast",
    "AUCINT": "aucint.last", "AUCALL": "aucall", "LAMZ": "lambda.z", "LAMZHL": "half.life",
    "LAMZNPT": "lambda.z.n.points", "R2": "r.squared", "R2ADJ": "adj.r.squared",
    "LAMZLL": "lambda.z.time.first", "LAMZUL": "lambda.z.time.last", "LAMZSPN": "span.ratio",
    "AUCIFO": "aucinf.obs", "AUCIFP": "aucinf.pred", "AUCPEO": "aucpext.obs",
    "AUCPEP": "aucpext.pred", "AUMCLST": "aumclast", "AUMCIFO": "aumcinf.obs",
    "AUMCIFP": "aumcinf.pred", "AUMCPEO": "100*(1-aumclast/aumcinf.obs)",
    "AUMCPEP": "100*(1-aumclast/aumcinf.pred)", "MRTEVLST": "mrt.last",
    "MRTEVIFO": "mrt.obs", "MRTEVIFP": "mrt.pred", "MRTIBLST": "mrt.iv.last (bolus)",
    "MRTIBIFO": "mrt.iv.obs (bolus)", "MRTIBIFP": "mrt.iv.pred (bolus)",
    "MRTICLST": "mrt.iv.last", "MRTICIFO": "mrt.iv.obs", "MRTICIFP": "mrt.iv.pred",
    "CLO": "cl.obs", "CLP": "cl.pred", "CLFO": "cl.obs", "CLFP": "cl.pred", "VZO": "vz.obs",
    "VZP": "vz.pred", "VZFO": "vz.obs", "VZFP": "vz.pred", "CMAXD": "cmax.dn",
    "AUCLSTD": "auclast.dn", "AUCIFOD": "aucinf.obs.dn", "AUCIFPD": "aucinf.pred.dn",
    "AUCTAU": "aucint.last over [0, tau]", "AUCTAUD": "aucint.last.dn over [0, tau]", "CMIN": "cmin",
    "CTROUGH": "ctrough", "CAVG": "cav", "FLUCP": "deg.fluc", "SWING": "swing",
    "AILAMZ": "1/(1-exp(-lambda.z*tau))", "TLAG": "tlag",
}
# The default output (what the shipped VGO-Cs01p PP has always had), in this order.
PARAMETER_ORDER: tuple[str, ...] = ("CMAX", "TMAX", "CLST", "TLST", "AUCLST", "AUCINT")
ALL_PARAMETERS: tuple[str, ...] = tuple(PK_PARAMETERS)

TIME_UNIT = "h"
LAMZ_PARAMETERS = {"LAMZ", "LAMZHL", "LAMZNPT", "R2", "R2ADJ", "LAMZLL", "LAMZUL", "LAMZSPN",
                   "AILAMZ"}
NEEDS_DOSE = {"CLO", "CLP", "CLFO", "CLFP", "VZO", "VZP", "VZFO", "VZFP", "CMAXD", "AUCLSTD",
              "AUCIFOD", "AUCIFPD", "AUCTAUD"}
NEEDS_TAU = {"AUCTAU", "AUCTAUD", "CTROUGH", "CAVG", "FLUCP", "SWING", "AILAMZ"}

BLQHandling = Literal["zero", "missing"]
AUCMethod = Literal["lin-up/log-down", "linear"]


class BLQRule(BaseModel):
    """How below-limit-of-quantification (BLQ) samples enter the NCA.

    A BLQ sample is classified by its position relative to the quantifiable samples of
    the same profile (quantifiable = not BLQ and a non-missing value):

    * ``leading``: before the first quantifiable sample (or every sample when none is
      quantifiable). Default ``"zero"``: the analyte is not there yet.
    * ``embedded``: between the first and last quantifiable samples. Default
      ``"missing"``: excluded, the curve is drawn straight from the neighbours.
    * ``trailing``: after the last quantifiable sample (Clast). Default ``"missing"``:
      excluded.

    These defaults are the convention usually written in NCA sections of SAPs ("BLQ
    before the first quantifiable concentration = 0, thereafter missing"); they equal
    PKNCA's ``conc.blq = list(first="keep", middle="drop", last="drop")``. Note that
    PKNCA's own default keeps trailing BLQ as 0 (``last="keep"``): with
    ``trailing="missing"`` an AUC over a fixed interval cannot be computed when the cells
    fall below the LLOQ before the interval end (reported with a reason); set
    ``trailing="zero"`` to count them as 0 instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    leading: BLQHandling = "zero"
    embedded: BLQHandling = "missing"
    trailing: BLQHandling = "missing"


def iso_hours(hours: float) -> str:
    """ISO 8601 duration for a number of hours (``672`` -> ``PT672H``, ``0.5`` -> ``PT0.5H``).

    Used for PPSTINT/PPENINT (SDTMIG 3.4 PP: planned start/end of the assessment interval
    relative to the reference time point, ISO 8601 duration).
    """
    return f"PT{float(hours):g}H"



class LambdaZRule(BaseModel):
    """How λz is selected: PKNCA's ``PKNCA.options`` defaults.

    * ``min_points`` (``min.hl.points``, 3): fewest points in a fit.
    * ``adj_r2_factor`` (``adj.r.squared.factor``, 1e-4): fits whose adjusted R² is within
      this of the best are equally good; the one with most points wins.
    * ``allow_tmax`` (``allow.tmax.in.half.life``, False): may the fit start at Tmax.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_points: int = Field(3, ge=2)
    adj_r2_factor: float = Field(1e-4, ge=0)
    allow_tmax: bool = False


class _Prepared:
    """Usable samples of every profile, sorted by profile and time (see nca_parameters 1-4)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _prepare(conc, by, time, value, blq_flag, lloq, blq_rule, impute_c0, auc_start=0.0,
             auc_end=1.0) -> _Prepared:
    by = list(by)
    _check_arguments(conc, by, time, value, blq_flag, lloq, auc_start, auc_end)
    n_rows = len(conc)
    t_all = conc[time].to_numpy(dtype=float, na_value=np.nan)
    v_all = conc[value].to_numpy(dtype=float, na_value=np.nan)
    blq_all = _blq_mask(conc, value, blq_flag, lloq, v_all)

    # Group ids in sorted key order; the key frame keeps the input dtypes.
    gid_all = conc.groupby(by, sort=True, dropna=False).ngroup().to_numpy()
    n_groups = int(gid_all.max()) + 1 if n_rows else 0
    _, first_pos = np.unique(gid_all, return_index=True)
    keys = conc[by].iloc[first_pos].reset_index(drop=True)

    # 1. result rows only; validate them.
    has_result = blq_all | ~np.isnan(v_all)
    _check_results(conc, by, time, value, has_result, t_all, v_all, blq_all)
    g = gid_all[has_result]
    t = t_all[has_result]
    c = np.where(blq_all, np.nan, v_all)[has_result]
    bq = blq_all[has_result]
    src = np.flatnonzero(has_result)

    order = np.lexsort((t, g))
    g, t, c, bq, src = g[order], t[order], c[order], bq[order], src[order]
    _check_duplicate_times(conc, by, time, g, t, src)

    # 2. pre-dose: keep the last sample at t <= 0 as C(0).
    pre = t <= 0
    next_is_pre_same = np.zeros_like(pre)
    next_is_pre_same[:-1] = pre[1:] & (g[1:] == g[:-1])
    keep = ~(pre & next_is_pre_same)
    g, t, c, bq, src = g[keep], t[keep], c[keep], bq[keep], src[keep]
    t = np.where(t <= 0, 0.0, t)

    # 3. BLQ rules by position relative to the quantifiable samples.
    quant = ~bq
    first_q = _group_reduce(np.minimum, g, np.where(quant, t, np.inf), n_groups, np.inf)
    last_q = _group_reduce(np.maximum, g, np.where(quant, t, -np.inf), n_groups, -np.inf)
    leading = bq & (t < first_q[g])
    trailing = bq & ~leading & (t > last_q[g])
    embedded = bq & ~leading & ~trailing
    for mask, rule in ((leading, blq_rule.leading), (embedded, blq_rule.embedded),
                       (trailing, blq_rule.trailing)):
        if rule == "zero":
            c = np.where(mask, 0.0, c)
    n_trail_excluded = np.bincount(g[trailing & np.isnan(c)], minlength=n_groups)
    used = ~np.isnan(c)
    g, t, c, src = g[used], t[used], c[used], src[used]
    imputed = np.zeros(len(g), dtype=bool)

    # 4. C(0) = 0 when there is no pre-dose sample.
    has_t0 = np.bincount(g[t == 0], minlength=n_groups) > 0
    c0_imputed = np.zeros(n_groups, dtype=bool)
    if impute_c0:
        c0_imputed = ~has_t0
        new_g = np.flatnonzero(c0_imputed)
        g = np.concatenate([g, new_g])
        t = np.concatenate([t, np.zeros(len(new_g))])
        c = np.concatenate([c, np.zeros(len(new_g))])
        src = np.concatenate([src, np.full(len(new_g), -1)])
        imputed = np.concatenate([imputed, np.ones(len(new_g), dtype=bool)])
        order = np.lexsort((t, g))
        g, t, c, imputed, src = g[order], t[order], c[order], imputed[order], src[order]
    return _Prepared(by=by, keys=keys, n_groups=n_groups, g=g, t=t, c=c, src=src,
                     imputed=imputed, c0_imputed=c0_imputed, n_trail_excluded=n_trail_excluded,
                     gid_all=gid_all)


def _profile_dose(conc, dose, gid_all, n_groups, by) -> np.ndarray:
    """The dose of each profile: the one non-missing value of the ``dose`` column."""
    if dose not in conc.columns:
        raise InputError([Problem("dose column needed for NCA is missing from the "
                                  "concentration data", column=dose)])
    d = pd.to_numeric(conc[dose], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(d)
    lo = _group_reduce(np.minimum, gid_all[ok], d[ok], n_groups, np.inf)
    hi = _group_reduce(np.maximum, gid_all[ok], d[ok], n_groups, -np.inf)
    differ = np.flatnonzero(np.isfinite(lo) & (lo != hi))
    if len(differ):
        first = {int(gi): i for i, gi in reversed(list(enumerate(gid_all)))}
        raise DataError([Problem(f"profile ({_describe(conc, by, first[gi])}) has more than "
                                 f"one dose ({lo[gi]:g} and {hi[gi]:g})", column=dose,
                                 hint="one profile is one dose: add the dose number to 'by'")
                         for gi in differ[:20]])
    return np.where(np.isfinite(lo), lo, np.nan)


def nca_lambda_z_flags(
    conc: pd.DataFrame,
    *,
    by: list[str],
    time: str,
    value: str,
    blq_flag: str | None = None,
    lloq: str | None = None,
    blq_rule: BLQRule = BLQRule(),
    impute_c0: bool = True,
    lambda_z: LambdaZRule = LambdaZRule(),
    lamz_include: str | None = None,
    infusion_duration: float = 0.0,
    **_ignored,
) -> pd.Series:
    """Per-sample flag of the points used in the λz fit: "Y" on those rows of ``conc``,
    "" elsewhere (same index as ``conc``). For an ADPC analysis flag (e.g. ADPC
    ``LAMZFL``/``ANL03FL``, "Used in lambda z").

    Takes the same arguments as ``nca_parameters`` (others are ignored, so one argument
    dictionary can drive both) and makes the same selection (``lambda_z.fit_lambda_z``).
    """
    if isinstance(lambda_z, dict):
        lambda_z = LambdaZRule(**lambda_z)
    if isinstance(blq_rule, dict):
        blq_rule = BLQRule(**blq_rule)
    p = _prepare(conc, by, time, value, blq_flag, lloq, blq_rule, impute_c0)
    fit = _fit(conc, p, lambda_z, lamz_include, float(infusion_duration))
    flag = np.full(len(conc), "", dtype=object)
    rows = p.src[fit.used & (p.src >= 0)]
    flag[rows] = "Y"
    return pd.Series(flag, index=conc.index, dtype="str")


def _fit(conc, p, lambda_z, lamz_include, infusion_duration=0.0):
    obs = ~p.imputed
    n_obs = np.bincount(p.g[obs], minlength=p.n_groups)
    any_obs = n_obs > 0
    cmax = np.where(any_obs, _group_reduce(np.maximum, p.g[obs], p.c[obs], p.n_groups, -np.inf),
                    np.nan)
    is_max = obs & (p.c == cmax[p.g])
    tmax = _group_reduce(np.minimum, p.g[is_max], p.t[is_max], p.n_groups, np.inf)
    pos = obs & (p.c > 0)
    tlast = _group_reduce(np.maximum, p.g[pos], p.t[pos], p.n_groups, -np.inf)
    include = None
    if lamz_include:
        if lamz_include not in conc.columns:
            raise InputError([Problem("lambda z selection column is missing", column=lamz_include)])
        s = conc[lamz_include]
        flag = (s.fillna(False).astype(bool) if pd.api.types.is_bool_dtype(s)
                or pd.api.types.is_numeric_dtype(s)
                else s.astype("str").str.strip().str.upper().eq("Y")).to_numpy(dtype=bool)
        include = np.where(p.src >= 0, flag[np.maximum(p.src, 0)], False)
    # imputed C(0) = 0 never enters (C > 0 only)
    # PKNCA: points during the dose (time <= time.dose + duration.dose) never enter λz
    if infusion_duration:
        obs = obs & (p.t > infusion_duration)
    return fit_lambda_z(p.g, p.t, np.where(obs, p.c, 0.0), tmax, tlast, p.n_groups,
                        min_points=lambda_z.min_points, adj_r2_factor=lambda_z.adj_r2_factor,
                        allow_tmax=lambda_z.allow_tmax, include=include)


def nca_parameters(
    conc: pd.DataFrame,
    *,
    by: list[str],
    time: str,
    value: str,
    blq_flag: str | None = None,
    lloq: str | None = None,
    auc_start: float = 0.0,
    auc_end: float = 672.0,
    blq_rule: BLQRule = BLQRule(),
    impute_c0: bool = True,
    conc_unit: str = "cells/uL",
    parameters: Sequence[str] | None = None,
    auc_method: AUCMethod = "lin-up/log-down",
    lambda_z: LambdaZRule = LambdaZRule(),
    lamz_include: str | None = None,
    dose: str | None = None,
    dose_unit: str = "",
    tau: float | None = None,
    infusion_duration: float = 0.0,
) -> pd.DataFrame:
    """Derive NCA parameters per profile (PKNCA definitions, CDISC PKPARMCD codes).

    Arguments:
        conc: concentration records, one row per sample (e.g. PC or ADPC).
        by: columns identifying one profile (e.g. ``["STUDYID", "USUBJID"]``, plus the
            dose number for one profile per dosing interval); the output keeps them, in
            this order, and is sorted by them.
        time: actual time of the sample in **hours** from the profile's reference dose
            (numeric; for multiple dose the time since the most recent dose, see
            ``dosing.time_since_dose``). Pre-dose samples have time <= 0.
        value: numeric concentration (e.g. PCSTRESN); may be missing on BLQ rows.
        blq_flag: optional column marking BLQ samples: bool, 0/1, or "Y"/"N"/blank.
        lloq: optional numeric column with the lower limit of quantification; a value
            below it is BLQ.
        auc_start, auc_end: the AUCINT interval in hours (default 0-672 h = day 0-28).
        blq_rule: how leading/embedded/trailing BLQ samples are used, see ``BLQRule``.
        impute_c0: when a profile has no pre-dose sample, assume C(0) = 0 (single dose of
            a drug not present before; set False for a dosing interval at steady state,
            whose pre-dose sample is then required).
        conc_unit: concentration unit, used for AVALU (AUC unit is ``h*<conc_unit>``).
        parameters: PPTESTCDs to derive (keys of ``PK_PARAMETERS``), output in the order of
            ``PK_PARAMETERS``; default ``PARAMETER_ORDER`` (Cmax, Tmax, Clast, Tlast,
            AUClast, AUCint).
        auc_method: ``"lin-up/log-down"`` (PKNCA "lin up/log down", its default) or
            ``"linear"`` (PKNCA "linear": linear trapezoids throughout). Applies to AUC,
            AUMC and to the interpolation at an interval bound.
        lambda_z: the λz selection rule, see ``LambdaZRule`` (PKNCA defaults).
        lamz_include: optional column (bool or "Y") selecting the λz points by hand
            (PKNCA ``include_half.life``): then exactly those points (C > 0) are fitted.
        dose: column with the dose amount of the profile (one value per profile; for
            CL, Vz and the dose-normalised parameters).
        dose_unit: unit of ``dose`` for AVALU (e.g. ``"mg"``).
        tau: dosing interval in hours (AUCTAU, CTROUGH, CAVG, FLUCP, SWING, AILAMZ;
            CMIN is then taken over [0, tau]).
        infusion_duration: hours of an IV infusion: MRTIC* subtract half of it, and
            samples up to the end of the infusion never enter λz (PKNCA duration.dose).

    Returns:
        One row per profile and parameter, sorted by ``by`` then parameter, with columns
        ``by...``, PARAMCD, PARAM (CDISC PKPARM name), AVAL, AVALU, NPTS (observed
        concentrations used; imputed C(0) and interpolated interval ends not counted),
        PPSTINT/PPENINT (ISO 8601, interval parameters only, else ""), REASON (why AVAL
        is missing, else "") and NOTE (imputation/interpolation done).

    Algorithm:
        1. Rows with neither a value nor a BLQ mark are not-done samples and are dropped.
           A result row without a time, a negative concentration, or two results at the
           same time in one profile is a DataError.
        2. Sort by profile and time. Pre-dose samples (time <= 0): the last one is the
           concentration at the dose and is placed at t = 0; earlier ones are ignored.
        3. Classify BLQ samples as leading/embedded/trailing relative to the first and
           last quantifiable sample and set them to 0 or exclude them per ``blq_rule``.
        4. If a profile has no sample at t = 0 and ``impute_c0``, add C(0) = 0.
        5. Cmax = maximum observed concentration; Tmax = time of its first occurrence
           (missing when Cmax = 0). Tlast/Clast = time and value of the last
           concentration > 0. CMIN = minimum observed concentration (over [0, tau] when
           tau is given); CTROUGH = the concentration observed at tau.
        6. AUC on every consecutive pair (t1, C1), (t2, C2): linear, (C1 + C2)/2 * dt; with
           lin-up/log-down, logarithmic, (C1 - C2) * dt / ln(C1/C2), when C1 > C2 > 0. A
           segment cut by an interval bound is evaluated at the bound on the same curve.
           AUMC on whole segments with PKNCA's formulas: linear (t1 C1 + t2 C2)/2 * dt;
           log-down dt (t2 C2 - t1 C1)/ln(C2/C1) - dt² (C2 - C1)/ln(C2/C1)².
        7. AUCLST/AUMCLST integrate [0, Tlast] (0 when every concentration is 0).
           AUCALL adds the triangle from (Tlast, Clast) to the first usable sample after
           Tlast (a trailing BLQ counted as 0; none: AUCALL = AUCLST). AUCINT integrates
           [auc_start, auc_end], AUCTAU [0, tau]: reported only when the profile has a
           usable concentration at or before the start and at or after the end
           (interpolating at the bound, never extrapolating).
        8. λz as PKNCA ``pk.calc.half.life`` (``lambda_z.fit_lambda_z``): points after
           Tmax with C > 0, fits to the last 3, 4, ... points, best adjusted R² with the
           1e-4 tolerance (then most points), λz > 0. LAMZHL = ln 2/λz, LAMZSPN =
           (LAMZUL - LAMZLL)/LAMZHL, Clast pred = the fitted line at Tlast.
        9. AUCIFO = AUCLST + Clast/λz; AUCIFP = AUCLST + Clast pred/λz; AUCPEO/AUCPEP =
           100 (1 - AUCLST/AUCIF*); AUMCIF* = AUMCLST + Clast Tlast/λz + Clast/λz² (obs or
           pred Clast); MRT*LST = AUMCLST/AUCLST, MRT*IF* = AUMCIF*/AUCIF*; the IV
           continuous-infusion MRTs subtract infusion_duration/2 (PKNCA mrt.iv.*).
       10. Dose: CL*O/CL*P = dose/AUCIFO|AUCIFP (CLO for IV, CLFO extravascular: the same
           number, the code says which); VZ* = CL/λz; *D = parameter/dose.
       11. Dosing interval: CAVG = AUCTAU/tau; FLUCP = 100 (Cmax - Cmin)/Cavg; SWING =
           100 (Cmax - Cmin)/Cmin (missing when Cmin = 0; PKNCA gives Inf);
           AILAMZ = 1/(1 - exp(-λz tau)). TLAG = time of the sample before the first
           increase in concentration (PKNCA ``pk.calc.tlag``).
       12. A profile whose usable concentrations are all 0 gets CMAX = 0, TMAX/CLST/TLST
           missing with a reason, AUCLST = AUCALL = 0 and AUCINT = 0 when its samples span
           the interval. REASON is filled only where AVAL is missing; NOTE only where not.
    """
    wanted = list(PARAMETER_ORDER if parameters is None else parameters)
    unknown = [p for p in wanted if p not in PK_PARAMETERS]
    if unknown:
        raise SpecError(f"unknown NCA parameter(s) {unknown}", key="parameters",
                        hint=f"one of: {', '.join(PK_PARAMETERS)}")
    if auc_method not in ("lin-up/log-down", "linear"):
        raise SpecError(f"auc_method {auc_method!r} is not 'lin-up/log-down' or 'linear'",
                        key="auc_method")
    if isinstance(lambda_z, dict):
        lambda_z = LambdaZRule(**lambda_z)
    if isinstance(blq_rule, dict):
        blq_rule = BLQRule(**blq_rule)
    if set(wanted) & NEEDS_DOSE and not dose:
        raise SpecError(f"parameters {sorted(set(wanted) & NEEDS_DOSE)} need the dose",
                        key="dose", hint="name the column with the dose amount: dose=EXDOSE")
    if set(wanted) & NEEDS_TAU and not (tau and np.isfinite(tau) and tau > 0):
        raise SpecError(f"parameters {sorted(set(wanted) & NEEDS_TAU)} need the dosing "
                        "interval tau (hours, > 0)", key="tau")
    order_out = [p for p in PK_PARAMETERS if p in set(wanted)]
    log_down = auc_method == "lin-up/log-down"

    p = _prepare(conc, by, time, value, blq_flag, lloq, blq_rule, impute_c0, auc_start, auc_end)
    by, keys, n_groups, g, t, c = p.by, p.keys, p.n_groups, p.g, p.t, p.c
    imputed, c0_imputed, n_trail_excluded = p.imputed, p.c0_imputed, p.n_trail_excluded

    obs = ~imputed
    n_obs = np.bincount(g[obs], minlength=n_groups)
    any_obs = n_obs > 0

    # 5. Cmax/Tmax (first occurrence), Clast/Tlast (last concentration > 0).
    cmax = _group_reduce(np.maximum, g[obs], c[obs], n_groups, -np.inf)
    cmax = np.where(any_obs, cmax, np.nan)
    is_max = obs & (c == cmax[g])
    tmax = _group_reduce(np.minimum, g[is_max], t[is_max], n_groups, np.inf)
    tmax = np.where(any_obs & (cmax > 0), tmax, np.nan)

    pos = obs & (c > 0)
    has_pos = np.bincount(g[pos], minlength=n_groups) > 0
    tlast = _group_reduce(np.maximum, g[pos], t[pos], n_groups, -np.inf)
    tlast = np.where(has_pos, tlast, np.nan)
    at_last = pos & (t == tlast[g])
    clast = np.full(n_groups, np.nan)
    clast[g[at_last]] = c[at_last]

    t_min = _group_reduce(np.minimum, g, t, n_groups, np.inf)
    t_max = _group_reduce(np.maximum, g, t, n_groups, -np.inf)

    # 6.-7. AUCLST over [0, Tlast].
    lst_lo = np.zeros(n_groups)
    lst_hi = np.where(has_pos, tlast, 0.0)
    auclst, _, _ = _interval_auc(g, t, c, lst_lo, lst_hi, n_groups, log_down)
    lst_covered = t_min <= 0
    auclst = np.where(any_obs & (lst_covered | ~has_pos), auclst, np.nan)
    auclst = np.where(any_obs & ~has_pos, 0.0, auclst)
    npts_lst = _count_in(g, t, obs, lst_lo, np.where(has_pos, tlast, np.inf), n_groups)

    # Reasons and notes, per group (string arrays, no loop over groups).
    empty = np.full(n_groups, "", dtype=object)
    no_obs = np.where(~any_obs, "no usable concentration (all samples missing or excluded "
                      "by the BLQ rule)", "")
    all_zero = any_obs & ~has_pos
    zero_txt = "all usable concentrations are BLQ or zero"

    r_tmax = _first_nonempty(no_obs, np.where(all_zero, zero_txt + ": Tmax undefined", ""))
    r_last = _first_nonempty(no_obs, np.where(all_zero, zero_txt + ": no nonzero "
                                              "concentration", ""))
    r_lst = _first_nonempty(
        no_obs,
        np.where(any_obs & has_pos & ~lst_covered,
                 "no concentration at time 0 (no pre-dose sample and impute_c0=False)", ""),
    )
    trail_txt = np.where(
        n_trail_excluded > 0,
        _cat("; ", _fmt(n_trail_excluded), " BLQ sample(s) after Clast excluded by "
             "BLQRule.trailing='missing'"),
        "",
    )
    c0_note = np.where(c0_imputed & any_obs, "C(0)=0 imputed (no pre-dose sample)", "")
    n_lst = _join(c0_note, np.where(all_zero, zero_txt + ": AUC = 0", ""))

    def interval(lo_h, hi_h):
        """AUC over [lo_h, hi_h] with its reason/note (AUCINT, AUCTAU)."""
        lo = np.full(n_groups, float(lo_h))
        hi = np.full(n_groups, float(hi_h))
        auc, interp_lo, interp_hi = _interval_auc(g, t, c, lo, hi, n_groups, log_down)
        start_ok = t_min <= lo_h
        end_ok = t_max >= hi_h
        auc = np.where(any_obs & start_ok & end_ok, auc, np.nan)
        npts = _count_in(g, t, obs, lo, hi, n_groups)
        reason = _first_nonempty(
            no_obs,
            np.where(~start_ok, f"no concentration at or before the interval start "
                                f"({lo_h:g} h)", ""),
            np.where(~end_ok, _cat("last usable concentration at ", _fmt(t_max),
                                   f" h is before the interval end ({hi_h:g} h)", trail_txt),
                     ""),
        )
        ok = ~np.isnan(auc)
        note = _join(
            np.where(lo_h == 0, c0_note, ""),
            np.where(ok & (interp_lo != ""),
                     _cat(f"C({lo_h:g} h) interpolated (", interp_lo, ")"), ""),
            np.where(ok & (interp_hi != ""),
                     _cat(f"C({hi_h:g} h) interpolated (", interp_hi, ")"), ""),
        )
        return auc, npts, reason, note

    auc_unit = f"{TIME_UNIT}*{conc_unit}"
    table = {  # PARAMCD -> (AVAL, AVALU, NPTS, REASON, NOTE)
        "CMAX": (cmax, conc_unit, n_obs, no_obs, empty),
        "TMAX": (tmax, TIME_UNIT, n_obs, r_tmax, empty),
        "CLST": (clast, conc_unit, n_obs, r_last, empty),
        "TLST": (tlast, TIME_UNIT, n_obs, r_last, empty),
        "AUCLST": (auclst, auc_unit, npts_lst, r_lst, n_lst),
    }
    intervals = {"AUCINT": (auc_start, auc_end)}
    if "AUCINT" in order_out:
        aucint, npts_int, r_int, n_int = interval(auc_start, auc_end)
        table["AUCINT"] = (aucint, auc_unit, npts_int, r_int, n_int)

    extra = set(order_out) - set(table)
    if extra:
        _more(table, extra, locals())
        if tau:
            intervals.update({k: (0.0, tau) for k in ("AUCTAU", "AUCTAUD")})

    n_par = len(order_out)

    def stack(i: int, dtype) -> np.ndarray:
        cols = [np.broadcast_to(np.asarray(table[q][i], dtype=dtype), (n_groups,))
                for q in order_out]
        return np.stack(cols, axis=1).ravel() if n_groups else np.empty(0, dtype=dtype)

    paramcd = np.tile(np.array(order_out, dtype=object), n_groups)
    out = keys.iloc[np.repeat(np.arange(n_groups), n_par)].reset_index(drop=True)
    out["PARAMCD"] = paramcd
    out["PARAM"] = np.array([PK_PARAMETERS[q] for q in order_out] * n_groups, dtype=object)
    out["AVAL"] = stack(0, float)
    out["AVALU"] = stack(1, object)
    out["NPTS"] = stack(2, np.int64)
    st = {q: iso_hours(lo) for q, (lo, _) in intervals.items()}
    en = {q: iso_hours(hi) for q, (_, hi) in intervals.items()}
    out["PPSTINT"] = out["PARAMCD"].map(st).fillna("").astype(object)
    out["PPENINT"] = out["PARAMCD"].map(en).fillna("").astype(object)
    reason = stack(3, object)
    out["REASON"] = np.where(np.isnan(out["AVAL"].to_numpy()), reason, "").astype(object)
    out["NOTE"] = np.where(np.isnan(out["AVAL"].to_numpy()), "", stack(4, object)).astype(object)
    for col in ("PARAMCD", "PARAM", "AVALU", "PPSTINT", "PPENINT", "REASON", "NOTE"):
        out[col] = out[col].astype("str")
    return out


def _more(table: dict, extra: set, v: dict) -> None:
    """The parameters beyond the basic six (steps 7-11), added to ``table`` in place.

    ``v`` is the caller's namespace (its arrays per profile)."""
    g, t, c, n_groups = v["g"], v["t"], v["c"], v["n_groups"]
    obs, has_pos = v["obs"], v["has_pos"]
    cmax, tlast, clast, auclst = v["cmax"], v["tlast"], v["clast"], v["auclst"]
    n_obs, npts_lst, no_obs, empty = v["n_obs"], v["npts_lst"], v["no_obs"], v["empty"]
    r_lst, conc_unit, dose_unit = v["r_lst"], v["conc_unit"], v["dose_unit"]
    tau, log_down, auc_unit = v["tau"], v["log_down"], v["auc_unit"]
    h = TIME_UNIT
    nan = np.full(n_groups, np.nan)

    def put(code, aval, unit, npts, reason, note=empty):
        if code in extra:
            table[code] = (aval, unit, npts, _first_nonempty(no_obs, reason), note)

    # AUCALL: triangle to the first usable sample after Tlast (step 7)
    after = obs & has_pos[g] & (t > np.where(has_pos, tlast, np.inf)[g])
    t_next = _group_reduce(np.minimum, g[after], t[after], n_groups, np.inf)
    tri = np.where(np.isfinite(t_next), 0.5 * clast * (t_next - tlast), 0.0)
    aucall = np.where(has_pos, auclst + tri, auclst)
    put("AUCALL", aucall, auc_unit, npts_lst, r_lst)

    # TLAG (PKNCA pk.calc.tlag): time of the sample before the first increase
    rise = np.zeros(len(g), dtype=bool)
    rise[:-1] = (g[1:] == g[:-1]) & (c[1:] > c[:-1])
    tlag = _group_reduce(np.minimum, g[rise], t[rise], n_groups, np.inf)
    put("TLAG", np.where(np.isfinite(tlag), tlag, np.nan), h, n_obs,
        np.full(n_groups, "no increase in concentration", dtype=object))

    # AUMC over [0, Tlast]
    aumclst = _aumc_last(g, t, c, np.where(has_pos, tlast, 0.0), n_groups, log_down)
    aumclst = np.where(np.isnan(auclst), np.nan, np.where(has_pos, aumclst, 0.0))
    put("AUMCLST", aumclst, f"{h}2*{conc_unit}", npts_lst, r_lst)

    # λz (step 8)
    need_lz = extra & (LAMZ_PARAMETERS | {"AUCIFO", "AUCIFP", "AUCPEO", "AUCPEP", "AUMCIFO",
                                          "AUMCIFP", "AUMCPEO", "AUMCPEP", "MRTEVIFO",
                                          "MRTEVIFP", "MRTIBIFO", "MRTIBIFP", "MRTICIFO",
                                          "MRTICIFP", "CLO", "CLP", "CLFO", "CLFP", "VZO",
                                          "VZP", "VZFO", "VZFP", "AUCIFOD", "AUCIFPD"})
    if need_lz:
        fit = _fit(v["conc"], v["p"], v["lambda_z"], v["lamz_include"],
                   float(v["infusion_duration"]))
        lam, r_lz = fit.lamz, fit.reason
    else:
        fit, lam, r_lz = None, nan, empty
    lz_n = np.where(np.isnan(fit.npts), 0, fit.npts).astype(np.int64) if fit else n_obs
    if fit is not None:
        hl = np.log(2.0) / lam
        put("LAMZ", lam, f"1/{h}", lz_n, r_lz)
        put("LAMZHL", hl, h, lz_n, r_lz)
        put("LAMZNPT", fit.npts, "", lz_n, r_lz)
        put("R2", fit.r2, "", lz_n, r_lz)
        put("R2ADJ", fit.r2adj, "", lz_n, r_lz)
        put("LAMZLL", fit.lower, h, lz_n, r_lz)
        put("LAMZUL", fit.upper, h, lz_n, r_lz)
        put("LAMZSPN", (fit.upper - fit.lower) / hl, "", lz_n, r_lz)
        clast_pred = fit.clast_pred
    else:
        clast_pred = nan
    r_inf = _first_nonempty(r_lst, r_lz)
    with np.errstate(divide="ignore", invalid="ignore"):
        aucifo = auclst + clast / lam
        aucifp = auclst + clast_pred / lam
        aumcifo = aumclst + clast * tlast / lam + clast / lam ** 2
        aumcifp = aumclst + clast_pred * tlast / lam + clast_pred / lam ** 2
        put("AUCIFO", aucifo, auc_unit, npts_lst, r_inf)
        put("AUCIFP", aucifp, auc_unit, npts_lst, r_inf)
        put("AUCPEO", 100.0 * (1.0 - auclst / aucifo), "%", npts_lst, r_inf)
        put("AUCPEP", 100.0 * (1.0 - auclst / aucifp), "%", npts_lst, r_inf)
        put("AUMCIFO", aumcifo, f"{h}2*{conc_unit}", npts_lst, r_inf)
        put("AUMCIFP", aumcifp, f"{h}2*{conc_unit}", npts_lst, r_inf)
        put("AUMCPEO", 100.0 * (1.0 - aumclst / aumcifo), "%", npts_lst, r_inf)
        put("AUMCPEP", 100.0 * (1.0 - aumclst / aumcifp), "%", npts_lst, r_inf)
        zero_auc = np.where(auclst == 0, "AUClast = 0: MRT undefined", "")
        r_mrt_lst = _first_nonempty(r_lst, zero_auc)
        mrt_lst, mrt_o, mrt_p = aumclst / auclst, aumcifo / aucifo, aumcifp / aucifp
        half_inf = float(v["infusion_duration"]) / 2.0
        for prefix, shift in (("MRTEV", 0.0), ("MRTIB", 0.0), ("MRTIC", half_inf)):
            put(prefix + "LST", np.where(auclst > 0, mrt_lst - shift, np.nan), h, npts_lst,
                r_mrt_lst)
            put(prefix + "IFO", mrt_o - shift, h, npts_lst, r_inf)
            put(prefix + "IFP", mrt_p - shift, h, npts_lst, r_inf)

    # dose (step 10)
    if v["dose"]:
        d = _profile_dose(v["conc"], v["dose"], v["p"].gid_all, n_groups, v["p"].by)
        r_dose = np.where(np.isnan(d), "no dose for the profile", "")
        r_d_inf = _first_nonempty(r_dose, r_inf)
        cl_unit = f"{dose_unit}/({h}*{conc_unit})" if dose_unit else f"1/({h}*{conc_unit})"
        vz_unit = f"{dose_unit}/({conc_unit})" if dose_unit else f"1/({conc_unit})"
        per_dose = f"/{dose_unit}" if dose_unit else "/dose"
        with np.errstate(divide="ignore", invalid="ignore"):
            for code in ("CLO", "CLFO"):
                put(code, d / aucifo, cl_unit, npts_lst, r_d_inf)
            for code in ("CLP", "CLFP"):
                put(code, d / aucifp, cl_unit, npts_lst, r_d_inf)
            for code in ("VZO", "VZFO"):
                put(code, d / (lam * aucifo), vz_unit, npts_lst, r_d_inf)
            for code in ("VZP", "VZFP"):
                put(code, d / (lam * aucifp), vz_unit, npts_lst, r_d_inf)
            put("CMAXD", cmax / d, f"{conc_unit}{per_dose}", n_obs, r_dose)
            put("AUCLSTD", auclst / d, f"{auc_unit}{per_dose}", npts_lst,
                _first_nonempty(r_dose, r_lst))
            put("AUCIFOD", aucifo / d, f"{auc_unit}{per_dose}", npts_lst, r_d_inf)
            put("AUCIFPD", aucifp / d, f"{auc_unit}{per_dose}", npts_lst, r_d_inf)
    else:
        d, r_dose, per_dose = nan, empty, ""

    # dosing interval (step 5, 11)
    in_tau = obs & (t <= (tau if tau else np.inf))
    cmin = _group_reduce(np.minimum, g[in_tau], c[in_tau], n_groups, np.inf)
    cmin = np.where(np.isfinite(cmin), cmin, np.nan)
    put("CMIN", cmin, conc_unit, n_obs, empty)
    if tau:
        auctau, npts_tau, r_tau, n_tau = v["interval"](0.0, tau)
        put("AUCTAU", auctau, auc_unit, npts_tau, r_tau, n_tau)
        put("AUCTAUD", auctau / d, f"{auc_unit}{per_dose}", npts_tau,
            _first_nonempty(r_dose, r_tau), n_tau)
        at_tau = obs & (t == tau)
        ctrough = np.full(n_groups, np.nan)
        ctrough[g[at_tau]] = c[at_tau]
        put("CTROUGH", ctrough, conc_unit, n_obs,
            np.full(n_groups, f"no sample at tau ({tau:g} h)", dtype=object))
        with np.errstate(divide="ignore", invalid="ignore"):
            cavg = auctau / tau
            put("CAVG", cavg, conc_unit, npts_tau, r_tau, n_tau)
            put("FLUCP", np.where(cavg > 0, 100.0 * (cmax - cmin) / cavg, np.nan), "%",
                npts_tau, _first_nonempty(r_tau, np.where(cavg > 0, "", "Cavg = 0")))
            put("SWING", np.where(cmin > 0, 100.0 * (cmax - cmin) / cmin, np.nan), "%", n_obs,
                np.where(cmin > 0, "", "Cmin = 0: swing undefined (PKNCA: Inf)"))
            put("AILAMZ", 1.0 / (1.0 - np.exp(-lam * tau)), "", lz_n, r_lz)
    # parameters whose value is missing must say why
    for code in list(table):
        if code in extra:
            aval, unit, npts, reason, note = table[code]
            miss = np.isnan(np.asarray(aval, dtype=float))
            reason = np.where(miss & (np.asarray(reason, dtype=object) == ""),
                              "not computable (see the parameters it is derived from)",
                              reason)
            table[code] = (aval, unit, npts, reason, note)


def _aumc_last(g, t, c, hi, n_groups, log_down) -> np.ndarray:
    """AUMC over [0, hi[g]] on whole segments (hi is a sample time), PKNCA formulas."""
    same = g[1:] == g[:-1]
    gs = g[:-1]
    t1, t2, c1, c2 = t[:-1], t[1:], c[:-1], c[1:]
    inside = same & (t1 >= 0) & (t2 <= hi[gs])
    log = log_down & (c2 < c1) & (c2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dt = t2 - t1
        lr = np.log(np.where(log, c2 / c1, 0.5))
        area = np.where(log, dt * (c2 * t2 - c1 * t1) / lr - dt ** 2 * (c2 - c1) / lr ** 2,
                        dt * (c2 * t2 + c1 * t1) / 2.0)
    return np.bincount(gs[inside], weights=area[inside], minlength=n_groups)


# --------------------------------------------------------------------------- helpers


def _check_arguments(conc, by, time, value, blq_flag, lloq, auc_start, auc_end) -> None:
    if not by:
        raise SpecError("NCA needs at least one 'by' column identifying a profile",
                        key="by", hint="e.g. by=['STUDYID', 'USUBJID']")
    named = by + [time, value] + [c for c in (blq_flag, lloq) if c]
    if len(set(named)) != len(named):
        raise SpecError(f"NCA columns must be distinct, got {named}", key="by")
    missing = [c for c in named if c not in conc.columns]
    if missing:
        raise InputError([Problem("column needed for NCA is missing from the "
                                  "concentration data", column=c) for c in missing])
    for col in [time, value] + ([lloq] if lloq else []):
        if not pd.api.types.is_numeric_dtype(conc[col]) or pd.api.types.is_bool_dtype(conc[col]):
            raise DataError(f"NCA needs a numeric column, found dtype {conc[col].dtype}",
                            column=col, hint="convert it with pd.to_numeric first")
    if not (np.isfinite(auc_start) and np.isfinite(auc_end)) or auc_start < 0 \
            or auc_end <= auc_start:
        raise SpecError(f"AUC interval [{auc_start}, {auc_end}] h is invalid",
                        key="auc_start/auc_end",
                        hint="need 0 <= auc_start < auc_end, in hours from first infusion")
    null_keys = conc[by].isna().any(axis=1)
    if null_keys.any():
        rows = np.flatnonzero(null_keys.to_numpy())[:20]
        raise DataError([Problem(f"record {i} has a missing profile key {by}", column=",".join(by))
                         for i in rows])


def _blq_mask(conc, value, blq_flag, lloq, v) -> np.ndarray:
    """BLQ = flagged, or value below the row's LLOQ."""
    blq = np.zeros(len(conc), dtype=bool)
    if blq_flag:
        s = conc[blq_flag]
        if pd.api.types.is_bool_dtype(s):
            flag = s.fillna(False).to_numpy(dtype=bool)
        elif pd.api.types.is_numeric_dtype(s):
            num = s.to_numpy(dtype=float, na_value=np.nan)
            bad = ~np.isnan(num) & ~np.isin(num, [0.0, 1.0])
            _raise_bad_flags(conc, blq_flag, bad)
            flag = num == 1.0
        else:
            txt = s.astype("str").str.strip().str.upper().fillna("")
            bad = ~txt.isin(["Y", "N", ""]).to_numpy()
            _raise_bad_flags(conc, blq_flag, bad)
            flag = (txt == "Y").to_numpy()
        blq |= flag
    if lloq:
        q = conc[lloq].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            blq |= v < q  # NaN on either side compares False
    return blq


def _raise_bad_flags(conc, col, bad) -> None:
    if bad.any():
        rows = np.flatnonzero(bad)[:20]
        raise DataError([Problem(f"record {i}: BLQ flag {conc[col].iloc[i]!r} is not "
                                 "Y/N/blank, true/false or 1/0", column=col) for i in rows])


def _describe(conc, by, i) -> str:
    return ", ".join(f"{b}={conc[b].iloc[i]}" for b in by)


def _check_results(conc, by, time, value, has_result, t, v, blq) -> None:
    bad_t = has_result & np.isnan(t)
    with np.errstate(invalid="ignore"):
        bad_v = ~blq & (v < 0)
    problems = [Problem(f"record {i} ({_describe(conc, by, i)}) has a concentration but "
                        "no actual time", column=time,
                        hint="derive the actual time from the sample date/time, or use the "
                             "nominal time explicitly before NCA")
                for i in np.flatnonzero(bad_t)[:20]]
    problems += [Problem(f"record {i} ({_describe(conc, by, i)}) has a negative "
                         f"concentration {v[i]:g}", column=value)
                 for i in np.flatnonzero(bad_v)[:20]]
    if problems:
        raise DataError(problems)


def _check_duplicate_times(conc, by, time, g, t, src) -> None:
    dup = np.flatnonzero((g[1:] == g[:-1]) & (t[1:] == t[:-1]))
    if len(dup):
        raise DataError([Problem(f"records {src[k]} and {src[k + 1]} "
                                 f"({_describe(conc, by, src[k])}) are two results at the "
                                 f"same time {t[k]:g} h", column=time,
                                 hint="keep one result per sample time")
                         for k in dup[:20]])


def _group_reduce(ufunc, g, x, n_groups, fill) -> np.ndarray:
    out = np.full(n_groups, fill, dtype=float)
    ufunc.at(out, g, x)
    return out


def _count_in(g, t, obs, lo, hi, n_groups) -> np.ndarray:
    inside = obs & (t >= lo[g]) & (t <= hi[g])
    return np.bincount(g[inside], minlength=n_groups)


def _interval_auc(g, t, c, lo, hi, n_groups, log_down=True):
    """Linear-up/log-down (or, log_down=False, linear) AUC of each group over [lo[g], hi[g]] (no extrapolation).

    Returns the areas and, per group, the interpolation method ("linear",
    "log-linear" or "") used at the lower and at the upper bound.
    """
    same = g[1:] == g[:-1]
    gs = g[:-1]
    t1, t2, c1, c2 = t[:-1], t[1:], c[:-1], c[1:]
    a, b = lo[gs], hi[gs]
    left = np.maximum(t1, a)
    right = np.minimum(t2, b)
    valid = same & (right > left)
    # Log trapezoid only when declining and both concentrations > 0.
    log = log_down & (c2 < c1) & (c2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dt = np.where(same, t2 - t1, 1.0)
        ln_ratio = np.log(np.where(log, c1 / c2, 2.0))  # ln(C1/C2) > 0 on log segments
        # Fractions only matter on segments inside the interval; zero elsewhere so that
        # segments spanning two profiles cannot overflow exp().
        f_left = np.where(valid, (left - t1) / dt, 0.0)
        f_right = np.where(valid, (right - t1) / dt, 0.0)
        c_left = np.where(left == t1, c1,
                          np.where(log, c1 * np.exp(-f_left * ln_ratio), c1 + f_left * (c2 - c1)))
        c_right = np.where(right == t2, c2,
                           np.where(log, c1 * np.exp(-f_right * ln_ratio),
                                    c1 + f_right * (c2 - c1)))
        # On the exponential through (t1, C1), (t2, C2) the exact area between two of its
        # points is (C_left - C_right) * dt / ln(C1/C2); for a full segment this is the
        # usual (C1 - C2) * dt / ln(C1/C2).
        area = np.where(log, (c_left - c_right) * dt / ln_ratio,
                        0.5 * (c_left + c_right) * (right - left))
    auc = np.bincount(gs[valid], weights=area[valid], minlength=n_groups)

    method = np.where(log, "log-linear", "linear")
    interp_lo = np.full(n_groups, "", dtype=object)
    cut_lo = valid & (left > t1)
    interp_lo[gs[cut_lo]] = method[cut_lo]
    interp_hi = np.full(n_groups, "", dtype=object)
    cut_hi = valid & (right < t2)
    interp_hi[gs[cut_hi]] = method[cut_hi]
    return auc, interp_lo, interp_hi


def _fmt(x) -> np.ndarray:
    return np.char.mod("%g", np.asarray(x, dtype=float)).astype(object)


def _cat(*parts) -> np.ndarray:
    out = np.asarray("", dtype=object)
    for p in parts:
        out = out + np.asarray(p, dtype=object)
    return out


def _first_nonempty(*texts) -> np.ndarray:
    out = np.asarray(texts[-1], dtype=object)
    for txt in reversed(texts[:-1]):
        txt = np.asarray(txt, dtype=object)
        out = np.where(txt != "", txt, out)
    return out


def _join(*texts) -> np.ndarray:
    out = np.asarray("", dtype=object)
    for txt in texts:
        txt = np.asarray(txt, dtype=object)
        out = np.where(txt == "", out, np.where(out == "", txt, out + "; " + txt))
    return out
