"""Derived records and parameters for BDS datasets (best response, computed and
responder parameters).

These functions exist to **add records**: each says in its docstring which records
it creates and whether they are appended to ``dataset`` or returned on their own.
``set_values_to`` is always a mapping of constants (e.g. ``{"PARAMCD": "BOR",
"PARAM": "Best Overall Response"}``), never code.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from cdisc.errors import DataError, Problem, SpecError

from .flags import (_as_list, _condition_mask, _duplicate_error, _extreme_positions,
                    _group_ids, _require_columns)
from .merge import _SAME_AS_FALSE, derive_var_merged_exist_flag

__all__ = ["derive_extreme_records", "derive_param_computed", "derive_param_exist_flag"]


def _constants(set_values_to: Mapping[str, Any] | None, *, func: str) -> dict[str, Any]:
    values = dict(set_values_to or {})
    for k, v in values.items():
        if not isinstance(v, (str, int, float, bool)) and v is not None:
            raise SpecError(f"{func}: set_values_to.{k} must be a constant "
                            f"(string, number, true/false or null), not {type(v).__name__}")
    return values


def _assign_constants(frame: pd.DataFrame, values: Mapping[str, Any]) -> pd.DataFrame:
    frame = frame.copy(deep=False)
    for k, v in values.items():
        if isinstance(v, str):
            frame[k] = pd.Series([v] * len(frame), index=frame.index, dtype="str")
        elif v is None:
            frame[k] = pd.Series([np.nan] * len(frame), index=frame.index, dtype=float)
        else:
            frame[k] = v
    return frame


def _check_new_param(dataset: pd.DataFrame | None, values: Mapping[str, Any],
                     param_var: str, *, func: str) -> None:
    """A derived parameter must not already be in the dataset it is appended to."""
    if dataset is None or param_var not in values or param_var not in dataset.columns:
        return
    if (dataset[param_var] == values[param_var]).any():
        raise DataError(Problem(
            f"{func}: {param_var} {values[param_var]!r} already exists in the dataset",
            column=param_var, hint="derive each parameter once"))


def _append(dataset: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    if dataset is None:
        return new.reset_index(drop=True)
    if len(new) == 0:
        return dataset.reset_index(drop=True)
    return pd.concat([dataset, new], ignore_index=True, sort=False)


def derive_extreme_records(dataset: pd.DataFrame | None, *, by_vars: list[str] | None,
                           order: Any, mode: str, filter: Any = None,
                           set_values_to: Mapping[str, Any] | None = None,
                           dataset_add: pd.DataFrame | None = None,
                           dataset_ref: pd.DataFrame | None = None,
                           missing_values: Mapping[str, Any] | None = None,
                           keep_source_vars: list[str] | None = None) -> pd.DataFrame:
    """Add the first/last record of each by group as a new record (e.g. best overall
    response ``BOR``, last observation ``DTYPE = "LOV"``).

    Arguments:
        dataset: the frame the new records are appended to (None: return only them).
        by_vars: groups, e.g. ``["STUDYID", "USUBJID"]``.
        order: sort keys (see :mod:`adam.derive.flags`); a response ranking is given as
            data: ``[{"var": "AVALC", "ranking": {"CR": 1, "CRH": 2, "CRI": 3,
            "PR": 4, "NR": 5, "PD": 6}}, "ADT"]`` with ``mode="first"`` selects the best
            response, earliest first among equals. Values not in the ranking (e.g.
            ``"NE"``) sort as missing, i.e. last.
        mode: ``"first"`` or ``"last"``.
        filter: which source records are candidates (e.g. ``PARAMCD == 'OVR'``).
        set_values_to: constants set on the new records (``PARAMCD``, ``PARAM``, ...).
        dataset_add: source of the records (default: ``dataset`` itself).
        dataset_ref: optional frame listing every by group that must get a record
            (e.g. ADSL); groups with no candidate get a record with the by variables,
            ``set_values_to`` and ``missing_values`` (e.g. ``{"AVALC": "NE"}``).
        keep_source_vars: source variables kept on the new records besides
            ``by_vars`` (default: all).

    Algorithm:
        1. Candidates = ``dataset_add`` (or ``dataset``) records meeting ``filter``.
        2. Per by group, sort by ``order`` (missing last, ties in row order) and
           take the first/last record; keep ``by_vars`` + ``keep_source_vars``.
        3. Set ``set_values_to`` on them.
        4. With ``dataset_ref``: add a record for each reference by group without one.
        5. Append to ``dataset`` (index reset) and return it.

    Rule: ADaMIG 1.3 BDS derived rows -- a derived record gets a new PARAMCD or DTYPE; the
    source values stay traceable through the kept source variables.
    """
    func = "derive_extreme_records"
    by = _as_list(by_vars)
    source = dataset_add if dataset_add is not None else dataset
    if source is None:
        raise SpecError(f"{func}: give dataset or dataset_add")
    values = _constants(set_values_to, func=func)
    cand = _condition_mask(source, filter, func=func)
    pos = _extreme_positions(source, by_vars=by, order=order, mode=mode, mask=cand,
                             func=func)
    new = source.iloc[pos]
    if keep_source_vars is not None:
        keep = list(dict.fromkeys(by + _as_list(keep_source_vars)))
        _require_columns(source, keep, func=func, arg="keep_source_vars")
        new = new[keep]
    new = _assign_constants(new, values)
    if dataset_ref is not None:
        _require_columns(dataset_ref, by, func=func, arg="by_vars", label="dataset_ref")
        ref = dataset_ref[by].drop_duplicates()
        found = ref.merge(new[by].drop_duplicates().assign(_found_=True), how="left",
                          on=by, sort=False)["_found_"].notna().to_numpy()
        extra = ref[~found]
        if len(extra):
            extra = _assign_constants(extra, {**values, **dict(missing_values or {})})
            new = pd.concat([new, extra], ignore_index=True, sort=False)
    return _append(dataset, new)


_OPERATIONS = ("ratio", "difference", "sum", "mean")


def derive_param_computed(dataset: pd.DataFrame, *, by_vars: list[str],
                          parameters: list[str], set_values_to: Mapping[str, Any],
                          operation: str | None = None, formula: str | None = None,
                          analysis_var: str = "AVAL", param_var: str = "PARAMCD",
                          filter: Any = None, scale: float = 1.0,
                          constant_by_vars: list[str] | None = None,
                          constant_parameters: list[str] | None = None,
                          keep_nas: bool = False) -> pd.DataFrame:
    """Add a parameter computed from other parameters (e.g. a ratio of two lab tests, or
    BMI from weight and height).

    admiral: ``derive_param_computed()``. Give either a named ``operation`` or a
    ``formula``.

    **formula** (admiral's ``set_values_to = exprs(AVAL = ...)``): an expression in the
    project's expression language over the parameters, each value written
    ``VAR.PARAMCD`` as admiral does: ``AVAL.WEIGHT / ((AVAL.HEIGHT / 100) *
    (AVAL.HEIGHT / 100))`` (``**`` is not part of the language). Any column of the
    source records can be referred to this way (``ADT.WEIGHT``); by variables by their
    names. Further arguments of the formula form:

        constant_parameters: parameters measured once (e.g. ``[HEIGHT]`` at
            screening), joined to every by group by ``constant_by_vars`` only
            (``[USUBJID]``) instead of ``by_vars``.
        constant_by_vars: the keys of the constant parameters.
        keep_nas: False (default, as admiral) adds no record where the formula gives a
            missing value; True adds it with a missing ``analysis_var``.

    Algorithm of the formula form:
        1. Source records: ``param_var`` in ``parameters`` and ``filter`` met; more than
           one per by group and parameter is a DataError (likewise per
           ``constant_by_vars`` and constant parameter).
        2. One row per by group that has a record of every parameter, with a column
           ``VAR.PARAMCD`` for each value the formula refers to; the constant
           parameters' values are joined by ``constant_by_vars`` (a group without them
           gets no record).
        3. ``analysis_var`` = the formula, evaluated column-wise (never ``eval``); it
           must give numbers; x ``scale``.
        4. Records with a missing result are dropped unless ``keep_nas``; the new
           records (by_vars, ``analysis_var``, ``set_values_to``) are appended.

    Arguments (both forms):
        by_vars: groups one new record is made for, e.g. ``["USUBJID", "AVISIT"]``
            (plus constant variables to carry, e.g. ``"STUDYID"``).
        parameters: the ``param_var`` values used, in operand order.
        set_values_to: constants of the new records; must include ``param_var``.
        operation: a named operation (no expressions are evaluated):
            ``"ratio"`` p1 / p2, ``"difference"`` p1 - p2 (exactly two parameters),
            ``"sum"`` and ``"mean"`` of all parameters.
        analysis_var: the value used and set (``AVAL``).
        filter: restricts the source records (e.g. ``ANL01FL == 'Y'``).
        scale: multiplies the result (e.g. 100 for a percentage).

    Algorithm:
        1. Source records: ``param_var`` in ``parameters`` and ``filter`` met.
        2. More than one source record per by group and parameter is a DataError.
        3. A by group gets a new record only if it has a record for every parameter;
           ``analysis_var`` = operation x ``scale``, missing if an operand is missing
           or a ratio's denominator is 0.
        4. The new records (by_vars, ``analysis_var``, ``set_values_to``) are appended
           to ``dataset`` (index reset). A ``param_var`` value already in
           ``dataset`` is a DataError.

    Rule: ADaMIG 1.3 BDS derived rows (a derived parameter has its own PARAMCD).
    """
    func = "derive_param_computed"
    if (operation is None) == (formula is None):
        raise SpecError(f"{func}: give either operation or formula")
    if formula is not None:
        return _param_formula(dataset, by_vars=by_vars, parameters=parameters,
                              set_values_to=set_values_to, formula=formula,
                              analysis_var=analysis_var, param_var=param_var,
                              filter=filter, scale=scale, constant_by_vars=constant_by_vars,
                              constant_parameters=constant_parameters, keep_nas=keep_nas)
    if constant_by_vars or constant_parameters:
        raise SpecError(f"{func}: constant_by_vars/constant_parameters need a formula")
    if operation not in _OPERATIONS:
        raise SpecError(f"{func}: operation must be one of {', '.join(_OPERATIONS)}, "
                        f"not {operation!r}")
    params = _as_list(parameters)
    if operation in ("ratio", "difference") and len(params) != 2:
        raise SpecError(f"{func}: operation {operation!r} needs exactly two parameters")
    if not params or len(set(params)) != len(params):
        raise SpecError(f"{func}: parameters must be a non-empty list of distinct values")
    values = _constants(set_values_to, func=func)
    if param_var not in values:
        raise SpecError(f"{func}: set_values_to must set {param_var}")
    by = _as_list(by_vars)
    _require_columns(dataset, by + [param_var, analysis_var], func=func,
                     arg="by_vars/param_var/analysis_var")
    _check_new_param(dataset, values, param_var, func=func)
    use = dataset[param_var].isin(params).to_numpy() & _condition_mask(dataset, filter,
                                                                      func=func)
    src = dataset[use]
    _duplicate_error(src, by + [param_var], func=func, what="the source records",
                     hint="restrict them with filter (e.g. an analysis flag)")
    groups = _group_ids(src, by)
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    col = src[param_var].map({p: i for i, p in enumerate(params)}).to_numpy(dtype=np.int64)
    matrix = np.full((n_groups, len(params)), np.nan)
    present = np.zeros((n_groups, len(params)), dtype=bool)
    matrix[groups, col] = pd.to_numeric(src[analysis_var], errors="coerce").to_numpy(float)
    present[groups, col] = True
    complete = present.all(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if operation == "ratio":
            result = np.where(matrix[:, 1] != 0, matrix[:, 0] / matrix[:, 1], np.nan)
        elif operation == "difference":
            result = matrix[:, 0] - matrix[:, 1]
        elif operation == "sum":
            result = matrix.sum(axis=1)
        else:
            result = matrix.mean(axis=1)
    result = result * scale
    _, first_pos = np.unique(groups, return_index=True)
    keep_groups = np.flatnonzero(complete)
    new = src.iloc[first_pos[keep_groups]][by].copy()
    new[analysis_var] = result[keep_groups]
    new = _assign_constants(new, values)
    return _append(dataset, new)


def derive_param_exist_flag(dataset: pd.DataFrame, *, dataset_add: pd.DataFrame,
                            by_vars: list[str], condition: Any,
                            set_values_to: Mapping[str, Any], true_value: Any = "Y",
                            false_value: Any = "N", missing_value: Any = _SAME_AS_FALSE,
                            filter_add: Any = None, aval_true: float | None = 1,
                            aval_false: float | None = 0) -> pd.DataFrame:
    """Build a Y/N parameter with one record per by group of ``dataset`` (e.g. a
    responder parameter: complete remission by day 28, ``AVALC`` Y/N, ``AVAL`` 1/0).

    ``dataset`` is the reference (usually ADSL, optionally filtered to the analysis
    population first); the function **returns the new records only**, one per
    distinct ``by_vars`` value of ``dataset`` in its order -- append them to the BDS
    dataset (``pandas.concat``) in the spec's assembly step.

    Arguments:
        dataset_add: the records searched (e.g. ADRS).
        by_vars: the key, usually ``["STUDYID", "USUBJID"]``.
        condition: what makes the flag true, e.g. ``AVALC in ('CR','CRH')``.
        set_values_to: constants of the new records (``PARAMCD``, ``PARAM``, ...).
        true_value / false_value: ``AVALC`` when some / no record meets the condition.
        missing_value: ``AVALC`` when the subject has no ``dataset_add`` record at all
            (after ``filter_add``); defaults to ``false_value`` (no assessment = not a
            responder, the usual SAP rule); None leaves it missing.
        filter_add: restricts ``dataset_add`` (e.g. ``PARAMCD == 'OVR'`` and the
            day-28 window).
        aval_true / aval_false: ``AVAL`` for ``true_value`` / ``false_value``; any other
            ``AVALC`` gives missing ``AVAL``.

    Algorithm:
        1. One record per distinct ``by_vars`` value of ``dataset``.
        2. ``AVALC`` as in :func:`derive_var_merged_exist_flag`.
        3. ``AVAL`` = ``aval_true``/``aval_false`` by ``AVALC``.
        4. Set ``set_values_to``; columns: by_vars, AVALC, AVAL, set_values_to.

    Rule: ADaMIG 1.3 BDS derived rows (own PARAMCD), AVAL/AVALC one-to-one within a
    parameter.
    """
    func = "derive_param_exist_flag"
    values = _constants(set_values_to, func=func)
    by = _as_list(by_vars)
    _require_columns(dataset, by, func=func, arg="by_vars")
    ref = dataset[by].drop_duplicates().reset_index(drop=True)
    flagged = derive_var_merged_exist_flag(
        ref, dataset_add=dataset_add, by_vars=by, new_var="AVALC", condition=condition,
        true_value=true_value, false_value=false_value, missing_value=missing_value,
        filter_add=filter_add)
    avalc = flagged["AVALC"]
    aval = np.full(len(flagged), np.nan)
    if aval_true is not None:
        aval[(avalc == true_value).to_numpy()] = aval_true
    if aval_false is not None:
        aval[(avalc == false_value).to_numpy()] = aval_false
    flagged["AVAL"] = aval
    return _assign_constants(flagged, values)


def _param_formula(dataset: pd.DataFrame, *, by_vars: list[str], parameters: list[str],
                   set_values_to: Mapping[str, Any], formula: str, analysis_var: str,
                   param_var: str, filter: Any, scale: float, constant_by_vars: Any,
                   constant_parameters: Any, keep_nas: bool) -> pd.DataFrame:
    """The formula form of :func:`derive_param_computed` (see there)."""
    from cdisc.expr import parse

    func = "derive_param_computed"
    params = _as_list(parameters)
    consts = _as_list(constant_parameters)
    cby = _as_list(constant_by_vars)
    by = _as_list(by_vars)
    if not params or len(set(params + consts)) != len(params) + len(consts):
        raise SpecError(f"{func}: parameters (and constant_parameters) must be non-empty "
                        "and distinct")
    if consts and not cby:
        raise SpecError(f"{func}: constant_parameters need constant_by_vars")
    values = _constants(set_values_to, func=func)
    if param_var not in values:
        raise SpecError(f"{func}: set_values_to must set {param_var}")
    if analysis_var in values:
        raise SpecError(f"{func}: {analysis_var} is computed by the formula; remove it "
                        "from set_values_to")
    _require_columns(dataset, list(dict.fromkeys(by + cby + [param_var])), func=func,
                     arg="by_vars/constant_by_vars/param_var")
    missing_cby = [c for c in cby if c not in by]
    if missing_cby:
        raise SpecError(f"{func}: constant_by_vars {', '.join(missing_cby)} must be among "
                        "by_vars")
    _check_new_param(dataset, values, param_var, func=func)
    expr = parse(formula, where=f"{func}.formula")
    refs: dict[str, tuple[str, str]] = {}
    for name in sorted(expr.names):
        if name in by:
            continue
        var, _, code = name.rpartition(".")
        if not var or code not in params + consts:
            raise SpecError(f"{func}: formula name {name!r} is not VAR.PARAMCD for one of "
                            f"the parameters ({', '.join(params + consts)}) nor a by variable",
                            hint="write e.g. AVAL.WEIGHT")
        _require_columns(dataset, [var], func=func, arg="formula")
        refs[name] = (var, code)
    keep = _condition_mask(dataset, filter, func=func)
    pv = dataset[param_var]

    def source(codes: list[str], keys: list[str]) -> pd.DataFrame:
        src = dataset[keep & pv.isin(codes).to_numpy()]
        _duplicate_error(src, keys + [param_var], func=func, what="the source records",
                         hint="restrict them with filter (e.g. an analysis flag)")
        return src

    src = source(params, by)
    # by groups having a record of every parameter, in order of first appearance
    counts = src.groupby(by, dropna=False, sort=False)[param_var].nunique()
    wide = counts[counts == len(params)].reset_index()[by]
    csrc = source(consts, cby) if consts else None
    for name, (var, code) in refs.items():
        is_const = code in consts
        frame = csrc if is_const else src
        keys = cby if is_const else by
        part = frame[(frame[param_var] == code).to_numpy()][keys + [var]]
        part = part.rename(columns={var: name})
        wide = wide.merge(part, how="inner" if is_const else "left", on=keys, sort=False)
    if consts:
        # a group must have every constant parameter, even one the formula does not use
        have = csrc.groupby(cby, dropna=False, sort=False)[param_var].nunique()
        ok = have[have == len(consts)].reset_index()[cby]
        wide = wide.merge(ok, how="inner", on=cby, sort=False)
    result = expr.evaluate(wide)
    if not (pd.api.types.is_numeric_dtype(result) or result.isna().all()):
        raise SpecError(f"{func}: the formula {formula!r} must give numbers")
    aval = pd.to_numeric(result, errors="coerce").to_numpy(float) * scale
    new = wide[by].copy()
    new[analysis_var] = aval
    if not keep_nas:
        new = new[~np.isnan(aval)]
    new = _assign_constants(new, values)
    return _append(dataset, new)
