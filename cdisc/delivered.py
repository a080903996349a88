"""Datasets delivered by someone else (a CRO's SDTM, a partner's ADaM): read any of the
formats they come in as one kind of frame.

Formats: SAS XPORT (``.xpt``, v5 or v8), CDISC Dataset-JSON v1.1 (``.json``), SAS
``.sas7bdat`` (pyreadstat) and Apache Parquet (``.parquet``, pyarrow). Whatever the format,
the frame is the one ``pyreadstat.read_xport(path, disable_datetime_conversion=True)`` gives
for the XPT copy of the dataset, so every later step (validation, ADaM derivations) sees the
same values from every format:

* character variables are ``str`` with ``""`` for a blank (XPT cannot store a missing text);
* numeric variables are ``float64`` with NaN for missing; SAS dates/datetimes stay numbers
  (days / seconds since 1960-01-01); a parquet ``date``/``timestamp`` column becomes the same
  SAS number, so ADaM ``ADT`` from parquet equals ``ADT`` from XPT;
* variable names upper case, as the SDTMIG requires (a delivered lower-case name is read
  upper case: ``usubjid`` is USUBJID), dataset name = file name without extension, upper case.

Nothing is fixed silently: the values are as delivered; checking them is validation's job.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError

#: the formats a delivery may use, in the order one wins over another for the same dataset
FORMATS = (".xpt", ".sas7bdat", ".parquet", ".json")
SAS_EPOCH = np.datetime64("1960-01-01", "D")


@dataclass
class DeliveredDataset:
    name: str                     # dataset name, upper case (file stem)
    frame: pd.DataFrame
    file: Path                    # where it was read from
    label: str = ""
    labels: dict[str, str] = field(default_factory=dict)      # variable -> label (may be empty)
    formats: dict[str, str] = field(default_factory=dict)     # variable -> SAS format (e.g. DATE9.)
    lengths: dict[str, int] = field(default_factory=dict)     # variable -> declared length, when the format has one


def read_delivered(path: Path | str) -> DeliveredDataset | None:
    """One delivered dataset file; None for a ``.json`` file that is not Dataset-JSON
    (a manifest, a define in JSON). A damaged file is an InputError naming it."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".xpt":
            got = _xpt(path)
        elif suffix == ".json":
            got = _json(path)
        elif suffix == ".sas7bdat":
            got = _sas7bdat(path)
        elif suffix == ".parquet":
            got = _parquet(path)
        else:
            raise InputError(f"{path.name}: not a dataset format cdisc reads ({', '.join(FORMATS)})",
                             file=str(path))
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a reader's own error, turned into one message naming the file
        raise InputError(f"cannot read {path.name}: {type(exc).__name__}: {exc}", file=str(path),
                         hint="is the file complete and in the format its extension says?") from None
    if got is None:
        return None
    frame, label, labels, formats = got[:4]
    lengths = got[4] if len(got) > 4 else {}
    frame = _normalise(frame, path)
    return DeliveredDataset(path.name.split(".")[0].upper(), frame, path, label or "",
                            {k.upper(): v for k, v in labels.items() if v}, {k.upper(): v for k, v in formats.items() if v},
                            {str(k).upper(): int(v) for k, v in lengths.items() if isinstance(v, int) and v > 0})


