"""Agreement of our validator with CDISC CORE 0.17.1, per CORE rule, and the time each takes.

CORE is not run here: its findings on each folder were stored once in
``benchmarks/core_findings/*.json.gz`` (rule, dataset, record, variables, values; CORE
version, rule count, wall time, peak memory) and are the reference. Folders:

* ``study``: the shipped study's build, as CORE saw it (``core_findings/study-build.tar.gz``:
  ``sdtm/*.xpt``, ``metadata.json``, ``manifest.json``, ``study.json``), or with ``--study current`` a fresh
  ``cdisc build --no-validate`` (then files that differ from what CORE saw are reported as
  stale: refresh the stored findings);
* ``defect-<name>``: the copies ``benchmarks/defects.py`` makes of that study, one defect each;
* ``pilot``: the CDISC pilot SDTM written by ``benchmarks/pilot.py`` (``--pilot DIR``,
  default /work/pilot/sdtm; skipped when missing).

For each folder it runs OUR validator (``run_our_validator``: the one adapter to change when
the validator's API changes) in a child process (wall time and peak RSS from ``os.wait4``)
and compares per CORE rule. A CORE finding is matched when one of our findings for that rule
(``.rule`` or ``.core_ids``) has
  - record findings: the same dataset and record number;
  - variable-metadata findings (CORE reports the variable's position as "row"): the same
    dataset and variable (or the same position);
  - dataset-level findings (no record): the same dataset.
Unmatched CORE findings of a rule listed in ``validation/core_differences.yaml`` (documented
CORE false positives: ``- {core_id, reason, datasets?}``) count as documented. Target: 0 CORE
findings unmatched and undocumented. CORE's execution errors (CORE-000929 / CORE-001081 need
a define.xml) are listed, not counted::

    .venv/bin/python benchmarks/core_agreement.py                   # all folders
    .venv/bin/python benchmarks/core_agreement.py --only study pilot --pilot /work/pilot/sdtm
    .venv/bin/python benchmarks/core_agreement.py --list            # what is stored

Refreshing the stored findings needs CORE (Python 3.12, its own venv, the standards cache;
see benchmarks/README.md)::

    .venv/bin/python benchmarks/core_agreement.py --refresh study defects \\
        --core-python /work/core/venv/bin/python --core-cache /work/shared/core-cache
    .venv/bin/python benchmarks/core_agreement.py --refresh pilot      # 15-25 min, 6-14 GB
    .venv/bin/python benchmarks/core_agreement.py --store NAME RAW.json TIME.txt FOLDER  # a run made by hand
"""
from __future__ import annotations

import argparse
import collections
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "benchmarks" / "core_findings"
SNAPSHOT = STORE / "study-build.tar.gz"
# The build the defect copies are made from: the study snapshot when they were last refreshed
# (so the shipped study can be refreshed alone, e.g. after new domains, without making the 22
# stored defect runs stale); without this file they come from SNAPSHOT.
DEFECT_BASE = STORE / "defects-build.tar.gz"
RUNNER = STORE / "run_core_full.py"
DIFFERENCES = ROOT / "validation" / "core_differences.yaml"
CORE_RULES = ROOT / "validation" / "core" / "rules" / "sdtmig-3-4.jsonl"
sys.path.insert(0, str(ROOT / "benchmarks"))

VARIABLE_RULE_TYPES = {"Variable Metadata Check", "Variable Metadata Check against Library Metadata",
                       "Value Check with Variable Metadata"}
DATASET_SUFFIXES = (".xpt", ".json")


# ============================================================================ our validator

