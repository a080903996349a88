"""Time the whole `cdisc build` (SDTM, ADaM, XPT, validation, review report) at N subjects.

The shipped raw export (8 subjects) is copied with new SUBJECT numbers (101-001 ->
101-001-0001, ...) into a temporary study folder next to a copy of the shipped specs. So
that the copies are not 1,250 identical subjects (which would flatter any engine that
works on distinct values), every copy's dates move back by its own number of years
(copy k: 4 x (k mod 12) years; whole leap-year cycles, so no day is clamped and dates
partial to the month keep their order with full ones), so a 10,000-subject study has
thousands of distinct dates, as a real one does.

Each size runs `cdisc build --json` in a child process; the benchmark prints its stage
times (from the build's own --json timings), records per second, wall time and the
child's peak resident memory (os.wait4, which includes the worker processes it waited for).

Usage: python benchmarks/build_scale.py [N ...] [--no-report] [--no-validate] [-- extra build args]
       (default N: 1000)
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
_DATE = r"^\d{2}-[A-Z]{3}-\d{4}$"
_MONTH = r"^UN-(?!UNK)[A-Z]{3}-\d{4}$"
_YEAR = r"^UNK?-UNK-\d{4}$"
_SHIFTS = 12              # copy k moves back 4 x (k mod 12) years


def _shift_dates(col: pd.Series, months: np.ndarray) -> pd.Series:
    """Move DD-MON-YYYY and UN-MON-YYYY dates back ``months`` calendar months (day kept, clamped
    to the month's last day), so dates partial to the month keep their order with full dates."""
    out = col.copy()
    for pattern, fmt, day in ((_DATE, "%d-%b-%Y", None), (_MONTH, "UN-%b-%Y", 1)):
        hit = col.str.fullmatch(pattern, na=False)
        if not hit.any():
            continue
        text = col[hit] if day is None else "01" + col[hit].str[2:]
        d = pd.to_datetime(text, format="%d-%b-%Y")
        index = d.dt.year * 12 + d.dt.month - 1 - months[hit.to_numpy()]
        first = pd.to_datetime({"year": index // 12, "month": index % 12 + 1, "day": 1})
        dd = np.minimum(d.dt.day, first.dt.days_in_month)
        moved = first + pd.to_timedelta(dd - 1, unit="D")
        out[hit] = moved.dt.strftime(fmt).str.upper()
    year = col.str.fullmatch(_YEAR, na=False)
    if year.any():
        out[year] = "UN-UNK-" + (col[year].str[-4:].astype(int) - months[year.to_numpy()] // 12).astype(str)
    return out


def scale_raw(raw: Path, out: Path, n_subjects: int) -> int:
    """Write the raw forms of ~``n_subjects`` subjects to ``out``; returns the rows written."""
    subjects = sorted(pd.read_csv(raw / "dm.csv", dtype=str)["SUBJECT"])
    copies = int(np.ceil(n_subjects / len(subjects)))
    rows = 0
    for path in sorted(raw.glob("*.csv")):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "SUBJECT" not in df.columns:
            df.to_csv(out / path.name, index=False, lineterminator="\n")
            continue
        k = np.repeat(np.arange(copies), len(df))
        big = pd.concat([df] * copies, ignore_index=True)
        big["SUBJECT"] = big["SUBJECT"] + pd.Series(k).map("-{:04d}".format)
        months = 48 * (k % _SHIFTS)
        for c in big.columns:
            if c != "SUBJECT" and big[c].str.contains(r"-[A-Z]{3}-\d{4}$", regex=True).any():
                big[c] = _shift_dates(big[c], months)
        big.to_csv(out / path.name, index=False, lineterminator="\n")
        rows += len(big)
    return rows


def make_study(folder: Path, n: int) -> int:
    shutil.copytree(ROOT / "specs", folder / "specs")
    (folder / "raw").mkdir()
    return scale_raw(ROOT / "raw", folder / "raw", n)


def run_build(folder: Path, extra: list[str]) -> tuple[dict, float, float]:
    """`cdisc build --json` in a child; returns (its summary, wall seconds, peak RSS in GB)."""
    cmd = [sys.executable, "-m", "cdisc.cli", "build", "--study", str(folder), "--json", *extra]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=folder)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.exit(f"cdisc build failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    try:
        summary = json.loads(out)
    except ValueError:
        sys.exit(f"cdisc build printed no JSON summary ({proc.returncode}):\n{err.decode()[-3000:]}")
    return summary, wall, usage.ru_maxrss / 1024 ** 2


def main(argv: list[str]) -> None:
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = argv[:argv.index("--")] if "--" in argv else argv
    flags = [a for a in args if a.startswith("--")]
    sizes = [int(a) for a in args if not a.startswith("--")] or [1_000]
    extra += flags
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, pandas {pd.__version__}; "
          f"build flags: {' '.join(extra) or '(none: validation and review report included)'}")
    print(f"{'subjects':>9} {'raw rows':>10} {'records':>10} {'SDTM s':>7} {'ADaM s':>7} {'write+val s':>11} "
          f"{'wall s':>7} {'rec/s':>8} {'us/rec':>7} {'peak GB':>8}")
    per_record = {}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            rows = make_study(folder, n)
            summary, wall, rss = run_build(folder, extra)
        records = sum(d["records"] for d in summary["datasets"])
        tm = summary["timings"]
        rest = tm["total"] - tm.get("sdtm_total", 0) - tm.get("adam_total", 0)
        per_record[n] = wall / records * 1e6
        print(f"{n:>9,} {rows:>10,} {records:>10,} {tm.get('sdtm_total', 0):>7.1f} {tm.get('adam_total', 0):>7.1f} "
              f"{rest:>11.1f} {wall:>7.1f} {records / wall:>8,.0f} {per_record[n]:>7.2f} {rss:>8.2f}", flush=True)
        if summary.get("verdict"):
            print(f"{'':>9} verdict: {summary['verdict']}")
    if len(sizes) > 1:
        lo, hi = sizes[-2], sizes[-1]
        print(f"per-record time ratio {hi:,} / {lo:,} subjects: {per_record[hi] / per_record[lo]:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
