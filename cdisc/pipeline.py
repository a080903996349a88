"""The build graph: specs + raw forms -> SDTM domains -> (ADaM) -> files, manifest, report.

Order: DM first (every other domain needs its reference dates and subjects), then SE
(EPOCH comes from it), then the other domains in name order. All data problems of all
domains are collected and reported together; nothing is written when there is any, and
an earlier build in OUT stays as it was (files go to a temporary folder that replaces
OUT only at the end).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .ct import Terminology, load_terminology
from .errors import DataError, Problem, ProblemLog, SpecError
from .graph import sha256_file
from .metadata import DatasetMeta, VariableMeta
from .rawio import EXTENSIONS, FILE_COL, ROW_COL
from .specio import load_spec_folder
from .study import Study, load_study



@dataclass
class BuiltDataset:
    meta: DatasetMeta
    data: pd.DataFrame                # output columns only, in meta order
    standard: str                     # SDTM / ADaM
    trace: pd.DataFrame | None = None # __file/__row per record (for messages), not written
    delivered: Path | None = None     # a delivered dataset (cdisc build --sdtm): copied byte for byte
    kept: dict | None = None          # incremental build: its manifest entry in OUT; the file is copied from there


@dataclass
class BuildResult:
    study: Study
    ct: Terminology
    datasets: dict[str, BuiltDataset] = field(default_factory=dict)
    reconciliation: list[dict] = field(default_factory=list)
    columns: list[dict] = field(default_factory=list)          # per raw form: columns read / not mapped
    unmapped_forms: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    integrity_waived: list[dict] = field(default_factory=list)   # integrity findings waived (specs/waivers.yaml)
    source: str = "raw"                                          # raw forms, or "delivered" SDTM (--sdtm)
    notes: list[Problem] = field(default_factory=list)           # said, not errors (e.g. orphan SUPP-- records)
    documents: list[Path] = field(default_factory=list)          # delivered define.xml, stylesheet, cSDRG, aCRF
    nodes: dict = field(default_factory=dict)                    # the build graph (cdisc.graph.Node by name)
    node_notes: dict[str, list[str]] = field(default_factory=dict)   # notes per node (ADaM warnings)


SUPP_VARIABLES = [
    ("STUDYID", "Study Identifier", "Req"), ("RDOMAIN", "Related Domain Abbreviation", "Req"),
    ("USUBJID", "Unique Subject Identifier", "Req"), ("IDVAR", "Identifying Variable", "Exp"),
    ("IDVARVAL", "Identifying Variable Value", "Exp"), ("QNAM", "Qualifier Variable Name", "Req"),
    ("QLABEL", "Qualifier Variable Label", "Req"), ("QVAL", "Data Value", "Req"),
    ("QORIG", "Origin", "Req"), ("QEVAL", "Evaluator", "Exp"),
]
SUPP_KEYS = ["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"]

SE_VARIABLES = [
    ("STUDYID", "Study Identifier", "Char", "Req"), ("DOMAIN", "Domain Abbreviation", "Char", "Req"),
    ("USUBJID", "Unique Subject Identifier", "Char", "Req"), ("SESEQ", "Sequence Number", "Num", "Req"),
    ("ETCD", "Element Code", "Char", "Req"), ("ELEMENT", "Description of Element", "Char", "Perm"),
    ("TAETORD", "Planned Order of Element within Arm", "Num", "Perm"), ("EPOCH", "Epoch", "Char", "Perm"),
    ("SESTDTC", "Start Date/Time of Element", "Char", "Req"), ("SEENDTC", "End Date/Time of Element", "Char", "Exp"),
    ("SESTDY", "Study Day of Start of Element", "Num", "Perm"), ("SEENDY", "Study Day of End of Element", "Num", "Perm"),
]


def supp_meta(domain: str) -> DatasetMeta:
    """SUPP-- metadata (SDTMIG 3.4 §8.4); QVAL's per-QNAM metadata is value level (define.xml)."""
    return DatasetMeta(
        name=f"SUPP{domain}", label=f"Supplemental Qualifiers for {domain}",
        variables=[VariableMeta(name=n, label=lab, type="Char", core=core,
                                origin="Assigned" if n not in ("QVAL",) else None,
                                key_sequence=(SUPP_KEYS.index(n) + 1) if n in SUPP_KEYS else None)
                   for n, lab, core in SUPP_VARIABLES],
        keys=SUPP_KEYS, structure="One record per IDVAR, IDVARVAL, and QNAM value per subject",
        standard="SDTM", **{"class": "RELATIONSHIP"})


def se_meta() -> DatasetMeta:
    keys = ["STUDYID", "USUBJID", "ETCD", "SESTDTC"]
    return DatasetMeta(
        name="SE", label="Subject Elements",
        variables=[VariableMeta(name=n, label=lab, type=t, core=c, origin="Derived",
                                codelist="EPOCH" if n == "EPOCH" else None,
                                key_sequence=(keys.index(n) + 1) if n in keys else None)
                   for n, lab, t, c in SE_VARIABLES],
        keys=keys, structure="One record per actual Element per subject", standard="SDTM",
        **{"class": "SPECIAL PURPOSE"})