def run_our_validator(folder: Path) -> tuple[list[dict], str]:
    """OUR validator on ``folder`` (the one CORE saw) -> (findings as plain dicts, how it was run).

    The one place that knows the validator's API. Interface::

        from cdisc.validation import validate_folder
        result = validate_folder(path)       # ValidationResult
        result.findings, result.waived       # objects with .rule, .core_ids, .dataset, .row,
                                             # .variable, .usubjid (waived: (finding, waiver) pairs)

    When ``folder`` is the ``sdtm/`` of a cdisc build, the build folder is validated (its
    metadata.json and study.json are the study context); the caller keeps the findings on
    the datasets CORE saw. A finding without ``.core_ids`` takes the ``core_id`` of its rule
    in validation/rules.yaml. Without ``validate_folder``: ``cdisc validate --out BUILD`` and
    BUILD/validation/results.json.
    """
    try:
        from cdisc.validation import validate_folder
    except ImportError:
        return _cli_fallback(folder)
    target = folder.parent if (folder.parent / "metadata.json").is_file() else folder
    result = validate_folder(target)
    core_of = _catalogue_core_ids()
    out = [_finding(f, False, core_of) for f in result.findings]
    out += [_finding(f[0] if isinstance(f, tuple) else f, True, core_of) for f in getattr(result, "waived", [])]
    return out, f"validation.validate_folder({target.name})"


def _catalogue_core_ids() -> dict[str, list[str]]:
    """Our rule id -> CORE ids, from the rule catalogue (``core_id``: one id or several)."""
    try:
        from cdisc.validation import load_rules
        return {r.id: re.findall(r"CORE-\d{6}", str(getattr(r, "core_id", None) or "")) for r in load_rules()}
    except Exception:       # noqa: BLE001 - the catalogue is being rewritten; ids then come from the findings
        return {}


def _finding(f, waived: bool, core_of: dict) -> dict:
    get = (lambda k, d=None: f.get(k, d)) if isinstance(f, dict) else (lambda k, d=None: getattr(f, k, d))
    rule = get("rule")
    ids = get("core_ids")
    ids = list(core_of.get(rule, []) if ids is None else ids)
    if str(rule).startswith("CORE-") and rule not in ids:
        ids.append(rule)
    row = get("row")
    return {"rule": rule, "core_ids": ids, "dataset": (get("dataset") or "").upper(),
            "row": None if row is None else int(row), "variable": get("variable"),
            "usubjid": get("usubjid"), "waived": waived}


def _cli_fallback(folder: Path) -> tuple[list[dict], str]:
    build = folder.parent if (folder.parent / "metadata.json").is_file() else None
    cdisc = ROOT / ".venv" / "bin" / "cdisc"
    if build is None:
        # the interface the issue asks for; today's CLI exits 2 (no metadata.json)
        p = subprocess.run([str(cdisc), "validate", str(folder)], capture_output=True, text=True)
        results = folder / "validation" / "results.json"
        if p.returncode == 2 or not results.is_file():
            msg = (p.stderr or p.stdout).strip().splitlines()
            return [], f"unavailable: `cdisc validate {folder.name}` exit {p.returncode}: {msg[-1] if msg else ''}"
    else:
        p = subprocess.run([str(cdisc), "validate", "--out", str(build), "--fail-on", "error"],
                           capture_output=True, text=True)
        results = build / "validation" / "results.json"
        if not results.is_file():
            msg = (p.stderr or p.stdout).strip().splitlines()
            return [], f"unavailable: `cdisc validate --out` exit {p.returncode}: {msg[-1] if msg else ''}"
    data = json.loads(results.read_text(encoding="utf-8"))
    core_of = _catalogue_core_ids()
    out = [_finding(f, False, core_of) for f in data.get("findings", [])]
    out += [_finding(f, True, core_of) for f in data.get("waived", [])]
    return out, "cli: cdisc validate --out BUILD (validation/results.json)"


def _child(folder: Path, out: Path) -> int:
    """In the child process: run the adapter, write its findings and own peak RSS."""
    import resource
    t = time.perf_counter()
    try:
        findings, how = run_our_validator(folder)
    except Exception as e:      # noqa: BLE001 - report, do not hide
        findings, how = [], f"failed: {type(e).__name__}: {e}"
    seconds = time.perf_counter() - t
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, kids.ru_maxrss)
    out.write_text(json.dumps({"findings": findings, "how": how, "seconds_in_process": seconds,
                               "maxrss_kb": kb, "children_cpu_s": kids.ru_utime + kids.ru_stime},
                              default=str), encoding="utf-8")
    return 0


