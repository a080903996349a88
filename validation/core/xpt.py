"""Read a folder of SAS XPORT v5 files into :class:`Dataset` objects with the metadata the CORE
rules use (pyreadstat: the same reader CORE uses for the variable metadata)."""
from __future__ import annotations

import os
from pathlib import Path

import pyreadstat

from .model import Dataset, Variable

TYPES = {"string": "Char", "double": "Num", "Character": "Char", "Numeric": "Num"}


def read_xpt(path: str | Path) -> Dataset:
    path = Path(path)
    df, meta = pyreadstat.read_xport(str(path), encoding="utf-8")
    widths = meta.variable_storage_width or {}
    formats = meta.original_variable_types or {}
    labels = meta.column_names_to_labels or {}
    variables = [
        Variable(
            name=name,
            label=labels.get(name) or "",
            type=TYPES.get(meta.readstat_variable_types.get(name), "Char"),
            length=widths.get(name),
            format="" if formats.get(name) in (None, "NULL") else formats.get(name),
        )
        for name in meta.column_names
    ]
    first = None
    if len(df):
        first = {k: (v.decode("utf-8") if isinstance(v, bytes) else str(v)) for k, v in df.iloc[0].items()}
    return Dataset(
        name=path.name.split(".")[0].upper(),
        frame=df,
        label=meta.file_label or "",
        variables=variables,
        filename=path.name,
        size=os.path.getsize(path),
        first_record=first,
    )


def read_xpt_folder(folder: str | Path) -> dict[str, Dataset]:
    """Every ``*.xpt`` of a folder, by dataset name (file name without extension, upper case)."""
    folder = Path(folder)
    out = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() == ".xpt":
            ds = read_xpt(p)
            out[ds.name] = ds
    return out
