"""What define.xml needs beyond DatasetMeta: the Define-XML 2.1 metadata model.

The model is pure metadata (pydantic, no data frames), so ``write_define`` is a
deterministic function of it. The numbers that come from the data (an item's data
type, its real maximum length, the significant digits of a float) are computed once by
:func:`describe_dataset` / :func:`describe_value_levels` and stored in the model.

Element by element, following Define-XML 2.1.0 (CDISC, 2019-05-15):

* ``Study`` -> ``ODM``/``Study``/``GlobalVariables``/``MetaDataVersion`` (§5.2-5.3).
* ``Standard`` -> ``def:Standards/def:Standard`` (§5.3.2): the IG (SDTMIG 3.4 or
  ADaMIG 1.3) and the CDISC/NCI CT package version.
* ``Document`` -> ``def:leaf`` (§5.3.13), cited by ``def:AnnotatedCRF`` (acrf.pdf) and
  ``def:SupplementalDoc`` (csdrg.pdf / adrg.pdf) as ``def:DocumentRef``.
* ``DatasetDefinition`` -> ``ItemGroupDef`` (§5.3.4): class, structure, purpose
  (Tabulation for SDTM, Analysis for ADaM), keys, the ``def:leaf`` to the .xpt file.
* ``ItemDefinition`` -> ``ItemRef`` + ``ItemDef`` (§5.3.5-5.3.6) with ``def:Origin``
  (§5.3.6.3; Collected/Derived/Assigned/Protocol/Predecessor/Not Available/Other).
* ``ValueLevel`` -> ``def:ValueListDef`` + ``def:WhereClauseDef`` + a value-level
  ``ItemDef`` (§5.3.7-5.3.8), e.g. LBORRES per LBTESTCD, AVAL per PARAMCD.
* ``CodeList`` -> ``CodeList`` (§5.3.9): ``EnumeratedItem`` when no term has a decode,
  ``CodeListItem``/``Decode`` otherwise, NCI C-codes as ``Alias Context="nci:ExtCodeID"``,
  ``def:ExtendedValue="Yes"`` for sponsor terms added to an extensible codelist, or an
  ``ExternalCodeList`` (MedDRA, WHODrug).
* ``Method`` -> ``MethodDef`` (§5.3.10), ``Comment`` -> ``def:CommentDef`` (§5.3.12).
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cdisc.datasetjson import char_values, num_values, sas_format_kind
from cdisc.errors import Problem, SpecError
from cdisc.metadata import DatasetMeta, VariableMeta

OriginType = Literal["Collected", "Derived", "Assigned", "Protocol", "Predecessor",
                     "Not Available", "Other"]
OriginSource = Literal["Investigator", "Sponsor", "Subject", "Vendor"]
DataType = Literal["text", "integer", "float", "datetime", "date", "time", "partialDate",
                   "partialTime", "partialDatetime", "incompleteDatetime", "durationDatetime",
                   "intervalDatetime"]
Comparator = Literal["EQ", "NE", "IN", "NOTIN", "LT", "LE", "GT", "GE"]
ITEM_GROUP_CLASSES = {
    "ADAM OTHER", "BASIC DATA STRUCTURE", "DEVICE LEVEL ANALYSIS DATASET", "EVENTS",
    "FINDINGS", "FINDINGS ABOUT", "INTERVENTIONS", "MEDICAL DEVICE BASIC DATA STRUCTURE",
    "MEDICAL DEVICE OCCURRENCE DATA STRUCTURE", "OCCURRENCE DATA STRUCTURE",
    "REFERENCE DATA STRUCTURE", "RELATIONSHIP", "SPECIAL PURPOSE", "STUDY REFERENCE",
    "SUBJECT LEVEL ANALYSIS DATASET", "TRIAL DESIGN",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def oid_part(text: str) -> str:
    """A value made safe for an OID segment: runs of characters other than letters,
    digits, ``_`` and ``-`` become ``_`` (``"PH 7.4"`` -> ``"PH_7_4"``)."""
    return re.sub(r"[^A-Za-z0-9_\-]+", "_", str(text)).strip("_") or "BLANK"


class Study(_Model):
    """``ODM`` file attributes and ``Study/GlobalVariables`` (Define-XML 2.1 §5.2)."""

    oid: str                                  # Study/@OID, = Dataset-JSON studyOID
    name: str                                 # StudyName, e.g. VGO-Cs01p
    description: str                          # StudyDescription
    protocol_name: str                        # ProtocolName
    metadata_version_oid: str                 # = Dataset-JSON metaDataVersionOID
    metadata_version_name: str
    metadata_version_description: str | None = None
    file_oid: str
    created: datetime                         # ODM/@CreationDateTime, from the caller
    originator: str | None = None
    source_system: str | None = None
    source_system_version: str | None = None
    context: Literal["Submission", "Other"] = "Submission"


class Standard(_Model):
    """One ``def:Standard``: an implementation guide or a CT package (§5.3.2)."""

    oid: str                                  # e.g. STD.SDTMIG.3-4, STD.CT.SDTM.2024-03-29
    name: Literal["SDTMIG", "ADaMIG", "CDISC/NCI", "SENDIG", "SDTMIG-AP", "SDTMIG-MD",
                  "ADaMIG-MD", "ADaMIG-NCA", "ADaMIG-popPK", "ADaM-OCCDSIG", "BIMO"]
    type: Literal["IG", "CT"]
    version: str                              # 3.4, 1.3, 2024-03-29
    status: Literal["Final", "Draft", "Provisional"] = "Final"
    publishing_set: Literal["SDTM", "ADaM", "CDASH", "DEFINE-XML", "SEND"] | None = None

    @model_validator(mode="after")
    def _ct_has_publishing_set(self):
        if self.type == "CT" and self.publishing_set is None:
            raise ValueError(f"CT standard {self.oid} needs publishing_set (SDTM, ADaM, ...)")
        return self


class Document(_Model):
    """A ``def:leaf``: an external document (acrf.pdf, csdrg.pdf, adrg.pdf)."""

    id: str                                   # leaf ID (an XML ID), e.g. LF.acrf
    href: str                                 # relative path, e.g. acrf.pdf
    title: str

    @field_validator("id")
    @classmethod
    def _xml_id(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", v):
            raise ValueError(f"leaf ID {v!r} must be an XML name (letter first, no spaces)")
        return v


class DocumentRef(_Model):
    """A ``def:DocumentRef``, optionally to pages (``def:PDFPageRef``)."""

    leaf_id: str
    pages: str | None = None                  # PageRefs, space separated: "12 14"
    first_page: int | None = None
    last_page: int | None = None
    page_type: Literal["PhysicalRef", "NamedDestination"] = "PhysicalRef"


class Origin(_Model):
    """``def:Origin`` (§5.3.6.3): where a value comes from.

    Collected values name their Source (Investigator for CRF data, Subject for ePRO,
    Vendor for eDT) and usually the aCRF pages; Derived values carry a MethodDef on
    their ItemRef; Predecessor gives the source variable as text (ADaM, e.g.
    ``DM.AGE``).
    """

    type: OriginType
    source: OriginSource | None = None
    description: str | None = None            # Predecessor text or free explanation
    documents: list[DocumentRef] = Field(default_factory=list)


class Method(_Model):
    """``MethodDef`` (§5.3.10)."""

    oid: str
    name: str
    type: Literal["Computation", "Imputation", "Transpose", "Other"] = "Computation"
    description: str
    expression: str | None = None             # FormalExpression text
    expression_context: str | None = None     # e.g. "Python 3.11"
    documents: list[DocumentRef] = Field(default_factory=list)


class Comment(_Model):
    """``def:CommentDef`` (§5.3.12)."""

    oid: str
    description: str
    documents: list[DocumentRef] = Field(default_factory=list)


class Term(_Model):
    """One codelist term."""

    coded_value: str
    decode: str | None = None                 # -> CodeListItem/Decode
    c_code: str | None = None                 # NCI term code -> Alias nci:ExtCodeID
    extended: bool = False                    # sponsor term in an extensible codelist
    order: int | None = None
    rank: float | None = None


class ExternalDictionary(_Model):
    """``ExternalCodeList``: MedDRA, WHODD, ... (§5.3.9.4)."""

    dictionary: str
    version: str
    ref: str | None = None
    href: str | None = None


class CodeList(_Model):
    """``CodeList`` (§5.3.9). Either ``terms`` or ``external``."""

    oid: str                                  # CL.<short name>, e.g. CL.SEX
    name: str
    data_type: Literal["text", "integer", "float"] = "text"
    c_code: str | None = None                 # NCI codelist code -> Alias nci:ExtCodeID
    terms: list[Term] = Field(default_factory=list)
    external: ExternalDictionary | None = None
    standard_oid: str | None = None           # the CT def:Standard it comes from
    comment_oid: str | None = None

    @model_validator(mode="after")
    def _terms_or_external(self):
        if bool(self.terms) == bool(self.external):
            raise ValueError(f"codelist {self.oid} needs either terms or an external dictionary")
        return self

    @property
    def has_decodes(self) -> bool:
        return any(t.decode is not None for t in self.terms)


class ItemDefinition(_Model):
    """One variable of one dataset: ``ItemRef`` + ``ItemDef`` attributes."""

    name: str
    label: str
    data_type: DataType
    length: int | None = None
    significant_digits: int | None = None
    display_format: str | None = None
    key_sequence: int | None = None
    mandatory: bool = False
    role: str | None = None                   # SDTM variable role (Identifier, Topic, ...)
    origin: Origin | None = None
    method_oid: str | None = None
    codelist_oid: str | None = None
    comment_oid: str | None = None


class SplitPart(_Model):
    """One file of a dataset the package split for size (FDA TCG §3.3.2): written as an
    ItemGroupDef of its own (``IG.LB1``, SASDatasetName LB1, the dataset's Domain, class
    and ItemRefs) with its def:leaf (``split/lb1.xpt``) and a description and comment of
    what it holds. Define-XML 2.1 gives an ItemGroupDef at most one def:leaf, so a leaf per
    file needs an ItemGroupDef per file; the parts are the standard dataset itself (same
    ItemDefs, hence the same lengths), so no def:IsNonStandard."""

    name: str                                 # dataset name inside the file, e.g. LB1
    href: str                                 # def:leaf xlink:href, e.g. split/lb1.xpt
    description: str                          # e.g. Laboratory Test Results (LB split by LBCAT = CHEMISTRY)
    comment_oid: str | None = None


class DatasetDefinition(_Model):
    """``ItemGroupDef`` (§5.3.4) with its items."""

    name: str
    label: str
    class_: str = Field(alias="class")        # def:Class/@Name, e.g. SPECIAL PURPOSE
    structure: str                            # def:Structure
    purpose: Literal["Tabulation", "Analysis"]
    href: str                                 # def:leaf xlink:href, e.g. dm.xpt
    standard_oid: str | None = None
    domain: str | None = None                 # SDTM only
    repeating: bool = True
    is_reference_data: bool = False
    has_no_data: bool = False
    comment_oid: str | None = None
    items: list[ItemDefinition]
    split_parts: list[SplitPart] = Field(default_factory=list)   # FDA TCG §3.3.2 size split

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("class_")
    @classmethod
    def _known_class(cls, v: str) -> str:
        upper = v.upper()
        if upper not in ITEM_GROUP_CLASSES:
            raise ValueError(f"dataset class {v!r} is not a Define-XML 2.1 class "
                             f"({', '.join(sorted(ITEM_GROUP_CLASSES))})")
        return upper


class WhereCondition(_Model):
    """One ``RangeCheck`` of a where clause: ``variable comparator values``."""

    variable: str
    comparator: Comparator = "EQ"
    values: list[str]

    @model_validator(mode="after")
    def _arity(self):
        if self.comparator not in ("IN", "NOTIN") and len(self.values) != 1:
            raise ValueError(f"{self.comparator} on {self.variable} takes exactly one value")
        if not self.values:
            raise ValueError(f"{self.comparator} on {self.variable} needs values")
        return self


class ValueLevel(_Model):
    """Value-level metadata: how ``dataset.variable`` looks where ``where`` holds.

    ``where`` accepts ``WhereCondition`` objects or ``(variable, comparator, values)``
    tuples, e.g. ``("LBTESTCD", "EQ", ["GLUC"])``. Data type / length / significant
    digits left as None are filled from the data by :func:`describe_value_levels`.
    """

    dataset: str
    variable: str
    where: list[WhereCondition]
    data_type: DataType | None = None
    length: int | None = None
    significant_digits: int | None = None
    display_format: str | None = None
    label: str | None = None
    mandatory: bool = False
    origin: Origin | None = None
    method_oid: str | None = None
    codelist_oid: str | None = None
    comment_oid: str | None = None

    @field_validator("where", mode="before")
    @classmethod
    def _tuples(cls, v):
        out = []
        for cond in v:
            if isinstance(cond, (tuple, list)):
                variable, comparator, values = cond
                if isinstance(values, str):
                    values = [values]
                cond = {"variable": variable, "comparator": comparator, "values": list(values)}
            out.append(cond)
        return out

    @property
    def suffix(self) -> str:
        """OID suffix from the where values, e.g. ``GLUC`` or ``LBTESTCD_GLUC.HGB``."""
        return ".".join(oid_part("_".join(c.values)) for c in self.where)


class DefineModel(_Model):
    """Everything ``write_define`` writes."""

    study: Study
    standards: list[Standard]
    datasets: list[DatasetDefinition]
    value_levels: list[ValueLevel] = Field(default_factory=list)
    codelists: list[CodeList] = Field(default_factory=list)
    methods: list[Method] = Field(default_factory=list)
    comments: list[Comment] = Field(default_factory=list)
    documents: list[Document] = Field(default_factory=list)
    annotated_crf: list[DocumentRef] = Field(default_factory=list)   # -> def:AnnotatedCRF
    supplemental_docs: list[DocumentRef] = Field(default_factory=list)  # -> def:SupplementalDoc
    comment_oid: str | None = None            # MetaDataVersion/@def:CommentOID


# --------------------------------------------------------------------------------------
# From VariableMeta + data to ItemDefinition
# --------------------------------------------------------------------------------------
_ISO_PATTERNS = [
    ("date", r"\d{4}-\d{2}-\d{2}"),
    ("datetime", r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?"),
    ("partialDate", r"\d{4}(-\d{2})?"),
    ("partialDatetime", r"\d{4}-\d{2}-\d{2}T\d{2}(:\d{2})?"),
    ("time", r"\d{2}:\d{2}:\d{2}(\.\d+)?"),
    ("partialTime", r"\d{2}(:\d{2})?"),
    # ISO 8601 with unknown components in the middle, SDTMIG 3.4 §4.4.4: 2003---15
    ("incompleteDatetime", r"(\d{4}|-)-(\d{2}|-)-(\d{2}|-)(T(\d{2}|-)(:(\d{2}|-)(:(\d{2}|-))?)?)?"),
    ("durationDatetime", r"-?P(\d+(\.\d+)?[YMWD])*(T(\d+(\.\d+)?[HMS])+)?"),
    ("intervalDatetime", r"[^/]+/[^/]+"),
]


def iso8601_data_type(values: pd.Series) -> DataType:
    """Define-XML data type of a Char ISO 8601 variable (--DTC, --DUR, ...) from its values.

    Steps: 1. drop blanks; 2. classify each distinct value by the first pattern it
    matches: date, datetime (with seconds), partialDate, partialDatetime, time,
    partialTime, incompleteDatetime (SDTMIG 3.4 §4.4.4 dashes for unknown parts),
    durationDatetime, intervalDatetime; 3. combine: one category -> that category;
    only date/partialDate -> partialDate; a mix of date-like and datetime-like values
    -> partialDatetime (a date is a datetime truncated on the right); anything with an
    incomplete value -> incompleteDatetime; otherwise (or a value that matches nothing)
    -> text. No values -> datetime (the type the --DTC variable is planned to hold).
    """
    present = pd.Series(values.dropna().unique(), dtype=object)
    present = present[present.str.len() > 0]
    if present.empty:
        return "datetime"
    kinds = pd.Series(None, index=present.index, dtype=object)
    for kind, pattern in _ISO_PATTERNS:
        todo = kinds.isna()
        kinds[todo & present.str.fullmatch(pattern)] = kind
    if kinds.isna().any():
        return "text"
    found = set(kinds)
    if len(found) == 1:
        return found.pop()  # type: ignore[return-value]
    if found <= {"date", "partialDate"}:
        return "partialDate"
    if found <= {"date", "partialDate", "datetime", "partialDatetime"}:
        return "partialDatetime"
    if found <= {"date", "partialDate", "datetime", "partialDatetime", "incompleteDatetime"}:
        return "incompleteDatetime"
    if found <= {"time", "partialTime"}:
        return "partialTime"
    return "text"


def _is_iso_variable(name: str) -> bool:
    # SDTMIG 3.4 §4.4: --DTC date/times, --DUR durations, --ELTM/--EVLINT elapsed
    # times and intervals hold ISO 8601 text; the numeric ADaM *DT/*TM/*DTM are Num.
    return name.endswith(("DTC", "DUR", "ELTM", "EVLINT", "EVINTX")) or name == "DTC"


def _decimal_digits(values: np.ndarray) -> tuple[int, int]:
    """(max integer-part digits, max decimal digits) over the distinct values, using
    the shortest repr that round-trips each double (0.1 -> 1 decimal, 1e-07 -> 7)."""
    uniq = np.unique(np.abs(values))
    if uniq.size == 0:
        return 1, 0
    text = pd.Series([np.format_float_positional(v, unique=True, trim="-") for v in uniq])
    parts = text.str.split(".", n=1, expand=True)
    int_digits = int(parts[0].str.len().max())
    dec_digits = int(parts[1].fillna("").str.len().max()) if parts.shape[1] > 1 else 0
    return int_digits, dec_digits


def describe_variable(var: VariableMeta, series: pd.Series | None, *, dataset: str,
                      file: str | None = None) -> dict:
    """Data type, length and significant digits of one variable from its values.

    Args:
        var: the variable's metadata.
        series: its values (None: no data, use the metadata alone).
        dataset: dataset name, for messages.

    Returns:
        ``{"data_type", "length", "significant_digits", "display_format"}``.

    Steps (Define-XML 2.1 §5.3.6.1, ItemDef attributes; FDA TCG §4.1.5.2 on lengths):
        1. Char ISO 8601 variables (--DTC, --DUR, ...) get the ISO type of their values
           (:func:`iso8601_data_type`) and a Length; other Char variables are ``text``
           with Length = the longest value in UTF-8 bytes (the XPT length), at least 1;
        2. Num with a SAS date/datetime/time format: ``integer`` (the XPT holds a day or
           second count) with the format as def:DisplayFormat, Length = digits of the
           largest magnitude;
        3. other Num: ``integer`` when every value is whole, Length = most digits;
           otherwise ``float`` with SignificantDigits = the most decimals any value
           needs and Length = most integer digits + SignificantDigits;
        4. ``var.significant_digits`` / ``var.length`` override the computed numbers
           only where they are larger (never declare less than the data holds).
    """
    where = {"file": file or dataset, "column": var.name}
    if var.type == "Char":
        values = char_values(series, where=where) if series is not None else np.array([], object)
        length = 1
        if values.size:
            utf8 = pd.Series(values, dtype=object).str.encode("utf-8").str.len()
            length = max(int(utf8.max()), 1)
        if series is None and var.length:
            length = var.length
        data_type = (iso8601_data_type(pd.Series(values, dtype=object))
                     if _is_iso_variable(var.name) else "text")
        return {"data_type": data_type, "length": length, "significant_digits": None,
                "display_format": var.format}
    kind = sas_format_kind(var.format)
    values = (num_values(series, where=where, kind=kind) if series is not None
              else np.array([], float))
    present = values[~np.isnan(values)]
    int_digits, dec_digits = _decimal_digits(present)
    if sas_format_kind(var.format) or dec_digits == 0:
        length = int_digits
        sig = None
        data_type = "integer"
        if sas_format_kind(var.format) and dec_digits:
            data_type, sig = "float", dec_digits
            length = int_digits + dec_digits
    else:
        sig = max(dec_digits, var.significant_digits or 0)
        length = int_digits + sig
        data_type = "float"
    return {"data_type": data_type, "length": max(length, 1), "significant_digits": sig,
            "display_format": var.format}


_ORIGIN_ALIASES = {
    "crf": ("Collected", "Investigator"), "collected": ("Collected", "Investigator"),
    "edt": ("Collected", "Vendor"), "vendor": ("Collected", "Vendor"),
    "epro": ("Collected", "Subject"), "derived": ("Derived", "Sponsor"),
    "assigned": ("Assigned", "Sponsor"), "protocol": ("Protocol", "Sponsor"),
    "predecessor": ("Predecessor", None), "not available": ("Not Available", None),
    "other": ("Other", None),
}


def origin_from_meta(var: VariableMeta, *, dataset: str) -> Origin | None:
    """``def:Origin`` from ``VariableMeta.origin``/``source`` (Define-XML 2.1 §5.3.6.3).

    Steps: 1. map the origin word (case-insensitive; ``CRF`` and ``eDT`` are accepted
    as Collected from the Investigator / a Vendor); 2. for Collected, a ``source`` that
    is one of Investigator/Sponsor/Subject/Vendor replaces the default source; 3. for
    Predecessor, ``source`` (e.g. ``DM.AGE``) becomes the description; for other types
    a non-enumerated ``source`` text becomes the description.
    """
    if not var.origin:
        return None
    key = var.origin.strip().lower()
    if key not in _ORIGIN_ALIASES:
        raise SpecError(f"origin {var.origin!r} is not a Define-XML 2.1 origin type",
                        file=dataset, column=var.name,
                        hint="use Collected, Derived, Assigned, Protocol, Predecessor, "
                             "Not Available or Other")
    type_, source = _ORIGIN_ALIASES[key]
    description = None
    if var.source:
        enumerated = var.source in ("Investigator", "Sponsor", "Subject", "Vendor")
        if enumerated and type_ != "Predecessor":
            source = var.source
        else:
            description = var.source
    return Origin(type=type_, source=source, description=description)


def describe_dataset(meta: DatasetMeta, df: pd.DataFrame | None, *, href: str,
                     purpose: Literal["Tabulation", "Analysis"] | None = None,
                     standard_oid: str | None = None, codelist_oids: dict[str, str] | None = None,
                     origins: dict[str, Origin] | None = None, roles: dict[str, str] | None = None,
                     repeating: bool | None = None, is_reference_data: bool = False,
                     ) -> tuple[DatasetDefinition, list[Method], list[Comment]]:
    """Build the ItemGroupDef of one dataset from its DatasetMeta and data.

    Args:
        meta: the dataset's metadata (class, structure, keys, variables).
        df: the dataset (None: describe from metadata alone, lengths from the spec).
        href: the transport file, relative to define.xml (``dm.xpt``).
        purpose: Tabulation (SDTM, default) or Analysis (ADaM, default for ADaM).
        standard_oid: the def:Standard (IG) the dataset follows.
        codelist_oids: codelist short name -> CodeList OID; default ``CL.<name>``.
        origins: per-variable Origin overriding ``origin_from_meta`` (e.g. with aCRF
            page references).
        roles: per-variable SDTM role (Identifier, Topic, Timing, ...).
        repeating: default: No when the structure is one record per subject.
        is_reference_data: Yes for trial design datasets (TA, TE, TI, TS, TV).

    Returns:
        ``(dataset, methods, comments)``: the DatasetDefinition, a MethodDef for every
        variable with ``method`` text (OID ``MT.<DS>.<VAR>``) and a CommentDef for every
        variable or dataset ``comment`` (``COM.<DS>.<VAR>`` / ``COM.<DS>``).

    Steps:
        1. per variable, :func:`describe_variable` for type/length/digits from the data;
        2. key sequence from ``VariableMeta.key_sequence`` or the position in
           ``meta.keys``; Mandatory = Yes for core Req and for keys (Define-XML 2.1 §5.3.5.1);
        3. origin from ``origins`` or the metadata; a Derived variable without method
           text is an error (Define-XML 2.1: ItemRef/@MethodOID is required when the
           origin is Derived);
        4. method and comment texts become MethodDef/CommentDef objects.
    """
    if df is not None:
        missing = [n for n in meta.names if n not in df.columns]
        if missing:
            raise SpecError(f"variables {missing} of {meta.name} are not in the data",
                            file=meta.name, hint="derive them or drop them from the spec")
    if meta.class_ is None or meta.structure is None:
        raise SpecError(f"{meta.name} needs a class and a structure for define.xml",
                        file=meta.name, key="class/structure")
    purpose = purpose or ("Analysis" if meta.standard == "ADaM" else "Tabulation")
    codelist_oids = codelist_oids or {}
    origins, roles = origins or {}, roles or {}
    items, methods, comments, problems = [], [], [], []
    for var in meta.variables:
        stats = describe_variable(var, None if df is None else df[var.name], dataset=meta.name)
        origin = origins.get(var.name) or origin_from_meta(var, dataset=meta.name)
        method_oid = None
        if var.method:
            method_oid = f"MT.{meta.name}.{var.name}"
            methods.append(Method(oid=method_oid,
                                  name=f"Algorithm to derive {meta.name}.{var.name}",
                                  description=var.method))
        elif origin is not None and origin.type == "Derived":
            problems.append(Problem(f"{meta.name}.{var.name} is Derived but has no method text",
                                    file=meta.name, column=var.name,
                                    hint="add `method:` to the spec (Define-XML 2.1 "
                                         "needs a MethodDef)"))
        comment_oid = None
        if var.comment:
            comment_oid = f"COM.{meta.name}.{var.name}"
            comments.append(Comment(oid=comment_oid, description=var.comment))
        key = var.key_sequence or (meta.keys.index(var.name) + 1 if var.name in meta.keys else None)
        items.append(ItemDefinition(
            name=var.name, label=var.label, key_sequence=key, mandatory=var.core == "Req" or key is not None,
            role=roles.get(var.name), origin=origin, method_oid=method_oid,
            codelist_oid=(codelist_oids.get(var.codelist, f"CL.{var.codelist}")
                          if var.codelist else None),
            comment_oid=comment_oid, **stats))
    if problems:
        raise SpecError(problems)
    dataset_comment = None
    if meta.comment:
        dataset_comment = f"COM.{meta.name}"
        comments.append(Comment(oid=dataset_comment, description=meta.comment))
    if repeating is None:
        # No only for exactly one record per subject (DM, ADSL); "one record per subject per
        # parameter per visit" (BDS) repeats (Define-XML 2.1 §5.3.5)
        repeating = meta.structure.strip().lower().rstrip(".") != "one record per subject"
    domain = None
    if purpose == "Tabulation":
        # A supplemental qualifier dataset carries its parent's domain (SUPPAE -> AE).
        domain = meta.name[4:] if meta.name.startswith("SUPP") else meta.name
    dataset = DatasetDefinition(
        name=meta.name, label=meta.label, class_=meta.class_, structure=meta.structure,
        purpose=purpose, href=href, standard_oid=standard_oid, domain=domain,
        repeating=repeating, is_reference_data=is_reference_data, comment_oid=dataset_comment,
        items=items)
    return dataset, methods, comments


def describe_value_levels(value_levels: list[ValueLevel], frames: dict[str, pd.DataFrame],
                          metas: dict[str, DatasetMeta]) -> list[ValueLevel]:
    """Fill each ValueLevel's data type, length and significant digits from the data.

    Args:
        value_levels: the VLM entries; fields already set are kept.
        frames: dataset name -> data.
        metas: dataset name -> metadata (for the variable's type and format).

    Steps: 1. select the records where every condition holds (EQ/IN: ``isin``;
    NE/NOTIN: not ``isin``; LT/LE/GT/GE: numeric comparison); 2. describe the
    variable's values on that subset with :func:`describe_variable` (so LBORRES where
    LBTESTCD = GLUC gets the longest glucose result, AVAL where PARAMCD = X the
    decimals of that parameter); 3. for a Char variable whose values all read as
    numbers (LBORRES "5.4"), use integer/float as the value-level data type
    (Define-XML 2.1 §5.3.6.1 permits a text variable to hold a numeric VLM type).
    """
    out = []
    for vl in value_levels:
        df, meta = frames.get(vl.dataset), metas.get(vl.dataset)
        if df is None or meta is None:
            raise SpecError(f"value-level metadata names dataset {vl.dataset}, which is not given",
                            file=vl.dataset, column=vl.variable)
        mask = np.ones(len(df), dtype=bool)
        for cond in vl.where:
            if cond.variable not in df.columns:
                raise SpecError(f"where clause variable {cond.variable} is not in {vl.dataset}",
                                file=vl.dataset, column=cond.variable)
            col = df[cond.variable]
            if cond.comparator in ("EQ", "IN"):
                mask &= col.astype(str).isin(cond.values).to_numpy()
            elif cond.comparator in ("NE", "NOTIN"):
                mask &= ~col.astype(str).isin(cond.values).to_numpy()
            else:
                num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                ref = float(cond.values[0])
                op = {"LT": np.less, "LE": np.less_equal, "GT": np.greater,
                      "GE": np.greater_equal}[cond.comparator]
                mask &= op(num, ref)
        var = meta.variable(vl.variable)
        subset = df.loc[mask, vl.variable]
        stats = describe_variable(var, subset, dataset=vl.dataset)
        if var.type == "Char" and stats["data_type"] == "text":
            blank = subset.isna() | (subset.astype(str).str.strip() == "")
            nums = pd.to_numeric(subset[~blank], errors="coerce")
            if len(nums) and nums.notna().all():
                fake = VariableMeta(name=var.name, label=var.label, type="Num")
                num_stats = describe_variable(fake, nums, dataset=vl.dataset)
                stats["data_type"] = num_stats["data_type"]
                stats["significant_digits"] = num_stats["significant_digits"]
        update = {k: v for k, v in (("data_type", stats["data_type"]), ("length", stats["length"]),
                                    ("significant_digits", stats["significant_digits"]))
                  if getattr(vl, k) is None}
        out.append(vl.model_copy(update=update))
    return out
