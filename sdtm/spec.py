"""The SDTM mapping spec: one YAML file per domain in specs/sdtm/, validated with pydantic.

A spec says which raw forms feed the domain, which rows are excluded and why, and for each
variable (in output order) its metadata and exactly one mapping rule. See README.md,
"How a spec looks", for the rule reference.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cdisc.metadata import DatasetMeta, VariableMeta, VariableSpec, check_variable_list

RULE_KEYS = ("assign", "value", "study", "template", "map", "decode", "lookup", "number", "iso8601",
             "study_day", "sequence", "epoch", "aggregate", "visit", "result", "nrind", "baseline_flag",
             "cases", "dm", "expr")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Exclude(_Strict):
    """Raw rows the domain does not take, and why; the build counts them per rule."""

    where: str
    reason: str


class Melt(_Strict):
    """One raw column that becomes its own record (a findings test collected as a CRF field).

    The melted record holds the value in column ``RESULT`` (and the unit column's value in
    ``UNIT`` when ``unit`` names one); ``set`` adds constants for this test, e.g.
    ``{TESTCD: OVRLRESP}``. These names override raw columns of the same name for the
    melted records. Messages about ``RESULT``/``UNIT`` name the raw column they came from.
    """

    column: str                            # raw column holding the result
    set: dict[str, Any] = Field(default_factory=dict)   # constants for this test
    unit: str | None = None                # raw column with its unit, if any
    # A blank result makes no record (SDTMIG 3.4 Findings: no record for a test not
    # collected); the reconciliation counts the rows under this reason (default: the
    # source's melt_drop_blank_reason).
    blank_reason: str | None = None


class Source(_Strict):
    form: str                              # raw file name without extension
    # Harmonise forms stacked into one domain: new raw column name -> existing column,
    # and constants for every row of this form (e.g. EXCAT of the lymphodepletion log).
    columns: dict[str, str] = Field(default_factory=dict)
    set: dict[str, str | int | float] = Field(default_factory=dict)
    exclude: list[Exclude] = Field(default_factory=list)
    melt: list[Melt] = Field(default_factory=list)
    # Raw column holding this form's visit (EDC folder), when it is not study.yaml raw.folder:
    # the visit rules read it as the folder for the records of this form.
    visit: str | None = None
    # Melted records whose result is blank are not records (SDTMIG: no record for a test
    # not collected); the count is reported under this reason.
    melt_drop_blank_reason: str = "result not collected (blank on the CRF)"


class IsoDate(_Strict):
    date: str                              # raw column with the date as typed
    time: str | None = None                # raw column with HH:MM
    # Layouts of this column (overrides study.yaml raw.date_formats), e.g. [MM/DD/YYYY].
    formats: list[str] | None = None

    @field_validator("formats")
    @classmethod
    def _layouts(cls, v):
        from .functions import parse_date_format

        for f in v or ():
            parse_date_format(str(f))
        return v


class Lookup(_Strict):
    from_: str = Field(alias="from")       # raw column or earlier variable
    table: str                             # 'arms', 'visits' or a study.yaml lookup
    key: str                               # column of the table matched against from
    field: str                             # column of the table returned


class AggregateSource(_Strict):
    form: str
    value: str | IsoDate                   # raw column, or a date to convert to ISO 8601
    where: str | None = None               # keep only these rows (expression)


class Aggregate(_Strict):
    """A per-subject value taken from other raw forms (DM reference dates, first dose level)."""

    sources: list[AggregateSource]
    how: Literal["min", "max", "first", "last"] = "min"
    order: str | None = None               # raw column ordering rows for first/last (numeric if it parses)


class MapRule(_Strict):
    from_: str = Field(alias="from")
    codelist: str | None = None            # defaults to the variable's codelist
    # Value-level codelists (define.xml VLM): the codelist depends on another variable,
    # e.g. by: RSTESTCD, codelists: {OVRLRESP: ONCRSR, EMDIND: NY}; values of ``by`` not
    # listed use ``codelist`` (or the variable's).
    by: str | None = None
    codelists: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _by(self) -> "MapRule":
        if bool(self.by) != bool(self.codelists):
            raise ValueError("'by' and 'codelists' go together")
        return self


class DecodeRule(_Strict):
    """The decode of a CT submission value, e.g. --TEST from --TESTCD (CT pairs them)."""

    from_: str = Field(alias="from")
    codelist: str


class Result(_Strict):
    """Standardised results (--STRESC/--STRESN/--STRESU) from original ones (SDTMIG 4.5.1)."""

    orres: str                             # variable with the original result (text)
    orresu: str | None = None              # variable with the original unit (CT value)
    testcd: str | None = None              # variable with the test code (for unit conversions)
    part: Literal["stresc", "stresn", "stresu"]
    lloq: str | None = None                # variable with the LLOQ (original unit): numbers below it -> "<LLOQ"
    below_lloq: list[str] = Field(default_factory=list)   # spellings meaning "below LLOQ", e.g. [BLQ, <LLOQ]
    blq: str = "BLQ"                       # --STRESC of those
    codelist: str | None = None            # character (non-numeric) results are mapped through it


class NrInd(_Strict):
    """--NRIND from the standardised result and range (SDTMIG 3.4 LB: LOW, NORMAL, HIGH)."""

    result: str                            # --STRESN
    low: str                               # --STNRLO
    high: str                              # --STNRHI
    text: str | None = None                # --STRESC, for results such as "<5"


class BaselineFlag(_Strict):
    """--LOBXFL: last non-missing result on or before the reference start (SDTMIG 3.4 --LOBXFL, Findings class)."""

    by: list[str]                          # e.g. [USUBJID, LBTESTCD, LBSPEC]
    date: str                              # --DTC
    result: str                            # --ORRES: a record counts only with a result
    reference: str = "RFXSTDTC"            # DM variable: first study treatment


class Case(_Strict):
    when: str | None = None                # no condition: the default
    value: str | int | float


class Duplicates(_Strict):
    """The same measurement collected on two forms: keep one record, check the other agrees."""

    by: list[str]                          # variables identifying the measurement
    keep: str                              # form whose record is kept
    compare: list[str] = Field(default_factory=list)   # variables that must agree, else a data error
    reason: str                            # counted in the reconciliation of the dropped form


class VisitRule(_Strict):
    """VISITNUM/VISIT/VISITDY from the EDC folder through study.yaml's schedule."""

    part: Literal["visitnum", "visit", "visitdy"]
    date: str | None = None                # --DTC variable; needed to number unscheduled visits
    # Numbering of unscheduled visits, an expression over PREV_VISITNUM (the last scheduled
    # visit planned on or before the record's study day), UNS_ORDINAL (the number in the
    # folder OID, UNS2 -> 2; 1 when none) and STUDY_DAY; default PREV_VISITNUM + UNS_ORDINAL / 100.
    unscheduled: str | None = None
    # VISIT of unscheduled visits, an expression over VISITNUM (and the names above);
    # default concat('UNSCHEDULED ', VISITNUM with two decimals).
    unscheduled_name: str | None = None


