"""Kaplan-Meier estimate of a time-to-event parameter (ADTTE: AVAL, CNSR).

A small, tested estimator (tests/test_review_report.py holds hand-computed values) so the
review report needs no survival dependency.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class KMCurve:
    """The estimate at each distinct event time (``time`` ascending, starting at 0 with 1.0)."""

    time: np.ndarray          # 0, then each distinct time with at least one event
    survival: np.ndarray      # S(t) just after each time
    at_risk: np.ndarray       # subjects at risk just before each time (n at 0)
    events: np.ndarray        # events at each time (0 at 0)
    censor_times: np.ndarray  # times of censored observations (for the tick marks)
    n: int

    def at(self, t: float) -> float:
        """S(t): the estimate at time ``t`` (right-continuous step function)."""
        i = np.searchsorted(self.time, t, side="right") - 1
        return float(self.survival[max(i, 0)])

    @property
    def median(self) -> float | None:
        """The first time S(t) <= 0.5, or None when the curve stays above 0.5."""
        hit = np.nonzero(self.survival <= 0.5)[0]
        return float(self.time[hit[0]]) if len(hit) else None


def kaplan_meier(time, event) -> KMCurve:
    """Kaplan-Meier product-limit estimate.

    Steps: 1. drop records with a missing time; 2. at each distinct time t_j with d_j > 0
    events, n_j = subjects with time >= t_j (a censoring at t_j counts as at risk, the
    usual convention: events before censorings at tied times); 3. S(t_j) = prod over
    i <= j of (1 - d_i / n_i). Corresponds to survival::survfit / lifelines
    KaplanMeierFitter (no variance here: the report draws the curve only).

    Args:
        time: analysis value (AVAL), any unit.
        event: True / 1 for an event (ADTTE CNSR == 0), False / 0 for censored.
    """
    t = pd.to_numeric(pd.Series(time), errors="coerce").to_numpy(dtype=float)
    e = np.asarray(pd.Series(event).fillna(0).astype(float).to_numpy() > 0)
    keep = ~np.isnan(t)
    t, e = t[keep], e[keep]
    n = len(t)
    ev_times, d = np.unique(t[e], return_counts=True)
    at_risk = n - np.searchsorted(np.sort(t), ev_times, side="left")     # subjects with time >= t_j
    surv = np.cumprod(1.0 - d / at_risk)
    return KMCurve(time=np.concatenate([[0.0], ev_times]), survival=np.concatenate([[1.0], surv]),
                   at_risk=np.concatenate([[n], at_risk]), events=np.concatenate([[0], d]),
                   censor_times=np.sort(t[~e]), n=n)


def number_at_risk(time, at_times) -> list[int]:
    """Subjects still at risk (time >= t) at each of ``at_times``, for the table under a plot."""
    t = np.sort(pd.to_numeric(pd.Series(time), errors="coerce").dropna().to_numpy(dtype=float))
    return [int(k) for k in len(t) - np.searchsorted(t, np.asarray(at_times, dtype=float), side="left")]
