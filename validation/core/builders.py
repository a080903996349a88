"""The frame a rule is evaluated on, per Rule Type (cdisc_rules_engine/dataset_builders), and
the Match Datasets joins (cdisc_rules_engine/utilities/dataset_preprocessor.py, data_processor.py).

Every frame carries ``source_dataset_name`` and ``source_row_number`` (CORE's tag_source): a
split domain (LBCH + LBHE, SDTMIG section 4.1.7) is evaluated as one frame and each finding
names the file and record it came from.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import stdmeta
from .model import DatasetInfo
from .operators import custom_str

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Study

SOURCE_NAME, SOURCE_ROW = "source_dataset_name", "source_row_number"


class PreprocessingError(Exception):
    """CORE: "rule evaluation error - preprocessing failed" (an execution error)."""


class BuildError(Exception):
    """CORE: "evaluation dataset failed to build" (an execution error)."""


def tag(df: pd.DataFrame, name: str) -> pd.DataFrame:
    df = df.copy(deep=False)     # copy-on-write (pandas 3): the columns are shared until changed
    df[SOURCE_NAME] = name
    df[SOURCE_ROW] = np.arange(1, len(df) + 1)
    return df


def _family(study: Study, info: DatasetInfo, rule) -> list[DatasetInfo]:
    fam = [i for i in study.infos if i.unsplit_name == info.unsplit_name]
    if len(fam) > 1 and not rule.include_split:
        return fam
    return [info]


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def record_frame(study, info, rule) -> pd.DataFrame:
    """The records of the dataset (all files of a split domain), tagged; shared between rules
    (nothing modifies it in place: joins and operations work on copies)."""
    fam = _family(study, info, rule)
    key = ("records",) + tuple(i.name for i in fam)
    cached = study.cache.get(key)
    if cached is None:
        cached = _concat([tag(study.raw(i.name), i.name) for i in fam])
        study.cache[key] = cached
        study.cache[("shared", id(cached))] = cached
    return cached


def dataset_metadata_frame(study, info, rule) -> pd.DataFrame:
    rows = [tag(pd.DataFrame([study.dataset_metadata_row(i)]), i.name) for i in _family(study, info, rule)]
    return _concat(rows)


def variables_frame(study, info: DatasetInfo) -> pd.DataFrame:
    ds = study.datasets[info.name]
    vars_ = ds.variables
    return pd.DataFrame({
        "variable_name": [v.name for v in vars_],
        "variable_order_number": list(range(1, len(vars_) + 1)),
        "variable_label": [v.label for v in vars_],
        "variable_size": [v.length for v in vars_],
        "variable_data_type": [v.type for v in vars_],
        "variable_format": [v.format or "" for v in vars_],
    })


def _needs_max_size(rule) -> bool:
    return "variable_max_size" in rule.text


def variable_metadata_frame(study, info, rule) -> pd.DataFrame:
    frames = []
    for i in _family(study, info, rule):
        f = variables_frame(study, i)
        if _needs_max_size(rule):
            raw = study.raw(i.name)
            sizes = {c: (raw[c].dropna().astype(str).str.len().max() if c in raw.columns else 0) for c in f["variable_name"]}
            f["variable_max_size"] = [0 if pd.isna(sizes.get(c)) else sizes.get(c) for c in f["variable_name"]]
        frames.append(tag(f, i.name))
    return _concat(frames)


def domain_presence_frame(study, info, rule) -> pd.DataFrame:
    key = ("presence", info.name)
    hit = study.cache.get(key)
    if hit is None:
        row = {}
        for i in study.infos:
            row[i.unsplit_name] = i.filename
        hit = tag(pd.DataFrame([row]), info.name)
        study.cache[key] = hit
        study.cache[("shared", id(hit))] = hit
    return hit


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values of a column, each an element of it; floats by their bits (-0.0 and
    0.0, or two NaN payloads, stay apart), so a Check gives each what it gives its copies."""
    if values.dtype.kind == "f":
        return pd.unique(values.view(np.int64)).view(np.float64).astype(object)
    return pd.unique(values.astype(object))