def run_ours_timed(folder: Path) -> dict:
    """Run the adapter in a child process: findings, wall seconds, peak RSS (MB)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ours.json"
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--_child", str(folder), str(out)])
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        if not out.is_file():
            return {"findings": [], "how": f"failed: child exit {p.returncode}", "wall_s": wall, "cpu_s": None,
                    "peak_rss_mb": None}
        data = json.loads(out.read_text(encoding="utf-8"))
    data["wall_s"] = wall
    data["cpu_s"] = ru.ru_utime + ru.ru_stime + (data.get("children_cpu_s") or 0)
    data["peak_rss_mb"] = max(ru.ru_maxrss, data.get("maxrss_kb") or 0) / 1024
    return data


# ============================================================================ stored CORE findings

def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.suffix.lower() in DATASET_SUFFIXES}


def _columns(folder: Path) -> dict[str, list[str]]:
    """Variable names in file order per dataset (to name CORE's variable-metadata findings)."""
    import pyreadstat
    cols = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() == ".xpt":
            _, meta = pyreadstat.read_xport(str(p), metadataonly=True)
            cols[p.stem.upper()] = list(meta.column_names)
        elif p.suffix.lower() == ".json":
            head = json.loads(p.read_text(encoding="utf-8"))
            cols[p.stem.upper()] = [c["name"] for c in head.get("columns", [])]
    return cols


def _rule_types() -> dict[str, tuple[str, str]]:
    if not CORE_RULES.is_file():
        return {}
    out = {}
    for line in CORE_RULES.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        out[r["id"]] = (r["rule"].get("Rule Type"), r["rule"].get("Sensitivity"))
    return out


def parse_time_v(path: Path | None) -> dict:
    """/usr/bin/time -v output -> wall seconds, max RSS (MB), CPU seconds."""
    if not path or not Path(path).is_file():
        return {}
    text = Path(path).read_text()
    out = {}
    m = re.search(r"Elapsed \(wall clock\) time.*?: (?:(\d+):)?(\d+):([\d.]+)", text)
    if m:
        out["wall_s"] = round(int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3)), 1)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        out["max_rss_mb"] = round(int(m.group(1)) / 1024, 1)
    user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    system = re.search(r"System time \(seconds\): ([\d.]+)", text)
    if user and system:
        out["cpu_s"] = round(float(user.group(1)) + float(system.group(1)), 1)
    m = re.search(r"Exit status: (\d+)", text)
    if m:
        out["exit_status"] = int(m.group(1))
    return out


def _git_source() -> dict:
    def git(*a):
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()
    return {"git_head": git("rev-parse", "--short", "HEAD"), "working_tree_changes": bool(git("status", "--porcelain"))}


def compact(raw: dict, folder: Path, timing: dict, extra: dict | None = None) -> dict:
    """run_core_full.py output -> the stored form (one row per finding, sorted)."""
    types = _rule_types()
    cols = _columns(folder)
    findings, errors = [], collections.defaultdict(list)
    messages = {}
    for f in raw["findings"]:
        if f.get("status") == "execution error":
            errors[f["rule"]].append(f.get("dataset"))
            continue
        messages[f"{f['rule']} {f.get('dataset')}"] = f.get("message")
        rtype = (types.get(f["rule"]) or (None, None))[0]
        for e in f.get("errors") or []:
            ds = (e.get("dataset") or f.get("dataset") or "").upper()
            row = e.get("row")
            values = e.get("value") or {}
            variable = None
            if row is not None and (rtype in VARIABLE_RULE_TYPES or "variable_name" in values):
                kind = "variable"
                variable = values.get("variable_name")
                if variable is None and 1 <= int(row) <= len(cols.get(ds, [])):
                    variable = cols[ds][int(row) - 1]
            else:
                kind = "record" if row is not None else "dataset"
            findings.append([f["rule"], ds, None if row is None else int(row), kind, variable,
                             e.get("USUBJID"), e.get("SEQ"), values])
    findings.sort(key=lambda r: (r[0], r[1], -1 if r[2] is None else r[2], json.dumps(r[7], sort_keys=True, default=str)))
    s = raw.get("summary", {})
    return {
        "format": "cdisc benchmarks core_findings v1",
        "engine": s.get("engine", "cdisc-rules-engine 0.17.1"), "standard": s.get("standard", "sdtmig 3-4"),
        "rules": s.get("n_rules"), "datasets": s.get("n_datasets"),
        "run": {**timing, "in_process_s": s.get("seconds"), "peak_rss_tree_mb": s.get("peak_rss_tree_mb"),
                "execution_status_counts": s.get("execution_status_counts"), "raised": s.get("raised") or {}},
        "files": file_hashes(folder),
        "columns": ["rule", "dataset", "row", "kind", "variable", "usubjid", "seq", "values"],
        "findings": findings,
        "execution_errors": {k: sorted(v) for k, v in sorted(errors.items())},
        "messages": dict(sorted(messages.items())),
        "rule_status": raw.get("per_rule_status", {}),
        **(extra or {}),
    }


