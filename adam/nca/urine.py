"""Urine (excretion) parameters: PKNCA ``pk.calc.ae``, ``pk.calc.fe``, ``pk.calc.clr``."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdisc.errors import DataError, InputError, Problem

from .core import iso_hours

__all__ = ["renal_clearance", "urine_parameters"]


def urine_parameters(urine: pd.DataFrame, *, by: list[str], value: str, start: str, end: str,
                     volume: str | None = None, dose: str | None = None,
                     amount_unit: str = "") -> pd.DataFrame:
    """Amount excreted (RCAMINT, PKNCA ``ae``) and fraction excreted (FREXINT, ``fe``)
    per profile over all its collection intervals.

    Arguments: ``urine`` one row per collection interval; ``value`` its concentration
    (BLQ/missing = 0 amount, PKNCA ``conc.blq`` for ae); ``start``/``end`` the interval
    (hours); ``volume`` the collected volume (absent: the value already is an amount,
    volume 1); ``dose`` the dose column (for FREXINT).

    Algorithm:
        1. amount of a collection = value * volume (missing value = 0);
        2. RCAMINT = sum of the amounts per profile; PPSTINT/PPENINT = the first start
           and the last end of its collections;
        3. FREXINT = RCAMINT / dose (a fraction, PKNCA ``fe``).
    """
    need = list(by) + [value, start, end] + [c for c in (volume, dose) if c]
    missing = [c for c in need if c not in urine.columns]
    if missing:
        raise InputError([Problem("column needed for urine NCA is missing", column=c)
                          for c in missing])
    v = pd.to_numeric(urine[value], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    if (v < 0).any():
        i = int(np.flatnonzero(v < 0)[0])
        raise DataError([Problem(f"record {i} has a negative urine concentration", column=value)])
    vol = (pd.to_numeric(urine[volume], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
           if volume else np.ones(len(urine)))
    df = urine[list(by)].copy()
    df["__AE"] = v * vol
    df["__S"] = pd.to_numeric(urine[start], errors="coerce")
    df["__E"] = pd.to_numeric(urine[end], errors="coerce")
    if dose:
        df["__D"] = pd.to_numeric(urine[dose], errors="coerce")
    agg = df.groupby(list(by), sort=True, dropna=False).agg(
        AE=("__AE", lambda s: s.sum(min_count=len(s))) if volume else ("__AE", "sum"),
        S=("__S", "min"), E=("__E", "max"),
        **({"D": ("__D", "first")} if dose else {})).reset_index()
    rows = [agg[list(by)].assign(PARAMCD="RCAMINT", PARAM="Amt Rec from T1 to T2",
                                 AVAL=agg["AE"].to_numpy(), AVALU=amount_unit)]
    if dose:
        with np.errstate(divide="ignore", invalid="ignore"):
            fe = agg["AE"].to_numpy() / agg["D"].to_numpy(dtype=float)
        rows.append(agg[list(by)].assign(PARAMCD="FREXINT", PARAM="Fract Excr from T1 to T2",
                                         AVAL=fe, AVALU="fraction"))
    out = pd.concat(rows, ignore_index=True)
    se = pd.concat([agg[["S", "E"]]] * len(rows), ignore_index=True)
    out["PPSTINT"] = [iso_hours(x) if np.isfinite(x) else "" for x in se["S"].to_numpy(dtype=float)]
    out["PPENINT"] = [iso_hours(x) if np.isfinite(x) else "" for x in se["E"].to_numpy(dtype=float)]
    return out.sort_values(list(by), kind="stable").reset_index(drop=True)


def renal_clearance(urine_params: pd.DataFrame, plasma_params: pd.DataFrame, *, by: list[str],
                    auc: str = "AUCLST", factor: float = 1.0, unit: str = "") -> pd.DataFrame:
    """RENALCL = RCAMINT / plasma AUC (PKNCA ``clr.last`` = ae/auclast; ``auc="AUCIFO"`` gives
    ``clr.obs``), times ``factor`` for a unit change (e.g. mg/(h*ug/mL) = L/h -> mL/min:
    1000/60). One row per ``by`` group that has both."""
    ae = urine_params[urine_params["PARAMCD"] == "RCAMINT"][list(by) + ["AVAL"]]
    a = plasma_params[plasma_params["PARAMCD"] == auc][list(by) + ["AVAL"]]
    m = ae.merge(a, on=list(by), suffixes=("_AE", "_AUC"))
    with np.errstate(divide="ignore", invalid="ignore"):
        clr = np.where(m["AVAL_AUC"] > 0, m["AVAL_AE"] / m["AVAL_AUC"] * factor, np.nan)
    return m[list(by)].assign(PARAMCD="RENALCL", PARAM="Renal CL", AVAL=clr, AVALU=unit)
