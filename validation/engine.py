"""Run the whole conformance layer: GE suites, rule catalogue, waivers, outputs.

Entry points: ``validate_datasets`` (frames in memory, called at the end of
``cdisc build``) and ``validate_build`` (reads the XPT files of a build directory, for
``cdisc validate --out DIR``). Outputs go to ``OUT/validation/``: ``suites/<DS>.json``,
``results.json`` (deterministic: sorted, no timestamps) and ``report.html``.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from cdisc.errors import InputError
from cdisc.metadata import DatasetMeta

from .dates import sas_kind_any, to_sas_number
from .model import FAIL_ON, DatasetSummary, Finding, Rule, RuleStatus, ValidationResult
from .rules import CHECKS, RAW_COLUMNS, NotApplicable, RuleContext, load_rules
from .suites import SuiteRun, report_seq, run_suites
from .waivers import Waiver, apply_waivers, load_waivers


def normalise_ct(ct: dict | None) -> dict:
    """Accept the CT file content (``{codelists: {...}}``) or the codelist mapping itself."""
    if not ct:
        return {}
    inner = ct.get("codelists") if isinstance(ct, dict) else None
    if isinstance(inner, dict):
        return inner
    return ct


def _prepare(datasets: dict[str, pd.DataFrame], metas: dict[str, DatasetMeta]) -> dict[str, pd.DataFrame]:
    """Upper-case names; index = 1-based record number (row references in findings).

    Num variables with a date/datetime/time format that a reader turned into date
    objects (pyreadstat's default) are turned back into SAS numbers, so the checks and
    the GE type expectations see what the XPT holds.
    """
    out = {}
    for name, df in datasets.items():
        d = df.reset_index(drop=True)
        d.index = pd.RangeIndex(1, len(d) + 1)
        meta = metas.get(name.upper())
        if meta is not None:
            for v in meta.variables:
                if (v.type == "Num" and v.name in d.columns and d[v.name].dtype.kind not in "fiu"
                        and sas_kind_any(v.format)):
                    d[v.name] = to_sas_number(d[v.name], v.format)
        out[name.upper()] = d
    return out


def validate_datasets(
    datasets: dict[str, pd.DataFrame],
    metas: dict[str, DatasetMeta],
    ct: dict,
    *,
    waivers: Iterable[Waiver] = (),
    out_dir: Path | str | None = None,
    fail_on: str = "error",
    rules: list[Rule] | None = None,
    run_ge: bool = True,
    engine: str = "native",
    build: dict | None = None,
    report_dir: Path | str | None = None,
    core_datasets=None,
    define_findings: list[pd.DataFrame] | None = None,
    write_results: bool = True,
) -> ValidationResult:
    """Validate a build and (with ``out_dir``) write suites, results.json and report.html.

    Args:
        datasets: dataset name -> frame as read back from XPT (Char str with "" blank,
            Num float; ADaM dates as SAS numbers, their format in the metadata).
        metas: dataset name -> DatasetMeta (suites are generated from these).
        ct: CT subset, ``{codelist: {"extensible": bool, "terms": [{"value": ...}]}}``
            (or the whole CT file with that mapping under ``codelists``).
        waivers: approved exceptions (``load_waivers``); a matching finding is waived.
        out_dir: build output root; files go to ``out_dir/validation/``. None = no files.
        fail_on: default for ``ValidationResult.exit_code``: error | warning | never.
        rules: the rule catalogue; default the packaged ``validation/rules.yaml``.
        run_ge: run the expectation suites (False = rule catalogue only, for fast checks).
        engine: how the suites run: "native" (``validation.expect``, the default) or
            "ge" (Great Expectations itself; the same findings, much slower).
        build: the build's manifest.json, whose reconciliation of raw files, rows and
            columns the report shows.
        report_dir: where results.json, report.html and suites/ go (instead of
            ``out_dir/validation``).
        core_datasets: the SDTM datasets as ``validation.core.Dataset`` (the files' own
            metadata): the CDISC CORE rules run on them (validation/core_bridge.py); or a
            started ``core_bridge.CoreEvaluation`` (the rules already running beside us).
        define_findings: raw findings of the define.xml checks (validation/define_checks.py),
            one frame per define.xml checked; None: no define.xml was checked.
        write_results: False writes only the suites (the caller rewrites the findings first,
            as validate_folder does for split files, and writes results.json and report.html
            once, with ``write_outputs``).

    Returns:
        ValidationResult (``.errors``, ``.warnings``, ``.exit_code()``, ``.to_dict()``).

    Algorithm:
        1. Index every frame 1..n so rows are record numbers; unwrap the CT mapping.
        2. GE suites from metadata (``suites.run_suites``), one per dataset with metadata.
        3. Every ``engine: python`` rule: its check returns raw findings, or raises
           NotApplicable (recorded as "not applicable", not an error); a check that
           crashes is recorded as "check error" with an error finding.
        4. Raw findings get rule ID, severity, USUBJID and --SEQ of their row, and the
           rule message; sorted by rule, dataset, row.
        5. Waivers split findings into active and waived.
        6. Per-dataset summary (records, checks run, counts), rule statuses, outputs.
    """
    if fail_on not in FAIL_ON:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {fail_on!r}")
    t_start = time.perf_counter()
    metas = {k.upper(): v for k, v in metas.items()}
    data = _prepare(datasets, metas)
    ct = normalise_ct(ct)
    rules = load_rules() if rules is None else rules
    by_id = {r.id: r for r in rules}
    out = Path(out_dir) / "validation" if out_dir is not None else None
    if report_dir is not None:
        out = Path(report_dir)

    # 2. GE suites
    if run_ge:
        suite_run = run_suites(data, metas, ct, rules, suites_dir=out / "suites" if out else None,
                               engine=engine)
    else:
        suite_run = SuiteRun(findings=pd.DataFrame(columns=RAW_COLUMNS + ["rule", "severity"]))
    ge_rule_datasets: dict[str, set[str]] = {}
    for name, suite in suite_run.suites.items():
        for e in suite.get("expectations", []):
            ge_rule_datasets.setdefault(e["meta"]["rule"], set()).add(name)

    # 3. python rules
    ctx = RuleContext(data, metas, ct)
    raw = [suite_run.findings] if len(suite_run.findings) else []
    statuses: dict[str, RuleStatus] = {}
    checks_per_dataset = dict(suite_run.checks)
    timings = dict(suite_run.timings)
    t_rules = time.perf_counter()
    for rule in rules:
        if rule.engine != "python":
            continue
        ctx.touched = set()
        try:
            frame = CHECKS[rule.check](ctx, rule)
        except NotApplicable as na:
            statuses[rule.id] = RuleStatus(rule.id, rule.severity, "not applicable", reason=str(na))
            continue
        except Exception as exc:  # a crashing check must not hide the rest of the report
            statuses[rule.id] = RuleStatus(rule.id, rule.severity, "check error",
                                           datasets=sorted(ctx.touched), reason=f"{type(exc).__name__}: {exc}")
            raw.append(pd.DataFrame([{
                "dataset": "(all)", "variable": None, "row": None, "usubjid": None,
                "value": f"{type(exc).__name__}: {exc}"[:200], "detail": "the check raised an exception",
                "rule": rule.id, "severity": "error",
            }]))
            continue
        statuses[rule.id] = RuleStatus(rule.id, rule.severity, "passed", datasets=sorted(ctx.touched))
        for n in ctx.touched:
            checks_per_dataset[n] = checks_per_dataset.get(n, 0) + 1
        if len(frame):
            raw.append(frame.assign(rule=rule.id, severity=rule.severity))
    timings["rules_total"] = time.perf_counter() - t_rules

    # 3a. define.xml checks (run by the caller, who found the define.xml files)
    for rule in rules:
        if rule.engine == "define":
            if define_findings is None:
                statuses[rule.id] = RuleStatus(rule.id, rule.severity, "not applicable",
                                               reason="no define.xml in the folder")
            else:
                statuses[rule.id] = RuleStatus(rule.id, rule.severity, "passed",
                                               datasets=sorted({d for f in define_findings for d in f["dataset"]}))
    for frame in define_findings or []:
        if len(frame):
            raw.append(frame.assign(severity=frame["rule"].map(lambda r: by_id[r].severity)))

    # 3b. CDISC CORE rules (their own definitions, our evaluator)
    if core_datasets:
        from .core_bridge import run_core

        covered = set()
        for frame in raw:
            if not len(frame):
                continue
            for rid, ds, row in zip(frame["rule"], frame["dataset"], frame["row"]):
                r = by_id.get(rid)
                if r is not None and r.core_id:
                    for cid in r.core_id.replace(" ", "").split(","):
                        covered.add((cid, ds, None if pd.isna(row) else int(row)))
        core_raw, core_status, core_rules, seconds = run_core(core_datasets, covered)
        raw += core_raw
        statuses.update(core_status)
        rules = list(rules) + [r for r in core_rules if r.id not in by_id]
        by_id.update({r.id: r for r in core_rules})
        for st in core_status.values():
            for n in st.datasets:
                checks_per_dataset[n] = checks_per_dataset.get(n, 0) + 1
        timings["core_rules"] = seconds

    # 4. findings
    findings = _to_findings(raw, data, by_id)

    # 5. waivers
    active, waived, unused = apply_waivers(findings, list(waivers))

    # 6. statuses, summaries
    for rule in rules:
        if rule.engine == "ge":
            ds = sorted(ge_rule_datasets.get(rule.id, set()))
            statuses[rule.id] = RuleStatus(
                rule.id, rule.severity, "passed" if ds else "not applicable", datasets=ds,
                reason=None if ds else ("GE suites not run" if not run_ge else "no dataset needs this check"),
            )
    for f in active:
        statuses[f.rule].findings += 1
    for f, _ in waived:
        statuses[f.rule].waived += 1
    for st in statuses.values():
        if st.findings and st.status == "passed":
            st.status = "failed"
    rule_list = [statuses[r.id] for r in rules if r.id in statuses]

    summaries = []
    by_dataset: dict[str, list[Finding]] = {}
    for f in active:
        by_dataset.setdefault(f.dataset, []).append(f)
    waived_in = Counter(f.dataset for f, _ in waived)        # one pass, not one per dataset
    for name in sorted(data):
        mine = by_dataset.get(name, [])
        summaries.append(DatasetSummary(
            name=name,
            standard=metas[name].standard if name in metas else ctx.standard(name),
            records=len(data[name]),
            checks=checks_per_dataset.get(name, 0),
            errors=sum(f.severity == "error" for f in mine),
            warnings=sum(f.severity == "warning" for f in mine),
            notices=sum(f.severity == "notice" for f in mine),
            waived=waived_in[name],
        ))
    timings["total"] = time.perf_counter() - t_start
    result = ValidationResult(
        findings=active, waived=waived, rules=rule_list, datasets=summaries, catalogue=rules,
        unused_waivers=unused, fail_on=fail_on, timings=timings, build=build,
    )
    if out is not None and write_results:
        write_outputs(result, out)
    return result


def _to_findings(raw: list[pd.DataFrame], data: dict[str, pd.DataFrame], by_id: dict[str, Rule]) -> list[Finding]:
    """Raw finding frames -> sorted Finding objects with USUBJID/--SEQ of their rows.

    Lookups are vectorised per dataset; building the Finding objects is a loop over
    findings (not records).
    """
    frames = [f for f in raw if f is not None and len(f)]
    if not frames:
        return []
    allf = pd.concat(frames, ignore_index=True)
    allf["seq"] = np.nan
    rows = pd.to_numeric(allf["row"], errors="coerce")
    for name in allf["dataset"].dropna().unique():
        df = data.get(name)
        if df is None:
            continue
        sel = (allf["dataset"] == name) & rows.notna()
        if not sel.any():
            continue
        pos = rows[sel].astype("int64").to_numpy() - 1
        pos_ok = (pos >= 0) & (pos < len(df))
        if "USUBJID" in df.columns:
            u = pd.Series(df["USUBJID"].to_numpy()[np.where(pos_ok, pos, 0)], index=allf.index[sel])
            need = allf.loc[sel, "usubjid"].isna() | (allf.loc[sel, "usubjid"].astype("string") == "")
            allf.loc[u.index[need.to_numpy() & pos_ok], "usubjid"] = u[need.to_numpy() & pos_ok]
        own = report_seq(name, df.columns)
        if own:
            s = pd.to_numeric(df[own], errors="coerce").to_numpy()[np.where(pos_ok, pos, 0)]
            allf.loc[allf.index[sel][pos_ok], "seq"] = s[pos_ok]
    out = []
    for rec in allf.to_dict("records"):
        rule = by_id.get(rec["rule"])
        base = rule.message if rule else rec["rule"]
        detail = _clean(rec.get("detail"))
        out.append(Finding(
            rule=rec["rule"],
            severity=rec["severity"],
            dataset=rec["dataset"],
            variable=_clean(rec.get("variable")),
            usubjid=_clean(rec.get("usubjid")),
            seq=_num(rec.get("seq")),
            row=None if _num(rec.get("row")) is None else int(rec["row"]),
            value=_clean(rec.get("value"), keep_empty=True),
            message=f"{base}: {detail}" if detail else base,
        ))
    return sorted(out, key=Finding.sort_key)


def _clean(v, keep_empty: bool = False) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    s = str(v)
    return s if (s or keep_empty) else None


def _num(v) -> int | float | None:
    if v is None or v is pd.NA:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    if math.isnan(f):
        return None
    return int(f) if f.is_integer() else f


def write_outputs(result: ValidationResult, out: Path) -> None:
    """Write ``results.json`` and ``report.html`` into ``out`` (OUT/validation)."""
    from .report import render_html

    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    results.write_text(json.dumps(result.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    report = out / "report.html"
    report.write_text(render_html(result), encoding="utf-8")
    result.files = {"results": str(results), "report": str(report), "suites": str(out / "suites")}


def read_xpt_dir(*dirs: Path | str) -> dict[str, pd.DataFrame]:
    """Every ``*.xpt`` in the directories, keyed by upper-case file stem.

    Raises:
        InputError: a directory is missing or a file cannot be read.
    """
    import pyreadstat

    out: dict[str, pd.DataFrame] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise InputError(f"no such directory {d}", file=str(d), hint="build the datasets first")
        for f in sorted(d.glob("*.xpt")):
            try:
                # Raw SAS numbers for dates: the metadata's format says what they mean.
                df, _ = pyreadstat.read_xport(str(f), disable_datetime_conversion=True)
            except Exception as exc:
                raise InputError(f"cannot read XPT: {exc}", file=str(f)) from exc
            out[f.stem.upper()] = df
    return out


def validate_build(
    xpt_dirs: Iterable[Path | str],
    metas: dict[str, DatasetMeta],
    ct: dict,
    *,
    waivers_path: Path | str | None = None,
    out_dir: Path | str | None = None,
    fail_on: str = "error",
) -> ValidationResult:
    """``cdisc validate``: read the build's XPT files, validate, write outputs.

    Args:
        xpt_dirs: directories holding the SDTM and ADaM ``*.xpt`` files.
        metas, ct: as for ``validate_datasets``.
        waivers_path: ``specs/waivers.yaml`` (missing file = no waivers).
        out_dir: output root (files under ``out_dir/validation``).
        fail_on: error | warning | never.
    """
    datasets = read_xpt_dir(*xpt_dirs)
    return validate_datasets(datasets, metas, ct, waivers=load_waivers(waivers_path),
                             out_dir=out_dir, fail_on=fail_on)
