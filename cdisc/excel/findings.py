"""Validation findings as a workbook in the shape Pinnacle 21 users know, and back as waivers.

``write_findings(results, path)`` writes four sheets from a ``results.json``:

- **Dataset Summary**: dataset, records, errors, warnings, notices, waived;
- **Issue Summary**: one row per rule with active findings: rule, severity, message (the
  message most of its findings carry), datasets, count;
- **Details**: one row per active finding (dataset, row, USUBJID, variable, value, rule,
  severity, message) and two empty columns, **Explanation** and **Approved by**, for the
  reviewer;
- **Waived**: the waived findings with the reason and approver of their waiver.

``waivers_from_workbook(path)`` reads the Details sheet back: every row with an
Explanation is one waiver (rule, dataset, USUBJID, variable, reason = the explanation,
approved_by = "Approved by"), and ``append_waivers`` adds the new ones to
``specs/waivers.yaml`` as text appended to the file, so its comments and layout stay.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import yaml
from openpyxl import Workbook

from cdisc.errors import Problem, SpecError

from . import xlsxio

DETAILS = ["Dataset", "Row", "USUBJID", "Variable", "Value", "Rule", "Severity", "Message",
           "Explanation", "Approved by"]
WAIVED = ["Dataset", "Row", "USUBJID", "Variable", "Value", "Rule", "Severity", "Message",
          "Reason", "Approved by"]
DATASET_SUMMARY = ["Dataset", "Records", "Errors", "Warnings", "Notices", "Waived"]
ISSUE_SUMMARY = ["Rule", "Severity", "Message", "Datasets", "Count"]
_SEV_RANK = {"error": 0, "warning": 1, "notice": 2}


def find_results(path: Path) -> Path:
    """``path`` itself (a results.json) or ``path/validation/results.json`` (a build folder)."""
    path = Path(path)
    if path.is_dir():
        for cand in (path / "validation" / "results.json", path / "results.json"):
            if cand.is_file():
                return cand
        raise SpecError("no validation/results.json in this folder; run `cdisc build` or `cdisc validate` first",
                        file=str(path))
    if not path.is_file():
        raise SpecError("file not found", file=str(path))
    return path


def data_cut_of(results_path: Path) -> dt.datetime | None:
    """The data cut of the build a results.json belongs to (its manifest.json), if known."""
    for folder in (results_path.parent.parent, results_path.parent):
        m = folder / "manifest.json"
        if m.is_file():
            try:
                cut = json.loads(m.read_text(encoding="utf-8")).get("data_cut")
                return dt.datetime.combine(dt.date.fromisoformat(cut), dt.time())
            except (ValueError, TypeError, OSError):
                return None
    return None


def _load(results_path: Path) -> dict:
    try:
        data = json.loads(Path(results_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read results: {exc}", file=str(results_path)) from None
    if not isinstance(data, dict) or "findings" not in data:
        raise SpecError("not a cdisc results.json (no 'findings')", file=str(results_path))
    return data


def _order(f: dict) -> tuple:
    return (f.get("dataset") or "", -1 if f.get("row") is None else f["row"], f.get("rule") or "",
            f.get("variable") or "", f.get("usubjid") or "", str(f.get("value") or ""))


def _detail(f: dict) -> list:
    return [f.get("dataset"), f.get("row"), f.get("usubjid"), f.get("variable"), f.get("value"),
            f.get("rule"), f.get("severity"), f.get("message")]


def issue_summary(findings: list[dict]) -> list[list]:
    """One row per rule: rule, severity, message (the most frequent; ties: alphabetical first),
    datasets (sorted, comma-separated), count. Ordered by severity, then rule."""
    by_rule: dict[str, list[dict]] = {}
    for f in findings:
        by_rule.setdefault(f["rule"], []).append(f)
    rows = []
    for rule, fs in by_rule.items():
        msgs = Counter(f.get("message") or "" for f in fs)
        message = sorted(msgs.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        sev = min((f["severity"] for f in fs), key=lambda s: _SEV_RANK.get(s, 9))
        rows.append([rule, sev, message, ", ".join(sorted({f["dataset"] for f in fs})), len(fs)])
    return sorted(rows, key=lambda r: (_SEV_RANK.get(r[1], 9), r[0]))


def build_workbook(results: dict) -> Workbook:
    wb = Workbook(write_only=True)
    xlsxio.table(wb, "Dataset Summary", DATASET_SUMMARY,
                 [[d["name"], d.get("records"), d.get("errors", 0), d.get("warnings", 0), d.get("notices", 0),
                   d.get("waived", 0)] for d in sorted(results.get("datasets", []), key=lambda d: d["name"])])
    findings = sorted(results.get("findings", []), key=_order)
    xlsxio.table(wb, "Issue Summary", ISSUE_SUMMARY, issue_summary(findings), widths={"Message": 80}, wrap=("Message",))
    xlsxio.table(wb, "Details", DETAILS, [_detail(f) + [None, None] for f in findings],
                 widths={"Message": 70, "Explanation": 50, "Approved by": 20})
    waived = sorted(results.get("waived", []), key=_order)
    xlsxio.table(wb, "Waived", WAIVED,
                 [_detail(f) + [(f.get("waiver") or {}).get("reason"), (f.get("waiver") or {}).get("approved_by")]
                  for f in waived], widths={"Message": 60, "Reason": 60}, wrap=("Reason",))
    return wb


def write_findings(path: Path, xlsx: Path) -> dict:
    """The findings workbook of a build folder or results.json; returns counts and size."""
    src = find_results(path)
    results = _load(src)
    try:
        wb = build_workbook(results)
    except ValueError as exc:            # more findings than an Excel sheet holds
        raise SpecError(str(exc), file=str(src), hint="filter the findings (e.g. fix the rule that floods) first") from None
    size = xlsxio.save(wb, xlsx, data_cut_of(src))
    return {"results": str(src), "findings": len(results.get("findings", [])),
            "waived": len(results.get("waived", [])), "bytes": size}


# ------------------------------------------------------------------------------- import
def _text(v) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def waivers_from_workbook(xlsx: Path) -> list[dict]:
    """Waivers (as dicts in waivers.yaml key order) from the Details rows with an Explanation.

    Steps: 1. read the Details sheet (header names as written by ``cdisc findings``; an
    "Approved by" column is optional); 2. keep rows whose Explanation is not blank;
    3. each gives {rule, dataset, usubjid, variable, reason, approved_by}, blank fields
    left out; 4. a row without rule or dataset is an error naming its sheet row.
    """
    try:
        got = xlsxio.fast_table(Path(xlsx), "Details")
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file fails in many ways
        raise SpecError(f"cannot read the workbook: {exc}", file=str(xlsx)) from None
    if got is None:
        raise SpecError("no 'Details' sheet (is this a workbook from `cdisc findings --xlsx`?)", file=str(xlsx))
    header, rows = got
    missing = [h for h in ("Rule", "Dataset", "Explanation") if h not in header]
    if missing:
        raise SpecError(f"the Details sheet has no column {', '.join(missing)}", file=str(xlsx))
    out, problems = [], []
    for r in rows:
        reason = _text(r.get("Explanation"))
        if reason is None:
            continue
        entry = {"rule": _text(r.get("Rule")), "dataset": _text(r.get("Dataset")),
                 "usubjid": _text(r.get("USUBJID")), "variable": _text(r.get("Variable")),
                 "reason": reason, "approved_by": _text(r.get("Approved by"))}
        if not entry["rule"] or not entry["dataset"]:
            problems.append(Problem("an explained row needs its Rule and Dataset", file=f"{xlsx}:Details",
                                    row=r["__row"]))
            continue
        out.append({k: v for k, v in entry.items() if v is not None})
    if problems:
        raise SpecError(problems)
    return out


def _key(w: dict) -> tuple:
    return (str(w.get("rule", "")).strip().upper(), str(w.get("dataset", "")).strip().upper(),
            w.get("usubjid"), (w.get("variable") or "").upper() or None, w.get("row"))


def _covers(old: dict, new: dict) -> bool:
    """True when waiver ``old`` already waives every finding waiver ``new`` would: same rule
    and dataset, and each of subject, variable and row either unset in ``old`` or equal."""
    ko, kn = _key(old), _key(new)
    return ko[:2] == kn[:2] and all(o is None or o == n for o, n in zip(ko[2:], kn[2:]))


def plan_waivers(new: list[dict], waivers_file: Path) -> tuple[list[dict], list[tuple[dict, str]]]:
    """(waivers to add, [(refused waiver, why)]).

    A new waiver is refused when a waiver already in the file covers it (the same rule,
    dataset, subject and variable, or a broader one that leaves some of them open), or
    when an earlier row of the workbook gave the same waiver.
    """
    from cdisc.validation.waivers import Waiver, load_waivers

    existing = [w.model_dump() for w in load_waivers(waivers_file)]
    add, skipped = [], []
    for w in new:
        Waiver.model_validate(w)           # a bad entry fails here, before anything is written
        old = next((e for e in existing if _covers(e, w)), None)
        if old is not None:
            what = "the same waiver" if _key(old) == _key(w) else "a broader waiver (" + ", ".join(
                f"{k}: {old[k]}" for k in ("rule", "dataset", "usubjid", "variable", "row") if old.get(k) is not None) + ")"
            skipped.append((w, f"{what} is already in {waivers_file}"))
        elif any(_key(a) == _key(w) for a in add):
            skipped.append((w, "the same rule, dataset, subject and variable as an earlier row"))
        else:
            add.append(w)
    return add, skipped


def render_waivers(entries: list[dict], indent: int = 0) -> str:
    """Block YAML for waiver entries (a list), indented by ``indent`` spaces."""
    text = yaml.safe_dump(entries, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)
    return "".join((" " * indent + line) if line.strip() else line for line in text.splitlines(True))


def append_waivers(waivers_file: Path, entries: list[dict]) -> None:
    """Append waiver entries to a waivers.yaml as text: comments and layout stay as they are.

    Steps: 1. a missing or empty file gets ``waivers:`` and the entries; 2. a file whose
    ``waivers:`` list is the last block of the file gets the entries at the end, indented
    like its last item; 3. the result is parsed again and must hold exactly the old
    waivers followed by the new ones (and the same other keys), else nothing is written
    and the error says to add the entries by hand.
    """
    from cdisc.specio import load_yaml, parse_yaml

    path = Path(waivers_file)
    old_text = path.read_text(encoding="utf-8") if path.is_file() else ""
    old = load_yaml(path, display=str(path)) if path.is_file() else None
    if old is None:
        new_text = old_text + ("" if not old_text or old_text.endswith("\n") else "\n") + "waivers:\n" \
            + render_waivers(entries, 2)
    elif not isinstance(old, list) and not (old.get("waivers") or []) and \
            re.search(r"(?m)^waivers:[ \t]*\[\][ \t]*$", old_text):
        # ``waivers: []`` (no waiver yet): the entries replace the empty list in place
        new_text = re.sub(r"(?m)^waivers:[ \t]*\[\][ \t]*$",
                          lambda _: "waivers:\n" + render_waivers(entries, 2).rstrip("\n"), old_text, count=1)
    else:
        lines = old_text.splitlines()
        items = [ln for ln in lines if ln.lstrip().startswith("- ") and not ln.lstrip().startswith("#")]
        indent = (len(items[-1]) - len(items[-1].lstrip())) if items else (0 if isinstance(old, list) else 2)
        new_text = old_text + ("" if old_text.endswith("\n") else "\n") + render_waivers(entries, indent)
    parsed = parse_yaml(new_text, file=str(path)) if new_text.strip() else None
    before = (old if isinstance(old, list) else (old or {}).get("waivers") or [])
    after = parsed if isinstance(parsed, list) else ((parsed or {}).get("waivers") or [])
    others_same = (not isinstance(old, dict)) or {k: v for k, v in old.items() if k != "waivers"} == \
        {k: v for k, v in (parsed or {}).items() if k != "waivers"}
    if after != list(before) + entries or not others_same:
        raise SpecError("cannot append to this file safely (its waivers list is not the last block of the file)",
                        file=str(path), hint="add these entries by hand:\n" + render_waivers(entries))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(path)
