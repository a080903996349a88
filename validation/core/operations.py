"""CORE rule Operations (cdisc_rules_engine/operations/*, run by RuleProcessor.perform_rule_operations).

An operation computes ``$id`` before the Check runs and adds it to the evaluation frame as a
column: one value for the whole dataset (a number, a flag, a list of names: the same value on
every record), a value per record, or a value per group merged back on the grouping variables.
An operation on another domain reads that domain's (first) dataset as it is in the study.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import dates, stdmeta
from .grouping import by_distinct_rows, distinct_texts, group_rows, grouped_size, records_per_group
from .model import DatasetInfo

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Study

METADATA_COLUMNS = {"source_dataset_name", "source_row_number"}
RELATIONSHIP_DATASETS = {"RELREC", "RELSUB", "CO"}


class DomainNotFound(Exception):
    """The operation's domain is not in the study (CORE: the dataset is skipped)."""


class OperationFailed(Exception):
    """CORE: "rule evaluation error - operation failed" (an execution error)."""


class NeedsData(Exception):
    """The operation needs data we do not have (CT packages, define.xml): not executed."""


class Params:
    def __init__(self, op: dict, info: DatasetInfo, frame: pd.DataFrame):
        self.op = op
        self.operation_id = op.get("id")
        self.operator = op.get("operator")
        self.original_target = op.get("name")
        self.domain = op.get("domain", info.unsplit_name)
        wildcard = op.get("domain", info.wildcard)
        target = self.original_target
        if target and isinstance(target, str) and target.startswith("--") and self.domain:
            target = target.replace("--", wildcard)
        self.target = target
        if self.domain and self.domain.startswith(("SUPP", "SQ")) and self.domain.endswith("--") and info.rdomain:
            self.domain = self.domain.replace("--", info.rdomain)
        self.grouping = list(op.get("group", []) or [])
        self.grouping_aliases = op.get("group_aliases")
        self.filter = op.get("filter")
        self.regex = op.get("regex")
        self.key_name = op.get("key_name", "")
        self.key_value = op.get("key_value", "")
        self.value_is_reference = op.get("value_is_reference", False)
        self.dataframe = frame
        self.dataframe_info = info


def _replace_wildcard(name, domain):
    if isinstance(name, list):
        return [_replace_wildcard(x, domain) for x in name]
    return name.replace("--", domain) if isinstance(name, str) and "--" in name else name


def is_current_domain(frame: pd.DataFrame, domain: str) -> bool:
    if not domain:
        return True
    if domain in RELATIONSHIP_DATASETS or domain.startswith(("SUPP", "SQ")):
        return False
    return "DOMAIN" in frame.columns and len(frame) > 0 and frame["DOMAIN"].iloc[0] == domain


def run_operations(study: Study, info: DatasetInfo, frame: pd.DataFrame, operations: list[dict]) -> pd.DataFrame:
    if not operations:
        return frame
    frame = frame.copy(deep=False)  # copy-on-write (pandas 3): the shared frame is never changed
    for op in operations or []:
        p = Params(op, info, frame)
        fn = OPERATIONS.get(p.operator)
        if fn is None:
            raise NeedsData(f"operation {p.operator} is not implemented")
        if not is_current_domain(frame, p.domain):
            other = None
            for cand in study.infos:
                if cand.unsplit_name == p.domain or (
                        p.domain.endswith("--") and cand.unsplit_name.startswith(p.domain[:-2])):
                    other = cand
                    break
            if other is None:
                raise DomainNotFound(f"Domain {p.domain} does not exist. Operation: {p.operator}, "
                                     f"Target: {p.target}")
            p.dataframe = study.raw(other.name)
            p.dataframe_info = other
        key = None
        if p.operator in FRAME_INDEPENDENT and p.dataframe is not frame:
            # the result depends only on the other dataset and the parameters: shared by rules
            key = ("operation", p.dataframe_info.name, p.domain, p.target,
                   repr(sorted((k, v) for k, v in op.items() if k != "id")))
            hit = study.cache.get(key)
            if hit is not None:
                frame = _attach(study, p, frame, hit)
                continue
        try:
            result = fn(study, p, frame)
        except (DomainNotFound, KeyError, NeedsData):
            raise
        except OperationFailed:
            raise
        except Exception as exc:  # CORE wraps every other failure in OperationError
            raise OperationFailed(f"Operation: {p.operator}, Target: {p.target}, Domain: {p.domain}, "
                                  f"Error: {type(exc).__name__}: {exc}") from exc
        if key is not None:
            study.cache[key] = result
        frame = _attach(study, p, frame, result)
    return frame


