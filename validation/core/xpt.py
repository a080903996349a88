"""Read a folder of SAS XPORT v5 (and Dataset-JSON v1.1) files into :class:`Dataset` objects
with the metadata the CORE rules use, as CORE 0.17.1 reads them: XPT data and variable metadata
as pyreadstat (CORE's own reader) gives them, read by cdisc.xpt_read (the same frame as
``pyreadstat.read_xport(path, encoding="utf-8")``: dates converted, floats bit for bit; the
engine rounds them to 15 decimals as CORE does), Dataset-JSON rows as they are (``""`` stays
``""``, ``null`` is None, integers stay integers, floats rounded to 15 digits) with the file's
``dataType`` as the variable type."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from cdisc.xpt_read import read_xport

from .model import Dataset, Variable

TYPES = {"string": "Char", "double": "Num", "Character": "Char", "Numeric": "Num"}
#: CORE's DatasetJSONMetadataReader type conversion
JSON_TYPES = {"boolean": "Num", "decimal": "Num", "double": "Num", "float": "Num", "integer": "Num",
              "string": "Char", "datetime": "Char", "date": "Char", "time": "Char", "URI": "Char"}


def read_xpt(path: str | Path, read=None) -> Dataset:
    """One XPT file as CORE reads it; ``read``: the (frame, meta) ``cdisc.xpt_read.read_xport``
    already gave for the file (SAS numbers), so it is not read again."""
    path = Path(path)
    if read is None:
        df, meta = read_xport(path, datetime_as_numbers=False)
    else:
        from cdisc.xpt_read import with_datetimes

        df, meta = with_datetimes(read[0], read[1], path), read[1]
    variables = [
        Variable(name=name, label=label, type=kind, length=length,
                 format="" if fmt in (None, "NULL") else fmt)      # pyreadstat's text: "DATE9"
        for name, label, kind, length, fmt in zip(meta.column_names, meta.column_labels, meta.types,
                                                  meta.lengths, meta.pyreadstat_formats)
    ]
    first = None
    if len(df):
        first = {k: (v.decode("utf-8") if isinstance(v, bytes) else str(v)) for k, v in df.iloc[0].items()}
    return Dataset(
        name=path.name.split(".")[0].upper(),
        frame=df,
        label=meta.file_label,
        variables=variables,
        filename=path.name,
        size=os.path.getsize(path),
        first_record=first,
    )


def read_dataset_json(path: str | Path) -> Dataset:
    """One Dataset-JSON v1.1 file as CORE's DatasetJSONReader gives it."""
    path = Path(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    columns = doc.get("columns") or []
    names = [c["name"] for c in columns]
    frame = pd.DataFrame(doc.get("rows") or [], columns=names)
    for c in names:
        if frame[c].dtype == float:
            frame[c] = frame[c].round(15)
        elif frame[c].dtype == object:
            frame[c] = frame[c].map(lambda x: round(x, 15) if isinstance(x, float) else x)
    variables = [Variable(c["name"], c.get("label") or "", JSON_TYPES.get(c.get("dataType"), c.get("dataType") or ""),
                          c.get("length"), c.get("displayFormat", "") or "") for c in columns]
    first = None
    if doc.get("rows"):
        row = pd.DataFrame([doc["rows"][0]], columns=names).iloc[0]
        first = {k: (v.decode("utf-8") if isinstance(v, bytes) else str(v)) for k, v in row.items()}
    return Dataset(
        name=str(doc.get("name") or path.stem).upper(),
        frame=frame,
        label=doc.get("label") or "",
        variables=variables,
        filename=path.name,
        size=os.path.getsize(path),
        first_record=first,
    )


def dataset_from_frame(path: Path, frame: pd.DataFrame, labels: dict) -> Dataset:
    """A sas7bdat or parquet file already read (cdisc.delivered), as the CORE rules see a
    dataset: types from the frame (float = Num), labels from the file, no formats (parquet has
    none), lengths the longest value in bytes."""
    variables = []
    for c in frame.columns:
        num = frame[c].dtype.kind in "fiu"
        length = 8 if num else max([len(str(x).encode("utf-8")) for x in frame[c].unique()] or [1]) or 1
        variables.append(Variable(c, (labels.get("variables") or {}).get(c) or "", "Num" if num else "Char", length, ""))
    first = {k: str(v) for k, v in frame.iloc[0].items()} if len(frame) else None
    return Dataset(name=path.name.split(".")[0].upper(), frame=frame, label=labels.get("label") or "",
                   variables=variables, filename=path.name, size=os.path.getsize(path), first_record=first)


def read_folder(folder: str | Path) -> dict[str, Dataset]:
    """Every ``*.xpt`` and Dataset-JSON ``*.json`` file of a folder, by dataset name."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file():
            continue
        if p.suffix.lower() == ".xpt":
            ds = read_xpt(p)
        elif p.suffix.lower() == ".json" and p.name not in ("metadata.json", "manifest.json", "define.json"):
            try:
                ds = read_dataset_json(p)
            except (ValueError, KeyError, TypeError):
                continue  # not a Dataset-JSON file
        else:
            continue
        out[ds.name] = ds
    return out


def read_xpt_folder(folder: str | Path) -> dict[str, Dataset]:
    """Every ``*.xpt`` of a folder, by dataset name (file name without extension, upper case)."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() == ".xpt":
            ds = read_xpt(p)
            out[ds.name] = ds
    return out
