"""Time the whole build (SDTM + ADaM + XPT, no validation, no report) of the shipped study
scaled to N subjects, serial and in parallel: the process pool (``--executor processes``)
and a Dask LocalCluster (``--executor dask``) at 1, 2 and every core (``os.cpu_count()``).

The raw export is scaled once (``build_scale.scale_raw``); each run is a fresh full build
through ``cdisc.build`` (as `cdisc build --no-validate --no-report` runs it) into its own
folder, timed wall clock including starting the pool or cluster (after one untimed serial
build of the shipped study, so the serial run does not pay this process's first imports). Prints seconds, the
speed-up over the serial build and whether every output file is identical to the serial
build's (sha256 of each file in the manifest), with the CPU seconds the run took (this
process and its workers) and the load average as it started: on a shared machine the wall
times say as much about the neighbours as about the build.
Usage: python benchmarks/build_parallel.py [N_SUBJECTS] [EXECUTORS]   (default 1,000 and
local,processes,dask; the serial build always runs first, as the baseline)
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cdisc  # noqa: E402
from build_scale import scale_raw  # noqa: E402


def cpu_seconds() -> float:
    """CPU time of this process and of its finished child processes (pool and cluster workers)."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def timed_build(specs: Path, raw: Path, out: Path, executor: str, jobs: int | None) -> tuple[float, float, list]:
    """Wall and CPU seconds of one full build and its outputs' (dataset, sha256)."""
    t, c = time.perf_counter(), cpu_seconds()
    built = cdisc.build(specs=specs, raw=raw, out=out, validate=False, report=False, quiet=True,
                        executor=executor, jobs=jobs)
    seconds, cpu = time.perf_counter() - t, cpu_seconds() - c
    return seconds, cpu, [(o["dataset"], o["sha256"]) for o in built.manifest["outputs"]]


def main(n: int, executors: list[str]) -> None:
    cores = os.cpu_count() or 1
    jobs = sorted({1, 2, cores})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "raw").mkdir()
        t = time.perf_counter()
        rows = scale_raw(ROOT / "raw", tmp / "raw", n)
        print(f"raw export scaled to ~{n:,} subjects: {rows:,} rows in {time.perf_counter() - t:.1f} s; "
              f"{cores} cores")
        timed_build(ROOT / "specs", ROOT / "raw", tmp / "warm-up", "local", None)   # this process's imports
        runs = [("local", None)] + [(kind, j) for kind in ("processes", "dask") if kind in executors for j in jobs]
        base, files = None, None
        print(f"{'executor':<10} {'jobs':>4} {'wall s':>8} {'speed-up':>9} {'CPU s':>7} {'load':>5}  files")
        for kind, j in runs:
            load = os.getloadavg()[0]         # a shared machine: how busy it was as the run started
            seconds, cpu, outputs = timed_build(ROOT / "specs", tmp / "raw", tmp / f"out-{kind}-{j}", kind, j)
            if base is None:
                base, files = seconds, outputs
            same = "identical" if outputs == files else "DIFFER from the serial build"
            print(f"{kind:<10} {j or 1:>4} {seconds:8.1f} {base / seconds:8.2f}x {cpu:7.1f} {load:5.1f}  {same}",
                  flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000,
         sys.argv[2].split(",") if len(sys.argv) > 2 else ["local", "processes", "dask"])