class StudyDayRule(_Strict):
    """--DY against a named reference: a variable of the same domain, a raw column or a DM variable."""

    date: str                              # --DTC
    reference: str = "RFSTDTC"             # e.g. RFSTDTC of the DM being built (DMDY), or a sponsor date


class Variable(VariableSpec):
    origin: str | None = None              # default from the rule (Collected, Assigned, Derived)
    when: str | None = None                # the rule applies where this holds, else missing
    case: Literal["upper", "lower", "asis"] = "asis"
    # Free text with accents or symbols (°, ×, é) cannot go into XPT v5 (ASCII only, FDA TCG
    # §4.1.5.2): `transliterate` writes their plain-ASCII spelling; anything it cannot spell
    # is still reported by the XPT check. Default: keep the text as collected.
    ascii: Literal["keep", "transliterate"] = "keep"

    assign: str | None = None
    value: str | int | float | None = None
    study: Literal["studyid", "sponsor", "title", "protocol"] | None = None
    template: str | None = None
    map: MapRule | str | None = None
    decode: DecodeRule | None = None
    lookup: Lookup | None = None
    number: str | None = None
    iso8601: IsoDate | None = None
    study_day: StudyDayRule | str | None = None
    sequence: list[str] | None = None
    epoch: str | None = None
    aggregate: Aggregate | None = None
    visit: VisitRule | Literal["visitnum", "visit", "visitdy"] | None = None
    result: Result | None = None
    nrind: NrInd | None = None
    baseline_flag: BaselineFlag | None = None
    cases: list[Case] | None = None
    dm: str | None = None                  # a DM variable of the record's subject
    # A value computed with the shared expression language (cdisc.expr), e.g.
    # "substr(PATNO, 1, 3)", "round((number(TEMP) - 32) * 5 / 9, 1)", "'Y' if present(X) else None"
    expr: str | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> "Variable":
        given = [k for k in RULE_KEYS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"variable {self.name} needs exactly one rule ({', '.join(RULE_KEYS)}); "
                             f"found {given or 'none'}")
        return self

    @field_validator("name")
    @classmethod
    def _upper(cls, v: str) -> str:
        if v != v.upper():
            raise ValueError(f"variable name {v!r} must be upper case")
        return v

    @property
    def rule(self) -> str:
        return next(k for k in RULE_KEYS if getattr(self, k) is not None)

    def meta(self, key_sequence: int | None = None) -> VariableMeta:
        return self.to_meta(origin=self.origin or _default_origin(self.rule), key_sequence=key_sequence)


