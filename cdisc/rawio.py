"""Reading raw CRF exports (CSV, XLSX, SAS7BDAT, XPT) into frames that remember where each row came from.

Every frame returned carries two bookkeeping columns:
``__file`` (the file name relative to the raw folder) and ``__row`` (the row number a
data manager would look up: the line in a CSV, the sheet row in XLSX, both counting the
header as 1; the record number in SAS files). Every message about a raw value names both.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import InputError, Problem

EXTENSIONS = (".csv", ".xlsx", ".sas7bdat", ".xpt")
FILE_COL = "__file"
ROW_COL = "__row"


def find_form(raw_dir: Path, form: str) -> Path:
    """The one file in ``raw_dir`` for a form, by name and any supported extension."""
    raw_dir = Path(raw_dir)
    if "/" in form or "\\" in form or form.startswith("."):
        raise InputError(f"form name {form!r} must be a plain file name without a folder")
    hits = [raw_dir / (form + ext) for ext in EXTENSIONS if (raw_dir / (form + ext)).is_file()]
    if not hits:
        raise InputError(
            f"no raw file for form {form!r} in {raw_dir}",
            hint=f"expected one of {', '.join(form + e for e in EXTENSIONS)}",
        )
    if len(hits) > 1:
        raise InputError(f"form {form!r} has more than one raw file: {[h.name for h in hits]}; keep one")
    return hits[0]


def read_raw(path: Path) -> pd.DataFrame:
    """Read one raw file by its extension.

    CSV and XLSX are read as text with blanks kept as "" (so "NA" stays the text "NA",
    as the site typed it); SAS files keep their numeric columns numeric.
    """
    path = Path(path)
    ext = path.suffix.lower()
    try:
        if ext == ".csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
            first_row = 2
        elif ext == ".xlsx":
            df = pd.read_excel(path, dtype=str, keep_default_na=False, na_filter=False, engine="openpyxl")
            first_row = 2
        elif ext in (".sas7bdat", ".xpt"):
            import pyreadstat

            reader = pyreadstat.read_sas7bdat if ext == ".sas7bdat" else pyreadstat.read_xport
            df, _ = reader(str(path))
            first_row = 1
        else:
            raise InputError(f"unsupported raw file type {ext!r}", file=path.name,
                             hint=f"use one of {', '.join(EXTENSIONS)}")
    except InputError:
        raise
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text at byte {exc.start}", file=path.name,
                         hint="export the file as UTF-8") from None
    except Exception as exc:  # parser errors from pandas/openpyxl/readstat
        raise InputError(f"cannot read file: {exc}", file=path.name) from None
    df.columns = [str(c).strip().upper() for c in df.columns]
    dup = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dup:
        raise InputError(f"duplicate column names {dup}", file=path.name, row=1 if first_row == 2 else None)
    df = df.reset_index(drop=True)
    df[FILE_COL] = path.name
    df[ROW_COL] = pd.RangeIndex(first_row, first_row + len(df))
    return df


def require_columns(df: pd.DataFrame, columns: set[str], *, file: str, key: str | None = None) -> None:
    """Every raw column a spec names must exist; list what the file has instead."""
    missing = sorted(c for c in columns if c not in df.columns)
    if missing:
        import difflib

        have = [c for c in df.columns if not c.startswith("__")]
        problems = []
        for col in missing:
            close = difflib.get_close_matches(col, have, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"the file has: {', '.join(have)}"
            problems.append(Problem(f"column {col} named by the spec is missing", file=file,
                                    column=col, key=key, hint=hint))
        raise InputError(problems)