def save(name: str, data: dict) -> Path:
    path = STORE / f"{name}.json.gz"
    body = json.dumps(data, separators=(",", ":"), default=str).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
        gz.write(body)
    path.write_bytes(buf.getvalue())
    return path


def load(name: str) -> dict | None:
    path = STORE / f"{name}.json.gz"
    if not path.is_file():
        return None
    return json.loads(gzip.decompress(path.read_bytes()))


# ============================================================================ folders

def write_snapshot(build: Path) -> None:
    """The study build CORE saw -> study-build.tar.gz (sdtm/, metadata.json, manifest.json; deterministic)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            files = [build / n for n in ("metadata.json", "manifest.json", "study.json") if (build / n).is_file()]
            files += sorted((build / "sdtm").iterdir())
            for p in files:
                info = tarfile.TarInfo(p.relative_to(build).as_posix())
                data = p.read_bytes()
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    SNAPSHOT.write_bytes(buf.getvalue())


def study_folder(work: Path, mode: str, snapshot: Path = SNAPSHOT, name: str = "study") -> Path:
    target = work / name
    if target.exists():
        shutil.rmtree(target)
    if mode == "snapshot":
        with tarfile.open(snapshot) as tar:
            tar.extractall(target, filter="data")
    else:
        subprocess.run([str(ROOT / ".venv" / "bin" / "cdisc"), "build", "--no-validate", "--out", str(target)],
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return target


def folders(args, work: Path) -> list[tuple[str, Path, Path | None]]:
    """(stored name, folder CORE saw / we validate, build folder or None)."""
    want = set(args.only or ["study", "defects", "pilot"])
    out = []
    need_base = "defects" in want or any(w.startswith("defect-") for w in want)
    if "study" in want:
        study = study_folder(work, args.study)
        out.append(("study", study / "sdtm", study))
    if need_base:
        study = study_folder(work, "snapshot", DEFECT_BASE if DEFECT_BASE.is_file() else SNAPSHOT, "defect-base")
    import defects
    names = [n for n in defects.DEFECTS if "defects" in want or f"defect-{n}" in want
             or any(f"defect-{x}" in want for x, d in defects.DEFECTS.items() if d.baseline == n)]
    for n in names:
        defects.make(study, work / "defects", n)
        out.append((f"defect-{n}", work / "defects" / n / "sdtm", work / "defects" / n))
    if "pilot" in want:
        if args.pilot.is_dir():
            out.append(("pilot", args.pilot, None))
        else:
            print(f"pilot: {args.pilot} missing (make it with benchmarks/pilot.py --out {args.pilot}); skipped")
    return out


# ============================================================================ comparison

def load_differences() -> list[dict]:
    """validation/core_differences.yaml: a list of {core_id, reason, datasets?, variables?},
    or a mapping with that list under ``differences``; a missing file is empty."""
    if not DIFFERENCES.is_file():
        return []
    import yaml
    data = yaml.safe_load(DIFFERENCES.read_text(encoding="utf-8")) or []
    if isinstance(data, dict):
        data = data.get("differences") or []
    return [d for d in data if isinstance(d, dict) and d.get("core_id")]


def documented(diffs: list[dict], rule: str, finding: dict) -> bool:
    """A CORE finding is documented when an entry names its rule and (if given) its dataset and variable."""
    for d in diffs:
        if d.get("core_id") != rule:
            continue
        if d.get("datasets") and not any(same_dataset(finding["dataset"], x.upper()) for x in d["datasets"]):
            continue
        if d.get("variables"):
            names = {str(k).upper() for k in (finding.get("values") or {})} | {(finding.get("variable") or "").upper()}
            if not names & {v.upper() for v in d["variables"]}:
                continue
        return True
    return False


def same_dataset(core_ds: str, our_ds: str) -> bool:
    """Equal, or ours names the domain of CORE's split dataset (LB for LBCH, SUPPLB for SUPPLBCH; SDTMIG §4.1.7)."""
    return core_ds == our_ds or (len(our_ds) >= 2 and core_ds.startswith(our_ds) and len(core_ds) - len(our_ds) <= 2)


