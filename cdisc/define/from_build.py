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
* Documents [§5.3.13]: SDTM: acrf.pdf (def:AnnotatedCRF) and csdrg.pdf
  (def:SupplementalDoc); ADaM: adrg.pdf (def:SupplementalDoc). The PDFs themselves are
  the sponsor's; the package copies them when ``specs/docs/`` holds them.
* SDTM variable roles (ItemRef/@Role) follow the SDTM v2.0 role of the variable's name
  pattern (Identifier, Topic, Timing, Grouping/Synonym/Result/Variable/Record Qualifier).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cdisc.define.model import (
    CodeList, Comment, DatasetDefinition, DefineModel, Document, DocumentRef, Method,
    Origin, Standard, Study, Term, ValueLevel, describe_dataset, describe_value_levels,
    origin_from_meta,
)
from cdisc.errors import ConformanceError, InputError, Problem, SpecError
from cdisc.metadata import DatasetMeta, VariableMeta

STANDARDS = ("SDTM", "ADaM")
IG = {
    "SDTM": Standard(oid="STD.SDTMIG.3-4", name="SDTMIG", type="IG", version="3.4"),
    "ADaM": Standard(oid="STD.ADAMIG.1-3", name="ADaMIG", type="IG", version="1.3"),
}
PURPOSE = {"SDTM": "Tabulation", "ADaM": "Analysis"}
ACRF = Document(id="LF.acrf", href="acrf.pdf", title="Annotated Case Report Form")
DOCUMENTS = {
    "SDTM": [ACRF, Document(id="LF.csdrg", href="csdrg.pdf",
                            title="Clinical Study Data Reviewer's Guide")],
    "ADaM": [Document(id="LF.adrg", href="adrg.pdf", title="Analysis Data Reviewer's Guide")],
}
# (dataset test, where-variable, result variables, variable naming the code) per
# Define-XML 2.1 §5.3.7; an ADaM dataset qualifies by having PARAMCD, a SUPP-- by QNAM.
VLM_TARGETS = [
    (lambda ds, std: ds == "LB", "LBTESTCD", ["LBORRES", "LBSTRESN"], "LBTEST"),
    (lambda ds, std: ds == "RS", "RSTESTCD", ["RSORRES"], "RSTEST"),
    (lambda ds, std: ds == "PC", "PCTESTCD", ["PCSTRESN"], "PCTEST"),
    (lambda ds, std: ds == "IS", "ISTESTCD", ["ISORRES"], "ISTEST"),
    (lambda ds, std: std == "ADaM", "PARAMCD", ["AVAL"], "PARAM"),
    (lambda ds, std: std == "SDTM" and ds.startswith("SUPP"), "QNAM", ["QVAL"], "QLABEL"),
]
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

    Steps: 1. load ``metadata.json`` (:func:`cdisc.build.load_build_metadata`);
    2. find each dataset's file from ``manifest.json`` outputs (``sdtm/ae.xpt``), or
    ``<sdtm|adam>/<name>.xpt`` without a manifest; 3. read it back with pyreadstat and
    check that its variables are the metadata's, in order.
    """
    from cdisc.build import load_build_metadata

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
        df = read_xpt_values(path)
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
# SDTM roles (SDTM v2.0 variable roles by name pattern)
# --------------------------------------------------------------------------------------
_ROLE_EXACT = {
    "STUDYID": "Identifier", "DOMAIN": "Identifier", "USUBJID": "Identifier",
    "POOLID": "Identifier", "SPDEVID": "Identifier", "RDOMAIN": "Identifier",
    "IDVAR": "Identifier", "IDVARVAL": "Identifier", "RELID": "Identifier",
    "QNAM": "Topic", "QLABEL": "Synonym Qualifier", "QVAL": "Result Qualifier",
    "QORIG": "Record Qualifier", "QEVAL": "Record Qualifier",
    "VISITNUM": "Timing", "VISIT": "Timing", "VISITDY": "Timing", "TAETORD": "Timing",
    "EPOCH": "Timing", "SUBJID": "Topic", "ARM": "Synonym Qualifier",
    "ACTARM": "Synonym Qualifier", "ELEMENT": "Synonym Qualifier", "AGEU": "Variable Qualifier",
    "TSPARMCD": "Topic", "TSPARM": "Synonym Qualifier", "TSVAL": "Result Qualifier",
    "IETESTCD": "Topic", "IETEST": "Synonym Qualifier", "IECAT": "Grouping Qualifier",
}
_ROLE_SUFFIX = [
    (("SEQ", "GRPID", "REFID", "SPID", "LNKID", "LNKGRP"), "Identifier"),
    (("DTC", "STDTC", "ENDTC", "DY", "STDY", "ENDY", "DUR", "TPT", "TPTNUM", "ELTM",
      "TPTREF", "RFTDTC", "STRF", "ENRF", "EVLINT", "EVINTX", "STRTPT", "STTPT", "ENRTPT",
      "ENTPT", "STINT", "ENINT", "NOMDY", "NOMLBL"), "Timing"),
    (("CAT", "SCAT"), "Grouping Qualifier"),
    (("DECOD", "TEST", "MODIFY"), "Synonym Qualifier"),
    (("ORRES", "STRESC", "STRESN"), "Result Qualifier"),
    (("ORRESU", "STRESU", "ORNRLO", "ORNRHI", "STNRLO", "STNRHI", "STNRC", "DOSU", "LLT",
      "LLTCD", "PTCD", "HLT", "HLTCD", "HLGT", "HLGTCD", "BDSYCD", "SOC", "SOCCD", "DOSTXT"),
     "Variable Qualifier"),
]
_TOPIC_SUFFIX = {"EVENTS": "TERM", "INTERVENTIONS": "TRT", "FINDINGS": "TESTCD",
                 "FINDINGS ABOUT": "TESTCD"}


def sdtm_role(meta: DatasetMeta, var: str) -> str:
    """The SDTM v2.0 role of ``var`` in ``meta`` (SDTMIG 3.4 domain tables, column Role).

    Steps: 1. names shared by all domains (STUDYID, USUBJID, VISITNUM, EPOCH, QNAM, ...);
    2. the topic variable of the class (--TERM for Events, --TRT for Interventions,
    --TESTCD for Findings; ETCD in SE/TE/TA); 3. the --suffix after the two-letter domain
    prefix (--SEQ Identifier, --DTC/--DY Timing, --CAT Grouping, --DECOD/--TEST Synonym,
    --ORRES/--STRESC/--STRESN Result, units/ranges/dictionary codes Variable Qualifier);
    4. anything else is a Record Qualifier.
    """
    if var in _ROLE_EXACT:
        return _ROLE_EXACT[var]
    cls = (meta.class_ or "").upper()
    if var == "ETCD":
        return "Topic"
    prefix = meta.name[:2]
    suffix = var[len(prefix):] if var.startswith(prefix) else None
    if suffix is not None and _TOPIC_SUFFIX.get(cls) == suffix:
        return "Topic"
    if suffix is not None:
        for suffixes, role in _ROLE_SUFFIX:
            if suffix in suffixes:
                return role
    return "Record Qualifier"


# --------------------------------------------------------------------------------------
# Methods for Derived variables whose spec has no method text
# --------------------------------------------------------------------------------------
_SE_METHODS = {
    "STUDYID": "Study identifier from specs/study.yaml (studyid).",
    "DOMAIN": "Set to SE.",
    "USUBJID": "DM.USUBJID of the subject.",
    "SESEQ": "Sequence number of the element within USUBJID, in order of SESTDTC.",
    "ETCD": "Code of each trial element (specs/study.yaml elements) the subject entered.",
    "ELEMENT": "Description of the element (TE.ELEMENT).",
    "TAETORD": "Planned order of the element within the subject's arm (TA.TAETORD).",
    "EPOCH": "Epoch of the element (TA.EPOCH).",
    "SESTDTC": "Start of the element: the subject's date named by the element's start rule "
               "in specs/study.yaml (e.g. RFICDTC for screening, RFXSTDTC for the infusion), "
               "shifted by start_offset_days.",
    "SEENDTC": "End of the element: start of the subject's next element; for the last "
               "element the subject's end of participation (DM.RFPENDTC).",
}


def _rule_method(var) -> str | None:
    """Method text from an SDTM spec variable's mapping rule (sdtm/spec.py rules)."""
    rule = var.rule
    arg = getattr(var, rule)
    if rule == "template":
        text = f"Built from the template {arg} (raw fields and variables in braces)."
    elif rule == "sequence":
        text = (f"Sequence number of the record within USUBJID, records ordered by "
                f"{', '.join(arg)}.")
    elif rule == "study_day":
        text = (f"Study day of {arg} relative to DM.RFSTDTC: date - RFSTDTC + 1 on or after "
                f"RFSTDTC, date - RFSTDTC before it; no day 0 (SDTMIG 3.4 §4.4.4).")
    elif rule == "epoch":
        text = f"EPOCH of the subject's SE element during which {arg} falls."
    elif rule == "visit":
        part = arg if isinstance(arg, str) else arg.part
        text = (f"{part.upper()} from the EDC folder through the visit schedule in "
                "specs/study.yaml; unscheduled visits numbered in time order.")
    elif rule == "lookup":
        text = (f"{arg.from_} looked up in the {arg.table} table of specs/study.yaml "
                f"({arg.key} -> {arg.field}).")
    elif rule == "aggregate":
        forms = ", ".join(s.form for s in arg.sources)
        text = f"Per subject, the {arg.how} value from the form(s) {forms}."
    elif rule == "result":
        text = (f"{arg.part.upper()} standardised from {arg.orres}"
                + (f" and {arg.orresu}" if arg.orresu else "")
                + " (SDTMIG 3.4 §4.5.1).")
    elif rule == "value":
        text = f"Set to {arg}."
    elif rule == "study":
        text = f"The study's {arg} from specs/study.yaml."
    elif rule == "map":
        col = arg if isinstance(arg, str) else arg.from_
        text = f"Raw {col} mapped to controlled terminology."
    elif rule == "assign":
        text = f"Raw {arg}."
    elif rule == "number":
        text = f"Raw {arg} as a number."
    elif rule == "iso8601":
        text = f"Raw {arg.date}" + (f" and {arg.time}" if arg.time else "") + " as ISO 8601."
    else:  # pragma: no cover - every rule of RULE_KEYS is handled above
        return None
    if var.when:
        text += f" Only where {var.when}."
    return text


