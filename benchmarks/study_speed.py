"""Issue 11's speed targets on the shipped study, each as a fresh process (what a user types).

    python benchmarks/study_speed.py [--repeat 5] [--serial]

Measures, ``--repeat`` times each, wall / CPU seconds and peak RSS (``os.wait4``, the
whole process tree's CPU; RSS of the largest process):

    1. ``cdisc build --out TMP``  cold: a new output folder, validation included;
    2. ``cdisc validate TMP --report TMP2``  on that build.

With ``--serial`` both run again with CDISC_JOBS=1 (the CORE rules in the same process, as
on a one-core machine), so the gain of the second core is printed as a ratio in the same run.
Targets (issue 11): build cold <= 10 s, validate <= 3 s, wall on 2 cores. The median is
compared with the target; min and max show how noisy the machine was.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDISC = [sys.executable, "-m", "cdisc.cli"]
TARGETS = {"build": 10.0, "validate": 3.0}


def timed(cmd: list[str], env: dict) -> tuple[float, float, float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def run(repeat: int, serial: bool) -> dict:
    env = dict(os.environ)
    if serial:
        env["CDISC_JOBS"] = "1"
    rows = {"build": [], "validate": []}
    with tempfile.TemporaryDirectory(prefix="cdisc-speed-") as tmp:
        for i in range(repeat):
            out, rep = Path(tmp) / f"build{i}", Path(tmp) / f"report{i}"
            rows["build"].append(timed(CDISC + ["build", "--out", str(out)], env))
            rows["validate"].append(timed(CDISC + ["validate", str(out), "--report", str(rep)], env))
            shutil.rmtree(out)
            shutil.rmtree(rep)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--serial", action="store_true", help="also run with CDISC_JOBS=1 and print the ratio")
    args = ap.parse_args()
    print(f"cores for this process: {len(os.sched_getaffinity(0))}, repeat {args.repeat}")
    modes = {"2 cores": run(args.repeat, False)}
    if args.serial:
        modes["CDISC_JOBS=1"] = run(args.repeat, True)
    print(f"{'command':<10}{'mode':<14}{'median s':>9}{'min':>7}{'max':>7}{'CPU s':>7}{'MB':>6}  target")
    medians = {}
    for mode, rows in modes.items():
        for cmd, runs in rows.items():
            walls = [r[0] for r in runs]
            med = statistics.median(walls)
            medians[(cmd, mode)] = med
            ok = "ok" if med <= TARGETS[cmd] else "MISSED"
            print(f"{cmd:<10}{mode:<14}{med:>9.2f}{min(walls):>7.2f}{max(walls):>7.2f}"
                  f"{statistics.median(r[1] for r in runs):>7.2f}{max(r[2] for r in runs):>6.0f}"
                  f"  <= {TARGETS[cmd]:.0f} s {ok if mode == '2 cores' else ''}")
    if args.serial:
        for cmd in ("build", "validate"):
            print(f"{cmd}: CDISC_JOBS=1 / 2 cores = {medians[(cmd, 'CDISC_JOBS=1')] / medians[(cmd, '2 cores')]:.2f}x")


if __name__ == "__main__":
    main()