def compare(core: dict, ours: list[dict], diffs: list[dict]) -> dict:
    """Per CORE rule: CORE findings, matched by us, unmatched (documented or not); ours CORE lacks.

    ``waived``: how many of our findings for the rule are waived (they still match: we report them).
    """
    ours_by = collections.defaultdict(list)
    for f in ours:
        for rid in set(f["core_ids"]):
            ours_by[rid].append(f)
    cols = core["columns"]
    core_by = collections.defaultdict(list)
    for row in core["findings"]:
        r = dict(zip(cols, row))
        core_by[r["rule"]].append(r)
    rows = []
    for rid in sorted(set(core_by) | set(ours_by)):
        mine = ours_by.get(rid, [])
        recs = {(f["dataset"], f["row"]) for f in mine}
        vars_ = {(f["dataset"], (f["variable"] or "").upper()) for f in mine}
        dsets = {f["dataset"] for f in mine}
        matched = unmatched_doc = unmatched = 0
        used = set()
        examples = []
        for c in core_by.get(rid, []):
            if c["kind"] == "record":
                ok = (c["dataset"], c["row"]) in recs
                used.add(("r", c["dataset"], c["row"]))
            elif c["kind"] == "variable":
                # the variable's name, or CORE's "row" (the variable's position) if ours reports that too
                var = (c["variable"] or "").upper()
                ok = any(v == var and same_dataset(c["dataset"], d) for d, v in vars_) or (c["dataset"], c["row"]) in recs
                used.update(("v", d, var) for d, v in vars_ if v == var and same_dataset(c["dataset"], d))
                used.add(("r", c["dataset"], c["row"]))
            else:
                ok = any(same_dataset(c["dataset"], d) for d in dsets)
                used.update(("d", d) for d in dsets if same_dataset(c["dataset"], d))
            if ok:
                matched += 1
            elif documented(diffs, rid, c):
                unmatched_doc += 1
            else:
                unmatched += 1
                if len(examples) < 3:
                    examples.append(f"{c['dataset']}:{c['row'] if c['kind'] != 'variable' else c['variable']}")
        extra = [f for f in mine
                 if ("r", f["dataset"], f["row"]) not in used
                 and ("v", f["dataset"], (f["variable"] or "").upper()) not in used
                 and ("d", f["dataset"]) not in used]
        rows.append({"rule": rid, "core": len(core_by.get(rid, [])), "matched": matched,
                     "unmatched_documented": unmatched_doc, "unmatched": unmatched, "ours_extra": len(extra),
                     "ours": len(mine), "waived": sum(f["waived"] for f in mine),
                     "listed": any(d.get("core_id") == rid for d in diffs), "examples": examples,
                     "datasets": sorted({c["dataset"] for c in core_by.get(rid, [])})})
    no_core = [f for f in ours if not f["core_ids"]]
    return {"rules": rows, "ours_without_core_id": len(no_core),
            "ours_without_core_id_rules": collections.Counter(f["rule"] for f in no_core)}


def fired(core: dict) -> dict[str, int]:
    return collections.Counter(r[0] for r in core["findings"])


def _keyset(core: dict) -> set:
    return {(r[0], r[1], r[2], r[4], json.dumps(r[7], sort_keys=True, default=str)) for r in core["findings"]}


