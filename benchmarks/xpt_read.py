"""Benchmark: our XPT reader (cdisc.xpt_read.read_xport) against pyreadstat.read_xport.

Three sets of files, each read by both readers in fresh child processes (one reader, one
set per child, so neither sees the other's memory):

(a) ``study``: the 29 XPT files of the shipped study's build (``cdisc build --no-validate``
    into a temporary folder, or ``--build DIR``);
(b) ``1M``: one 1,000,000 x 20 file (10 character columns of width 20, 10 numeric with 5 %
    missing; the frame of benchmarks/xpt_write.py) written by ``cdisc.xpt.write_xpt``
    (``--rows`` changes the size);
(c) ``pilot``: the CDISC pilot SDTM (31 files, 294k records) in ``--pilot`` (default
    /work/pilot/sdtm; benchmarks/pilot.py writes it), when that folder exists.

Per set and reader:

* time: wall and CPU seconds to read every file of the set, keeping all frames as
  ``cdisc validate`` does; best of ``--repeat`` (the frames of the previous round are
  dropped first);
* RSS: the child's peak resident set while reading (``VmHWM``, reset after the imports
  through /proc/self/clear_refs) minus its resident set after the imports, and what is
  still resident when the frames are kept (``VmRSS`` delta);
* tracemalloc (a separate child; tracing slows reading down): peak and retained Python/numpy
  allocations while reading the set.

Before timing, every file of every set is read by both readers and compared: same columns,
dtypes, values (floats bit for bit), labels, formats, lengths and types (``--no-check`` skips
this). pyreadstat is called as validation called it:
``pyreadstat.read_xport(path, disable_datetime_conversion=True)``.

Usage:
    .venv/bin/python benchmarks/xpt_read.py [--only study 1M pilot] [--rows N] [--repeat R]
        [--build DIR] [--pilot DIR] [--no-check]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

READERS = ("pyreadstat", "ours")


# ----------------------------------------------------------------------------- children

def _status_kb(field: str) -> int:
    """VmRSS / VmHWM of this process in kB (Linux /proc)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _reader(name: str):
    if name == "pyreadstat":
        import pyreadstat

        return lambda p: pyreadstat.read_xport(str(p), disable_datetime_conversion=True)
    from cdisc.xpt_read import read_xport

    return read_xport


def child(reader: str, files: list[str], repeat: int, trace: bool) -> dict:
    """Read ``files`` with ``reader`` in this (fresh) process; return the measurements."""
    import numpy  # noqa: F401  (imports before the baseline)
    import pandas  # noqa: F401

    read = _reader(reader)
    reset = _reset_peak()
    rss0 = _status_kb("VmRSS")
    if trace:
        import tracemalloc

        tracemalloc.start()
        frames = [read(f) for f in files]
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        cells = sum(df.shape[0] * df.shape[1] for df, _ in frames)
        return {"trace_peak": peak, "trace_current": current, "cells": cells}
    best_wall, best_cpu = float("inf"), float("inf")
    frames = None
    for _ in range(repeat):
        frames = None
        c0, t0 = time.process_time(), time.perf_counter()
        frames = [read(f) for f in files]
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    records = sum(len(df) for df, _ in frames)
    peak = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"wall": best_wall, "cpu": best_cpu, "records": records, "rss_peak_kb": peak - rss0,
            "rss_base_kb": rss0, "rss_kept_kb": _status_kb("VmRSS") - rss0}


def run_child(reader: str, files: list[Path], repeat: int, trace: bool) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump([str(f) for f in files], fh)
        listing = fh.name
    try:
        out = subprocess.run([sys.executable, __file__, "--child", reader, "--files", listing,
                              "--repeat", str(repeat)] + (["--trace"] if trace else []),
                             capture_output=True, text=True, check=False, cwd=ROOT)
    finally:
        os.unlink(listing)
    if out.returncode:
        raise SystemExit(f"child {reader} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------ equivalence

def compare(path: Path) -> list[str]:
    """Differences between pyreadstat's and our frame/metadata of one file ([] = equal)."""
    import numpy as np
    import pyreadstat

    from cdisc.xpt_read import read_xport

    a, am = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
    b, bm = read_xport(path)
    out = []
    if list(a.columns) != list(b.columns) or a.shape != b.shape:
        return [f"columns/shape {list(a.columns)} {a.shape} vs {list(b.columns)} {b.shape}"]
    for c in a.columns:
        if a[c].dtype != b[c].dtype:
            out.append(f"{c}: dtype {a[c].dtype} vs {b[c].dtype}")
            continue
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if x.dtype == np.float64:
            nx, ny = np.isnan(x), np.isnan(y)
            if not (np.array_equal(nx, ny) and np.array_equal(x[~nx].view(np.uint64),
                                                              y[~ny].view(np.uint64))):
                out.append(f"{c}: numbers differ")
        elif not (x == y).all():
            out.append(f"{c}: values differ")
    if [v or "" for v in am.column_labels] != bm.column_labels:
        out.append("labels differ")
    if [am.original_variable_types[c] for c in am.column_names] != bm.pyreadstat_formats:
        out.append("formats differ")
    if am.variable_storage_width != bm.lengths_by_name:
        out.append("lengths differ")
    types = {"string": "Char", "double": "Num"}
    if {k: types[v] for k, v in am.readstat_variable_types.items()} != bm.types_by_name:
        out.append("types differ")
    if (am.table_name or "") != bm.table_name or (am.file_label or "") != bm.file_label:
        out.append("dataset name/label differ")
    return out


# ------------------------------------------------------------------------------ sets

def study_files(build: Path | None, tmp: Path) -> list[Path]:
    if build is None:
        build = tmp / "study-build"
        cmd = [sys.executable, "-m", "cdisc.cli", "build", "--no-validate", "--out", str(build)]
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f"cdisc build failed:\n{res.stdout}\n{res.stderr}")
    return sorted(p for d in ("sdtm", "adam") for p in (build / d).glob("*.xpt"))


