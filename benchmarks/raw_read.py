"""Benchmark: reading a large raw CSV with cdisc.rawio.read_raw against the old approach.

Writes a deterministic N-row x 12-column CRF-like CSV (default 1,000,000 rows, ~80 MB:
site numbers, subject ids, dates, results, units, a free-text comment that is sometimes
quoted because it holds a comma, quotes or a line break) and times, best of ``--repeat``:

* ``pandas read_csv``: one plain ``pd.read_csv(dtype=str, keep_default_na=False)``, the
  parser rawio used at HEAD (no structure checks, no line numbers);
* ``HEAD read_raw``: that parser plus HEAD's line-number bookkeeping (a copy of the
  ``_read_csv`` rawio had before the structure checks, kept here for comparison);
* ``read_raw``: the current reader (field counts, line numbers, quoting/NUL/header
  checks; values from pandas' C parser).

It checks that read_raw returns the same values as pandas and the same line numbers as
HEAD's reader, then prints the times and the ratio to each baseline.

Usage:
    .venv/bin/python benchmarks/raw_read.py [--rows N] [--repeat R] [--out DIR] [--keep]
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cdisc.rawio import FILE_COL, ROW_COL, read_raw  # noqa: E402


def write_csv(path: Path, rows: int, seed: int = 20240101) -> None:
    """A deterministic CRF-like export: 12 columns, 1 % of comments span two lines."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "PROJECT": np.full(rows, "VGO-Cs01p", dtype=object),
        "SITENUMBER": rng.choice(["101", "102", "103"], rows),
        "SUBJECT": np.char.add("101-", (np.arange(rows) % 1000).astype(str)).astype(object),
        "FOLDER": rng.choice(["SCR", "D1", "D28", "UNS"], rows),
        "LBTEST": rng.choice(["Haemoglobin", "Platelets", "Neutrophils, absolute"], rows),
        "LBORRES": rng.normal(10, 3, rows).round(2).astype(str),
        "LBORRESU": rng.choice(["g/L", "10^9/L", ""], rows),
        "LBDAT": rng.choice(["12-MAR-2024", "UN-MAR-2024", "01-JAN-2025"], rows),
        "LBTIM": rng.choice(["08:30", "", "14:05"], rows),
        "LBSTAT": rng.choice(["", "NOT DONE"], rows),
        "RECSTATUS": rng.choice(["Active", "Deleted"], rows, p=[0.99, 0.01]),
        "LBCOMM": rng.choice(["", "sample haemolysed", 'repeat, see "note"', "line one\nline two"],
                             rows, p=[0.9, 0.05, 0.04, 0.01]),
    })
    frame.to_csv(path, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)


def pandas_read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


def head_read_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """rawio._read_csv as it was at HEAD before the structure checks (for comparison)."""
    data = Path(path).read_bytes()
    skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    text = data[skip:].decode("utf-8")
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                     skip_blank_lines=False)
    breaks = np.zeros(len(df), dtype=np.int64)
    for i in range(df.shape[1]):
        breaks += df.iloc[:, i].str.count("\n").to_numpy(dtype=np.int64)
    header = 1 + sum(str(c).count("\n") for c in df.columns)
    start = header + 1 + np.arange(len(df), dtype=np.int64) + np.cumsum(breaks) - breaks
    physical = pd.Series(text.split("\n"), dtype="str").str.rstrip("\r").eq("").to_numpy()
    empty_line = physical[np.clip(start - 1, 0, len(physical) - 1)]
    if df.shape[1]:
        empty_line &= df.eq("").all(axis=1).to_numpy()
    keep = ~empty_line
    return df.loc[keep].reset_index(drop=True), start[keep]


def best(fn, repeat: int) -> tuple[float, float, object]:
    """(best time, first time, last result) of ``repeat`` calls."""
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), times[0], out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="folder for the CSV (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the CSV")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory() if args.out is None else None
    folder = Path(tmp.name) if tmp else args.out
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lb.csv"
    t = time.perf_counter()
    write_csv(path, args.rows)
    print(f"wrote {path.name}: {args.rows:,} rows x 12 columns, "
          f"{path.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s")

    # interleave the readers so that load from other processes hits each alike
    results = {}
    for name, fn in [("pandas read_csv", lambda: pandas_read_csv(path)),
                     ("HEAD read_raw", lambda: head_read_csv(path)),
                     ("read_raw", lambda: read_raw(path))]:
        results[name] = best(fn, args.repeat)

    ref = results["pandas read_csv"][2]
    old_df, old_rows = results["HEAD read_raw"][2]
    new = results["read_raw"][2]
    assert new.drop(columns=[FILE_COL, ROW_COL]).equals(ref), "values differ from pandas"
    assert (new[ROW_COL].to_numpy() == old_rows).all(), "line numbers differ from HEAD's reader"
    print(f"checked: read_raw gives pandas' values and HEAD's line numbers "
          f"(last row on line {int(new[ROW_COL].iloc[-1]):,})")
    base = results["pandas read_csv"][0]
    head = results["HEAD read_raw"][0]
    print(f"{'reader':<18}{'best s':>8}{'first s':>9}{'x pandas':>10}{'x HEAD':>8}")
    for name, (b, first, _) in results.items():
        print(f"{name:<18}{b:>8.2f}{first:>9.2f}{b / base:>10.2f}{b / head:>8.2f}")
    if tmp and not args.keep:
        tmp.cleanup()
    elif args.keep:
        print(f"kept {path}")


if __name__ == "__main__":
    main()