def print_table(name: str, res: dict, core: dict, ours: dict, stale: list[str]) -> None:
    print(f"\n=== {name}: CORE {sum(r['core'] for r in res['rules'])} findings on "
          f"{sum(1 for r in res['rules'] if r['core'])} rules; ours: {ours['how']}"
          + (f"; STALE: {len(stale)} files differ from what CORE saw ({', '.join(stale[:4])})" if stale else ""))
    if core.get("execution_errors"):
        print("  CORE execution errors (not findings): "
              + ", ".join(f"{k} ({len(v)} datasets)" for k, v in core["execution_errors"].items()))
    print(f"  {'CORE rule':<12} {'datasets':<18} {'CORE':>6} {'matched':>8} {'unmatched':>9} {'documented':>10} "
          f"{'ours+':>6} {'waived':>6}  listed  examples")
    for r in res["rules"]:
        print(f"  {r['rule']:<12} {','.join(r['datasets'])[:18]:<18} {r['core']:>6} {r['matched']:>8} "
              f"{r['unmatched']:>9} {r['unmatched_documented']:>10} {r['ours_extra']:>6} {r['waived']:>6}  "
              f"{'yes' if r['listed'] else '-':<6}  {' '.join(r['examples'])}")
    if res["ours_without_core_id"]:
        print(f"  ours without a CORE id: {res['ours_without_core_id']} "
              f"({', '.join(f'{k} {v}' for k, v in res['ours_without_core_id_rules'].most_common(8))})")


