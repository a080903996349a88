"""Record numbering and derived records of a BDS dataset: sequence numbers (ASEQ),
last observation carried forward (DTYPE "LOCF") and summary records (DTYPE "AVERAGE").
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from cdisc.errors import SpecError

from .flags import (_as_list, _condition_mask, _duplicate_error, _group_ids,
                    _parse_order, _require_columns, _sort_codes)
from .joined import _obs_numbers

__all__ = ["derive_var_obs_number", "derive_locf_records", "derive_summary_records"]


def derive_var_obs_number(dataset: pd.DataFrame, *, new_var: str = "ASEQ",
                          by_vars: Any = None, order: Any = None,
                          check_unique: bool = True) -> pd.DataFrame:
    """Number the records 1, 2, ... within each by group in ``order`` (e.g. ``ASEQ`` per
    subject, so that ``SRCSEQ``-style pointers can refer to ADaM records).

    admiral: ``derive_var_obs_number()`` (``check_type = "error"``).

    Arguments:
        new_var: the number to create (``ASEQ``).
        by_vars: groups (``["STUDYID", "USUBJID"]``); None numbers the whole dataset.
        order: sort keys (``["PARAMCD", "ADT", "AVISITN"]``); missing values last, ties
            in row order. None: the row order.
        check_unique: with True (default) two records with the same by and order
            values are a DataError naming them (their number would depend on row
            order, so a re-run could renumber them).

    Algorithm:
        1. If ``check_unique``: by_vars + order variables must identify the records.
        2. Sort within each by group by ``order`` (missing last, then row order).
        3. ``new_var`` = 1-based position in the sorted group (float, SAS numeric).
        4. Every record is kept, in its original order.

    Rule: ADaMIG 1.3 ASEQ "sequence number" -- unique within USUBJID in a dataset.
    """
    func = "derive_var_obs_number"
    by = _as_list(by_vars)
    _require_columns(dataset, by, func=func, arg="by_vars")
    keys = [k.var for k in _parse_order(order, func=func)]
    _require_columns(dataset, keys, func=func, arg="order")
    if check_unique and keys:
        _duplicate_error(dataset, list(dict.fromkeys(by + keys)), func=func,
                         what="the dataset",
                         hint="add order variables that identify each record "
                              "(e.g. a --SEQ), or pass check_unique: false")
    nr = _obs_numbers(dataset.reset_index(drop=True), by, order, func=func)
    out = dataset.copy(deep=False)
    out[new_var] = nr.astype(float)
    return out


def derive_locf_records(dataset: pd.DataFrame, *, dataset_ref: pd.DataFrame,
                        by_vars: list[str], order: Any, analysis_var: str = "AVAL",
                        id_vars_ref: list[str] | None = None,
                        keep_vars: list[str] | None = None, imputation: str = "add",
                        dtype_var: str = "DTYPE", dtype_value: str = "LOCF") -> pd.DataFrame:
    """Add the expected records that are missing (or have no value) with the last
    observed value carried forward (``DTYPE = "LOCF"``).

    admiral: ``derive_locf_records()``.

    Arguments:
        dataset_ref: the expected records, e.g. every subject x ``PARAMCD`` x planned
            ``AVISIT``/``AVISITN``.
        by_vars: groups the value is carried within (``["STUDYID", "USUBJID",
            "PARAMCD"]``).
        order: sort keys defining "last" (``["AVISITN"]``); the columns must be in
            both frames.
        id_vars_ref: columns identifying an expected record (default: every column of
            ``dataset_ref``).
        analysis_var: the value carried (``AVAL``).
        keep_vars: further columns copied from the carried record (``["PARAMN",
            "PARAM"]``); ``dataset_ref`` columns are always taken from the reference.
        imputation: ``"add"`` (a record with a missing value stays, a LOCF record is
            added beside it) or ``"update"`` (the record with the missing value gets
            the carried value and ``DTYPE``).
        dtype_var / dtype_value: the derivation type set on imputed records.

    Algorithm:
        1. Expected records = distinct ``id_vars_ref`` of ``dataset_ref``. Those not in
           ``dataset`` (by ``id_vars_ref``), and those whose records all have a missing
           ``analysis_var``, need a value.
        2. Sort the observed records (non-missing ``analysis_var``) and the records
           needing a value together by ``by_vars`` + ``order``; an observed record
           comes before a needed one with equal keys.
        3. Each needed record takes ``analysis_var`` and ``keep_vars`` from the last
           observed record before it in its by group; one with no earlier observed
           record gets no record (nothing to carry).
        4. ``add``: the new records (with ``dtype_var``) are appended; ``update``: the
           records with a missing value are replaced by their imputed version (the new
           records for expected records absent from ``dataset`` are appended).
        5. Return ``dataset`` + the new records, index reset.

    Rule: ADaMIG 1.3 BDS derived rows -- an imputed record is a new row with ``DTYPE``
    (here LOCF); the original records are kept.
    """
    func = "derive_locf_records"
    if imputation not in ("add", "update"):
        raise SpecError(f"{func}: imputation must be 'add' or 'update', not {imputation!r}")
    by = _as_list(by_vars)
    keys = [k.var for k in _parse_order(order, func=func)]
    ids = _as_list(id_vars_ref) or list(dataset_ref.columns)
    _require_columns(dataset_ref, list(dict.fromkeys(by + keys + ids)), func=func,
                     arg="by_vars/order/id_vars_ref", label="dataset_ref")
    keep = _as_list(keep_vars)
    _require_columns(dataset, list(dict.fromkeys(by + keys + ids + [analysis_var] + keep)),
                     func=func, arg="by_vars/order/id_vars_ref/analysis_var/keep_vars")
    data = dataset.reset_index(drop=True)
    ref_cols = list(dict.fromkeys(ids + by + keys))
    ref = dataset_ref[ref_cols].drop_duplicates(subset=ids).reset_index(drop=True)
    aval = data[analysis_var]
    observed = aval.notna().to_numpy()
    if aval.dtype == object or pd.api.types.is_string_dtype(aval):
        observed &= (aval.astype(str).str.strip() != "").to_numpy()
    # expected records with an observed value need nothing
    seen = data.loc[observed, ids].drop_duplicates().assign(_seen_=True)
    ref = ref.merge(seen, how="left", on=ids, sort=False)
    need = ref[ref.pop("_seen_").isna().to_numpy()].reset_index(drop=True)
    stack = pd.concat([data.loc[observed, list(dict.fromkeys(by + keys))]
                       .assign(_src_=np.flatnonzero(observed), _need_=-1),
                       need[list(dict.fromkeys(by + keys))]
                       .assign(_src_=-1, _need_=np.arange(len(need)))],
                      ignore_index=True, sort=False)
    is_need = (stack["_need_"] >= 0).to_numpy()
    groups = _group_ids(stack, by)
    sort_keys = [is_need.astype(np.int64)] + [
        _sort_codes(stack[k.var], k) for k in reversed(_parse_order(order, func=func))] \
        + [groups]
    idx = np.lexsort(sort_keys)
    src = pd.Series(np.where(is_need, np.nan, stack["_src_"].to_numpy(float))[idx])
    carried = src.groupby(groups[idx]).ffill().to_numpy()
    need_rows = stack["_need_"].to_numpy()[idx]
    take = (need_rows >= 0) & ~np.isnan(carried)
    need_pos, src_pos = need_rows[take], carried[take].astype(np.int64)
    new = need.iloc[need_pos].reset_index(drop=True)
    carried_cols = [c for c in [analysis_var] + keep if c not in new.columns]
    for c in carried_cols:
        new[c] = data[c].to_numpy()[src_pos]
    new[dtype_var] = dtype_value
    if imputation == "update":
        # replace the records with a missing value by their imputed version
        hit = data[~observed][ids].merge(new[ids].assign(_imp_=True), how="left", on=ids,
                                         sort=False)["_imp_"].notna().to_numpy()
        drop = np.flatnonzero(~observed)[hit]
        base = data.drop(index=drop)
        # keep the other columns of the replaced records
        old = data.iloc[drop].drop(columns=[c for c in carried_cols + [dtype_var]
                                             if c in data.columns])
        upd = old.merge(new[ids + carried_cols + [dtype_var]], how="left", on=ids,
                        sort=False)
        rest = new.merge(old[ids].assign(_old_=True), how="left", on=ids, sort=False)
        rest = rest[rest.pop("_old_").isna().to_numpy()]
        return pd.concat([base, upd, rest], ignore_index=True, sort=False)
    return pd.concat([data, new], ignore_index=True, sort=False)


_SUMMARY_FUNS = ("mean", "median", "min", "max", "sum", "count", "sd", "first", "last")


def derive_summary_records(dataset: pd.DataFrame, *, by_vars: list[str],
                           summaries: Mapping[str, Any],
                           set_values_to: Mapping[str, Any] | None = None,
                           dataset_add: pd.DataFrame | None = None, filter_add: Any = None,
                           min_records: int = 1) -> pd.DataFrame:
    """Add one summary record per by group (e.g. the mean of triplicate ECG readings per
    visit with ``DTYPE = "AVERAGE"``).

    admiral: ``derive_summary_records()``; admiral writes the summaries as R
    expressions in ``set_values_to`` (``AVAL = mean(AVAL, na.rm = TRUE)``); here they are
    data: ``summaries: {AVAL: mean, ADT: {fun: max, var: ADT}}``.

    Arguments:
        by_vars: groups, e.g. ``["STUDYID", "USUBJID", "PARAMCD", "AVISITN", "AVISIT"]``;
            they are copied to the new records.
        summaries: ``{new_var: fun}`` (the same variable summarised) or ``{new_var:
            {fun: ..., var: ...}}``; ``fun`` one of mean, median, min, max, sum,
            count, sd (n-1), first, last (non-missing, in row order). Missing values are ignored
            (a group with none gives missing; count gives 0).
        set_values_to: constants of the new records (``{DTYPE: AVERAGE}``).
        dataset_add: the source records (default ``dataset``).
        filter_add: condition restricting the source records.
        min_records: a group with fewer source records gets no summary record.

    Algorithm:
        1. Source = ``dataset_add`` (or ``dataset``) records meeting ``filter_add``.
        2. Group by ``by_vars`` (missing key values form their own group), groups in
           order of first appearance; drop groups with fewer than ``min_records``.
        3. One record per group: ``by_vars``, each summary, ``set_values_to``.
        4. Append to ``dataset`` (index reset).

    Rule: ADaMIG 1.3 BDS derived rows (DTYPE, e.g. AVERAGE) -- the source records stay.
    """
    func = "derive_summary_records"
    by = _as_list(by_vars)
    if not by:
        raise SpecError(f"{func}: by_vars must name at least one variable")
    if not summaries:
        raise SpecError(f"{func}: summaries must name at least one variable")
    if int(min_records) != min_records or min_records < 1:
        raise SpecError(f"{func}: min_records must be a positive integer")
    source = dataset if dataset_add is None else dataset_add
    _require_columns(source, by, func=func, arg="by_vars",
                     label="dataset_add" if dataset_add is not None else "dataset")
    spec: dict[str, tuple[str, str]] = {}
    for new, s in summaries.items():
        fun, var = (s, new) if isinstance(s, str) else (s.get("fun"), s.get("var", new)) \
            if isinstance(s, Mapping) else (None, None)
        if fun not in _SUMMARY_FUNS:
            raise SpecError(f"{func}: summaries.{new}: fun must be one of "
                            f"{', '.join(_SUMMARY_FUNS)}, not {fun!r}")
        spec[new] = (fun, var)
    _require_columns(source, sorted({v for _, v in spec.values()}), func=func,
                     arg="summaries")
    src = source[_condition_mask(source, filter_add, func=func, arg="filter_add")]
    grouped = src.groupby(by, dropna=False, sort=False)
    size = grouped.size()
    out = size.reset_index()[by]
    for new, (fun, var) in spec.items():
        col = grouped[var]
        if fun in ("mean", "median", "sum", "sd"):
            num = pd.to_numeric(src[var], errors="coerce")
            col = num.groupby([src[b] for b in by], dropna=False, sort=False)
            res = {"mean": col.mean, "median": col.median, "sd": lambda: col.std(ddof=1),
                   "sum": lambda: col.sum(min_count=1)}[fun]()
        elif fun == "count":
            res = col.count()
        elif fun == "first":
            res = col.first()
        elif fun == "last":
            res = col.last()
        else:
            res = col.min() if fun == "min" else col.max()
        out[new] = res.to_numpy()
    out = out[(size >= min_records).to_numpy()]
    for k, v in (set_values_to or {}).items():
        if isinstance(v, (list, dict)):
            raise SpecError(f"{func}: set_values_to.{k} must be a constant")
        out[k] = v
    return pd.concat([dataset, out], ignore_index=True, sort=False)
