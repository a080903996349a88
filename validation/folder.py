"""Validate a folder of datasets: a cdisc build, or any SDTM/ADaM delivery (XPT or Dataset-JSON).

``validate_folder(path)`` is what ``cdisc validate PATH`` runs:

1. the datasets: a cdisc build's ``sdtm/*.xpt`` and ``adam/*.xpt``; any other folder's
   ``*.xpt`` and Dataset-JSON ``*.json`` files, searched below it (an XPT wins over a JSON
   copy of the same dataset);
2. the metadata: a build's ``metadata.json`` (its specs), else the files' own names, labels
   and types; either way merged with SDTMIG 3.4 / ADaMIG 1.3 (validation/standard.py);
3. the study context: from ``specs_dir`` when given (CT, rule parameters, data cut,
   waivers), else from a build's ``study.json``, else the newest CDISC CT and no study
   parameters: a CRO delivery is checked against the standard alone;
4. split datasets (SDTMIG §4.1.7: LBCH, LBHE, ... of LB) are validated as one domain
   (keys and --SEQ are unique across the splits); every finding still names the file and
   the record in it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cdisc.errors import InputError

from .model import ValidationResult

# split/ holds the parts of a dataset the package split by size (FDA TCG §3.3.2): the full
# file beside it is the dataset, so its parts are not validated as datasets of their own
SKIP_DIRS = {"validation", "suites", "__pycache__", "split"}


@dataclass
class Folder:
    """The datasets of a folder and where each came from."""

    datasets: dict[str, pd.DataFrame] = field(default_factory=dict)
    labels: dict[str, dict] = field(default_factory=dict)      # name -> {label, variables: {name: label}}
    files: dict[str, str] = field(default_factory=dict)        # name -> file (relative to the folder)
    is_build: bool = False
    xpt_meta: dict[str, object] = field(default_factory=dict)  # name -> XptMeta of an XPT file (its headers)


def _read_xpt(path: Path) -> tuple[pd.DataFrame, dict, object]:
    """One XPT file (v5 or v8) with cdisc.xpt_read: the frame pyreadstat's
    ``read_xport(path, disable_datetime_conversion=True)`` gives (SAS numbers, "" for blank
    text), a blank variable label as None as pyreadstat gives it. A damaged file or text that
    is not UTF-8 is an InputError naming the file (and variable and record). Each text column's
    distinct values stay with cdisc.distinct: the checks of that column work on those."""
    from cdisc.xpt_read import read_xport

    df, meta = read_xport(path, remember_distinct=True)
    return df, {"label": meta.file_label, "variables": {n: label or None for n, label in
                                                        zip(meta.column_names, meta.column_labels)}}, meta


def _read_json(path: Path) -> tuple[pd.DataFrame, dict] | None:
    from cdisc.datasetjson import read_dataset_json

    head = path.read_bytes()[:4096]
    if b"datasetJSONVersion" not in head and b'"columns"' not in head:
        return None                                   # some other JSON (manifest, metadata)
    df, meta = read_dataset_json(path)
    return df, {"label": meta.get("label") or "",
                "variables": {c.get("name"): c.get("label") for c in meta.get("columns", [])}}


def _read_other(path: Path) -> tuple[pd.DataFrame, dict]:
    """A sas7bdat or parquet file (cdisc.delivered): the frame an XPT copy would give."""
    from cdisc.delivered import read_delivered

    d = read_delivered(path)
    return d.frame, {"label": d.label, "variables": {c: d.labels.get(c) for c in d.frame.columns}}


def _is_build(path: Path) -> bool:
    return (path / "metadata.json").is_file() and (path / "manifest.json").is_file()


def _candidates(path: Path, is_build: bool) -> list[Path]:
    """The dataset files of a folder in the order they are read (the first of a name wins)."""
    from cdisc.delivered import FORMATS

    if is_build:        # its datasets are in sdtm/ and adam/ (XPT, or Dataset-JSON instead;
        # a build from delivered SDTM holds the delivered files, whatever their format)
        found = [p for d in ("sdtm", "adam") for p in (path / d).glob("*")
                 if p.is_file() and p.suffix.lower() in FORMATS]
    else:
        found = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS
                 and not (SKIP_DIRS & {q.name for q in p.relative_to(path).parents})]
    return sorted(found, key=lambda p: (FORMATS.index(p.suffix.lower()), str(p)))


def read_folder(path: Path, *, on_sdtm=None) -> Folder:
    """Every dataset of a folder (see the module docstring), names upper case.

    ``on_sdtm(folder)``: for a build whose adam/ holds only AD* datasets, called once its sdtm/
    files are read, before adam/'s (CORE's rules need only SDTM: they start beside the rest of
    the reading); the folder is then the same as without it, in the same order."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path} is not a folder", hint="give the folder that holds the .xpt or Dataset-JSON files")
    out = Folder(is_build=_is_build(path))
    candidates = _candidates(path, out.is_build)
    names = [p.name.split(".")[0].upper() for p in candidates]
    if on_sdtm is not None and out.is_build and all(
            n.startswith("AD") for p, n in zip(candidates, names) if p.parent.name == "adam") and not (
            {n for p, n in zip(candidates, names) if p.parent.name == "adam"}
            & {n for p, n in zip(candidates, names) if p.parent.name == "sdtm"}):
        sdtm = [p for p in candidates if p.parent.name == "sdtm"]
        _read_into(out, path, sdtm)
        on_sdtm(out)
        _read_into(out, path, [p for p in candidates if p.parent.name != "sdtm"])
        order = {n: i for i, n in enumerate(dict.fromkeys(names))}       # the one-pass order
        for d in (out.datasets, out.labels, out.files, out.xpt_meta):
            items = sorted(d.items(), key=lambda kv: order[kv[0]])
            d.clear()
            d.update(items)
    else:
        _read_into(out, path, candidates)
    if not out.datasets:
        raise InputError(f"no datasets (.xpt or Dataset-JSON) in {path}", file=str(path))
    return out