def _is_derived(var: VariableMeta) -> bool:
    return (var.origin or "").strip().lower() == "derived"


def _with_methods(meta: DatasetMeta, spec_vars: dict) -> DatasetMeta:
    """A copy of ``meta`` where every Derived variable has method text (spec rule, SE
    table or a pointer to the build) so that each gets a MethodDef (Define-XML 2.1
    §5.3.5: MethodOID is required on an ItemRef whose origin is Derived)."""
    changed = []
    for v in meta.variables:
        if _is_derived(v) and not v.method:
            text = None
            if v.name in spec_vars:
                text = _rule_method(spec_vars[v.name])
            elif meta.name == "SE":
                text = _SE_METHODS.get(v.name)
            text = text or f"Derived by the cdisc build of {meta.name} (see the reviewer's guide)."
            v = v.model_copy(update={"method": text})
        changed.append(v)
    return meta.model_copy(update={"variables": changed})


# --------------------------------------------------------------------------------------
# Codelists
# --------------------------------------------------------------------------------------
def _ct_packages(ct) -> tuple[dict[str, Standard], "_Owner"]:
    """CT standards by publishing set (SDTM, ADaM: the packages study.yaml names) and a
    codelist name -> standard OID lookup (sponsor codelists have none)."""
    standards: dict[str, Standard] = {}
    oids: dict[str, str] = {}
    for p in ct.packages:
        pub = "SDTM" if p.kind == "sdtm" else "ADaM"
        std = Standard(oid=f"STD.CT.{pub.upper()}.{p.version}", name="CDISC/NCI", type="CT",
                       version=p.version, publishing_set=pub)
        standards[pub] = std
        oids[p.kind] = std.oid
    return standards, _Owner(ct, oids)


