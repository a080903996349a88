"""Derivations that relate each record to several records of a second dataset (admiral's
"joined" family): the last dose before an adverse event, a response confirmed by a later
assessment.

Both functions join every record of ``dataset`` with the ``dataset_add`` records of the same
by group (a many-to-many join within the group, vectorised with ``pandas.merge``) and
evaluate conditions on the joined pairs in the project's expression language.

Referring to the two sides in a condition (as admiral does): a column of ``dataset_add``
that also exists in ``dataset`` (other than a by variable) is renamed with the suffix
``.join`` -- ``ADT.join``, ``AVALC.join`` -- so ``ADT`` is the record's own value and
``ADT.join`` the joined record's. A column only in ``dataset_add`` keeps its name
(``EXSTDTM``). The expression language reads a dotted name as one column name, so
``ADT.join`` needs no special syntax.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np
import pandas as pd

from cdisc.errors import DataError, Problem, SpecError

from .flags import (_as_list, _condition_mask, _extreme_positions, _group_ids,
                    _key_text, _parse_order, _require_columns, _sort_codes)

__all__ = ["derive_vars_joined", "filter_joined"]

_JOIN_SUFFIX = ".join"
_ROW = "_joined_row_"
_ROW_ADD = "_joined_row_add_"
_JOIN_TYPES = ("all", "before", "after")


def _new_var_mapping(new_vars: Any, *, func: str) -> dict[str, str]:
    if new_vars is None:
        return {}
    if isinstance(new_vars, Mapping):
        return {str(k): str(v) for k, v in new_vars.items()}
    return {c: c for c in _as_list(new_vars)}


def _strip_join(name: str) -> str:
    return name[: -len(_JOIN_SUFFIX)] if name.endswith(_JOIN_SUFFIX) else name


_DESC = re.compile(r"^\s*desc\(\s*([^()\s]+)\s*\)\s*$")


def _order_entries(order: Any) -> list[tuple[Any, str]]:
    """(entry, column name) of each ``order`` entry, dotted names allowed."""
    out = []
    for entry in _as_list(order):
        if isinstance(entry, str):
            m = _DESC.match(entry)
            out.append((entry, m.group(1) if m else entry.strip()))
        elif isinstance(entry, Mapping) and "var" in entry:
            out.append((entry, str(entry["var"])))
        else:
            out.append((entry, ""))
    return out


def _aliased_order(order: Any, frame: pd.DataFrame) -> tuple[list[Any], pd.DataFrame]:
    """``order`` with ``X.join`` names replaced by plain aliases added to ``frame`` (the
    order syntax takes plain column names only)."""
    new_order, extra = [], {}
    for i, (entry, var) in enumerate(_order_entries(order)):
        if var.endswith(_JOIN_SUFFIX) and var in frame.columns:
            alias = f"_order_{i}_"
            extra[alias] = frame[var]
            if isinstance(entry, str):
                entry = entry.replace(var, alias)
            else:
                entry = {**entry, "var": alias}
        new_order.append(entry)
    return new_order, frame.assign(**extra) if extra else frame


def _plain_order(order: Any, *, func: str) -> list[Any]:
    """``order`` for numbering the records of one dataset: ``X.join`` means ``X``."""
    out = []
    for entry, var in _order_entries(order):
        if var.endswith(_JOIN_SUFFIX):
            base = _strip_join(var)
            entry = entry.replace(var, base) if isinstance(entry, str) else {**entry, "var": base}
        out.append(entry)
    return out


def _referenced_add_vars(dataset: pd.DataFrame, dataset_add: pd.DataFrame,
                         conditions: list[Any], order: Any, *, func: str) -> list[str]:
    """``dataset_add`` columns the conditions and ``order`` refer to (``X.join``, or a
    name only ``dataset_add`` has), so they need not be repeated in ``join_vars``."""
    from cdisc.expr import parse

    names: list[str] = []
    for cond in conditions:
        if isinstance(cond, str):
            names += sorted(parse(cond, where=func).names)
    names += [var for _, var in _order_entries(order)]
    out = []
    for n in names:
        base = _strip_join(n)
        if base in dataset_add.columns and (n.endswith(_JOIN_SUFFIX)
                                            or base not in dataset.columns):
            out.append(base)
    return out


def _join_pairs(dataset: pd.DataFrame, add: pd.DataFrame, by: list[str],
                add_vars: list[str], *, func: str) -> pd.DataFrame:
    """Every (record, add record) pair of the same by group.

    The add columns that clash with a column of ``dataset`` get the ``.join`` suffix;
    ``_ROW`` is the record's position in ``dataset``, ``_ROW_ADD`` the add record's
    position in ``add``.
    """
    left = dataset.reset_index(drop=True).assign(**{_ROW: np.arange(len(dataset))})
    right = add[by + [c for c in add_vars if c not in by]].reset_index(drop=True)
    rename = {c: c + _JOIN_SUFFIX for c in right.columns
              if c not in by and c in dataset.columns}
    right = right.rename(columns=rename).assign(**{_ROW_ADD: np.arange(len(add))})
    try:
        return left.merge(right, how="inner", on=by, sort=False)
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{func}: cannot join on {', '.join(by)}: {exc}",
                        hint="the by variables must have the same type in both datasets"
                        ) from None


def _obs_numbers(frame: pd.DataFrame, by: list[str], order: Any, *, func: str) -> np.ndarray:
    """1-based position of each record within its by group after sorting by ``order``
    (missing values last, ties in row order) -- admiral's ``tmp_obs_nr_var``."""
    keys = _parse_order(order, func=func)
    _require_columns(frame, [k.var for k in keys], func=func, arg="order")
    groups = _group_ids(frame, by)
    sort_keys = [np.arange(len(frame))] + [_sort_codes(frame[k.var], k)
                                           for k in reversed(keys)] + [groups]
    idx = np.lexsort(sort_keys)
    g = groups[idx]
    start = np.r_[True, g[1:] != g[:-1]]
    run_start = np.maximum.accumulate(np.where(start, np.arange(len(g)), 0))
    nr = np.empty(len(frame), dtype=np.int64)
    nr[idx] = np.arange(len(g)) - run_start + 1
    return nr