def ratio(a, b):
    return f"{a / b:.1f}x" if a and b else "n/a"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="*", help="study, defects, defect-<name>, pilot (default: all)")
    ap.add_argument("--study", choices=["snapshot", "current"], default="snapshot",
                    help="the build CORE saw (stored) or a fresh build of the current specs")
    ap.add_argument("--pilot", type=Path, default=Path("/work/pilot/sdtm"))
    ap.add_argument("--work", type=Path, help="folder for the study and defect copies (default: a temp folder)")
    ap.add_argument("--json", type=Path, help="also write the per-folder results here")
    ap.add_argument("--list", action="store_true", help="list the stored CORE findings")
    ap.add_argument("--refresh", nargs="*", help="re-run CORE and store: study, defects, defect-<name>, pilot")
    ap.add_argument("--core-python", default="/work/core/venv/bin/python")
    ap.add_argument("--core-cache", default="/work/shared/core-cache")
    ap.add_argument("--store", nargs=4, metavar=("NAME", "RAW_JSON", "TIME_V", "FOLDER"),
                    help="store a run of run_core_full.py made by hand (TIME_V: /usr/bin/time -v output or -)")
    ap.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._child:
        return _child(Path(args._child[0]), Path(args._child[1]))
    if args.list:
        return list_stored()
    if args.store:
        name, raw, tv, folder = args.store
        extra = {}
        if (Path(folder).parent / "defect.json").is_file():
            extra["defect"] = json.loads((Path(folder).parent / "defect.json").read_text())
        data = compact(json.loads(Path(raw).read_text()), Path(folder),
                       {**parse_time_v(None if tv == "-" else Path(tv)), "measured": _today(),
                        "how": "run_core_full.py under /usr/bin/time -v, nice -n 10, unshare -rn (offline)"},
                       {**extra, "source": {"folder": name, **_git_source()}})
        print(f"stored {save(name, data)}: {len(data['findings'])} findings")
        if name == "study":
            write_snapshot(Path(folder).parent)
            print(f"stored {SNAPSHOT} (the build CORE saw)")
        return 0
    if args.refresh is not None:
        return refresh(args)

    work = args.work or Path(tempfile.mkdtemp(prefix="core-agreement-"))
    work.mkdir(parents=True, exist_ok=True)
    diffs = load_differences()
    results, totals = {}, collections.Counter()
    seen = {}
    import defects
    timing = []
    for name, folder, build in folders(args, work):
        core = load(name)
        if core is None:
            print(f"\n=== {name}: no stored CORE findings ({STORE.name}/{name}.json.gz); refresh with --refresh {name}")
            continue
        stale = sorted(k for k in set(core["files"]) | set(file_hashes(folder))
                       if core["files"].get(k) != file_hashes(folder).get(k))
        ours = run_ours_timed(folder)
        sdtm = {p.stem.upper() for p in folder.iterdir() if p.suffix.lower() in DATASET_SUFFIXES}
        ours["findings"] = [f for f in ours["findings"]
                            if not f["dataset"] or any(same_dataset(d, f["dataset"]) for d in sdtm)]
        res = compare(core, ours["findings"], diffs)
        print_table(name, res, core, ours, stale)
        t = {"core": sum(r["core"] for r in res["rules"]), "matched": sum(r["matched"] for r in res["rules"]),
             "documented": sum(r["unmatched_documented"] for r in res["rules"]),
             "unmatched": sum(r["unmatched"] for r in res["rules"]),
             "ours_extra": sum(r["ours_extra"] for r in res["rules"]),
             "ours_without_core_id": res["ours_without_core_id"], "ours": len(ours["findings"])}
        print(f"  total: CORE {t['core']}, matched {t['matched']}, unmatched documented {t['documented']}, "
              f"UNMATCHED UNDOCUMENTED {t['unmatched']}; ours {t['ours']}: CORE lacks {t['ours_extra']}, "
              f"no CORE id {t['ours_without_core_id']}")
        totals.update(t)
        results[name] = {"totals": t, "rules": res["rules"], "how": ours["how"], "stale": stale,
                         "ours_wall_s": ours["wall_s"], "ours_peak_rss_mb": ours["peak_rss_mb"]}
        run = core.get("run", {})
        ran = not ours["how"].startswith(("unavailable", "failed"))
        timing.append((name, run.get("wall_s"), run.get("cpu_s"), run.get("max_rss_mb"), run.get("peak_rss_tree_mb"),
                       ours["wall_s"] if ran else None, ours["cpu_s"] if ran else None,
                       ours["peak_rss_mb"] if ran else None))
        seen[name] = (core, ours)

    # a defect is caught when a rule reports something the unchanged study (or the defect's
    # control copy, e.g. the same folder with AE as Dataset-JSON) does not
    detect = []
    our_key = lambda f: (f["rule"], f["dataset"], f["row"], f["variable"])  # noqa: E731
    for name, (core, ours) in seen.items():
        if not name.startswith("defect-"):
            continue
        d = defects.DEFECTS[name[7:]]
        base = seen.get(f"defect-{d.baseline}") if d.baseline else seen.get("study")
        if base is None:
            continue
        new_core = _keyset(core) - _keyset(base[0])
        new_ours = {our_key(f) for f in ours["findings"]} - {our_key(f) for f in base[1]["findings"]}
        detect.append((d.name + (" (control)" if d.control else "") + (f" vs {d.baseline}" if d.baseline else ""),
                       sorted({k[0] for k in new_core}), sorted({k[0] for k in new_ours}),
                       sorted(set(fired(base[0])) - set(fired(core))), d.control))

    if detect:
        print("\n=== defects: rules with findings that the unchanged study does not have")
        print(f"  {'defect':<34} {'CORE':>4} {'ours':>4}  CORE rules / our rules")
        for n, c, o, gone, _ in detect:
            print(f"  {n:<34} {'yes' if c else 'NO':>4} {'yes' if o else 'NO':>4}  {' '.join(c) or '-'}"
                  + (f" (gone: {' '.join(gone)})" if gone else "") + f" / {' '.join(o) or '-'}")
        real = [d for d in detect if not d[4]]
        print(f"  caught: CORE {sum(1 for d in real if d[1])}/{len(real)}, ours {sum(1 for d in real if d[2])}/{len(real)}")

    print("\n=== time and memory (CORE: its stored run, /usr/bin/time -v; ours: this run, a child process)")
    print("  wall and CPU seconds, peak RSS in MB (CORE: largest process / whole process tree); ratios CORE / ours")
    print(f"  {'folder':<26} {'CORE wall':>9} {'CPU':>7} {'MB':>6} {'tree MB':>7} | {'ours wall':>9} {'CPU':>6} {'MB':>6} "
          f"| {'wall':>6} {'CPU':>6} {'memory':>6}")
    def line(name, cw, cc, cm, ct, ow, oc, om):
        print(f"  {name:<26} {cw or 0:>9.1f} {cc or 0:>7.1f} {cm or 0:>6.0f} {ct or 0:>7.0f} | {ow or 0:>9.2f} "
              f"{oc or 0:>6.2f} {om or 0:>6.0f} | {ratio(cw, ow):>6} {ratio(cc, oc):>6} {ratio(ct or cm, om):>6}")
    for t in timing:
        if not t[0].startswith("defect-"):
            line(*t)
    dt = [t for t in timing if t[0].startswith("defect-")]
    if dt:
        tot = lambda k: sum(t[k] or 0 for t in dt)  # noqa: E731
        line(f"{len(dt)} defect copies (sum)", tot(1), tot(2), None, None, tot(5), tot(6), None)

    print(f"\n=== all folders: CORE findings {totals['core']}, matched {totals['matched']}, unmatched documented "
          f"{totals['documented']}, UNMATCHED AND UNDOCUMENTED {totals['unmatched']} (target 0); "
          f"our findings CORE lacks {totals['ours_extra']}, ours without a CORE id {totals['ours_without_core_id']}")
    if args.json:
        args.json.write_text(json.dumps({"folders": results, "totals": dict(totals)}, indent=1, default=str))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _today() -> str:
    return datetime.date.today().isoformat()


