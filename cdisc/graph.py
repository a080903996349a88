"""The build graph and its state (issue 15 item 3): what each output came from, what changed
since the build in OUT, what to rebuild (dbt-style ``state:modified`` and ``--select``).

Nodes and what each one reads (its *files*) and which nodes it needs (its *upstream*):

- one node per SDTM domain spec (``AE``): its spec ``specs/sdtm/ae.yaml`` and the raw forms
  the engine read for it (``ctx.form``); it writes the domain and its SUPP--. Every domain
  but DM has DM upstream (RFSTDTC, --DY, subjects) and the DM node also writes SE (EPOCH):
  a change to DM rebuilds every domain and everything after them.
- ``TD`` (trial design: TA, TE, TV, TI, TS): ``specs/trial_design.yaml``, upstream DM (TS
  values from DM);  ``PP``: ``specs/pp.yaml``, upstream PC (NCA).
- one node per ADaM spec (``ADAE``): its spec file; upstream the nodes writing the datasets
  it reads (``AdamSpec.dependencies()``: ``SUPPAE`` is the AE node, ``SE`` the DM node).

Files that no node reads are *global* (study.yaml, ct/, anything unknown: a change to one
rebuilds everything) or *checks* (specs/waivers.yaml, specs/validation.yaml, raw files
listed in forms_not_mapped or not a raw format: a change to one re-runs the cross-domain
checks and validation but rebuilds no dataset).

A node's fingerprint is the SHA-256 of its name, the tool (version and a hash of its own
code), the global files' hashes, its files' hashes and its upstream nodes' fingerprints, so
a change reaches every dependant transitively. The manifest records them
(``manifest.json["build"]``). This module imports no pandas: the "nothing changed" answer
must come in well under a second.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

RAW_EXTENSIONS = (".csv", ".xlsx", ".sas7bdat", ".xpt")       # cdisc.rawio.EXTENSIONS (no pandas here)
CHECK_FILES = ("specs/waivers.yaml", "specs/validation.yaml")
TRIAL_DESIGN = ("TA", "TE", "TV", "TI", "TS")
FORMAT = 1                                                     # of manifest["build"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def input_hashes(specs_dir: Path, raw_dir: Path, raw_label: str = "raw") -> dict[str, str]:
    """{"specs/sdtm/ae.yaml": sha256, "raw/ae.csv": sha256, ...}: the labels of manifest["inputs"]."""
    out = {}
    for base, label in ((Path(specs_dir), "specs"), (Path(raw_dir), raw_label)):
        for p in sorted(base.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                out[f"{label}/{p.relative_to(base).as_posix()}"] = sha256_file(p)
    return out


_TOOL: dict | None = None


def tool_fingerprint() -> dict:
    """The version and a hash of the toolkit's own files (cdisc, cdisc.sdtm, cdisc.adam,
    cdisc.validation): a changed derivation in an editable install rebuilds everything."""
    global _TOOL
    if _TOOL is None:
        import importlib.util

        from . import __version__

        h = hashlib.sha256()
        for pkg in ("cdisc", "cdisc.sdtm", "cdisc.adam", "cdisc.validation"):
            spec = importlib.util.find_spec(pkg)
            for loc in (spec.submodule_search_locations or []) if spec else []:
                for root, dirs, files in os.walk(loc):
                    dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
                    if pkg == "cdisc":      # the subpackages are hashed on their own
                        dirs[:] = [d for d in dirs if d not in ("sdtm", "adam", "validation")]
                    for name in sorted(files):
                        if name.endswith((".pyc", ".pyo")):
                            continue
                        p = Path(root) / name
                        h.update(f"{pkg}/{p.relative_to(loc).as_posix()}\0".encode())
                        h.update(p.read_bytes())
        _TOOL = {"version": __version__, "code": h.hexdigest()}
    return _TOOL


@dataclass
class Node:
    name: str
    kind: str                                   # sdtm / td / pp / adam
    files: list[str] = field(default_factory=list)
    upstream: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def node_of_dataset(dataset: str, nodes: dict[str, Node]) -> str | None:
    """The node that writes ``dataset`` (SUPPAE -> AE, SE -> DM, TS -> TD), or None."""
    d = dataset.upper()
    for n in nodes.values():
        if d in n.outputs or d == n.name:
            return n.name
    if d.startswith("SUPP") and d[4:] in nodes:
        return d[4:]
    if d == "SE" and "DM" in nodes:
        return "DM"
    if d in TRIAL_DESIGN and "TD" in nodes:
        return "TD"
    return None


def topological(nodes: dict[str, Node]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"build graph has a cycle through {name}")
        state[name] = 1
        for u in sorted(nodes[name].upstream):
            if u in nodes:
                visit(u)
        state[name] = 2
        order.append(name)

    for name in sorted(nodes, key=lambda n: (n != "DM", nodes[n].kind != "sdtm", n)):
        visit(name)
    return order


def dependants(nodes: dict[str, Node], names: set[str]) -> set[str]:
    """``names`` and every node downstream of them."""
    out = set(names)
    changed = True
    while changed:
        changed = False
        for n in nodes.values():
            if n.name not in out and out.intersection(n.upstream):
                out.add(n.name)
                changed = True
    return out


def ancestors(nodes: dict[str, Node], names: set[str]) -> set[str]:
    """``names`` and every node upstream of them."""
    out, todo = set(), list(names)
    while todo:
        n = todo.pop()
        if n in out or n not in nodes:
            continue
        out.add(n)
        todo.extend(nodes[n].upstream)
    return out


def classify(hashes: dict[str, str], nodes: dict[str, Node], unmapped_forms: set[str],
             raw_label: str = "raw") -> tuple[list[str], list[str]]:
    """(global files, check-only files): the input files no node reads."""
    read = {f for n in nodes.values() for f in n.files}
    glob, checks = [], []
    for f in sorted(hashes):
        if f in read:
            continue
        if f in CHECK_FILES:
            checks.append(f)
        elif raw_label == "raw" and f.startswith("raw/") and ("/" in f[4:] or
                                               not f.lower().endswith(RAW_EXTENSIONS) or f[4:] in unmapped_forms):
            checks.append(f)
        else:
            glob.append(f)
    return glob, checks


def fingerprints(nodes: dict[str, Node], hashes: dict[str, str], global_digest: str, tool: dict,
                 keep: dict[str, str] | None = None) -> dict[str, str]:
    """Every node's fingerprint, in topological order; ``keep`` fixes some (nodes kept out of date)."""
    fps: dict[str, str] = {}
    for name in topological(nodes):
        n = nodes[name]
        if keep and name in keep:
            fps[name] = keep[name]
            continue
        fps[name] = _digest([name, tool["code"], tool["version"], global_digest,
                             [[f, hashes.get(f)] for f in sorted(n.files)],
                             [[u, fps.get(u)] for u in sorted(n.upstream)]])
    return fps