def big_file(rows: int, tmp: Path) -> list[Path]:
    import datetime

    from cdisc.xpt import write_xpt
    from xpt_write import build_frame

    df, meta = build_frame(rows)
    path = tmp / "bench.xpt"
    write_xpt(path, df, meta, datetime.datetime(2024, 1, 1))
    return [path]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", choices=("study", "1M", "pilot"),
                    default=["study", "1M", "pilot"])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", type=Path, default=None, help="a build folder (sdtm/, adam/)")
    ap.add_argument("--pilot", type=Path, default=Path("/work/pilot/sdtm"))
    ap.add_argument("--no-check", action="store_true", help="skip the equivalence check")
    ap.add_argument("--child", choices=READERS, help=argparse.SUPPRESS)
    ap.add_argument("--files", help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        files = json.loads(Path(args.files).read_text())
        print(json.dumps(child(args.child, files, args.repeat, args.trace)))
        return 0

    with tempfile.TemporaryDirectory(prefix="xpt-read-bench-") as td:
        tmp = Path(td)
        sets: dict[str, list[Path]] = {}
        if "study" in args.only:
            sets["study"] = study_files(args.build, tmp)
        if "1M" in args.only:
            t0 = time.perf_counter()
            sets["1M"] = big_file(args.rows, tmp)
            print(f"wrote {args.rows:,} x 20 file in {time.perf_counter() - t0:.1f} s")
        if "pilot" in args.only:
            if args.pilot.is_dir():
                sets["pilot"] = sorted(args.pilot.glob("*.xpt"))
            else:
                print(f"pilot folder {args.pilot} not found: skipped")
        failed = 0
        if not args.no_check:
            for name, files in sets.items():
                diffs = {f.name: compare(f) for f in files}
                bad = {k: v for k, v in diffs.items() if v}
                failed += len(bad)
                print(f"equivalence {name}: {len(files) - len(bad)} of {len(files)} files identical "
                      f"to pyreadstat" + "".join(f"\n  {k}: {'; '.join(v)}" for k, v in bad.items()))
        print()
        head = (f"{'set':6} {'files':>5} {'records':>9} {'MB':>7}  {'reader':10} {'wall s':>7} "
                f"{'CPU s':>7} {'peak RSS+':>10} {'kept RSS':>9} {'trace peak':>11} {'trace kept':>11}")
        print(head)
        print("-" * len(head))
        for name, files in sets.items():
            size = sum(f.stat().st_size for f in files) / 1e6
            res = {}
            for reader in READERS:
                m = run_child(reader, files, args.repeat, trace=False)
                m.update(run_child(reader, files, 1, trace=True))
                res[reader] = m
                print(f"{name:6} {len(files):5d} {m['records']:9,d} {size:7.1f}  {reader:10} "
                      f"{m['wall']:7.3f} {m['cpu']:7.3f} {m['rss_peak_kb'] / 1024:8.1f}MB "
                      f"{m['rss_kept_kb'] / 1024:7.1f}MB {m['trace_peak'] / 1e6:9.1f}MB "
                      f"{m['trace_current'] / 1e6:9.1f}MB")
            p, o = res["pyreadstat"], res["ours"]
            print(f"{'':6} ours: {p['wall'] / o['wall']:.1f}x faster, tracemalloc peak "
                  f"{p['trace_peak'] / max(o['trace_peak'], 1):.1f}x smaller, "
                  f"{o['trace_current'] / max(p['cells'], 1):.0f} vs "
                  f"{p['trace_current'] / max(p['cells'], 1):.0f} bytes kept per cell")
        print("\npeak RSS+: the child's peak resident set minus its resident set after the imports; "
              "kept RSS: still resident with every frame kept; trace: tracemalloc peak / kept")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
