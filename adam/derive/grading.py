"""Toxicity grades of lab results from grading criteria given as data (admiral
``derive_var_atoxgr_dir`` with its ``meta_criteria`` table, here a mapping in the spec).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from cdisc.errors import SpecError

from .flags import _require_columns

__all__ = ["derive_var_atoxgr"]


def _threshold(value: Any, lln: np.ndarray, uln: np.ndarray, *, func: str, where: str) -> np.ndarray:
    """A bound: a number, ``"LLN"``/``"ULN"`` or ``{"x": k, "of": "LLN"|"ULN"}`` (k x the limit)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.full(len(lln), float(value))
    if value in ("LLN", "ULN"):
        return lln if value == "LLN" else uln
    if isinstance(value, Mapping) and set(value) == {"x", "of"} and value["of"] in ("LLN", "ULN"):
        return float(value["x"]) * (lln if value["of"] == "LLN" else uln)
    raise SpecError(f"{func}: {where} must be a number, LLN, ULN or {{x: k, of: LLN|ULN}}, not {value!r}")


def derive_var_atoxgr(dataset: pd.DataFrame, *, criteria: Mapping[str, Mapping[str, Any]],
                      new_var: str = "ATOXGR", new_var_n: str | None = "ATOXGRN",
                      param_var: str = "PARAMCD", analysis_var: str = "AVAL",
                      lln_var: str = "ANRLO", uln_var: str = "ANRHI") -> pd.DataFrame:
    """Grade each record of the graded parameters (e.g. NCI CTCAE v5.0 haematology).

    Arguments:
        criteria: ``{PARAMCD: {"direction": "low"|"high", "grades": [{"grade": 4, "lt": 0.5},
            {"grade": 3, "lt": 1.0}, {"grade": 2, "lt": 1.5}, {"grade": 1, "lt": "LLN"}]}}``
            (``lt`` for direction low, ``gt`` for direction high; bounds are numbers in the
            analysis unit, ``LLN``/``ULN`` or ``{x: k, of: ULN}``), an optional ``source``
            naming the criterion (e.g. "CTCAE v5.0 Neutrophil count decreased").
        new_var / new_var_n: the grade as text ("0".."4") and as a number.
        analysis_var, lln_var, uln_var: the value and the normal range limits.

    Algorithm (first grade that holds, highest grade first):
        1. records of parameters not in ``criteria``: grade missing;
        2. ``analysis_var`` missing: grade missing;
        3. grades in descending order: direction low -> ``AVAL < bound``, high -> ``AVAL > bound``;
           the first grade whose bound holds is the grade;
        4. no grade holds: "0" when every bound could be evaluated (a normal-range bound needs
           the limit), else missing (e.g. above the grade-2 bound with no LLN: grade 0 or 1
           cannot be told apart).

    Rule: ADaMIG 1.3 ATOXGR "analysis toxicity grade"; NCI CTCAE v5.0 lab criteria
    (a grade's range is "< bound of this grade, >= bound of the next higher grade").
    """
    func = "derive_var_atoxgr"
    _require_columns(dataset, [param_var, analysis_var, lln_var, uln_var], func=func,
                     arg="param_var/analysis_var/lln_var/uln_var")
    aval = pd.to_numeric(dataset[analysis_var], errors="coerce").to_numpy(float)
    lln = pd.to_numeric(dataset[lln_var], errors="coerce").to_numpy(float)
    uln = pd.to_numeric(dataset[uln_var], errors="coerce").to_numpy(float)
    grade = np.full(len(dataset), np.nan)
    params = dataset[param_var].astype("str").to_numpy()
    for code, crit in criteria.items():
        direction = crit.get("direction")
        if direction not in ("low", "high"):
            raise SpecError(f"{func}: criteria.{code}.direction must be low or high")
        op = "lt" if direction == "low" else "gt"
        rows = (params == code) & ~np.isnan(aval)
        decided = np.zeros(len(dataset), dtype=bool)
        evaluable = rows.copy()
        levels = sorted(crit.get("grades") or [], key=lambda g: -int(g["grade"]))
        if not levels:
            raise SpecError(f"{func}: criteria.{code}.grades is empty")
        for g in levels:
            if op not in g:
                raise SpecError(f"{func}: criteria.{code} grade {g.get('grade')} needs {op!r} "
                                f"(direction {direction})")
            bound = _threshold(g[op], lln, uln, func=func, where=f"criteria.{code}.{op}")
            with np.errstate(invalid="ignore"):
                hold = (aval < bound) if op == "lt" else (aval > bound)
            hit = rows & ~decided & hold
            grade[hit] = float(g["grade"])
            decided |= hit
            evaluable &= ~np.isnan(bound) | decided
        zero = rows & ~decided & evaluable
        grade[zero] = 0.0
    out = dataset.copy()
    text = np.where(np.isnan(grade), None, np.char.mod("%d", np.nan_to_num(grade).astype(int)).astype(object))
    out[new_var] = pd.Series(text, index=dataset.index, dtype="str").where(~np.isnan(grade), None)
    if new_var_n:
        out[new_var_n] = grade
    return out
