"""Reading raw CRF exports (CSV, XLSX, SAS7BDAT, XPT) into frames that remember where each row came from.

Every frame returned carries two bookkeeping columns:
``__file`` (the file name relative to the raw folder) and ``__row`` (the row number a
data manager would look up: the line a record starts on in a CSV (line breaks inside
quoted values and blank lines counted), the sheet row in XLSX, both counting the header
as 1; the record number in SAS files). Every message about a raw value names both.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
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

    Every value comes back as text, blanks as "" (so "NA" stays the text "NA", as the site
    typed it), whatever the file type stored: the same export as CSV, XLSX, SAS7BDAT or XPT
    gives the same frame (see :func:`_as_text` for typed XLSX cells and SAS numbers/dates).
    """
    path = Path(path)
    ext = path.suffix.lower()
    try:
        if ext == ".csv":
            df, rows = _read_csv(path)
            first_row = 2
        elif ext == ".xlsx":
            df = _as_text(pd.read_excel(path, dtype=str, keep_default_na=False, na_filter=False,
                                        engine="openpyxl"))
            first_row = 2
        elif ext in (".sas7bdat", ".xpt"):
            import pyreadstat

            reader = pyreadstat.read_sas7bdat if ext == ".sas7bdat" else pyreadstat.read_xport
            df, _ = reader(str(path))
            df = _as_text(df)
            first_row = 1
        else:
            raise InputError(f"unsupported raw file type {ext!r}", file=path.name,
                             hint=f"use one of {', '.join(EXTENSIONS)}")
    except InputError:
        raise
    except _NotUtf8 as exc:
        raise InputError(f"not UTF-8 text at byte {exc.offset}", file=path.name, row=exc.line,
                         hint="export the file as UTF-8") from None
    except Exception as exc:  # parser errors from pandas/openpyxl/readstat
        raise InputError(f"cannot read file: {exc}", file=path.name) from None
    df.columns = [str(c).strip().upper() for c in df.columns]
    dup = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dup:
        raise InputError(f"duplicate column names {dup}", file=path.name, row=1 if first_row == 2 else None)
    df = df.reset_index(drop=True)
    df[FILE_COL] = path.name
    df[ROW_COL] = rows if ext == ".csv" else pd.RangeIndex(first_row, first_row + len(df))
    return df


class _NotUtf8(Exception):
    def __init__(self, offset: int, line: int):
        self.offset, self.line = offset, line


def _read_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """A CSV as text, with the line number each record starts on (header = line 1).

    Records are not lines: a quoted value may hold line breaks (free-text comments), and
    pandas skips blank lines, so the record index alone would point later messages at the
    wrong line. Steps:
    1. decode as UTF-8 (a BOM, as Excel writes it, is dropped so the first column keeps
       its name); an undecodable byte is reported with its offset and line;
    2. parse keeping blank lines as rows, so every row has a known start;
    3. a row starts on the line after the previous row's last line: 2 + its index + the
       line breaks inside the values of the rows before it;
    4. rows that are an empty physical line are dropped (as before: they hold no data).
    """
    data = Path(path).read_bytes()
    skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        pos = exc.start + skip
        raise _NotUtf8(pos, data[:pos].count(b"\n") + 1) from None
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                     skip_blank_lines=False)
    breaks = np.zeros(len(df), dtype=np.int64)
    for i in range(df.shape[1]):               # a loop over columns
        breaks += df.iloc[:, i].str.count("\n").to_numpy(dtype=np.int64)
    header = 1 + sum(str(c).count("\n") for c in df.columns)
    start = header + 1 + np.arange(len(df), dtype=np.int64) + np.cumsum(breaks) - breaks
    physical = pd.Series(text.split("\n"), dtype="str").str.rstrip("\r").eq("").to_numpy()
    empty_line = physical[np.clip(start - 1, 0, len(physical) - 1)]
    if df.shape[1]:
        empty_line &= df.eq("").all(axis=1).to_numpy()
    keep = ~empty_line
    return df.loc[keep].reset_index(drop=True), start[keep]


def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Typed cells (XLSX) and SAS numeric/date values as the text a CSV export would hold.

    1. missing (NaN, NaT, None) -> "" (a CSV blank), never the text "nan";
    2. numbers as their shortest text, integers without ".0" (SITENUMBER 101.0 -> "101",
       so a Char variable assigned from it is "101", and AETOXGR 3.0 -> "3" matches CT);
    3. a date cell (Excel date, SAS DATE format; pandas shows "YYYY-MM-DD 00:00:00") ->
       "YYYY-MM-DD", which the ISO 8601 date rule accepts; a time cell "HH:MM:00" -> "HH:MM".
    A date and time in one cell is left as "YYYY-MM-DD HH:MM:SS", which a date rule reports
    as malformed rather than guessing how to split it.
    """
    cols = []
    for i in range(df.shape[1]):               # a loop over columns, each step vectorised
        col = df.iloc[:, i]
        missing = col.isna()
        if pd.api.types.is_float_dtype(col):
            text = col.astype("str").str.replace(r"\.0$", "", regex=True)
        else:
            text = col.astype("str")
        text = (text.where(~missing, "")
                .str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", r"\1", regex=True)
                .str.replace(r"^(\d{2}:\d{2}):00$", r"\1", regex=True))
        cols.append(text.astype("str").rename(i))
    out = pd.concat(cols, axis=1) if cols else pd.DataFrame(index=df.index)
    out.columns = df.columns
    return out


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
