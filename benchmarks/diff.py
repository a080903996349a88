"""`cdisc diff` at scale: a synthetic LB of 10^6 records in two data cuts.

OLD: 2,000 subjects x 50 tests x 10 visits = 1,000,000 LB records (16 variables).
NEW: OLD with 1 % of the records removed, 1 % new records added (a new visit 11), and
LBSTRESN/LBSTRESC/LBORRES changed on 1 % of the records (LBNRIND on a third of those).

Prints the time of ``cdisc.diff.diff_frames`` on the two frames (keys STUDYID, USUBJID,
LBTESTCD, VISITNUM; the comparison alone) and, with --files, of ``diff_folders`` on the two
cuts written as parquet (reading included), and checks the counts it finds against the
ones it made.

    .venv/bin/python benchmarks/diff.py [--records 1000000] [--files [--xpt]]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cdisc.diff import diff_folders, diff_frames, render_text

KEYS = ["STUDYID", "USUBJID", "LBTESTCD", "VISITNUM"]


def make_lb(n_subjects: int, n_tests: int = 50, n_visits: int = 10, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    subj = np.repeat(np.arange(n_subjects), n_tests * n_visits)
    test = np.tile(np.repeat(np.arange(n_tests), n_visits), n_subjects)
    visit = np.tile(np.arange(1, n_visits + 1), n_subjects * n_tests).astype("float64")
    n = len(subj)
    usubjid = np.char.add("STUDY1-", np.char.zfill(subj.astype(str), 5)).astype(object)
    testcd = np.char.add("T", np.char.zfill(test.astype(str), 3)).astype(object)
    val = np.round(rng.normal(100, 15, n), 1)
    df = pd.DataFrame({
        "STUDYID": np.full(n, "STUDY1", dtype=object),
        "DOMAIN": np.full(n, "LB", dtype=object),
        "USUBJID": usubjid,
        "LBSEQ": (test * 100 + visit).astype("float64"),
        "LBTESTCD": testcd,
        "LBTEST": np.char.add("Test ", testcd.astype(str)).astype(object),
        "LBCAT": np.full(n, "CHEMISTRY", dtype=object),
        "LBORRES": val.astype(str).astype(object),
        "LBORRESU": np.full(n, "mg/dL", dtype=object),
        "LBSTRESC": val.astype(str).astype(object),
        "LBSTRESN": val,
        "LBSTRESU": np.full(n, "mg/dL", dtype=object),
        "LBNRIND": np.where(val > 125, "HIGH", np.where(val < 75, "LOW", "NORMAL")).astype(object),
        "VISITNUM": visit,
        "VISIT": np.char.add("VISIT ", visit.astype(int).astype(str)).astype(object),
        "LBDY": (visit * 7).astype("float64"),
    })
    return df


def make_new(old: pd.DataFrame, seed: int = 2) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    n = len(old)
    k = n // 100
    keep = np.ones(n, dtype=bool)
    removed = rng.choice(n, k, replace=False)
    keep[removed] = False
    new = old[keep].reset_index(drop=True)
    change = rng.choice(len(new), k, replace=False)
    nv = new["LBSTRESN"].to_numpy().copy()
    nv[change] = np.round(nv[change] + 0.5, 1)
    new["LBSTRESN"] = nv
    txt = new["LBSTRESC"].to_numpy().copy()
    txt[change] = nv[change].astype(str)
    new["LBSTRESC"] = txt
    new["LBORRES"] = txt.copy()
    third = change[: k // 3]
    ind = new["LBNRIND"].to_numpy().copy()
    ind[third] = np.where(ind[third] == "HIGH", "NORMAL", "HIGH")
    new["LBNRIND"] = ind
    added = old.iloc[rng.choice(n, k, replace=False)].copy()
    added["LBSEQ"] = added["LBSEQ"] - added["VISITNUM"] + 11.0
    added["VISITNUM"] = 11.0
    added["VISIT"] = "VISIT 11"
    added = added.drop_duplicates(["USUBJID", "LBTESTCD"])
    new = pd.concat([new, added], ignore_index=True)
    truth = {"removed": k, "added": len(added), "changed": k,
             "values": 3 * k + len(third)}
    return new, truth


def _write_xpt(path: Path, frame: pd.DataFrame) -> None:
    import datetime

    from cdisc.metadata import DatasetMeta, VariableMeta
    from cdisc.xpt import write_xpt

    meta = DatasetMeta(name="LB", label="Laboratory Test Results", variables=[
        VariableMeta(name=c, label=c, type="Num" if frame[c].dtype.kind == "f" else "Char") for c in frame.columns])
    write_xpt(path, frame, meta, datetime.datetime(2026, 1, 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--files", action="store_true", help="also time diff_folders on two files (reading included)")
    ap.add_argument("--xpt", action="store_true", help="with --files: XPT v5 files (cdisc.xpt) instead of parquet")
    args = ap.parse_args()
    t0 = time.perf_counter()
    old = make_lb(max(1, args.records // 500))
    new, truth = make_new(old)
    print(f"made OLD {len(old):,} and NEW {len(new):,} records in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    d = diff_frames("LB", old, new, KEYS, "benchmark")
    t = time.perf_counter() - t0
    print(f"diff_frames: {t:.2f} s  added {len(d.added):,}, removed {len(d.removed):,}, "
          f"changed records {d.changed_records:,}, changed values {len(d.changed):,}")
    got = {"removed": len(d.removed), "added": len(d.added), "changed": d.changed_records, "values": len(d.changed)}
    assert got == truth, f"expected {truth}, got {got}"

    if args.files:
        with tempfile.TemporaryDirectory() as tmp:
            for name, frame in (("old", old), ("new", new)):
                (Path(tmp) / name).mkdir()
                if args.xpt:
                    _write_xpt(Path(tmp) / name / "lb.xpt", frame)
                else:
                    frame.to_parquet(Path(tmp) / name / "lb.parquet", index=False)
            t0 = time.perf_counter()
            res = diff_folders(Path(tmp) / "old", Path(tmp) / "new")
            t = time.perf_counter() - t0
            d = res.datasets[0]
            print(f"diff_folders (2 {'XPT' if args.xpt else 'parquet'} files read, keys {', '.join(d.keys or [])}): {t:.2f} s")
            got = {"removed": len(d.removed), "added": len(d.added), "changed": d.changed_records,
                   "values": len(d.changed)}
            assert got == truth, f"expected {truth}, got {got}"
            t0 = time.perf_counter()
            render_text(res, 10)
            print(f"render_text: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
