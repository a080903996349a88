"""Evaluate CORE rules on a set of datasets, with CORE 0.17.1's semantics, vectorised.

Per rule and per dataset (a split domain counts once, evaluated on all its files together):

1. scope: Scope.Domains (with ``SUPP--``/``AP--`` wildcards and split datasets),
   Scope.Classes (from the library, or from the topic variable for a custom domain);
2. the evaluation frame for the Rule Type (records, dataset metadata, variable metadata,
   the study's domain list, values with variable metadata, ...);
3. Match Datasets joins, then Operations (``$id`` columns);
4. the Check tree: ``all``/``any``/``not`` over leaves, each a vectorised operator on whole
   columns; a leaf naming a missing column skips the dataset, except inside an ``any``
   where at least one branch could be evaluated;
5. findings per Sensitivity: Record (one per record), Dataset (one per dataset), Group
   (one per group of the Grouping Variables), with the Outcome's output variables (or the
   Check's variables) and their values, the 1-based record number in its file, USUBJID and
   --SEQ.

A rule the evaluator cannot run (an operator, operation or rule type it lacks, a rule that
needs define.xml or CT) is reported as ``not executed: <reason>``, never as passed.

Data are taken as CORE reads them: XPT/Dataset-JSON floats rounded to 15 decimals (Python
``round``), blanks as the reader gives them ("" from XPT, None from CORE's CSV test data).
Work that does not depend on the rule is shared between rules in one run (evaluation frames,
joins, operations on other datasets, leaf results on the same frame, parsed dates).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cdisc.gcpause import gc_paused

from . import builders, operations
from .catalogue import CoreRule, load_rules
from .library import Library, NullLibrary
from .model import Dataset, DatasetInfo, dataset_info
from .operators import OPERATORS, Env, MissingColumn, OperatorError
from .stdmeta import MetadataError, dataset_class

NULL_VALUES = ("", None)
FINDING_COLUMNS = ["core_id", "dataset", "record", "usubjid", "seq", "variables", "values", "message"]
STATUS_COLUMNS = ["core_id", "status", "reason", "findings", "datasets_with_findings", "evaluated",
                  "skipped", "errors", "dataset_status", "seconds", "cdisc_ids", "fda_ids"]
LIBRARY_OPERATIONS = {
    "expected_variables", "required_variables", "get_column_order_from_library", "get_model_column_order",
    "get_model_filtered_variables", "get_parent_model_column_order", "get_dataset_filtered_variables",
    "domain_label", "domain_is_custom",
}


class Skip(Exception):
    """The rule does not apply to this dataset (CORE execution status "skipped")."""


class ExecError(Exception):
    """CORE would report an execution error for this dataset."""


class NotExecuted(Exception):
    """Our evaluator lacks what this rule needs here."""


#: Frames built for one rule and kept for later ones (Value Check and metadata frames, Match
#: Datasets joins) and the column arrays computed on them: kept while their size (the frames'
#: own arrays, ~8 bytes a value, counted twice for what rules compute on them) stays under this.
#: Keeping everything made the CORE evaluation grow rule by rule (3,000 subjects: 0.5 GB of
#: data, 4.0 GB peak; cleared after every rule: 2.2 GB but 2.3x the time). A frame not kept is
#: built again when asked: the same frame, the same findings.
CACHE_BYTES = 768 * 2 ** 20


def kept_bytes(value) -> int:
    """What a kept value counts against CACHE_BYTES: its arrays' own bytes (not the objects they
    point to); a frame twice, for the column arrays and leaf results rules compute on it."""
    if isinstance(value, pd.DataFrame):
        return 2 * int(value.memory_usage(index=False, deep=False).sum())
    if isinstance(value, pd.Series):
        return int(value.memory_usage(index=False, deep=False))
    if isinstance(value, (np.ndarray, pd.Index)):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)) and len(value) < 16:
        return sum(kept_bytes(v) for v in value)
    arrays = [getattr(value, a, None) for a in ("values", "defined")]      # a Result
    return sum(int(a.nbytes) for a in arrays if isinstance(a, np.ndarray))


class KeptArrays(dict):
    """Column arrays and leaf results computed on a frame shared between rules (Env.columns_cache,
    Env.memo), kept for later rules while the study's kept values fit CACHE_BYTES; one that does
    not fit is not kept and is computed again when asked (the same array)."""

    def __init__(self, study: Study):
        super().__init__()
        self.study = study

    def __setitem__(self, key, value) -> None:
        size = kept_bytes(value)
        if self.study.cache_bytes + size > CACHE_BYTES:
            return
        self.study.cache_bytes += size
        super().__setitem__(key, value)


@dataclass
class Study:
    datasets: dict[str, Dataset]
    library: Library
    infos: list[DatasetInfo] = field(default_factory=list)
    cache_bytes: int = 0          # what the kept values count (CACHE_BYTES)

    def __post_init__(self):
        if not self.infos:
            self.infos = [dataset_info(d) for d in self.datasets.values()]
        self._meta_cache: dict[str, dict] = {}
        self._model_wild = None
        self.cache: dict = {}  # evaluation frames and dataset classes shared between rules
        self._raw: dict[str, pd.DataFrame] = {}

    def raw(self, name: str) -> pd.DataFrame:
        """The dataset's records as CORE reads them (floats rounded to 15 decimals for XPT and
        Dataset-JSON, as CORE's readers do); computed once."""
        hit = self._raw.get(name)
        if hit is not None:
            return hit
        ds = self.datasets[name]
        if ds.frame is None:
            raise builders.BuildError(ds.error or f"dataset {name} could not be read")
        frame = _round_floats(ds.frame) if ds.round_floats else ds.frame
        self._raw[name] = frame
        return frame

    def dataset_metadata_row(self, info: DatasetInfo) -> dict:
        """CORE get_dataset_metadata (Dataset Metadata Check columns)."""
        return {
            "dataset_size": info.size,
            "dataset_location": info.filename,
            "dataset_name": info.name,
            "dataset_label": info.label,
            "record_count": info.record_count,
            "is_ap": info.is_ap,
            "ap_suffix": info.ap_suffix,
            "domain": info.domain,
        }

    def model_wildcard_variables(self) -> set:
        if self._model_wild is None:
            names = set()
            lib = self.library
            for cls in ("GENERAL OBSERVATIONS", "INTERVENTIONS", "EVENTS", "FINDINGS", "FINDINGS ABOUT",
                        "ASSOCIATED PERSONS"):
                try:
                    names |= {v["name"] for v in lib.model_class_variables(cls) if v["name"].startswith("--")}
                except KeyError:
                    pass
            self._model_wild = names
        return self._model_wild

    def keep(self, key, value, shared=None) -> bool:
        """Keep ``value`` for later rules under ``key`` while the kept values fit CACHE_BYTES;
        ``shared``: the frame rules may memoise column arrays on (engine.validate_dataset)."""
        size = kept_bytes(shared if shared is not None else value)
        if self.cache_bytes + size > CACHE_BYTES:
            return False
        self.cache_bytes += size
        self.cache[key] = value
        if shared is not None:
            self.cache[("shared", id(shared))] = shared
        return True


