"""`cdisc diff OLD NEW`: what changed between two data cuts, dataset by dataset.

OLD and NEW are two `cdisc build` folders (or any two folders of XPT / Dataset-JSON /
sas7bdat / parquet datasets: a CRO's deliveries). Every dataset file is read with
``cdisc.delivered`` (one kind of frame for every format), so an XPT build compares with a
parquet delivery value by value. Nothing is ever written into OLD or NEW.

Per dataset the comparison (``diff_frames``) is:

1. **Keys.** A build's ``metadata.json`` gives each dataset's natural keys (the spec's
   ``keys``); for any other dataset see ``choose_keys``. A dataset without a usable key is
   compared as a multiset of rows (a row is added or removed; nothing is "changed").
2. **Match.** The key values of OLD and NEW are numbered together (one integer per distinct
   key, in sorted key order); a key that occurs once on each side matches one record with
   one record. A key that occurs on one side only is a record added or removed.
3. **Duplicate keys** (a key on two or more records of either side) are reported with their
   counts, and the records of those keys are compared as whole rows (multiset): a row of
   that key in OLD and not in NEW is removed, and the reverse added. Never a crash.
4. **Changed values.** For each variable present on both sides (keys excluded) the matched
   records are compared as arrays: numbers equal when equal or both missing, text exactly
   (blank = ""). A variable whose type changed (Char <-> Num) is compared as text. Every
   difference is one row (key values, VARIABLE, OLD, NEW).
5. **Variables.** Added, removed, and label / type / length changes (length: the one the file
   declares, XPT or Dataset-JSON, else the longest value in bytes); the dataset label.

Everything is sorted (datasets by name, records by key, variables in NEW's order) so two
runs give the same output byte for byte. No per-record Python loops: 10^6 records compare in
seconds (``benchmarks/diff.py``).
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

#: SDTMIG 3.4 section 8.4.1: the natural key of a Supplemental Qualifiers dataset
SUPP_KEYS = ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"]


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------
@dataclass
class DatasetDiff:
    """The differences of one dataset between OLD and NEW."""

    name: str
    status: str                                   # "compared", "added" (only in NEW), "removed" (only in OLD)
    old_records: int = 0
    new_records: int = 0
    keys: list[str] | None = None                 # None: compared as a multiset of rows
    key_source: str = ""                          # where the keys came from, in words
    added: pd.DataFrame = field(default_factory=pd.DataFrame)     # key values (keyless: whole rows)
    removed: pd.DataFrame = field(default_factory=pd.DataFrame)
    changed: pd.DataFrame = field(default_factory=pd.DataFrame)   # key values + VARIABLE, OLD, NEW
    changed_records: int = 0
    duplicates: pd.DataFrame = field(default_factory=pd.DataFrame)  # key values + OLD_COUNT, NEW_COUNT
    variables_added: list[str] = field(default_factory=list)
    variables_removed: list[str] = field(default_factory=list)
    variable_changes: list[dict] = field(default_factory=list)   # {variable, attribute, old, new}
    label: tuple[str, str] | None = None          # (old, new) dataset label when it changed
    notes: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)       # variable -> SAS format, for display
    one_study: bool = False                       # one STUDYID value on both sides: left out of terminal lines

    @property
    def n_added(self) -> int:
        return self.new_records if self.status == "added" else len(self.added)

    @property
    def n_removed(self) -> int:
        return self.old_records if self.status == "removed" else len(self.removed)

    @property
    def has_changes(self) -> bool:
        """Anything differs (duplicate keys alone are a finding about the data, not a change)."""
        return self.status != "compared" or bool(len(self.added) or len(self.removed) or self.changed_records
                                                 or self.variables_added or self.variables_removed
                                                 or self.variable_changes or self.label)


@dataclass
class DiffResult:
    old: dict                                     # {folder, kind, studyid, data_cut}
    new: dict
    datasets: list[DatasetDiff]

    @property
    def has_changes(self) -> bool:
        return any(d.has_changes for d in self.datasets)


# --------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------
@dataclass
class _Side:
    folder: Path
    build: bool
    files: dict[str, Path]
    metadata: dict = field(default_factory=dict)       # dataset -> DatasetMeta (builds)
    studyid: str | None = None
    data_cut: str | None = None

    def describe(self) -> dict:
        return {"folder": str(self.folder), "kind": "cdisc build" if self.build else "folder",
                "studyid": self.studyid, "data_cut": self.data_cut}


def dataset_files(folder: Path, *, skip: tuple[str, ...] = ()) -> dict[str, Path]:
    """Dataset name -> file of every dataset in ``folder`` and its subfolders; for one dataset
    in several formats the first of ``cdisc.delivered.FORMATS`` wins (as ``read_delivery``).
    A ``.json`` file is a candidate only when it is Dataset-JSON."""
    from .delivered import FORMATS

    cands = sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS
                    and not set(p.relative_to(folder).parts[:-1]) & set(skip)),
                   key=lambda p: (FORMATS.index(p.suffix.lower()), p.relative_to(folder).as_posix()))
    out: dict[str, Path] = {}
    for p in cands:
        name = p.name.split(".")[0].upper()
        if name in out:
            continue
        if p.suffix.lower() == ".json" and b"datasetJSONVersion" not in p.read_bytes()[:4096]:
            continue
        out[name] = p
    return dict(sorted(out.items()))


def _open(folder: Path) -> _Side:
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder", hint="give two `cdisc build` folders (or folders of datasets)")
    build = (folder / "metadata.json").is_file()
    side = _Side(folder, build, dataset_files(folder, skip=("validation",) if build else ()))
    if build:
        from .pipeline import load_build_metadata

        side.metadata = load_build_metadata(folder)
        manifest = folder / "manifest.json"
        if manifest.is_file():
            m = json.loads(manifest.read_text(encoding="utf-8"))
            side.studyid, side.data_cut = m.get("studyid"), m.get("data_cut")
    if not side.files:
        raise InputError(f"{folder} holds no dataset files (.xpt, .sas7bdat, .parquet, Dataset-JSON .json)",
                         hint="give a `cdisc build` folder or a folder of delivered datasets")
    return side


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------
def choose_keys(name: str, old: pd.DataFrame, new: pd.DataFrame, old_meta=None, new_meta=None
                ) -> tuple[list[str] | None, str]:
    """(key variables, where they came from) for one dataset present on both sides.

    1. a build's metadata.json keys (NEW's, else OLD's) when every key variable is in both
       frames;
    2. the shipped standards (``cdisc.standards``) hold no natural keys, so for a dataset
       without build metadata: SUPP-- datasets the SDTMIG's own key (STUDYID, RDOMAIN,
       USUBJID, IDVAR, IDVARVAL, QNAM); a dataset with a sequence number (``--SEQ`` of its
       two-letter prefix, else ADaM ``ASEQ``) STUDYID, USUBJID, --SEQ; a dataset with USUBJID
       unique on both sides (DM, ADSL) STUDYID, USUBJID;
    3. otherwise no key (None): compared as a multiset of rows.
    """
    both = set(old.columns) & set(new.columns)
    for meta, which in ((new_meta, "NEW"), (old_meta, "OLD")):
        keys = list(getattr(meta, "keys", None) or [])
        if keys and set(keys) <= both:
            return keys, f"metadata.json of {which}"
    subj = [c for c in ("STUDYID", "USUBJID") if c in both]
    if name.upper().startswith("SUPP") or name.upper() == "SQAP":
        if set(SUPP_KEYS) <= both:
            return list(SUPP_KEYS), "SDTMIG SUPP-- key"
    for seq in (f"{name[:2].upper()}SEQ", "ASEQ"):
        if seq in both and "USUBJID" in both:
            return subj + [seq], f"{seq} sequence number, no build metadata"
    if "USUBJID" in both and old["USUBJID"].is_unique and new["USUBJID"].is_unique:
        return subj, "one record per subject, no build metadata"
    return None, "no key"


# --------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------
def _is_num(s: pd.Series) -> bool:
    return s.dtype.kind in "fiub"


def _as_text(s: pd.Series) -> np.ndarray:
    """Values as text, for comparing a variable whose type changed (1.0 -> "1", missing -> "")."""
    if _is_num(s):
        f = s.astype("float64")
        out = f.astype(str).to_numpy(dtype=object)
        isint = (f.notna() & (f % 1 == 0) & (f.abs() < 1e15)).to_numpy()
        out[isint] = f[isint].astype(np.int64).astype(str).to_numpy(dtype=object)
        out[f.isna().to_numpy()] = ""
        return out
    return s.fillna("").astype(str).to_numpy(dtype=object)


def _num_text(v) -> str:
    v = float(v)
    if math.isnan(v):
        return ""
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise a != b, with missing == missing."""
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return ~((a == b) | (np.isnan(a) & np.isnan(b)))
    ne = np.asarray(a != b, dtype=bool)
    if ne.any():
        na = pd.isna(a) & pd.isna(b)
        ne &= ~np.asarray(na, dtype=bool)
    return ne


