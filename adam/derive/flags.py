"""Record-level flags: extreme (first/last), worst, analysis and treatment-emergent flags.

This module also holds the small shared machinery every derivation module uses:
argument checking, filter evaluation (through the project's safe expression
language, ``cdisc.expr.evaluate_filter``) and the vectorised first/last-record
selection that admiral calls ``filter_extreme``.

``order`` arguments (here and in merge/params/baseline/tte) are lists whose
entries are one of

* ``"ADT"``           -- sort ascending by the column;
* ``"desc(AVAL)"``    -- sort descending by the column;
* ``{"var": "AVALC", "ranking": {"CR": 1, "PR": 2, ...}, "desc": false}``
  -- sort by the rank the mapping gives each value (a response ranking given as
  data, never code); values missing from the mapping rank as missing.

Missing values sort **last** whatever the direction (as ``dplyr::arrange``,
which admiral uses, does), and records that tie on every order key keep their
original row order. So ``mode="first"`` picks the earliest-row record among
ties and ``mode="last"`` the latest-row one; with ``mode="last"`` a record whose
order value is missing is the one selected -- exclude such records with
``filter`` when that is not wanted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from cdisc.errors import DataError, Problem, SpecError

__all__ = [
    "derive_var_extreme_flag",
    "derive_var_worst_flag",
    "derive_var_anl_flag",
    "derive_var_trtemfl",
]

# --------------------------------------------------------------------------- #
# shared helpers (private to adam.derive; imported by the sibling modules)
# --------------------------------------------------------------------------- #

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DESC_RE = re.compile(r"^\s*desc\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$")
_MODES = ("first", "last")


def _as_list(value: str | Iterable[str] | None) -> list[str]:
    """``None`` -> ``[]``, ``"X"`` -> ``["X"]``, any iterable -> list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], *, func: str,
                     arg: str, label: str = "dataset") -> None:
    """Raise a SpecError naming every column an argument refers to that is absent."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SpecError(
            f"{func}: {label} has no column {', '.join(repr(c) for c in missing)} "
            f"(named by argument '{arg}')",
            hint="available columns: " + ", ".join(map(str, frame.columns)),
        )


def _require_dates(frame: pd.DataFrame, columns: Iterable[str], *, func: str,
                   arg: str, label: str = "dataset") -> None:
    """The columns must exist and hold dates/datetimes (datetime64)."""
    columns = list(columns)
    _require_columns(frame, columns, func=func, arg=arg, label=label)
    for col in columns:
        if not pd.api.types.is_datetime64_any_dtype(frame[col]):
            raise SpecError(
                f"{func}: column '{col}' of the {label} (argument '{arg}') is not a date "
                f"(dtype {frame[col].dtype})",
                hint="derive it first with derive_vars_dt / derive_vars_dtm",
            )


def _check_mode(mode: str, *, func: str) -> str:
    if mode not in _MODES:
        raise SpecError(f"{func}: mode must be 'first' or 'last', not {mode!r}")
    return mode


def _condition_mask(frame: pd.DataFrame, condition: Any, *, func: str,
                    arg: str = "filter") -> np.ndarray:
    """Evaluate a filter/condition on ``frame``; missing results count as False.

    ``condition`` is ``None`` (all records), a condition string in the project's
    safe expression language (``cdisc.expr.evaluate_filter``; never ``eval``) or
    an already computed boolean Series/array aligned with ``frame``.
    """
    n = len(frame)
    if condition is None:
        return np.ones(n, dtype=bool)
    if isinstance(condition, str):
        # imported here so this package loads while cdisc.expr is being written
        from cdisc.expr import evaluate_filter

        result = evaluate_filter(condition, frame, where=f"{func}.{arg}")
    else:
        result = condition
    if isinstance(result, pd.Series):
        if not result.index.equals(frame.index):
            result = result.reindex(frame.index)
        values = result.astype(object).where(result.notna(), False).to_numpy()
    else:
        values = np.asarray(result, dtype=object)
        if values.ndim == 0:
            values = np.full(n, values.item(), dtype=object)
        values = np.where(pd.isna(values), False, values)
    if len(values) != n:
        raise SpecError(f"{func}: {arg} gave {len(values)} values for {n} records")
    return values.astype(bool)


@dataclass(frozen=True)
class _OrderKey:
    var: str
    descending: bool = False
    ranking: Mapping[Any, float] | None = None


def _parse_order(order: Any, *, func: str) -> list[_OrderKey]:
    """Parse an ``order`` argument (see the module docstring) into keys."""
    keys: list[_OrderKey] = []
    for i, entry in enumerate(_as_list(order)):
        if isinstance(entry, str):
            m = _DESC_RE.match(entry)
            if m:
                keys.append(_OrderKey(m.group(1), True))
            elif _NAME_RE.match(entry.strip()):
                keys.append(_OrderKey(entry.strip()))
            else:
                raise SpecError(f"{func}: order[{i}] {entry!r} is neither a column name "
                                "nor desc(COLUMN)")
        elif isinstance(entry, Mapping):
            unknown = set(entry) - {"var", "desc", "ranking"}
            if "var" not in entry or unknown:
                raise SpecError(f"{func}: order[{i}] must be a mapping with 'var' and "
                                f"optional 'desc', 'ranking' (got keys {sorted(entry)})")
            ranking = entry.get("ranking")
            if ranking is not None:
                if not isinstance(ranking, Mapping) or not all(
                        isinstance(v, (int, float)) and not isinstance(v, bool)
                        for v in ranking.values()):
                    raise SpecError(f"{func}: order[{i}].ranking must map values to numbers")
            keys.append(_OrderKey(str(entry["var"]), bool(entry.get("desc", False)), ranking))
        else:
            raise SpecError(f"{func}: order[{i}] must be a string or a mapping, "
                            f"not {type(entry).__name__}")
    return keys


def _sort_codes(series: pd.Series, key: _OrderKey) -> np.ndarray:
    """Dense integer codes that sort like the key; missing -> largest code."""
    if key.ranking is not None:
        series = series.map(dict(key.ranking)).astype(float)
    codes, uniques = pd.factorize(series, sort=True, use_na_sentinel=True)
    n = len(uniques)
    codes = codes.astype(np.int64)
    if key.descending:
        codes = np.where(codes >= 0, n - 1 - codes, codes)
    return np.where(codes < 0, n, codes)


def _group_ids(frame: pd.DataFrame, by_vars: list[str]) -> np.ndarray:
    """Group number of every record (missing key values form their own group)."""
    if not by_vars:
        return np.zeros(len(frame), dtype=np.int64)
    return frame.groupby(by_vars, dropna=False, sort=False).ngroup().to_numpy(np.int64)


def _extreme_positions(frame: pd.DataFrame, *, by_vars: list[str], order: Any,
                       mode: str, mask: np.ndarray | None = None,
                       func: str) -> np.ndarray:
    """Row positions (ascending) of the first/last record per by group.

    1. Keep the candidate records (``mask``).
    2. Sort them by group, then the order keys (missing last), then row position.
    3. Take the first (``mode='first'``) or last (``'last'``) record of each group.
    """
    keys = _parse_order(order, func=func)
    _require_columns(frame, [k.var for k in keys], func=func, arg="order")
    _require_columns(frame, by_vars, func=func, arg="by_vars")
    _check_mode(mode, func=func)
    pos = np.arange(len(frame)) if mask is None else np.flatnonzero(mask)
    if len(pos) == 0:
        return pos
    sub = frame.iloc[pos]
    groups = _group_ids(sub, by_vars)
    sort_keys = [np.arange(len(sub))]
    sort_keys += [_sort_codes(sub[k.var], k) for k in reversed(keys)]
    sort_keys.append(groups)
    idx = np.lexsort(sort_keys)          # last key is the primary one
    g = groups[idx]
    change = g[1:] != g[:-1]
    if mode == "first":
        chosen = np.concatenate(([True], change))
    else:
        chosen = np.concatenate((change, [True]))
    return np.sort(pos[idx[chosen]])


def _key_text(frame: pd.DataFrame, by_vars: list[str], positions: np.ndarray,
              limit: int = 10) -> str:
    """'USUBJID=01-001, PARAMCD=OS; ...' for the first ``limit`` positions."""
    rows = frame.iloc[positions[:limit]][by_vars].astype(object)
    parts = ["(" + ", ".join(f"{v}={r[v]!s}" for v in by_vars) + ")"
             for _, r in rows.iterrows()]
    more = len(positions) - limit
    return "; ".join(parts) + (f"; ... and {more} more" if more > 0 else "")


def _duplicate_error(frame: pd.DataFrame, by_vars: list[str], *, func: str, what: str,
                     hint: str) -> None:
    """Raise a DataError naming the by groups with more than one record."""
    if not by_vars:
        dup = np.arange(len(frame)) if len(frame) > 1 else np.array([], dtype=int)
    else:
        first = ~frame.duplicated(subset=by_vars, keep="first").to_numpy()
        dup_any = frame.duplicated(subset=by_vars, keep=False).to_numpy()
        dup = np.flatnonzero(dup_any & first)
    if len(dup):
        keys = _key_text(frame, by_vars, dup) if by_vars else "(all records)"
        raise DataError(Problem(
            f"{func}: {what} has more than one record for {len(dup)} key(s) of "
            f"{', '.join(by_vars) or 'the dataset'}: {keys}", hint=hint))


def _flag_series(index: pd.Index, flagged: np.ndarray, candidates: np.ndarray,
                 true_value: Any, false_value: Any) -> pd.Series:
    """true_value on flagged, false_value on other candidates, missing elsewhere."""
    out = np.full(len(index), None, dtype=object)
    out[candidates] = false_value
    out[flagged] = true_value
    non_null = [v for v in (true_value, false_value) if v is not None]
    if all(isinstance(v, str) for v in non_null):
        return pd.Series(out, index=index, dtype="str")
    return pd.Series(out, index=index)


# --------------------------------------------------------------------------- #
# public derivations
# --------------------------------------------------------------------------- #

def derive_var_extreme_flag(dataset: pd.DataFrame, *, by_vars: list[str] | None,
                            order: Any, new_var: str, mode: str = "first",
                            filter: Any = None, true_value: Any = "Y",
                            false_value: Any = None) -> pd.DataFrame:
    """Flag the first or last record of each by group (e.g. ``ANL01FL``, ``AOCCFL``).

    Arguments:
        dataset: input records (not modified; a new frame is returned, all rows kept).
        by_vars: variables defining the groups, e.g. ``["USUBJID", "PARAMCD", "AVISIT"]``.
        order: sort keys within a group (see the module docstring for the forms);
            missing values sort last; ties keep the original row order.
        new_var: flag variable to create (overwritten if present).
        mode: ``"first"`` or ``"last"`` record after sorting.
        filter: optional condition; only records meeting it are candidates.
        true_value: value for the selected record (``"Y"``).
        false_value: value for the other candidates (default missing, as ADaM
            flags are ``Y``/null).

    Algorithm:
        1. Candidates = records meeting ``filter`` (all records when it is None).
        2. Sort the candidates within each by group by ``order``, missing values
           last, then by original row position (stable).
        3. The first (``mode="first"``) or last (``mode="last"``) candidate of each
           group gets ``true_value``; other candidates get ``false_value``;
           non-candidates are missing.

    Rule: ADaMIG 1.3 BDS indicator variables (record-level flags such as ANLzzFL) and the
    OCCDS first-occurrence flags (AOCCzzFL): exactly one record per group is flagged.
    """
    func = "derive_var_extreme_flag"
    by = _as_list(by_vars)
    cand = _condition_mask(dataset, filter, func=func)
    pos = _extreme_positions(dataset, by_vars=by, order=order, mode=mode,
                             mask=cand, func=func)
    flagged = np.zeros(len(dataset), dtype=bool)
    flagged[pos] = True
    out = dataset.copy(deep=False)
    out[new_var] = _flag_series(dataset.index, flagged, cand, true_value, false_value)
    return out


def derive_var_worst_flag(dataset: pd.DataFrame, *, by_vars: list[str] | None,
                          new_var: str, source_var: str, worst: Any = "high",
                          order: Any = None, filter: Any = None, true_value: Any = "Y",
                          false_value: Any = None) -> pd.DataFrame:
    """Flag the record with the worst value of ``source_var`` per by group (e.g. ``WORSTFL``).

    Arguments:
        by_vars: groups, e.g. ``["USUBJID", "PARAMCD"]`` or ``["USUBJID", "AEDECOD"]``.
        new_var: flag to create.
        source_var: the value judged, e.g. ``ATOXGRN`` or ``AVAL``.
        worst: ``"high"`` (largest is worst, e.g. toxicity grade), ``"low"`` (smallest
            is worst) or a ranking mapping ``{value: rank}`` where the **lowest rank is
            worst** (e.g. ``{"SEVERE": 1, "MODERATE": 2, "MILD": 3}``).
        order: tie-breakers among equally bad records, ascending by default (e.g.
            ``["ASTDT", "AESEQ"]`` flags the earliest of several worst records).
        filter: optional restriction of the candidates.

    Algorithm:
        1. Candidates = records meeting ``filter`` whose ``source_var`` is not missing
           (a missing value is never the worst one) -- and, with a ranking, whose
           value is in the ranking.
        2. Sort candidates by the worst-first key, then ``order``, then row position.
        3. Flag the first candidate of each group (``true_value``); other candidates get
           ``false_value``; non-candidates are missing.

    Rule: ADaMIG 1.3 BDS indicator variables (Y/null flags); "worst" per the SAP.
    """
    func = "derive_var_worst_flag"
    _require_columns(dataset, [source_var], func=func, arg="source_var")
    cand = _condition_mask(dataset, filter, func=func)
    values = dataset[source_var]
    if isinstance(worst, Mapping):
        key: Any = {"var": source_var, "ranking": dict(worst)}
        cand = cand & values.map(dict(worst)).notna().to_numpy()
    elif worst == "high":
        key = f"desc({source_var})"
    elif worst == "low":
        key = source_var
    else:
        raise SpecError(f"{func}: worst must be 'high', 'low' or a ranking mapping, "
                        f"not {worst!r}")
    cand = cand & values.notna().to_numpy()
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        cand = cand & (values.astype(str).str.strip() != "").to_numpy()
    return derive_var_extreme_flag(
        dataset, by_vars=by_vars, order=[key] + _as_list(order), new_var=new_var,
        mode="first", filter=cand, true_value=true_value, false_value=false_value)


def derive_var_anl_flag(dataset: pd.DataFrame, *, new_var: str, filter: Any,
                        true_value: Any = "Y", false_value: Any = None) -> pd.DataFrame:
    """Set a flag on every record meeting a condition (e.g. ``ANL02FL``, ``SAFFL``-like).

    Arguments:
        new_var: flag to create (overwritten if present).
        filter: condition in the project's expression language (required).
        true_value / false_value: values for records that do / do not meet it
            (``"Y"`` / missing by default, the ADaM convention for ``*FL`` flags
            whose "N" is not needed).

    Algorithm:
        1. Evaluate ``filter`` on every record (missing results count as not met).
        2. ``true_value`` where met, else ``false_value``.

    Rule: ADaMIG 1.3 BDS indicator variables (ANLzzFL: Y or null).
    """
    if filter is None:
        raise SpecError("derive_var_anl_flag: filter is required")
    met = _condition_mask(dataset, filter, func="derive_var_anl_flag")
    out = dataset.copy(deep=False)
    out[new_var] = _flag_series(dataset.index, met, np.ones(len(dataset), bool),
                                true_value, false_value)
    return out


def _numeric_grade(series: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series):
        return series.astype(float)
    return pd.to_numeric(series, errors="coerce")


def derive_var_trtemfl(dataset: pd.DataFrame, *, start_date: str, trt_start_date: str,
                       new_var: str = "TRTEMFL", end_date: str | None = None,
                       trt_end_date: str | None = None, end_window: int | None = None,
                       ignore_time_for_trt_end: bool = True,
                       initial_intensity: str | None = None,
                       intensity: str | None = None) -> pd.DataFrame:
    """Derive the treatment-emergent flag (``TRTEMFL``: ``"Y"`` or missing).

    Arguments:
        start_date / end_date: event start/end (dates or datetimes, e.g. ``ASTDT``,
            ``AENDT``); ``end_date`` is optional.
        trt_start_date / trt_end_date: first/last dose (``TRTSDT``, ``TRTEDT``).
        end_window: days after ``trt_end_date`` during which a new event still
            counts as treatment-emergent (e.g. 30); needs ``trt_end_date``.
        ignore_time_for_trt_end: compare only the date parts for the window check.
        initial_intensity / intensity: e.g. ``AEITOXGR`` / ``AETOXGR``; when given,
            events that started before treatment and worsened on treatment are
            flagged. Grades are compared numerically ("1" < "3"); a missing or
            non-numeric grade counts as worsened (conservative).

    Algorithm -- the first rule that applies sets the value:
        1. ``trt_start_date`` missing (not treated) -> missing.
        2. ``end_date`` given, not missing and before ``trt_start_date`` -> missing.
        3. ``start_date`` missing -> ``"Y"`` (cannot be shown to precede treatment;
           the conservative convention, also when the end date is missing).
        4. ``start_date >= trt_start_date`` and, if ``end_window`` is given,
           ``start_date <= trt_end_date + end_window`` days (or ``trt_end_date``
           missing) -> ``"Y"``.
        5. ``intensity`` given, ``start_date < trt_start_date`` (event ongoing at first
           dose, as rule 2 excluded earlier ends) and ``intensity > initial_intensity``
           (or either missing) -> ``"Y"``.
        6. Otherwise missing.

    Dates are compared as given: pass both as dates (``*DT``) or both as datetimes
    (``*DTM``); mixing makes a same-day date compare as midnight.

    Rule: ADaMIG 1.3 / ADaM OCCDS v1.1 ``TRTEMFL``; ICH E9 definition of
    treatment-emergent (absent pre-treatment, or worsened relative to the
    pre-treatment state); the end window is a study choice, pre-specified in the SAP.
    """
    func = "derive_var_trtemfl"
    date_cols = [start_date, trt_start_date] + [c for c in (end_date, trt_end_date) if c]
    _require_dates(dataset, date_cols, func=func, arg="start_date/end_date/trt_*_date")
    if end_window is not None:
        if trt_end_date is None:
            raise SpecError(f"{func}: end_window needs trt_end_date")
        if int(end_window) != end_window or end_window < 0:
            raise SpecError(f"{func}: end_window must be a non-negative integer number "
                            f"of days, not {end_window!r}")
    if (initial_intensity is None) != (intensity is None):
        raise SpecError(f"{func}: give both initial_intensity and intensity, or neither")

    ast = dataset[start_date]
    trts = dataset[trt_start_date]
    n = len(dataset)
    decided = np.zeros(n, dtype=bool)
    flag = np.zeros(n, dtype=bool)

    def apply(cond: np.ndarray, value: bool) -> None:
        nonlocal decided, flag
        take = cond & ~decided
        flag[take] = value
        decided = decided | take

    apply(trts.isna().to_numpy(), False)                              # rule 1
    if end_date is not None:
        aen = dataset[end_date]
        apply((aen.notna() & (aen < trts)).to_numpy(), False)         # rule 2
    apply(ast.isna().to_numpy(), True)                                # rule 3
    on_trt = (ast >= trts).to_numpy()
    if end_window is not None:
        trte = dataset[trt_end_date]
        if ignore_time_for_trt_end:
            limit = trte.dt.normalize() + pd.Timedelta(days=int(end_window))
            within = ast.dt.normalize() <= limit
        else:
            within = ast <= trte + pd.Timedelta(days=int(end_window))
        on_trt = on_trt & (trte.isna() | within).to_numpy()
    apply(on_trt, True)                                               # rule 4
    if intensity is not None:
        _require_columns(dataset, [initial_intensity, intensity], func=func,
                         arg="initial_intensity/intensity")
        ini = _numeric_grade(dataset[initial_intensity])
        cur = _numeric_grade(dataset[intensity])
        worse = (cur > ini) | ini.isna() | cur.isna()
        apply(((ast < trts) & worse).to_numpy(), True)                # rule 5
    out = dataset.copy(deep=False)
    out[new_var] = pd.Series(np.where(flag, "Y", None), index=dataset.index, dtype="str")
    return out
