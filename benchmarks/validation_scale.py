"""Measure the conformance layer's runtime: ``python benchmarks/validation_scale.py [N_ROWS]``.

Two measurements, printed as a small table (seconds):
    1. ~15 small datasets: the 9 of ``validation.sample`` plus 6 LB-like findings
       datasets of 40 records each (LB, VS, EG, PC, PP, QS names, LB-like content).
    2. One LB-like dataset of N_ROWS records (default 100,000) with the sample DM.
Timings come from ``ValidationResult.timings`` (GE import, per-dataset validation,
rule catalogue, total).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from cdisc.metadata import DatasetMeta, VariableMeta

from cdisc.validation.engine import validate_datasets
from cdisc.validation.sample import S1, S2, S3, STUDY, sample_build

TESTS = [f"T{i:02d}" for i in range(20)]


def lb_like(name: str, n: int) -> tuple[pd.DataFrame, DatasetMeta]:
    """An LB-shaped Findings dataset of ``n`` records over the 3 sample subjects.

    Record i: subject i % 3, --SEQ i // 3 + 1, test (i // 3) % 20, date = RFSTDTC + the
    number of completed 20-test panels, so the natural key and --SEQ are unique and
    --DY is consistent with DM.RFSTDTC.
    """
    p = name[:2]
    i = np.arange(n)
    subj = np.array([S1, S2, S3], dtype=object)[i % 3]
    rf = pd.to_datetime(pd.Series(["2023-01-20", "2023-02-15", "2023-03-10"]))[i % 3].to_numpy()
    k = i // 3
    day = k // 20
    dates = pd.Series(rf + pd.to_timedelta(day, unit="D"))
    df = pd.DataFrame({
        "STUDYID": STUDY, "DOMAIN": p, "USUBJID": subj, f"{p}SEQ": (k + 1).astype(float),
        f"{p}TESTCD": np.array(TESTS, dtype=object)[k % 20], f"{p}TEST": "Test",
        f"{p}ORRES": (k % 97).astype(str), f"{p}ORRESU": "g/L",
        f"{p}STRESC": (k % 97).astype(str), f"{p}STRESN": (k % 97).astype(float), f"{p}STRESU": "g/L",
        f"{p}NRIND": np.array(["NORMAL", "LOW", "HIGH"], dtype=object)[k % 3],
        f"{p}DTC": dates.dt.strftime("%Y-%m-%d").to_numpy(), f"{p}DY": (day + 1).astype(float),
    })
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].astype(str)

    def v(nm, label, type="Char", core="Exp", codelist=None):
        return VariableMeta(name=nm, label=label, type=type, core=core, codelist=codelist)

    meta = DatasetMeta(
        name=name, label=f"{name} (benchmark)", class_="FINDINGS",
        keys=["STUDYID", "USUBJID", f"{p}TESTCD", f"{p}DTC"],
        variables=[v("STUDYID", "Study Identifier", core="Req"), v("DOMAIN", "Domain Abbreviation", core="Req"),
                   v("USUBJID", "Unique Subject Identifier", core="Req"),
                   v(f"{p}SEQ", "Sequence Number", "Num", "Req"),
                   v(f"{p}TESTCD", "Short Name of Test", core="Req", codelist="BENCHTESTCD"),
                   v(f"{p}TEST", "Name of Test", core="Req"), v(f"{p}ORRES", "Result or Finding in Original Units"),
                   v(f"{p}ORRESU", "Original Units"), v(f"{p}STRESC", "Character Result/Finding in Std Format"),
                   v(f"{p}STRESN", "Numeric Result/Finding in Standard Units", "Num"),
                   v(f"{p}STRESU", "Standard Units"), v(f"{p}NRIND", "Reference Range Indicator", codelist="NRIND"),
                   v(f"{p}DTC", "Date/Time of Collection"), v(f"{p}DY", "Study Day of Collection", "Num", "Perm")],
    )
    return df, meta


def _ct(ct: dict) -> dict:
    ct = dict(ct)
    ct["BENCHTESTCD"] = {"extensible": False, "terms": [{"value": t} for t in TESTS]}
    ct["NRIND"] = {"extensible": True, "terms": [{"value": t} for t in ("NORMAL", "LOW", "HIGH", "ABNORMAL")]}
    return ct


def run(n_rows: int = 100_000) -> dict[str, dict[str, float]]:
    out = {}
    data, metas, ct = sample_build()
    for name in ("LB", "VS", "EG", "PC", "PP", "QS"):
        data[name], metas[name] = lb_like(name, 40)
    t = time.perf_counter()
    r = validate_datasets(data, metas, _ct(ct))
    out[f"{len(data)} small datasets"] = {**r.timings, "wall": time.perf_counter() - t,
                                           "findings": len(r.findings)}
    data, metas, ct = sample_build()
    data = {"DM": data["DM"]}
    metas = {"DM": metas["DM"]}
    data["LB"], metas["LB"] = lb_like("LB", n_rows)
    t = time.perf_counter()
    r = validate_datasets(data, metas, _ct(ct))
    out[f"LB {n_rows} rows"] = {**r.timings, "wall": time.perf_counter() - t, "findings": len(r.findings)}
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv else 100_000
    for label, t in run(n).items():
        keep = {k: v for k, v in t.items() if not k.startswith("validate:")}
        print(label)
        for k, v in keep.items():
            print(f"  {k:<20} {v:8.2f}" if isinstance(v, float) else f"  {k:<20} {v:8d}")
        per = {k.split(":", 1)[1]: v for k, v in t.items() if k.startswith("validate:")}
        if per:
            print("  per dataset: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items())))


if __name__ == "__main__":
    main()