#: operations whose result does not depend on the evaluated frame when they read another dataset
FRAME_INDEPENDENT = {
    "distinct", "variable_exists", "get_column_order_from_dataset", "max", "extract_metadata",
    "study_domains", "dataset_names", "domain_label", "domain_is_custom", "expected_variables",
    "required_variables", "get_column_order_from_library", "get_model_column_order",
    "get_model_filtered_variables", "get_dataset_filtered_variables", "variable_count",
}


class Grouped:
    """A per-group result: ``frame`` has the grouping columns and ``value_column``."""

    def __init__(self, frame: pd.DataFrame, value_column: str):
        self.frame = frame
        self.value_column = value_column


def _attach(study, p: Params, frame: pd.DataFrame, result) -> pd.DataFrame:
    """CORE BaseOperation._handle_operation_result."""
    if isinstance(result, pd.Series):
        frame[p.operation_id] = result
        return frame
    if isinstance(result, Grouped):
        res = result.frame.rename(columns={result.value_column: p.operation_id})
        if p.grouping_aliases:
            res = res.rename(columns={
                v: p.grouping_aliases[i] for i, v in enumerate(p.grouping)
                if i < len(p.grouping_aliases) and p.grouping_aliases[i] != v})
        grouping = _grouping_columns(p, frame)
        target_columns = _replace_wildcard(grouping + [p.operation_id], p.domain)
        grouping = _replace_wildcard(grouping, p.domain)
        for g in grouping:
            if g not in frame.columns:
                raise KeyError(g)
        right = res[target_columns]
        keys = right[grouping]
        if not keys.duplicated().any():
            # a left join on unique group keys: look each record's group up (NaN keys match NaN, as in merge)
            idx = group_rows(keys, frame, grouping)
            vals = right[p.operation_id].to_numpy(dtype=object)
            col = np.empty(len(frame), dtype=object)
            hit = idx >= 0
            col[hit] = vals[idx[hit]]
            col[~hit] = None
            col[hit & pd.isna(col)] = None
            out = frame.copy(deep=False)    # copy-on-write: the new column only
            out[p.operation_id] = col
            return out
        left = frame.assign(_row_order=np.arange(len(frame)))
        try:
            merged = left.merge(right, on=grouping, how="left")
        except ValueError as exc:
            raise OperationFailed(str(exc))
        merged[p.operation_id] = merged[p.operation_id].astype(object).where(merged[p.operation_id].notna(), None)
        merged = merged.sort_values("_row_order", kind="stable").drop(columns=["_row_order"])
        return merged
    if isinstance(result, dict):
        frame[p.operation_id] = [result] * len(frame)
        return frame
    if hasattr(result, "__iter__"):
        col = np.empty(len(frame), dtype=object)
        col[:] = [result] * len(frame)  # the same object on every record, as CORE
        frame[p.operation_id] = pd.Series(col, index=frame.index, dtype=object)
    else:
        frame[p.operation_id] = pd.Series([result] * len(frame), index=frame.index)
    return frame


def _grouping_columns(p: Params, frame: pd.DataFrame) -> list[str]:
    expanded = []
    for item in p.grouping:
        if item in frame.columns and len(frame):
            first = frame[item].iloc[0]
            if isinstance(first, (list, tuple)) and _one_text(frame[item], first):
                expanded.extend(first)
                continue
        expanded.append(item)
    expanded = list(dict.fromkeys(expanded))
    if not p.grouping_aliases:
        return expanded
    return [p.grouping_aliases[i] if i < len(p.grouping_aliases) else v for i, v in enumerate(expanded)]


