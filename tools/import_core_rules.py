"""Import the CDISC CORE rule definitions that CORE 0.17.1 runs for SDTMIG 3.4.

Writes ``validation/core/rules/sdtmig-3-4.jsonl`` (one rule per line, keys sorted, rules in
Core-id order: deterministic) and ``validation/core/rules/PROVENANCE.md``.

Which rules: the 430 ids CORE 0.17.1 runs for SDTMIG 3.4 (``rules_dictionary.pkl``
``sdtmig/3-4`` in the engine's rules cache). Where each comes from:

- its ``rule.yml`` in cdisc-org/cdisc-open-rules ``Published/`` or ``Deprecated/`` (the
  Deprecated folder was a bulk move of every rule whose only authorities were CDISC/FDA
  SDTMIG, not a judgement on the rule);
- a rule absent from the repository (CORE-000845) is converted back from the engine's own
  cached form (``rules.pkl``) into rule.yml vocabulary;
- where the engine's cached logic differs from the repository's rule.yml (Check, Sensitivity,
  Grouping Variables, Outcome, Scope classes: 18 rules at open-rules 618ab81), the record
  holds what CORE 0.17.1 runs, and the repository's differing fields are kept under
  ``open_rules_head`` (the open-rules test baselines were produced from those).

The pickles must be opened with the CORE venv (Python 3.12), so run this script with it::

    /work/core/venv/bin/python tools/import_core_rules.py \\
        --open-rules /work/core/open-rules --commit 618ab81d9bb38cf499469cd01aea5aa25ecda1ab \\
        --cache /work/shared/core-cache --engine-version 0.17.1

Nothing at run time reads the cache or the repository: the JSONL file is the catalogue.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "validation" / "core" / "rules"
OUT_FILE = "sdtmig-3-4.jsonl"

#: rule.yml keys kept in the catalogue (everything else, e.g. comments, is dropped)
KEEP = (
    "Authorities",
    "Check",
    "Core",
    "Description",
    "Executability",
    "Grouping Variables",
    "Match Datasets",
    "Operations",
    "Outcome",
    "Rule Type",
    "Scope",
    "Sensitivity",
)


# ----------------------------------------------------------------------------- engine -> yml
def _leaf_to_yml(cond: dict) -> dict:
    """One engine condition ({name: get_dataset, operator, value: {target, comparator, ...}})
    back into a rule.yml Check leaf ({name, operator, value, ...})."""
    value = dict(cond.get("value") or {})
    out: dict = {}
    if "target" in value:
        out["name"] = value.pop("target")
    out["operator"] = cond["operator"]
    comparator = value.pop("comparator", None)
    if comparator is not None:
        out["value"] = comparator
    for k, v in value.items():
        out[k] = v
    if "variables" in cond:
        out["variables"] = cond["variables"]
    return out


def conditions_to_check(cond):
    if isinstance(cond, str):
        return cond
    if isinstance(cond, list):
        return [conditions_to_check(c) for c in cond]
    keys = set(cond)
    if keys & {"all", "any", "not"} and "operator" not in cond:
        return {k: conditions_to_check(v) for k, v in cond.items()}
    return _leaf_to_yml(cond)


def datasets_to_match(datasets):
    out = []
    for d in datasets or []:
        m = {"Name": d["domain_name"], "Keys": [
            k if isinstance(k, str) else {kk.capitalize(): vv for kk, vv in k.items()}
            for k in d.get("match_key", [])
        ]}
        if d.get("wildcard") not in (None, "**"):
            m["Wildcard"] = d["wildcard"]
        if "join_type" in d:
            m["Join Type"] = d["join_type"]
        if "child" in d:
            m["Child"] = d["child"]
        out.append(m)
    return out


def underscores_to_spaces(obj):
    if isinstance(obj, dict):
        return {k.replace("_", " ") if k[:1].isupper() else k: underscores_to_spaces(v)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [underscores_to_spaces(x) for x in obj]
    return obj


def engine_to_yml(eng: dict) -> dict:
    """Convert a rules.pkl entry back into rule.yml vocabulary."""
    scope = {}
    for key, name in (("classes", "Classes"), ("domains", "Domains"), ("entities", "Entities"),
                      ("data_structures", "Data Structures")):
        if eng.get(key):
            scope[name] = eng[key]
    if eng.get("use_case"):
        scope["Use Case"] = eng["use_case"]
    outcome = {"Message": eng["actions"][0]["params"]["message"]}
    if eng.get("output_variables"):
        outcome["Output Variables"] = eng["output_variables"]
    rule = {
        "Authorities": underscores_to_spaces(eng.get("authorities") or []),
        "Check": conditions_to_check(eng["conditions"]),
        "Core": {"Id": eng["core_id"], "Status": eng.get("status") or "Published"},
        "Description": eng.get("description"),
        "Executability": _executability(eng.get("executability")),
        "Outcome": outcome,
        "Rule Type": eng.get("rule_type"),
        "Scope": scope,
        "Sensitivity": eng.get("sensitivity"),
    }
    if eng.get("operations"):
        rule["Operations"] = eng["operations"]
    if eng.get("datasets"):
        rule["Match Datasets"] = datasets_to_match(eng["datasets"])
    if eng.get("grouping_variables"):
        rule["Grouping Variables"] = eng["grouping_variables"]
    return rule


def _executability(text):
    if not text:
        return None
    t = text.strip()
    if t.islower():  # the engine lower-cases it: "fully executable" -> "Fully Executable"
        head, _, tail = t.partition(" - ")
        t = head.title() + (" - " + tail[:1].upper() + tail[1:] if tail else "")
    return t


# ----------------------------------------------------------------------------- comparison
def engine_form(yml: dict) -> dict:
    """The engine's own conversion of a rule.yml (cdisc_rules_engine.models.rule.Rule)."""
    from cdisc_rules_engine.models.rule import Rule

    return Rule.from_cdisc_metadata(json.loads(json.dumps(yml, default=str)))


