"""Relative times and analysis visit windows (ADaMIG 1.3 §3.3.3 timing variables)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cdisc.errors import SpecError

_UNITS = {"h": 3600.0, "min": 60.0, "day": 86400.0}


def _as_datetime(s: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    text = s.astype("str").where(s.notna(), "")
    full = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
    return pd.to_datetime(text.where(full).str.slice(0, 16), format="%Y-%m-%dT%H:%M", errors="coerce")


def derive_var_relative_time(dataset: pd.DataFrame, *, new_var: str, datetime: str, reference: str,
                             unit: str = "h") -> pd.DataFrame:
    """Actual elapsed time from a reference date/time (e.g. AFRLT: hours since first dose).

    Arguments:
        new_var: variable to create (``AFRLT``, ``ARRLT``).
        datetime / reference: date-time columns (datetime64, or ISO 8601 text with at
            least hours and minutes; anything less precise gives a missing time, since
            an elapsed time in hours from a date alone would be invented).
        unit: ``h`` (default), ``min`` or ``day``.

    Algorithm: 1. both values as date-times; 2. ``new_var`` = (datetime - reference) in
    ``unit``, negative before the reference; 3. missing when either is missing.
    ADaMIG 1.3 / ADaM PK (ADNCA) AFRLT: "actual relative time from first dose".
    """
    if unit not in _UNITS:
        raise SpecError(f"unit must be one of {sorted(_UNITS)}", key="derive_var_relative_time.unit")
    for c in (datetime, reference):
        if c not in dataset.columns:
            raise SpecError(f"column {c} does not exist", key="derive_var_relative_time")
    out = dataset.copy(deep=False)
    diff = _as_datetime(out[datetime]) - _as_datetime(out[reference])
    out[new_var] = diff.dt.total_seconds() / _UNITS[unit]
    return out


def derive_vars_analysis_window(dataset: pd.DataFrame, *, day: str, windows: list[dict[str, Any]],
                                by_vars: list[str], new_flag: str = "ANL01FL",
                                filter: Any = None) -> pd.DataFrame:
    """AVISIT/AVISITN from the study day by analysis windows, and one record per window flagged.

    Arguments:
        day: the relative day (``ADY``).
        windows: list of ``{avisit, avisitn, target, lo, hi}`` (days, inclusive bounds);
            windows must not overlap.
        by_vars: groups in which one record per window is chosen (``[USUBJID, PARAMCD]``).
        new_flag: the flag of the chosen record (``ANL01FL``).
        filter: records eligible for the flag (e.g. ``present(AVAL)``).

    Algorithm:
        1. AVISIT/AVISITN = the window whose [lo, hi] contains ``day``; none -> missing
           (the record stays, unflagged);
        2. within each by group and window, the eligible record closest to ``target``
           is flagged; on equal distance the earlier one (then the first in order);
        ADaMIG 1.3 §3.3.3 (AVISIT/AVISITN "analysis visit" may differ from VISIT), §3.3.8 (ANLzzFL).
    """
    spans = sorted((float(w["lo"]), float(w["hi"])) for w in windows)
    for (_, hi), (lo2, _) in zip(spans, spans[1:]):
        if lo2 <= hi:
            raise SpecError("analysis windows overlap", key="derive_vars_analysis_window.windows")
    out = dataset.copy(deep=False)
    d = pd.to_numeric(out[day], errors="coerce").to_numpy(dtype="float64")
    avisit = np.full(len(out), None, dtype=object)
    avisitn = np.full(len(out), np.nan)
    target = np.full(len(out), np.nan)
    for w in windows:
        hit = (d >= float(w["lo"])) & (d <= float(w["hi"]))
        avisit[hit] = w["avisit"]
        avisitn[hit] = float(w["avisitn"])
        target[hit] = float(w["target"])
    out["AVISIT"] = pd.Series(avisit, index=out.index, dtype="str").where(~pd.isna(avisitn), None)
    out["AVISITN"] = avisitn
    eligible = ~np.isnan(avisitn)
    if filter is not None:
        from cdisc.expr import evaluate_filter

        eligible &= evaluate_filter(filter, out, where="derive_vars_analysis_window.filter").to_numpy()
    work = pd.DataFrame({"__dist": np.abs(d - target), "__day": d, "__pos": np.arange(len(out))}, index=out.index)
    for b in by_vars:
        work[b] = out[b].to_numpy()
    work["AVISITN"] = avisitn
    cand = work[eligible].sort_values(by_vars + ["AVISITN", "__dist", "__day", "__pos"], kind="stable")
    first = cand.groupby(by_vars + ["AVISITN"], sort=False, dropna=False).head(1)
    flag = np.full(len(out), None, dtype=object)
    flag[first["__pos"].to_numpy()] = "Y"
    out[new_flag] = pd.Series(flag, index=out.index, dtype="str")
    return out


def derive_vars_last_dose(dataset: pd.DataFrame, *, dataset_add: pd.DataFrame, by_vars: list[str],
                          dose_datetime: str, analysis_datetime: str, new_vars: dict[str, str],
                          filter_add: Any = None, dose_count_var: str | None = None,
                          before_first: str = "first") -> pd.DataFrame:
    """Variables of the most recent dose on or before each record (ADNCA time since last dose).

    Arguments:
        dataset_add: the dosing records (EX), restricted with ``filter_add`` (e.g. the study
            product only).
        by_vars: key shared by both, e.g. ``["STUDYID", "USUBJID"]``.
        dose_datetime: the dose start (``EXSTDTC``: datetime64 or ISO 8601 text with hours
            and minutes; a dose without a time is an error, its order would be guessed).
        analysis_datetime: the record's date-time (``ADTM``).
        new_vars: ``{NEWVAR: EXVAR}`` copied from the chosen dose (the dose date-time itself
            is available as ``EXSTDTC`` text; copy it to compute ARRLT).
        dose_count_var: when given, the number of doses started on or before the record
            (0 before the first dose): the number of infusions received so far.
        before_first: records before the first dose (pre-dose samples): ``"first"`` takes the
            first dose (ARRLT is then negative, as ADNCA's pre-dose convention), ``"missing"``
            leaves the new variables missing.

    Algorithm (vectorised, ``pandas.merge_asof``):
        1. doses sorted by key and date-time, numbered 1..n per key;
        2. each record with a date-time gets the last dose with date-time <= its own
           (``direction="backward"`` within the key); a dose at exactly the record's time
           counts as received;
        3. records before the first dose: as ``before_first``; dose count 0;
        4. records without a date-time: new variables missing.

    Rule: ADaM ADNCA v1.0 (ARRLT/NRRLT "relative to the most recent dose"), admiral
    ``derive_vars_joined(join_type = "before")`` keeping the last.
    """
    func = "derive_vars_last_dose"
    if before_first not in ("first", "missing"):
        raise SpecError(f"{func}: before_first must be 'first' or 'missing'")
    for c in list(by_vars) + [analysis_datetime]:
        if c not in dataset.columns:
            raise SpecError(f"{func}: dataset has no column {c!r}")
    for c in list(by_vars) + [dose_datetime] + list(new_vars.values()):
        if c not in dataset_add.columns:
            raise SpecError(f"{func}: dataset_add has no column {c!r}")
    from cdisc.errors import DataError
    from .flags import _condition_mask

    ex = dataset_add[_condition_mask(dataset_add, filter_add, func=func, arg="filter_add")]
    doses = pd.DataFrame({b: ex[b].to_numpy() for b in by_vars})
    doses["__dt"] = _as_datetime(ex[dose_datetime]).to_numpy()
    if doses["__dt"].isna().any():
        raise DataError(f"{func}: {int(doses['__dt'].isna().sum())} dose record(s) have no complete "
                        f"date-time in {dose_datetime}")
    for new, src in new_vars.items():
        doses[new] = ex[src].to_numpy()
    doses = doses.sort_values(by_vars + ["__dt"], kind="stable").reset_index(drop=True)
    doses["__n"] = doses.groupby(by_vars, sort=False).cumcount() + 1
    recs = pd.DataFrame({b: dataset[b].to_numpy() for b in by_vars})
    recs["__dt"] = _as_datetime(dataset[analysis_datetime]).astype("datetime64[ns]").to_numpy()
    recs["__pos"] = np.arange(len(dataset))
    doses["__dt"] = doses["__dt"].astype("datetime64[ns]")
    timed = recs[recs["__dt"].notna()].sort_values("__dt", kind="stable")
    hit = pd.merge_asof(timed, doses.sort_values("__dt", kind="stable"), on="__dt", by=by_vars,
                        direction="backward")
    hit = hit.set_index("__pos")
    if before_first == "first":
        first = doses.groupby(by_vars, sort=False).head(1).drop(columns="__dt")
        none = hit["__n"].isna()
        if none.any():
            fill = hit.loc[none, by_vars].reset_index().merge(first, on=by_vars, how="left").set_index("__pos")
            for new in new_vars:
                hit.loc[none, new] = fill[new]
    out = dataset.copy(deep=False)
    for new in new_vars:
        col = pd.Series(np.nan, index=range(len(dataset)), dtype=object)
        col.loc[hit.index] = hit[new].to_numpy()
        out[new] = col.to_numpy()
    if dose_count_var:
        cnt = np.full(len(dataset), np.nan)
        cnt[hit.index.to_numpy()] = hit["__n"].fillna(0).to_numpy(dtype=float)
        out[dose_count_var] = cnt
    return out
