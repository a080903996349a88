"""Validate a pooled folder (``cdisc pool``) study by study.

A pool stacks several studies' datasets with STUDYID kept. Our cross-dataset rules and the
CORE rules join records by USUBJID, VISITNUM, --SEQ, ARMCD, TESTCD... and by the trial design
datasets (TA, TV, TE, TS) without STUDYID, as SDTMIG defines them for one study: run on the
stacked files, a visit of one study is checked against another study's TV, an arm against
another study's TA, TS must have one record per parameter, and so on (VGO-Cs01p + CDISC pilot:
126k errors, nearly all false). Each study's records are therefore validated on their own,
with that study's rule parameters, data cut and waivers (``studies`` of the pool's study.json),
against the pool's CT (the pool harmonised the values to it). What is only true of the pool
(USUBJID unique across studies, one type and one length per variable) is checked when the pool
is made (cdisc.pooling), before anything is written.

Findings name the pooled file and the record number in it: a study's record k is mapped back
to its row in the pooled dataset. A finding on a dataset as a whole (no record: a label, a
variable the standard expects) is the same in every study's run and is reported once.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from .model import DatasetSummary, RuleStatus, ValidationResult

#: the order of a rule's status when two studies disagree: the worst one is reported
_STATUS_RANK = {"not applicable": 0, "passed": 1, "failed": 2, "check error": 3}


def study_rows(data: dict[str, pd.DataFrame], studyid: str, present: set[str] | None) -> dict[str, np.ndarray]:
    """Per dataset, the 0-based positions of ``studyid``'s records. A dataset without STUDYID
    belongs to no study (none in SDTM/ADaM; it is left out). With ``present`` (the datasets
    the study was pooled with, from the pool manifest), a dataset the study did not have is
    left out even when empty, so a study is not told it lacks another study's dataset."""
    out = {}
    for name, df in data.items():
        if "STUDYID" not in df.columns or (present is not None and name not in present):
            continue
        out[name] = np.flatnonzero((df["STUDYID"] == studyid).to_numpy(dtype=bool, na_value=False))
    return out