def _round15(values: np.ndarray) -> np.ndarray:
    """Python's ``round(x, 15)`` (correctly rounded, unlike numpy's) once per distinct value."""
    out = values.copy()
    ok = np.isfinite(values)
    if ok.any():
        uniq, inverse = np.unique(values[ok], return_inverse=True)
        rounded = np.array([round(float(u), 15) for u in uniq], dtype=float)
        out[ok] = rounded[inverse]
    return out


def _round_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """CORE XPTReader._format_floats / DatasetJSONReader: every float rounded to 15 decimals."""
    cols = {}
    for c, dt in frame.dtypes.items():
        if pd.api.types.is_float_dtype(dt):
            a = frame[c].to_numpy(dtype=float)
            r = _round15(a)
            if not np.array_equal(a, r, equal_nan=True):
                cols[c] = r
        elif dt == object and len(frame):
            s = frame[c]
            if pd.api.types.infer_dtype(s, skipna=True) in ("floating", "mixed-integer-float", "mixed"):
                types = np.frompyfunc(type, 1, 1)(s.to_numpy(dtype=object))
                is_f = types == float
                if is_f.any():
                    a = s.to_numpy(dtype=object).copy()
                    a[is_f] = _round15(a[is_f].astype(float))
                    cols[c] = a
    if not cols:
        return frame
    out = frame.copy(deep=False)
    for c, v in cols.items():
        out[c] = v
    return out


# ----------------------------------------------------------------------------- scope
def _ap_or_supp(info: DatasetInfo, names: Iterable[str]) -> bool:
    names = set(names)
    if info.is_supp and names & {"SUPP--", "SQ--"}:
        return True
    return bool(info.is_ap and names & {"AP--", "APFA--"})


def applies_to_domain(info: DatasetInfo, rule: CoreRule) -> bool:
    d = rule.domains
    split_flag = d.get("include_split_datasets")
    inc, exc = d.get("Include") or [], d.get("Exclude") or []
    if not inc:
        included = not (split_flag is True and not info.is_split)
    else:
        included = info.domain in inc or info.name in inc or "ALL" in inc or _ap_or_supp(info, inc)
    if not exc:
        excluded = False
    else:
        excluded = (info.domain in exc or info.name in exc or info.unsplit_name in exc or "ALL" in exc
                    or _ap_or_supp(info, exc))
    if split_flag is True and info.is_split and not excluded:
        included = True
    if split_flag is False and info.is_split:
        excluded = True
    return included and not excluded


def applies_to_class(study: Study, info: DatasetInfo, rule: CoreRule) -> bool:
    inc, exc = rule.classes.get("Include") or [], rule.classes.get("Exclude") or []
    if inc and "ALL" in inc:
        return True
    cls = None
    if inc or exc:
        key = ("class", info.name)
        if key not in study.cache:
            cols = [v.name for v in study.datasets[info.name].variables]
            study.cache[key] = dataset_class(study.library, info, cols, parent_class=lambda: _ap_parent_class(study, info))
        cls = study.cache[key]
    included = True
    if inc and cls not in inc and not (cls == "FINDINGS ABOUT" and "FINDINGS" in inc):
        included = False
    excluded = bool(exc) and bool(cls) and (cls in exc or (cls == "FINDINGS ABOUT" and "FINDINGS" in exc))
    return included and not excluded


