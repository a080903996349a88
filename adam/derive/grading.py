"""Toxicity grades of lab results from grading criteria given as data.

Two ways in:

* :func:`derive_var_atoxgr_dir` (admiral ``derive_var_atoxgr_dir``) grades one direction
  (low: ``ATOXGRL``, high: ``ATOXGRH``) from a named criteria set shipped as data --
  ``criteria: CTCAEv5`` is NCI CTCAE v5.0 (``adam/derive/data/ctcae_v5.yaml``, the
  content of admiral's ``atoxgr_criteria_ctcv5``) -- keyed by the term in
  ``ATOXDSCL``/``ATOXDSCH``; then :func:`derive_var_atoxgr` without ``criteria``
  combines the two into ``ATOXGR`` (-4..4) as admiral's ``derive_var_atoxgr`` does.
* :func:`derive_var_atoxgr` with ``criteria`` given in the spec per ``PARAMCD`` (the
  original form, one direction per parameter).
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml

from cdisc.errors import SpecError

from .flags import _require_columns

__all__ = ["derive_var_atoxgr", "derive_var_atoxgr_dir", "grading_criteria"]

#: Named criteria sets shipped with the package.
CRITERIA_FILES = {"CTCAEv5": "ctcae_v5.yaml"}
_ROLES = ("AVAL", "ANRLO", "ANRHI", "BASE", "BNRIND", "PCHG")
_OPS = ("lt", "le", "gt", "ge")


@lru_cache(maxsize=None)
def _load_named(name: str) -> dict[str, Any]:
    text = resources.files("cdisc.adam.derive").joinpath("data/" + CRITERIA_FILES[name]).read_text()
    return yaml.safe_load(text)


def grading_criteria(criteria: str | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The terms of a criteria set: a shipped name (``"CTCAEv5"``) or a mapping
    ``{term: {direction, unit, steps}}`` written in a spec (same format as the file)."""
    func = "derive_var_atoxgr_dir"
    if isinstance(criteria, str):
        if criteria not in CRITERIA_FILES:
            raise SpecError(f"{func}: unknown criteria {criteria!r}",
                            hint="shipped: " + ", ".join(CRITERIA_FILES)
                                 + "; or give the terms as a mapping")
        terms = _load_named(criteria)["terms"]
    elif isinstance(criteria, Mapping):
        terms = criteria.get("terms", criteria)
    else:
        raise SpecError(f"{func}: criteria must be a name or a mapping of terms")
    for term, crit in terms.items():
        if not isinstance(crit, Mapping) or crit.get("direction") not in ("L", "H"):
            raise SpecError(f"{func}: criteria term {term!r}: direction must be L or H")
        if not isinstance(crit.get("steps"), list) or not crit["steps"]:
            raise SpecError(f"{func}: criteria term {term!r}: steps must be a non-empty list")
    return dict(terms)


def _upper_text(values: pd.Series) -> pd.Series:
    """Stripped upper-case text; missing (or blank) stays missing."""
    text = values.astype("str").str.strip().str.upper()
    return text.where(values.notna() & (text != ""))


