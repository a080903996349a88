"""Pooling studies: ``cdisc pool OUT BUILD...`` stacks the SDTM and ADaM of several built studies
into one integrated database (ISS/ISE style), validated as a build is.

Why it works this way:

- Inputs are finished ``cdisc build`` folders (manifest.json, metadata.json, study.json,
  sdtm/, adam/), never specs or raw data: a pool is made of what each study submitted, so it
  agrees with the single-study datasets record for record (FDA Study Data TCG §4.1.1.3 /
  ADaMIG 1.3 §1: integrated analysis datasets trace back to the study datasets). A pool spec
  (``pool.yaml``, data only, read with the safe YAML loader) may name the build folders
  (relative to the spec's folder, never outside it) and the harmonisation rules.
- Nothing is lost or merged: every dataset of every study is stacked; pooled records = the sum
  of the studies' records, checked per dataset and written into manifest.json ("counts").
- STUDYID is kept as it is. USUBJID must be unique across the studies of a submission
  (SDTMIG 3.4 §4.1.2.1 / DM USUBJID "unique ... across all studies for all applications or
  submissions involving the product"): a USUBJID in two studies is an error naming both studies
  and the datasets, unless ``shared_subjects`` in pool.yaml says it is the same person (an
  extension study keeps the parent's USUBJID); then it is reported in the manifest, never merged.
  The same STUDYID in two input folders (one study given twice) is an error.
- Variables: the union of the studies' columns; a variable a study lacks is blank/missing
  there and reported ("absent"). Char vs Num for one variable is an error naming the dataset,
  variable and studies (no silent conversion). Different labels: the first study's label is
  kept and the others reported. Character lengths: the longest across the studies (TCG §4.1.5.4:
  the length actually needed). Keys: the dataset's keys with STUDYID first (TCG: integrated data
  sorted by study); ties keep study order, so re-runs are byte-identical.
- CT: one CT for the pool (the newest CT version of the studies, or ``ct`` in pool.yaml) so
  ``Mild`` and ``MILD`` pool as ``MILD`` (cdisc.ct: submission value, decode, CDISC and sponsor
  synonyms); units use the UNIT codelist. A value no spelling of the codelist matches is kept
  and reported (study, file, dataset, variable, value, count), never dropped or guessed.
  Explicit ``recodes`` of pool.yaml (PARAMCD differences, dictionary versions of AEDECOD) are
  applied first and recorded with their counts.
- Validation: the pooled folder is a build folder (manifest, metadata, study.json with the
  pool's CT and, under ``studies``, each study's own data cut, rule parameters, waivers and
  metadata) and ``validate_folder`` validates each study's records on their own with that
  study's context, against the pool's CT (validation/pooled.py: rules written for one study
  join by USUBJID, VISITNUM, TV, TA, TS without STUDYID; on the stacked files VGO + the CDISC
  pilot gave 126k false errors, study by study they give the studies' own findings). Errors
  send the pool to OUT.failed as a build does (cdisc.outdir: nothing the command did not write
  is replaced).

A waiver of one record (a record number in the study's file) follows that record to its pooled
row (``PoolResult.rows``; cdisc/pool_run.pool_context).

Left out on purpose: split datasets (LBCH/LBHE of one study, LB of another) pool by their file
names, not into one domain (validation still checks them as one domain per study).

The module is ``cdisc.pooling``, not ``cdisc.pool``: a submodule of that name would replace the
API function ``cdisc.pool`` on the package once imported.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from .errors import DataError, InputError, Problem, SpecError
from .metadata import DatasetMeta, VariableMeta

__all__ = ["PoolSpec", "StudyBuild", "load_pool_spec", "load_study_build", "pool_studies"]


class Recode(BaseModel):
    """One explicit value change: ``{dataset?, variable, study?, from, to, reason?}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    variable: str
    from_: str = Field(alias="from")
    to: str
    dataset: str | None = None
    study: str | None = None
    reason: str | None = None