def _values_long(study, i: DatasetInfo, keep=None, distinct: bool = False) -> pd.DataFrame:
    """CORE ValuesDatasetBuilder: one row per (record, variable), as ``melt`` orders them
    (variable by variable); ``keep``: only these variables (rows of the others cannot be
    flagged, see engine._value_check_columns). ``distinct``: one row per distinct value of
    each variable instead (row_number 0): engine._validate_slices finds with it the variables
    that have a flagged value."""
    raw = study.raw(i.name)
    n = len(raw)
    cols = [c for c in raw.columns if keep is None or (i.name, c) in keep]
    if distinct:
        values = []
        for c in cols:                # kept for the other Value Check rules: a few values per variable
            hit = study.cache.get(("distinct", i.name, c))
            if hit is None:
                hit = _distinct(raw[c].to_numpy(dtype=np.float64 if raw[c].dtype.kind == "f" else object))
                study.cache[("distinct", i.name, c)] = hit
            values.append(hit)
        sizes = [len(v) for v in values]
        return pd.DataFrame({
            "row_number": np.zeros(sum(sizes), dtype=np.int64),
            "variable_name": np.repeat(np.array(cols, dtype=object), sizes),
            "variable_value": np.concatenate(values) if cols else [],
        })
    long = pd.DataFrame({
        "row_number": np.tile(np.arange(1, n + 1), len(cols)),
        "variable_name": np.repeat(np.array(cols, dtype=object), n),
        "variable_value": np.concatenate([raw[c].to_numpy(dtype=object) for c in cols]) if cols else [],
    })
    return long


def _left_join_one(long: pd.DataFrame, meta: pd.DataFrame, key: str) -> pd.DataFrame:
    """``long.merge(meta, how="left", on=key)`` when every key of ``long`` is in ``meta`` once:
    then the merge keeps ``long``'s rows and order and each gets its ``meta`` row, which a
    position take gives without hashing the long frame's keys. Otherwise the merge itself."""
    mk = meta[key]
    others = [c for c in meta.columns if c != key]
    if (not len(long) or mk.duplicated().any() or set(others) & set(long.columns)
            or meta[key].dtype != object and not pd.api.types.is_string_dtype(meta[key])):
        return long.merge(meta, how="left", on=key)
    pos = pd.Index(mk.to_numpy(dtype=object)).get_indexer(long[key].to_numpy(dtype=object))
    if (pos < 0).any():
        return long.merge(meta, how="left", on=key)
    out = long.copy()
    for c in others:
        out[c] = meta[c].take(pos).reset_index(drop=True).set_axis(out.index)
    return out


def value_check_variable_metadata_frame(study, info, rule, keep=None, distinct: bool = False) -> pd.DataFrame:
    frames = []
    for i in _family(study, info, rule):
        long = _values_long(study, i, keep, distinct)
        meta = variables_frame(study, i)
        merged = _left_join_one(long, meta, "variable_name")
        merged["variable_value_length"] = None  # CORE: data types are Char/Num, never integer/float/text
        frames.append(tag(merged, i.name))
    return _concat(frames)


def value_check_dataset_metadata_frame(study, info, rule, keep=None, distinct: bool = False) -> pd.DataFrame:
    frames = []
    for i in _family(study, info, rule):
        long = _values_long(study, i, keep, distinct)
        for k, v in study.dataset_metadata_row(i).items():
            # a scalar broadcast gives the column [v] * n gives (same dtype), without a list of
            # n objects to convert (n = records x variables)
            long[k] = v if len(long) else [v] * len(long)
        frames.append(tag(long, i.name))
    return _concat(frames)


def library_variables_frame(study, info: DatasetInfo) -> pd.DataFrame:
    """CORE get_library_variables_metadata, columns prefixed library_variable_."""
    raw = study.raw(info.name)
    vars_ = stdmeta.variables_from_standard(study.library, info, list(raw.columns))
    rows = []
    for v in vars_:
        rows.append({
            "name": v["name"].replace("--", info.domain or ""),
            "label": v.get("label", ""),
            "ordinal": str(v.get("ordinal", "")),
            "role": v.get("role", ""),
            "core": v.get("core", ""),
            "simpleDatatype": v.get("type", ""),
            "ccode": "",
            "has_codelist": False,
        })
    df = pd.DataFrame(rows, columns=["name", "label", "ordinal", "role", "core", "simpleDatatype", "ccode", "has_codelist"])
    return df.add_prefix("library_variable_")


def variable_library_frame(study, info, rule) -> pd.DataFrame:
    """CORE VariablesMetadataWithLibraryMetadataDatasetBuilder: the file's variables (left)
    joined with the library's on the name, blanks for no library variable, plus whether each
    variable has empty values / is empty. Built from plain lists (a few dozen rows)."""
    frames = []
    for i in _family(study, info, rule):
        raw = study.raw(i.name)
        lib = {}
        for v in stdmeta.variables_from_standard(study.library, i, list(raw.columns)):
            name = v["name"].replace("--", i.domain or "")
            lib.setdefault(name, v)
        rows = []
        for pos, var in enumerate(study.datasets[i.name].variables, start=1):
            lv = lib.get(var.name)
            if var.name in raw.columns:
                a = raw[var.name].to_numpy(dtype=object)
                nulls = pd.isna(a) | (a == "")
                has_empty, is_empty = bool(nulls.any()), bool(nulls.all())
            else:
                has_empty = is_empty = True
            rows.append({
                "variable_name": var.name, "variable_order_number": pos, "variable_label": var.label,
                "variable_size": var.length if var.length is not None else "", "variable_data_type": var.type,
                "variable_format": var.format or "",
                "library_variable_name": lv["name"].replace("--", i.domain or "") if lv else "",
                "library_variable_label": lv.get("label", "") if lv else "",
                "library_variable_data_type": lv.get("type", "") if lv else "",
                "library_variable_role": lv.get("role", "") if lv else "",
                "library_variable_core": lv.get("core", "") if lv else "",
                "library_variable_ccode": "",
                "library_variable_has_codelist": False if lv else "",
                "library_variable_order_number": str(lv.get("ordinal", "")) if lv else "",
                "variable_has_empty_values": has_empty, "variable_is_empty": is_empty,
            })
        frames.append(tag(pd.DataFrame(rows, dtype=object), i.name))
    return _concat(frames)