def make_record(nodes: dict[str, Node], hashes: dict[str, str], unmapped_forms: set[str], options: dict,
                raw_label: str = "raw", keep: dict[str, str] | None = None,
                notes: dict[str, list[str]] | None = None) -> dict:
    """manifest["build"]: the tool, the options, and per node its files, upstream and fingerprint
    (and the notes its derivation gave, which a build that keeps it repeats)."""
    tool = tool_fingerprint()
    glob, checks = classify(hashes, nodes, unmapped_forms, raw_label)
    gd = _digest([[f, hashes[f]] for f in glob])
    fps = fingerprints(nodes, hashes, gd, tool, keep)
    return {"format": FORMAT, "tool": tool, "options": options, "raw_label": raw_label,
            "global": glob, "global_digest": gd,
            "checks": checks, "checks_digest": _digest([[f, hashes[f]] for f in checks]),
            "nodes": {name: {"kind": nodes[name].kind, "files": sorted(nodes[name].files),
                             "upstream": sorted(nodes[name].upstream), "outputs": nodes[name].outputs,
                             "fingerprint": fps[name], **({"notes": notes[name]} if notes and notes.get(name) else {})}
                      for name in topological(nodes)}}


def nodes_from_record(record: dict) -> dict[str, Node]:
    return {name: Node(name, n["kind"], list(n["files"]), list(n["upstream"]), list(n["outputs"]))
            for name, n in record.get("nodes", {}).items()}


@dataclass
class Plan:
    """What a build does: ``up_to_date`` (nothing), ``full``, or ``incremental`` (``dirty`` nodes)."""
    mode: str
    reason: str = ""
    changed: list[str] = field(default_factory=list)          # input files changed, added, removed
    dirty: set[str] = field(default_factory=set)               # nodes whose fingerprint changed
    previous: dict | None = None                               # the manifest of the build in OUT
    nodes: dict[str, Node] = field(default_factory=dict)       # the graph recorded in OUT


