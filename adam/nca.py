"""Non-compartmental analysis (NCA) of cell-kinetic concentration-time data.

Derives the per-subject PK parameters of VGO-Cs01p CAR-NK cell expansion in peripheral
blood (cells/uL) that become SDTM PP records (SDTMIG 3.4, PP domain: PPTESTCD/PPTEST from
the CDISC PKPARMCD/PKPARM codelists, PPSTINT/PPENINT as ISO 8601 durations relative to the
reference time point for interval parameters) and ADPP (ADaMIG 1.3 Basic Data Structure,
PARAMCD/PARAM/AVAL/AVALU).

Time is always in **hours** from the start of the first infusion (actual, not nominal,
times); AUCs are therefore in ``h*<concentration unit>``, e.g. ``h*cells/uL``.

Everything is vectorised over all subjects at once: the frame is sorted by group and
time, interval areas are computed with numpy on consecutive rows and summed per group
(``np.bincount``); there is no per-subject or per-record Python loop.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from cdisc.errors import DataError, InputError, Problem, SpecError

__all__ = ["BLQRule", "PK_PARAMETERS", "PARAMETER_ORDER", "nca_parameters", "iso_hours"]

# PPTESTCD -> PPTEST, CDISC CT PKPARMCD/PKPARM submission values (the names PKNCA also
# maps to). Later CT packages relabel TMAX "Time of CMAX Observation": check the CT
# version pinned in specs/ct before writing PP.
PK_PARAMETERS: dict[str, str] = {
    "CMAX": "Max Conc",
    "TMAX": "Time of CMAX",
    "CLST": "Last Nonzero Conc",
    "TLST": "Time of Last Nonzero Conc",
    "AUCLST": "AUC to Last Nonzero Conc",
    "AUCINT": "AUC from T1 to T2",
}
PARAMETER_ORDER: tuple[str, ...] = tuple(PK_PARAMETERS)

TIME_UNIT = "h"

BLQHandling = Literal["zero", "missing"]


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
) -> pd.DataFrame:
    """Derive Cmax, Tmax, Clast, Tlast, AUClast and AUC(auc_start-auc_end) per profile.

    Arguments:
        conc: concentration records, one row per sample (e.g. PC or ADPC).
        by: columns identifying one profile (e.g. ``["STUDYID", "USUBJID"]``); the output
            keeps them, in this order, and is sorted by them.
        time: actual time of the sample in **hours** from the start of the first infusion
            (numeric). Pre-dose samples have time <= 0.
        value: numeric concentration (e.g. PCSTRESN); may be missing on BLQ rows.
        blq_flag: optional column marking BLQ samples: bool, 0/1, or "Y"/"N"/blank.
        lloq: optional numeric column with the lower limit of quantification; a value
            below it is BLQ.
        auc_start, auc_end: the AUCINT interval in hours (default 0-672 h = day 0-28).
        blq_rule: how leading/embedded/trailing BLQ samples are used, see ``BLQRule``.
        impute_c0: when a profile has no pre-dose sample, assume C(0) = 0 (no CAR-NK cells
            before the first infusion of an intravascular cell product).
        conc_unit: concentration unit, used for AVALU (AUC unit is ``h*<conc_unit>``).

    Returns:
        One row per profile and parameter, sorted by ``by`` then CMAX, TMAX, CLST, TLST,
        AUCLST, AUCINT, with columns ``by...``, PARAMCD, PARAM (CDISC PKPARM name), AVAL,
        AVALU, NPTS (observed concentrations used, imputed C(0) and interpolated
        interval ends not counted), PPSTINT/PPENINT (ISO 8601, AUCINT only, else ""),
        REASON (why AVAL is missing, else "") and NOTE (imputation/interpolation done).

    Algorithm:
        1. Rows with neither a value nor a BLQ mark are not-done samples and are dropped.
           A result row without a time, a negative concentration, or two results at the
           same time in one profile is a DataError.
        2. Sort by profile and time. Pre-dose samples (time <= 0): the last one is the
           concentration at the start of the infusion and is placed at t = 0; earlier
           pre-dose samples are ignored.
        3. Classify BLQ samples as leading/embedded/trailing relative to the first and
           last quantifiable sample and set them to 0 or exclude them per ``blq_rule``.
        4. If a profile has no sample at t = 0 and ``impute_c0``, add C(0) = 0.
        5. Cmax = maximum observed concentration; Tmax = time of its first occurrence
           (missing when Cmax = 0, the profile never rose above the LLOQ).
           Tlast/Clast = time and value of the last concentration > 0.
        6. AUC by the linear-up/log-down trapezoidal rule on every consecutive pair
           (t1, C1), (t2, C2): linear, (C1 + C2) / 2 * dt, when C2 >= C1 or either is 0;
           logarithmic, (C1 - C2) * dt / ln(C1 / C2), when C1 > C2 > 0. A segment cut by
           an interval bound is evaluated at the bound on the same curve (linear or
           log-linear interpolation) and only its part inside the interval counts; the
           areas are summed per profile.
        7. AUCLST integrates [0, Tlast]; it is 0 when every observed concentration is 0.
           AUCINT integrates [auc_start, auc_end] and is only reported when the profile
           has a usable concentration at or before auc_start and at or after auc_end
           (interpolating at the bound, never extrapolating); otherwise missing with
           the reason.
        8. A profile whose usable concentrations are all 0 (e.g. every sample BLQ, which
           the leading rule sets to 0) gets CMAX = 0, TMAX/CLST/TLST missing with a
           reason, AUCLST = 0 and AUCINT = 0 when its samples span the interval (an
           all-zero profile has zero area, as in PKNCA). REASON is filled only where
           AVAL is missing; NOTE only where it is not.
    """
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
    g, t, c, bq = g[keep], t[keep], c[keep], bq[keep]
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
    g, t, c = g[used], t[used], c[used]
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
        imputed = np.concatenate([imputed, np.ones(len(new_g), dtype=bool)])
        order = np.lexsort((t, g))
        g, t, c, imputed = g[order], t[order], c[order], imputed[order]

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
    auclst, _, _ = _interval_auc(g, t, c, lst_lo, lst_hi, n_groups)
    lst_covered = t_min <= 0
    auclst = np.where(any_obs & (lst_covered | ~has_pos), auclst, np.nan)
    auclst = np.where(any_obs & ~has_pos, 0.0, auclst)
    npts_lst = _count_in(g, t, obs, lst_lo, np.where(has_pos, tlast, np.inf), n_groups)

    # AUCINT over [auc_start, auc_end].
    int_lo = np.full(n_groups, float(auc_start))
    int_hi = np.full(n_groups, float(auc_end))
    aucint, interp_lo, interp_hi = _interval_auc(g, t, c, int_lo, int_hi, n_groups)
    start_ok = t_min <= auc_start
    end_ok = t_max >= auc_end
    aucint = np.where(any_obs & start_ok & end_ok, aucint, np.nan)
    npts_int = _count_in(g, t, obs, int_lo, int_hi, n_groups)

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
    r_int = _first_nonempty(
        no_obs,
        np.where(~start_ok, f"no concentration at or before the interval start "
                            f"({auc_start:g} h)", ""),
        np.where(~end_ok, _cat("last usable concentration at ", _fmt(t_max),
                               f" h is before the interval end ({auc_end:g} h)", trail_txt),
                 ""),
    )

    c0_note = np.where(c0_imputed & any_obs, "C(0)=0 imputed (no pre-dose sample)", "")
    n_lst = _join(c0_note, np.where(all_zero, zero_txt + ": AUC = 0", ""))
    int_ok = ~np.isnan(aucint)
    n_int = _join(
        np.where(auc_start == 0, c0_note, ""),
        np.where(int_ok & (interp_lo != ""),
                 _cat(f"C({auc_start:g} h) interpolated (", interp_lo, ")"), ""),
        np.where(int_ok & (interp_hi != ""),
                 _cat(f"C({auc_end:g} h) interpolated (", interp_hi, ")"), ""),
    )

    auc_unit = f"{TIME_UNIT}*{conc_unit}"
    table = {  # PARAMCD -> (AVAL, AVALU, NPTS, REASON, NOTE)
        "CMAX": (cmax, conc_unit, n_obs, no_obs, empty),
        "TMAX": (tmax, TIME_UNIT, n_obs, r_tmax, empty),
        "CLST": (clast, conc_unit, n_obs, r_last, empty),
        "TLST": (tlast, TIME_UNIT, n_obs, r_last, empty),
        "AUCLST": (auclst, auc_unit, npts_lst, r_lst, n_lst),
        "AUCINT": (aucint, auc_unit, npts_int, r_int, n_int),
    }
    n_par = len(PARAMETER_ORDER)

    def stack(i: int, dtype) -> np.ndarray:
        cols = [np.broadcast_to(np.asarray(table[p][i], dtype=dtype), (n_groups,))
                for p in PARAMETER_ORDER]
        return np.stack(cols, axis=1).ravel() if n_groups else np.empty(0, dtype=dtype)

    paramcd = np.tile(np.array(PARAMETER_ORDER, dtype=object), n_groups)
    is_int = paramcd == "AUCINT"
    out = keys.iloc[np.repeat(np.arange(n_groups), n_par)].reset_index(drop=True)
    out["PARAMCD"] = paramcd
    out["PARAM"] = np.array([PK_PARAMETERS[p] for p in PARAMETER_ORDER] * n_groups,
                            dtype=object)
    out["AVAL"] = stack(0, float)
    out["AVALU"] = stack(1, object)
    out["NPTS"] = stack(2, np.int64)
    out["PPSTINT"] = np.where(is_int, iso_hours(auc_start), "").astype(object)
    out["PPENINT"] = np.where(is_int, iso_hours(auc_end), "").astype(object)
    reason = stack(3, object)
    out["REASON"] = np.where(np.isnan(out["AVAL"].to_numpy()), reason, "").astype(object)
    out["NOTE"] = np.where(np.isnan(out["AVAL"].to_numpy()), "", stack(4, object)).astype(object)
    for col in ("PARAMCD", "PARAM", "AVALU", "PPSTINT", "PPENINT", "REASON", "NOTE"):
        out[col] = out[col].astype("str")
    return out


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


def _interval_auc(g, t, c, lo, hi, n_groups):
    """Linear-up/log-down AUC of each group over [lo[g], hi[g]] (no extrapolation).

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
    log = (c2 < c1) & (c2 > 0)
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