class _Owner:
    """``owner.get(name)``: the OID of the CT standard whose package holds codelist ``name``."""

    def __init__(self, ct, oids: dict[str, str]):
        self._ct, self._oids = ct, oids

    def get(self, name: str, default=None):
        p = self._ct.package_of(name)
        return self._oids.get(p.kind, default) if p is not None else default


def _used_values(series_list: list[pd.Series]) -> set[str]:
    """The distinct non-blank values of the columns, as codelist coded values (a whole
    number as its integer text, 2.0 -> "2")."""
    values: set[str] = set()
    for s in series_list:
        if pd.api.types.is_numeric_dtype(s):
            uniq = np.unique(s.dropna().to_numpy(dtype=float))
            values |= {f"{x:.0f}" if x == round(x) else repr(float(x)) for x in uniq}
        else:
            text = s.astype(str).str.strip()
            values |= set(text[text != ""].unique().tolist())
    return values


def build_codelists(uses: dict[str, list[tuple[pd.Series, str]]], ct, owner,
                    *, where: str) -> list[CodeList]:
    """CodeList objects for the codelists ``uses`` names (name -> [(values, type)]).

    Steps (Define-XML 2.1 §5.3.9): 1. a name not in the study's CT is a SpecError;
    2. non-extensible and sponsor codelists: every term; extensible CDISC codelists: the
    terms used in the data in CT order, then used values CT does not have as
    ``ExtendedValue`` terms (no C-code), or every term when nothing is used;
    3. sponsor terms of a CDISC codelist (study-ct.yaml extensions) are ExtendedValue;
    4. DataType integer/float when every referencing variable is Num.
    """
    out, problems = [], []
    for name in sorted(uses):
        if name not in ct.codelists:
            problems.append(Problem(f"codelist {name} is referenced but not in specs/ct",
                                    file=where, key=name,
                                    hint="add it to specs/ct/study-ct.yaml or fix the variable's codelist"))
            continue
        cl = ct.codelists[name]
        used = _used_values([s for s, _ in uses[name]])
        cdisc_extensible = cl.extensible and not cl.sponsor
        if cdisc_extensible and used:
            chosen = [t for t in cl.terms if t.value in used]
            known = {t.value for t in cl.terms}
            extra = sorted(used - known)
        else:
            chosen, extra = list(cl.terms), []
        terms = [Term(coded_value=t.value, decode=t.decode,
                      c_code=None if (t.sponsor or cl.sponsor) else t.code,
                      extended=bool(t.sponsor and cdisc_extensible))
                 for t in chosen]
        terms += [Term(coded_value=v, extended=True) for v in extra]
        kinds = {k for _, k in uses[name]}
        data_type = "text"
        if kinds == {"Num"}:
            data_type = "integer" if all(re.fullmatch(r"-?\d+", t.coded_value) for t in terms) else "float"
        out.append(CodeList(oid=f"CL.{name}", name=cl.label, data_type=data_type,
                            c_code=None if cl.sponsor else cl.code, terms=terms,
                            standard_oid=None if cl.sponsor else owner.get(name)))
    if problems:
        raise SpecError(problems)
    return out