def _ap_parent_class(study, info):
    parent = next((i for i in study.infos if i.domain == info.ap_suffix), None)
    if parent is None:
        return None
    cols = [v.name for v in study.datasets[parent.name].variables]
    return dataset_class(study.library, parent, cols)


def applies_to_entity(info: DatasetInfo, rule: CoreRule) -> bool:
    ent = rule.scope.get("Entities") or {}
    if not ent:
        return True
    inc, exc = ent.get("Include") or [], ent.get("Exclude") or []
    return (info.name in inc or "ALL" in inc) and not (info.name in exc or "ALL" in exc)


# ----------------------------------------------------------------------------- check tree
def _prefix(v, wildcard):
    if isinstance(v, str) and v.startswith("--") and wildcard is not None:
        return v.replace("--", wildcard, 1)
    if isinstance(v, list):
        return [_prefix(x, wildcard) for x in v]
    return v


_RESOLVED: dict = {}


def _resolve(leaf: dict, wildcard: str) -> tuple[dict, tuple]:
    """A rule.yml leaf in CORE's operator form ({target, comparator, ...}) with ``--`` resolved,
    and a key identifying it (the same leaf in two rules gives the same key)."""
    key = (id(leaf), wildcard)
    hit = _RESOLVED.get(key)
    if hit is not None and hit[0] is leaf:
        return hit[1], hit[2]
    out = {}
    for k, v in leaf.items():
        if k == "operator":
            continue
        name = {"name": "target", "value": "comparator"}.get(k, k)
        out[name] = _prefix(v, wildcard) if isinstance(v, (str, list)) else v
    memo_key = (leaf["operator"], repr(sorted(out.items(), key=lambda kv: kv[0])))
    _RESOLVED[key] = (leaf, out, memo_key)
    return out, memo_key


class Result:
    """A boolean Check result over the frame's records, with pandas' alignment semantics.

    CORE combines pandas Series with ``&``, ``|`` and ``~``. A Series that does not cover
    every record (CORE computes a few operators as one value for the whole dataset, stored at
    index 0) is aligned first: a record missing on the left gives False; missing on the right
    gives False for ``&`` and the left value for ``|`` (so ``short | full`` differs from
    ``full | short``, as in pandas). ``values`` and ``defined`` are numpy arrays.
    """

    __slots__ = ("defined", "values")

    def __init__(self, values: np.ndarray, defined: np.ndarray | None):
        self.values = values
        self.defined = defined  # None: every record

    @classmethod
    def of(cls, series, n: int) -> Result:
        if isinstance(series, np.ndarray) and series.dtype == bool and len(series) == n:
            return cls(series, None)
        if not isinstance(series, pd.Series):
            series = pd.Series(series)
        idx = series.index
        vals = series.to_numpy()
        if vals.dtype != bool:
            vals = pd.Series(vals, dtype=object).map(lambda x: x is True or (isinstance(x, np.bool_) and bool(x))).to_numpy(dtype=bool)
        if isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1 and len(idx) == n:
            return cls(np.array(vals, dtype=bool), None)
        pos = np.asarray(idx)
        ok = np.array([isinstance(p, (int, np.integer)) and 0 <= p < n for p in pos], dtype=bool) if pos.dtype == object else (pos >= 0) & (pos < n)
        v = np.zeros(n, bool)
        d = np.zeros(n, bool)
        p = pos[ok].astype(np.int64)
        v[p] = vals[ok]
        d[p] = True
        return cls(v, d)

    def _d(self):
        return np.ones(len(self.values), bool) if self.defined is None else self.defined

    def __invert__(self):
        return Result(~self.values, self.defined)

    def __and__(self, other):
        if other is True:
            return self
        if other is False:
            return Result(np.zeros(len(self.values), bool), self.defined)
        if self.defined is None and other.defined is None:
            return Result(self.values & other.values, None)
        ld, rd = self._d(), other._d()
        return Result(self.values & ld & other.values & rd, ld | rd)

    def __rand__(self, other):  # True & result
        if other is True:
            return self
        return Result(np.zeros(len(self.values), bool), self.defined)

    def __or__(self, other):
        if other is False:
            return self
        if other is True:
            return Result(np.ones(len(self.values), bool), self.defined)
        if self.defined is None and other.defined is None:
            return Result(self.values | other.values, None)
        ld, rd = self._d(), other._d()
        return Result(ld & (self.values | (rd & other.values)), ld | rd)

    def mask(self) -> np.ndarray:
        return self.values if self.defined is None else self.values & self.defined


def _names_operation(leaf: dict) -> bool:
    def has(v):
        if isinstance(v, str):
            return v.startswith("$")
        if isinstance(v, list):
            return any(has(x) for x in v)
        if isinstance(v, dict):
            return any(has(x) for x in v.values())
        return False
    return any(has(v) for v in leaf.values())