def value_check_columns_frame(study, info, rule) -> pd.DataFrame:
    """One row per variable with what a Value Check frame holds besides the value itself
    (variable metadata, or dataset metadata, and the file it comes from)."""
    key = ("value columns", rule.rule_type) + tuple(i.name for i in _family(study, info, rule))
    hit = study.cache.get(key)
    if hit is None:
        hit = _value_check_columns_frame(study, info, rule)
        study.cache[key] = hit
    return hit


def _value_check_columns_frame(study, info, rule) -> pd.DataFrame:
    frames = []
    for i in _family(study, info, rule):
        meta = pd.DataFrame({"variable_name": np.array(list(study.raw(i.name).columns), dtype=object)})
        if rule.rule_type == "Value Check with Dataset Metadata":
            for k, v in study.dataset_metadata_row(i).items():
                meta[k] = [v] * len(meta)
        else:
            meta = meta.merge(variables_frame(study, i), how="left", on="variable_name")
        frames.append(meta.assign(source_dataset_name=i.name))
    return _concat(frames)


#: A Value Check frame has a row per value (records x variables): above this many rows it is
#: not kept for later rules. Such frames are rarely asked for again (each rule prunes its own
#: variables) and keeping them made memory grow rule by rule (10,000 subjects: over 20 GB);
#: built again when asked, the frame and the findings are the same.
KEEP_ROWS = 1_000_000


def _cached(fn):
    """Frames that depend only on the datasets (not on the rule) are built once per study."""
    def wrapper(study, info, rule, keep=None):
        fam = _family(study, info, rule)
        key = (fn.__name__,) + tuple(i.name for i in fam) + (_needs_max_size(rule) if fn is variable_metadata_frame else None,)
        if keep is not None:
            key = key + (tuple(sorted(keep)),)
        hit = study.cache.get(key)
        if hit is None:
            hit = fn(study, info, rule) if keep is None else fn(study, info, rule, keep)
            if len(hit) <= KEEP_ROWS or fn not in (value_check_variable_metadata_frame,
                                                  value_check_dataset_metadata_frame):
                study.keep(key, hit, shared=hit)
        return hit
    wrapper.__name__ = fn.__name__
    return wrapper


BUILDERS = {
    "Record Data": record_frame,
    "Dataset Metadata Check": _cached(dataset_metadata_frame),
    "Variable Metadata Check": _cached(variable_metadata_frame),
    "Domain Presence Check": domain_presence_frame,
    "Value Check with Variable Metadata": _cached(value_check_variable_metadata_frame),
    "Value Check with Dataset Metadata": _cached(value_check_dataset_metadata_frame),
    "Variable Metadata Check against Library Metadata": _cached(variable_library_frame),
}
#: the Value Check frames themselves (not kept for later rules): engine._validate_slices
VALUE_CHECK_FRAMES = {
    "Value Check with Variable Metadata": value_check_variable_metadata_frame,
    "Value Check with Dataset Metadata": value_check_dataset_metadata_frame,
}
NEEDS_DEFINE = {
    "Define Item Metadata Check against Library Metadata",
    "Dataset Contents Check against Define XML",
    "Dataset Metadata Check against Define XML",
    "Domain Presence Check against Define XML",
    "Variable Metadata Check against Define XML",
    "Variable Metadata Check against Define XML and Library Metadata",
    "Value Check against Define XML Variable",
    "Value Check against Define XML VLM",
}


# ----------------------------------------------------------------------------- Match Datasets
def _sided(keys, side):
    return [k if isinstance(k, str) else (k.get(side) or k.get(side.capitalize())) for k in keys]


def _repl(keys, domain):
    return [k.replace("--", domain or "") for k in keys]