# --------------------------------------------------------------------------------------
# Value-level metadata
# --------------------------------------------------------------------------------------
def _supp_qualifiers(sdtm_specs: dict) -> dict[str, dict[str, object]]:
    """SUPP-- dataset name -> QNAM -> the spec's Supplemental entry."""
    out: dict[str, dict[str, object]] = {}
    for dom, (spec, _) in sdtm_specs.items():
        if spec.supplemental:
            out[f"SUPP{dom}"] = {s.name: s for s in spec.supplemental}
    return out


def _with_standard_core(meta, data):
    """The dataset's metadata with the standard's Core designations (SDTMIG 3.4 / ADaMIG 1.3:
    Req makes an ItemRef Mandatory), without adding variables the dataset does not have."""
    from cdisc.standards import load_standard
    from validation.standard import merge_with_standard

    merged = merge_with_standard(meta.name, meta, list(data.columns), None, load_standard("sdtmig", "3.4"),
                                 load_standard("adamig", "1.3"), add_missing=False)
    return merged


def _qorig_origin(sup, acrf: bool = True) -> Origin:
    """def:Origin of one supplemental qualifier: its QORIG (``CRF`` = Collected from the
    Investigator), else the origin its spec rule implies (sdtm/spec.py defaults)."""
    meta = sup.meta()
    if sup.qorig:
        meta = meta.model_copy(update={"origin": sup.qorig})
    origin = origin_from_meta(meta, dataset="SUPP")
    if origin.type == "Collected" and origin.source == "Investigator" and acrf:
        origin = origin.model_copy(update={"documents": [DocumentRef(leaf_id=ACRF.id)]})
    return origin