def evaluate(node, env: Env):
    """business_rules check_conditions_recursively over :class:`Result` (pandas semantics)."""
    if isinstance(node, dict) and list(node.keys()) == ["not"]:
        return ~evaluate(node["not"], env)
    if isinstance(node, dict) and "all" in node and "operator" not in node:
        result = True
        for c in node["all"]:
            result = result & evaluate(c, env)
        return result
    if isinstance(node, dict) and "any" in node and "operator" not in node:
        result = False
        missing = []
        for c in node["any"]:
            try:
                result = evaluate(c, env) | result
            except KeyError as exc:
                missing.append(exc.args[0] if exc.args else None)
        if len(missing) == len(node["any"]):
            raise MissingColumn(", ".join(sorted({str(m) for m in missing})))
        return result
    op = node["operator"]
    leaf, key = _resolve(node, env.wildcard)
    memo = env.memo
    if memo is not None and env.memo_without_operations and (op in ("exists", "not_exists") or _names_operation(leaf)):
        # the leaf reads an operation's column (exists also looks inside their lists): not
        # shared with the frame the operations were added to
        memo = None
    if memo is not None:
        hit = memo.get(key)
        if hit is None:
            try:
                hit = Result.of(OPERATORS[op](env, leaf), env.n)
            except KeyError as exc:
                hit = exc
            memo[key] = hit
        if isinstance(hit, KeyError):
            raise hit
        return hit
    return Result.of(OPERATORS[op](env, leaf), env.n)


# ----------------------------------------------------------------------------- findings
def _null(v) -> bool:
    """``v in NULL_FLAVORS or pd.isna(v)`` (CORE's test for a reported value)."""
    if v is None:
        return True
    if isinstance(v, dict):
        return len(v) == 0
    if isinstance(v, (set, list, tuple)):
        return isinstance(v, set) and v == {None}
    try:
        return bool(pd.isna(v)) or v == ""
    except (TypeError, ValueError):
        return False


