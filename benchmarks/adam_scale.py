"""Time the ADaM build (the shipped specs, unchanged) on the shipped study scaled up to N subjects.

Each of the 9 subjects' SDTM records is copied with new USUBJIDs until there are N subjects
(default 10,000), then every ADaM dataset is derived from the copies. Prints rows and seconds
per dataset. Usage: python benchmarks/adam_scale.py [N]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdisc.adam.runner import _Runner, build_order, load_adam_specs  # noqa: E402
from cdisc.pipeline import build_sdtm  # noqa: E402


def scale(frames: dict[str, pd.DataFrame], n_subjects: int) -> dict[str, pd.DataFrame]:
    subjects = sorted(frames["DM"]["USUBJID"])
    copies = int(np.ceil(n_subjects / len(subjects)))
    out = {}
    for name, df in frames.items():
        if "USUBJID" not in df.columns:
            out[name] = df
            continue
        parts = [df.assign(USUBJID=df["USUBJID"] + f"-{k:05d}") for k in range(copies)]
        big = pd.concat(parts, ignore_index=True)
        keep = sorted({s + f"-{k:05d}" for k in range(copies) for s in subjects})[:n_subjects]
        out[name] = big[big["USUBJID"].isin(set(keep))].reset_index(drop=True)
    return out


def main(n: int) -> None:
    result = build_sdtm(ROOT / "specs", ROOT / "raw")
    sdtm = {k: v.data for k, v in result.datasets.items() if v.standard == "SDTM"}
    t = time.perf_counter()
    frames = scale(sdtm, n)
    print(f"scaled SDTM to {frames['DM'].shape[0]:,} subjects in {time.perf_counter() - t:.1f} s "
          f"(LB {len(frames['LB']):,} rows, AE {len(frames['AE']):,}, RS {len(frames['RS']):,})")
    specs = load_adam_specs(ROOT / "specs")
    total = 0.0
    for name in build_order(specs, set(frames)):
        spec, display = specs[name]
        t = time.perf_counter()
        frames[name] = _Runner(spec, display, frames).run()
        dt = time.perf_counter() - t
        total += dt
        print(f"{name:<8}{len(frames[name]):>12,} rows {dt:>8.2f} s")
    print(f"{'ADaM':<8}{'':>12} {total:>13.2f} s total for {n:,} subjects")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