def _restrict_pairs(pairs: pd.DataFrame, join_type: str, first_cond_upper: Any,
                    first_cond_lower: Any, *, func: str) -> pd.DataFrame:
    """Keep the joined records after/before the record (``join_type``), then cut them at
    the first record meeting ``first_cond_upper`` / from the last meeting
    ``first_cond_lower`` (records without such a joined record lose all pairs)."""
    own = pairs["_obs_nr_"].to_numpy()
    nr_join = pairs["_obs_nr_" + _JOIN_SUFFIX].to_numpy()
    if join_type == "after":
        pairs = pairs[nr_join > own]
    elif join_type == "before":
        pairs = pairs[nr_join < own]
    pairs = pairs.sort_values([_ROW, "_obs_nr_" + _JOIN_SUFFIX], kind="stable")
    if first_cond_upper is not None:
        met = _condition_mask(pairs, first_cond_upper, func=func, arg="first_cond_upper")
        nr_join = pairs["_obs_nr_" + _JOIN_SUFFIX].to_numpy()
        never = np.iinfo(np.int64).max
        first = (pd.Series(np.where(met, nr_join, never), index=pairs.index)
                 .groupby(pairs[_ROW].to_numpy()).transform("min").to_numpy())
        pairs = pairs[(first != never) & (nr_join <= first)]
    if first_cond_lower is not None:
        met = _condition_mask(pairs, first_cond_lower, func=func, arg="first_cond_lower")
        nr_join = pairs["_obs_nr_" + _JOIN_SUFFIX].to_numpy()
        never = np.iinfo(np.int64).min
        last = (pd.Series(np.where(met, nr_join, never), index=pairs.index)
                .groupby(pairs[_ROW].to_numpy()).transform("max").to_numpy())
        pairs = pairs[(last != never) & (nr_join >= last)]
    return pairs