def _one_text(col: pd.Series, first) -> bool:
    """``col.astype(str).nunique() == 1``: an operation's list is one object on every record
    (``_attach``), which needs no text made per record to see."""
    values = col.to_numpy(dtype=object)
    if all(v is first for v in values):
        return True
    return col.astype(str).nunique() == 1


def _filter(p: Params, df: pd.DataFrame) -> pd.DataFrame:
    for var, value in (p.filter or {}).items():
        if isinstance(value, str) and value.endswith("&"):
            df = df[df[var].astype(object).map(lambda x: isinstance(x, str)) & df[var].astype(str).str.startswith(value.rstrip("&"))]
        else:
            df = df[df[var] == value]
    return df


# ----------------------------------------------------------------------------- operations
def op_distinct(study, p: Params, frame):
    df = p.dataframe
    if p.filter:
        df = _filter(p, df)
    if not p.grouping:
        if p.value_is_reference:
            vals = _referenced_columns(study, df, p.target)
            data = pd.Series(vals, dtype=object).dropna().unique()
        else:
            data = df[p.target].dropna().unique()
        data = [x.decode() if isinstance(x, bytes) else x for x in data]
        return sorted(data)
    for g in p.grouping:
        df[g]  # KeyError when missing
    if len(df) == 0:
        empty = df[p.grouping].drop_duplicates().reset_index(drop=True)
        empty[p.target] = pd.Series(dtype=object)
        return Grouped(empty, p.target)
    if p.value_is_reference:
        vals = pd.Series(_referenced_columns(study, df, p.target), index=df.index, dtype=object)
        d = df[p.grouping].assign(_v=vals)
        out = d.groupby(p.grouping, as_index=False, sort=True)["_v"].agg(lambda x: sorted(x.dropna().unique()))
        return Grouped(out.rename(columns={"_v": p.target}), p.target)
    d = df.drop_duplicates(subset=p.grouping + [p.target])
    out = _sorted_lists(d, p.grouping, p.target)
    if out is None:
        out = d.groupby(p.grouping, as_index=False, sort=True)[p.target].agg(lambda x: sorted(x.dropna()))
    return Grouped(out, p.target)


def _sorted_lists(d: pd.DataFrame, grouping: list, target: str) -> pd.DataFrame | None:
    """``d.groupby(grouping, as_index=False, sort=True)[target].agg(lambda x: sorted(x.dropna()))``
    without a Python call per group: one sort of the whole column by (group, value), cut at the
    group boundaries. Only for a column of texts or numbers, where one sort orders each group as
    ``sorted`` does (values within a group are distinct after drop_duplicates); otherwise None.
    """
    col = d[target]
    vals = col.to_numpy(dtype=object)
    keep = ~pd.isna(vals)
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        v = col.to_numpy(dtype=float)
        rank = v
    else:
        codes, uniq = pd.factorize(vals[keep])
        if not all(isinstance(u, str) for u in uniq):
            return None
        order = np.argsort(np.asarray(uniq, dtype=object), kind="stable")
        r = np.empty(len(uniq), dtype=np.int64)
        r[order] = np.arange(len(uniq))
        rank = np.zeros(len(vals))
        rank[keep] = r[codes]
    gb = d.groupby(grouping, sort=True)
    g = gb.ngroup().fillna(-1).to_numpy().astype(np.int64)
    keys = d.groupby(grouping, as_index=False, sort=True)[target].size()[grouping]
    if not len(keys):                              # (pandas' own dtype for an empty result)
        return None
    take = keep & (g >= 0)
    idx = np.flatnonzero(take)
    idx = idx[np.lexsort((rank[idx], g[idx]))]
    counts = np.bincount(g[idx], minlength=len(keys))
    flat = col.iloc[idx].tolist()                  # Python scalars, as iterating the group gives
    ends = np.cumsum(counts).tolist()
    lists = np.empty(len(keys), dtype=object)
    lists[:] = [flat[a:b] for a, b in zip([0] + ends[:-1], ends)]
    keys[target] = lists
    return keys