class PoolSpec(BaseModel):
    """pool.yaml: which builds to pool and how to harmonise them."""

    model_config = ConfigDict(extra="forbid")

    poolid: str | None = None                   # the pool's name in the manifest (default: the STUDYIDs)
    studies: list[str] = Field(default_factory=list)   # build folders, relative to pool.yaml's folder
    ct: dict[str, str] | None = None            # {sdtm: 2025-03-28, adam: 2026-03-27}
    recodes: list[Recode] = Field(default_factory=list)
    shared_subjects: list[str] | bool = False   # USUBJIDs known to be one person in two studies
    labels: dict[str, str] = Field(default_factory=dict)   # "DATASET.VARIABLE": label for the pool
    # characters replaced in every text value (XPT v5 is ASCII, FDA TCG §4.1): {"\u2019": "'"}
    characters: dict[str, str] = Field(default_factory=dict)


def load_pool_spec(path: Path) -> tuple[PoolSpec, list[Path]]:
    """The spec and its study folders, each resolved inside the spec's folder (cdisc.specio.inside)."""
    from .specio import inside, load_yaml, validate_model

    path = Path(path)
    shown = path.name
    spec = validate_model(PoolSpec, load_yaml(path, display=shown) or {}, file=shown)
    folders = [inside(path.parent, s, file=shown, key=f"studies[{i}]") for i, s in enumerate(spec.studies)]
    return spec, folders


@dataclass
class StudyBuild:
    """One built study: where, its STUDYID, manifest, metadata and study context."""

    folder: Path
    shown: str                              # the folder as the user named it (messages, manifest)
    studyid: str
    manifest: dict
    metas: dict[str, DatasetMeta]
    context: dict
    files: dict[str, Path]                  # dataset -> file
    standards: dict[str, str]               # dataset -> SDTM / ADaM
    manifest_sha256: str = ""


def _json(path: Path, shown: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path.name}: {exc}", file=shown) from None
    if not isinstance(data, dict):
        raise InputError(f"{path.name} is not a JSON object", file=shown)
    return data


def load_study_build(folder: Path, shown: str | None = None) -> StudyBuild:
    """A ``cdisc build`` folder, checked: manifest.json of cdisc with outputs, each file inside it."""
    from .specio import inside

    folder = Path(folder)
    shown = shown or str(folder)
    if not folder.is_dir():
        raise InputError(f"{shown} is not a folder", hint="give the output folder of `cdisc build`")
    if not (folder / "manifest.json").is_file():
        raise InputError(f"{shown} has no manifest.json: not a cdisc build folder", file=shown,
                         hint="give the output folder of `cdisc build` (or run it first)")
    manifest = _json(folder / "manifest.json", f"{shown}/manifest.json")
    if manifest.get("tool") != "cdisc" or not isinstance(manifest.get("outputs"), list) or not manifest.get("studyid"):
        raise InputError("not the manifest of a cdisc build (tool, studyid, outputs)", file=f"{shown}/manifest.json")
    metas = {}
    if (folder / "metadata.json").is_file():
        try:
            metas = {n: DatasetMeta.model_validate(m)
                     for n, m in _json(folder / "metadata.json", f"{shown}/metadata.json").items()}
        except ValueError as exc:
            raise InputError(f"invalid dataset metadata: {exc}".splitlines()[0], file=f"{shown}/metadata.json") from None
    context = _json(folder / "study.json", f"{shown}/study.json") if (folder / "study.json").is_file() else {}
    files, standards = {}, {}
    for i, o in enumerate(manifest["outputs"]):
        where = f"{shown}/manifest.json"
        try:
            name = str(o["dataset"]).upper()
            files[name] = inside(folder, str(o["file"]), file=where, key=f"outputs[{i}].file")
        except (KeyError, TypeError):
            raise InputError("an output without dataset or file", file=where, key=f"outputs[{i}]") from None
        except SpecError as exc:
            raise InputError(exc.problems) from None
        if not files[name].is_file():
            raise InputError(f"{o['file']} is listed in manifest.json but missing", file=shown)
        standards[name] = "ADaM" if str(o.get("standard", "")).upper() == "ADAM" else "SDTM"
    sha = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    return StudyBuild(folder, shown, str(manifest["studyid"]), manifest, metas, context, files, standards, sha)