def _read_into(out: Folder, path: Path, candidates: list[Path]) -> None:
    for p in candidates:
        name = p.name.split(".")[0].upper()
        if name in out.datasets:
            continue
        suffix = p.suffix.lower()
        got = _read_xpt(p) if suffix == ".xpt" else _read_json(p) if suffix == ".json" else _read_other(p)
        if got is None:
            continue
        out.datasets[name], out.labels[name] = got[:2]
        if suffix == ".xpt":
            out.xpt_meta[name] = got[2]
        out.files[name] = p.relative_to(path).as_posix()


def core_datasets(path: Path, folder: Folder, ig) -> dict:
    """The SDTM datasets of the folder as the CORE evaluator reads them (each file as it is,
    split files separately: the evaluator knows SDTMIG §4.1.7 itself). ADaM datasets are not
    in the scope of the SDTMIG rules."""
    from .core.xpt import dataset_from_frame, read_dataset_json as core_json, read_xpt as core_xpt

    out = {}
    for name, rel in sorted(folder.files.items()):
        if name.startswith("AD") and ig.domain_for(name) is None:
            continue
        p = Path(path) / rel
        suffix = p.suffix.lower()
        if suffix == ".xpt":      # the frame read_folder read, not the file again
            out[name] = core_xpt(p, (folder.datasets[name], folder.xpt_meta[name]))
        elif suffix == ".json":
            out[name] = core_json(p)
        else:
            out[name] = dataset_from_frame(p, folder.datasets[name], folder.labels[name])
    return out


def read_core_datasets(path: Path, files: dict[str, str]) -> dict:
    """``core_datasets`` of the SDTM ``files`` (``{dataset: file relative to path}``) of a build,
    read as ``read_folder`` reads them: what a validation's ``on_sdtm`` hands the CORE rules."""
    from cdisc.standards import load_standard

    out = Folder(is_build=True)
    _read_into(out, path, [path / f for f in files.values()])
    return core_datasets(path, out, load_standard("sdtmig", "3.4"))


