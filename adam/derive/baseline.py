"""Baseline flag, baseline value and change from baseline for BDS datasets."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cdisc.errors import SpecError

from .flags import (_condition_mask, _require_columns, _require_dates,
                    derive_var_extreme_flag)
from .merge import derive_vars_merged

__all__ = ["derive_var_ablfl", "derive_var_base", "derive_var_chg", "derive_var_pchg",
           "derive_var_shift"]


def derive_var_ablfl(dataset: pd.DataFrame, *, by_vars: list[str], order: Any = None,
                     new_var: str = "ABLFL", source_var: str = "AVAL", date: str = "ADT",
                     reference_date: str = "TRTSDT", filter: Any = None,
                     on_reference_date: bool = True, true_value: Any = "Y") -> pd.DataFrame:
    """Flag the baseline record: the last non-missing value on/before first dose.

    Arguments:
        by_vars: one baseline per group, e.g. ``["USUBJID", "PARAMCD"]``.
        order: sort keys choosing the last candidate (default ``[date]``); add a time
            or sequence variable (e.g. ``["ADT", "ATM", "ASEQ"]``) to break same-day ties.
        new_var: flag to create (``ABLFL``: ``"Y"`` or missing).
        source_var: the value that must be non-missing (``AVAL``, or ``AVALC``).
        date / reference_date: the record's date and the first-dose date.
        filter: further restriction of the candidates (e.g. scheduled visits only).
        on_reference_date: True (default) counts an assessment on the day of first
            dose as pre-dose (dates without times: per protocol, day-1 assessments
            are done before the infusion); False requires ``date < reference_date``.

    Algorithm:
        1. Candidates: ``source_var`` not missing (nor blank), ``date`` and
           ``reference_date`` not missing, ``date <= reference_date`` (``<`` with
           ``on_reference_date=False``) and ``filter`` met.
        2. Within each by group, sort the candidates by ``order`` and flag the last
           one (same-day ties: the later row in the dataset wins -- add a tie-breaker
           to ``order``).
        3. Records that are not the baseline get missing.

    Rule: ADaMIG 1.3 BDS variables (ABLFL = "Y"/null, one baseline record per subject,
    parameter and
    BASETYPE); baseline defined by the SAP as the last non-missing value before
    first dose.
    """
    func = "derive_var_ablfl"
    _require_columns(dataset, [source_var], func=func, arg="source_var")
    _require_dates(dataset, [date, reference_date], func=func, arg="date/reference_date")
    values = dataset[source_var]
    cand = values.notna().to_numpy()
    if not pd.api.types.is_numeric_dtype(values):
        cand = cand & (values.astype(object).where(values.notna(), "").astype(str)
                 .str.strip() != "").to_numpy()
    adt, ref = dataset[date], dataset[reference_date]
    before = (adt <= ref) if on_reference_date else (adt < ref)
    cand = cand & (adt.notna() & ref.notna() & before).to_numpy()
    cand = cand & _condition_mask(dataset, filter, func=func)
    return derive_var_extreme_flag(dataset, by_vars=by_vars, order=order or [date],
                                   new_var=new_var, mode="last", filter=cand,
                                   true_value=true_value, false_value=None)


def derive_var_base(dataset: pd.DataFrame, *, by_vars: list[str], source_var: str = "AVAL",
                    new_var: str = "BASE", filter: Any = 'ABLFL == "Y"') -> pd.DataFrame:
    """Copy the baseline record's value to every record of its group (``BASE``, ``BASEC``).

    Arguments:
        by_vars: groups, e.g. ``["USUBJID", "PARAMCD", "BASETYPE"]``.
        source_var: the value copied (``AVAL`` -> ``BASE``, ``AVALC`` -> ``BASEC``,
            ``ATOXGR`` -> ``BTOXGR``).
        new_var: variable to create (replaced if present).
        filter: condition identifying the baseline record (``ABLFL == "Y"``).

    Algorithm:
        1. Select the records meeting ``filter``.
        2. More than one per by group is a DataError naming the groups.
        3. Left-join their ``source_var`` onto all records of the group as ``new_var``;
           groups without a baseline record get missing.

    Rule: ADaMIG 1.3 BDS variables: BASE is the AVAL of the record flagged ABLFL="Y" within
    the subject, parameter (and BASETYPE), and is populated on every record.
    """
    func = "derive_var_base"
    _require_columns(dataset, [source_var], func=func, arg="source_var")
    mask = _condition_mask(dataset, filter, func=func)
    base = dataset if new_var not in dataset.columns else dataset.drop(columns=[new_var])
    return derive_vars_merged(base, dataset_add=base[mask], by_vars=by_vars,
                              new_vars={new_var: source_var}, check_unique=True)


def _change_inputs(dataset: pd.DataFrame, aval: str, base: str, filter: Any,
                   func: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _require_columns(dataset, [aval, base], func=func, arg="aval/base")
    for col in (aval, base):
        if not pd.api.types.is_numeric_dtype(dataset[col]):
            raise SpecError(f"{func}: column {col} must be numeric "
                            f"(dtype {dataset[col].dtype})")
    keep = _condition_mask(dataset, filter, func=func)
    return (dataset[aval].to_numpy(dtype=float), dataset[base].to_numpy(dtype=float), keep)


def derive_var_chg(dataset: pd.DataFrame, *, new_var: str = "CHG", aval: str = "AVAL",
                   base: str = "BASE", filter: Any = None) -> pd.DataFrame:
    """Change from baseline ``CHG = AVAL - BASE``.

    Arguments:
        new_var / aval / base: the variables (defaults ``CHG``, ``AVAL``, ``BASE``).
        filter: records to derive it on (e.g. post-baseline only, per the spec);
            other records get missing. None: every record (the baseline record gets 0).

    Algorithm:
        1. ``CHG = AVAL - BASE`` where ``filter`` is met.
        2. Missing when either operand is missing or ``filter`` is not met.

    Rule: ADaMIG 1.3 BDS variables (CHG = AVAL - BASE).
    """
    a, b, keep = _change_inputs(dataset, aval, base, filter, "derive_var_chg")
    out = dataset.copy(deep=False)
    out[new_var] = pd.Series(np.where(keep, a - b, np.nan), index=dataset.index)
    return out


def derive_var_pchg(dataset: pd.DataFrame, *, new_var: str = "PCHG", aval: str = "AVAL",
                    base: str = "BASE", filter: Any = None) -> pd.DataFrame:
    """Percent change from baseline ``PCHG = (AVAL - BASE) / |BASE| * 100``.

    Arguments: as :func:`derive_var_chg`.

    Algorithm:
        1. ``PCHG = 100 * (AVAL - BASE) / abs(BASE)`` where ``filter`` is met.
        2. ``BASE == 0`` gives missing (a percentage of zero is undefined), as do a
           missing operand and records not meeting ``filter``.

    Rule: ADaMIG 1.3 BDS variables (PCHG = (AVAL - BASE) / BASE * 100); dividing by |BASE|
    (as admiral does) keeps the sign meaning "increase" for negative baselines.
    """
    a, b, keep = _change_inputs(dataset, aval, base, filter, "derive_var_pchg")
    ok = keep & (b != 0) & ~np.isnan(b) & ~np.isnan(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        pchg = np.where(ok, (a - b) / np.abs(b) * 100.0, np.nan)
    out = dataset.copy(deep=False)
    out[new_var] = pd.Series(pchg, index=dataset.index)
    return out



def derive_var_shift(dataset: pd.DataFrame, *, new_var: str, from_var: str, to_var: str,
                     missing_value: str = "NULL", sep_val: str = " to ") -> pd.DataFrame:
    """Shift text from a baseline category to the record's category, e.g.
    ``SHIFT1 = "NORMAL to HIGH"`` from ``BNRIND`` and ``ANRIND``.

    admiral: ``derive_var_shift()`` (same defaults: ``missing_value = "NULL"``,
    ``sep_val = " to "``).

    Arguments:
        new_var: the text to create; from_var / to_var: the two categories (text).
        missing_value: written for a missing (or blank) side, e.g. ``"NULL"`` or
            ``"MISSING"`` -- so "NORMAL to NULL" tells a missing post-baseline category
            apart from a missing baseline.
        sep_val: the separator between the two.

    Algorithm:
        1. Each side: its text, or ``missing_value`` where missing or blank.
        2. ``new_var`` = from + ``sep_val`` + to, for every record.

    Rule: ADaMIG 1.3 BDS SHIFTy ("shift from baseline", e.g. BNRIND to ANRIND).
    """
    func = "derive_var_shift"
    _require_columns(dataset, [from_var, to_var], func=func, arg="from_var/to_var")
    if not isinstance(missing_value, str) or not isinstance(sep_val, str):
        raise SpecError(f"{func}: missing_value and sep_val must be text")

    def side(col: str) -> pd.Series:
        s = dataset[col].astype(object)
        text = s.where(s.notna(), "").astype(str).str.strip()
        return text.where(text != "", missing_value)

    out = dataset.copy(deep=False)
    out[new_var] = pd.Series((side(from_var) + sep_val + side(to_var)).to_numpy(),
                             index=dataset.index, dtype="str")
    return out
