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


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _frame(text: str, declared: dict) -> pd.DataFrame:
    """CORE's ``pd.read_csv(dtype=declared, na_values=[""], keep_default_na=False, ...)``
    followed by ``.replace({nan: None})``; built from the csv module when every column is
    declared (much faster for thousands of small files), pandas otherwise."""
    rows = _rows(text)
    header = rows[0] if rows else []
    if not header or any(h not in declared for h in header) or len(set(header)) != len(header):
        frame = _read_csv_text(
            text, sep=",", header=0, index_col=False, dtype=declared or None, na_values=[""],
            keep_default_na=False, true_values=["True", "TRUE", "true", "1"],
            false_values=["False", "FALSE", "false", "0"])
        return frame.replace({np.nan: None})
    body = rows[1:]
    width = len(header)
    if any(len(r) > width for r in body):
        raise ValueError("Expected fewer fields")
    body = [[None if v == "" else v for v in (r if len(r) == width else r + [""] * (width - len(r)))] for r in body]
    frame = pd.DataFrame(body, columns=header, dtype=object) if body else pd.DataFrame(columns=header, dtype=object)
    # Char: text, None when blank (CORE's read_csv(dtype=str) gives a column with a blank object
    # dtype, its replace({nan: None}) then None); Num: float64, or objects with None when the
    # column has a blank
    for name in header:
        kind = declared[name]
        if kind is float:
            num = pd.to_numeric(frame[name], errors="raise").astype(float)
            # CORE's replace({nan: None}) turns a float column into objects only where it has a blank
            frame[name] = num.astype(object).where(num.notna(), None) if num.isna().any() else num
        elif kind == "boolean":
            frame[name] = frame[name].map({"True": True, "TRUE": True, "true": True, "1": True, "False": False,
                                           "FALSE": False, "false": False, "0": False})

    return frame


def read_case(files: dict[str, str]) -> dict[str, Dataset]:
    """Datasets of one case from its files (name -> text), as CORE's CSVReader reads them."""
    lower = {k.lower(): k for k in files}
    if "_datasets.csv" not in lower:
        raise ValueError("no _datasets.csv")
    drows = list(csv.DictReader(io.StringIO(files[lower["_datasets.csv"]])))
    vrows = list(csv.DictReader(io.StringIO(files[lower["_variables.csv"]]))) if "_variables.csv" in lower else []
    allowed = {Path(str(r.get("Filename"))).stem.lower() for r in drows if r.get("Filename")}
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
        for r in vrows:
            ds_name = str(r.get("dataset") or "")
            if Path(ds_name).stem.lower() == stem:
                declared[r.get("variable")] = DTYPES.get(r.get("type"), str)
            if ds_name == p.stem:
                length = r.get("length")
                length = int(length) if length and length.isdigit() else (
                    int(float(length)) if length and _is_number(length) else None)
                variables.append(Variable(str(r.get("variable")), r.get("label") or "", r.get("type") or "", length, ""))
        error = None
        try:
            frame = _frame(text, declared)
        except (ValueError, TypeError) as exc:  # CORE: InvalidCSVFile when the dataset is read
            frame, error = None, f"Error reading CSV from: {p.name}: {type(exc).__name__}: {exc}"
        match = [r for r in drows if r.get("Filename") == p.stem]
        if len(match) == 1:
            name = match[0].get("Dataset Name") or str(match[0]["Filename"]).upper()
            label = str(match[0].get("Label") or "")
        else:
            name, label = p.stem, ""
        rows = _rows(text)
        first_record = dict(zip(rows[0], rows[1])) if len(rows) > 1 else {}
        ds = Dataset(name=str(name), frame=frame, label=label, variables=variables,
                     filename=p.name, size=len(text.encode("utf-8")), first_record=first_record,
                     error=error, round_floats=False)
        out[ds.name] = ds
    return out


def _is_number(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


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