def _combine_splits(datasets: dict[str, pd.DataFrame], ig) -> tuple[dict[str, pd.DataFrame], dict[str, list]]:
    """Split datasets of one domain as one frame; returns the frames and, per combined domain,
    [(file dataset name, first row, number of rows)] to map findings back."""
    groups: dict[str, list[str]] = {}
    for name in sorted(datasets):
        dom = ig.domain_for(name)
        target = dom.name if dom is not None and dom.name != name and len(dom.name) == 2 and \
            not name.startswith("SUPP") else name
        groups.setdefault(target, []).append(name)
    out, parts = {}, {}
    for target, names in groups.items():
        if len(names) == 1 and names[0] == target:
            out[target] = datasets[target]
            continue
        frames, offsets, start = [], [], 0
        for n in names:
            frames.append(datasets[n])
            offsets.append((n, start, len(datasets[n])))
            start += len(datasets[n])
        out[target] = pd.concat(frames, ignore_index=True, sort=False)
        parts[target] = offsets
    return out, parts


def _unsplit(result: ValidationResult, parts: dict[str, list]) -> None:
    """Findings on a combined domain name the split file and the record within it."""
    if not parts:
        return
    from dataclasses import replace

    def back(f):
        if f.dataset in parts and f.row is not None:
            for name, start, n in parts[f.dataset]:
                if start < f.row <= start + n:
                    return replace(f, dataset=name, row=f.row - start)
        return f

    result.findings = sorted((back(f) for f in result.findings), key=lambda f: f.sort_key())
    result.waived = [(back(f), w) for f, w in result.waived]


def validate_folder(path: Path | str, *, specs_dir: Path | str | None = None, report_dir: Path | str | None = None,
                    fail_on: str = "error", engine: str = "native", rules=None, core: bool = True,
                    early_core=None) -> ValidationResult:
    """Validate the datasets of ``path`` (see the module docstring); with ``report_dir``
    write results.json, report.html and the suites there. ``early_core``: a
    ``CoreEvaluation.waiting()`` the build started on this folder's SDTM files (taken when the
    files are still those it read, else stopped)."""
    from cdisc.gcpause import gc_paused

    try:
        with gc_paused():
            return _validate_folder(path, specs_dir=specs_dir, report_dir=report_dir, fail_on=fail_on,
                                    engine=engine, rules=rules, core=core, early_core=early_core)
    finally:
        if early_core is not None:
            early_core.cancel()                      # not taken, or failed: its child goes