def _clean(v):
    """CORE _filter_null_values: nulls (NaN, None, "", pd.NA) -> None; element-wise in lists."""
    if isinstance(v, list):
        return [None if _null(x) else x for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    return None if _null(v) else v


def _targets(rule: CoreRule, info: DatasetInfo, columns) -> list[str]:
    wildcard = info.wildcard
    if rule.output_variables:
        out = []
        for v in rule.output_variables:
            name = v.replace("--", wildcard or "", 1)
            if name not in out:
                out.append(name)
        return out
    out = []
    for leaf in rule.leaves():
        t = leaf.get("name")
        if t is None:
            continue
        t = t.replace("--", wildcard or "")
        if t not in out:
            out.append(t)
    return out


def _list_value_targets(targets: list[str], rows: pd.DataFrame, columns) -> list[str]:
    out = list(targets)
    seen = set(out)
    cols = set(columns)
    for t in targets:
        if t not in rows.columns:
            continue
        s = rows[t]
        if s.dtype != object:
            continue
        for lst in s[~pd.Series(np.frompyfunc(id, 1, 1)(s.to_numpy(dtype=object)), index=s.index).duplicated()]:
            if not isinstance(lst, list):
                continue
            for v in lst:
                if isinstance(v, str) and v in cols and v not in seen:
                    out.append(v)
                    seen.add(v)
    return out


def _findings(rule: CoreRule, info: DatasetInfo, frame: pd.DataFrame, mask: np.ndarray, message: str) -> list[dict]:
    rows = frame[mask]
    targets = _targets(rule, info, frame.columns)
    targets = _list_value_targets(targets, rows, frame.columns)
    present = [t for t in targets if t in rows.columns]
    missing = [t for t in targets if t not in rows.columns]
    all_missing = not present and bool(missing)
    seq_col = f"{info.domain or ''}SEQ"
    presence = "domain presence" in rule.rule_type.lower()
    out = []

    def finding(dataset, record, usubjid, seq, value):
        if presence:
            dataset, record = "STUDY", None
        variables = list(targets) if targets else list(value)
        return {"core_id": rule.id, "dataset": dataset, "record": record, "usubjid": usubjid, "seq": seq,
                "variables": variables, "values": [value.get(v) for v in variables], "message": message}

    names = rows["source_dataset_name"] if "source_dataset_name" in rows.columns else pd.Series([info.name] * len(rows), index=rows.index)
    if rule.sensitivity == "Dataset":
        value = {}
        if not all_missing:
            first = rows.iloc[0]
            cols = present if present else [c for c in rows.columns]
            value = {c: _clean(first[c]) for c in cols}
        value.update({t: "Not in dataset" for t in missing})
        dataset = ", ".join(sorted({str(x or "") for x in names}))
        return [finding(dataset, None, None, None, value)]

    if rule.sensitivity == "Group":
        groups = [g.replace("--", info.wildcard or "") for g in rule.grouping_variables]
        miss = [g for g in groups if g not in rows.columns]
        if miss:
            return [finding("N/A", 0, "N/A", 0, {"ERROR": f"Grouping variables not found in dataset: {miss}"})]
        for keys, g in rows.groupby(groups, dropna=False, sort=True):
            r, idx = g.iloc[0], g.index[0]
            keys = keys if isinstance(keys, tuple) else (keys,)
            value = {t: "Not in dataset" for t in missing} if all_missing else {c: _clean(r[c]) for c in present}
            for gname, k in zip(groups, keys):
                value[gname] = k
            value.update({t: "Not in dataset" for t in missing})
            out.append(finding(str(r.get("source_dataset_name", info.name)), _row_number(r, idx),
                               _usubjid(r, rows), _seq(r, seq_col), value))
        return out

    # Record (and Study / undefined sensitivity)
    rec_numbers = _record_numbers(rows)
    usub = rows["USUBJID"].astype(object).map(lambda x: None if x is None else str(x)).to_numpy() if "USUBJID" in rows.columns else [None] * len(rows)
    if all_missing and "USUBJID" in rows.columns:
        usub = [None if _null(x) or pd.isna(x) else str(x) for x in rows["USUBJID"].astype(object)]
    seqs = _seqs(rows, seq_col)
    if all_missing:
        vals = [{t: "Not in dataset" for t in missing}] * len(rows)
    else:
        cols = present if present else list(rows.columns)
        recs = rows[cols].astype(object).to_dict("records")  # the flagged records only
        extra = {t: "Not in dataset" for t in missing}
        vals = [{**{k: _clean(v) for k, v in r.items()}, **extra} for r in recs]
    for name, rec, u, s, v in zip(names, rec_numbers, usub, seqs, vals):
        out.append(finding(str(name), rec, u, s, v))
    return out


def _record_numbers(rows: pd.DataFrame) -> list:
    if "row_number" in rows.columns:
        rn = rows["row_number"]
        base = rows["source_row_number"] if "source_row_number" in rows.columns else pd.Series(rows.index + 1, index=rows.index)
        return [int(x) for x in rn.where(rn.notna(), base)]
    if "source_row_number" in rows.columns:
        return [int(x) for x in rows["source_row_number"]]
    return [int(i) + 1 for i in rows.index]


def _row_number(r: pd.Series, idx) -> int:
    if "row_number" in r.index and pd.notna(r["row_number"]):
        return int(r["row_number"])
    if "source_row_number" in r.index:
        return int(r["source_row_number"])
    return int(idx) + 1


def _usubjid(r, rows):
    if "USUBJID" in r.index and not pd.isna(r["USUBJID"]):
        return str(r["USUBJID"])
    return None


def _seq(r, seq_col):
    if seq_col in r.index and not pd.isna(r[seq_col]) and r[seq_col] != "":
        try:
            return int(float(r[seq_col]))
        except (TypeError, ValueError):
            return None
    return None


def _seqs(rows, seq_col) -> list:
    if seq_col not in rows.columns:
        return [None] * len(rows)
    s = pd.to_numeric(rows[seq_col].astype(object).where(rows[seq_col].astype(object) != "", None), errors="coerce")
    return [None if pd.isna(x) else int(x) for x in s]


# ----------------------------------------------------------------------------- one rule
def _needs_library(rule: CoreRule) -> bool:
    if rule.rule_type == "Variable Metadata Check against Library Metadata":
        return True
    if any(op.get("operator") in LIBRARY_OPERATIONS for op in rule.operations):
        return True
    inc = rule.classes.get("Include") or []
    exc = rule.classes.get("Exclude") or []
    return bool(exc) or (bool(inc) and "ALL" not in inc)


VALUE_CHECKS = {"Value Check with Variable Metadata", "Value Check with Dataset Metadata"}
#: operators whose result on a record depends on that record only
ROW_WISE = {"equal_to", "not_equal_to", "equal_to_case_insensitive", "not_equal_to_case_insensitive",
            "is_contained_by", "is_not_contained_by", "empty", "non_empty", "matches_regex",
            "not_matches_regex", "longer_than", "shorter_than", "greater_than", "less_than",
            "greater_than_or_equal_to", "less_than_or_equal_to"}
COLUMN_LEVEL = {"variable_name", "variable_order_number", "variable_label", "variable_size", "variable_data_type",
                "variable_format", "dataset_size", "dataset_location", "dataset_name", "dataset_label",
                "record_count", "is_ap", "ap_suffix", "domain"}


def _value_check_columns(study: Study, rule: CoreRule, info: DatasetInfo):
    """The (file, variable) pairs whose values can be flagged by a Value Check rule, or None.

    A Value Check frame holds one row per value of the dataset (CORE melts it). When the
    Check is an ``all`` whose leaves on per-variable columns (variable_name, variable_data_type,
    $operations, ...) use record-wise operators, a variable failing one of them has no
    flagged value: its values are left out of the frame. The findings are the same, the frame
    a fraction of the size (Char variables only for CORE-000867, required ones for 000356)."""
    check = rule.check
    if not (isinstance(check, dict) and list(check) == ["all"]):
        return None
    op_ids = {op.get("id") for op in rule.operations}
    names = COLUMN_LEVEL | op_ids
    leaves = []
    for node in check["all"]:
        if "operator" not in node or node["operator"] not in ROW_WISE or node.get("name") not in names:
            continue
        value = node.get("value")
        if isinstance(value, str) and not node.get("value_is_literal") and value not in names and (
                value in ("variable_value", "row_number") or value.startswith("$")):
            continue
        leaves.append(node)
    if not leaves:
        return None
    try:
        cols = builders.value_check_columns_frame(study, info, rule)
        cols = operations.run_operations(study, info, cols, rule.operations)
        env = Env(cols.reset_index(drop=True), info.wildcard)
        result = True
        for node in leaves:
            result = result & evaluate(node, env)
        mask = result.mask() if isinstance(result, Result) else np.full(len(cols), bool(result))
    except Exception:  # noqa: BLE001  (no pruning: the full frame gives CORE's own outcome)
        return None
    kept = cols[mask]
    return {(a, b) for a, b in zip(kept["source_dataset_name"], kept["variable_name"])}


#: A Value Check frame of more values than this is built and checked a slice of variables at a
#: time when its Check is record by record (``_value_check_slices``)
SLICE_VALUES = 1_000_000


#: operations whose result is the same for every record and every slice of a dataset (the
#: standard's variable lists: library and domain only)
CONSTANT_OPERATIONS = {"required_variables", "expected_variables", "get_column_order_from_library"}
#: leaves on the frame's columns (exists: a column, or a name in a constant list)
_COLUMN_WISE = {"exists", "not_exists"}


def _row_wise(node) -> bool:
    """Whether a Check's outcome on a record depends on that record alone (all/any/not of
    ROW_WISE leaves, and exists on a column the frame has or not)."""
    if isinstance(node, dict) and list(node) == ["not"]:
        return _row_wise(node["not"])
    for group in ("all", "any"):
        if isinstance(node, dict) and group in node and "operator" not in node:
            return all(_row_wise(c) for c in node[group])
    return isinstance(node, dict) and node.get("operator") in ROW_WISE | _COLUMN_WISE


def _value_check_slices(study: Study, rule: CoreRule, info: DatasetInfo, keep) -> list[set] | None:
    """The (file, variable) pairs of a large Value Check frame in slices of about SLICE_VALUES
    values, or None to build it whole.

    CORE melts the dataset into one row per value (LB at 10,000 subjects: tens of millions of
    rows); when the Check is record by record, its operations constant (CONSTANT_OPERATIONS),
    with no Match Datasets, and the findings are per record, each slice's rows give the same outcome as in the whole frame
    and the frame is variable by variable, so the slices' findings in order are the whole
    frame's. Memory is then one slice, not the dataset times its variables."""
    if (any(op.get("operator") not in CONSTANT_OPERATIONS for op in rule.operations) or rule.match_datasets
            or rule.sensitivity in ("Dataset", "Group") or not _row_wise(rule.check)):
        return None
    pairs = []
    for i in builders._family(study, info, rule):
        n = len(study.raw(i.name))
        pairs += [((i.name, c), n) for c in study.raw(i.name).columns if keep is None or (i.name, c) in keep]
    if sum(n for _, n in pairs) <= SLICE_VALUES:
        return None
    slices, current, size = [], set(), 0
    for pair, n in pairs:
        if current and size + n > SLICE_VALUES:
            slices.append(current)
            current, size = set(), 0
        current.add(pair)
        size += n
    return slices + [current] if current else slices


#: the columns of a Value Check frame that differ between the records of one variable
_PER_RECORD = {"row_number", builders.SOURCE_ROW}


def _reads_records(node) -> bool:
    """Whether a Check reads a column that differs record by record besides variable_value."""
    if isinstance(node, dict) and "operator" not in node:
        return any(_reads_records(c) for v in node.values() for c in (v if isinstance(v, list) else [v]))
    return isinstance(node, dict) and (node.get("name") in _PER_RECORD or node.get("value") in _PER_RECORD)


def _prepared(study: Study, rule: CoreRule, info: DatasetInfo, frame: pd.DataFrame):
    """The rule's Match Datasets and operations on its frame: (base, frame, None), or (None,
    None, (status, reason)) as CORE reports the failure; ``base`` is the frame before operations."""
    try:
        base = builders.preprocess(study, info, frame, rule)
        return base, operations.run_operations(study, info, base, rule.operations), None
    except operations.DomainNotFound as exc:
        return None, None, ("skipped", f"operation domain not found: {exc}")
    except operations.NeedsData as exc:
        return None, None, ("not executed", str(exc))
    except (builders.PreprocessingError, builders.BuildError, operations.OperationFailed, MetadataError) as exc:
        return None, None, ("execution error", str(exc))
    except KeyError as exc:
        return None, None, ("skipped", f"Column not found in data: {exc.args[0] if exc.args else exc}")


def _checked(rule: CoreRule, env: Env):
    """The rule's Check on a frame: (mask over its records, None) or (None, (status, reason))."""
    try:
        results = evaluate(rule.check, env)
    except KeyError as exc:
        return None, ("skipped", f"Column not found in data: {exc.args[0] if exc.args else exc}")
    except (OperatorError, TypeError, ValueError, AttributeError) as exc:
        return None, ("execution error", f"{type(exc).__name__}: {exc}")
    return (results.mask() if isinstance(results, Result) else np.full(env.n, bool(results))), None


def _check(study: Study, rule: CoreRule, info: DatasetInfo, frame: pd.DataFrame):
    """Operations and Check on a slice: (frame with the operations' columns, mask, failure)."""
    _, frame, failed = _prepared(study, rule, info, frame)
    if failed:
        return frame, None, failed
    mask, failed = _checked(rule, Env(frame, info.wildcard))
    return frame, mask, failed


def _validate_slices(study: Study, rule: CoreRule, info: DatasetInfo, slices: list[set]):
    """validate_dataset of a Value Check whose frame is built and checked slice by slice.

    The Check is record by record and reads nothing that differs between a variable's records
    but the value (_reads_records), so a value's outcome is the same wherever it occurs: each
    slice is first checked on its distinct values (one row per variable and value, a few
    thousand rows where the records are millions), and only the variables with a flagged
    value are built record by record and checked again, which gives their findings exactly
    as the whole frame does. The common case, no finding, never builds the long frame."""
    build = builders.VALUE_CHECK_FRAMES[rule.rule_type]
    message = rule.message.replace("--", info.wildcard)
    distinct_first = not _reads_records(rule.check)
    found, rows = [], 0
    for keep in slices:
        try:
            if distinct_first:
                few = build(study, info, rule, keep, distinct=True).reset_index(drop=True)
                if few.empty:
                    continue
                rows += len(few)
                _, mask, failed = _check(study, rule, info, few)
                if failed:
                    return failed[0], failed[1], []
                keep = {(a, b) for a, b in zip(few.loc[mask, builders.SOURCE_NAME], few.loc[mask, "variable_name"])}
                if not keep:
                    continue
            frame = build(study, info, rule, keep)
        except (MetadataError, builders.BuildError) as exc:
            return "execution error", f"evaluation dataset failed to build: {exc}", []
        if frame is None or frame.empty:
            continue
        rows += len(frame)
        frame = frame.reset_index(drop=True)
        frame, mask, failed = _check(study, rule, info, frame)
        if failed:
            return failed[0], failed[1], []
        if mask.any():
            found += _findings(rule, info, frame, mask, message)
    if not rows:
        return "skipped", "Dataset is empty after preprocessing and operations", []
    return ("issue reported", None, found) if found else ("success", None, [])


def validate_dataset(study: Study, rule: CoreRule, info: DatasetInfo) -> tuple[str, str | None, list[dict]]:
    """(status, reason, findings) of one rule on one dataset; status as CORE's executionStatus."""
    if not applies_to_domain(info, rule):
        return "skipped", "doesn't apply to domain", []
    try:
        if not applies_to_class(study, info, rule):
            return "skipped", "doesn't apply to class", []
    except MetadataError as exc:
        return "execution error", str(exc), []
    if not applies_to_entity(info, rule):
        return "skipped", "doesn't apply to entity", []
    try:
        if rule.rule_type in VALUE_CHECKS:
            keep = _value_check_columns(study, rule, info)
            slices = _value_check_slices(study, rule, info, keep)
            if slices is not None:
                return _validate_slices(study, rule, info, slices)
            frame = builders.BUILDERS[rule.rule_type](study, info, rule, keep)
        else:
            frame = builders.BUILDERS[rule.rule_type](study, info, rule)
    except (MetadataError, builders.BuildError) as exc:
        return "execution error", f"evaluation dataset failed to build: {exc}", []
    base, frame, failed = _prepared(study, rule, info, frame)
    if failed:
        return failed[0], failed[1], []
    if frame is None or frame.empty:
        return "skipped", "Dataset is empty after preprocessing and operations", []
    shared = study.cache.get(("shared", id(frame))) is frame
    # operations add $ columns to a shared frame and keep its records: what the Check computes
    # on the frame's own columns is shared too
    derived = not shared and frame is not base and study.cache.get(("shared", id(base))) is base \
        and len(frame) == len(base) and frame.index.equals(base.index)
    frame = frame.reset_index(drop=True) if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0 else frame
    env = Env(frame, info.wildcard)
    if shared or derived:  # a frame shared between rules: leaf results and column arrays are shared too
        key = id(base) if derived else id(frame)
        env.memo = study.cache.setdefault(("memo", key, info.wildcard), KeptArrays(study))
        env.columns_cache = study.cache.setdefault(("cols", key), KeptArrays(study))
        env.memo_without_operations = derived
    mask, failed = _checked(rule, env)
    if failed:
        return failed[0], failed[1], []
    if not mask.any():
        return "success", None, []
    message = rule.message.replace("--", info.wildcard)
    return "issue reported", None, _findings(rule, info, frame, mask, message)


def run_rule(study: Study, rule: CoreRule) -> tuple[list[dict], dict]:
    t0 = time.perf_counter()
    status = {"core_id": rule.id, "status": "executed", "reason": None, "findings": 0, "datasets_with_findings": [],
              "evaluated": 0, "skipped": 0, "errors": {}, "dataset_status": {}, "seconds": 0.0,
              "cdisc_ids": rule.cdisc_ids, "fda_ids": rule.fda_ids}
    reason = rule.unsupported()
    if reason is None and _needs_library(rule) and not getattr(study.library, "available", True):
        reason = "needs the standard's metadata (library) and none was given"
    if reason:
        status.update(status="not executed", reason=reason)
        return [], status
    findings: list[dict] = []
    seen: set[str] = set()
    not_executed = []
    for info in study.infos:
        if info.unsplit_name in seen and not rule.include_split:
            continue
        seen.add(info.unsplit_name)
        st, why, found = validate_dataset(study, rule, info)
        status["dataset_status"][info.name] = st if why is None or st != "skipped" else f"skipped: {why}"
        if st == "skipped":
            status["skipped"] += 1
        elif st == "execution error":
            status["errors"][info.name] = why
        elif st == "not executed":
            not_executed.append(why)
        else:
            status["evaluated"] += 1
        if found and "domain presence" in rule.rule_type.lower():
            # a study-level finding: CORE repeats it for every dataset in scope; report it once
            seen_values = {(repr(f["variables"]), repr(f["values"])) for f in findings}
            found = [f for f in found if (repr(f["variables"]), repr(f["values"])) not in seen_values]
        if found:
            findings.extend(found)
            status["datasets_with_findings"].append(info.name)
    if not_executed and not status["evaluated"] and not findings:
        status.update(status="not executed", reason=not_executed[0])
    status["findings"] = len(findings)
    status["seconds"] = time.perf_counter() - t0
    return findings, status


def run_core_rules(datasets: Mapping[str, Dataset], library: Library | None = None,
                   rule_ids: Iterable[str] | None = None, rules: Iterable[CoreRule] | None = None,
                   claim: Callable[[], int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate CORE rules on ``datasets`` (name -> Dataset).

    Returns ``(findings, rule_status)``: one finding per row (core_id, dataset, record
    (1-based, None for a dataset-level finding), usubjid, seq, variables, values, message)
    and one status per rule (executed / not executed with the reason, findings, datasets
    evaluated/skipped, execution errors by dataset, seconds, CDISC and FDA rule ids).

    ``claim``: for several processes sharing the rules, returns the position of the next
    rule not yet taken (a shared counter); this process evaluates only the rules it claims.
    """
    library = library if library is not None else NullLibrary()
    ds = {k.upper(): v for k, v in sorted(datasets.items(), key=lambda kv: kv[0].upper())}
    study = Study(ds, library)
    rules = list(rules) if rules is not None else load_rules()
    if rule_ids is not None:
        wanted = set(rule_ids)
        rules = [r for r in rules if r.id in wanted]
    all_findings, statuses = [], []
    with gc_paused():  # thousands of short-lived pandas objects, no cycles worth collecting mid-run
        for rule in (rules if claim is None else _claimed(rules, claim)):
            f, s = run_rule(study, rule)
            all_findings.extend(f)
            statuses.append(s)
    fdf = pd.DataFrame(all_findings, columns=FINDING_COLUMNS)
    fdf["record"] = fdf["record"].astype("Int64")
    fdf["seq"] = fdf["seq"].astype("Int64")
    sdf = pd.DataFrame(statuses, columns=STATUS_COLUMNS)
    return fdf, sdf


def _cost_class(rule: CoreRule) -> int:
    """How much work a rule is, roughly, whatever the study: grouped operations (counts and
    distinct values per subject and test over every record) first, then Value Checks (every
    value of a dataset), then rules that join other datasets, then the rest."""
    if any(op.get("group") for op in rule.operations):
        return 0
    if rule.rule_type in VALUE_CHECKS:
        return 1
    return 2 if rule.match_datasets else 3


def _claimed(rules: list, claim: Callable[[], int]):
    """The rules in the order processes sharing the counter take them: the costly ones first,
    so that two processes do not wait at the end for one long rule (10,000 subjects:
    CORE-001034 alone takes 13 s). The outcomes are put back in the catalogue's order
    (core_bridge), so the order taken never shows."""
    order = sorted(range(len(rules)), key=lambda i: (_cost_class(rules[i]), i))
    while (i := claim()) < len(rules):
        yield rules[order[i]]


def csv_rows(findings: pd.DataFrame) -> list[tuple[str, str, str, str, str]]:
    """Findings as CORE's CSV report rows (core_id, Dataset, Record, Variable, Value)."""
    out = []
    for rec in findings.itertuples(index=False):
        record = "" if pd.isna(rec.record) else str(int(rec.record))
        for var, val in zip(rec.variables, rec.values):
            out.append((rec.core_id, rec.dataset, record, var, core_str(val)))
    return out


def core_str(v) -> str:
    """CORE's report rendering of a value: str(), nulls and blanks as ""."""
    if v is None:
        return ""
    s = str(v)
    if s.strip() == "" or s.strip().lower() == "nan":
        return ""
    return s