def preprocess(study: Study, info: DatasetInfo, frame: pd.DataFrame, rule) -> pd.DataFrame:
    """CORE DatasetPreprocessor.preprocess: merge the rule's Match Datasets into the frame."""
    datasets = rule.match_datasets
    if not datasets:
        return frame
    refs = rule.referenced_names
    names = tuple(d["Name"] for d in datasets)
    key = ("joined", id(frame), info.name, repr(datasets),
           tuple(sorted({t for t in refs if isinstance(t, str) and t.startswith(tuple(f"{n}." for n in names))})))
    cached = study.cache.get(key)
    if cached is not None and cached[0] is frame:
        return cached[1]
    result = _preprocess(study, info, frame, rule, datasets, refs)
    study.keep(key, (frame, result), shared=result)
    return result


def _preprocess(study, info, frame, rule, datasets, refs):
    result = frame.copy(deep=False)  # copy-on-write (pandas 3)
    merged_domains: set = set()
    for d in datasets:
        name = d["Name"]
        is_child = bool(d.get("Child"))
        metas: list[DatasetInfo] = []
        if is_child:
            if name[:4] in ("SUPP", "SQAP") and info.is_supp and info.rdomain:
                if name == "SUPP--" or name == info.name:
                    metas = [x for x in study.infos if x.domain == info.rdomain]
            elif name == info.domain or name == info.name:
                metas = _find_parent(study, result, d)
        else:
            if name == info.unsplit_name:
                continue
            target_domain = info.domain or info.name
            metas = [x for x in study.infos if x.domain == name or x.name == name or x.unsplit_name == name
                     or (name == "SUPP--" and not info.is_supp and x.rdomain == target_domain)]
        for m in metas:
            if m.domain in merged_domains:
                continue
            other = study.raw(m.name).copy()
            referenced = {t[len(name) + 1:] for t in refs if isinstance(t, str) and t.startswith(f"{name}.")}
            other.columns = [f"{name}.{c}" if c in referenced else c for c in other.columns]
            if is_child:
                result = _child_merge(info, result, other, m, d.get("Keys", []))
                merged_domains.add(m.domain)
            else:
                result = _merge(study, info, result, other, d)
                merged_domains.add(m.domain if m.domain else m.name)
    return result


def _find_parent(study, frame, d):
    out = []
    if "RDOMAIN" in frame.columns:
        doms = set(frame["RDOMAIN"].unique())
        out = [x for x in study.infos if x.domain in doms]
    else:
        keys = d.get("Keys", [])
        out = [x for x in study.infos if all(k in (x.first_record or {}) for k in keys)]
    return out


def _merge(study, info: DatasetInfo, left: pd.DataFrame, right: pd.DataFrame, d: dict) -> pd.DataFrame:
    keys = d.get("Keys", [])
    rname = d["Name"]
    lkeys = _repl(_sided(keys, "left"), info.domain)
    rkeys = _repl(_sided(keys, "right"), rname)
    if rname == "RELREC":
        try:
            return merge_relrec(study, left, info.domain, right, d.get("Wildcard", "**"))
        except KeyError:
            raise
        except Exception as exc:  # noqa: BLE001  (CORE: any failure is a preprocessing error)
            raise PreprocessingError(f"Failed to merge RELREC dataset: {type(exc).__name__}: {exc}")
    if rname.startswith(("SUPP", "SQ")):
        try:
            return merge_supp(left, right)
        except PreprocessingError:
            raise
        except Exception as exc:  # noqa: BLE001  (CORE: a preprocessing error)
            raise PreprocessingError(f"Failed to merge supplemental/qualifier dataset: {type(exc).__name__}: {exc}")
    how = d.get("Join Type", "inner")
    for k in lkeys:
        if k not in left.columns:
            raise KeyError(k)
    for k in rkeys:
        if k not in right.columns:
            raise KeyError(k)
    try:
        res = left.merge(right, how=how, left_on=lkeys, right_on=rkeys, suffixes=("", f".{rname}"),
                         indicator=False if how == "inner" else f"_merge_{rname}")
    except Exception as exc:  # noqa: BLE001  (CORE: a preprocessing error)
        raise PreprocessingError(f"Failed to merge datasets: {type(exc).__name__}: {exc}")
    res = res.reset_index(drop=True)
    if how == "left":
        ind = f"_merge_{rname}"
        lo = (res[ind] == "left_only").to_numpy()
        if lo.any():
            cols = res.columns.symmetric_difference(left.columns.union([ind]))
            for c in cols:
                res[c] = res[c].astype(object)
                res.loc[lo, c] = None
    return res


def _drop_cols(df, cols):
    return df.drop(columns=[c for c in cols if c in df.columns])