def value_levels_for(ds: BuildDataset, items: dict[str, object], supp: dict[str, object],
                     methods: list[Method], comments: list[Comment], acrf: bool = True) -> list[ValueLevel]:
    """The ValueLevel entries of one dataset (see VLM_TARGETS), data type/length/digits
    left for :func:`describe_value_levels`. Adds MethodDefs/CommentDefs the SUPP-- QVAL
    entries need to ``methods``/``comments``."""
    out: list[ValueLevel] = []
    df = ds.data
    for applies, code_var, targets, label_var in VLM_TARGETS:
        if not applies(ds.name, ds.standard) or code_var not in df.columns:
            continue
        codes = df[code_var].astype(str).str.strip()
        names = (df[label_var].astype(str).str.strip() if label_var in df.columns
                 else pd.Series([""] * len(df), index=df.index))
        first_name = names.groupby(codes, sort=True).first()
        for target in targets:
            if target not in df.columns:
                continue
            parent = items[target]
            col = df[target]
            present = (col.notna() if pd.api.types.is_numeric_dtype(col)
                       else col.astype(str).str.strip() != "")
            for code in sorted(set(codes[present & (codes != "")])):
                label = first_name.get(code) or code
                fields: dict[str, object] = {
                    "dataset": ds.name, "variable": target,
                    "where": [(code_var, "EQ", [code])],
                    "label": f"{parent.label}: {label}" if code_var != "QNAM" else label,
                    "origin": parent.origin, "method_oid": parent.method_oid,
                }
                sup = supp.get(code) if code_var == "QNAM" else None
                if sup is not None:
                    fields["origin"] = _qorig_origin(sup, acrf)
                    fields["mandatory"] = True
                    if sup.codelist:
                        # The ItemDef's DataType must be its CodeList's (Define-XML 2.1
                        # §5.3.9): coded QVALs stay text even when they read as numbers.
                        fields["codelist_oid"] = f"CL.{sup.codelist}"
                        fields["data_type"] = "text"
                    text = sup.method
                    if fields["origin"].type == "Derived" and not text:
                        text = _rule_method(sup)
                    if text:
                        oid = f"MT.{ds.name}.{target}.{code}"
                        methods.append(Method(oid=oid, name=f"Algorithm to derive {code}",
                                              description=text))
                        fields["method_oid"] = oid
                    if sup.comment:
                        oid = f"COM.{ds.name}.{target}.{code}"
                        comments.append(Comment(oid=oid, description=sup.comment))
                        fields["comment_oid"] = oid
                out.append(ValueLevel(**fields))
    return out


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
                        ) -> dict[str, DefineModel]:
    """The Define-XML 2.1 model of a build's SDTM datasets and of its ADaM datasets.

    Args:
        build_dir: a folder written by ``cdisc build`` (metadata.json, sdtm/, adam/).
        specs_dir: the study specs the build used (study.yaml, ct/, sdtm/).
        dataset_notes: dataset name -> extra text for its def:CommentDef (e.g. how the
            package split it, FDA TCG §3.3.2).
        datasets: the build already read by :func:`read_build` (saves reading twice).

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
    from cdisc.build import load_domain_specs
    from cdisc.ct import load_terminology
    from cdisc.study import load_study

    specs_dir = Path(specs_dir)
    acrf_present = (specs_dir / "docs" / ACRF.href).is_file()
    study = load_study(specs_dir)
    ct = load_terminology(specs_dir)
    ct_standards, owner = _ct_packages(ct)
    sdtm_specs = load_domain_specs(specs_dir)
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
            defs.append(dataset)
            methods += m
            comments += c
            items = {i.name: i for i in dataset.items}
            value_levels += value_levels_for(ds, items, supp_specs.get(ds.name, {}), methods, comments, acrf_present)
            frames[ds.name], metas[ds.name] = ds.data, meta
            for v in meta.variables:
                if v.codelist:
                    uses.setdefault(v.codelist, []).append((ds.data[v.name], v.type))
        value_levels = describe_value_levels(value_levels, frames, metas)
        for vl in value_levels:
            if vl.codelist_oid:
                name = vl.codelist_oid[3:]
                df = frames[vl.dataset]
                mask = np.ones(len(df), dtype=bool)
                for cond in vl.where:
                    mask &= df[cond.variable].astype(str).isin(cond.values).to_numpy()
                uses.setdefault(name, []).append((df.loc[mask, vl.variable], "Char"))
        codelists = build_codelists(uses, ct, owner, where=f"{standard} define.xml")
        ct_used = sorted({cl.standard_oid for cl in codelists if cl.standard_oid})
        standards = [IG[standard]] + [s for s in ct_standards.values() if s.oid in ct_used]
        # only the documents the package holds: a def:leaf to a missing file is a dead link
        docs = [d for d in DOCUMENTS[standard] if (specs_dir / "docs" / d.href).is_file()]
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


def _tool_version() -> str:
    from cdisc import __version__

    return __version__


def write_defines(build_dir: Path, specs_dir: Path, out_dirs: dict[str, Path] | None = None, *,
                  dataset_notes: dict[str, str] | None = None, html: bool = True,
                  datasets: dict[str, BuildDataset] | None = None) -> dict[str, Path]:
    """Write define.xml (+ define2-1.xsl, + define.html) for SDTM and for ADaM.

    Args:
        build_dir: the build folder.
        specs_dir: the study specs.
        out_dirs: standard -> folder for its define.xml; default ``BUILD/sdtm`` and
            ``BUILD/adam`` (next to the .xpt files the define's leaves point to). A
            standard the build has but ``out_dirs`` lacks is not written.
        dataset_notes, datasets: see :func:`build_define_models`.
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
                                 datasets=datasets)
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