def load_domain_specs(specs_dir: Path):
    from cdisc.sdtm.spec import DomainSpec

    specs = load_spec_folder(specs_dir, "sdtm", DomainSpec, "domain")
    if "DM" not in specs:
        raise SpecError("no DM spec: specs/sdtm/dm.yaml is required (every domain needs its subjects)",
                        file="specs/sdtm")
    return specs


def _report(progress, stage: str, name: str, records: int | None, seconds: float) -> None:
    if progress is not None:
        progress(stage, name, records, seconds)


def build_sdtm(specs_dir: Path, raw_dir: Path, *, progress=None, on_start=None, executor=None) -> BuildResult:
    """Map every SDTM domain; ``progress(stage, dataset, records, seconds)`` hears of each as it is done.

    Records the build graph in ``result.nodes`` (cdisc.graph): per domain its spec and the
    raw forms the engine read for it (``ctx.form``), DM upstream of every other domain.
    ``on_start(result)`` is called once the study and its CT are loaded (the CLI's header line).
    ``executor`` (default ``cdisc.executor.current()``, serial): a parallel one maps the domains
    after DM and SE as tasks (``cdisc.tasks.map_domain_task``); their results are taken in
    name order, as the serial build makes them, so problems, progress and files are the same.
    """
    from cdisc.sdtm.engine import Context, map_domain
    from cdisc.sdtm.se import build_se

    from .executor import current as current_executor
    from .graph import Node

    executor = executor or current_executor()
    remote: dict = {}                      # domain -> Outcome of its task (a parallel executor)

    t0 = time.perf_counter()
    study = load_study(specs_dir)
    for what in ("arms", "visits"):
        if not getattr(study, what):
            raise SpecError(f"study.yaml has no {what}: a build from raw forms needs them (the arms of DM/TA, "
                            "the visit schedule of SV/TV)", file="specs/study.yaml", key=what,
                            hint="list them, or build from delivered SDTM with `cdisc build --sdtm DIR`")
    ct = load_terminology(specs_dir)
    specs = load_domain_specs(specs_dir)
    result = BuildResult(study=study, ct=ct)
    if on_start is not None:
        on_start(result)
    log = ProblemLog()
    ctx = Context(study=study, ct=ct, raw_dir=Path(raw_dir))
    read_by: dict[str, set[str]] = {}
    current: list[str] = []
    read_form = ctx.form

    first_reads: dict[str, list[str]] = {}  # domain -> forms it read first (a forked child's build)
    form_problems: dict[str, list] = {}      # form -> the problems reading it found

    def tracked_form(name: str):           # which forms each domain reads (its node's files)
        if current:
            read_by.setdefault(current[-1], set()).add(name)
        if name in ctx.forms_read:
            return read_form(name)
        before = len(ctx.problems)
        frame = read_form(name)
        first_reads.setdefault(current[-1] if current else "", []).append(name)
        form_problems[name] = ctx.problems[before:]
        return frame

    ctx.form = tracked_form

    order = ["DM"] + sorted(d for d in specs if d != "DM")
    forked = None                          # cdisc.sdtm_fork.ForkedDomains: the domains a child maps
    mapped: dict[str, tuple] = {}          # domain -> (DomainResult, seconds): not yet recorded
    pending = list(order)                  # the domains not yet recorded, in name order

    def record(dom: str, res, seconds: float | None, t: float | None = None) -> None:
        """A mapped domain into the build, in name order: its datasets, problems, node, progress
        (``seconds``; None for DM: the time since ``t``, SE's building included)."""
        nonlocal remote
        spec, display = specs[dom]
        log.extend(res.problems)
        meta = spec.meta()
        result.datasets[dom] = BuiltDataset(meta, res.data[meta.names].reset_index(drop=True), "SDTM",
                                            res.data[[FILE_COL, ROW_COL]].reset_index(drop=True))
        if res.supp is not None:
            sm = supp_meta(dom)
            result.datasets[sm.name] = BuiltDataset(sm, res.supp[sm.names].reset_index(drop=True), "SDTM",
                                                    res.supp[[FILE_COL, ROW_COL]].reset_index(drop=True))
        result.reconciliation.extend(vars(r) for r in res.reconciliation)
        if dom == "DM":
            ctx.dm = res.data
            if study.elements:
                se = build_se(ctx, res.data, log.problems)
                ctx.se = se
                m = se_meta()
                result.datasets["SE"] = BuiltDataset(m, se[m.names].reset_index(drop=True), "SDTM",
                                                     se[[FILE_COL, ROW_COL]].reset_index(drop=True))
            if executor.parallel:
                from .tasks import largest_first, map_domain_task, specs_token

                token, where = specs_token(specs_dir), (os.path.abspath(specs_dir), os.path.abspath(raw_dir))
                rest = largest_first(specs, order[1:], raw_dir)   # handed out largest first, taken in name order
                remote = dict(zip(rest, executor.map(map_domain_task, [(*where, token, d, ctx.dm, ctx.se)
                                                                        for d in rest])))
        result.timings[dom] = time.perf_counter() - t if seconds is None else seconds
        outs = [n for n in (dom, f"SUPP{dom}") + (("SE",) if dom == "DM" else ()) if n in result.datasets]
        result.nodes[dom] = Node(dom, "sdtm", [display] + sorted(f"raw/{ctx.forms_read[f]}" for f in read_by.get(dom, ())
                                                                if f in ctx.forms_read),
                                 [] if dom == "DM" else ["DM"], outs)
        for n in outs:
            _report(progress, "sdtm", n, len(result.datasets[n].data), result.timings[dom] if n == dom else 0.0)

    def flush(final: bool = False) -> None:
        """Record the mapped domains in name order up to the first one not mapped yet (with
        ``final``: taking the child's outcomes, which wait for it)."""
        while pending:
            dom = pending[0]
            if dom not in mapped:
                if not final:
                    return
                take_forked(dom)
            record(dom, *mapped.pop(dom))
            pending.pop(0)

    def take_forked(dom: str) -> None:
        """The child's outcome for ``dom``, merged as a task's (mapped here when the child could not)."""
        mapped[dom] = _forked_outcome(forked, dom, ctx, read_by.setdefault(dom, set()), first_reads,
                                      form_problems, (study, ct, specs, raw_dir))

    try:
        for dom in order:
            if forked is not None and dom in forked.names:
                continue
            spec, display = specs[dom]
            t = time.perf_counter()
            current.append(dom)
            try:
                if dom in remote:
                    res, seconds = _merge_domain_task(ctx, remote.pop(dom).get(), read_by.setdefault(dom, set()))
                else:
                    res, seconds = map_domain(spec, ctx, spec_file=display), None
            except Exception:
                if forked is not None:               # an earlier domain's error first, as in the serial build
                    for d in forked.names:
                        if d < dom:
                            take_forked(d)
                raise
            if dom == "DM":                          # DM and SE (every other domain reads them), timed with SE
                record(dom, res, None, t)
                pending.pop(0)
                forked = _fork_domains(executor, specs, order[1:], raw_dir, study, ct, ctx)
            else:
                mapped[dom] = (res, time.perf_counter() - t if seconds is None else seconds)
            current.pop()
            flush()
        flush(final=True)
    finally:
        if forked is not None:
            forked.finish()
    if forked is not None and forked.names:
        # the problems of reading the forms in the serial build's order: each form's, once, at
        # its first reader in name order (the child's domains read theirs beside the parent)
        seen: set[str] = set()
        ordered = [p for d in [""] + order for f in first_reads.get(d, [])
                   if not (f in seen or seen.add(f)) for p in form_problems[f]]
        # only form reads record problems here today; anything else recorded stays, after them
        placed = {id(p) for p in ordered}
        ctx.problems[:] = ordered + [p for p in ctx.problems if id(p) not in placed]

    t = time.perf_counter()
    before = set(result.datasets)
    _add_trial_design(result, Path(specs_dir))
    result.timings["trial_design"] = time.perf_counter() - t
    td = sorted(set(result.datasets) - before)
    if td:
        result.nodes["TD"] = Node("TD", "td", ["specs/trial_design.yaml"], ["DM"], td)
        for n in td:
            _report(progress, "sdtm", n, len(result.datasets[n].data), result.timings["trial_design"] / len(td))
    if not log.problems:
        t = time.perf_counter()
        _add_pp(result, Path(specs_dir))
        if "PP" in result.datasets:
            result.nodes["PP"] = Node("PP", "pp", ["specs/pp.yaml"], ["PC"], ["PP"])
            _report(progress, "sdtm", "PP", len(result.datasets["PP"].data), time.perf_counter() - t)

    # Cross-domain integrity (sdtm/integrity.py): subjects, --SEQ, consent, --DY, RFSTDTC, death.
    t = time.perf_counter()
    log.extend(_integrity(result, specs, Path(specs_dir)))
    result.timings["integrity"] = time.perf_counter() - t
    _report(progress, "check", "integrity", None, result.timings["integrity"])

    # Every raw file is either read by a spec or listed in study.yaml with the reason it is not.
    raw_files = sorted(p for p in Path(raw_dir).iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
    used = set(ctx.forms_read.values())
    for p in raw_files:
        if p.name in used:
            continue
        if p.stem in study.forms_not_mapped:
            result.unmapped_forms[p.name] = study.forms_not_mapped[p.stem]
        else:
            log.add("raw file is not mapped by any spec and not listed in forms_not_mapped", file=p.name,
                    hint="map it in specs/sdtm/ or list it under forms_not_mapped in specs/study.yaml with a reason")
    log.extend(ctx.problems)
    result.columns = reconcile_columns(ctx, study, log)
    result.timings["sdtm_total"] = time.perf_counter() - t0
    log.raise_if_any(DataError)
    return result


def build_from_sdtm(specs_dir: Path, sdtm_dir: Path, *, on_start=None) -> BuildResult:
    """The SDTM of a build from delivered datasets (``cdisc build --sdtm DIR``), as delivered.

    1. Every dataset file of DIR (XPT, Dataset-JSON, sas7bdat, parquet: ``cdisc.delivered``)
       is read as it is; its metadata is the file's own (names, labels, types) merged with
       SDTMIG 3.4 (Core designations, codelists, classes).
    2. Nothing is mapped, derived, fixed or re-emitted: the files are copied into the build
       byte for byte (``write_outputs``) and validated there like any build, so a problem
       in the delivery is a finding in the report, waivable in ``waivers.yaml`` with a
       reason, never a silent fix and never an edit of the CRO's data.
    3. ADaM datasets in the delivery are refused: this folder is the SDTM the study's
       ADaM specs read.
    """
    from cdisc.validation.standard import metadata_from_files

    from .delivered import read_delivery
    from .errors import InputError
    from .standards import load_standard

    t0 = time.perf_counter()
    study = load_study(specs_dir)
    ct = load_terminology(specs_dir)
    if on_start is not None:
        on_start(BuildResult(study=study, ct=ct, source="delivered"))
    delivered = read_delivery(sdtm_dir)
    if not delivered:
        raise InputError(f"no datasets (.xpt, .json, .sas7bdat, .parquet) in {sdtm_dir}", file=str(sdtm_dir),
                         hint="give the folder with the delivered SDTM datasets")
    ig, adamig = load_standard("sdtmig", "3.4"), load_standard("adamig", "1.3")
    adam = sorted(n for n in delivered if n.startswith("AD") and ig.domain_for(n) is None)
    if adam:
        raise InputError(f"{', '.join(adam)} in {sdtm_dir}: ADaM datasets in the SDTM delivery",
                         file=str(sdtm_dir), hint="--sdtm takes the SDTM folder; the ADaM is derived from specs/adam/")
    frames = {n: d.frame for n, d in delivered.items()}
    labels = {n: {"label": d.label, "variables": d.labels} for n, d in delivered.items()}
    metas = metadata_from_files(frames, labels, ct.as_dict(), ig, adamig)
    result = BuildResult(study=study, ct=ct, source="delivered")
    for name, d in delivered.items():
        # the file's variables, in its order (merge_with_standard also lists the IG's missing ones)
        by_name = {v.name: v for v in metas[name].variables}
        meta = metas[name].model_copy(update={"variables": [by_name[c] for c in d.frame.columns]})
        result.datasets[name] = BuiltDataset(meta, d.frame, "SDTM", None, delivered=d.file)
        result.reconciliation.append({"dataset": name, "file": d.file.name, "records": int(len(d.frame)),
                                      "variables": int(d.frame.shape[1])})
    # the delivery's own define.xml (with its stylesheet), cSDRG and aCRF travel with it
    result.documents = sorted(p for p in Path(sdtm_dir).iterdir() if p.is_file() and
                              p.name.lower() in DELIVERED_DOCUMENTS)
    result.timings["sdtm_total"] = time.perf_counter() - t0
    return result


DELIVERED_DOCUMENTS = ("define.xml", "define2-1.xsl", "define2-0-0.xsl", "csdrg.pdf", "acrf.pdf", "blankcrf.pdf")


def _fork_domains(executor, specs: dict, domains: list[str], raw_dir: Path, study, ct, ctx):
    """A child mapping the largest domains beside this process (cdisc.sdtm_fork), or None: a
    parallel executor (its tasks do this), one core, no fork, CDISC_JOBS=1, or a small study."""
    from .runtime import can_fork
    from .sdtm_fork import ForkedDomains, child_share
    from .tasks import domain_forms

    if executor.parallel or not domains or not can_fork():
        return None
    costs, forms = domain_forms(specs, domains, raw_dir)
    share = child_share(costs, forms)
    return ForkedDomains(share, study, ct, specs, raw_dir, ctx.dm, ctx.se) if share else None


def _forked_outcome(forked, dom: str, ctx, reads: set[str], first_reads: dict, form_problems: dict, loaded):
    """A domain the forked child mapped, merged as a task's; when the child could not, mapped
    here the same way (a fresh Context given DM and SE). Returns (DomainResult, seconds)."""
    from .tasks import map_loaded_domain

    task = forked.outcome(dom)
    if task is None:
        study, ct, specs, raw_dir = loaded
        task = map_loaded_domain(study, ct, specs, raw_dir, dom, ctx.dm, ctx.se)
    first_reads[dom] = list(task.forms)
    for form, (_, problems, _) in task.forms.items():
        form_problems.setdefault(form, problems)
    return _merge_domain_task(ctx, task, reads)


def _merge_domain_task(ctx, task, reads: set[str]):
    """A domain mapped on a worker (``cdisc.tasks.DomainTask``) into this build's ``Context``:
    a form not read before is recorded with its problems and columns (the first domain in name
    order to read it, as in the serial build), the columns rules read are added, ``reads`` gets
    the forms the domain asked for. Returns (DomainResult, seconds)."""
    for form, (fname, problems, columns) in task.forms.items():
        if form not in ctx.forms_read:
            ctx.forms_read[form] = fname
            ctx._raw[form] = columns                 # no rows: only its columns are read from here on
            ctx.problems.extend(problems)
    for form, cols in task.columns_read.items():
        ctx.columns_read.setdefault(form, set()).update(cols)
    reads.update(task.reads)
    return task.result, task.seconds


def reconcile_columns(ctx, study: Study, log: ProblemLog) -> list[dict]:
    """Every column of every raw form read is read by a rule or listed in study.yaml with a reason.

    A column no rule reads (a rename, melt, condition, aggregate or variable rule) and that
    ``columns_not_mapped`` does not list is an error naming the file and column: a field the
    EDC added (``AEOUT2``) must not disappear from the submission unnoticed. A listed column
    that a rule does read is an error too (the list must say what is true). Returns one
    entry per form for manifest.json: columns in, read, not mapped (with reasons).
    """
    entries = []
    for form in sorted(ctx.forms_read):
        fname = ctx.forms_read[form]
        cols = ctx.raw_columns(form)
        read = ctx.columns_read.get(form, set())
        not_mapped, unaccounted = {}, []
        for c in cols:
            reason = study.column_not_mapped(form, c)
            if c in read:
                if reason is not None and c in {str(k).upper() for k in (study.columns_not_mapped.get(form) or {})}:
                    log.add(f"column {c} is listed under columns_not_mapped.{form} in study.yaml but a spec reads it",
                            file=fname, column=c, hint=f"remove {c} from columns_not_mapped.{form}")
                continue
            if reason is not None:
                not_mapped[c] = reason
            else:
                unaccounted.append(c)
        for c in unaccounted:
            log.add(f"raw column {c} is not read by any spec and not listed in study.yaml columns_not_mapped",
                    file=fname, column=c,
                    hint=f"map it in a spec, or list it under columns_not_mapped.{form} in specs/study.yaml "
                         "with the reason it is not needed")
        entries.append({"form": form, "file": fname, "columns": len(cols),
                        "read": sorted(c for c in cols if c in read), "not_mapped": not_mapped})
    for key in sorted(study.columns_not_mapped):
        if key != "*" and key not in ctx.forms_read and key not in study.forms_not_mapped:
            log.add(f"columns_not_mapped names form {key!r}, which no spec reads", file="specs/study.yaml",
                    key=f"columns_not_mapped.{key}")
    return entries


def _add_pp(result: BuildResult, specs_dir: Path) -> None:
    """PP from PC by the toolkit's NCA (sdtm/pp.py), when the study has specs/pp.yaml."""
    from cdisc.sdtm.pp import build_pp, load_pp_settings, pp_meta

    settings = load_pp_settings(specs_dir)
    if settings is None or "PC" not in result.datasets:
        return
    pp = build_pp(result.datasets["PC"].data, settings, result.ct)
    meta = pp_meta()
    result.datasets["PP"] = BuiltDataset(meta, pp[meta.names].reset_index(drop=True), "SDTM", None)


def _add_trial_design(result: BuildResult, specs_dir: Path) -> None:
    """TA, TE, TV, TI, TS (SDTMIG 3.4 §7) from specs/trial_design.yaml, when the study has one.

    TS values known only from the data (ACTSUB, SSTDTC) come from the built DM
    (``sdtm.trial_design.ts_values_from_dm``). Trial design records have no raw row.
    """
    if not (specs_dir / "trial_design.yaml").is_file() or "DM" not in result.datasets:
        return
    from cdisc.sdtm.trial_design import (
        build_trial_design,
        load_trial_design,
        ts_values_from_dm,
    )

    design = load_trial_design(specs_dir)
    built = build_trial_design(result.study, design, result.ct,
                               overrides=ts_values_from_dm(result.datasets["DM"].data))
    for name in sorted(built):
        df, meta = built[name]
        result.datasets[name] = BuiltDataset(meta, df.reset_index(drop=True), "SDTM", None)


def _integrity(result: BuildResult, specs: dict, specs_dir: Path | None = None) -> list[Problem]:
    """Cross-domain integrity problems of the SDTM datasets built so far (sdtm.integrity), less the
    ones waived with a reason in specs/waivers.yaml ``integrity:`` (kept in ``result.integrity_waived``)."""
    from cdisc.sdtm.integrity import apply_integrity_waivers, check_integrity, integrity_waivers

    sdtm = {n: ds for n, ds in result.datasets.items() if ds.standard == "SDTM"}
    allowed = {dom: spec.dates_before_consent_reason for dom, (spec, _) in specs.items()
               if spec.dates_before_consent_allowed}
    treatments = [str(r.get("extrt", "")) for r in result.study.lookups.get("study_treatments", [])]
    refs = {(dom, v.name): v.study_day.reference for dom, (spec, _) in specs.items() for v in spec.variables
            if v.study_day is not None and not isinstance(v.study_day, str)}
    found = check_integrity({n: ds.data for n, ds in sdtm.items()},
                            {n: ds.trace for n, ds in sdtm.items() if ds.trace is not None},
                            dates_before_consent_allowed=allowed, study_treatments=treatments,
                            study_day_references=refs)
    wpath = Path(specs_dir) / "waivers.yaml" if specs_dir is not None else None
    if not found or wpath is None or not wpath.is_file():
        return found
    from .specio import load_yaml

    waivers = integrity_waivers(load_yaml(wpath, display="specs/waivers.yaml"))
    active, result.integrity_waived = apply_integrity_waivers(found, waivers)
    return active


sha256 = sha256_file          # one file hash for the manifest and the build graph (cdisc.graph)


class GraphMismatch(Exception):
    """A dataset the build graph called unchanged came out different: rebuild everything."""

    def __init__(self, dataset: str):
        super().__init__(dataset)
        self.dataset = dataset


@dataclass
class WrittenFiles:
    """The datasets ``write_outputs`` has written (or only checked, once one broke a limit) so
    far, in build order: a build writes its SDTM files first (``write_sdtm_first``) and hands
    this to ``write_outputs``, which writes the rest as if in one pass."""

    done: list[str] = field(default_factory=list)                  # dataset names, in build order
    outputs: list[dict] = field(default_factory=list)              # their manifest entries
    written: list[Path] = field(default_factory=list)              # files written (removed if any broke)
    broken: dict[str, list[Problem]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def files(self) -> dict[str, str]:
        """{dataset: file relative to the folder} of the datasets written."""
        return {o["dataset"]: o["file"] for o in self.outputs}


def _build_order(result: BuildResult) -> list[str]:
    return sorted(result.datasets, key=lambda n: (result.datasets[n].standard != "SDTM", n))


def write_sdtm_first(result: BuildResult, folder: Path, *, executor=None) -> WrittenFiles | None:
    """Write the SDTM files of a full build from raw forms before its ADaM is derived, so the
    validation of SDTM (the CORE rules) can start beside the derivation; ``write_outputs`` then
    writes the rest with the returned ``WrittenFiles``. The files, their checks and the
    manifest are those of one ``write_outputs`` pass (the SDTM datasets come first in its order
    either way). None (nothing written) for an incremental build or delivered SDTM: their kept
    and copied files are ``write_outputs``' own business."""
    names = [n for n in _build_order(result) if result.datasets[n].standard == "SDTM"]
    if any(result.datasets[n].kept is not None or result.datasets[n].delivered is not None for n in names):
        return None
    t0 = time.perf_counter()
    state = WrittenFiles()
    xpt = XptWriter(result, executor, Path(folder), names=names)
    try:
        _write_datasets(result, Path(folder), xpt, names, state, previous_dir=None)
    finally:
        xpt.finish()
    state.written.extend(xpt.forked_files())
    state.seconds = time.perf_counter() - t0
    return state


def write_outputs(result: BuildResult, folder: Path, *, specs_dir: Path, raw_dir: Path,
                  previous_dir: Path | None = None, record: dict | None = None,
                  hashes: dict[str, str] | None = None, executor=None, written: WrittenFiles | None = None) -> dict:
    """Write every dataset, metadata.json and manifest.json into ``folder`` (a fresh staging folder).

    The caller decides where the folder ends up (``cdisc.outdir.OutputFolder``): nothing
    here touches an earlier build. A dataset an incremental build kept (``ds.kept``, its
    manifest entry) is copied from ``previous_dir`` (the build in OUT) byte for byte; a kept SDTM
    dataset (mapped again anyway) is written and must match those bytes (``GraphMismatch``). ``record``
    (cdisc.graph.make_record) is the build graph the manifest records. Every XPT limit is checked before the first byte is
    written, so a dataset that breaks one never leaves a partial folder behind: each dataset is
    checked as it is written (one pass over its values), and when any breaks a limit the files
    written so far are removed again and every dataset's problems are raised together, in
    build order. A parallel ``executor`` (default ``cdisc.executor.current()``) checks and makes
    the XPT files as tasks (``XptWriter``); with the default serial one, a build of 200,000
    records or more on more than one core has a forked child write about half of the files
    (``cdisc.xpt_fork``: no pickling; the same bytes). ``written``: what ``write_sdtm_first``
    wrote before (those datasets are not written again).
    """
    folder = Path(folder)
    state = written if written is not None else WrittenFiles()
    names = [n for n in _build_order(result) if n not in set(state.done)]
    xpt = XptWriter(result, executor, folder, names=names)
    try:
        _write_datasets(result, folder, xpt, names, state, previous_dir=previous_dir)
        if state.broken:
            for path in state.written + xpt.forked_files():
                path.unlink(missing_ok=True)
            raise DataError([p for n in result.datasets if n in state.broken for p in state.broken[n]])
        return _write_manifest(result, folder, state.outputs, specs_dir=specs_dir, raw_dir=raw_dir,
                               record=record, hashes=hashes)
    finally:
        xpt.finish()                          # the forked writer's files are all written (or removed)


def _write_datasets(result: BuildResult, folder: Path, xpt: "XptWriter", names: list[str], state: WrittenFiles, *,
                    previous_dir: Path | None) -> None:
    import shutil

    from .errors import ConformanceError

    for name in names:
        state.done.append(name)
        ds = result.datasets[name]
        sub = "sdtm" if ds.standard == "SDTM" else "adam"
        (folder / sub).mkdir(parents=True, exist_ok=True)
        if ds.kept is not None and ds.standard == "SDTM" and ds.delivered is None:
            # mapped again in memory (the cross-domain checks need every domain): written afresh and
            # required to be the very bytes the build in OUT holds, else the build graph missed an input
            path = folder / ds.kept["file"]
            xpt.write(path, name, ds)
            if sha256(path) != ds.kept["sha256"]:
                raise GraphMismatch(name)
            state.outputs.append(ds.kept)
            continue
        if ds.kept is not None:
            path = folder / ds.kept["file"]
            shutil.copyfile(Path(previous_dir) / ds.kept["file"], path)
            if sha256(path) != ds.kept["sha256"]:
                raise DataError(f"{ds.kept['file']} changed in {previous_dir} during the build; run the build again")
            state.outputs.append(ds.kept)
            continue
        if ds.delivered is not None:
            path = folder / sub / ds.delivered.name
            shutil.copyfile(ds.delivered, path)
            info = {}
        else:
            path = folder / sub / f"{name.lower()}.xpt"
            if state.broken:                  # nothing more is written; the rest is only checked
                found = xpt.check(name, ds)
                if found:
                    state.broken[name] = _with_trace(found, ds)
                continue
            try:
                info = xpt.write(path, name, ds)
            except ConformanceError as exc:   # a delivered file's problems are validation findings
                state.broken[name] = _with_trace(exc.problems, ds)
                continue
            state.written.append(path)
        state.outputs.append({"dataset": name, "standard": ds.standard, "file": f"{sub}/{path.name}",
                              "records": int(len(ds.data)), "variables": len(ds.meta.variables),
                              "bytes": path.stat().st_size, "sha256": sha256(path),
                              "lengths": info.get("lengths", {})})


def _write_manifest(result: BuildResult, folder: Path, outputs: list[dict], *, specs_dir: Path, raw_dir: Path,
                    record: dict | None, hashes: dict[str, str] | None) -> dict:
    import shutil

    for doc in result.documents:
        (folder / "sdtm").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(doc, folder / "sdtm" / doc.name)
    manifest = {
        "tool": "cdisc", "studyid": result.study.studyid, "data_cut": result.study.data_cut.isoformat(),
        "ct_package": result.ct.package,
        "inputs": ([{"file": f, "sha256": h} for f, h in hashes.items()] if hashes is not None else
                   _inputs(specs_dir, raw_dir, "sdtm" if result.source == "delivered" else "raw")),
        "sdtm_source": result.source,
        "outputs": outputs,
        **({"delivered_documents": [{"file": f"sdtm/{d.name}", "sha256": sha256(d)} for d in result.documents]}
           if result.source == "delivered" else {}),
        "reconciliation": result.reconciliation,
        "columns": result.columns,
        "unmapped_forms": result.unmapped_forms,
    }
    if record is not None:
        manifest["build"] = record
    if result.integrity_waived:
        manifest["integrity_waived"] = result.integrity_waived
    if result.notes:
        manifest["notes"] = [str(p) for p in result.notes]
    metadata = {name: ds.meta.model_dump(mode="json", by_alias=True, exclude_none=True)
                for name, ds in sorted(result.datasets.items())}
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n", encoding="utf-8")
    (folder / "study.json").write_text(json.dumps(study_context(result, specs_dir), indent=1, sort_keys=True,
                                                  default=str) + "\n", encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return manifest


class XptWriter:
    """The XPT checks and files of ``write_outputs``: ``check_xpt``/``write_xpt`` here (serial),
    or, with a parallel executor, tasks started at once for every dataset written from memory
    (``cdisc.tasks.write_xpt_task``: the checks, then the file's bytes, which are written
    here). The same problems and bytes either way: a file is determined by (data, meta, created)."""

    def __init__(self, result: BuildResult, executor=None, folder: Path | None = None,
                 names: list[str] | None = None):
        from .executor import current

        executor = executor or current()
        self.created = result.study.created
        self.tasks: dict = {}
        self.forked = None
        names = list(result.datasets) if names is None else names
        if not executor.parallel and folder is not None:
            self.forked = _fork_writer(result, Path(folder), self.created, names)
        if executor.parallel:
            from .tasks import write_xpt_task

            names = [n for n in names if result.datasets[n].delivered is None
                     and (result.datasets[n].kept is None or result.datasets[n].standard == "SDTM")]
            self.tasks = dict(zip(names, executor.map(write_xpt_task, [
                (result.datasets[n].data, result.datasets[n].meta, self.created) for n in names])))

    def check(self, name: str, ds: BuiltDataset) -> list[Problem]:
        from .xpt import check_xpt

        got = self._forked(name)
        if got is not None:
            return list(got[0])
        return list(self.tasks[name].get()[0]) if name in self.tasks else check_xpt(ds.data, ds.meta)

    def _forked(self, name: str):
        if self.forked is None or name not in self.forked.names:
            return None
        return self.forked.outcome(name)

    def forked_files(self) -> list[Path]:
        """The files the forked writer wrote (to remove with the rest when a dataset is broken)."""
        return self.forked.written() if self.forked is not None else []

    def finish(self) -> None:
        if self.forked is not None:
            self.forked.finish()

    def write(self, path: Path, name: str, ds: BuiltDataset) -> dict:
        """``write_xpt``'s info; raises its ConformanceError for a dataset that breaks a limit."""
        from .errors import ConformanceError
        from .xpt import write_xpt

        got = self._forked(name)
        if got is not None and Path(path) == self.forked.paths[name]:
            if got[0]:
                raise ConformanceError(got[0])
            return got[1]
        if name not in self.tasks:
            return write_xpt(path, ds.data, ds.meta, self.created)
        problems, info, content = self.tasks.pop(name).get()
        if problems:
            raise ConformanceError(problems)
        Path(path).write_bytes(content)
        return info


def _fork_writer(result: BuildResult, folder: Path, created, names: list[str]):
    """A forked child writing about half of the transport files made from memory of ``names``
    (cdisc.xpt_fork), or None: one core, no fork, CDISC_JOBS=1, or a small build."""
    from .xpt_fork import MIN_RECORDS, ForkedWriter, can_fork, share

    fresh = {n: result.datasets[n] for n in names
             if result.datasets[n].delivered is None and result.datasets[n].kept is None}
    if not can_fork() or sum(len(ds.data) for ds in fresh.values()) < MIN_RECORDS:
        return None
    theirs = share({n: len(ds.data) * max(1, len(ds.data.columns)) for n, ds in fresh.items()})
    jobs = {}
    for name in sorted(theirs, key=lambda n: (result.datasets[n].standard != "SDTM", n)):   # the parent's order
        ds = result.datasets[name]
        sub = folder / ("sdtm" if ds.standard == "SDTM" else "adam")
        sub.mkdir(parents=True, exist_ok=True)
        jobs[name] = (sub / f"{name.lower()}.xpt", ds.data, ds.meta)
    return ForkedWriter(jobs, created)


def study_context(result: BuildResult, specs_dir: Path) -> dict:
    """What validating the build later needs from its specs, so a build folder validates on its
    own (``cdisc validate BUILD``): the data cut, the CT versions and the sponsor's codelists and
    extensions, the study's validation rule parameters (specs/validation.yaml) and its waivers
    (specs/waivers.yaml)."""
    from .specio import load_yaml

    path = Path(specs_dir) / "validation.yaml"
    overrides = ((load_yaml(path, display="specs/validation.yaml") or {}).get("rules") or {}) if path.is_file() else {}
    wpath = Path(specs_dir) / "waivers.yaml"
    waivers = load_yaml(wpath, display="specs/waivers.yaml") if wpath.is_file() else None
    if isinstance(waivers, dict):
        waivers = waivers.get("waivers")
    return {"studyid": result.study.studyid, "data_cut": result.study.data_cut.isoformat(),
            "ct": {"sdtm": result.study.ct.sdtm, "adam": result.study.ct.adam},
            "sponsor_ct": result.ct.sponsor, "validation": {"rules": overrides},
            "waivers": waivers or []}


def load_build_metadata(out_dir: Path) -> dict[str, DatasetMeta]:
    """The dataset metadata a build wrote (metadata.json), for validating the folder later."""
    path = Path(out_dir) / "metadata.json"
    if not path.is_file():
        raise SpecError(f"{path} not found: is {out_dir} a cdisc build folder? Run `cdisc build --out {out_dir}`")
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: DatasetMeta.model_validate(m) for name, m in data.items()}


def _with_trace(problems: list[Problem], ds: BuiltDataset) -> list[Problem]:
    """Point XPT problems (dataset record numbers) back to the raw file and row they came from."""
    if ds.trace is None:
        return problems
    out = []
    for p in problems:
        if p.row is not None and 1 <= p.row <= len(ds.trace):
            f, r = ds.trace.iloc[p.row - 1]
            p = Problem(f"{ds.meta.name} record {p.row}: {p.message}", file=str(f), row=int(r),
                        column=p.column, hint=p.hint)
        out.append(p)
    return out


def _inputs(specs_dir: Path, raw_dir: Path, raw_label: str = "raw") -> list[dict]:
    items = []
    for base, label in ((Path(specs_dir), "specs"), (Path(raw_dir), raw_label)):
        for p in sorted(base.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                items.append({"file": f"{label}/{p.relative_to(base).as_posix()}", "sha256": sha256(p)})
    return items