def read_dataset(study: StudyBuild, name: str) -> tuple[pd.DataFrame, DatasetMeta]:
    """The frame of one dataset of a study as the file holds it, with its metadata (from
    metadata.json, else from the file's own labels and types: a delivered dataset)."""
    from .delivered import read_delivered

    path = study.files[name]
    got = read_delivered(path)          # a damaged file: InputError naming it
    if got is None:
        raise InputError(f"{path.name} is not a dataset", file=f"{study.shown}/{path.relative_to(study.folder)}")
    df = got.frame
    meta = study.metas.get(name)
    declared = {v.name: v for v in meta.variables} if meta is not None else {}
    variables = []
    for col in df.columns:
        kind = "Num" if pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_datetime64_any_dtype(df[col]) \
            else "Char"
        v = declared.get(col)
        if v is None:
            v = VariableMeta(name=col, label=got.labels.get(col) or col, type=kind, format=got.formats.get(col))
        variables.append(v.model_copy(update={"type": kind}))   # what the file holds decides
    dmeta = (meta.model_copy(update={"variables": variables}) if meta is not None else
             DatasetMeta(name=name, label=got.label or name, variables=variables, standard=study.standards[name]))
    return df, dmeta


@dataclass
class PoolResult:
    """The pooled datasets, their metadata and what pooling did (the manifest's report)."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    metas: dict[str, DatasetMeta] = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    # dataset -> study -> the pooled row (0-based) of each of the study's records, in its file's order
    rows: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def pool_studies(studies: list[StudyBuild], spec: PoolSpec, ct) -> PoolResult:
    """Stack every dataset of ``studies`` (see the module docstring); raises DataError with every
    type conflict and USUBJID collision at once."""
    from .pool_merge import check_subjects, harmonise, merge_metadata, sort_keys, stack

    seen: dict[str, str] = {}
    for s in studies:
        if s.studyid in seen:
            raise InputError(f"STUDYID {s.studyid} is in two of the folders to pool: {seen[s.studyid]} and {s.shown}",
                             hint="give each study's build once")
        seen[s.studyid] = s.shown
    names = sorted({n for s in studies for n in s.files}, key=lambda n: (_standard(studies, n) != "SDTM", n))
    problems: list[Problem] = []
    result = PoolResult(report={"counts": {}, "absent": {}, "labels": {}, "codelists": {}, "ct_harmonised": [],
                                "ct_unknown": [], "recodes": [], "characters": [], "lengths": {}})
    parts: dict[str, list] = {}
    for name in names:
        got = [(s, *read_dataset(s, name)) for s in studies if name in s.files]
        meta = merge_metadata(name, [(s.studyid, m) for s, _, m in got], spec, result.report, problems)
        if meta is not None:
            parts[name] = [(s, df) for s, df, _ in got]
            result.metas[name] = meta
    if problems:
        raise DataError(problems)
    for name, items in parts.items():
        meta = result.metas[name]
        frames = [harmonise(s, name, df, meta, spec, ct, result.report) for s, df in items]
        pooled = stack(frames, meta)
        counts = {s.studyid: int(len(df)) for s, df in items}
        if len(pooled) != sum(counts.values()):        # never: stacking keeps every record
            raise DataError(f"{name}: {len(pooled)} pooled records, the studies have {sum(counts.values())}")
        keys = sort_keys(meta, pooled)
        pooled = pooled.reset_index(drop=True)
        where = np.arange(len(pooled))                  # stacked record -> pooled row
        if keys:
            pooled = pooled.sort_values(keys, kind="mergesort")
            where[pooled.index.to_numpy()] = np.arange(len(pooled))
            pooled = pooled.reset_index(drop=True)
        starts = np.cumsum([0] + [len(df) for _, df in items])
        result.rows[name] = {s.studyid: where[a:b] for (s, _), a, b in zip(items, starts[:-1], starts[1:])}
        if meta.keys and "STUDYID" in pooled.columns:      # the declared keys, STUDYID first
            declared = ["STUDYID"] + [k for k in meta.keys if k != "STUDYID"]
            result.metas[name] = meta.model_copy(update={"keys": declared})
        result.frames[name] = pooled
        result.report["counts"][name] = {"studies": counts, "pooled": int(len(pooled)), "sort": keys}
    result.report["subjects"] = check_subjects(studies, result.frames, spec)
    return result


def _standard(studies: list[StudyBuild], name: str) -> str:
    return next(s.standards[name] for s in studies if name in s.standards)
