"""Time `cdisc build` (SDTM + ADaM + XPT, no validation) on the shipped raw export scaled to N subjects.

Every raw form is copied with new SUBJECT numbers (101-001 -> 101-001-0001, ...) into a
temporary raw folder, then the shipped specs build it. Prints rows and seconds per stage.
Usage: python benchmarks/build_scale.py [N_SUBJECTS]   (default 1,000)
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdisc.adam.build import add_adam  # noqa: E402
from cdisc.pipeline import build_sdtm, write_outputs  # noqa: E402


def scale_raw(raw: Path, out: Path, n_subjects: int) -> int:
    subjects = sorted(pd.read_csv(raw / "dm.csv", dtype=str)["SUBJECT"])
    copies = int(np.ceil(n_subjects / len(subjects)))
    rows = 0
    for path in sorted(raw.glob("*.csv")):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "SUBJECT" not in df.columns:
            df.to_csv(out / path.name, index=False)
            continue
        parts = [df.assign(SUBJECT=df["SUBJECT"] + f"-{k:04d}") for k in range(copies)]
        big = pd.concat(parts, ignore_index=True)
        big.to_csv(out / path.name, index=False, lineterminator="\n")
        rows += len(big)
    return rows


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "raw").mkdir()
        t = time.perf_counter()
        rows = scale_raw(ROOT / "raw", tmp / "raw", n)
        print(f"raw export scaled to ~{n:,} subjects: {rows:,} rows in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        result = build_sdtm(ROOT / "specs", tmp / "raw")
        t_sdtm = time.perf_counter() - t
        t = time.perf_counter()
        add_adam(result, ROOT / "specs")
        t_adam = time.perf_counter() - t
        t = time.perf_counter()
        manifest = write_outputs(result, tmp / "out", specs_dir=ROOT / "specs", raw_dir=tmp / "raw")
        t_write = time.perf_counter() - t
        records = sum(o["records"] for o in manifest["outputs"])
        mb = sum(o["bytes"] for o in manifest["outputs"]) / 1e6
        print(f"SDTM mapping + integrity  {t_sdtm:7.1f} s")
        print(f"ADaM derivations          {t_adam:7.1f} s")
        print(f"XPT checks + writing      {t_write:7.1f} s  ({len(manifest['outputs'])} datasets, "
              f"{records:,} records, {mb:.1f} MB)")
        for name in ("LB", "AE", "ADLB", "ADAE"):
            print(f"  {name:<6}{next(o['records'] for o in manifest['outputs'] if o['dataset'] == name):>10,} records")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000)