def _harmonise(old: pd.DataFrame, new: pd.DataFrame, cols: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Columns whose type differs between the sides become text on both sides."""
    mixed = [c for c in cols if _is_num(old[c]) != _is_num(new[c])]
    if mixed:
        old, new = old[cols].copy(), new[cols].copy()
        for c in mixed:
            old[c] = _as_text(old[c])
            new[c] = _as_text(new[c])
    return old, new, mixed


def _group_ids(old: pd.DataFrame, new: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """One integer per distinct combination of ``cols`` over both frames, in sorted order
    (missing values last); returns (ids of OLD's rows, ids of NEW's rows, number of ids)."""
    both = pd.concat([old[cols], new[cols]], ignore_index=True)
    if not cols:
        ids = np.zeros(len(both), dtype=np.int64)
    else:
        ids = both.groupby(cols, sort=True, dropna=False, observed=True).ngroup().to_numpy(dtype=np.int64)
    n = int(ids.max()) + 1 if len(ids) else 0
    return ids[:len(old)], ids[len(old):], n


def _multiset(old: pd.DataFrame, new: pd.DataFrame, cols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows (over ``cols``) removed from OLD and added in NEW, as row positions into OLD and
    NEW, counting repeats: a row twice in OLD and once in NEW is one removed copy."""
    io, inew, n = _group_ids(old, new, cols)
    co = np.bincount(io, minlength=n)
    cn = np.bincount(inew, minlength=n)
    # occurrence number of each row among equal rows of its side (0, 1, ...)
    occ_o = pd.Series(io).groupby(io).cumcount().to_numpy()
    occ_n = pd.Series(inew).groupby(inew).cumcount().to_numpy()
    removed = np.flatnonzero(occ_o >= cn[io])          # copies beyond what NEW still has
    added = np.flatnonzero(occ_n >= co[inew])
    # sorted by row content (the group id), then position
    removed = removed[np.lexsort((removed, io[removed]))]
    added = added[np.lexsort((added, inew[added]))]
    return removed, added


def diff_frames(name: str, old: pd.DataFrame, new: pd.DataFrame, keys: list[str] | None,
                key_source: str = "") -> DatasetDiff:
    """Compare one dataset's two frames (see the module docstring, steps 2-4)."""
    d = DatasetDiff(name, "compared", len(old), len(new), keys=list(keys) if keys else None, key_source=key_source)
    common = [c for c in new.columns if c in set(old.columns)]
    if "STUDYID" in common:
        d.one_study = len(pd.unique(np.concatenate([old["STUDYID"].to_numpy(dtype=object),
                                                    new["STUDYID"].to_numpy(dtype=object)]))) <= 1
    old_h, new_h, mixed = _harmonise(old, new, common)
    if mixed:
        d.notes.append(f"type changed, values compared as text: {', '.join(mixed)}")
    if not keys:
        d.notes.append("no key: compared as a multiset of rows (records added/removed, never changed)"
                       + ("" if set(old.columns) == set(new.columns) else "; over the variables of both sides"))
        rem, add = _multiset(old_h, new_h, common)
        d.removed = old[common].iloc[rem].reset_index(drop=True)
        d.added = new[common].iloc[add].reset_index(drop=True)
        return d

    ko, kn, n = _group_ids(old_h, new_h, keys)
    co = np.bincount(ko, minlength=n)
    cn = np.bincount(kn, minlength=n)
    dup = (co > 1) | (cn > 1)
    pos_o = np.full(n, -1, dtype=np.int64)
    pos_n = np.full(n, -1, dtype=np.int64)
    uo, un = ~dup[ko], ~dup[kn]
    pos_o[ko[uo]] = np.flatnonzero(uo)
    pos_n[kn[un]] = np.flatnonzero(un)
    single = ~dup
    removed_ids = np.flatnonzero(single & (co == 1) & (cn == 0))
    added_ids = np.flatnonzero(single & (co == 0) & (cn == 1))
    matched = np.flatnonzero(single & (co == 1) & (cn == 1))
    rem_rows = pos_o[removed_ids]
    add_rows = pos_n[added_ids]

    if dup.any():
        dids = np.flatnonzero(dup)
        first_o = np.full(n, -1, dtype=np.int64)
        first_n = np.full(n, -1, dtype=np.int64)
        u, i = np.unique(ko, return_index=True)
        first_o[u] = i
        u, i = np.unique(kn, return_index=True)
        first_n[u] = i
        kv = pd.concat([old[keys].iloc[first_o[dids[first_o[dids] >= 0]]],
                        new[keys].iloc[first_n[dids[first_o[dids] < 0]]]], ignore_index=True)
        order = np.concatenate([dids[first_o[dids] >= 0], dids[first_o[dids] < 0]])
        kv["OLD_COUNT"] = co[order]
        kv["NEW_COUNT"] = cn[order]
        d.duplicates = kv.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
        d.notes.append(f"{len(dids)} key value{'s' if len(dids) > 1 else ''} on more than one record: "
                       "those records compared as whole rows")
        do = np.flatnonzero(dup[ko])
        dn = np.flatnonzero(dup[kn])
        r, a = _multiset(old_h.iloc[do], new_h.iloc[dn], common)
        rem_rows = np.concatenate([rem_rows, do[r]])
        add_rows = np.concatenate([add_rows, dn[a]])
        rem_rows = rem_rows[np.lexsort((rem_rows, ko[rem_rows]))]
        add_rows = add_rows[np.lexsort((add_rows, kn[add_rows]))]
    d.removed = old[keys].iloc[rem_rows].reset_index(drop=True)
    d.added = new[keys].iloc[add_rows].reset_index(drop=True)

    oi, ni = pos_o[matched], pos_n[matched]
    parts, changed_any = [], np.zeros(len(matched), dtype=bool)
    values = [c for c in common if c not in set(keys)]
    for order_no, c in enumerate(values):
        a = old_h[c].to_numpy()[oi]
        b = new_h[c].to_numpy()[ni]
        ne = _differs(a, b)
        if not ne.any():
            continue
        changed_any |= ne
        where = np.flatnonzero(ne)
        parts.append(pd.DataFrame({"_m": where, "_v": order_no, "VARIABLE": c,
                                   "OLD": pd.Series(old[c].to_numpy()[oi[where]], dtype=object),
                                   "NEW": pd.Series(new[c].to_numpy()[ni[where]], dtype=object)}))
    d.changed_records = int(changed_any.sum())
    if parts:
        long = pd.concat(parts, ignore_index=True)
        long = long.iloc[np.lexsort((long["_v"].to_numpy(), long["_m"].to_numpy()))]
        kv = new[keys].iloc[ni[long["_m"].to_numpy()]].reset_index(drop=True)
        d.changed = pd.concat([kv, long[["VARIABLE", "OLD", "NEW"]].reset_index(drop=True)], axis=1)
    else:
        d.changed = pd.DataFrame(columns=[*keys, "VARIABLE", "OLD", "NEW"])
    return d


def _attributes(ds, meta) -> dict[str, dict]:
    """Variable -> {label, type, length} of one side: labels from the file (else the build's
    metadata), type from the values, length of a text variable the one the file declares (XPT,
    Dataset-JSON), else the longest value in UTF-8 bytes; numbers 8."""
    from_meta = {v.name: v for v in (meta.variables if meta is not None else [])}
    out = {}
    for c in ds.frame.columns:
        v = from_meta.get(c)
        typ = "Num" if _is_num(ds.frame[c]) else "Char"
        if typ == "Num":
            length = 8
        elif ds.lengths.get(c):
            length = int(ds.lengths[c])
        else:
            length = _max_bytes(ds.frame[c])
        out[c] = {"label": ds.labels.get(c) or (v.label if v is not None else ""), "type": typ, "length": length}
    return out


def _max_bytes(s: pd.Series) -> int:
    """The longest value of a text variable in UTF-8 bytes (over its distinct values)."""
    u = pd.unique(s.to_numpy(dtype=object))
    u = u[[isinstance(x, str) for x in u]] if len(u) else u
    return int(pd.Series(u, dtype=object).str.encode("utf-8").str.len().max()) if len(u) else 0


def _compare_variables(d: DatasetDiff, old_ds, new_ds, old_meta, new_meta) -> None:
    oa, na = _attributes(old_ds, old_meta), _attributes(new_ds, new_meta)
    d.variables_added = [c for c in new_ds.frame.columns if c not in oa]
    d.variables_removed = [c for c in old_ds.frame.columns if c not in na]
    for c in new_ds.frame.columns:
        if c in oa:
            for attr in ("label", "type", "length"):
                if oa[c][attr] != na[c][attr]:
                    d.variable_changes.append({"variable": c, "attribute": attr, "old": oa[c][attr],
                                               "new": na[c][attr]})
    old_label = old_ds.label or getattr(old_meta, "label", "") or ""
    new_label = new_ds.label or getattr(new_meta, "label", "") or ""
    if old_label != new_label:
        d.label = (old_label, new_label)


def diff_folders(old: Path | str, new: Path | str, datasets: list[str] | None = None) -> DiffResult:
    """Compare every dataset of two folders (or only ``datasets``, by name)."""
    from .delivered import read_delivered

    so, sn = _open(Path(old)), _open(Path(new))
    names = sorted(set(so.files) | set(sn.files))
    if datasets:
        wanted = [x.strip().upper() for x in datasets if x.strip()]
        unknown = [w for w in wanted if w not in names]
        if unknown:
            raise InputError(f"dataset{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in neither "
                             f"{so.folder} nor {sn.folder}", hint=f"datasets there: {', '.join(names)}")
        names = sorted(set(wanted))
    out = []
    for name in names:
        po, pn = so.files.get(name), sn.files.get(name)
        if po is None or pn is None:
            ds = read_delivered(pn or po)
            n = len(ds.frame) if ds is not None else 0
            d = DatasetDiff(name, "added" if po is None else "removed",
                            old_records=0 if po is None else n, new_records=n if po is None else 0)
            d.formats = ds.formats if ds is not None else {}
            out.append(d)
            continue
        dso, dsn = read_delivered(po), read_delivered(pn)
        mo, mn = so.metadata.get(name), sn.metadata.get(name)
        keys, source = choose_keys(name, dso.frame, dsn.frame, mo, mn)
        d = diff_frames(name, dso.frame, dsn.frame, keys, source)
        _compare_variables(d, dso, dsn, mo, mn)
        d.formats = {**dso.formats, **dsn.formats}
        out.append(d)
    return DiffResult(so.describe(), sn.describe(), out)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------
_DATE_FORMATS = ("DATE", "YYMMDD", "E8601DA", "MMDDYY", "DDMMYY")
_DATETIME_FORMATS = ("DATETIME", "E8601DT")
_TIME_FORMATS = ("TIME", "E8601TM", "TOD")


def display(value, fmt: str | None = None) -> str:
    """A value as text: numbers without a needless ".0", SAS dates/datetimes/times (by their
    format) in ISO 8601, missing numbers as ".", text as it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "."
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool):
        f = (fmt or "").upper().rstrip(".0123456789")
        try:
            if f.startswith(_DATETIME_FORMATS):
                return str(np.datetime64("1960-01-01T00:00:00", "s") + np.timedelta64(int(round(value)), "s"))
            if f.startswith(_DATE_FORMATS):
                return str(np.datetime64("1960-01-01", "D") + np.timedelta64(int(value), "D"))
            if f.startswith(_TIME_FORMATS):
                s = int(round(value))
                return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
        except (OverflowError, ValueError):
            pass
        return _num_text(value)
    return str(value)


def _json_value(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (np.floating, float)):
        return int(v) if float(v).is_integer() and abs(v) < 2 ** 53 else float(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    return v if isinstance(v, str) else str(v)


def _records(df: pd.DataFrame) -> list[dict]:
    cols = list(df.columns)
    return [{c: _json_value(v) for c, v in zip(cols, row)} for row in df.itertuples(index=False, name=None)]


def to_json(result: DiffResult) -> dict:
    """The whole result as plain JSON data (missing values null, SAS dates as numbers)."""
    out = {"old": result.old, "new": result.new, "has_changes": result.has_changes, "datasets": []}
    for d in result.datasets:
        item = {"dataset": d.name, "status": d.status, "old_records": d.old_records, "new_records": d.new_records,
                "added": d.n_added, "removed": d.n_removed, "changed": d.changed_records,
                "has_changes": d.has_changes}
        if d.status == "compared":
            item.update({
                "keys": d.keys, "key_source": d.key_source, "notes": d.notes,
                "added_records": _records(d.added), "removed_records": _records(d.removed),
                "changed_values": _records(d.changed), "duplicate_keys": _records(d.duplicates),
                "variables_added": d.variables_added, "variables_removed": d.variables_removed,
                "variable_changes": d.variable_changes,
                "label": {"old": d.label[0], "new": d.label[1]} if d.label else None})
        out["datasets"].append(item)
    return out


def _side_text(s: dict) -> str:
    bits = [s["folder"]]
    if s.get("studyid"):
        bits.append(f"study {s['studyid']}")
    if s.get("data_cut"):
        bits.append(f"data cut {s['data_cut']}")
    return bits[0] + (f" ({', '.join(bits[1:])})" if len(bits) > 1 else "")


def _key_text(row: dict, keys: list[str], formats: dict, one_study: bool = False) -> str:
    skip = {"STUDYID"} if len(keys) > 1 and one_study else set()
    return " ".join(f"{k}={display(row[k], formats.get(k))}" for k in keys if k not in skip)


def _meta_notes(d: DatasetDiff) -> list[str]:
    notes = []
    if d.variables_added:
        notes.append(f"+vars {','.join(d.variables_added)}")
    if d.variables_removed:
        notes.append(f"-vars {','.join(d.variables_removed)}")
    for ch in d.variable_changes:
        notes.append(f"{ch['variable']} {ch['attribute']} {ch['old']!r}->{ch['new']!r}")
    if d.label:
        notes.append(f"label {d.label[0]!r}->{d.label[1]!r}")
    if len(d.duplicates):
        notes.append(f"{len(d.duplicates)} duplicate key{'s' if len(d.duplicates) > 1 else ''}")
    if d.status == "compared" and not d.keys:
        notes.append("no key")
    return notes


def render_text(result: DiffResult, limit: int = 10) -> str:
    """The terminal summary: one line per dataset, then up to ``limit`` changed, added and
    removed records per dataset."""
    lines = [f"Comparing OLD {_side_text(result.old)}", f"     with NEW {_side_text(result.new)}", ""]
    total = sum(d.old_records for d in result.datasets)
    if not result.has_changes:
        lines.append(f"No differences: {len(result.datasets)} datasets, {total} records compared.")
        for d in result.datasets:
            if len(d.duplicates):
                lines.append(f"note: {d.name} has {len(d.duplicates)} key value(s) on more than one record "
                             f"(keys {', '.join(d.keys or [])}); see --json duplicate_keys")
        return "\n".join(lines) + "\n"
    lines.append(f"{'dataset':<9}{'old':>8}{'new':>8}{'added':>8}{'removed':>8}{'changed':>8}  notes")
    for d in result.datasets:
        if d.status != "compared":
            note = "dataset only in NEW" if d.status == "added" else "dataset only in OLD"
        else:
            note = "; ".join(_meta_notes(d)) or ("-" if d.has_changes else "no differences")
        lines.append(f"{d.name:<9}{d.old_records:>8}{d.new_records:>8}{d.n_added:>8}{d.n_removed:>8}"
                     f"{d.changed_records:>8}  {note}")
    for d in result.datasets:
        if d.status != "compared" or not (d.changed_records or len(d.added) or len(d.removed) or len(d.duplicates)):
            continue
        lines += ["", f"{d.name}: keys {', '.join(d.keys)}" + (f" ({d.key_source})" if d.key_source else "")
                  if d.keys else f"{d.name}: no key, records compared as whole rows"]
        keys = d.keys or list(d.added.columns if len(d.added) else d.removed.columns)
        if d.changed_records:
            lines.append(f"  changed ({d.changed_records} record{'s' if d.changed_records > 1 else ''}"
                         + (f", first {limit}" if d.changed_records > limit else "") + "):")
            shown = 0
            for (kv, grp) in _changed_groups(d, limit):
                lines.append(f"    {kv}")
                for var, o, n in grp:
                    lines.append(f"      {var}: {_quote(o, d.formats.get(var))} -> {_quote(n, d.formats.get(var))}")
                shown += 1
        if len(d.duplicates):
            n = len(d.duplicates)
            lines.append(f"  key values on more than one record ({n}" + (f", first {limit}" if n > limit else "")
                         + "; their records compared as whole rows):")
            for row in _records(d.duplicates.head(limit)):
                lines.append(f"    {_key_text(row, keys, d.formats, d.one_study)} (OLD {row['OLD_COUNT']}, NEW {row['NEW_COUNT']})")
        for what, frame in (("added", d.added), ("removed", d.removed)):
            if len(frame):
                lines.append(f"  {what} ({len(frame)} record{'s' if len(frame) > 1 else ''}"
                             + (f", first {limit}" if len(frame) > limit else "") + "):")
                for row in _records(frame.head(limit)):
                    lines.append(f"    {_key_text(row, keys, d.formats, d.one_study)}")
    return "\n".join(lines) + "\n"


def _quote(v, fmt) -> str:
    if isinstance(v, str):
        return repr(v)
    return display(v, fmt)


def _changed_groups(d: DatasetDiff, limit: int):
    """(key text, [(variable, old, new)]) of the first ``limit`` changed records."""
    if not len(d.changed):
        return []
    keys = d.keys or []
    kframe = d.changed[keys]
    new_rec = np.ones(len(kframe), dtype=bool)
    if len(kframe) > 1:
        same = np.ones(len(kframe) - 1, dtype=bool)
        for k in keys:
            v = kframe[k].to_numpy()
            same &= ~_differs(v[1:], v[:-1])
        new_rec[1:] = ~same
    rec_no = np.cumsum(new_rec) - 1
    sub = d.changed[rec_no < limit]
    rec_no = rec_no[rec_no < limit]
    groups = []
    for i in range(int(rec_no.max()) + 1 if len(rec_no) else 0):   # at most `limit` records: display only
        part = sub[rec_no == i]
        row = _records(part.head(1)[keys])[0]
        groups.append((_key_text(row, keys, d.formats, d.one_study),
                       list(zip(part["VARIABLE"], part["OLD"], part["NEW"]))))
    return groups


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d1d1f}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}
th,td{border:1px solid #d0d0d0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2} td.n{text-align:right} .old{background:#fdecea} .new{background:#e8f5e9}
.muted{color:#666} code{background:#f4f4f4;padding:0 3px}
"""


def _td(v, cls: str = "", fmt: str | None = None) -> str:
    c = f' class="{cls}"' if cls else ""
    return f"<td{c}>{html.escape(display(v, fmt))}</td>"


def _table(frame: pd.DataFrame, limit: int, formats: dict, classes: dict | None = None) -> str:
    if not len(frame):
        return ""
    cols = list(frame.columns)
    out = ["<table><thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in cols) + "</tr></thead><tbody>"]
    var_col = frame["VARIABLE"].to_numpy() if "VARIABLE" in frame.columns else None
    for i, row in enumerate(frame.head(limit).itertuples(index=False, name=None)):
        cells = []
        for c, v in zip(cols, row):
            fmt = formats.get(var_col[i]) if (var_col is not None and c in ("OLD", "NEW")) else formats.get(c)
            cells.append(_td(v, (classes or {}).get(c, ""), fmt))
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if len(frame) > limit:
        out.append(f'<p class="muted">{len(frame) - limit} more not shown (--html-limit {limit}); '
                   "all are in <code>cdisc diff --json</code>.</p>")
    return "".join(out)


def render_html(result: DiffResult, limit: int = 1000) -> str:
    """One self-contained HTML page (no scripts, no network): a summary table and one section
    per dataset with its variable changes, duplicate keys, changed values, added and removed
    records (up to ``limit`` rows per table). Every value is HTML-escaped."""
    e = html.escape
    title = f"cdisc diff: {result.old['folder']} -> {result.new['folder']}"
    p = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
         f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
         "<h1>What changed between two data cuts</h1>",
         f"<p>OLD: <code>{e(_side_text(result.old))}</code><br>NEW: <code>{e(_side_text(result.new))}</code></p>"]
    if not result.has_changes:
        p.append(f"<p><strong>No differences</strong> in {len(result.datasets)} datasets.</p>")
    p.append("<table><thead><tr><th>dataset</th><th>old records</th><th>new records</th><th>added</th>"
             "<th>removed</th><th>changed</th><th>notes</th></tr></thead><tbody>")
    for d in result.datasets:
        note = ("dataset only in NEW" if d.status == "added" else "dataset only in OLD" if d.status == "removed"
                else "; ".join(_meta_notes(d)) or ("" if d.has_changes else "no differences"))
        name = f'<a href="#ds-{e(d.name)}">{e(d.name)}</a>' if d.status == "compared" and d.has_changes else e(d.name)
        p.append(f"<tr><td>{name}</td><td class=n>{d.old_records}</td><td class=n>{d.new_records}</td>"
                 f"<td class=n>{d.n_added}</td><td class=n>{d.n_removed}</td><td class=n>{d.changed_records}</td>"
                 f"<td>{e(note)}</td></tr>")
    p.append("</tbody></table>")
    for d in result.datasets:
        if d.status != "compared" or not d.has_changes:
            continue
        p.append(f'<h2 id="ds-{e(d.name)}">{e(d.name)}</h2>')
        p.append(f"<p>Keys: {e(', '.join(d.keys)) if d.keys else 'none (compared as whole rows)'}"
                 f" <span class=muted>({e(d.key_source)})</span></p>")
        for n in d.notes:
            p.append(f'<p class="muted">{e(n)}</p>')
        meta_rows = ([{"VARIABLE": v, "CHANGE": "added", "OLD": "", "NEW": ""} for v in d.variables_added]
                     + [{"VARIABLE": v, "CHANGE": "removed", "OLD": "", "NEW": ""} for v in d.variables_removed]
                     + [{"VARIABLE": c["variable"], "CHANGE": c["attribute"], "OLD": str(c["old"]),
                         "NEW": str(c["new"])} for c in d.variable_changes])
        if d.label:
            meta_rows.append({"VARIABLE": "(dataset)", "CHANGE": "label", "OLD": d.label[0], "NEW": d.label[1]})
        if meta_rows:
            p.append("<h3>Variables</h3>" + _table(pd.DataFrame(meta_rows), limit, {}, {"OLD": "old", "NEW": "new"}))
        if len(d.duplicates):
            p.append("<h3>Duplicate keys</h3>" + _table(d.duplicates, limit, d.formats))
        if len(d.changed):
            p.append(f"<h3>Changed values ({d.changed_records} record{'s' if d.changed_records > 1 else ''})</h3>"
                     + _table(d.changed, limit, d.formats, {"OLD": "old", "NEW": "new"}))
        if len(d.added):
            p.append(f"<h3>Added records ({len(d.added)})</h3>" + _table(d.added, limit, d.formats))
        if len(d.removed):
            p.append(f"<h3>Removed records ({len(d.removed)})</h3>" + _table(d.removed, limit, d.formats))
    p.append("</body></html>")
    return "\n".join(p) + "\n"


def check_html_target(path: Path, *folders: Path) -> None:
    """Refuse an --html path inside one of the compared folders (diff never writes into them)."""
    path = Path(path)
    target = path.resolve()
    for f in folders:
        folder = Path(f).resolve()
        if target == folder or folder in target.parents:
            raise InputError(f"--html {path} is inside {f}: cdisc diff never writes into the "
                             "folders it compares", hint="write the page somewhere else, e.g. --html diff.html")


def write_html(result: DiffResult, path: Path, limit: int = 1000) -> None:
    """Write the HTML page (atomically: a temporary file beside it, then renamed)."""
    path = Path(path)
    check_html_target(path, result.old["folder"], result.new["folder"])
    if path.is_dir():
        raise InputError(f"--html {path} is a folder", hint="give a file name, e.g. --html diff.html")
    if not path.parent.is_dir():
        raise InputError(f"--html {path}: folder {path.parent} does not exist")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_html(result, limit), encoding="utf-8")
    tmp.replace(path)
