"""Benchmark: our XPT v5 writer (cdisc.xpt.write_xpt) against pyreadstat.write_xport.

Builds a deterministic 1,000,000-row x 20-column frame (10 character columns of width
20, 10 numeric columns with 5 % missing), writes it with both writers (each
``--repeat`` times, the best time counts, the first-run ratio is printed too), reads
both files back with pyreadstat, checks the values, lengths and labels are identical
and prints the times, MB/s (file size / write time), the speed ratio and peak memory.

Usage:
    .venv/bin/python benchmarks/xpt_write.py [--rows N] [--repeat R] [--out DIR] [--keep]
"""
from __future__ import annotations

import argparse
import datetime
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cdisc.metadata import DatasetMeta, VariableMeta  # noqa: E402
from cdisc.xpt import write_xpt  # noqa: E402

N_CHAR = 10
N_NUM = 10
WIDTH = 20
CREATED = datetime.datetime(2024, 1, 1, 0, 0, 0)


def build_frame(rows: int, seed: int = 20240101) -> tuple[pd.DataFrame, DatasetMeta]:
    """Deterministic test frame: C01..C10 text of exactly 20 characters, N01..N10 numbers.

    Every character column has at least one full 20-character value, so both writers
    arrive at length 20. Numbers mix integers, fractions, large/small magnitudes and
    negative values; every 20th value of each numeric column is missing.
    """
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_ ", dtype="S1")
    data: dict[str, object] = {}
    variables = []
    for j in range(1, N_CHAR + 1):
        raw = rng.choice(alphabet, size=(rows, WIDTH))
        raw[:, 0] = b"X"                    # no leading blank-only values
        raw[:, -1] = b"Z"                   # full width, so length is exactly 20
        data[f"C{j:02d}"] = pd.Series(raw.view(f"S{WIDTH}").ravel().astype(str), dtype="str")
        variables.append(VariableMeta(name=f"C{j:02d}", label=f"Character column {j}",
                                      type="Char"))
    for j in range(1, N_NUM + 1):
        scale = 10.0 ** rng.integers(-6, 7)
        values = rng.standard_normal(rows) * scale
        if j % 3 == 0:
            values = np.round(values)
        values[j % 20::20] = np.nan
        data[f"N{j:02d}"] = values
        variables.append(VariableMeta(name=f"N{j:02d}", label=f"Numeric column {j}",
                                      type="Num"))
    meta = DatasetMeta(name="BENCH", label="XPT writer benchmark", variables=variables)
    return pd.DataFrame(data), meta


def _timed(write, path: Path, repeat: int) -> list[float]:
    """Wall times of ``repeat`` writes to a fresh file each time (the last one is kept)."""
    times = []
    for _ in range(repeat):
        if path.exists():
            path.unlink()
        t0 = time.perf_counter()
        write(path)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2,
                    help="writes per writer; the best time counts (default 2)")
    ap.add_argument("--out", type=Path, default=None, help="directory for the two files")
    ap.add_argument("--keep", action="store_true", help="keep the files")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    df, meta = build_frame(args.rows)
    print(f"built {len(df):,} x {df.shape[1]} frame in {time.perf_counter() - t0:.2f} s")

    tmp = tempfile.TemporaryDirectory() if args.out is None else None
    out = Path(tmp.name) if tmp else args.out
    out.mkdir(parents=True, exist_ok=True)
    ours_path, theirs_path = out / "ours.xpt", out / "pyreadstat.xpt"

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t_ours = _timed(lambda p: write_xpt(p, df, meta, CREATED), ours_path, args.repeat)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t_theirs = _timed(lambda p: pyreadstat.write_xport(
        df, str(p), file_label=meta.label, column_labels=[v.label for v in meta.variables],
        table_name=meta.name, file_format_version=5), theirs_path, args.repeat)

    a, ma = pyreadstat.read_xport(str(ours_path))
    b, mb = pyreadstat.read_xport(str(theirs_path))
    # both files must hold the same data as the frame (and hence as each other)
    pd.testing.assert_frame_equal(a, b, check_dtype=True)
    pd.testing.assert_frame_equal(a, df, check_dtype=False)
    assert ma.variable_storage_width == mb.variable_storage_width, (
        ma.variable_storage_width, mb.variable_storage_width)
    assert ma.column_names_to_labels == mb.column_names_to_labels

    mb_ours = ours_path.stat().st_size / 1e6
    mb_theirs = theirs_path.stat().st_size / 1e6
    best_ours, best_theirs = min(t_ours), min(t_theirs)
    runs = lambda ts: ", ".join(f"{t:.2f}" for t in ts)  # noqa: E731
    print(f"ours       : {best_ours:7.2f} s  {mb_ours:8.1f} MB  {mb_ours / best_ours:8.1f} MB/s"
          f"   (runs: {runs(t_ours)})")
    print(f"pyreadstat : {best_theirs:7.2f} s  {mb_theirs:8.1f} MB  "
          f"{mb_theirs / best_theirs:8.1f} MB/s   (runs: {runs(t_theirs)})")
    print(f"ratio      : {best_theirs / best_ours:.1f}x faster (best of {args.repeat}; "
          f"first runs {t_theirs[0] / t_ours[0]:.1f}x; target >= 10x)")
    print(f"peak RSS   : {rss0 / 1024:.0f} MB after building the frame, "
          f"{rss1 / 1024:.0f} MB after our writes")
    print("read back with pyreadstat: values, lengths and labels identical in both files")
    if tmp and not args.keep:
        tmp.cleanup()
    elif tmp:
        print(f"files kept in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