def read_delivery(folder: Path | str, *, recursive: bool = False) -> dict[str, DeliveredDataset]:
    """Every dataset file of a folder, by dataset name. Two files of one dataset in different
    formats (``ae.xpt`` and ``ae.json``): the first of FORMATS is read, the other ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder", hint="give the folder that holds the delivered datasets")
    files = folder.rglob("*") if recursive else folder.iterdir()
    cands = sorted((p for p in files if p.is_file() and p.suffix.lower() in FORMATS),
                   key=lambda p: (FORMATS.index(p.suffix.lower()), p.as_posix()))
    out: dict[str, DeliveredDataset] = {}
    for p in cands:
        name = p.name.split(".")[0].upper()
        if name in out:
            continue
        ds = read_delivered(p)
        if ds is not None:
            out[name] = ds
    return dict(sorted(out.items()))


def _xpt(path: Path):
    from .xpt_read import read_xport

    df, meta = read_xport(path)
    return (df, meta.file_label, dict(zip(meta.column_names, meta.column_labels)),
            dict(zip(meta.column_names, meta.pyreadstat_formats)), dict(zip(meta.column_names, meta.lengths)))


def _json(path: Path):
    from .datasetjson import read_dataset_json

    head = path.read_bytes()[:4096]
    if b"datasetJSONVersion" not in head:          # required first-level key of Dataset-JSON v1.1
        return None
    df, meta = read_dataset_json(path)
    cols = meta.get("columns", [])
    return (df, meta.get("label") or "", {c.get("name"): c.get("label") for c in cols},
            {c.get("name"): c.get("displayFormat") for c in cols}, {c.get("name"): c.get("length") for c in cols})


def _sas7bdat(path: Path):
    import pyreadstat

    df, meta = pyreadstat.read_sas7bdat(str(path), disable_datetime_conversion=True)
    return (df, meta.file_label or "", dict(zip(meta.column_names, meta.column_labels)),
            dict(meta.original_variable_types or {}))


def _parquet(path: Path):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    labels = {}
    for f in table.schema:
        md = f.metadata or {}
        lab = md.get(b"label") or md.get(b"LABEL")
        if lab:
            labels[f.name] = lab.decode("utf-8", "replace")
    smd = table.schema.metadata or {}
    label = (smd.get(b"label") or b"").decode("utf-8", "replace")
    import pyarrow as pa

    cols = {}
    for f, col in zip(table.schema, table.columns):
        t = f.type
        if pa.types.is_date(t):
            days = col.cast(pa.date32()).to_numpy(zero_copy_only=False)
            cols[f.name] = _days(days)
        elif pa.types.is_timestamp(t):
            secs = col.cast(pa.timestamp("us")).to_numpy(zero_copy_only=False)
            cols[f.name] = _seconds(secs)
        elif pa.types.is_time(t):
            cols[f.name] = col.cast(pa.time64("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)
            cols[f.name] = pd.to_numeric(pd.Series(cols[f.name]), errors="coerce").to_numpy(float) / 1e6
        else:
            cols[f.name] = col.to_pandas()
    return pd.DataFrame(cols), label, labels, {}


def _days(values) -> np.ndarray:
    v = np.asarray(values, dtype="datetime64[D]")
    out = (v - SAS_EPOCH).astype("float64")
    out[np.isnat(v)] = np.nan
    return out


def _seconds(values) -> np.ndarray:
    v = np.asarray(values, dtype="datetime64[us]")
    out = (v - SAS_EPOCH.astype("datetime64[us]")).astype("float64") / 1e6
    out[np.isnat(v)] = np.nan
    return out


def _normalise(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Names upper case; text ``str`` with "" for blank; numbers float64 (see module docstring)."""
    df = df.copy()
    upper = [str(c).upper() for c in df.columns]
    dup = sorted({c for c in upper if upper.count(c) > 1})
    if dup:
        raise InputError(f"{path.name}: variables {', '.join(dup)} appear twice (names differ only in case)",
                         file=str(path))
    df.columns = upper
    for c in df.columns:
        s = df[c]
        kind = s.dtype.kind
        if kind in "iufb":
            df[c] = s.astype("float64")
            continue
        if kind == "M":
            df[c] = _seconds(s.to_numpy()) if (s.dt.normalize() != s).any() else _days(s.to_numpy())
            continue
        values = s.to_numpy(dtype=object)
        missing = pd.isna(s).to_numpy()
        if missing.all() and len(s):
            df[c] = pd.Series([""] * len(s), index=df.index, dtype=object)
            continue
        nonnull = values[~missing]
        if len(nonnull) and all(isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
                                for x in nonnull[:1000]) and \
                pd.to_numeric(pd.Series(nonnull), errors="coerce").notna().all():
            df[c] = pd.to_numeric(s, errors="coerce").astype("float64")
            continue
        bad = [x for x in nonnull[:1000] if not isinstance(x, str)]
        if bad:
            import datetime as dt

            if all(isinstance(x, (dt.date, dt.datetime)) for x in nonnull):
                ts = pd.to_datetime(pd.Series(values), errors="coerce")
                has_time = any(isinstance(x, dt.datetime) for x in nonnull)
                df[c] = _seconds(ts.to_numpy()) if has_time else _days(ts.to_numpy())
                continue
            raise InputError(f"{path.name}: variable {c} mixes text with {type(bad[0]).__name__} values",
                             file=str(path), column=c)
        values = values.copy()
        values[missing] = ""
        df[c] = pd.Series(values, index=df.index, dtype=object)
    return df
