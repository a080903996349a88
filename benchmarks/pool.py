"""Pool the shipped study (VGO-Cs01p) with the CDISC pilot (CDISCPILOT01) and time it.

    .venv/bin/python benchmarks/pool.py [--work /tmp/pool-bench] [--vgo BUILD] [--pilot BUILD] [--no-validate]

Without --vgo / --pilot both studies are built first (``cdisc build``, about 40 s for the
pilot, not timed as pooling). The pool spec the script writes next to the builds replaces the
typographic apostrophe of the pilot's TS.TSVAL (U+2019; XPT v5 is ASCII, FDA TCG §4.1) by a
plain one, as benchmarks/pilot.py does. Prints per dataset the records of each study and of
the pool, the total in and out, the CT values harmonised and unknown, and the seconds of
reading + pooling + writing and of validation.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _build(args: list[str]) -> None:
    exe = Path(sys.executable).with_name("cdisc")
    subprocess.run([str(exe), "build", *args, "--no-report", "--quiet"], check=False, cwd=ROOT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/pool-bench"))
    ap.add_argument("--vgo", type=Path, default=None, help="an existing build of the shipped study")
    ap.add_argument("--pilot", type=Path, default=None, help="an existing build of studies/cdiscpilot01")
    ap.add_argument("--no-validate", action="store_true")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    vgo, pilot = a.work / "vgo", a.work / "pilot"
    for given, target, build_args in ((a.vgo, vgo, ["--specs", "specs", "--raw", "raw"]),
                                      (a.pilot, pilot, ["--study", "studies/cdiscpilot01"])):
        if given is not None:                      # pool.yaml paths stay inside its folder: copy
            if not target.exists():
                shutil.copytree(given, target)
        elif not (target / "manifest.json").is_file():
            t = time.perf_counter()
            _build([*build_args, "--out", str(target)])
            print(f"built {target} in {time.perf_counter() - t:.1f} s")
    (a.work / "pool.yaml").write_text('poolid: VGO-PILOT-ISS\nstudies: [vgo, pilot]\ncharacters: {"\\u2019": "\'"}\n',
                                      encoding="utf-8")
    import cdisc

    t = time.perf_counter()
    res = cdisc.pool(a.work / "pooled", spec=a.work / "pool.yaml", validate=False, quiet=True)
    t_pool = time.perf_counter() - t
    t_val = None
    if not a.no_validate:
        t = time.perf_counter()
        res = cdisc.pool(a.work / "pooled", spec=a.work / "pool.yaml", validate=True, quiet=True)
        t_val = time.perf_counter() - t - t_pool
    m = res.manifest
    print(f"{'dataset':<10}{'VGO-Cs01p':>11}{'CDISCPILOT01':>14}{'pooled':>9}")
    for name, c in m["pool"]["counts"].items():
        s = c["studies"]
        print(f"{name:<10}{s.get('VGO-Cs01p', ''):>11}{s.get('CDISCPILOT01', ''):>14}{c['pooled']:>9}")
    p = m["pool"]
    print(f"records in {m['records']['in']}, out {m['records']['out']}; {len(m['outputs'])} datasets; "
          f"CT values harmonised {len(p['ct_harmonised'])} ({sum(h['records'] for h in p['ct_harmonised'])} records), "
          f"unknown {len(p['ct_unknown'])} ({sum(u['records'] for u in p['ct_unknown'])} records); "
          f"variables absent in a study: {sum(len(v) for v in p['absent'].values())}")
    print(f"pool (read, harmonise, write, no validation): {t_pool:.1f} s")
    if t_val is not None:
        print(f"pool with validation: {t_pool + t_val:.1f} s (validation about {t_val:.1f} s); exit {res.exit_code}; "
              f"{res.folder}")
        r = json.loads((res.folder / "validation" / "results.json").read_text(encoding="utf-8"))
        print(f"validation: {r['counts']['by_severity']}, waived {r['counts']['waived']}")


if __name__ == "__main__":
    main()
