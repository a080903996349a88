"""define.xml 2.1 for a build folder: the DefineModel of its SDTM and of its ADaM datasets.

Everything comes from what the build wrote and from the study specs, never from a
hand-kept metadata spreadsheet:

* ``BUILD/metadata.json`` (one ``DatasetMeta`` per dataset: class, structure, keys, each
  variable's label, type, origin, source, codelist, method and comment text, all taken
  from ``specs/sdtm/*.yaml`` and ``specs/adam/*.yaml`` by the build);
* the transport files themselves (``BUILD/sdtm/*.xpt``, ``BUILD/adam/*.xpt``), read back,
  for every number the data decides: data type, length = the real maximum, significant
  digits, the terms actually used, the value-level subsets;
* ``specs/study.yaml`` (study name, title, data cut -> CreationDateTime), ``specs/ct/``
  (codelists with their NCI C-codes, decodes, extensible flag and sponsor terms; the CT
  package versions), ``specs/sdtm/*.yaml`` (the mapping rule of a Derived variable that
  has no ``method:`` text, and the supplemental qualifiers' QORIG/codelists).

Choices (Define-XML 2.1.0 section numbers in brackets):

* Standards [§5.3.2]: SDTMIG 3.4 or ADaMIG 1.3 plus each CDISC/NCI CT package that a
  codelist of that define comes from (``specs/ct/*.yaml`` ``package:``).
* Codelists [§5.3.9]: only codelists that a variable or a value-level item references.
  Non-extensible CDISC codelists and sponsor codelists list every term (the full allowed
  set); extensible CDISC codelists (UNIT, LBTESTCD, EPOCH, ...) list only the terms used
  in the data, in CT order, so a 1,000-term UNIT list does not swamp the define; a used
  value that is not in CT (a sponsor extension) is listed with ``def:ExtendedValue="Yes"``
  and no C-code. An extensible codelist whose variables are all blank lists every term.
* Origins [§5.3.6.3]: from the spec's origin word; Collected CRF values carry a
  ``def:DocumentRef`` to the annotated CRF (acrf.pdf; no page numbers: the toolkit has no
  aCRF page map). A Derived variable without ``method:`` text gets a MethodDef generated
  from its mapping rule (``sequence``, ``study_day``, ``epoch``, ...), so no Derived item
  lacks a method.
* Value-level metadata [§5.3.7-5.3.8]: LBORRES/LBSTRESN per LBTESTCD, RSORRES per
  RSTESTCD, PCSTRESN per PCTESTCD, ISORRES per ISTESTCD, AVAL per PARAMCD (any ADaM
  dataset with PARAMCD) and QVAL per QNAM (SUPP-- datasets), one entry per code present in
  the data with a non-missing result.
* ADaM parameters (:mod:`cdisc.define.adam_params`): AVAL and AVALC per PARAMCD, each
  with the MethodDef of the spec's ``parameters:`` entry (one per PARAMCD) and, for AVALC,
  a codelist of its values; codelists for PARAMCD (decoded by PARAM), PARAM, ADRS AVALC,
  EVNTDESC, CNSDTDSC, AVISIT.
* Dictionaries (:mod:`cdisc.define.dictionaries`): MedDRA/WHODrug-coded variables point to
  an ExternalCodeList with the version from study.yaml ``dictionaries``; in SDTM their
  origin is Assigned.
* Documents [§5.3.13]: SDTM: acrf.pdf (def:AnnotatedCRF) and csdrg.pdf
  (def:SupplementalDoc); ADaM: adrg.pdf (def:SupplementalDoc). The PDFs themselves are
  the sponsor's; the package copies them when ``specs/docs/`` holds them.
* SDTM variable roles (ItemRef/@Role) follow the SDTM v2.0 role of the variable's name
  pattern (Identifier, Topic, Timing, Grouping/Synonym/Result/Variable/Record Qualifier).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cdisc.define.model import (
    CodeList, Comment, DatasetDefinition, DefineModel, Document, DocumentRef, Method,
    SplitPart, Standard, Study, ValueLevel, describe_dataset, describe_value_levels,
    origin_from_meta,
)
from cdisc.define.adam_params import parameter_metadata
from cdisc.define.codelists import _ct_packages, build_codelists  # noqa: F401
from cdisc.define.dictionaries import apply_dictionaries
from cdisc.define.value_levels import (  # noqa: F401
    ACRF, VLM_TARGETS, _qorig_origin, _supp_qualifiers, _with_standard_core, value_levels_for,
)
from cdisc.define.roles_methods import (  # noqa: F401
    _SE_METHODS, _is_derived, _rule_method, _with_methods, sdtm_role,
)
from cdisc.errors import ConformanceError, InputError, Problem
from cdisc.metadata import DatasetMeta

STANDARDS = ("SDTM", "ADaM")
IG = {
    "SDTM": Standard(oid="STD.SDTMIG.3-4", name="SDTMIG", type="IG", version="3.4"),
    "ADaM": Standard(oid="STD.ADAMIG.1-3", name="ADaMIG", type="IG", version="1.3"),
}
PURPOSE = {"SDTM": "Tabulation", "ADaM": "Analysis"}
DOCUMENTS = {
    "SDTM": [ACRF, Document(id="LF.csdrg", href="csdrg.pdf",
                            title="Clinical Study Data Reviewer's Guide")],
    "ADaM": [Document(id="LF.adrg", href="adrg.pdf", title="Analysis Data Reviewer's Guide")],
}
_CLASS_ORDER = ["TRIAL DESIGN", "SPECIAL PURPOSE", "INTERVENTIONS", "EVENTS", "FINDINGS",
                "FINDINGS ABOUT", "RELATIONSHIP", "STUDY REFERENCE"]


# --------------------------------------------------------------------------------------
# Reading a build folder
# --------------------------------------------------------------------------------------
@dataclass
class BuildDataset:
    """One dataset of a build: its metadata, transport file and values as read back."""

    name: str
    standard: str                  # SDTM / ADaM
    meta: DatasetMeta
    path: Path                     # the .xpt file
    rel: str                       # its path inside the build, e.g. sdtm/ae.xpt
    data: pd.DataFrame             # pyreadstat read-back, dates as SAS numbers


def read_xpt_values(path: Path) -> pd.DataFrame:
    """An XPT file's values exactly as stored: Char as ``str`` ("" for blank), Num as
    float64 with NaN for missing and SAS day/second counts for dates (no conversion)."""
    import pyreadstat

    try:
        df, _ = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
    except Exception as exc:  # pyreadstat raises its own types for unreadable files
        raise InputError(f"cannot read transport file: {exc}", file=str(path)) from exc
    return df


def read_build(build_dir: Path) -> dict[str, BuildDataset]:
    """Every dataset of a build folder (metadata.json + the .xpt files), by name.

    Steps: 1. load ``metadata.json`` (:func:`cdisc.pipeline.load_build_metadata`);
    2. find each dataset's file from ``manifest.json`` outputs (``sdtm/ae.xpt``), or
    ``<sdtm|adam>/<name>.xpt`` without a manifest; 3. read it back with pyreadstat and
    check that its variables are the metadata's, in order.
    """
    from cdisc.pipeline import load_build_metadata

    build_dir = Path(build_dir)
    metas = load_build_metadata(build_dir)
    files: dict[str, str] = {}
    manifest = build_dir / "manifest.json"
    if manifest.is_file():
        for out in json.loads(manifest.read_text(encoding="utf-8")).get("outputs", []):
            files[out["dataset"]] = out["file"]
    out: dict[str, BuildDataset] = {}
    problems: list[Problem] = []
    for name, meta in sorted(metas.items()):
        rel = files.get(name) or f"{'adam' if meta.standard == 'ADaM' else 'sdtm'}/{name.lower()}.xpt"
        path = build_dir / rel
        if not path.is_file():
            problems.append(Problem(f"dataset {name} is in metadata.json but its file is missing",
                                    file=str(path), hint="rebuild the folder with `cdisc build`"))
            continue
        if path.suffix.lower() == ".xpt":
            df = read_xpt_values(path)
        else:                                      # delivered SDTM in another format (cdisc build --sdtm)
            from cdisc.delivered import read_delivered

            df = read_delivered(path).frame
        if list(df.columns) != meta.names:
            problems.append(Problem(
                f"{name}: the file's variables {list(df.columns)} differ from metadata.json "
                f"{meta.names}", file=str(path), hint="rebuild the folder with `cdisc build`"))
            continue
        out[name] = BuildDataset(name, meta.standard, meta, path, rel, df)
    if problems:
        raise InputError(problems)
    return out


# --------------------------------------------------------------------------------------
# Character lengths: one per variable for the whole study
# --------------------------------------------------------------------------------------
def char_widths(ds: BuildDataset) -> dict[str, int]:
    """The storage width of each character variable in the dataset's transport file (what
    :func:`cdisc.xpt.write_xpt` made it: the longest value, at least 1)."""
    import pyreadstat

    _, info = pyreadstat.read_xport(str(ds.path), metadataonly=True)
    widths = info.variable_storage_width
    return {v.name: int(widths[v.name]) for v in ds.meta.variables if v.type == "Char"}


def study_lengths(datasets: dict[str, BuildDataset], widths: dict[str, dict[str, int]] | None = None
                  ) -> dict[str, dict[str, int]]:
    """dataset -> character variable -> the length it has in a submission package.

    The rule, once for every file of the package (full datasets, their split parts) and
    for define.xml's ItemDef/@Length: FDA TCG §4.1.5.2 (variable lengths) asks for the
    longest value actually present, and for one variable (USUBJID, VISIT, ...) the longest
    across all datasets of the study, except SUPP-- datasets, which keep their own
    longest (QVAL of SUPPAE is not widened by SUPPLB). A split part has the lengths of its
    dataset, never its own shorter ones, so the parts and the full file agree.

    Steps: 1. each dataset's widths from its transport file (:func:`char_widths`: the
    build wrote each as the dataset's longest value; ``widths`` if already read); 2. per
    variable name the largest over the non-SUPP datasets; 3. SUPP-- datasets keep theirs.
    """
    widths = widths or {name: char_widths(ds) for name, ds in sorted(datasets.items())}
    longest: dict[str, int] = {}
    for name, w in widths.items():
        if not name.startswith("SUPP"):
            for var, n in w.items():
                longest[var] = max(longest.get(var, 1), n)
    return {name: (w if name.startswith("SUPP") else {var: longest[var] for var in w})
            for name, w in widths.items()}


# --------------------------------------------------------------------------------------
# OIDs shared with Dataset-JSON
# --------------------------------------------------------------------------------------
def study_oid(studyid: str) -> str:
    """``Study/@OID`` = Dataset-JSON ``studyOID``."""
    return f"ST.{studyid}"


def metadata_version_oid(studyid: str, standard: str) -> str:
    """``MetaDataVersion/@OID`` = Dataset-JSON ``metaDataVersionOID`` (one per define)."""
    ig = IG[standard]
    return f"MDV.{studyid}.{ig.name}.{ig.version.replace('.', '-')}"


# --------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------
def _dataset_order(ds: BuildDataset) -> tuple:
    if ds.standard == "ADaM":
        return (0 if ds.name == "ADSL" else 1, ds.name)
    cls = (ds.meta.class_ or "").upper()
    rank = _CLASS_ORDER.index(cls) if cls in _CLASS_ORDER else len(_CLASS_ORDER)
    return (rank, ds.name)


def build_define_models(build_dir: Path, specs_dir: Path, *,
                        dataset_notes: dict[str, str] | None = None,
                        datasets: dict[str, BuildDataset] | None = None,
                        documents: set[str] | None = None,
                        lengths: dict[str, dict[str, int]] | None = None,
                        split_parts: dict[str, list[dict]] | None = None,
                        ) -> dict[str, DefineModel]:
    """The Define-XML 2.1 model of a build's SDTM datasets and of its ADaM datasets.

    Args:
        build_dir: a folder written by ``cdisc build`` (metadata.json, sdtm/, adam/).
        specs_dir: the study specs the build used (study.yaml, ct/, sdtm/).
        dataset_notes: dataset name -> extra text for its def:CommentDef (e.g. how the
            package split it, FDA TCG §3.3.2).
        datasets: the build already read by :func:`read_build` (saves reading twice).
        documents: the document files (acrf.pdf, csdrg.pdf, adrg.pdf) that will sit beside
            define.xml, the only ones it links (no dead def:leaf); default: those in
            ``specs/docs/``. Without acrf.pdf no origin cites the aCRF.
        lengths: dataset -> character variable -> ItemDef Length, the lengths the package
            wrote (:func:`study_lengths`); default: each dataset's longest value.
        split_parts: dataset -> the files it was split into for size (FDA TCG §3.3.2),
            ``[{"name": "LB1", "href": "split/lb1.xpt", "description", "comment"}]``:
            each an ItemGroupDef with its own def:leaf and CommentDef after the dataset's.

    Returns:
        ``{"SDTM": model, "ADaM": model}``, a key only for a standard the build has.

    Steps:
        1. read metadata.json and every .xpt back (values exactly as transported);
        2. per dataset (SDTM in class order, ADSL first in ADaM): give each Derived
           variable without method text a method from its spec rule; origins from the
           spec (Collected CRF values with a DocumentRef to acrf.pdf); SDTM roles;
           :func:`describe_dataset` for data type, length (real maximum), significant
           digits, key sequence, MethodDefs and CommentDefs (Define-XML 2.1 §5.3.4-5.3.6);
        3. value-level metadata (VLM_TARGETS) filled from the data subsets
           (:func:`describe_value_levels`);
        4. codelists referenced by items or value-level items (:func:`build_codelists`);
        5. Standards: the IG and the CT packages the codelists come from; documents
           (acrf/csdrg or adrg); Study with CreationDateTime = the data cut.
    """
    from cdisc.pipeline import load_domain_specs
    from cdisc.ct import load_terminology
    from cdisc.study import load_study

    specs_dir = Path(specs_dir)
    if documents is None:     # default: the documents the study keeps in specs/docs/
        documents = {d.href for ds in DOCUMENTS.values() for d in ds
                     if (specs_dir / "docs" / d.href).is_file()}
    acrf_present = ACRF.href in documents
    study = load_study(specs_dir)
    ct = load_terminology(specs_dir)
    ct_standards, owner = _ct_packages(ct)
    # a study built from delivered SDTM (cdisc build --sdtm) has no SDTM specs
    sdtm_specs = load_domain_specs(specs_dir) if (specs_dir / "sdtm").is_dir() else {}
    adam_specs = _adam_specs(specs_dir)
    supp_specs = _supp_qualifiers(sdtm_specs)
    datasets = datasets if datasets is not None else read_build(build_dir)
    notes = dataset_notes or {}

    models: dict[str, DefineModel] = {}
    for standard in STANDARDS:
        group = sorted((d for d in datasets.values() if d.standard == standard), key=_dataset_order)
        if not group:
            continue
        defs: list[DatasetDefinition] = []
        methods: list[Method] = []
        comments: list[Comment] = []
        value_levels: list[ValueLevel] = []
        uses: dict[str, list[tuple[pd.Series, str]]] = {}
        extra_codelists: list[CodeList] = []
        frames, metas = {}, {}
        for ds in group:
            spec = sdtm_specs.get(ds.name)
            spec_vars = {v.name: v for v in spec[0].variables} if spec and standard == "SDTM" else {}
            meta = _with_methods(ds.meta, spec_vars)
            if ds.name in notes:
                text = notes[ds.name] if not meta.comment else f"{meta.comment} {notes[ds.name]}"
                meta = meta.model_copy(update={"comment": text})
            meta = _with_standard_core(meta, ds.data)
            origins = {}
            for v in meta.variables:
                origin = origin_from_meta(v, dataset=ds.name)
                if origin is not None and origin.type == "Collected" and origin.source == "Investigator" \
                        and standard == "SDTM" and acrf_present:
                    origins[v.name] = origin.model_copy(update={
                        "documents": [DocumentRef(leaf_id=ACRF.id)]})
            roles = {v.name: sdtm_role(meta, v.name) for v in meta.variables} if standard == "SDTM" else None
            dataset, m, c = describe_dataset(
                meta, ds.data, href=f"{ds.name.lower()}.xpt", purpose=PURPOSE[standard],
                standard_oid=IG[standard].oid, origins=origins, roles=roles,
                is_reference_data=(meta.class_ or "").upper() == "TRIAL DESIGN")
            for method in m:
                if "imput" in method.description.lower():
                    method.type = "Imputation"
            given = (lengths or {}).get(ds.name, {})
            for item in dataset.items:       # the length in the transport file, not a guess
                if item.name in given:
                    item.length = given[item.name]
            for part in (split_parts or {}).get(ds.name, []):
                oid = f"COM.{part['name']}" if part.get("comment") else None
                if oid:
                    c.append(Comment(oid=oid, description=part["comment"]))
                dataset.split_parts.append(SplitPart(
                    name=part["name"], href=part["href"], description=part["description"],
                    comment_oid=oid))
            defs.append(dataset)
            methods += m
            comments += c
            items = {i.name: i for i in dataset.items}
            vls = value_levels_for(ds, items, supp_specs.get(ds.name, {}), methods, comments, acrf_present)
            if standard == "ADaM":
                spec = adam_specs.get(ds.name)
                vls, cls, m, c = parameter_metadata(ds.name, ds.data, dataset, list(
                    spec.parameters) if spec is not None else [], vls)
                extra_codelists += cls
                methods += m
                comments += c
            value_levels += vls
            frames[ds.name], metas[ds.name] = ds.data, meta
            for v in meta.variables:
                if v.codelist:
                    uses.setdefault(v.codelist, []).append((ds.data[v.name], v.type))
        value_levels = describe_value_levels(value_levels, frames, metas)
        own = {cl.oid for cl in extra_codelists}
        for vl in value_levels:
            if vl.codelist_oid and vl.codelist_oid not in own:
                name = vl.codelist_oid[3:]
                df = frames[vl.dataset]
                mask = np.ones(len(df), dtype=bool)
                for cond in vl.where:
                    mask &= df[cond.variable].astype(str).isin(cond.values).to_numpy()
                uses.setdefault(name, []).append((df.loc[mask, vl.variable], "Char"))
        codelists = build_codelists(uses, ct, owner, where=f"{standard} define.xml")
        codelists += extra_codelists + apply_dictionaries(defs, study.dictionaries, standard=standard,
                                                          study_file=str(specs_dir / "study.yaml"))
        ct_used = sorted({cl.standard_oid for cl in codelists if cl.standard_oid})
        standards = [IG[standard]] + [s for s in ct_standards.values() if s.oid in ct_used]
        # only the documents the package holds: a def:leaf to a missing file is a dead link
        docs = [d for d in DOCUMENTS[standard] if d.href in documents]
        st = Study(
            oid=study_oid(study.studyid), name=study.studyid, description=study.title.strip(),
            protocol_name=study.protocol or study.studyid,
            metadata_version_oid=metadata_version_oid(study.studyid, standard),
            metadata_version_name=f"{study.studyid} {standard} define.xml",
            metadata_version_description=(f"{IG[standard].name} {IG[standard].version} "
                                          f"{PURPOSE[standard].lower()} datasets, data cut "
                                          f"{study.data_cut.isoformat()}"),
            file_oid=f"DEF.{study.studyid}.{standard}", created=study.created,
            originator=study.sponsor, source_system="cdisc",
            source_system_version=_tool_version())
        models[standard] = DefineModel(
            study=st, standards=standards, datasets=defs, value_levels=value_levels,
            codelists=codelists, methods=methods, comments=comments, documents=docs,
            annotated_crf=[DocumentRef(leaf_id=ACRF.id)] if standard == "SDTM" and acrf_present else [],
            supplemental_docs=[DocumentRef(leaf_id=d.id) for d in docs if d.id != ACRF.id])
    return models


def _adam_specs(specs_dir: Path) -> dict:
    """ADaM specs by dataset name (their ``parameters:``); none when the study has none."""
    from cdisc.adam.runner import load_adam_specs

    if not (Path(specs_dir) / "adam").is_dir():
        return {}
    return {name: spec for name, (spec, _) in load_adam_specs(Path(specs_dir)).items()}


def _tool_version() -> str:
    from cdisc import __version__

    return __version__


def write_defines(build_dir: Path, specs_dir: Path, out_dirs: dict[str, Path] | None = None, *,
                  dataset_notes: dict[str, str] | None = None, html: bool = True,
                  datasets: dict[str, BuildDataset] | None = None,
                  documents: set[str] | None = None,
                  lengths: dict[str, dict[str, int]] | None = None,
                  split_parts: dict[str, list[dict]] | None = None) -> dict[str, Path]:
    """Write define.xml (+ define2-1.xsl, + define.html) for SDTM and for ADaM.

    Args:
        build_dir: the build folder.
        specs_dir: the study specs.
        out_dirs: standard -> folder for its define.xml; default ``BUILD/sdtm`` and
            ``BUILD/adam`` (next to the .xpt files the define's leaves point to). A
            standard the build has but ``out_dirs`` lacks is not written.
        dataset_notes, datasets, documents, lengths, split_parts: see
            :func:`build_define_models`.
        html: also render ``define.html`` with the stylesheet.

    Returns:
        standard -> the define.xml written.

    Raises:
        ConformanceError: a written define.xml is not valid against the Define-XML 2.1
            XSD or has a dangling OID reference (a bug: the model should prevent it).

    Steps: 1. :func:`build_define_models`; 2. :func:`write_define` each model; 3. copy
    define2-1.xsl beside it (FDA TCG §4.1.4.5); 4. validate with the shipped XSD (offline)
    and the reference checks; 5. render define.html.
    """
    from cdisc.define.writer import write_define
    from cdisc.define.xsd import copy_stylesheet, render_html, validate_define

    build_dir = Path(build_dir)
    out_dirs = out_dirs or {"SDTM": build_dir / "sdtm", "ADaM": build_dir / "adam"}
    models = build_define_models(build_dir, specs_dir, dataset_notes=dataset_notes,
                                 datasets=datasets, documents=documents, lengths=lengths,
                                 split_parts=split_parts)
    written: dict[str, Path] = {}
    for standard, model in models.items():
        if standard not in out_dirs:
            continue
        folder = Path(out_dirs[standard])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "define.xml"
        write_define(path, model)
        copy_stylesheet(folder)
        problems = validate_define(path)
        if problems:
            raise ConformanceError(problems)
        if html:
            render_html(path, folder / "define.html")
        written[standard] = path
    return written