def _referenced_columns(study, df, target):
    """CORE _check_column_exists_in_dataset: the target value when it is a column of the
    dataset named by the record's RDOMAIN."""
    cols = {info.name: set(study.raw(info.name).columns) for info in study.infos}
    names = df[target].astype(object).to_numpy()
    doms = df["RDOMAIN"].astype(object).to_numpy() if "RDOMAIN" in df.columns else [None] * len(df)
    return [n if (d in cols and n in cols[d]) else None for n, d in zip(names, doms)]


def op_record_count(study, p: Params, frame):
    df = p.dataframe
    filtered = _filter(p, df) if p.filter else None
    result = len(df) if filtered is None else len(filtered)
    if not p.grouping:
        return result
    grouping = []
    for col in p.grouping:
        col = _replace_wildcard(col, p.domain)
        if col in frame.columns and len(frame):
            first = frame[col].iloc[0]
            if isinstance(first, (list, tuple)):
                grouping.extend(first)
                continue
        grouping.append(col)
    grouping = list(dict.fromkeys(grouping))
    all_na = {}
    for col in grouping:
        if col in df.columns:
            if df[col].isna().all():
                all_na[col] = None
            # (each distinct text stripped once: the same test, without a strip per record)
            elif pd.api.types.is_string_dtype(df[col]) and distinct_texts(df[col]).str.strip().eq("").all():
                all_na[col] = ""
    if p.regex and filtered is None:
        # CORE _get_regex_grouped_counts: count on the regex-trimmed values, report the original ones
        rg = _regex_grouping(df, grouping, p.regex)
        g = df[grouping].copy(deep=False)
        g["size"] = records_per_group(rg, grouping)
        g = by_distinct_rows(g, grouping, lambda d: d.groupby(grouping, as_index=False, dropna=False).first())
    else:
        g = grouped_size(df, grouping)
    if filtered is not None:
        fb = _regex_grouping(filtered, grouping, p.regex) if p.regex else filtered
        fg = fb.groupby(grouping, as_index=False).size()
        g = g[grouping].merge(fg, on=grouping, how="left").fillna({"size": 0}).astype({"size": "int64"})
    for col, val in all_na.items():
        g[col] = val
    return Grouped(g, "size")


def _regex_grouping(df, grouping, rx):
    import re

    d = df[grouping].copy(deep=False)
    for col in grouping:
        nn = d[col].dropna()
        if len(nn) and isinstance(nn.iloc[0], str):
            try:
                if re.match(rx, nn.iloc[0]):
                    from .operators import map_texts

                    d[col] = map_texts(d[col], lambda x: re.match(rx, x).group(0) if re.match(rx, x) else x)
            except re.error:
                pass
    return d


def op_variable_exists(study, p, frame):
    return p.target in p.dataframe.columns


def op_get_column_order_from_dataset(study, p, frame):
    return [c for c in p.dataframe.columns if c not in METADATA_COLUMNS]


def _min_max_date(study, p, frame, which):
    original = p.dataframe[p.target]
    data = pd.to_datetime(original, format="ISO8601")
    if not p.grouping:
        if data.isna().all():
            value = ""
        else:
            idx = data.idxmin() if which == "min" else data.idxmax()
            value = dates.precision_format([original.loc[idx]])[0]
        return pd.Series(value, index=frame.index)
    keys = [p.dataframe[c] for c in p.grouping]
    d = pd.DataFrame({"_d": data, "_i": np.arange(len(data))})
    for i, k in enumerate(keys):
        d[f"_k{i}"] = k.to_numpy()
    kcols = [f"_k{i}" for i in range(len(keys))]
    d = d[d["_d"].notna()]
    d = d.sort_values(["_d", "_i"], ascending=[which == "min", True], kind="stable")
    first = d.drop_duplicates(subset=kcols, keep="first")
    fmt = dates.precision_format(original.to_numpy(dtype=object)[first["_i"].to_numpy()])
    table = dict(zip(first[kcols].itertuples(index=False, name=None) if len(kcols) > 1 else first[kcols[0]], fmt))
    if len(p.grouping) == 1:
        look = frame[p.grouping[0]]
    else:
        look = pd.Series(list(zip(*[frame[c] for c in p.grouping])), index=frame.index)
    return look.map(table).fillna("")