def _signif(x: np.ndarray, digits: int) -> np.ndarray:
    """R's ``signif``: round to ``digits`` significant digits (admiral compares values
    and bounds rounded to 15 digits, so 3 x 0.1 equals 0.3)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.floor(np.log10(np.abs(x)))
        scale = np.power(10.0, digits - 1 - np.where(np.isfinite(mag), mag, 0))
        out = np.round(x * scale) / scale
    return np.where(np.isfinite(x) & (x != 0), out, x)


def _role_bound(value: Any, roles: Mapping[str, np.ndarray], n: int, *,
                where: str) -> np.ndarray:
    func = "derive_var_atoxgr_dir"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.full(n, float(value))
    if isinstance(value, str) and value in roles:
        return roles[value]
    if isinstance(value, Mapping) and len(value) == 2 and value.get("of") in roles:
        if "x" in value:
            return float(value["x"]) * roles[value["of"]]
        if "plus" in value:
            return float(value["plus"]) + roles[value["of"]]
    raise SpecError(f"{func}: {where}: a bound must be a number, one of "
                    f"{', '.join(r for r in _ROLES if r not in ('BNRIND',))}, "
                    f"{{x: k, of: ROLE}} or {{plus: k, of: ROLE}}, not {value!r}")


def _step_mask(step: Mapping[str, Any], roles: Mapping[str, np.ndarray],
               missing: Mapping[str, np.ndarray], base_high: np.ndarray | None,
               digits: int, *, where: str) -> np.ndarray:
    """Where every condition of one step holds (a comparison with a missing side fails)."""
    func = "derive_var_atoxgr_dir"
    n = len(roles["AVAL"])
    hold = np.ones(n, dtype=bool)
    known = {"grade", "missing", "present", "baseline_high", "and", "var"} | set(_OPS)
    unknown = set(step) - known
    if unknown:
        raise SpecError(f"{func}: {where}: unknown condition(s) {', '.join(sorted(unknown))}")
    comparisons = [step] + list(step.get("and") or [])
    for i, cond in enumerate(comparisons):
        var = cond.get("var", "AVAL")
        if var not in roles:
            raise SpecError(f"{func}: {where}: var must be one of {', '.join(roles)}")
        for op in _OPS:
            if op not in cond:
                continue
            left = _signif(roles[var], digits)
            right = _signif(_role_bound(cond[op], roles, n, where=where), digits)
            with np.errstate(invalid="ignore"):
                res = {"lt": left < right, "le": left <= right, "gt": left > right,
                       "ge": left >= right}[op]
            hold &= res & ~np.isnan(left) & ~np.isnan(right)
    for r in step.get("missing") or []:
        hold &= missing[r]
    for r in step.get("present") or []:
        hold &= ~missing[r]
    if "baseline_high" in step:
        if base_high is None:
            raise SpecError(f"{func}: {where} needs the baseline range indicator "
                            "(bnrind_var)")
        hold &= base_high if step["baseline_high"] else ~base_high
    return hold


def derive_var_atoxgr_dir(dataset: pd.DataFrame, *, new_var: str, tox_description_var: str,
                          criteria_direction: str, criteria: str | Mapping[str, Any] = "CTCAEv5",
                          unit_var: str | None = None, check_units: bool = True,
                          analysis_var: str = "AVAL", lln_var: str = "ANRLO",
                          uln_var: str = "ANRHI", base_var: str = "BASE",
                          bnrind_var: str = "BNRIND", pchg_var: str = "PCHG",
                          abnormal_indicator: list[str] | None = None,
                          signif_dig: int = 15) -> pd.DataFrame:
    """Grade lab records in one direction from a criteria set given as data (e.g.
    ``ATOXGRL`` from ``ATOXDSCL`` = "Neutrophil count decreased" with NCI CTCAE v5.0).

    admiral: ``derive_var_atoxgr_dir()`` with ``meta_criteria = atoxgr_criteria_ctcv5``.

    Arguments:
        new_var: the grade to create ("0".."4", text), e.g. ``ATOXGRL`` / ``ATOXGRH``.
        tox_description_var: the CTCAE term of each record (``ATOXDSCL`` / ``ATOXDSCH``,
            usually mapped from PARAMCD in the spec).
        criteria_direction: ``"L"`` or ``"H"``: only the terms of this direction grade.
        criteria: a shipped set (``"CTCAEv5"``) or terms written in the spec in the
            same format (see ``adam/derive/data/ctcae_v5.yaml``).
        unit_var: the unit of ``analysis_var`` (e.g. ``AVALU``); a record whose unit
            differs (case-insensitive) from the term's unit gets a missing grade.
        check_units: a graded term with a unit and no ``unit_var`` is a SpecError
            unless this is False (the values are then assumed to be in the criteria's
            SI units).
        analysis_var, lln_var, uln_var, base_var, bnrind_var, pchg_var: the columns
            playing the roles AVAL, ANRLO, ANRHI, BASE, BNRIND, PCHG of the criteria;
            only roles the graded terms use must exist.
        abnormal_indicator: BNRIND values meaning "baseline abnormal high" (``["HIGH"]``).
        signif_dig: significant digits values and bounds are rounded to (admiral 15).

    Algorithm (per record, vectorised per term):
        1. Description missing or a term of the other direction: grade missing. A
           description that is no term of the criteria at all is a SpecError (a typo
           would otherwise silently leave records ungraded).
        2. ``analysis_var`` missing, or (with ``unit_var``) a unit other than the
           term's: grade missing.
        3. The term's steps in order (admiral's ``case_when``); the first whose
           conditions all hold gives the grade ("4".."1", or missing for a step with
           ``grade: null``, e.g. the normal range limit needed for grade 1 is missing).
        4. No step holds: "0".

    Rule: NCI CTCAE v5.0 laboratory terms (SI units); ADaMIG 1.3 ATOXGRL/ATOXGRH.
    """
    func = "derive_var_atoxgr_dir"
    if criteria_direction not in ("L", "H"):
        raise SpecError(f"{func}: criteria_direction must be 'L' or 'H', "
                        f"not {criteria_direction!r}")
    terms = grading_criteria(criteria)
    _require_columns(dataset, [tox_description_var, analysis_var], func=func,
                     arg="tox_description_var/analysis_var")
    desc = dataset[tox_description_var].astype(object)
    desc = desc.where(desc.notna(), None).to_numpy()
    present_terms = {d for d in set(desc) if d is not None and str(d).strip() != ""}
    unknown = sorted(str(d) for d in present_terms if d not in terms)
    if unknown:
        raise SpecError(f"{func}: {tox_description_var} value(s) {', '.join(map(repr, unknown))} "
                        f"are not terms of the criteria",
                        hint="terms: " + "; ".join(sorted(terms)))
    graded = [t for t in present_terms if terms[t]["direction"] == criteria_direction]
    columns = {"AVAL": analysis_var, "ANRLO": lln_var, "ANRHI": uln_var,
               "BASE": base_var, "PCHG": pchg_var}
    used: set[str] = set()
    need_bnrind = False
    for t in graded:
        for st in terms[t]["steps"]:
            for cond in [st] + list(st.get("and") or []):
                used.add(cond.get("var", "AVAL"))
                for op in _OPS:
                    b = cond.get(op)
                    if isinstance(b, str):
                        used.add(b)
                    elif isinstance(b, Mapping) and "of" in b:
                        used.add(b["of"])
            used.update(st.get("missing") or [])
            used.update(st.get("present") or [])
            need_bnrind |= "baseline_high" in st
    unknown_roles = sorted(used - set(columns))
    if unknown_roles:
        raise SpecError(f"{func}: criteria refer to unknown role(s) {', '.join(unknown_roles)}",
                        hint="roles: " + ", ".join(_ROLES))
    _require_columns(dataset, [columns[r] for r in sorted(used)], func=func,
                     arg="analysis_var/lln_var/uln_var/base_var/pchg_var")
    if need_bnrind:
        _require_columns(dataset, [bnrind_var], func=func, arg="bnrind_var")
    roles = {r: (pd.to_numeric(dataset[c], errors="coerce").to_numpy(float)
                 if c in dataset.columns else np.full(len(dataset), np.nan))
             for r, c in columns.items()}
    missing = {r: np.isnan(v) for r, v in roles.items()}
    base_high = None
    if need_bnrind:
        ind = [str(v).upper() for v in (abnormal_indicator or ["HIGH"])]
        base_high = _upper_text(dataset[bnrind_var]).isin(ind).to_numpy(bool)
    units = None
    with_unit = [t for t in graded if terms[t].get("unit")]
    if with_unit and unit_var is None and check_units:
        raise SpecError(f"{func}: terms {', '.join(sorted(with_unit))} are graded in given "
                        "units; name the unit column with unit_var",
                        hint="or set check_units: false when the values are known to be in "
                             "the criteria's SI units")
    if unit_var is not None:
        _require_columns(dataset, [unit_var], func=func, arg="unit_var")
        units = _upper_text(dataset[unit_var]).to_numpy(dtype=object, na_value=None)
    grade = np.full(len(dataset), None, dtype=object)
    for t in graded:
        crit = terms[t]
        rows = (desc == t) & ~missing["AVAL"]
        if units is not None and crit.get("unit"):
            rows &= units == str(crit["unit"]).upper()
        decided = ~rows
        for i, st in enumerate(crit["steps"]):
            hold = _step_mask(st, roles, missing, base_high, signif_dig,
                              where=f"criteria term {t!r} step {i + 1}") & ~decided
            g = st.get("grade")
            grade[hold] = None if g is None else str(int(g))
            decided |= hold
        grade[~decided] = "0"
    out = dataset.copy(deep=False)
    out[new_var] = pd.Series(grade, index=dataset.index, dtype="str")
    return out


def _combine_directions(dataset: pd.DataFrame, *, new_var: str, new_var_n: str | None,
                        lotox_description_var: str, hitox_description_var: str,
                        low_var: str, high_var: str) -> pd.DataFrame:
    func = "derive_var_atoxgr"
    _require_columns(dataset, [lotox_description_var, hitox_description_var, low_var,
                               high_var], func=func,
                     arg="lotox_description_var/hitox_description_var/low_var/high_var")

    def grades(col: str) -> np.ndarray:
        s = dataset[col].astype(object)
        vals = s.where(s.notna(), None).to_numpy()
        bad = sorted({str(v) for v in vals if v is not None and v not in ("0", "1", "2", "3", "4")})
        if bad:
            raise SpecError(f"{func}: {col} must hold '0'..'4' or missing, found "
                            f"{', '.join(map(repr, bad))}")
        return vals

    lo, hi = grades(low_var), grades(high_var)
    lo_desc_missing = dataset[lotox_description_var].isna().to_numpy()
    hi_desc_missing = dataset[hitox_description_var].isna().to_numpy()
    lo_pos = np.isin(lo, ["1", "2", "3", "4"])
    hi_pos = np.isin(hi, ["1", "2", "3", "4"])
    lo0, hi0 = lo == "0", hi == "0"
    out_v = np.full(len(dataset), None, dtype=object)
    decided = np.zeros(len(dataset), dtype=bool)
    for cond, value in (
            ((lo == None) & (hi == None), None),                                  # noqa: E711
            (lo_pos, np.char.add("-", lo.astype(str))),
            (hi_pos, hi),
            ((lo0 | lo_desc_missing) & hi0, "0"),
            ((hi0 | hi_desc_missing) & lo0, "0")):
        take = cond & ~decided
        out_v[take] = value[take] if isinstance(value, np.ndarray) else value
        decided |= take
    out = dataset.copy(deep=False)
    out[new_var] = pd.Series(out_v, index=dataset.index, dtype="str")
    if new_var_n:
        out[new_var_n] = pd.to_numeric(out[new_var], errors="coerce").astype(float)
    return out


def _threshold(value: Any, lln: np.ndarray, uln: np.ndarray, *, func: str, where: str) -> np.ndarray:
    """A bound: a number, ``"LLN"``/``"ULN"`` or ``{"x": k, "of": "LLN"|"ULN"}`` (k x the limit)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.full(len(lln), float(value))
    if value in ("LLN", "ULN"):
        return lln if value == "LLN" else uln
    if isinstance(value, Mapping) and set(value) == {"x", "of"} and value["of"] in ("LLN", "ULN"):
        return float(value["x"]) * (lln if value["of"] == "LLN" else uln)
    raise SpecError(f"{func}: {where} must be a number, LLN, ULN or {{x: k, of: LLN|ULN}}, not {value!r}")


