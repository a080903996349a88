"""Time `cdisc package` splitting large datasets (FDA TCG §3.3.2) on the shipped study scaled to N subjects.

The raw export is scaled as benchmarks/build_scale.py does (``scale_raw``), built (SDTM + ADaM
+ XPT, no validation), then packaged for an agency configured in a copy of specs/study.yaml
with a small size limit, so the large datasets (LB, ADLB, VS, ...) are split. Prints the
build and package seconds, and per split dataset its variable, parts, records and sizes.

Usage: python benchmarks/split_scale.py [N_SUBJECTS] [LIMIT]
(default 10000 subjects and 16 MB per 1000 subjects: LB and ADLB split one file per category,
CHEMISTRY being ~10 MB per 1000 subjects; a smaller LIMIT makes the LBCAT/PARCAT1 split fail
with the error naming the category that alone is too large)
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from build_scale import scale_raw  # noqa: E402

from cdisc.adam.build import add_adam  # noqa: E402
from cdisc.package import package  # noqa: E402
from cdisc.pipeline import build_sdtm, write_outputs  # noqa: E402
from cdisc.runtime import use_python_strings  # noqa: E402
from cdisc.study import parse_size  # noqa: E402


def bench_specs(tmp: Path, limit: str) -> Path:
    """specs/ copied with an agency "bench" whose split limit is ``limit``."""
    specs = tmp / "specs"
    shutil.copytree(ROOT / "specs", specs)
    path = specs / "study.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.setdefault("submission", {}).setdefault("agencies", {})["bench"] = {
        "split_limit": limit, "split_by": {"LB": "LBCAT", "ADLB": "PARCAT1"}}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return specs


def main(n: int, limit: str) -> None:
    use_python_strings()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "raw").mkdir()
        specs = bench_specs(tmp, limit)
        t = time.perf_counter()
        rows = scale_raw(ROOT / "raw", tmp / "raw", n)
        print(f"raw export scaled to ~{n:,} subjects: {rows:,} rows in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        result = build_sdtm(specs, tmp / "raw")
        add_adam(result, specs)
        manifest = write_outputs(result, tmp / "build", specs_dir=specs, raw_dir=tmp / "raw")
        mb = sum(o["bytes"] for o in manifest["outputs"]) / 1e6
        print(f"build (SDTM + ADaM + XPT)  {time.perf_counter() - t:7.1f} s  "
              f"({len(manifest['outputs'])} datasets, {mb:,.1f} MB)")
        t = time.perf_counter()
        pkg = package(tmp / "build", tmp / "package", specs, allow_errors=True, agency="bench",
                      echo=lambda message: None)
        t_pkg = time.perf_counter() - t
        parts = sum(len(s["parts"]) for s in pkg["splits"])
        print(f"package (agency bench, limit {limit} = {parse_size(limit):,} bytes)  {t_pkg:7.1f} s  "
              f"({len(pkg['splits'])} datasets split into {parts} parts; "
              f"{sum(1 for d in pkg['datasets'] if d.get('lengths_widened'))} files widened to study lengths)")
        sizes = {f["path"]: f["bytes"] for f in pkg["files"]}
        for s in pkg["splits"]:
            part_mb = [sizes[p["file"]] / 1e6 for p in s["parts"]]
            print(f"  {s['dataset']:<6} {s['bytes'] / 1e6:8.2f} MB, {s['records']:>9,} records, by "
                  f"{s['split_by']:<8} -> {len(s['parts'])} parts of {min(part_mb):.2f}-{max(part_mb):.2f} MB "
                  f"({sum(p['records'] for p in s['parts']):,} records)")


if __name__ == "__main__":
    n_subjects = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    main(n_subjects, sys.argv[2] if len(sys.argv) > 2 else f"{max(1, 16 * n_subjects // 1000)} MB")