def op_min_date(study, p, frame):
    return _min_max_date(study, p, frame, "min")


def op_max_date(study, p, frame):
    return _min_max_date(study, p, frame, "max")


def op_study_domains(study, p, frame):
    return sorted({(i.domain or "") for i in study.infos})


def op_dataset_names(study, p, frame):
    return sorted({i.name for i in study.infos})


def _iso_date(x):
    try:
        return datetime.fromisoformat(x).date()
    except (TypeError, ValueError):
        return None


def op_dy(study, p, frame):
    dms = [i for i in study.infos if i.domain == "DM"]
    if not dms:
        raise DomainNotFound("Operation dy requires DM domain but Domain not found in datasets")
    dm = pd.concat([study.raw(i.name) for i in dms], ignore_index=True) if len(dms) > 1 else study.raw(dms[0].name)
    # CORE: the record's --DTC minus RFSTDTC of the same row number of frame ⋈ DM (the two are
    # aligned by row label, so a subject twice in DM shifts the RFSTDTCs, as in CORE)
    target = frame[p.target]
    merged = frame[["USUBJID"]].merge(dm[["USUBJID", "RFSTDTC"]], on="USUBJID", suffixes=("", "_dm"))
    uniq = pd.unique(pd.concat([target.astype(object), merged["RFSTDTC"].astype(object)]))
    table = {u: _iso_date(u) for u in uniq if isinstance(u, str)}
    a = pd.to_datetime(target.astype(object).map(table), errors="coerce").reset_index(drop=True)
    b = pd.to_datetime(merged["RFSTDTC"].astype(object).map(table), errors="coerce")
    days = (a - b).dt.days
    out = pd.Series(np.where(days < 0, days, days + 1)).astype("Int64").astype(object)
    out = out.where(days.notna().to_numpy(), "")
    return out  # positional, as CORE's (inner merge) result


def op_domain_label(study, p, frame):
    return study.library.domain_label(p.domain) or ""


def _library_order(study, p, key_name=None, key_value=None):
    info = p.dataframe_info
    vars_ = stdmeta.variables_from_standard(study.library, info, list(p.dataframe.columns))
    if key_name:
        vars_ = [v for v in vars_ if v.get(key_name) == key_value]
    return [_replace_wildcard(v["name"], p.domain) for v in vars_]


def op_get_column_order_from_library(study, p, frame):
    return _library_order(study, p, p.key_name or None, p.key_value)


def op_required_variables(study, p, frame):
    return _library_order(study, p, "core", "Req")


def op_expected_variables(study, p, frame):
    return _library_order(study, p, "core", "Exp")


def op_get_dataset_filtered_variables(study, p, frame):
    names = _library_order(study, p, p.key_name or None, p.key_value)
    cols = set(p.dataframe.columns)
    return [v for v in names if v in cols]


def _model_names(study, info: DatasetInfo, df: pd.DataFrame):
    vars_ = stdmeta.variables_from_standard_model(study.library, info, list(df.columns))
    if vars_ is None:
        raise OperationFailed("'NoneType' object is not iterable")
    return vars_


def op_get_model_column_order(study, p, frame):
    info = p.dataframe_info
    names = [_replace_wildcard(v["name"], info.wildcard) for v in _model_names(study, info, p.dataframe)]
    return list(dict.fromkeys(names))


def op_get_model_filtered_variables(study, p, frame):
    info = p.dataframe_info
    vars_ = [v for v in _model_names(study, info, p.dataframe) if v.get(p.key_name) == p.key_value]
    return [_replace_wildcard(v["name"], info.wildcard) for v in vars_]


def op_get_parent_model_column_order(study, p, frame):
    by_domain: dict = {}
    for i in study.infos:
        by_domain.setdefault(i.domain, []).append(i)
    rdomains = frame["RDOMAIN"] if "RDOMAIN" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    table = {}
    for rd in pd.unique(rdomains.astype(object)):
        parents = by_domain.get(rd, [])
        if not parents:
            raise DomainNotFound(f"Operation get_parent_model_column_order requires parent Domain {rd} "
                                 f"but Domain not found in datasets")
        info = parents[0]
        names = [_replace_wildcard(v["name"], info.wildcard) for v in _model_names(study, info, study.raw(info.name))]
        table[rd] = list(dict.fromkeys(names))
    col = np.empty(len(frame), dtype=object)
    for i, rd in enumerate(rdomains.astype(object)):
        col[i] = table[rd]
    return pd.Series(col, index=frame.index, dtype=object)


