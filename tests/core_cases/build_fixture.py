"""Collect the positive/negative test cases of the CORE rules we carry into cases.json.gz.

Each rule folder of cdisc-org/cdisc-open-rules has ``{positive,negative}/NN/data/*.csv``
(datasets in CORE's CSV test format, ``.env``) and ``results/results.csv`` (CORE's output
on them, the baseline). Reading ~4,000 small files per test run is slow, so this script
packs the CSV texts of the cases of our catalogue's rules into one gzip'd JSON:

    {"source": {...}, "rules": {core_id: {"positive/01": {"env": {...}, "files": {name: text},
                                                         "results": text or null, "other": [...]}}}}

    python tests/core_cases/build_fixture.py /work/core/open-rules 618ab81d9bb38cf499469cd01aea5aa25ecda1ab
"""
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(open_rules: str, commit: str) -> None:
    base = Path(open_rules)
    ids = [json.loads(line)["id"] for line in
           (ROOT / "validation/core/rules/sdtmig-3-4.jsonl").read_text().splitlines() if line.strip()]
    rules = {}
    n_cases = 0
    for rid in ids:
        folder = next((base / f / rid for f in ("Published", "Deprecated") if (base / f / rid).is_dir()), None)
        if folder is None:
            continue
        cases = {}
        for kind in ("positive", "negative"):
            for case in sorted((folder / kind).glob("*")) if (folder / kind).is_dir() else []:
                data = case / "data"
                if not data.is_dir():
                    continue
                env = {}
                for p in data.iterdir():
                    if p.name == ".env" or p.suffix == ".env":
                        for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
                            if "=" in line and not line.strip().startswith("#"):
                                k, v = line.split("=", 1)
                                env[k.strip()] = v.strip()
                files = {p.name: p.read_text(encoding="utf-8") for p in sorted(data.iterdir())
                         if p.is_file() and p.suffix.lower() == ".csv"}
                other = sorted(p.name for p in data.iterdir() if p.is_file() and p.suffix.lower() != ".csv"
                               and p.name != ".env")
                res = case / "results" / "results.csv"
                cases[f"{kind}/{case.name}"] = {
                    "env": env, "files": files, "other": other,
                    "results": res.read_text(encoding="utf-8") if res.exists() else None,
                }
                n_cases += 1
        if cases:
            rules[rid] = cases
    doc = {"source": {"repository": "github.com/cdisc-org/cdisc-open-rules", "commit": commit,
                      "licence": "MIT", "rules": len(rules), "cases": n_cases},
           "rules": rules}
    out = Path(__file__).with_name("cases.json.gz")
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    with open(out, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(data)
    print(f"{len(rules)} rules, {n_cases} cases -> {out} ({out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
