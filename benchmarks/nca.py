"""Time adam.nca on N simulated profiles (default 10,000; target < 5 s).

Each profile: one oral dose, 16 samples (pre-dose, 0.25-72 h), one-compartment
absorption/elimination with random ka, ke and 15% log-normal noise, values below 0.05
reported BLQ. Times: every parameter of a single-dose profile with a dose
(``ALL_PARAMETERS`` minus the dosing-interval ones), the λz sample flags, and, for the same
data read as one dosing interval (tau = 24 h), the dosing-interval parameters.
Usage: python benchmarks/nca.py [N]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdisc.adam.nca import ALL_PARAMETERS, nca_lambda_z_flags, nca_parameters  # noqa: E402
from cdisc.adam.nca.core import NEEDS_TAU  # noqa: E402

TIMES = np.array([-0.5, 0.25, 0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 36, 48, 72])


def profiles(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ka = rng.lognormal(np.log(1.2), 0.3, n)[:, None]
    ke = rng.lognormal(np.log(0.12), 0.3, n)[:, None]
    t = np.broadcast_to(TIMES, (n, len(TIMES)))
    c = 20 * ka / (ka - ke) * (np.exp(-ke * np.clip(t, 0, None)) - np.exp(-ka * np.clip(t, 0, None)))
    c = c * rng.lognormal(0, 0.15, c.shape)
    blq = c < 0.05
    return pd.DataFrame({
        "USUBJID": np.repeat([f"S{i:05d}" for i in range(n)], len(TIMES)),
        "T": t.ravel(), "C": np.where(blq, np.nan, c).ravel(), "BLQ": blq.ravel(),
        "DOSE": 100.0,
    })


def main(n: int) -> None:
    df = profiles(n)
    single = [p for p in ALL_PARAMETERS if p not in NEEDS_TAU]
    args = dict(by=["USUBJID"], time="T", value="C", blq_flag="BLQ", conc_unit="ng/mL")
    t0 = time.perf_counter()
    out = nca_parameters(df, parameters=single, dose="DOSE", dose_unit="mg", auc_start=0,
                         auc_end=24, **args)
    t1 = time.perf_counter()
    flags = nca_lambda_z_flags(df, **args)
    t2 = time.perf_counter()
    ss = nca_parameters(df, parameters=sorted(NEEDS_TAU | {"CMIN"}), tau=24.0, dose="DOSE",
                        **args)
    t3 = time.perf_counter()
    print(f"{n:,} profiles, {len(df):,} samples")
    print(f"  single dose, {len(single)} parameters: {t1 - t0:6.2f} s  ({len(out):,} rows, "
          f"{int(out['AVAL'].notna().sum()):,} computed)")
    print(f"  lambda z sample flags:          {t2 - t1:6.2f} s  ({int((flags == 'Y').sum()):,} "
          "samples flagged)")
    print(f"  dosing interval, {len(NEEDS_TAU) + 1} parameters: {t3 - t2:6.2f} s  ({len(ss):,} rows)")
    print(f"  total:                          {t3 - t0:6.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