def _validate_folder(path, *, specs_dir, report_dir, fail_on, engine, rules, core, early_core) -> ValidationResult:
    from cdisc.pipeline import load_build_metadata
    from cdisc.ct import load_terminology, make_terminology
    from cdisc.specio import load_yaml
    from cdisc.standards import load_standard

    from .engine import validate_datasets
    from .rules import apply_study_params, load_rules
    from .standard import merge_with_standard, metadata_from_files
    from .waivers import load_waivers

    from .core_bridge import CoreEvaluation

    path = Path(path)
    ig, adamig = load_standard("sdtmig", "3.4"), load_standard("adamig", "1.3")
    context = {}
    is_build = path.is_dir() and _is_build(path)
    # a build's study.json, or the copy `cdisc package` puts in supplementary/validation/: the CT
    # versions, sponsor CT, rule parameters, waivers and data cut the study was validated with
    context_file = path / "study.json" if is_build else path / "supplementary" / "validation" / "study.json"
    if context_file.is_file():
        context = json.loads(context_file.read_text(encoding="utf-8"))
    # a pool (cdisc pool): every study's records are validated on their own (validation/pooled.py)
    by_study = bool(is_build and specs_dir is None and context.get("studies"))
    # the CORE rules need only the SDTM files: start them as soon as those are read, beside
    # the reading of the ADaM files and everything below
    started = []

    def start_core(sdtm_only: Folder) -> None:
        datasets = core_datasets(path, sdtm_only, ig)
        if early_core is not None and early_core.attach(path, sdtm_only.files, datasets):
            started.append(early_core)
        else:
            started.append(CoreEvaluation(datasets).start())

    try:
        folder = read_folder(path, on_sdtm=start_core if core and not by_study else None)
    except BaseException:
        for run in started:
            run.cancel()
        raise
    core_run = None
    if core:
        core_run = started[0] if started else core_datasets(path, folder, ig)
        if not by_study and not started:
            core_run = CoreEvaluation(core_run).start()
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8")) if folder.is_build else None

    waivers = []
    rules = load_rules() if rules is None else rules
    base_rules = rules
    if specs_dir is not None:
        from cdisc.study import load_study

        specs_dir = Path(specs_dir)
        ct = load_terminology(specs_dir)
        vpath = specs_dir / "validation.yaml"
        overrides = ((load_yaml(vpath, display="specs/validation.yaml") or {}).get("rules")) if vpath.is_file() else None
        rules = apply_study_params(rules, overrides, data_cut=load_study(specs_dir).data_cut.isoformat())
        waivers = load_waivers(specs_dir / "waivers.yaml")
    else:
        versions = context.get("ct") or {}
        ct = make_terminology(versions.get("sdtm"), versions.get("adam"), context.get("sponsor_ct"),
                              file=f"{path.name}/study.json")
        cut = context.get("data_cut") or (manifest or {}).get("data_cut")
        rules = apply_study_params(rules, (context.get("validation") or {}).get("rules"), data_cut=cut,
                                   file=f"{path.name}/study.json")
        from .waivers import waivers_from

        waivers = waivers_from(context.get("waivers"), file=f"{path.name}/study.json")
    ctd = ct.as_dict()

    data, parts = _combine_splits(folder.datasets, ig)
    if folder.is_build:
        metas = load_build_metadata(path)
        for target, offsets in parts.items():       # a combined split domain: its first file's metadata
            if target not in metas and offsets[0][0] in metas:
                metas[target] = metas[offsets[0][0]].model_copy(update={"name": target})
        metas = {n: merge_with_standard(n, m, data[n].columns if n in data else [v.name for v in m.variables],
                                        ctd, ig, adamig) for n, m in metas.items() if n in data}
    else:
        labels = dict(folder.labels)
        for target, offsets in parts.items():       # a combined split domain: its first file's labels
            labels[target] = folder.labels[offsets[0][0]]
        metas = metadata_from_files(data, labels, ctd, ig, adamig)
    out = Path(report_dir) if report_dir is not None else None
    defines = sorted(p for p in path.rglob("define.xml") if p.is_file()) if not folder.is_build else []
    define_findings = None
    if defines:
        from .define_checks import check_define

        define_findings = []
        for d in defines:
            beside = {n: folder.datasets[n] for n, rel in folder.files.items() if (path / rel).parent == d.parent}
            define_findings.append(check_define(d, beside, ig, adamig, ct_packages=getattr(ct, "packages", ())))
    if by_study:
        from .pooled import validate_by_study

        result = validate_by_study(data, metas, ctd, context, core=core_run, base_rules=base_rules, engine=engine,
                                   fail_on=fail_on, build=manifest, report_dir=out, file=f"{path.name}/study.json",
                                   parts=parts, file_columns={n: list(df.columns) for n, df in folder.datasets.items()},
                                   prepare_meta=lambda n, m, cols: merge_with_standard(n, m, cols, ctd, ig, adamig),
                                   write_results=not parts)
    else:
        result = validate_datasets(data, metas, ctd, rules=rules, waivers=waivers, engine=engine, fail_on=fail_on,
                                   build=manifest, report_dir=out,
                                   core_datasets=core_run,
                                   define_findings=define_findings, write_results=not parts)
    _unsplit(result, parts)
    if out is not None and parts:                    # written once, with the split files' records
        from .engine import write_outputs

        write_outputs(result, out)
    result.source = {"folder": str(path), "files": folder.files, "build": folder.is_build,
                     "ct": ct.package, "specs": str(specs_dir) if specs_dir is not None else None}
    return result
