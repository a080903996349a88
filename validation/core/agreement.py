"""Agreement of our CORE evaluator with CDISC CORE itself on a folder of XPT files.

Development tool (CORE is never a runtime dependency): CORE's findings come from a JSON file
written by CORE's own run (``run_core_full.py`` format: ``findings`` = [{rule, dataset,
status, errors: [{value, dataset, row, USUBJID, SEQ}]}], ``per_rule_status`` =
{rule: {executionStatus: count}}). Prints, rule by rule, whether both report the same
datasets and records (and values), then our timings::

    python -m validation.core.agreement BUILD/sdtm CORE_FINDINGS.json [--library LIB.json.gz]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from .engine import core_str, run_core_rules
from .library import JsonLibrary, NullLibrary


def _key(dataset, row):
    return (dataset, None if row in (None, "") else int(row))


def _same_values(core_value: dict, our_value: dict) -> bool:
    """CORE's value dict (JSON) equals ours on CORE's variables, as rendered in its reports."""
    return all(var in our_value and core_str(v) == core_str(our_value[var]) for var, v in core_value.items())


def compare(findings, status, core: dict) -> list[dict]:
    """One row per rule: CORE's and our (dataset, record) sets and whether they agree."""
    core_rows = defaultdict(dict)
    core_err = defaultdict(set)
    for f in core.get("findings", []):
        if f.get("status") == "execution error":
            core_err[f["rule"]].add(f.get("dataset"))
            continue
        for e in f.get("errors") or []:
            core_rows[f["rule"]][_key(e.get("dataset"), e.get("row"))] = e.get("value") or {}
    ours = defaultdict(dict)
    for r in findings.itertuples(index=False):
        rec = None if r.record is None or str(r.record) == "<NA>" else int(r.record)
        ours[r.core_id][(r.dataset, rec)] = dict(zip(r.variables, r.values))
    st = {s.core_id: s for s in status.itertuples(index=False)}
    core_status = core.get("per_rule_status") or {}
    out = []
    for rid in sorted(set(st) | set(core_rows) | set(core_err)):
        c, o = core_rows.get(rid, {}), ours.get(rid, {})
        s = st.get(rid)
        same_records = set(c) == set(o)
        same_values = same_records and all(_same_values(c[key], o[key]) for key in c)
        if s is not None and s.status != "executed":
            verdict = f"not executed: {s.reason}"
            if core_err.get(rid):
                verdict += f" (CORE: execution error on {len(core_err[rid])} datasets)"
            elif c:
                verdict += f" (CORE: {len(c)} findings)"
        elif same_records:
            verdict = "same" if same_values else "same records, values differ"
        else:
            verdict = "DIFFERENT"
        ours_counts = Counter(v.split(":")[0] for v in (s.dataset_status.values() if s is not None else []))
        cs = {k: v for k, v in (core_status.get(rid) or {}).items()}
        same_status = not cs or s is None or s.status != "executed" or dict(ours_counts) == cs
        out.append({
            "core_id": rid, "core": len(c), "ours": len(o), "verdict": verdict,
            "same_dataset_status": same_status, "core_status": cs, "our_status": dict(ours_counts),
            "core_datasets": sorted({k[0] for k in c}), "our_datasets": sorted({k[0] for k in o}),
            "only_core": sorted(set(c) - set(o), key=str)[:5], "only_ours": sorted(set(o) - set(c), key=str)[:5],
        })
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path, help="folder of XPT (and Dataset-JSON) files")
    ap.add_argument("core_findings", type=Path, help="CORE's findings JSON on the same folder")
    ap.add_argument("--library", type=Path, help="standards library JSON (JsonLibrary format)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (best is reported)")
    args = ap.parse_args(argv)

    from .xpt import read_folder

    library = JsonLibrary.load(args.library) if args.library else _default_library()
    print(f"library: {type(library).__name__}")
    t0 = time.perf_counter()
    datasets = read_folder(args.folder)
    t_read = time.perf_counter() - t0
    times = []
    for _ in range(max(args.repeat, 1)):
        t0 = time.perf_counter()
        findings, status = run_core_rules(datasets, library)
        times.append(time.perf_counter() - t0)
    core = json.loads(args.core_findings.read_text())
    rows = compare(findings, status, core)
    fired = [r for r in rows if r["core"] or r["ours"] or r["verdict"].startswith("not executed")]
    print(f"{'rule':<12} {'CORE':>5} {'ours':>5}  verdict / datasets")
    for r in fired:
        ds = ",".join(r["core_datasets"] or r["our_datasets"])
        print(f"{r['core_id']:<12} {r['core']:>5} {r['ours']:>5}  {r['verdict']}  [{ds}]")
        if r["verdict"] == "DIFFERENT":
            print(f"{'':<25}only CORE {r['only_core']}  only ours {r['only_ours']}")
    status_diff = [r for r in rows if not r["same_dataset_status"]]
    for r in status_diff:
        print(f"{r['core_id']:<12} per-dataset status differs: CORE {r['core_status']} ours {r['our_status']}")
    verdicts = Counter(r["verdict"].split(" (")[0] if not r["verdict"].startswith("not executed") else "not executed"
                       for r in rows)
    n_rec = sum(len(datasets[d].frame) for d in datasets if datasets[d].frame is not None)
    print(f"\n{len(rows)} rules: " + ", ".join(f"{v} {k}" for k, v in verdicts.most_common()))
    if core.get("per_rule_status"):
        print(f"per-dataset execution status (skipped / success / issue reported / execution error) "
              f"identical for {len(rows) - len(status_diff)} of {len(rows)} rules")
    print(f"CORE findings {sum(r['core'] for r in rows)}, ours {sum(r['ours'] for r in rows)}; "
          f"rules with findings: CORE {sum(1 for r in rows if r['core'])}, ours {sum(1 for r in rows if r['ours'])}")
    print(f"timing: read {len(datasets)} XPT ({n_rec} records) {t_read:.2f} s; "
          f"{len(status)} rules in {min(times):.2f} s (best of {len(times)}: "
          + ", ".join(f"{t:.2f}" for t in times) + ")")
    core_s = (core.get("summary") or {}).get("seconds", {}).get("rules")
    if core_s:
        print(f"CORE 0.17.1 on the same folder: rules {core_s:.1f} s -> {core_s / min(times):.0f}x")
    return 0 if all(r["verdict"] in ("same",) or r["verdict"].startswith("not executed") or
                    (not r["core"] and not r["ours"]) for r in rows) else 1


def _default_library():
    try:
        from .library import from_cdisc_standards

        return from_cdisc_standards()
    except Exception:  # noqa: BLE001  (no cdisc.standards: the tests' stub)
        stub = Path(__file__).resolve().parents[2] / "tests" / "core_cases" / "library-sdtmig-3-4.json.gz"
        if stub.exists():
            return JsonLibrary.load(stub)
        return NullLibrary()


if __name__ == "__main__":
    sys.exit(main())
