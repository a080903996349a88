"""Datasets in CORE's CSV test-data format (cdisc-open-rules ``<rule>/{positive,negative}/NN/data``),
read exactly as CORE's CSV reader reads them, and the expected ``results/results.csv`` rows.

A case folder holds ``_datasets.csv`` (Filename, Label[, Dataset Name]), ``_variables.csv``
(dataset, variable, label, type Char|Num, length) and one ``<dataset>.csv`` per dataset.
CORE reads each with the declared types (Char -> str, Num -> float), "" as missing, then turns
NaN into None: so a blank Char value is None here, where an XPT gives "".
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .model import Dataset, Variable

DTYPES = {"Char": str, "Num": float, "Boolean": "boolean", "Number": float, "String": str}


def _read_csv_text(text: str, **kw) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), **kw)


def read_case(files: dict[str, str]) -> dict[str, Dataset]:
    """Datasets of one case from its files (name -> text), as CORE's CSVReader reads them."""
    lower = {k.lower(): k for k in files}
    if "_datasets.csv" not in lower:
        raise ValueError("no _datasets.csv")
    dmeta = _read_csv_text(files[lower["_datasets.csv"]])
    vmeta = _read_csv_text(files[lower["_variables.csv"]]) if "_variables.csv" in lower else None
    allowed = {Path(str(n)).stem.lower() for n in dmeta["Filename"].dropna()} if "Filename" in dmeta else set()
    out: dict[str, Dataset] = {}
    for fname in sorted(files):
        p = Path(fname)
        if p.suffix.lower() != ".csv" or p.name.lower() in ("_datasets.csv", "_variables.csv"):
            continue
        stem = p.stem.lower()
        if stem not in allowed:
            continue
        text = files[fname]
        declared, variables = {}, []
        if vmeta is not None:
            vm = vmeta[vmeta["dataset"].map(lambda x: Path(str(x)).stem.lower()) == stem]
            declared = {r["variable"]: DTYPES.get(r["type"], str) for _, r in vm.iterrows()}
            vm_exact = vmeta[vmeta["dataset"] == p.stem]
            for _, r in vm_exact.iterrows():
                length = r["length"]
                if pd.notna(length) and (isinstance(length, (int, float)) or (isinstance(length, str) and length.isdigit())):
                    length = int(length)
                else:
                    length = None
                variables.append(Variable(str(r["variable"]), "" if pd.isna(r["label"]) else r["label"],
                                          r["type"], length, ""))
        error = None
        try:
            frame = _read_csv_text(
                text, sep=",", header=0, index_col=False, dtype=declared or None, na_values=[""],
                keep_default_na=False, true_values=["True", "TRUE", "true", "1"],
                false_values=["False", "FALSE", "false", "0"])
            frame = frame.replace({np.nan: None})
        except (ValueError, TypeError) as exc:  # CORE: InvalidCSVFile when the dataset is read
            frame, error = None, f"Error reading CSV from: {p.name}: {type(exc).__name__}: {exc}"
        row = dmeta[dmeta["Filename"] == p.stem] if "Filename" in dmeta else dmeta.iloc[0:0]
        if len(row) == 1:
            r = row.iloc[0]
            name = r["Dataset Name"] if "Dataset Name" in dmeta.columns else str(r["Filename"]).upper()
            label = str(r["Label"])
        else:
            name, label = p.stem, ""
        first = _read_csv_text(text, nrows=1)
        first_record = first.iloc[0].fillna("").astype(str).to_dict() if len(first) else {}
        ds = Dataset(name=str(name), frame=frame, label=label, variables=variables,
                     filename=p.name, size=len(text.encode("utf-8")), first_record=first_record,
                     error=error)
        out[ds.name] = ds
    return out


def read_case_folder(folder: str | Path) -> dict[str, Dataset]:
    folder = Path(folder)
    files = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv"}
    return read_case(files)


def read_results(text: str | None) -> list[tuple[str, str, str, str]]:
    """Rows (Dataset, Record, Variable, Value) of a results.csv ([] when absent or header only)."""
    if not text:
        return []
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    return [tuple((r + ["", "", "", ""])[:4]) for r in rows[1:] if r]