def list_stored() -> int:
    for p in sorted(STORE.glob("*.json.gz")):
        d = json.loads(gzip.decompress(p.read_bytes()))
        run = d.get("run", {})
        print(f"{p.name:<44} {len(d['findings']):>7} findings {len(fired(d)):>3} rules  "
              f"{run.get('wall_s', 0):>7.1f} s  {run.get('max_rss_mb', 0):>6.0f} MB max RSS  "
              f"{run.get('peak_rss_tree_mb') or 0:>6.0f} MB tree  {d['rules']} rules, {d['datasets']} datasets")
    return 0


def refresh(args) -> int:
    """Run CORE (its own Python 3.12 venv) on the requested folders and store the findings."""
    if not Path(args.core_python).is_file():
        print(f"CORE not found at {args.core_python}: make it with /work/shared/tools/core-venv.sh DIR", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="core-refresh-"))
    want = set(args.refresh or ["study", "defects"])
    runs = []
    if want & {"study", "defects"} or any(w.startswith("defect-") for w in want):
        # refreshing the study = the current shipped study (and a new snapshot); refreshing only
        # defect copies keeps them derived from the stored snapshot, as the comparison makes them
        study = study_folder(work, "current" if "study" in want else "snapshot")
        if "study" in want:
            write_snapshot(study)
            runs.append(("study", study / "sdtm", None))
        redo = [n for n in __import__("defects").DEFECTS if "defects" in want or f"defect-{n}" in want]
        if redo and "study" not in want and DEFECT_BASE.is_file():
            study = study_folder(work, "snapshot", DEFECT_BASE, "defect-base")
        if "defects" in want and ("study" in want or not DEFECT_BASE.is_file()):
            shutil.copyfile(SNAPSHOT, DEFECT_BASE)   # all copies now come from this build
        import defects
        for n in defects.DEFECTS:
            if n in redo:
                defects.make(study, work / "defects", n)
                runs.append((f"defect-{n}", work / "defects" / n / "sdtm", work / "defects" / n / "defect.json"))
    if "pilot" in want:
        if not args.pilot.is_dir():
            print(f"{args.pilot} missing: run benchmarks/pilot.py first", file=sys.stderr)
            return 2
        runs.append(("pilot", args.pilot, None))
    offline = ["unshare", "-rn"] if shutil.which("unshare") and subprocess.run(
        ["unshare", "-rn", "true"], capture_output=True).returncode == 0 else []
    for name, folder, info in runs:
        raw, tv = work / f"{name}.core.json", work / f"{name}.time"
        cmd = ["nice", "-n", "10", "/usr/bin/time", "-v", "-o", str(tv), *offline,
               args.core_python, str(RUNNER), args.core_cache, str(folder), str(raw)]
        print(f"CORE on {name} ...", flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        extra = {"source": {"folder": name, **_git_source()}}
        if info:
            extra["defect"] = json.loads(info.read_text())
        data = compact(json.loads(raw.read_text()), folder,
                       {**parse_time_v(tv), "measured": _today(),
                        "how": f"run_core_full.py under /usr/bin/time -v, nice -n 10{', unshare -rn (offline)' if offline else ''}"},
                       extra)
        print(f"  stored {save(name, data).name}: {len(data['findings'])} findings on {len(fired(data))} rules, "
              f"{data['run'].get('wall_s')} s, {data['run'].get('max_rss_mb')} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