COMPARED = {
    # engine key -> (rule.yml path, converter from engine form to rule.yml form)
    "conditions": ("Check", conditions_to_check),
    "operations": ("Operations", lambda v: v),
    "datasets": ("Match Datasets", datasets_to_match),
    "domains": ("Scope.Domains", lambda v: v),
    "classes": ("Scope.Classes", lambda v: v),
    "output_variables": ("Outcome.Output Variables", lambda v: v),
    "sensitivity": ("Sensitivity", lambda v: v),
    "rule_type": ("Rule Type", lambda v: v),
    "actions": ("Outcome.Message", lambda v: v[0]["params"]["message"]),
    "grouping_variables": ("Grouping Variables", lambda v: v),
}


def _get(d: dict, path: str):
    cur = d
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _set(d: dict, path: str, value) -> None:
    parts = path.split(".")
    cur = d
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    if value is None:
        cur.pop(parts[-1], None)
    else:
        cur[parts[-1]] = value


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--open-rules", required=True, type=Path)
    ap.add_argument("--commit", required=True, help="open-rules commit the folder was taken from")
    ap.add_argument("--cache", required=True, type=Path, help="CORE rules cache (rules.pkl ...)")
    ap.add_argument("--engine-version", default="0.17.1")
    ap.add_argument("--standard", default="sdtmig/3-4")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)

    with open(args.cache / "rules.pkl", "rb") as fh:
        engine_rules = pickle.load(fh)
    with open(args.cache / "rules_dictionary.pkl", "rb") as fh:
        ids = pickle.load(fh)[args.standard]

    records, sources, overridden = [], {}, {}
    for core_id in sorted(ids):
        eng = engine_rules[core_id]
        path = None
        for folder in ("Published", "Deprecated"):
            p = args.open_rules / folder / core_id / "rule.yml"
            if p.exists():
                path = p
                break
        if path is None:
            rule = engine_to_yml(eng)
            source = f"engine {args.engine_version} rules cache (absent from open-rules)"
            head = None
        else:
            with open(path, encoding="utf-8") as fh:
                yml = yaml.safe_load(fh)
            # one spelling per key (rule.yml has both "Grouping_Variables" and "Grouping Variables")
            yml = {k.replace("_", " ") if k[:1].isupper() else k: v for k, v in yml.items()}
            rule = {k: yml[k] for k in KEEP if k in yml}
            source = f"open-rules {path.parent.parent.name}/{core_id}/rule.yml"
            conv = engine_form(yml)
            head = {}
            for key, (ypath, to_yml) in COMPARED.items():
                if not _same(conv.get(key), eng.get(key)):
                    head[ypath] = _get(rule, ypath)
                    _set(rule, ypath, to_yml(eng[key]) if eng.get(key) is not None else None)
            if head:
                overridden[core_id] = sorted(head)
        rec = {"id": core_id, "source": source, "rule": rule}
        if head:
            rec["open_rules_head"] = head
        records.append(rec)
        sources[core_id] = source

    args.out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(",", ":")) for r in records]
    text = "\n".join(lines) + "\n"
    (args.out / OUT_FILE).write_text(text, encoding="utf-8")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()

    n_pub = sum(1 for s in sources.values() if "Published/" in s)
    n_dep = sum(1 for s in sources.values() if "Deprecated/" in s)
    n_eng = len(sources) - n_pub - n_dep
    prov = [
        "# Provenance of the CORE rule catalogue",
        "",
        (f"`{OUT_FILE}`: the {len(records)} rules CDISC CORE (cdisc-rules-engine {args.engine_version}) runs "
         f"for SDTMIG 3.4 (`rules_dictionary.pkl` key `{args.standard}` of the engine's rules cache), "
         "one JSON object per line, sorted by Core id, written by `tools/import_core_rules.py`."),
        "",
        "| what | where |",
        "| --- | --- |",
        (f"| rule definitions | github.com/cdisc-org/cdisc-open-rules, commit `{args.commit}`: "
         f"`Published/` {n_pub}, `Deprecated/` {n_dep} |"),
        (f"| rules absent from that repository | cdisc-org/cdisc-rules-engine {args.engine_version} rules cache "
         f"(`resources/cache/rules.pkl`): {n_eng} ({', '.join(k for k, s in sources.items() if s.startswith('engine'))}) |"),
        "| rule id list | the same cache, `rules_dictionary.pkl` |",
        "| licence | both repositories: MIT License, Copyright (c) CDISC |",
        f"| sha256 of `{OUT_FILE}` | `{digest}` |",
        "",
        "The repository's `Deprecated/` folder is a bulk move (commit 89268d0, \"Script to deprecate rules",
        "created\") of every rule whose only authorities were CDISC/FDA SDTMIG; CORE 0.17.1 still runs them.",
        "",
        "Each line: `id`, `source` (file it came from), `rule` (the rule.yml keys Authorities, Check, Core,",
        "Description, Executability, Grouping Variables, Match Datasets, Operations, Outcome, Rule Type, Scope,",
        "Sensitivity, as written in rule.yml) and, where the engine's cached logic differs from the",
        "repository, `open_rules_head` (the repository's value of each differing field, by dotted path).",
        "`rule` then holds what CORE runs, because our evaluator must report what CORE reports; the",
        "repository's positive/negative test baselines were produced from `open_rules_head`.",
        "",
        f"Rules whose engine logic differs from the repository ({len(overridden)}):",
        "",
    ]
    for k, v in overridden.items():
        prov.append(f"- {k}: {', '.join(v)}")
    prov += [
        "",
        "Regenerate (needs the CORE venv, Python 3.12, to open the pickles):",
        "",
        "```",
        "/work/core/venv/bin/python tools/import_core_rules.py --open-rules <checkout> \\",
        f"    --commit {args.commit} --cache <core-cache> --engine-version {args.engine_version}",
        "```",
    ]
    (args.out / "PROVENANCE.md").write_text("\n".join(prov).rstrip() + "\n", encoding="utf-8")
    print(f"{len(records)} rules -> {args.out / OUT_FILE} ({len(text) / 1e6:.2f} MB); "
          f"{len(overridden)} with engine logic differing from open-rules HEAD")
    return 0


if __name__ == "__main__":
    sys.exit(main())