class Supplemental(Variable):
    """A non-standard variable, written to SUPP-- (SDTMIG 3.4 §8.4)."""

    name: str = Field(alias="qnam")
    label: str = Field(alias="qlabel")
    qorig: str | None = None               # defaults from the rule: CRF -> Collected, else Derived
    qeval: str | None = None               # evaluator, e.g. INVESTIGATOR, for Assessed values


class DomainSpec(_Strict):
    domain: str
    label: str
    class_: str = Field(alias="class")
    structure: str
    keys: list[str]
    sort: list[str] | None = None          # record order and --SEQ order (defaults to keys)
    subject_level: bool = False            # DM: one record per subject, SUPP IDVAR blank
    sources: list[Source]
    variables: list[Variable]
    supplemental: list[Supplemental] = Field(default_factory=list)
    # Helper variables: computed with any rule, usable by later rules, conditions and the
    # --SEQ order, never written (no label needed).
    helpers: list["Helper"] = Field(default_factory=list)
    duplicates: list[Duplicates] = Field(default_factory=list)
    # Integrity: every --DTC of the domain is on or after DM.RFICDTC unless allowed here
    # (e.g. medical history, prior medication), with the reason.
    dates_before_consent_allowed: bool = False
    dates_before_consent_reason: str | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        # RELREC is the one SDTMIG dataset built from a spec whose name is not a domain code
        # (SDTMIG 3.4 §8.2); SUPP-- datasets are derived from the parent's supplemental list.
        if not (v.isalnum() and v.isupper() and (2 <= len(v) <= 4 or v == "RELREC")):
            raise ValueError("domain must be a 2-4 character upper-case code, e.g. AE, or RELREC")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "DomainSpec":
        names = [v.name for v in self.variables]
        check_variable_list(names, self.keys, self.sort, "domain")
        if self.dates_before_consent_allowed and not (self.dates_before_consent_reason or "").strip():
            raise ValueError("dates_before_consent_allowed needs dates_before_consent_reason")
        qn = [s.name for s in self.supplemental]
        clash = sorted(set(qn) & set(names))
        if clash:
            raise ValueError(f"supplemental QNAMs repeat standard variables: {clash}")
        hn = [h.name for h in self.helpers]
        clash = sorted(set(hn) & (set(names) | set(qn))) + sorted({h for h in hn if hn.count(h) > 1})
        if clash:
            raise ValueError(f"helper names repeat variables or each other: {clash}")
        return self

    def meta(self) -> DatasetMeta:
        keyseq = {k: i + 1 for i, k in enumerate(self.keys)}
        return DatasetMeta(name=self.domain, label=self.label,
                           variables=[v.meta(keyseq.get(v.name)) for v in self.variables],
                           keys=self.keys, structure=self.structure, standard="SDTM",
                           **{"class": self.class_})


class Helper(Variable):
    """A helper (intermediate) variable: any rule, never written to the dataset."""

    label: str = "helper variable (not written)"


DomainSpec.model_rebuild()


def _default_origin(rule: str) -> str:
    return {"assign": "Collected", "map": "Collected", "number": "Collected", "iso8601": "Collected",
            "value": "Assigned", "study": "Assigned", "lookup": "Assigned", "visit": "Assigned",
            "decode": "Assigned"}.get(rule, "Derived")
