"""Terminal elimination rate constant λz, PKNCA ``pk.calc.half.life`` (log-linear method).

All profiles are fitted at once: for every candidate starting point of every profile
the least-squares line through (t, ln C) of that point and all later ones is computed
from reverse cumulative sums within the profile, so there is no per-profile loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LambdaZFit:
    """Per-profile results (arrays of length n_groups, NaN where no fit) and the
    per-point mask (length of the input points) of the points used."""

    lamz: np.ndarray
    r2: np.ndarray
    r2adj: np.ndarray
    npts: np.ndarray
    lower: np.ndarray       # LAMZLL: time of the first point in the fit
    upper: np.ndarray       # LAMZUL: time of the last point in the fit
    clast_pred: np.ndarray  # exp(intercept - λz * Tlast)
    corrxy: np.ndarray
    reason: np.ndarray      # why λz is missing, else ""
    used: np.ndarray        # per input point: used in the selected fit


def _reverse_group_cumsum(x: np.ndarray, g: np.ndarray, next_start: np.ndarray) -> np.ndarray:
    """Sum of x from each row to the end of its group (g sorted ascending)."""
    r = np.cumsum(x[::-1])[::-1]
    r_next = np.append(r, 0.0)[next_start]
    return r - r_next


def fit_lambda_z(g, t, c, tmax, tlast, n_groups, *, min_points=3, adj_r2_factor=1e-4,
                 allow_tmax=False, include=None) -> LambdaZFit:
    """Best-fit λz per profile as PKNCA ``pk.calc.half.life`` does by default.

    Arguments: ``g`` (profile id, sorted ascending), ``t`` (time, ascending within a
    profile), ``c`` (usable concentrations after the BLQ rule; imputed points must be
    removed by the caller), ``tmax``/``tlast`` per profile, ``include``: optional
    per-point bool, the manual selection (PKNCA ``include_half.life``): when given,
    the fit uses exactly those points of the profile (still only C > 0) and no search.

    Algorithm (PKNCA 0.12 ``pk.calc.half.life``, ``fit_half_life``):
        1. Points with C > 0; a profile whose ln C has no variability gets no λz.
        2. Candidate points: time > Tmax (>= Tmax when ``allow_tmax``), i.e. Cmax
           excluded by default. Fewer than ``min_points`` candidates: no λz.
        3. For k = min_points..n, fit ln C = a - λz t by least squares to the LAST k
           candidates; R² = 1 - RSS/TSS, adjusted R² = 1 - (1 - R²)(k - 1)/(k - 2).
        4. best = the highest adjusted R² of all fits (any sign of slope); keep the fits
           with λz > 0 and adjusted R² > best - ``adj_r2_factor``; of those take the one
           with most points. None left: no λz.
        5. Report λz, R², adjusted R², number of points, first/last time of the fit,
           Clast predicted = exp(a - λz Tlast), and flag the points used.
    """
    n = len(g)
    nan = np.full(n_groups, np.nan)
    reason = np.full(n_groups, "", dtype=object)
    pos = c > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        y_all = np.where(pos, np.log(np.where(pos, c, 1.0)), np.nan)
    # 1. variability of ln C over the positive points
    ymin = np.full(n_groups, np.inf)
    ymax = np.full(n_groups, -np.inf)
    np.minimum.at(ymin, g[pos], y_all[pos])
    np.maximum.at(ymax, g[pos], y_all[pos])
    no_var = np.isfinite(ymin) & (ymin == ymax)

    # 2. candidates
    if include is not None:
        cand = pos & include
    elif allow_tmax:
        cand = pos & (t >= tmax[g])
    else:
        cand = pos & (t > tmax[g])
    cand &= ~no_var[g]
    idx = np.flatnonzero(cand)
    gc, tc, yc = g[idx], t[idx], y_all[idx]
    n_cand = np.bincount(gc, minlength=n_groups)

    used = np.zeros(n, dtype=bool)
    out = LambdaZFit(nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(), nan.copy(),
                     nan.copy(), nan.copy(), reason, used)
    few = n_cand < (1 if include is not None else min_points)
    reason[few] = (f"fewer than {min_points} concentrations > 0 after Tmax for lambda z"
                   if include is None else "no concentration > 0 selected for lambda z")
    reason[no_var] = "no variability in the concentrations for lambda z"
    if len(idx) == 0:
        return out

    # centre per profile (exact in floating point for the sums that follow)
    tm = np.bincount(gc, weights=tc, minlength=n_groups) / np.maximum(n_cand, 1)
    ym = np.bincount(gc, weights=yc, minlength=n_groups) / np.maximum(n_cand, 1)
    x = tc - tm[gc]
    y = yc - ym[gc]
    starts = np.searchsorted(gc, np.arange(n_groups + 1))  # first candidate of each profile
    next_start = starts[gc + 1]
    k = (next_start - np.arange(len(gc))).astype(float)    # points from here to the end
    if include is not None:
        # manual selection: only the fit with all selected points (start of each profile)
        is_first = np.arange(len(gc)) == starts[gc]
        valid = is_first & (k >= 1)
    else:
        valid = k >= min_points
    sx = _reverse_group_cumsum(x, gc, next_start)
    sy = _reverse_group_cumsum(y, gc, next_start)
    sxx = _reverse_group_cumsum(x * x, gc, next_start)
    sxy = _reverse_group_cumsum(x * y, gc, next_start)
    syy = _reverse_group_cumsum(y * y, gc, next_start)
    with np.errstate(divide="ignore", invalid="ignore"):
        ssxx = sxx - sx * sx / k
        ssxy = sxy - sx * sy / k
        ssyy = syy - sy * sy / k
        slope = ssxy / ssxx
        intercept = sy / k - slope * sx / k            # in centred coordinates
        rss = np.maximum(ssyy - slope * ssxy, 0.0)
        r2 = 1.0 - rss / ssyy
        r2adj = 1.0 - (1.0 - r2) * (k - 1.0) / (k - 2.0)
        corr = ssxy / np.sqrt(ssxx * ssyy)
    lam = -slope

    # 4. selection
    if include is not None:
        sel = valid & np.isfinite(slope)
    else:
        score = np.where(valid & np.isfinite(r2adj), r2adj, -np.inf)
        best = np.full(n_groups, -np.inf)
        np.maximum.at(best, gc, score)
        ok = valid & (lam > 0) & (score > best[gc] - adj_r2_factor)
        most = np.zeros(n_groups)
        np.maximum.at(most, gc[ok], k[ok])
        sel = ok & (k == most[gc])
        no_fit = (n_cand >= min_points) & ~np.isin(np.arange(n_groups), gc[sel])
        reason[no_fit & ~no_var] = ("no terminal phase: no fit with lambda z > 0 within the "
                                    "adjusted R-squared tolerance of the best fit")
    s = np.flatnonzero(sel)
    gs = gc[s]
    out.lamz[gs] = lam[s]
    out.r2[gs] = r2[s]
    out.r2adj[gs] = r2adj[s]
    out.npts[gs] = k[s]
    out.lower[gs] = tc[s]
    last_idx = next_start[s] - 1
    out.upper[gs] = tc[last_idx]
    out.clast_pred[gs] = np.exp(intercept[s] + ym[gs] + slope[s] * (tlast[gs] - tm[gs]))
    out.corrxy[gs] = corr[s]
    if include is not None:
        bad = np.isfinite(out.lamz) & (out.lamz <= 0)
        reason[bad] = "lambda z <= 0 with the manually selected points"
        for arr in (out.lamz, out.r2, out.r2adj, out.npts, out.lower, out.upper,
                    out.clast_pred, out.corrxy):
            arr[bad] = np.nan
    # 5. points used: candidates from the selected start to the end of the profile
    lower_c = out.lower[gc]
    used[idx] = np.isfinite(out.lamz[gc]) & (tc >= lower_c)
    reason[np.isfinite(out.lamz)] = ""
    return out