def _pivot_supp(supp: pd.DataFrame) -> pd.DataFrame:
    """CORE DataProcessor.process_supp: one column per QNAM, one row per parent key set."""
    qnams = list(pd.unique(supp["QNAM"]))
    excluded = set(qnams) | {"QNAM", "QVAL", "QLABEL"}
    group_cols = [c for c in supp.columns if c not in excluded]
    dup = supp.groupby(group_cols + ["QNAM"], dropna=False, as_index=False).size()
    if (dup["size"] > 1).any():
        raise PreprocessingError("Multiple records with the same QNAM match a single parent record")
    keys = supp[group_cols].astype(object).where(supp[group_cols].notna(), "\x00NA")
    gid = keys.groupby(group_cols, dropna=False, sort=True).ngroup()
    base = supp.assign(_g=gid.to_numpy()).drop_duplicates("_g").sort_values("_g")[group_cols + ["_g"]]
    wide = supp.assign(_g=gid.to_numpy()).pivot_table(index="_g", columns="QNAM", values="QVAL", aggfunc="first")
    out = base.set_index("_g").join(wide).reset_index(drop=True)
    for q in qnams:
        if q not in out.columns:
            out[q] = pd.NA
        out[q] = out[q].astype(object).where(out[q].notna(), pd.NA)
    return out


