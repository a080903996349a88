"""The submission package: eCTD module 5 dataset folders, define.xml, checksums.

``package(build, out, specs)`` turns a validated build folder into::

    out/manifest.json                       SHA-256 and size of every file, the splits,
                                            the validation verdict, the documents (generated,
                                            from specs/docs, or missing), the supplementary
                                            files (no clock time)
    out/m5/datasets/<studyid>/tabulations/sdtm/
        *.xpt, define.xml, define2-1.xsl, csdrg.pdf, [acrf.pdf], [split/<name><n>.xpt]
    out/m5/datasets/<studyid>/analysis/adam/datasets/
        *.xpt, define.xml, define2-1.xsl, adrg.pdf, [split/]
    out/supplementary/                      beside m5: what the TCG does not list there
        sdtm/ adam/: define.html, [*.json Dataset-JSON]; validation/: report.html, results.json

m5 holds only the file types the FDA Study Data Technical Conformance Guide lists for the
dataset folders (XPT, define.xml and its stylesheet, the reviewer's guides and aCRF as PDF).
The reviewer's guides are generated (:mod:`cdisc.guides`) unless ``specs/docs/`` holds the
sponsor's own; an annotated CRF is never generated: without ``specs/docs/acrf.pdf`` the
manifest lists it as not included, the command says so and define.xml does not link it.

following the folder structure of the FDA Study Data Technical Conformance Guide (TCG
§7.2, eCTD module 5: ``m5/datasets/<study>/tabulations/sdtm`` and
``.../analysis/adam/datasets``; folder and file names in lower case).

Dataset size (TCG §3.3.2): a transport file larger than the limit (5 GB) is also
submitted as smaller files split by a logical variable (e.g. LB by LBCAT), each no
larger than the limit, in a ``split`` sub-folder beside the full file, named like the
dataset with a number (``lb1.xpt``, ``lb2.xpt``: the dataset inside each is named as
its file, TCG §4.1.1); the full, non-split file stays where it is, and the split is
described in the dataset's define.xml comment and in manifest.json (for the reviewer's
guide). Only the .xpt files are split (Dataset-JSON is an exchange copy). The limit and the split
variables are per agency (``specs/study.yaml`` ``submission:``, ``cdisc package --agency``;
:func:`agency_rules`); ``--split-limit`` overrides the limit.

Character lengths (FDA TCG §4.1.5.2): every transport file of the package, split parts
included, gives a variable the length it has study-wide (:func:`cdisc.define.from_build.
study_lengths`), and define.xml's Length says the same; a file whose build lengths differ
is rewritten with those lengths (same values), the others are copied byte for byte. Its
Dataset-JSON copy (``supplementary/``) is then written again too, so its column lengths are
define.xml's.

Determinism: every byte comes from the build, the specs and the data cut (XPT headers,
define.xml CreationDateTime, Dataset-JSON datasetJSONCreationDateTime); packaging the
same build twice gives identical files, manifest included.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from cdisc.define.from_build import (
    BuildDataset,
    char_widths,
    metadata_version_oid,
    read_build,
    study_lengths,
    study_oid,
    write_defines,
)
from cdisc.errors import ConformanceError, DataError, InputError, Problem, SpecError
from cdisc.guides import package_documents

DEFAULT_SPLIT_LIMIT = 5 * 1024**3          # FDA TCG §3.3.2: 5 GB
MANIFEST = "manifest.json"
SUPPLEMENTARY = "supplementary"            # beside m5: what the TCG does not list for m5/datasets
MANIFEST_HASH = "manifest.json.sha256"     # sidecar: the manifest itself is checked too
RECORD = 80                                # XPT v5 records are 80 bytes


def _sha256(path: Path) -> str:
    from cdisc.pipeline import sha256

    return sha256(path)


# --------------------------------------------------------------------------------------
# Dataset-JSON next to each XPT
# --------------------------------------------------------------------------------------
def write_json_datasets(build_dir: Path, specs_dir: Path) -> list[Path]:
    """Write every dataset of a build also as CDISC Dataset-JSON v1.1, next to its XPT.

    Args:
        build_dir: a ``cdisc build`` folder (metadata.json, sdtm/*.xpt, adam/*.xpt).
        specs_dir: the study specs (study.yaml: STUDYID, sponsor, data cut).

    Returns:
        The files written, e.g. ``[BUILD/adam/adae.json, ..., BUILD/sdtm/suppdm.json]``.

    Steps:
        1. read each transport file back (pyreadstat, no date conversion) so the JSON
           holds exactly the XPT's values, not the frame the build had in memory;
        2. write it with :func:`cdisc.datasetjson.write_dataset_json`: column metadata
           (itemOID ``IT.<DS>.<VAR>``, name, label, dataType, length, displayFormat,
           keySequence) from metadata.json; studyOID / metaDataVersionOID as in the
           define.xml of that standard (metaDataRef ``define.xml`` beside it);
           ``datasetJSONCreationDateTime`` = the data cut (same bytes on every run);
        3. validate each file against the Dataset-JSON 1.1 schema; any finding raises.

    Raises:
        ConformanceError: a written file is not valid Dataset-JSON (a bug).
    """
    from cdisc.study import load_study

    study = load_study(Path(specs_dir))
    written: list[Path] = []
    problems: list[Problem] = []
    for name, ds in sorted(read_build(Path(build_dir)).items()):
        path = ds.path.with_suffix(".json")
        problems += _write_json_copy(ds, path, study)
        written.append(path)
    if problems:
        raise ConformanceError(problems)
    return written


def _write_json_copy(ds: BuildDataset, path: Path, study, lengths: dict[str, int] | None = None) -> list[Problem]:
    """One dataset as Dataset-JSON v1.1 (``lengths``: a package's study-wide lengths); the
    schema's findings on the written file."""
    from cdisc import __version__
    from cdisc.datasetjson import validate_dataset_json, write_dataset_json

    write_dataset_json(
        path, ds.data, ds.meta, study_oid=study_oid(study.studyid),
        metadata_version_oid=metadata_version_oid(study.studyid, ds.standard),
        created=study.created, originator=study.sponsor,
        source_system={"name": "cdisc", "version": __version__}, define_path="define.xml",
        lengths=lengths)
    return validate_dataset_json(path)


def compare_json_to_xpt(json_path: Path, xpt_path: Path) -> list[Problem]:
    """Differences between a Dataset-JSON file and the XPT it was written from.

    Char values must be equal as text; Num values bit for bit (NaN = NaN; -0.0 and 0.0
    differ), dates as SAS day/second counts. Empty list: identical.
    """
    from cdisc.datasetjson import read_dataset_json
    from cdisc.define.from_build import read_xpt_values

    xpt = read_xpt_values(Path(xpt_path))
    js, _ = read_dataset_json(Path(json_path))
    file = str(json_path)
    if list(js.columns) != list(xpt.columns):
        return [Problem(f"columns {list(js.columns)} differ from the XPT's {list(xpt.columns)}",
                        file=file)]
    if len(js) != len(xpt):
        return [Problem(f"{len(js)} rows, the XPT has {len(xpt)}", file=file)]
    problems = []
    for col in xpt.columns:
        a, b = xpt[col], js[col]
        if pd.api.types.is_numeric_dtype(a):
            x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
            same = (x.view("int64") == y.view("int64")) | (np.isnan(x) & np.isnan(y))
        else:
            same = (a.astype(str).to_numpy() == b.astype(str).to_numpy())
        bad = np.flatnonzero(~same)
        if bad.size:
            i = int(bad[0])
            problems.append(Problem(f"{bad.size} value(s) differ, first: XPT {a.iloc[i]!r} vs "
                                    f"JSON {b.iloc[i]!r}", file=file, row=i + 1, column=col))
    return problems


# --------------------------------------------------------------------------------------
# Splitting a large dataset (FDA TCG §3.3.2)
# --------------------------------------------------------------------------------------
def _padded(n_bytes):
    """Bytes of ``n_bytes`` of records once padded to whole 80-byte XPT records (int or
    numpy array)."""
    return n_bytes + (-n_bytes % RECORD)


def split_candidates(ds: BuildDataset) -> list[str]:
    """Variables a dataset can be split by, most logical first (TCG §3.3.2 names LBCAT
    for LB): the domain's --CAT, PARCAT1, PARAMCD, --TESTCD, QNAM, then USUBJID."""
    prefix = ds.name[:2]
    names = [f"{prefix}CAT", "PARCAT1", "PARAMCD", f"{prefix}TESTCD", "QNAM", "USUBJID"]
    return [n for n in names if n in ds.data.columns]


def plan_split(ds: BuildDataset, limit: int, *, by: str | None = None
               ) -> tuple[str, list[list[str]]]:
    """Choose the split variable and group its values into parts that fit ``limit``.

    Args:
        ds: the dataset (its XPT file gives the header size and record length).
        limit: largest allowed part file, in bytes.
        by: the variable to split by; None tries :func:`split_candidates` in order.

    Returns:
        ``(variable, parts)``: each part is the list of the variable's values whose
        records go into that file.

    Steps:
        1. record length = the sum of the XPT storage widths; header = file size minus
           the records (padded to 80 bytes); a part of k records is then
           ``header + pad80(k * reclen)`` bytes (a part keeps the full file's lengths);
        2. for each candidate variable: count the records per value (values in sorted
           order); a category variable (--CAT, PARCAT1) gives one part per value, any
           other packs consecutive values into a part while the bound stays within
           ``limit``; the variable fails when one value alone is too large or only one
           part results;
        3. the first variable that works is used.

    Raises:
        DataError: ``by`` names a variable that is missing or cannot split the dataset
            under the limit, or no candidate can.
    """
    import pyreadstat

    _, info = pyreadstat.read_xport(str(ds.path), metadataonly=True)
    reclen = int(sum(info.variable_storage_width.values()))
    n = len(ds.data)
    size = ds.path.stat().st_size
    header = size - _padded(n * reclen)
    candidates = [by] if by else split_candidates(ds)
    categories = {f"{ds.name[:2]}CAT", "PARCAT1"}
    tried = []
    for var in candidates:
        if var not in ds.data.columns:
            raise DataError(f"cannot split {ds.name} by {var}: no such variable", file=ds.rel,
                            column=var)
        counts = ds.data[var].astype(str).value_counts(sort=False).sort_index()
        bounds = header + _padded(counts.to_numpy() * reclen)
        if (bounds > limit).any():
            i = int(np.argmax(bounds > limit))
            tried.append(f"{var} ({var}={counts.index[i]!r} alone needs {int(bounds[i])} bytes)")
            continue
        if var in categories:
            # A category variable gives one file per category (LB by LBCAT: chemistry,
            # haematology, ...), the split a reviewer expects from TCG §3.3.2.
            parts = [[value] for value in counts.index.tolist()]
        else:
            parts = [[]]
            records = 0
            for value, count in zip(counts.index.tolist(), counts.tolist()):  # per value
                if parts[-1] and header + _padded((records + count) * reclen) > limit:
                    parts.append([])
                    records = 0
                parts[-1].append(value)
                records += count
        if len(parts) < 2:
            tried.append(f"{var} (all records fit one part)")
            continue
        return var, parts
    raise DataError(
        f"{ds.name} ({size} bytes) cannot be split into files of at most {limit} bytes by "
        f"{', '.join(tried) or 'any variable'}", file=ds.rel,
        hint="give a split variable with finer groups (FDA TCG §3.3.2: split by a logical "
             "variable such as LBCAT)")


def split_dataset(ds: BuildDataset, folder: Path, limit: int, created, *,
                  by: str | None = None, lengths: dict[str, int] | None = None) -> dict:
    """Write ``ds`` as split transport files ``folder/<name><i>.xpt`` (FDA TCG §3.3.2).

    Args:
        ds: the dataset to split.
        folder: the ``split`` folder beside the full file.
        limit: largest allowed file, in bytes.
        created: XPT header timestamp (the data cut).
        by: split variable (default: see :func:`plan_split`).
        lengths: character variable -> length of every part; default: the full file's
            (``ds.path``) storage widths. A part never shrinks to its own longest value:
            parts and full file give a variable one length (FDA TCG §4.1.5.2).

    Returns:
        ``{"dataset", "split_by", "records", "bytes", "parts": [{"file", "dataset",
        "records", "values"}]}`` (part files relative to ``folder``'s parent).

    Steps: 1. :func:`plan_split`; 2. each part keeps the records whose split value is in
    it, in the dataset's record order; 3. written with the dataset's metadata renamed
    ``<NAME><i>`` (the dataset in a transport file is named as the file, TCG §4.1.1) and
    the full file's lengths; 4. check every part is within the limit and the parts'
    records add up to the total.
    """
    from cdisc.xpt import write_xpt

    var, parts = plan_split(ds, limit, by=by)
    lengths = lengths if lengths is not None else char_widths(ds)
    folder.mkdir(parents=True, exist_ok=True)
    codes = ds.data[var].astype(str)
    out_parts = []
    for i, values in enumerate(parts, start=1):
        name = f"{ds.name}{i}"
        if len(name) > 8:
            raise DataError(f"split file name {name.lower()}.xpt has more than 8 characters "
                            "(XPT v5 dataset names)", file=ds.rel)
        part = ds.data[codes.isin(values).to_numpy()].reset_index(drop=True)
        path = folder / f"{name.lower()}.xpt"
        write_xpt(path, part, ds.meta.model_copy(update={"name": name}), created, lengths=lengths)
        if path.stat().st_size > limit:
            raise ConformanceError(f"split part {path.name} is {path.stat().st_size} bytes, "
                                   f"over the limit {limit}", file=ds.rel)
        out_parts.append({"file": f"{folder.name}/{path.name}", "dataset": name,
                          "records": int(len(part)), "values": values})
    total = sum(p["records"] for p in out_parts)
    if total != len(ds.data):
        raise ConformanceError(f"split parts hold {total} records, {ds.name} has {len(ds.data)}",
                               file=ds.rel)
    return {"dataset": ds.name, "split_by": var, "records": int(len(ds.data)),
            "bytes": ds.path.stat().st_size, "parts": out_parts}


# --------------------------------------------------------------------------------------
# Agencies: size limit and split variables (specs/study.yaml submission:)
# --------------------------------------------------------------------------------------
def agency_rules(study, agency: str | None = None, *, split_limit: int | None = None,
                 split_by: dict[str, str] | None = None,
                 study_file: str = "specs/study.yaml") -> dict:
    """The split rules a package follows: ``{"agency", "split_limit", "split_by"}``.

    Args:
        study: the loaded study.yaml (:class:`cdisc.study.Study`).
        agency: the target (``--agency``; any case); None: ``submission.agency`` (FDA).
        split_limit: bytes, overriding the agency's limit (``--split-limit``).
        split_by: dataset -> variable, overriding the agency's ``split_by``.
        study_file: study.yaml as errors name it.

    The limit is, first found: ``split_limit``; ``submission.agencies.<NAME>.split_limit``;
    the built-in one (FDA TCG §3.3.2: 5 GB; :data:`cdisc.study.BUILTIN_SPLIT_LIMITS`).

    Raises:
        SpecError: the agency is not in study.yaml (nor built in), or has no limit.
    """
    from cdisc.study import BUILTIN_SPLIT_LIMITS

    sub = study.submission
    wanted = agency or sub.agency
    name = {n.upper(): n for n in sub.names}.get(wanted.upper())
    if name is None:
        raise SpecError(
            f"agency {wanted!r} is not in submission.agencies (known: {', '.join(sub.names)})",
            file=study_file, key=f"submission.agencies.{wanted}",
            hint=f"add it to study.yaml, e.g. submission: {{agencies: {{{wanted}: {{split_limit: 5 GB}}}}}}")
    rules = sub.agencies.get(name)
    limit = split_limit
    if limit is None and rules is not None:
        limit = rules.split_limit
    if limit is None:
        limit = BUILTIN_SPLIT_LIMITS.get(name)
    if limit is None:
        raise SpecError(f"agency {name} has no split_limit (cdisc has no built-in one for it)",
                        file=study_file, key=f"submission.agencies.{name}.split_limit",
                        hint="give the agency's dataset size limit, e.g. split_limit: 5 GB, or "
                             "pass --split-limit")
    by = dict(rules.split_by) if rules is not None else {}
    by.update({str(k).upper(): str(v).upper() for k, v in (split_by or {}).items()})
    return {"agency": name, "split_limit": int(limit), "split_by": by}


def _check_split_by(datasets: dict[str, BuildDataset], by: dict[str, str], agency: str) -> None:
    """A configured split variable must exist in its dataset (checked for every dataset it
    names, split or not, so a typo shows before a dataset grows over the limit)."""
    problems = [Problem(f"cannot split {name} by {var}: {name} has no variable {var}",
                        file=datasets[name].rel, column=var,
                        hint=f"fix submission.agencies.{agency}.split_by.{name} in specs/study.yaml")
                for name, var in sorted(by.items())
                if name in datasets and var not in datasets[name].data.columns]
    if problems:
        raise DataError(problems)


def _copy_dataset(ds: BuildDataset, dest: Path, lengths: dict[str, int] | None,
                  widths: dict[str, int] | None, created) -> list[str]:
    """Put a dataset's transport file into the package with the study's lengths (FDA TCG
    §4.1.5.2): copied byte for byte when the build wrote it so (``widths``, its own), else
    rewritten with the same values and the study's lengths. Returns the widened variables."""
    from cdisc.xpt import write_xpt

    widened = sorted(v for v, n in (lengths or {}).items() if (widths or {}).get(v) != n)
    if not widened:
        shutil.copyfile(ds.path, dest)
    else:
        write_xpt(dest, ds.data, ds.meta, created, lengths=lengths)
    return widened


def _describe_values(var: str, values: list[str]) -> str:
    """``LBCAT = CHEMISTRY``, or ``USUBJID 01-001 to 01-009 (9 values)`` for a packed part."""
    if len(values) == 1:
        return f"{var} = {values[0]}"
    if len(values) <= 3:
        return f"{var} in ({', '.join(values)})"
    return f"{var} {values[0]} to {values[-1]} ({len(values)} values)"


def _define_parts(ds: BuildDataset, info: dict, full: str) -> list[dict]:
    """The split parts as define.xml describes them (ItemGroupDef description, leaf, comment)."""
    out = []
    n = len(info["parts"])
    for i, part in enumerate(info["parts"], start=1):
        holds = _describe_values(info["split_by"], part["values"])
        out.append({"name": part["dataset"], "href": f"split/{part['file'].rsplit('/', 1)[-1]}",
                    "description": f"{ds.meta.label} ({ds.name} split by {holds})",
                    "comment": (f"Part {i} of {n} of {ds.name}: the {part['records']} records with "
                                f"{holds}. The full dataset is {full}; the parts are submitted "
                                "because it is over the size limit (FDA TCG §3.3.2).")})
    return out


# --------------------------------------------------------------------------------------
# Package
# --------------------------------------------------------------------------------------
def _validation_state(build_dir: Path, allow_errors: bool) -> dict:
    """The build's validation verdict; refuses a build with error findings."""
    path = build_dir / "validation" / "results.json"
    if not path.is_file():
        if not allow_errors:
            raise DataError(
                "the build has no validation results (validation/results.json): a package "
                "needs a validated build", file=str(path),
                hint=f"run `cdisc validate --out {build_dir}`, or pass --allow-errors to "
                     "package an unvalidated build (recorded in the manifest)")
        return {"results": None, "errors": None, "allow_errors": True}
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        by_sev = results["counts"]["by_severity"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"not a validation results file: {exc}", file=str(path)) from exc
    errors = int(by_sev.get("error", 0))
    state = {"results": "validation/results.json", "errors": errors,
             "warnings": int(by_sev.get("warning", 0)), "notices": int(by_sev.get("notice", 0)),
             "waived": int(results["counts"].get("waived", 0)),
             "ready_for_lock": bool(results.get("ready_for_lock")),
             "verdict": results.get("verdict"), "allow_errors": bool(allow_errors and errors)}
    if errors and not allow_errors:
        rules = sorted(r for r, c in results["counts"].get("by_rule", {}).items()
                       if c.get("severity") == "error")
        raise DataError(
            f"the build has {errors} validation error finding(s) ({', '.join(rules)}); "
            "a submission package is not made from it", file=str(path),
            hint=f"fix them (see {build_dir / 'validation' / 'report.html'}) and rebuild, or "
                 "pass --allow-errors to package anyway (recorded in manifest.json)")
    return state


def _check_build_files(build_dir: Path, datasets: dict[str, BuildDataset]) -> None:
    """Every transport file must still be the one the build wrote (its manifest.json)."""
    path = build_dir / "manifest.json"
    if not path.is_file():
        raise InputError("manifest.json not found: is this a `cdisc build` folder?", file=str(path))
    outputs = {o["file"]: o for o in json.loads(path.read_text(encoding="utf-8")).get("outputs", [])}
    problems = []
    for ds in datasets.values():
        out = outputs.get(ds.rel)
        if out is None or out.get("sha256") != _sha256(ds.path):
            problems.append(Problem(
                "the file differs from the one the build wrote (sha256 in manifest.json)",
                file=str(ds.path), hint="rebuild (and revalidate) instead of editing datasets"))
    if problems:
        raise DataError(problems)


def _bookkeeping() -> set[str]:
    """Files of a package folder that are not submission content (never listed, never extra)."""
    from cdisc.outdir import LOCK, MARKER

    return {MANIFEST, MANIFEST_HASH, MARKER, LOCK}


def _file_entries(root: Path) -> list[dict]:
    entries = []
    skip = _bookkeeping()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.relative_to(root).as_posix() not in skip:
            entries.append({"path": p.relative_to(root).as_posix(), "bytes": p.stat().st_size,
                            "sha256": _sha256(p)})
    return sorted(entries, key=lambda e: e["path"])


def package(build_dir: Path, out_dir: Path, specs_dir: Path, *, allow_errors: bool = False,
            split_limit_bytes: int | None = None, agency: str | None = None,
            split_by: dict[str, str] | None = None, protected: dict[str, Path] | None = None,
            echo=None) -> dict:
    """Make the submission package of a build (FDA TCG §7.2 folders) and its manifest.

    Args:
        build_dir: a validated ``cdisc build`` folder.
        out_dir: the package folder (replaced as a whole; an earlier package there stays
            untouched when packaging fails).
        specs_dir: the study specs the build used; ``specs/docs/`` may hold acrf.pdf,
            csdrg.pdf and adrg.pdf, copied into the package when present.
        allow_errors: package even when the validation has error findings (or none was
            run); recorded in the manifest.
        split_limit_bytes: a transport file larger than this is also split (TCG §3.3.2);
            None: the agency's limit (:func:`agency_rules`; FDA: 5 GB).
        agency: the target agency of study.yaml ``submission.agencies`` (default
            ``submission.agency``, FDA): its split limit and split variables.
        split_by: dataset -> split variable, overriding the agency's and
            :func:`split_candidates`.
        protected: folders the package may not be, be inside of or contain (the CLI passes
            the study's specs, raw and build folders); default: the build and specs folders.
        echo: called with each message for the user (a missing aCRF); default: stderr.

    Returns:
        The manifest (also written as ``out/manifest.json``).

    Raises:
        DataError: validation errors without ``allow_errors``; a dataset changed after
            the build; a dataset that cannot be split; a split variable it lacks.
        SpecError: an agency study.yaml does not list, or one without a limit.
        ConformanceError: a generated define.xml or Dataset-JSON file is invalid.

    Steps:
        1. refuse a build whose validation/results.json counts error findings (unless
           ``allow_errors``) and a build whose .xpt files differ from its manifest;
        2. copy the SDTM .xpt into
           ``m5/datasets/<studyid>/tabulations/sdtm``, the ADaM ones into
           ``.../analysis/adam/datasets``, each with the study-wide character lengths
           (:func:`cdisc.define.from_build.study_lengths`, FDA TCG §4.1.5.2; a file the
           build wrote so is copied byte for byte, delivered SDTM always is);
        3. split every transport file over the agency's limit (:func:`agency_rules`) into
           ``split/<name><i>.xpt`` with the same lengths;
        4. the documents: specs/docs/ acrf.pdf, csdrg.pdf, adrg.pdf copied when present,
           otherwise the cSDRG/ADRG generated as PDF (:func:`cdisc.guides.package_documents`;
           a missing aCRF is reported through ``echo``); define.xml per standard from the
           specs and the data with define2-1.xsl beside it, zero XSD errors, linking only
           the documents present (the split noted in the dataset's comment, each part an
           ItemGroupDef with its own def:leaf), Length = the packaged lengths; define.html,
           Dataset-JSON and the validation report into ``supplementary/``;
        5. manifest.json: every file's path, size and SHA-256 (sorted), the splits, the
           validation verdict, the documents define.xml names but the package lacks;
           timestamps are the data cut, never the clock; JSON with sorted keys;
        6. swap the finished folder in for ``out_dir`` (:class:`cdisc.outdir.OutputFolder`:
           only a missing, empty or earlier package folder is replaced).
    """
    from cdisc import __version__
    from cdisc.outdir import OutputFolder
    from cdisc.study import load_study

    build_dir, out_dir, specs_dir = Path(build_dir), Path(out_dir), Path(specs_dir)
    staged = OutputFolder(out_dir, kind="package", protected=protected or {
        "build folder": build_dir, "specs folder": specs_dir})
    study = load_study(specs_dir)
    rules = agency_rules(study, agency, split_limit=split_limit_bytes, split_by=split_by,
                         study_file=str(specs_dir / "study.yaml"))
    limit = rules["split_limit"]
    validation = _validation_state(build_dir, allow_errors)
    datasets = read_build(build_dir)
    _check_build_files(build_dir, datasets)
    _check_split_by(datasets, rules["split_by"], rules["agency"])
    sid = study.studyid.lower()
    rel_dirs = {"SDTM": f"m5/datasets/{sid}/tabulations/sdtm",
                "ADaM": f"m5/datasets/{sid}/analysis/adam/datasets"}

    # delivered SDTM (cdisc build --sdtm): its files, define.xml, cSDRG and aCRF are the
    # CRO's, copied byte for byte; only the ADaM files, define.xml and ADRG are made here
    delivered = json.loads((build_dir / "manifest.json").read_text(encoding="utf-8")).get(
        "sdtm_source") == "delivered"
    made = {n: ds for n, ds in datasets.items() if not (delivered and ds.standard == "SDTM")}
    widths = {name: char_widths(ds) for name, ds in sorted(made.items())}
    lengths = study_lengths(made, widths)
    with staged:
        tmp = staged.path
        dirs = {std: tmp / rel for std, rel in rel_dirs.items()
                if any(d.standard == std for d in datasets.values())}
        splits, notes, parts, listing = [], {}, {}, []
        for name, ds in sorted(datasets.items()):
            folder = dirs[ds.standard]
            folder.mkdir(parents=True, exist_ok=True)
            widened = _copy_dataset(ds, folder / ds.path.name, lengths.get(name), widths.get(name),
                                    study.created)
            packaged = replace(ds, path=folder / ds.path.name)     # split from the packaged file
            entry = {"dataset": name, "standard": ds.standard, "records": int(len(ds.data)),
                     "variables": len(ds.meta.variables),
                     "file": f"{rel_dirs[ds.standard]}/{ds.path.name}"}
            if widened:
                entry["lengths_widened"] = widened
            if packaged.path.stat().st_size > limit:
                info = split_dataset(packaged, folder / "split", limit, study.created,
                                     by=rules["split_by"].get(name), lengths=lengths.get(name))
                parts[name] = _define_parts(ds, info, ds.path.name)
                for part in info["parts"]:
                    part["file"] = f"{rel_dirs[ds.standard]}/{part['file']}"
                info["file"] = entry["file"]
                splits.append(info)
                files = ", ".join(p["file"].rsplit("/", 1)[-1] for p in info["parts"])
                notes[name] = (f"The transport file is over {limit} bytes ({rules['agency']} "
                               f"limit): it is also submitted split by {info['split_by']} as "
                               f"{files} in the split folder (FDA TCG §3.3.2).")
                entry["split"] = [p["file"] for p in info["parts"]]
            listing.append(entry)
        say = echo if echo is not None else _stderr
        made_dirs = {std: d for std, d in dirs.items() if not (delivered and std == "SDTM")}
        documents, present = package_documents(build_dir, specs_dir, made_dirs, rel_dirs, made, say)
        write_defines(build_dir, specs_dir, made_dirs, dataset_notes=notes, datasets=made,
                      html=False, documents=present, lengths=lengths, split_parts=parts)
        if delivered and "SDTM" in dirs:
            documents.extend(_delivered_documents(build_dir, dirs["SDTM"], rel_dirs["SDTM"], say))
        supplementary = _supplementary(build_dir, tmp, made_dirs, datasets, listing, study, lengths)
        manifest = {
            "format": "cdisc submission package", "version": 1,
            "tool": {"name": "cdisc", "version": __version__},
            "studyid": study.studyid, "data_cut": study.data_cut.isoformat(),
            "created": study.created.isoformat(),
            "build": {"manifest_sha256": _sha256(build_dir / "manifest.json")},
            "validation": validation,
            "agency": rules["agency"], "split_limit_bytes": limit,
            "datasets": listing, "splits": splits, "documents": documents,
            "supplementary": supplementary,
            "files": _file_entries(tmp),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                    encoding="utf-8")
        (tmp / MANIFEST_HASH).write_text(f"{_sha256(tmp / MANIFEST)}  {MANIFEST}\n", encoding="utf-8")
        staged.commit()
    return manifest


def _delivered_documents(build_dir: Path, folder: Path, rel: str, echo) -> list[dict]:
    """The delivered SDTM's own define.xml, stylesheet, cSDRG and aCRF (copied into the build
    by ``cdisc build --sdtm``), byte for byte into the SDTM folder; a missing define.xml or
    a dataset that is not XPT v5 is said, not invented."""
    from cdisc.pipeline import DELIVERED_DOCUMENTS

    entries = []
    for name in DELIVERED_DOCUMENTS:
        src = build_dir / "sdtm" / name
        if src.is_file():
            shutil.copyfile(src, folder / name)
            entries.append({"file": f"{rel}/{name}", "title": f"delivered {name}", "included": True,
                            "source": "delivered SDTM"})
    if not any(e["file"].endswith("/define.xml") for e in entries):
        echo("cdisc package: the delivered SDTM has no define.xml: the SDTM folder of the package has none "
             "(ask the data provider for it; cdisc does not write one for data it did not map)")
        entries.append({"file": f"{rel}/define.xml", "title": "SDTM define.xml", "included": False,
                        "source": None})
    other = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in
                   (".parquet", ".sas7bdat", ".json"))
    if other:
        echo(f"cdisc package: {len(other)} delivered SDTM files are not SAS XPORT (e.g. {other[0]}): copied as "
             "delivered; an FDA/PMDA submission needs XPT v5")
    return entries


def _stderr(message: str) -> None:
    import click

    click.echo(message, err=True)


def _supplementary(build_dir: Path, root: Path, dirs: dict[str, Path], datasets: dict,
                   listing: list[dict], study, lengths: dict[str, dict[str, int]]) -> list[dict]:
    """Files a reviewer may use that the TCG does not list for m5/datasets: the
    Dataset-JSON copies, define.html (define.xml rendered) and the validation report, in
    ``supplementary/`` beside m5 (``sdtm/``, ``adam/``, ``validation/``). Returns the
    manifest entries ``{"file", "kind", "standard"}``; ``listing`` entries get their
    ``dataset_json`` path. A Dataset-JSON copy says the lengths define.xml says: copied byte
    for byte when its transport file kept the build's lengths, else written again with the
    study-wide ones (``lengths_widened``; the same values)."""
    from cdisc.define.xsd import render_html

    out: list[dict] = []
    by_name = {e["dataset"]: e for e in listing}
    for std, folder in sorted(dirs.items()):
        sub = root / SUPPLEMENTARY / std.lower()
        sub.mkdir(parents=True, exist_ok=True)
        render_html(folder / "define.xml", sub / "define.html")
        out.append({"file": f"{SUPPLEMENTARY}/{std.lower()}/define.html", "kind": "define.html",
                    "standard": std})
        for name, ds in sorted(datasets.items()):
            js = ds.path.with_suffix(".json")
            if ds.standard == std and js.is_file():
                if by_name[name].get("lengths_widened"):
                    problems = _write_json_copy(ds, sub / js.name, study, lengths.get(name))
                    if problems:
                        raise ConformanceError(problems)
                else:
                    shutil.copyfile(js, sub / js.name)
                rel = f"{SUPPLEMENTARY}/{std.lower()}/{js.name}"
                by_name[name]["dataset_json"] = rel
                out.append({"file": rel, "kind": "Dataset-JSON", "standard": std})
    # study.json: the CT versions, sponsor CT, rule parameters, waivers and data cut the build
    # was validated with, so `cdisc validate PACKAGE` judges it as the build was judged
    for name, kind, sub_dir in (("study.json", "validation context", ""),
                                ("report.html", "validation report", "validation"),
                                ("results.json", "validation results", "validation")):
        src = build_dir / sub_dir / name
        if src.is_file():
            (root / SUPPLEMENTARY / "validation").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, root / SUPPLEMENTARY / "validation" / name)
            out.append({"file": f"{SUPPLEMENTARY}/validation/{name}", "kind": kind, "standard": None})
    return out


def verify_package(out_dir: Path) -> list[Problem]:
    """Re-hash every file of a package against its manifest.json.

    Returns one Problem per file that is missing, changed (size or SHA-256) or not in
    the manifest (an extra file), and one when manifest.json itself changed (its SHA-256
    is kept in manifest.json.sha256 beside it, so an edited record count or data-cut date
    is caught too); empty list: the package is intact.
    """
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    if not path.is_file():
        return [Problem("manifest.json not found: not a cdisc package", file=str(path))]
    sidecar = out_dir / MANIFEST_HASH
    if not sidecar.is_file():
        return [Problem(f"{MANIFEST_HASH} not found: the manifest itself cannot be checked", file=str(sidecar),
                        hint="re-make the package with `cdisc package`")]
    recorded = sidecar.read_text(encoding="utf-8", errors="replace").split()[:1]
    if recorded != [_sha256(path)]:
        return [Problem(f"manifest.json changed after packaging: its SHA-256 is {_sha256(path)[:16]}..., "
                        f"{MANIFEST_HASH} has {(recorded or ['nothing'])[0][:16]}...", file=MANIFEST,
                        hint="re-make the package with `cdisc package`; never edit manifest.json")]
    try:
        listed = {f["path"]: f for f in json.loads(path.read_text(encoding="utf-8"))["files"]}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return [Problem(f"manifest.json is unreadable: {exc}", file=str(path))]
    problems = []
    root = out_dir.resolve()
    for rel, f in sorted(listed.items()):
        p = (out_dir / rel)
        if root not in p.resolve().parents:
            problems.append(Problem("manifest lists a path outside the package", file=rel))
        elif not p.is_file():
            problems.append(Problem("file listed in manifest.json is missing", file=rel))
        elif p.stat().st_size != f.get("bytes") or _sha256(p) != f.get("sha256"):
            problems.append(Problem(
                f"file changed: {p.stat().st_size} bytes, sha256 {_sha256(p)[:16]}..., "
                f"manifest.json has {f.get('bytes')} bytes, {str(f.get('sha256'))[:16]}...",
                file=rel))
    for p in sorted(out_dir.rglob("*")):
        rel = p.relative_to(out_dir).as_posix()
        if p.is_file() and rel not in _bookkeeping() and rel not in listed:
            problems.append(Problem("file is not in manifest.json (extra file)", file=rel))
    return problems