def study_columns(file_columns: dict[str, list[str]], data: dict[str, pd.DataFrame], absent: dict, studyid: str,
                  files: set[str] | None, parts: dict | None) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The columns the study itself had, per file and per validated dataset: the pool's columns
    less those the pool added for it (manifest ``pool.absent``: a variable another study had,
    blank here). A split domain validated as one (LBCH + LBHE, beside another study's LB) has
    the union of the study's own files' columns, in the combined frame's order."""
    own = {name: [c for c in cols if studyid not in (absent.get(name) or {}).get(c, ())]
           for name, cols in file_columns.items()}
    out = {name: own.get(name, list(df.columns)) for name, df in data.items()}
    for domain, offsets in (parts or {}).items():
        mine = [o[0] for o in offsets if files is None or o[0] in files]
        have = set().union(*(own.get(n, []) for n in mine))
        out[domain] = [c for c in data[domain].columns if c in have]
    return own, out


def _subset_core(core: dict, rows: dict[str, np.ndarray], columns: dict[str, list[str]]) -> dict:
    """The CORE view of one study: each file's records of that study with the study's own
    variables, the file's metadata (name, label, size) as it is; the first record is the
    study's own."""
    out = {}
    for name, ds in core.items():
        pos = rows.get(name)
        if pos is None or ds.frame is None:
            continue
        cols = columns.get(name, list(ds.frame.columns))
        frame = ds.frame.iloc[pos][cols].reset_index(drop=True)
        by_name = {v.name: v for v in ds.variables}
        out[name] = dataclasses.replace(ds, frame=frame, first_record=None,
                                        variables=[by_name[c] for c in cols if c in by_name])
    return out


def _in_order(columns: list[str], meta) -> list[str]:
    """``columns`` in the order of the study's own metadata (its file's order), the rest after."""
    if meta is None:
        return list(columns)
    have = set(columns)
    first = [v.name for v in meta.variables if v.name in have]
    return first + [c for c in columns if c not in set(first)]


def _own_meta(name: str, own_metas: dict, pooled_metas: dict, parts: dict | None, files: set | None):
    """The study's own metadata of a validated dataset (its spec: keys, codelists, ranges, order);
    a split domain validated as one takes the study's first file's, as validate_folder does."""
    if name in own_metas:
        return own_metas[name]
    for n, *_ in (parts or {}).get(name, []):
        if n in own_metas and (files is None or n in files):
            return own_metas[n].model_copy(update={"name": name})
    return pooled_metas.get(name)


def _study_numbered(waivers, rows: dict[str, np.ndarray]):
    """The study's waivers with a record's pooled row (cdisc/pool_run.pool_context) numbered among
    the study's records of that dataset, as its findings are here (``_back`` the other way)."""
    out = []
    for w in waivers or []:
        pos = rows.get(str(w.get("dataset") or "").strip().upper()) if isinstance(w, dict) else None
        if isinstance(w, dict) and isinstance(w.get("row"), int) and pos is not None:
            k = int(np.searchsorted(pos, w["row"] - 1))
            # a row that is not the study's (a hand-edited study.json) matches none of its findings
            w = {**w, "row": k + 1 if k < len(pos) and pos[k] == w["row"] - 1 else 0}
        out.append(w)
    return out


def _back(f, rows: dict[str, np.ndarray]):
    """A finding on a study's k-th record of a dataset, on that record's row in the pool."""
    pos = rows.get(f.dataset)
    if f.row is None or pos is None or not 1 <= f.row <= len(pos):
        return f
    return dataclasses.replace(f, row=int(pos[f.row - 1]) + 1)


def merge_results(parts: list[tuple[ValidationResult, dict]], data: dict[str, pd.DataFrame], metas: dict,
                  fail_on: str, build: dict | None) -> ValidationResult:
    """One result of the pool from each study's (result, rows): records renumbered, dataset-level
    findings once, each rule's status the worst of the studies' with the counts summed."""
    findings, waived, unused, seen = [], [], [], set()
    for res, rows in parts:
        for f in res.findings:
            g = _back(f, rows)
            key = dataclasses.astuple(g) if g.row is None else None
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            findings.append(g)
        waived += [(_back(f, rows), w) for f, w in res.waived]
        unused += [w for w in res.unused_waivers if w not in unused]
    findings.sort(key=lambda f: f.sort_key())
    waived.sort(key=lambda p: p[0].sort_key())
    statuses: dict[str, RuleStatus] = {}
    order: list[str] = []
    for res, _ in parts:
        for st in res.rules:
            have = statuses.get(st.id)
            if have is None:
                statuses[st.id] = RuleStatus(st.id, st.severity, st.status, datasets=list(st.datasets),
                                             reason=st.reason)
                order.append(st.id)
                continue
            if _STATUS_RANK[st.status] > _STATUS_RANK[have.status]:
                have.status, have.reason = st.status, st.reason
            have.datasets = sorted(set(have.datasets) | set(st.datasets))
    for st in statuses.values():
        st.findings = sum(f.rule == st.id for f in findings)
        st.waived = sum(f.rule == st.id for f, _ in waived)
        if st.status == "failed" and not st.findings:
            st.status = "passed"                     # its only findings were dataset-level duplicates
    checks = {}
    for res, _ in parts:
        for d in res.datasets:
            checks[d.name] = max(checks.get(d.name, 0), d.checks)
    summaries = []
    for name in sorted(data):
        mine = [f for f in findings if f.dataset == name]
        summaries.append(DatasetSummary(
            name=name, standard=metas[name].standard if name in metas else ("ADaM" if name.startswith("AD") else "SDTM"),
            records=len(data[name]), checks=checks.get(name, 0),
            errors=sum(f.severity == "error" for f in mine), warnings=sum(f.severity == "warning" for f in mine),
            notices=sum(f.severity == "notice" for f in mine), waived=sum(f.dataset == name for f, _ in waived)))
    timings: dict[str, float] = {}
    for res, _ in parts:
        for k, v in res.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    return ValidationResult(findings=findings, waived=waived, rules=[statuses[i] for i in order], datasets=summaries,
                            catalogue=parts[0][0].catalogue if parts else [], unused_waivers=unused, fail_on=fail_on,
                            timings=timings, build=build)


def validate_by_study(data: dict[str, pd.DataFrame], metas: dict, ctd: dict, context: dict, *, core: dict | None,
                      base_rules, engine: str, fail_on: str, build: dict | None, report_dir: Path | None,
                      file: str, parts: dict[str, list] | None = None,
                      file_columns: dict[str, list[str]] | None = None, prepare_meta=None,
                      write_results: bool = True) -> ValidationResult:
    """Validate every study of a pool on its own records (see the module docstring) and write
    one results.json and report.html for the pool into ``report_dir``. ``parts``: the split
    files validated as one domain (validation/folder.py), {domain: [(file dataset, ...)]}."""
    from cdisc.metadata import DatasetMeta

    from .core_bridge import CoreEvaluation
    from .engine import validate_datasets, write_outputs
    from .rules import apply_study_params
    from .waivers import waivers_from

    pool = (build or {}).get("pool") or {}
    counts, absent = pool.get("counts") or {}, pool.get("absent") or {}
    file_columns = file_columns or {n: list(df.columns) for n, df in data.items()}
    runs = []
    for studyid, sctx in sorted(context["studies"].items()):
        files = present = None
        if counts:
            files = {name for name, c in counts.items() if studyid in (c.get("studies") or {})}
            # a split domain (LBCH, LBHE: one LB) is the study's when one of its files is
            present = files | {domain for domain, offsets in (parts or {}).items() if {o[0] for o in offsets} & files}
        rows = study_rows(data, studyid, present)
        # CORE reads each file as it is (split files apart): its rows are per file
        core_rows = study_rows({n: ds.frame for n, ds in (core or {}).items() if ds.frame is not None}, studyid, files)
        own_metas = {n: DatasetMeta.model_validate(m) for n, m in (sctx.get("metadata") or {}).items()}
        own, columns = study_columns(file_columns, data, absent, studyid, files, parts)
        own = {n: _in_order(cols, own_metas.get(n)) for n, cols in own.items()}
        sub, smetas = {}, {}
        for name, pos in rows.items():
            meta = _own_meta(name, own_metas, metas, parts, files)
            cols = _in_order(columns[name], meta)
            sub[name] = data[name].iloc[pos][cols].reset_index(drop=True)
            if meta is not None:
                meta = meta.model_copy(update={"variables": [v for v in meta.variables if v.name in set(cols)]})
                smetas[name] = prepare_meta(name, meta, cols) if prepare_meta is not None else meta
        rules = apply_study_params(base_rules, (sctx.get("validation") or {}).get("rules"),
                                   data_cut=sctx.get("data_cut") or context.get("data_cut"),
                                   file=f"{file} (study {studyid})")
        waivers = waivers_from(_study_numbered(sctx.get("waivers"), {**core_rows, **rows}),
                               file=f"{file} (study {studyid})")
        core_run = CoreEvaluation(_subset_core(core, core_rows, own)).start() if core else None
        res = validate_datasets(sub, smetas, ctd, rules=rules,
                                waivers=waivers, engine=engine, fail_on=fail_on, core_datasets=core_run)
        # a finding names a combined split domain (our checks) or a file (CORE); the combined
        # domain's first file keeps its record numbers, so one name never means two row orders
        runs.append((res, {**core_rows, **rows}))
    result = merge_results(runs, data, metas, fail_on, build)
    if report_dir is not None and write_results:
        write_outputs(result, Path(report_dir))
    return result