def merge_supp(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """CORE DataProcessor.merge_pivot_supp_dataset."""
    static = ["STUDYID", "USUBJID", "APID", "POOLID", "SPDEVID"]
    qnams = list(pd.unique(right["QNAM"]))
    idvars = pd.unique(right["IDVAR"])
    if len(idvars) == 1:
        supp = _pivot_supp(right)
        key = supp["IDVAR"].iloc[0] if len(supp) else None
        blank = key is None or pd.isna(key) or str(key).strip() == ""
        common = [k for k in static if k in left.columns and k in supp.columns]
        left = left.copy()
        if not blank:
            temp = f"{key}__norm"
            left[temp] = left[key]
            common.append(key)
            cur = supp.rename(columns={"IDVARVAL": key}).drop(columns=["IDVAR"])
            if pd.api.types.is_numeric_dtype(left[key]):
                left[key] = left[key].map(custom_str)
                cur[key] = cur[key].map(custom_str)
        else:
            cur = _drop_cols(supp, ["IDVAR", "IDVARVAL"])
        merged = pd.merge(left, cur, how="left", on=common, suffixes=("", "_supp"))
        _validate_qnam(merged, qnams, common)
        for q in qnams:
            if q in merged.columns:
                merged[q] = merged[q].astype(object).where(merged[q].notna(), pd.NA)
        if not blank:
            merged[key] = merged[temp]
            merged = merged.drop(columns=[temp])
        return merged
    return _merge_supp_multi(left, right, static, qnams)


def _validate_qnam(data, qnams, common):
    for q in qnams:
        if q not in data.columns:
            continue
        chk = data.dropna(subset=[q])
        if len(chk) and (chk.groupby(common).size() > 1).any():
            raise PreprocessingError(f"Multiple records with the same QNAM '{q}' match a single parent record")


def _merge_supp_multi(left, right, static, qnams):
    result = left.copy()
    for idvar in pd.unique(right["IDVAR"]):
        g = right[right["IDVAR"] == idvar].copy()
        gq = list(pd.unique(g["QNAM"]))
        wide = g.pivot_table(index=g.index, columns="QNAM", values="QVAL", aggfunc="first")
        for q in gq:
            g[q] = wide[q].reindex(g.index).astype(object) if q in wide.columns else pd.NA
        g = _drop_cols(g, ["QNAM", "QVAL", "QLABEL", "IDVAR"]).rename(columns={"IDVARVAL": idvar})
        common = [k for k in static if k in result.columns and k in g.columns] + [idvar]
        agg = {c: (lambda x: x.dropna().iloc[0] if not x.dropna().empty else pd.NA) for c in g.columns if c not in common}
        g = g.groupby(common, as_index=False, dropna=False).agg(agg) if agg else g.drop_duplicates(common)
        drop = [c for c in g.columns if c in result.columns and c not in common]
        g = g.drop(columns=drop)
        result[idvar] = result[idvar].astype(str)
        g[idvar] = g[idvar].astype(str)
        result = pd.merge(result, g, how="left", on=common, suffixes=("", "_supp"))
    for q in qnams:
        if q not in result.columns:
            continue
        chk = result.dropna(subset=[q])
        if len(chk) == 0:
            continue
        idv = right[right["QNAM"] == q]["IDVAR"].iloc[0]
        keys = [k for k in static if k in result.columns] + [idv]
        if (chk.groupby(keys).size() > 1).any():
            raise PreprocessingError(f"Multiple records with the same QNAM '{q}' match a single parent record")
    return result


def _child_merge(info: DatasetInfo, left, right, m: DatasetInfo, keys):
    is_supp = info.is_supp
    rdomain_ds = "RDOMAIN" in left.columns and not is_supp
    has_idvar = "IDVAR" in keys or "IDVARVAL" in keys
    if (is_supp or rdomain_ds) and has_idvar:
        return _merge_rdomain(info, left, right, m, keys)
    lk = _repl(_sided(keys, "left"), info.domain)
    rk = _repl(_sided(keys, "right"), m.domain)
    try:
        return left.merge(right, how="left", left_on=lk, right_on=rk, suffixes=("", f".{m.domain}"))
    except KeyError:
        raise
    except Exception as exc:  # noqa: BLE001  (CORE: a preprocessing error)
        raise PreprocessingError(f"Merge operation failed during child merge: {exc}")


def _parent_key_column(parent: pd.DataFrame, idvar: str, right_domain) -> str | None:
    for col in (idvar, f"{idvar}.{right_domain}", f"{right_domain}.{idvar}"):
        if col in parent.columns:
            return col
    return None


def _numeric_column(pcol: pd.Series) -> bool:
    """Whether CORE compares IDVARVAL with this parent column as numbers: a numeric dtype, or
    an object column whose values are numbers (CORE converts IDVARVAL to the value's type)."""
    if pcol.dtype.kind in "fiu":
        return True
    if pcol.dtype == object:
        kind = pd.api.types.infer_dtype(pcol, skipna=True)
        return kind in ("floating", "integer", "mixed-integer-float")
    return False


def _child_keys(idvarval: pd.Series, pcol: pd.Series) -> pd.Series:
    """IDVARVAL converted the way CORE compares it with the parent's IDVAR column."""
    text = idvarval.astype(object).map(lambda x: None if x is None or pd.isna(x) else str(x).strip())
    if _numeric_column(pcol):
        return pd.to_numeric(text, errors="coerce")
    return text


def _merge_rdomain(info, left, right, m: DatasetInfo, keys):
    """CORE _merge_rdomain_dataset: each child record joined to the first parent record its
    IDVAR/IDVARVAL point at, among the parent records that share the other keys; the parent's
    values win where both have a column. Vectorised per distinct IDVAR."""
    if info.is_supp and info.rdomain:
        child = left
    elif "RDOMAIN" in left.columns:
        child = left[left["RDOMAIN"] == m.domain]
    else:
        child = left
    if len(child) == 0:
        return left
    std = [k for k in keys if k not in ("IDVAR", "IDVARVAL")]
    lk = _repl(_sided(std, "left"), info.domain)
    rk = _repl(_sided(std, "right"), m.domain)
    pairs = [(a, b) for a, b in zip(lk, rk) if a in child.columns and b in right.columns]
    child = child.reset_index(drop=True)
    match = np.full(len(child), -1, dtype=np.int64)  # position in ``right``
    parent = right.reset_index(drop=True).assign(_ppos=np.arange(len(right)))
    idvar = child["IDVAR"] if "IDVAR" in child.columns else pd.Series([None] * len(child))
    idval = child["IDVARVAL"] if "IDVARVAL" in child.columns else pd.Series([None] * len(child))
    has_id = (idvar.notna() & idval.notna()).to_numpy()
    std_ok = np.ones(len(child), bool)
    for a, _ in pairs:
        std_ok &= child[a].notna().to_numpy()
    for v in pd.unique(idvar[has_id]):
        rows = np.flatnonzero(has_id & (idvar == v).to_numpy())
        pc = _parent_key_column(parent, v, m.domain)
        if pc is None:
            continue
        ck = _child_keys(idval.iloc[rows], parent[pc])
        pk = pd.to_numeric(parent[pc], errors="coerce") if _numeric_column(parent[pc]) else parent[pc].astype(object)
        lft = pd.DataFrame({"_cpos": rows, "_key": ck.to_numpy()})
        rgt = pd.DataFrame({"_ppos": parent["_ppos"].to_numpy(), "_key": pk.to_numpy()})
        on = ["_key"]
        for i, (a, b) in enumerate(pairs):
            lft[f"_k{i}"] = child[a].iloc[rows].to_numpy()
            rgt[f"_k{i}"] = parent[b].to_numpy()
            on.append(f"_k{i}")
        rgt = rgt[rgt["_key"].notna()].drop_duplicates(subset=on, keep="first")
        hit = lft.merge(rgt, on=on, how="left")
        found = hit["_ppos"].notna().to_numpy()
        if (~found).any() and not _numeric_column(parent[pc]):
            pass
        elif (~found).any():  # CORE's text fallback on a numeric column: "1.0" == "1.0"
            miss = hit[~found]
            rs = rgt.assign(_key=parent[pc].astype(str).to_numpy()[rgt["_ppos"].to_numpy()])
            ls = miss.drop(columns=["_ppos"]).assign(_key=idval.iloc[miss["_cpos"].to_numpy()].astype(str).str.strip().to_numpy())
            h2 = ls.merge(rs.drop_duplicates(subset=on, keep="first"), on=on, how="left")
            hit.loc[~found, "_ppos"] = h2["_ppos"].to_numpy()
        ok = hit["_ppos"].notna().to_numpy()
        match[hit["_cpos"].to_numpy()[ok]] = hit["_ppos"].to_numpy()[ok].astype(np.int64)
    if pairs:
        no_id = ~has_id
        if no_id.any():
            firsts = parent.drop_duplicates(subset=[b for _, b in pairs], keep="first")
            lft = pd.DataFrame({"_cpos": np.flatnonzero(no_id)})
            for i, (a, b) in enumerate(pairs):
                lft[f"_k{i}"] = child[a].to_numpy()[no_id]
            rgt = pd.DataFrame({"_ppos": firsts["_ppos"].to_numpy()})
            for i, (a, b) in enumerate(pairs):
                rgt[f"_k{i}"] = firsts[b].to_numpy()
            hit = lft.merge(rgt, on=[f"_k{i}" for i in range(len(pairs))], how="left")
            ok = hit["_ppos"].notna().to_numpy()
            match[hit["_cpos"].to_numpy()[ok]] = hit["_ppos"].to_numpy()[ok].astype(np.int64)
    got = match >= 0
    cols = {c: child[c].to_numpy() for c in child.columns}
    src = right.reset_index(drop=True)
    for c in right.columns:
        if not got.any() and c in cols:
            continue
        base = np.array(cols[c], dtype=object) if c in cols else np.full(len(child), None, dtype=object)
        if got.any():
            base[got] = src[c].to_numpy(dtype=object)[match[got]]
        cols[c] = base
    merged = pd.DataFrame(cols)
    if info.is_supp:
        return merged
    remaining = left.drop(left.index[left["RDOMAIN"] == m.domain]) if "RDOMAIN" in left.columns else left.iloc[0:0]
    return pd.concat([remaining, merged], ignore_index=True)


def _float_keys(series: pd.Series) -> pd.Series:
    """CORE convert_float_merge_keys: the column as text of floats when all of it converts
    ("2" and 2.0 -> "2.0"), else as text."""
    try:
        return series.astype(float).astype(str)
    except (TypeError, ValueError):
        return series.astype(str)


def _pair_key(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """CORE filter_if_present's filter value: float(value) as text when it converts, the
    value otherwise; and whether it filters at all (a non-blank, non-zero value)."""
    num = pd.to_numeric(values, errors="coerce").astype(float)
    text = values.astype(object).where(num.isna(), num.astype(str))
    text = text.where(text.notna(), None)
    has = values.notna().to_numpy() & (values.astype(str) != "").to_numpy()
    has &= ~(num == 0).to_numpy()  # bool(0.0) is False: no filter
    return text.astype(object), has


def _relrec_side(g, gU, gU_has, frame, keyU, col, vals) -> pd.DataFrame:
    """(pair, record) of the records each RELREC pair points at on one side (CORE
    filter_if_present on USUBJID, then on IDVAR = IDVARVAL), as joins."""
    cand = pd.DataFrame({"_pid": g["_pid"].to_numpy(), "_u": gU.to_numpy(), "_uhas": gU_has})
    recs = pd.DataFrame({"_pos": np.arange(len(frame)), "_u": keyU.to_numpy()})
    if vals is not None:
        vkey, vhas = _pair_key(g[vals])
        cand["_v"], cand["_vhas"] = vkey.to_numpy(), vhas
        recs["_v"] = _float_keys(frame[col]).to_numpy()
    else:
        cand["_vhas"] = False
    parts = []
    for (uhas, vhas), c in cand.groupby(["_uhas", "_vhas"], sort=False):
        on = (["_u"] if uhas else []) + (["_v"] if vhas else [])
        if on:
            parts.append(c[["_pid", *on]].merge(recs[["_pos", *on]], on=on)[["_pid", "_pos"]])
        else:
            parts.append(c[["_pid"]].merge(recs[["_pos"]], how="cross"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["_pid", "_pos"])


def merge_relrec(study, left: pd.DataFrame, domain: str, relrec: pd.DataFrame, wildcard: str) -> pd.DataFrame:
    """CORE DataProcessor.merge_relrec_datasets, vectorised per relationship kind.

    Each RELREC pair (a record of this domain related to a record of another domain by the
    same RELID) joins the left records it points at (USUBJID, IDVAR = IDVARVAL) with the right
    domain's records it points at, right columns prefixed ``RELREC.`` (``--`` variables of the
    model renamed with the rule's Wildcard: RELREC.FAOBJ). Without IDVARVALs the records are
    joined on the IDVAR values themselves. The pairs of one kind (right domain, IDVARs, with
    or without IDVARVAL) are joined at once."""
    rl = relrec[relrec["RDOMAIN"] == domain]
    lidx = pd.MultiIndex.from_arrays([rl["USUBJID"], rl["RELID"]])
    aidx = pd.MultiIndex.from_arrays([relrec["USUBJID"], relrec["RELID"]])
    rr = relrec[aidx.isin(lidx)]
    rr = rr[rr["RDOMAIN"] != domain]
    pairs = rl.merge(rr, on=["STUDYID", "USUBJID", "RELID"], suffixes=("_LEFT", "_RIGHT")).reset_index(drop=True)
    if len(pairs) == 0:
        return pd.DataFrame()
    pairs["_pid"] = np.arange(len(pairs))
    model_wild = study.model_wildcard_variables()
    left = left.reset_index(drop=True).assign(_lpos=np.arange(len(left)))
    lU = _float_keys(left["USUBJID"])
    pU, pU_has = _pair_key(pairs["USUBJID"])
    # CORE: ``if IDVARVAL_LEFT and IDVARVAL_RIGHT`` (Python truth: "" and None are false, NaN true)
    both = pd.Series([bool(a) and bool(b) if a is not None and b is not None else False
                      for a, b in zip(pairs["IDVARVAL_LEFT"].astype(object), pairs["IDVARVAL_RIGHT"].astype(object))])
    pairs["_both"] = both.to_numpy()
    out = []
    for (rdom, ivl, ivr, with_vals), grp in pairs.groupby(
            ["RDOMAIN_RIGHT", "IDVAR_LEFT", "IDVAR_RIGHT", "_both"], sort=False, dropna=False):
        meta = next((x for x in study.infos if x.domain == rdom), None)
        if meta is None:
            continue
        right = study.raw(meta.name).reset_index(drop=True)
        ren = {}
        for c in right.columns:
            t = c
            if c.startswith(rdom) and c.replace(rdom, "--", 1) in model_wild:
                t = c.replace(rdom, wildcard, 1)
            ren[c] = f"RELREC.{t}"
        right = right.assign(_rpos=np.arange(len(right)))
        rU = _float_keys(right["USUBJID"])
        g = grp.reset_index(drop=True)
        gU, gU_has = pU.iloc[grp.index].reset_index(drop=True), pU_has[grp.index]

        if with_vals:
            ls = _relrec_side(g, gU, gU_has, left, lU, ivl, "IDVARVAL_LEFT")
            rs = _relrec_side(g, gU, gU_has, right, rU, ivr, "IDVARVAL_RIGHT")
            j = ls.merge(rs, on="_pid", suffixes=("_l", "_r"))
            lrec = left.iloc[j["_pos_l"].to_numpy()].reset_index(drop=True)
            rrec = right.iloc[j["_pos_r"].to_numpy()].reset_index(drop=True).rename(columns=ren)
            ok = (lrec["STUDYID"].to_numpy() == rrec[ren["STUDYID"]].to_numpy()) & \
                 (lrec["USUBJID"].to_numpy() == rrec[ren["USUBJID"]].to_numpy())
            res = pd.concat([lrec, rrec], axis=1)[ok]
            res = res.assign(_pid=j["_pid"].to_numpy()[ok])
        else:
            ls = _relrec_side(g, gU, gU_has, left, lU, None, None)
            rs = _relrec_side(g, gU, gU_has, right, rU, None, None)
            j = ls.merge(rs, on="_pid", suffixes=("_l", "_r"))
            lrec = left.iloc[j["_pos_l"].to_numpy()].reset_index(drop=True)
            rrec = right.iloc[j["_pos_r"].to_numpy()].reset_index(drop=True).rename(columns=ren)
            if ivl not in left.columns or ivr not in right.columns:
                raise KeyError(ivl if ivl not in left.columns else ivr)
            ok = (lrec["STUDYID"].to_numpy() == rrec[ren["STUDYID"]].to_numpy()) & \
                 (lrec["USUBJID"].to_numpy() == rrec[ren["USUBJID"]].to_numpy()) & \
                 (lrec[ivl].astype(str).to_numpy() == right[ivr].astype(str).to_numpy()[j["_pos_r"].to_numpy()])
            res = pd.concat([lrec, rrec], axis=1)[ok]
            res = res.assign(_pid=j["_pid"].to_numpy()[ok])
        out.append(res)
    if not out:
        return pd.DataFrame()
    result = pd.concat(out, ignore_index=True)
    result = result.sort_values(["_pid", "_lpos", "_rpos"], kind="stable")
    return result.drop(columns=["_pid", "_lpos", "_rpos"]).reset_index(drop=True)