def read_manifest(out_dir: Path) -> dict | None:
    try:
        m = json.loads((Path(out_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("tool") == "cdisc" else None


def _dataset_problem(out_dir: Path, o: dict, options: dict) -> str | None:
    p = Path(out_dir) / o["file"]
    if not p.is_file() or p.stat().st_size != o.get("bytes") or sha256_file(p) != o.get("sha256"):
        return f"{o['file']} in {out_dir} is missing or not as built"
    if "json" in options.get("formats", []) and not p.with_suffix(".json").is_file():
        return f"{p.with_suffix('.json').name} is missing in {out_dir}"
    return None


def _other_problem(out_dir: Path, options: dict) -> str | None:
    out_dir = Path(out_dir)
    try:        # every file cdisc wrote there (the marker lists them: report.html, trace.json, ...)
        written = json.loads((out_dir / ".cdisc-output.json").read_text(encoding="utf-8")).get("files") or []
    except (OSError, ValueError, AttributeError):
        return "its marker file .cdisc-output.json is missing or unreadable"
    for f in ["metadata.json", "study.json", *written]:
        if not (out_dir / f).is_file():
            return f"{f} is missing in {out_dir}"
    if options.get("validate") and not (out_dir / "validation" / "results.json").is_file():
        return "validation/results.json is missing"
    return None


def outputs_intact(out_dir: Path, manifest: dict, options: dict) -> str | None:
    """None when every file of the build in OUT is there and every dataset file has the bytes its
    manifest records; otherwise what is wrong."""
    for o in manifest.get("outputs", []):
        problem = _dataset_problem(out_dir, o, options)
        if problem is not None:
            return problem
    return _other_problem(out_dir, options)


def plan_build(out_dir: Path, hashes: dict[str, str], options: dict, *, full: bool = False) -> Plan:
    """Compare the inputs now with the build in OUT: up to date, which nodes changed, or full."""
    prev = read_manifest(out_dir)
    if full:
        return Plan("full", "--full", previous=prev)
    if prev is None:
        return Plan("full", f"no earlier build in {out_dir}")
    rec = prev.get("build")
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        return Plan("full", "the build in OUT records no build graph (an older cdisc)", previous=prev)
    tool = tool_fingerprint()
    if rec.get("tool") != tool:
        return Plan("full", "the cdisc tool changed since the build in OUT", previous=prev)
    if rec.get("options") != options:
        return Plan("full", "build options changed (--format, --no-validate, --fail-on, --engine)", previous=prev)
    before = {i["file"]: i["sha256"] for i in prev.get("inputs", [])}
    changed = sorted(f for f in set(before) | set(hashes) if before.get(f) != hashes.get(f))
    if set(before) != set(hashes):
        added = sorted(set(hashes) - set(before))
        gone = sorted(set(before) - set(hashes))
        what = ", ".join([f"added {f}" for f in added[:3]] + [f"removed {f}" for f in gone[:3]])
        return Plan("full", f"input files added or removed ({what})", changed, previous=prev)
    nodes = nodes_from_record(rec)
    gd = _digest([[f, hashes[f]] for f in rec.get("global", [])])
    if gd != rec.get("global_digest"):
        glob = [f for f in changed if f in rec.get("global", [])]
        return Plan("full", f"{', '.join(glob[:3])} changed (read by every dataset)", changed, previous=prev,
                    nodes=nodes)
    fps = fingerprints(nodes, hashes, gd, tool)
    dirty = {n for n in nodes if fps[n] != rec["nodes"][n]["fingerprint"]}
    checks = _digest([[f, hashes[f]] for f in rec.get("checks", [])]) != rec.get("checks_digest")
    problem = _other_problem(out_dir, options)
    if problem is not None:
        return Plan("full", problem, changed, previous=prev, nodes=nodes)
    problems = {o["dataset"]: _dataset_problem(out_dir, o, options) for o in prev.get("outputs", [])}
    problems = {d: p for d, p in problems.items() if p is not None}
    if problems:
        # a changed dataset file in OUT: rebuild the node that wrote it (and its dependants)
        bad = {node_of_dataset(d, nodes) for d in problems}
        if None in bad:
            return Plan("full", next(iter(problems.values())), changed, previous=prev, nodes=nodes)
        dirty |= dependants(nodes, bad)
        return Plan("incremental", "; ".join(problems.values()), changed, dirty, prev, nodes)
    if not dirty and not checks:
        return Plan("up_to_date", "", [], set(), prev, nodes)
    files = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return Plan("incremental", f"{files} changed since the build in {out_dir}", changed, dirty, prev, nodes)


def parse_select(text: str, nodes: dict[str, Node]) -> set[str]:
    """``--select`` like dbt: ``ADSL+`` (the node and its dependants), ``+ADAE`` (and its
    upstream), ``ae`` (just the node); several separated by commas or spaces. A dataset name
    selects the node that writes it (SUPPAE: AE; SE: DM; TS: TD). Unknown names: ValueError."""
    out: set[str] = set()
    for item in text.replace(",", " ").split():
        down, up = item.endswith("+"), item.startswith("+")
        name = item.strip("+").upper()
        node = name if name in nodes else node_of_dataset(name, nodes)
        if node is None:
            raise ValueError(f"--select {item}: no dataset or node {name} in the build graph "
                             f"({', '.join(sorted(nodes))})")
        sel = {node}
        if down:
            sel = dependants(nodes, sel)
        if up:
            sel |= ancestors(nodes, {node})
        out |= sel
    return out
