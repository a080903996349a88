"""Per-key summaries of an expression over a second dataset (admiral ``derive_vars_merged_summary``).

``derive_var_merged_summary`` (adam/derive/merge.py) summarises one existing column of
``dataset_add``. Many subject-level summaries are of a value computed per record, e.g. the
cumulative dose = the sum over EX records of EXDOSE x the days of the record, where an open
record (no EXENDTC) ends on the subject's reference end date: admiral writes
``derive_vars_merged_summary(new_vars = exprs(CUMDOSE = sum(EXDOSE * EXDURD)))``, after
merging ADSL's dates onto EX. Here the per-record value is an expression of the project's
safe expression language (``cdisc.expr``), evaluated on the ``dataset_add`` records, which
may first receive columns of ``dataset`` by key (``dataset_vars``).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from cdisc.errors import SpecError
from cdisc.expr import parse

from .flags import _as_list, _condition_mask, _require_columns
from .merge import _by_pairs, _left_lookup

__all__ = ["derive_vars_merged_summary"]

_SUMMARIES = ("count", "min", "max", "sum", "mean")


def derive_vars_merged_summary(dataset: pd.DataFrame, *, dataset_add: pd.DataFrame,
                               by_vars: Any, new_vars: Mapping[str, Mapping[str, str]],
                               filter_add: Any = None,
                               dataset_vars: list[str] | None = None) -> pd.DataFrame:
    """Add per-key summaries of expressions evaluated on the ``dataset_add`` records.

    admiral: ``derive_vars_merged_summary()`` (``new_vars = exprs(NEW = sum(expr))``).

    Arguments:
        dataset_add: the records summarised (e.g. EX).
        by_vars: key columns (list, or ``{dataset_name: dataset_add_name}``).
        new_vars: ``{NEW: {summary: sum|mean|min|max|count, value: "<expression>"}}``;
            ``value`` is evaluated per ``dataset_add`` record (e.g.
            ``"EXDOSE * (days_between(EXSTDTC, coalesce(EXENDTC, RFENDTC)) + 1)"``).
        filter_add: condition selecting the ``dataset_add`` records.
        dataset_vars: columns of ``dataset`` copied onto the ``dataset_add`` records by key
            before the expressions are evaluated (admiral users merge them first); a key of
            ``dataset`` must then be unique.

    Algorithm:
        1. Keep the ``dataset_add`` records meeting ``filter_add``.
        2. Copy ``dataset_vars`` of ``dataset`` onto them by ``by_vars``.
        3. Per new variable, evaluate ``value`` on every record and summarise it per key:
           ``sum``/``mean``/``min``/``max`` over the non-missing values (missing when there
           are none), ``count`` the non-missing values (0 for a key without records).
        4. Left-join the summaries onto ``dataset``; every record of ``dataset`` is kept.

    A new variable that already exists in ``dataset`` is a SpecError.
    """
    func = "derive_vars_merged_summary"
    left_by, right_by = _by_pairs(by_vars, func=func)
    _require_columns(dataset, left_by, func=func, arg="by_vars")
    _require_columns(dataset_add, right_by, func=func, arg="by_vars", label="dataset_add")
    if not isinstance(new_vars, Mapping) or not new_vars:
        raise SpecError(f"{func}: new_vars must be {{NEW: {{summary: ..., value: ...}}}}")
    clash = [v for v in new_vars if v in dataset.columns]
    if clash:
        raise SpecError(f"{func}: variable(s) {', '.join(clash)} already exist in dataset")
    add = dataset_add[_condition_mask(dataset_add, filter_add, func=func, arg="filter_add")]
    add = add.reset_index(drop=True)
    extra = _as_list(dataset_vars)
    if extra:
        _require_columns(dataset, extra, func=func, arg="dataset_vars")
        clash = [v for v in extra if v in add.columns]
        if clash:
            raise SpecError(f"{func}: dataset_vars {', '.join(clash)} already exist in dataset_add")
        ref = dataset[left_by + extra]
        dup = ref.duplicated(left_by, keep=False)
        if dup.any():
            raise SpecError(f"{func}: dataset_vars need one dataset record per {'/'.join(left_by)}; "
                            f"{int(dup.sum())} records share a key")
        ref = ref.set_axis(right_by + extra, axis=1)
        joined, _ = _left_lookup(add, right_by, ref, func=func)
        add = pd.concat([add, joined], axis=1)
    values = {}
    for new, how in new_vars.items():
        if not isinstance(how, Mapping) or set(how) != {"summary", "value"}:
            raise SpecError(f"{func}: new_vars.{new} must be {{summary: ..., value: <expression>}}")
        if how["summary"] not in _SUMMARIES:
            raise SpecError(f"{func}: new_vars.{new}.summary must be one of {', '.join(_SUMMARIES)}, "
                            f"not {how['summary']!r}")
        val = parse(str(how["value"]), where=f"{func}: new_vars.{new}.value").evaluate(add)
        val = val if isinstance(val, pd.Series) else pd.Series(val, index=add.index)
        values[new] = pd.to_numeric(val, errors="coerce")
    frame = pd.concat([add[right_by]] + [values[n].rename(n) for n in new_vars], axis=1)
    grouped = frame.groupby(right_by, dropna=False, sort=False)
    parts = []
    for new, how in new_vars.items():
        s = how["summary"]
        parts.append(grouped[new].sum(min_count=1) if s == "sum" else grouped[new].agg(s))
    agg = pd.concat(parts, axis=1).reset_index()
    agg.columns = left_by + list(new_vars)
    joined, _ = _left_lookup(dataset, left_by, agg, func=func)
    out = dataset.copy(deep=False)
    for new, how in new_vars.items():
        col = joined[new]
        out[new] = col.fillna(0).astype(np.int64) if how["summary"] == "count" else col
    return out