def derive_vars_joined(dataset: pd.DataFrame, *, dataset_add: pd.DataFrame, by_vars: Any,
                       new_vars: list[str] | Mapping[str, str],
                       filter_join: Any = None, order: Any = None, mode: str | None = None,
                       join_vars: list[str] | None = None, filter_add: Any = None,
                       exist_flag: str | None = None, true_value: Any = "Y",
                       false_value: Any = None,
                       missing_values: Mapping[str, Any] | None = None,
                       join_type: str = "all", first_cond_upper: Any = None,
                       first_cond_lower: Any = None) -> pd.DataFrame:
    """Add variables from the ``dataset_add`` record related to each record by a condition
    on both (e.g. the last dose on or before an AE: LDOSEDTM, DOSEON, DOSEU).

    admiral: ``derive_vars_joined()``.

    Arguments:
        dataset_add: the records to choose from (e.g. EX with ``EXSTDTM``).
        by_vars: key columns present in both frames (``["STUDYID", "USUBJID"]``).
        new_vars: columns of ``dataset_add`` to add: a list (same names) or a mapping
            ``{new: source}`` (``{"LDOSEDTM": "EXSTDTM", "DOSEON": "EXDOSE",
            "DOSEU": "EXDOSU"}``). A source that also exists in ``dataset`` is named
            with the ``.join`` suffix (``{"LDOSE": "AVAL.join"}``).
        join_vars: further ``dataset_add`` columns to carry into the joined pairs
            (columns that ``filter_join``/``order`` name are added automatically).
        filter_join: condition on the joined pair, e.g. ``EXSTDTM <= ASTDTM``
            (``dataset`` columns by their names, clashing ``dataset_add`` columns as
            ``NAME.join``).
        order, mode: which pair is kept when several meet ``filter_join``
            (``order: [EXSTDTM, EXSEQ], mode: last`` = the last dose); without them
            more than one matching pair for a record is a DataError.
        filter_add: condition restricting ``dataset_add`` first (e.g. ``EXDOSE > 0``).
        exist_flag / true_value / false_value: optional flag telling whether a
            matching record was found.
        missing_values: ``{new_var: value}`` for records without a match.
        join_type: ``"all"`` (default) or, when ``dataset_add`` is ``dataset`` itself
            (``dataset_add: SELF`` in a spec), ``"after"``/``"before"``: only the records
            after/before the record in ``order`` are joined (e.g. the next assessment).
        first_cond_upper / first_cond_lower: as in :func:`filter_joined` (joined
            records up to the first / from the last meeting the condition); need
            ``join_type`` after/before.

    Algorithm:
        1. Keep the ``dataset_add`` records meeting ``filter_add``; keep ``by_vars``,
           ``join_vars`` and the ``new_vars`` sources; rename the columns that also exist
           in ``dataset`` to ``NAME.join``.
        2. Join every record of ``dataset`` with every ``dataset_add`` record of its by
           group.
        3. Keep the pairs meeting ``filter_join`` (missing results count as not met).
        4. Per record of ``dataset``: the first/last pair by ``order`` (missing values
           last, ties in row order); without ``order``/``mode`` a second pair is a
           DataError naming the record.
        5. Add the ``new_vars`` of the selected pair to the record; records without a
           pair get missing values (or ``missing_values``) and ``false_value`` in
           ``exist_flag``. Every record of ``dataset`` is kept, in its order.

    Rule: ADaMIG 1.3 OCCDS/BDS variables from another dataset, e.g. the dose preceding
    an event (ADAE ``LDOSEDTM``), keep their traceability through the source variables.
    """
    func = "derive_vars_joined"
    by = _as_list(by_vars)
    if not by:
        raise SpecError(f"{func}: by_vars must name at least one key variable")
    mapping = _new_var_mapping(new_vars, func=func)
    if not mapping:
        raise SpecError(f"{func}: new_vars must name at least one variable")
    if (order is None) != (mode is None):
        raise SpecError(f"{func}: order and mode go together (both or neither)")
    _require_columns(dataset, by, func=func, arg="by_vars")
    _require_columns(dataset_add, by, func=func, arg="by_vars", label="dataset_add")
    clash = [c for c in mapping if c in dataset.columns]
    if clash:
        raise SpecError(f"{func}: variable(s) {', '.join(clash)} already exist in dataset",
                        hint="drop them first or give new names in new_vars {new: source}")
    referenced = list(mapping.values()) + _as_list(join_vars) + _referenced_add_vars(
        dataset, dataset_add, [filter_join, first_cond_upper, first_cond_lower], order,
        func=func)
    add_vars = list(dict.fromkeys(_strip_join(c) for c in referenced))
    _require_columns(dataset_add, add_vars, func=func, arg="new_vars/join_vars",
                     label="dataset_add")
    if join_type not in _JOIN_TYPES:
        raise SpecError(f"{func}: join_type must be one of {', '.join(_JOIN_TYPES)}, "
                        f"not {join_type!r}")
    relative = join_type != "all" or first_cond_upper is not None \
        or first_cond_lower is not None
    if relative and (dataset_add is not dataset or order is None):
        raise SpecError(f"{func}: join_type before/after and first_cond_upper/lower need "
                        "dataset_add to be the dataset itself (SELF) and order")
    left = dataset
    add = dataset_add
    if relative:
        nr = _obs_numbers(dataset.reset_index(drop=True), by, _plain_order(order, func=func),
                          func=func)
        left = dataset.assign(_obs_nr_=nr)
        add = left
        add_vars = add_vars + ["_obs_nr_"]
    add = add[_condition_mask(add, filter_add, func=func, arg="filter_add")]
    pairs = _join_pairs(left, add, by, add_vars, func=func)
    if relative:
        pairs = _restrict_pairs(pairs, join_type, first_cond_upper, first_cond_lower,
                                func=func)
    # a source named without the suffix but renamed by the clash rule is an error
    for new, src in mapping.items():
        if src in dataset.columns and src not in by:
            raise SpecError(f"{func}: new_vars.{new}: {src!r} exists in both datasets; "
                            f"write {src + _JOIN_SUFFIX!r} for the dataset_add value")
    pairs = pairs[_condition_mask(pairs, filter_join, func=func, arg="filter_join")]
    if mode is None:
        dup = pairs[_ROW].duplicated(keep=False).to_numpy()
        if dup.any():
            rows = np.unique(pairs[_ROW].to_numpy()[dup])
            raise DataError(Problem(
                f"{func}: {len(rows)} record(s) of dataset match more than one dataset_add "
                f"record: {_key_text(dataset.reset_index(drop=True), by, rows)} "
                f"(record numbers {', '.join(str(r + 1) for r in rows[:10])})",
                hint="give order and mode to choose one (e.g. order [EXSTDTM], mode last)"))
        chosen = pairs
    else:
        order_alias, keyed = _aliased_order(order, pairs)
        pos = _extreme_positions(keyed, by_vars=[_ROW], order=order_alias, mode=mode,
                                 func=func)
        chosen = pairs.iloc[pos]
    rows = chosen[_ROW].to_numpy()
    out = dataset.copy(deep=False)
    hit = np.zeros(len(dataset), dtype=bool)
    hit[rows] = True
    for new, src in mapping.items():
        col = pd.Series(chosen[src].to_numpy(), index=rows)
        values = col.reindex(np.arange(len(dataset)))
        if values.dtype != chosen[src].dtype and len(chosen):
            try:
                values = values.astype(chosen[src].dtype)
            except (TypeError, ValueError):
                pass
        out[new] = values.set_axis(dataset.index)
        if missing_values and new in missing_values:
            out.loc[~hit, new] = missing_values[new]
    unknown = [c for c in (missing_values or {}) if c not in mapping]
    if unknown:
        raise SpecError(f"{func}: missing_values names {', '.join(unknown)}, which are not "
                        "among new_vars")
    if exist_flag:
        flag = np.where(hit, true_value, false_value).astype(object)
        out[exist_flag] = pd.Series(flag, index=dataset.index,
                                    dtype="str" if isinstance(true_value, str) else None)
    return out