def op_variable_count(study, p, frame):
    last = {}
    for i in study.infos:
        last[i.unsplit_name] = i
    n = 0
    for i in last.values():
        name = _replace_wildcard(p.original_target, i.wildcard)
        n += 1 if name in study.raw(i.name).columns else 0
    return n


def op_domain_is_custom(study, p, frame):
    return not study.library.is_standard_domain(p.domain)


def op_extract_metadata(study, p, frame):
    meta = study.dataset_metadata_row(p.dataframe_info)
    return meta.get(p.target)


def op_max(study, p, frame):
    df = p.dataframe
    if not p.grouping:
        return df[p.target].max()
    out = df.groupby(p.grouping, as_index=False)[p.target].max()
    return Grouped(out, p.target)


def op_valid_codelist_dates(study, p, frame):
    """CORE ValidCodelistDates: the dates of the available CT packages of the standard's type."""
    packages = getattr(study.library, "ct_packages", None)
    if callable(packages):
        packages = packages()
    if not packages:
        return []
    types = {x.lower() + "ct" if not x.lower().endswith("ct") else x.lower() for x in (p.op.get("ct_package_types") or [])}
    types = types or {"sdtmct"}
    return sorted({pkg.split("-", 1)[-1] for pkg in packages if pkg.split("-", 1)[0] in types})


def op_codelist_terms(study, p, frame):
    raise NeedsData("operation codelist_terms needs CT packages (CORE 0.17.1 without CT: execution error)")


CT_ATTRIBUTES = {
    "Codelist CCODE": lambda pkg: {cl.code for cl in pkg.codelists.values()},
    "Codelist Value": lambda pkg: {cl.name for cl in pkg.codelists.values()},
    "Term CCODE": lambda pkg: {t.code for cl in pkg.codelists.values() for t in cl.terms},
    "Term Value": lambda pkg: {t.value for cl in pkg.codelists.values() for t in cl.terms},
    "Term Submission Value": lambda pkg: {t.value for cl in pkg.codelists.values() for t in cl.terms},
    "Term Preferred Term": lambda pkg: {t.preferred_term for cl in pkg.codelists.values() for t in cl.terms},
}


def op_get_codelist_attributes(study, p, frame):
    """CORE CodeListAttributes: per record, the set of ``ct_attribute`` values of the CT package
    the record names (``TSVCDREF`` CDISC -> sdtmct-<TSVCDVER>); an empty set when that package
    is not available (CORE without CT packages: every set is empty)."""
    attr = p.op.get("ct_attribute")
    if attr not in CT_ATTRIBUTES:
        raise OperationFailed(f"Unsupported ct_attribute: {attr}")
    df = p.dataframe
    version = df[p.op.get("version")].astype(object)
    target = df[p.target].astype(object)
    ver_ok = version.notna() & (version.astype(str).str.strip() != "")
    tv = target.where(target.notna(), "").astype(str).str.strip()
    prefix = tv.where(~tv.isin(["CDISC", "CDISC CT"]), "sdtmct")
    pkg = (prefix + "-" + version.astype(str)).where(ver_ok, "")
    table = {}
    get = getattr(study.library, "ct_package", None)
    for name in pd.unique(pkg):
        package = get(name) if (name and get is not None) else None
        table[name] = CT_ATTRIBUTES[attr](package) if package is not None else set()
    out = np.empty(len(pkg), dtype=object)
    for name, values in table.items():
        idx = np.flatnonzero((pkg == name).to_numpy())
        out[idx] = [values] * len(idx)  # the same set object for every record of a package
    return pd.Series(out, index=df.index, dtype=object)


OPERATIONS: dict[str, Callable] = {
    name[3:]: fn for name, fn in list(globals().items()) if name.startswith("op_") and callable(fn)
}
