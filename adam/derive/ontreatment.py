"""On-treatment flag of BDS/OCCDS records (``ONTRTFL``) with a window after the last dose."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cdisc.errors import SpecError

from .flags import _condition_mask, _require_dates

__all__ = ["derive_var_ontrtfl"]


def derive_var_ontrtfl(dataset: pd.DataFrame, *, start_date: str, ref_start_date: str,
                       new_var: str = "ONTRTFL", end_date: str | None = None,
                       ref_end_date: str | None = None, ref_end_window: int = 0,
                       ignore_time_for_ref_end_date: bool = True,
                       filter_pre_timepoint: Any = None,
                       span_period: bool = False) -> pd.DataFrame:
    """Flag the records on treatment (``"Y"`` or missing): from the first dose to the last
    dose plus a window (e.g. a lab value, a concomitant medication).

    admiral: ``derive_var_ontrtfl()`` (same arguments and rules).

    Arguments:
        start_date: the record's date (``ADT``, or ``ASTDT`` of an interval record).
        end_date: the record's end (``AENDT``) for interval records; optional.
        ref_start_date / ref_end_date: first / last dose (``TRTSDT`` / ``TRTEDT``);
            without ``ref_end_date`` there is no upper limit.
        ref_end_window: days after ``ref_end_date`` still on treatment (e.g. 30).
        ignore_time_for_ref_end_date: compare dates only for the upper limit.
        filter_pre_timepoint: condition marking a pre-dose record on the first-dose day
            (e.g. ``ATPT == 'PRE-DOSE'``); such records are not on treatment.
        span_period: also flag records that start before ``ref_start_date`` and end on
            or after it, or have no end (ongoing at first dose).

    Algorithm (first rule that applies; missing otherwise):
        1. ``ref_start_date`` missing: missing (not treated).
        2. ``end_date`` given and before ``ref_start_date``: missing.
        3. ``start_date`` missing: ``"Y"`` (cannot be shown to be off treatment).
        4. ``start_date == ref_start_date``: ``"Y"`` unless ``filter_pre_timepoint``
           holds.
        5. ``ref_start_date < start_date`` and (no ``ref_end_date`` argument, or
           ``start_date <= ref_end_date + ref_end_window`` days): ``"Y"``. A record
           whose ``ref_end_date`` value is missing is not flagged by this rule (as
           admiral; impute the end, e.g. with the cut-off date, first).
        6. ``span_period`` and ``start_date < ref_start_date`` and (``end_date`` missing
           or ``>= ref_start_date``): ``"Y"``.

    Dates are compared as given (both dates, or both datetimes); with
    ``ignore_time_for_ref_end_date`` the upper limit is compared on dates.

    Rule: ADaMIG 1.3 ONTRTFL "on treatment record flag"; the window after the last dose
    is a SAP choice.
    """
    func = "derive_var_ontrtfl"
    cols = [start_date, ref_start_date] + [c for c in (end_date, ref_end_date) if c]
    _require_dates(dataset, cols, func=func, arg="start_date/end_date/ref_*_date")
    if int(ref_end_window) != ref_end_window or ref_end_window < 0:
        raise SpecError(f"{func}: ref_end_window must be a non-negative whole number of "
                        f"days, not {ref_end_window!r}")
    if ref_end_window and not ref_end_date:
        raise SpecError(f"{func}: ref_end_window needs ref_end_date")
    if span_period and not end_date:
        raise SpecError(f"{func}: span_period needs end_date")
    st = dataset[start_date]
    ref = dataset[ref_start_date]
    n = len(dataset)
    decided = np.zeros(n, dtype=bool)
    flag = np.zeros(n, dtype=bool)

    def apply(cond: Any, value: bool) -> None:
        nonlocal decided, flag
        cond = np.asarray(cond, dtype=bool)
        take = cond & ~decided
        flag[take] = value
        decided |= take

    apply(ref.isna().to_numpy(), False)                                     # 1
    if end_date:
        en = dataset[end_date]
        apply((en.notna() & (en < ref)).to_numpy(), False)                  # 2
    apply(st.isna().to_numpy(), True)                                       # 3
    pre = _condition_mask(dataset, filter_pre_timepoint, func=func,
                          arg="filter_pre_timepoint") if filter_pre_timepoint is not None \
        else np.zeros(n, dtype=bool)
    same = np.array((st == ref).to_numpy(), dtype=bool)
    apply(same & pre, False)                                                # 4
    apply(same, True)
    after = np.array((st > ref).to_numpy(), dtype=bool)
    if ref_end_date:
        rend = dataset[ref_end_date]
        window = pd.Timedelta(days=int(ref_end_window))
        if ignore_time_for_ref_end_date:
            within = (st.dt.normalize() <= rend.dt.normalize() + window)
        else:
            within = st <= rend + window
        after &= (rend.notna() & within).to_numpy()
    apply(after, True)                                                      # 5
    if span_period:
        en = dataset[end_date]
        apply(((st < ref) & (en.isna() | (en >= ref))).to_numpy(), True)   # 6
    out = dataset.copy(deep=False)
    out[new_var] = pd.Series(np.where(flag, "Y", None), index=dataset.index, dtype="str")
    return out