def filter_joined(dataset: pd.DataFrame, *, by_vars: Any, order: Any,
                  join_vars: list[str], join_type: str = "after",
                  dataset_add: pd.DataFrame | None = None, filter: Any = None,
                  first_cond_upper: Any = None, first_cond_lower: Any = None,
                  filter_join: Any = None, join_mode: str = "all",
                  filter_add: Any = None) -> pd.DataFrame:
    """Keep the records confirmed by other records of the same by group (e.g. a CR
    confirmed by a later CR at least 28 days after it, with only CR/NE in between).

    admiral: ``filter_joined()``. admiral writes the condition on the joined group with
    summary functions (``all(AVALC.join %in% c("CR", "NE"))``); here the condition on
    the joined records is ``filter_join`` with ``join_mode`` ``"all"`` (every joined
    record meets it) or ``"any"`` (at least one does).

    Arguments:
        by_vars: groups, e.g. ``["USUBJID"]`` (add ``PARAMCD`` as needed).
        order: sort keys defining "before"/"after" (``[ADT]``), missing values last.
        join_vars: ``dataset_add`` columns used by the conditions; in the conditions a
            column that exists in both frames is ``NAME.join`` for the joined record.
        join_type: ``"after"`` (joined records later in ``order``), ``"before"`` or
            ``"all"`` (all others and the record itself). ``"after"``/``"before"`` need
            ``dataset_add`` to be ``dataset`` (the default).
        filter: condition on the record itself (``AVALC == 'CR'``).
        first_cond_upper: the joined records are cut after the first one (in order)
            meeting this pair condition, e.g.
            ``AVALC.join == 'CR' and days_between(ADT, ADT.join) >= 28``; a record with
            no such joined record is dropped.
        first_cond_lower: likewise, the joined records start at the last one before
            the record meeting it (``join_type = "before"`` windows).
        filter_join: condition on each remaining pair, e.g. ``AVALC.join in ('CR','NE')``.
        join_mode: ``"all"`` or ``"any"`` for ``filter_join``.
        filter_add: condition restricting ``dataset_add``.

    Algorithm:
        1. Number the records within each by group by ``order`` (1, 2, ...).
        2. Join each record meeting ``filter`` with the ``dataset_add`` records (after
           ``filter_add``) of its group; keep those after (``"after"``), before
           (``"before"``) it, or all.
        3. ``first_cond_upper``: per record, find the first joined record (by number)
           meeting it; keep the joined records up to and including it; records without
           one are dropped. ``first_cond_lower``: the last joined record meeting it and
           the joined records from it on.
        4. Keep the record if it has at least one joined record left and
           ``filter_join`` holds for all (``join_mode = "all"``) / any of them.
        5. Return the kept records of ``dataset``, in their original order and index.

    Rule: RECIST 1.1 / IWG response confirmation (a response is confirmed by a later
    assessment at least N days after it); the window and intervening values are SAP
    choices, stated as data.
    """
    func = "filter_joined"
    by = _as_list(by_vars)
    if join_type not in _JOIN_TYPES:
        raise SpecError(f"{func}: join_type must be one of {', '.join(_JOIN_TYPES)}, "
                        f"not {join_type!r}")
    if join_mode not in ("all", "any"):
        raise SpecError(f"{func}: join_mode must be 'all' or 'any', not {join_mode!r}")
    if order is None or not _as_list(order):
        raise SpecError(f"{func}: order is required (it defines before/after)")
    same = dataset_add is None or dataset_add is dataset
    if join_type != "all" and not same:
        raise SpecError(f"{func}: join_type {join_type!r} needs dataset_add to be the "
                        "dataset itself (leave dataset_add out)")
    add_src = dataset if dataset_add is None else dataset_add
    _require_columns(dataset, by, func=func, arg="by_vars")
    _require_columns(add_src, by + [j[: -len(_JOIN_SUFFIX)] if j.endswith(_JOIN_SUFFIX)
                                    else j for j in _as_list(join_vars)],
                     func=func, arg="by_vars/join_vars", label="dataset_add")
    base = dataset.reset_index(drop=True)
    nr = _obs_numbers(base, by, order, func=func)
    add = add_src.reset_index(drop=True)
    add_nr = nr if same else _obs_numbers(add, by, order, func=func)
    add = add.assign(_obs_nr_=add_nr)
    keep_add = _condition_mask(add, filter_add, func=func, arg="filter_add")
    add = add[keep_add]
    join_vars = [_strip_join(j) for j in _as_list(join_vars)] + _referenced_add_vars(
        dataset, add_src, [first_cond_upper, first_cond_lower, filter_join], None, func=func)
    left = base.assign(_obs_nr_=nr)
    cand = _condition_mask(base, filter, func=func)
    pairs = _join_pairs(left[cand], add, by, list(dict.fromkeys(join_vars + ["_obs_nr_"])),
                        func=func)
    # _ROW numbers the candidate records; map back to positions in dataset
    cand_pos = np.flatnonzero(cand)
    pairs[_ROW] = cand_pos[pairs[_ROW].to_numpy()]
    pairs = _restrict_pairs(pairs, join_type, first_cond_upper, first_cond_lower, func=func)
    ok = _condition_mask(pairs, filter_join, func=func, arg="filter_join")
    per_row = pd.Series(ok).groupby(pairs[_ROW].to_numpy())
    verdict = per_row.all() if join_mode == "all" else per_row.any()
    keep = np.zeros(len(dataset), dtype=bool)
    keep[verdict.index[verdict.to_numpy()].to_numpy(dtype=np.int64)] = True
    return dataset[keep]