def derive_var_atoxgr(dataset: pd.DataFrame, *,
                      criteria: Mapping[str, Mapping[str, Any]] | None = None,
                      new_var: str = "ATOXGR", new_var_n: str | None = "ATOXGRN",
                      param_var: str = "PARAMCD", analysis_var: str = "AVAL",
                      lln_var: str = "ANRLO", uln_var: str = "ANRHI",
                      lotox_description_var: str = "ATOXDSCL",
                      hitox_description_var: str = "ATOXDSCH",
                      low_var: str = "ATOXGRL", high_var: str = "ATOXGRH") -> pd.DataFrame:
    """Derive the analysis toxicity grade ``ATOXGR``.

    **Without** ``criteria`` (admiral: ``derive_var_atoxgr()``): combine the low and high
    direction grades made by :func:`derive_var_atoxgr_dir` into one signed grade:

        1. ``low_var`` and ``high_var`` both missing: missing;
        2. low grade 1-4: ``"-" + low`` (e.g. "-3");
        3. high grade 1-4: the high grade;
        4. high "0" and (low "0" or no low term): "0";
        5. low "0" and (high "0" or no high term): "0";
        6. otherwise missing (e.g. one direction 0, the other not gradable).
        ``new_var_n`` is the signed number (-4..4).

    **With** ``criteria`` (the original form, one direction per parameter, criteria in
    the spec):

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
    if criteria is None:
        return _combine_directions(dataset, new_var=new_var, new_var_n=new_var_n,
                                   lotox_description_var=lotox_description_var,
                                   hitox_description_var=hitox_description_var,
                                   low_var=low_var, high_var=high_var)
    if isinstance(criteria, str):
        raise SpecError(f"{func}: a named criteria set ({criteria!r}) grades by term: use "
                        "derive_var_atoxgr_dir for each direction, then derive_var_atoxgr "
                        "without criteria to combine them")
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
    out = dataset.copy(deep=False)
    text = np.where(np.isnan(grade), None, np.char.mod("%d", np.nan_to_num(grade).astype(int)).astype(object))
    out[new_var] = pd.Series(text, index=dataset.index, dtype="str").where(~np.isnan(grade), None)
    if new_var_n:
        out[new_var_n] = grade
    return out
