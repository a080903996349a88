"""Trial design datasets TA, TE, TV, TI and TS (SDTMIG 3.4 §7) from the study specs.

Nothing here is study-specific: the arms, elements and visit schedule come from
``specs/study.yaml`` (``cdisc.study.Study``), the protocol text around them (branch
rules, visit rules, inclusion/exclusion criteria, trial summary parameters) from
``specs/trial_design.yaml`` (``TrialDesign`` below), and the terms and C-codes from the
CDISC CT subset (``cdisc.ct.Terminology``).

Public interface::

    load_trial_design(specs_dir) -> TrialDesign
    build_trial_design(study, design, ct, *, overrides=None)
        -> {"TA": (df, meta), "TE": ..., "TV": ..., "TI": ..., "TS": ...}
    ts_values_from_dm(dm) -> {"ACTSUB": "9", "SSTDTC": "2024-03-06"}   # for ``overrides``
"""
from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError,
                      field_validator, model_validator)

from cdisc.iso8601 import is_iso8601
from cdisc.ct import Terminology
from cdisc.errors import Problem, SpecError
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.specio import load_model
from cdisc.study import Study

__all__ = [
    "TrialDesign", "TsParameter", "Criterion", "load_trial_design", "build_trial_design",
    "build_ta", "build_te", "build_tv", "build_ti", "build_ts", "ta_meta", "te_meta", "tv_meta",
    "ti_meta", "ts_meta", "ts_values_from_dm", "split_text", "shift_study_day", "NULL_FLAVORS",
    "TS_RESPONSE_CODELISTS",
]

SPEC_FILE = "specs/trial_design.yaml"
STUDY_FILE = "specs/study.yaml"
MAX_TEXT = 200      # SDTMIG 3.4 §4.5.3.2 / XPT v5: a character value holds at most 200 bytes

# ISO 21090 NullFlavor enumeration (SDTMIG 3.4 §7.4.2.1), the values TSVALNF may take.
NULL_FLAVORS = ("NI", "INV", "OTH", "PINF", "NINF", "UNC", "DER", "UNK", "ASKU", "NAV",
                "NASK", "QS", "TRC", "MSK", "NA")

# TSPARMCD -> codelist of its TSVAL (the CDISC TS codetable, SDTMIG 3.4 TS assumption 8).
# For these the build takes TSVALCD from the term and TSVCDREF = "CDISC CT".
_NY = ("ADDON", "ADAPT", "RANDOM", "HLTSUBJI", "EXTTIND", "PDSTIND", "PDPSTIND", "PIPIND",
       "RDIND", "ONGOSIND", "FDADRIND", "FDADEIND", "DMCIND", "SSTDYIND", "EPDISIND",
       "BIOSPRET", "PASSIND", "EGBLIND", "EGCTMON", "EGLEADSM")
TS_RESPONSE_CODELISTS: dict[str, str] = {
    **{p: "NY" for p in _NY},
    "TPHASE": "TPHASE", "TTYPE": "TTYPE", "INTTYPE": "INTTYPE", "INTMODEL": "INTMODEL",
    "TBLIND": "TBLIND", "TCNTRL": "TCNTRL", "STYPE": "STYPE", "TINDTP": "TINDTP",
    "SEXPOP": "SEXPOP", "ROUTE": "ROUTE", "DOSFRM": "FRM", "DOSFRQ": "FREQ", "DOSU": "UNIT",
}
# Parameters whose TSVAL is an ISO 8601 date or duration (SDTMIG 3.4 TS examples 1, 3, 4).
ISO_DATE_PARAMS = ("SSTDTC", "SENDTC", "DCUTDTC", "CSRARDTC")
ISO_DURATION_PARAMS = ("AGEMIN", "AGEMAX", "LENGTH", "SDMDUR", "CRMDUR", "PLNTRDUR",
                       "PTRTDUR", "TRGFUDUR")
NUMERIC_PARAMS = ("PLANSUB", "ACTSUB", "NARMS", "NCOHORT", "DOSE", "RANDQT", "NUMSEUST")
COUNTRY_PARAMS = ("FCNTRY", "MNFCNTRY")
CDISC_CT_REF = "CDISC CT"
ISO8601_REF = "ISO 8601"
ISO3166_REF = "ISO 3166-1 Alpha-3"

_ISO_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
_ISO_DURATION = re.compile(r"^P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


# =========================================================================================
# The spec model (specs/trial_design.yaml)
# =========================================================================================

def _text(value: str) -> str:
    """Collapse blanks (YAML folded text) and refuse non-ASCII (FDA TCG: XPT text is ASCII)."""
    value = " ".join(str(value).split())
    bad = sorted({c for c in value if ord(c) > 127})
    if bad:
        raise ValueError(f"non-ASCII characters {bad}: write them in ASCII (e.g. '>=' for the symbol)")
    return value


Text = Annotated[str, AfterValidator(_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TsParameter(_Strict):
    """One TS record: the parameter and exactly one of value / null flavor / derivation."""

    parmcd: str
    # A YAML number is read as its text (_scalar below); the JSON Schema says so for editors.
    value: Text | None = Field(default=None, json_schema_extra={"anyOf": [{"type": "string"}, {"type": "number"},
                                                                         {"type": "null"}]})
    valnf: Literal[NULL_FLAVORS] | None = None   # type: ignore[valid-type]
    derive: Literal["studyid", "title", "sponsor", "data_cut", "narms", "arm_doses"] | None = None
    grpid: Text | None = None
    valcd: Text | None = None
    vcdref: Text | None = None
    vcdver: Text | None = None

    @field_validator("parmcd")
    @classmethod
    def _parmcd(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Z][A-Z0-9]{0,7}", v):
            raise ValueError("TSPARMCD is 1-8 upper-case letters/digits starting with a letter")
        return v

    @field_validator("value", mode="before")
    @classmethod
    def _scalar(cls, v: object) -> object:
        # YAML turns yes/no into booleans and 2024-03-06 into a date: make the intent explicit.
        if isinstance(v, bool):
            raise ValueError("a YAML boolean: quote Y/N values (\"Y\")")
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, (int, float)):
            return str(v)
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "TsParameter":
        given = [k for k in ("value", "valnf", "derive") if getattr(self, k) not in (None, "")]
        if len(given) != 1:
            raise ValueError(f"TS parameter {self.parmcd} needs exactly one of value, valnf, derive "
                             f"(got {', '.join(given) or 'none'}); give valnf (e.g. NA) when there is no value")
        if self.valnf and (self.valcd or self.vcdref or self.vcdver):
            raise ValueError(f"TS parameter {self.parmcd}: no valcd/vcdref/vcdver with a null flavor "
                             "(SDTMIG 3.4 TS example 3)")
        return self


class Criterion(_Strict):
    """One inclusion or exclusion criterion (a TI record)."""

    ietestcd: str
    iecat: str
    ietest: Annotated[Text, Field(max_length=MAX_TEXT)]

    @field_validator("ietestcd")
    @classmethod
    def _testcd(cls, v: str) -> str:
        # SDTMIG 3.4 TI: <= 8 characters, not starting with a digit, letters/digits/underscore.
        if not re.fullmatch(r"[A-Z][A-Z0-9_]{0,7}", v):
            raise ValueError("IETESTCD is 1-8 upper-case letters, digits or '_' starting with a letter")
        return v


class InclusionExclusion(_Strict):
    version: Text                                   # TIVERS
    criteria: list[Criterion] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "InclusionExclusion":
        codes = [c.ietestcd for c in self.criteria]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"duplicate ietestcd {dup} (TI assumption 3: a changed criterion gets a new code)")
        return self


class TrialArms(_Strict):
    branch_element: str | None = None               # ETCD whose end is the branch point
    branch: dict[str, Text] = Field(default_factory=dict)        # ARMCD -> TABRANCH
    transitions: dict[str, Text] = Field(default_factory=dict)   # ETCD -> TATRANS


_TEMPLATE_FIELDS = ("visit", "day", "earliest", "latest", "before", "after", "anchor")


def _template(value: str) -> str:
    value = _text(value)
    for _, name, spec, conv in string.Formatter().parse(value):
        if name is None:
            continue
        if name not in _TEMPLATE_FIELDS or spec or conv:
            raise ValueError(f"placeholder {{{name}}} is not one of "
                             + ", ".join(f"{{{f}}}" for f in _TEMPLATE_FIELDS))
    return value


Template = Annotated[str, AfterValidator(_template)]


class VisitRule(_Strict):
    visitnum: float
    start: Text                                      # TVSTRL
    end: Text | None = None                          # TVENRL


class TrialVisits(_Strict):
    anchor: Text = "the first dose of study treatment"
    start_template: Template
    end_template: Template | None = None
    rules: list[VisitRule] = Field(default_factory=list)


class TrialDesign(_Strict):
    """specs/trial_design.yaml: the protocol text of the trial design datasets."""

    trial_arms: TrialArms = Field(default_factory=TrialArms)
    trial_visits: TrialVisits
    inclusion_exclusion: InclusionExclusion
    trial_summary: list[TsParameter] = Field(min_length=1)
    _file: str = PrivateAttr(default=SPEC_FILE)


def load_trial_design(specs_dir: Path) -> TrialDesign:
    """Read and validate ``specs/trial_design.yaml``.

    Args:
        specs_dir: the study's specs folder.

    Returns the validated ``TrialDesign``. A missing file, a YAML error, an unknown key,
    a TS entry with neither value nor null flavor, non-ASCII text, ... raise
    ``SpecError`` naming the file and the key path (e.g. ``trial_summary[3]``).
    """
    path = Path(specs_dir) / "trial_design.yaml"
    design = load_model(TrialDesign, path, display=SPEC_FILE)
    design._file = SPEC_FILE
    return design


# =========================================================================================
# Dataset metadata (SDTMIG 3.4 §7 specification tables)
# =========================================================================================

def _meta(name: str, label: str, structure: str, keys: list[str],
          variables: list[tuple]) -> DatasetMeta:
    """DatasetMeta from (name, label, type, core, codelist, origin) rows."""
    return DatasetMeta(
        name=name, label=label, keys=keys, structure=structure, standard="SDTM",
        variables=[VariableMeta(name=n, label=lab, type=t, core=core, codelist=cl, origin=org,
                                key_sequence=(keys.index(n) + 1) if n in keys else None)
                   for n, lab, t, core, cl, org in variables],
        **{"class": "TRIAL DESIGN"})


_ID = [("STUDYID", "Study Identifier", "Char", "Req", None, "Protocol"),
       ("DOMAIN", "Domain Abbreviation", "Char", "Req", None, "Assigned")]


def ta_meta() -> DatasetMeta:
    return _meta("TA", "Trial Arms", "One record per planned Element per Arm",
                 ["STUDYID", "ARMCD", "TAETORD"], _ID + [
                     ("ARMCD", "Planned Arm Code", "Char", "Req", None, "Protocol"),
                     ("ARM", "Description of Planned Arm", "Char", "Req", None, "Protocol"),
                     ("TAETORD", "Planned Order of Element within Arm", "Num", "Req", None, "Protocol"),
                     ("ETCD", "Element Code", "Char", "Req", None, "Protocol"),
                     ("ELEMENT", "Description of Element", "Char", "Perm", None, "Protocol"),
                     ("TABRANCH", "Branch", "Char", "Exp", None, "Protocol"),
                     ("TATRANS", "Transition Rule", "Char", "Exp", None, "Protocol"),
                     ("EPOCH", "Epoch", "Char", "Req", "EPOCH", "Protocol")])


def te_meta() -> DatasetMeta:
    return _meta("TE", "Trial Elements", "One record per planned Element",
                 ["STUDYID", "ETCD"], _ID + [
                     ("ETCD", "Element Code", "Char", "Req", None, "Protocol"),
                     ("ELEMENT", "Description of Element", "Char", "Req", None, "Protocol"),
                     ("TESTRL", "Rule for Start of Element", "Char", "Req", None, "Protocol"),
                     ("TEENRL", "Rule for End of Element", "Char", "Perm", None, "Protocol"),
                     ("TEDUR", "Planned Duration of Element", "Char", "Perm", None, "Protocol")])


def tv_meta() -> DatasetMeta:
    # ARM (Perm) is left out: it would be blank on every record (TV assumption 1).
    return _meta("TV", "Trial Visits", "One record per planned Visit per Arm",
                 ["STUDYID", "VISITNUM", "ARMCD"], _ID + [
                     ("VISITNUM", "Visit Number", "Num", "Req", None, "Protocol"),
                     ("VISIT", "Visit Name", "Char", "Req", None, "Protocol"),
                     ("VISITDY", "Planned Study Day of Visit", "Num", "Perm", None, "Protocol"),
                     ("ARMCD", "Planned Arm Code", "Char", "Exp", None, "Protocol"),
                     ("TVSTRL", "Visit Start Rule", "Char", "Req", None, "Protocol"),
                     ("TVENRL", "Visit End Rule", "Char", "Perm", None, "Protocol")])


def ti_meta() -> DatasetMeta:
    return _meta("TI", "Trial Inclusion/Exclusion Criteria", "One record per I/E criterion",
                 ["STUDYID", "IETESTCD", "TIVERS"], _ID + [
                     ("IETESTCD", "Incl/Excl Criterion Short Name", "Char", "Req", None, "Protocol"),
                     ("IETEST", "Inclusion/Exclusion Criterion", "Char", "Req", None, "Protocol"),
                     ("IECAT", "Inclusion/Exclusion Category", "Char", "Req", "IECAT", "Protocol"),
                     ("TIVERS", "Protocol Criteria Versions", "Char", "Perm", None, "Protocol")])


def ts_meta(n_extra_values: int = 0) -> DatasetMeta:
    """TS metadata; ``n_extra_values`` TSVAL1..TSVALn columns follow TSVAL (TS assumption 4)."""
    extra = [(f"TSVAL{i}", f"Parameter Value {i}", "Char", "Perm", None, "Protocol")
             for i in range(1, n_extra_values + 1)]
    return _meta("TS", "Trial Summary", "One record per trial summary parameter value",
                 ["STUDYID", "TSPARMCD", "TSSEQ"], _ID + [
                     ("TSSEQ", "Sequence Number", "Num", "Req", None, "Derived"),
                     ("TSGRPID", "Group ID", "Char", "Perm", None, "Protocol"),
                     ("TSPARMCD", "Trial Summary Parameter Short Name", "Char", "Req", "TSPARMCD", "Protocol"),
                     ("TSPARM", "Trial Summary Parameter", "Char", "Req", "TSPARM", "Protocol"),
                     ("TSVAL", "Parameter Value", "Char", "Exp", None, "Protocol"),
                     *extra,
                     ("TSVALNF", "Parameter Value Null Flavor", "Char", "Perm", None, "Protocol"),
                     ("TSVALCD", "Parameter Value Code", "Char", "Exp", None, "Assigned"),
                     ("TSVCDREF", "Name of the Reference Terminology", "Char", "Exp", "DICTNAM", "Assigned"),
                     ("TSVCDVER", "Version of the Reference Terminology", "Char", "Exp", None, "Assigned")])


# =========================================================================================
# Builders
# =========================================================================================

def _str_frame(data: list[dict] | pd.DataFrame, columns: list[str], num: tuple[str, ...] = ()) -> pd.DataFrame:
    """Columns ``columns`` with Char as ``str`` (blank -> NaN, the missing value) and Num as float64."""
    df = (data if isinstance(data, pd.DataFrame) else pd.DataFrame.from_records(data, columns=columns))
    df = df[columns].copy()
    for c in columns:
        if c in num:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
        else:
            s = df[c].astype("object")
            s = s.where(s.notna() & s.astype("str").str.strip().ne(""), None)
            df[c] = s.astype("str").where(s.notna())
    return df


def build_te(study: Study) -> pd.DataFrame:
    """TE: one record per planned element, from ``study.elements``.

    Args:
        study: the study definition (``elements``: etcd, element, rule_start, rule_end,
            duration).

    Algorithm:
        1. ETCD, ELEMENT, TESTRL = rule_start, TEENRL = rule_end, TEDUR = duration, in
           study.yaml order.
        2. Check SDTMIG 3.4 §7.2.2: ETCD <= 8 characters and unique, TESTRL present (Req),
           at least one of TEENRL and TEDUR (TE assumption 12), TEDUR an ISO 8601 duration.
    """
    problems: list[Problem] = []
    if not study.elements:
        problems.append(Problem("no elements: TE and TA need the trial elements", file=STUDY_FILE,
                                key="elements"))
    codes = [e.etcd for e in study.elements]
    for i, e in enumerate(study.elements):
        key = f"elements[{i}]"
        if len(e.etcd) > 8 or codes.count(e.etcd) > 1:
            problems.append(Problem(f"ETCD {e.etcd!r} must be unique and at most 8 characters",
                                    file=STUDY_FILE, key=f"{key}.etcd"))
        if not e.rule_start:
            problems.append(Problem(f"element {e.etcd} has no rule_start (TESTRL is required)",
                                    file=STUDY_FILE, key=f"{key}.rule_start"))
        if not e.rule_end and not e.duration:
            problems.append(Problem(f"element {e.etcd} needs rule_end or duration (TE assumption 12)",
                                    file=STUDY_FILE, key=key))
        if e.duration and not _ISO_DURATION.match(e.duration):
            problems.append(Problem(f"duration {e.duration!r} is not an ISO 8601 duration (e.g. P28D)",
                                    file=STUDY_FILE, key=f"{key}.duration"))
    if problems:
        raise SpecError(problems)
    records = [{"ETCD": e.etcd, "ELEMENT": e.element, "TESTRL": e.rule_start,
                "TEENRL": e.rule_end, "TEDUR": e.duration} for e in study.elements]
    df = _str_frame(records, ["ETCD", "ELEMENT", "TESTRL", "TEENRL", "TEDUR"])
    return _with_ids(df, study, "TE", te_meta())


def build_ta(study: Study, design: TrialDesign) -> pd.DataFrame:
    """TA: one record per planned element per arm (every arm runs through every element).

    Args:
        study: arms (armcd, arm) and elements (etcd, element, epoch), in planned order.
        design: ``trial_arms``: the branch element, TABRANCH per ARMCD, TATRANS per ETCD.

    Algorithm:
        1. Cross join arms x elements; TAETORD = the element's position in study.yaml
           (1, 2, ...), the same order SE uses (SDTMIG 3.4 TA assumption 1).
        2. TABRANCH = the arm's branch text on the branch element only (TA assumption 3:
           the branch is associated with the element that ends at the decision point).
        3. TATRANS = the transition text of the element, in every arm (TA assumption 7).
        4. Sort by arm (study.yaml order), then TAETORD.
    """
    ta_spec = design.trial_arms
    file = design._file
    problems: list[Problem] = []
    armcds = [a.armcd for a in study.arms]
    etcds = [e.etcd for e in study.elements]
    for i, a in enumerate(study.arms):
        if len(a.armcd) > 20:   # SDTMIG 3.4 TA: ARMCD at most 20 characters
            problems.append(Problem(f"ARMCD {a.armcd!r} is longer than 20 characters",
                                    file=STUDY_FILE, key=f"arms[{i}].armcd"))
    if ta_spec.branch_element is not None and ta_spec.branch_element not in etcds:
        problems.append(Problem(f"branch_element {ta_spec.branch_element!r} is not an element of study.yaml",
                                file=file, key="trial_arms.branch_element", hint=f"one of {etcds}"))
    if ta_spec.branch and ta_spec.branch_element is None:
        problems.append(Problem("branch texts need a branch_element", file=file, key="trial_arms.branch"))
    problems += [Problem(f"arm {k!r} is not in study.yaml arms", file=file, key=f"trial_arms.branch.{k}",
                         hint=f"one of {armcds}") for k in ta_spec.branch if k not in armcds]
    problems += [Problem(f"element {k!r} is not in study.yaml elements", file=file,
                         key=f"trial_arms.transitions.{k}", hint=f"one of {etcds}")
                 for k in ta_spec.transitions if k not in etcds]
    if problems:
        raise SpecError(problems)

    arms = pd.DataFrame({"ARMCD": armcds, "ARM": [a.arm for a in study.arms],
                         "__arm_order": range(len(armcds))})
    elements = pd.DataFrame({"TAETORD": np.arange(1, len(etcds) + 1, dtype="float64"), "ETCD": etcds,
                             "ELEMENT": [e.element for e in study.elements],
                             "EPOCH": [e.epoch for e in study.elements]})
    ta = arms.merge(elements, how="cross")
    on_branch = ta["ETCD"].eq(ta_spec.branch_element) if ta_spec.branch_element else False
    ta["TABRANCH"] = ta["ARMCD"].map(ta_spec.branch).where(on_branch)
    ta["TATRANS"] = ta["ETCD"].map(ta_spec.transitions)
    ta = ta.sort_values(["__arm_order", "TAETORD"], kind="stable").reset_index(drop=True)
    cols = ["ARMCD", "ARM", "TAETORD", "ETCD", "ELEMENT", "TABRANCH", "TATRANS", "EPOCH"]
    ta = _str_frame(ta, cols, num=("TAETORD",))
    return _with_ids(ta, study, "TA", ta_meta())


def shift_study_day(day: pd.Series, offset: pd.Series) -> pd.Series:
    """Study day ``day`` moved by ``offset`` days on a calendar without day 0.

    SDTMIG 3.4 §4.4.4: day 1 is the reference start, the day before it is day -1. A move
    that crosses from negative to non-negative skips 0 (-1 + 1 = 1), and back (1 - 1 = -1).
    """
    d = day.astype("float64")
    r = d + offset.astype("float64")
    r = np.where((d < 0) & (r >= 0), r + 1, r)
    r = np.where((d > 0) & (r <= 0), r - 1, r)
    return pd.Series(r, index=day.index, dtype="float64")


def _render(template: str, fields: Mapping[str, pd.Series], index: pd.Index) -> pd.Series:
    """Fill a ``{placeholder}`` template column-wise (no per-row formatting, no str.format).

    The template was checked at load time to use only known placeholders without format
    specs, so this is plain concatenation of literals and text columns.
    """
    out = pd.Series("", index=index, dtype="str")
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        out = out + literal
        if name is not None:
            out = out + fields[name]
    return out


def _int_text(s: pd.Series) -> pd.Series:
    """Whole numbers as text ('-14', '28'); missing stays missing."""
    return s.astype("Int64").astype("str").where(s.notna())


def build_tv(study: Study, design: TrialDesign) -> pd.DataFrame:
    """TV: one record per planned visit; the schedule is the same for all arms.

    Args:
        study: ``visits`` (visitnum, visit, day, window_before, window_after).
        design: ``trial_visits``: rule templates and per-visit rules.

    Algorithm:
        1. VISITNUM, VISIT, VISITDY (= planned day) from study.yaml; ARMCD blank because
           all arms share the schedule (SDTMIG 3.4 TV assumption 1).
        2. Window: earliest = day - window_before, latest = day + window_after, counted
           without day 0 (``shift_study_day``); a missing window counts as 0.
        3. TVSTRL/TVENRL = the templates filled with visit, day, earliest, latest, before,
           after and anchor (TV assumption 3: the rule reflects the protocol wording).
        4. A ``rules`` entry replaces both rules of its VISITNUM. A visit with no planned
           day and no rule is a SpecError (TVSTRL is required).
    """
    tv_spec = design.trial_visits
    file = design._file
    v = pd.DataFrame([vis.model_dump() for vis in study.visits])
    known = set(v["visitnum"].tolist())
    problems = [Problem(f"visitnum {r.visitnum:g} is not a visit of study.yaml", file=file,
                        key=f"trial_visits.rules[{i}].visitnum")
                for i, r in enumerate(tv_spec.rules) if r.visitnum not in known]
    rule_start = {r.visitnum: r.start for r in tv_spec.rules}
    rule_end = {r.visitnum: r.end for r in tv_spec.rules}
    has_rule = v["visitnum"].isin(list(rule_start))
    day = pd.to_numeric(v["day"], errors="coerce")
    before = pd.to_numeric(v["window_before"], errors="coerce").fillna(0)
    after = pd.to_numeric(v["window_after"], errors="coerce").fillna(0)
    no_day = day.isna() & ~has_rule
    problems += [Problem(f"visit {name!r} (VISITNUM {num:g}) has no planned day, so its rule cannot be "
                         "generated", file=file, key="trial_visits.rules",
                         hint="add {visitnum: ..., start: ..., end: ...} for it")
                 for name, num in zip(v.loc[no_day, "visit"], v.loc[no_day, "visitnum"])]
    if problems:
        raise SpecError(problems)

    fields = {"visit": v["visit"].astype("str"), "day": _int_text(day),
              "earliest": _int_text(shift_study_day(day, -before)),
              "latest": _int_text(shift_study_day(day, after)),
              "before": _int_text(before), "after": _int_text(after),
              "anchor": pd.Series(tv_spec.anchor, index=v.index, dtype="str")}
    start = _render(tv_spec.start_template, fields, v.index)
    end = (_render(tv_spec.end_template, fields, v.index) if tv_spec.end_template
           else pd.Series(np.nan, index=v.index, dtype="str"))
    tv = pd.DataFrame({
        "VISITNUM": v["visitnum"].astype("float64"), "VISIT": v["visit"].astype("str"),
        "VISITDY": day.astype("float64"), "ARMCD": pd.Series(np.nan, index=v.index, dtype="str"),
        "TVSTRL": start.where(~has_rule, v["visitnum"].map(rule_start)),
        "TVENRL": end.where(~has_rule, v["visitnum"].map(rule_end)),
    })
    tv = _str_frame(tv, list(tv.columns), num=("VISITNUM", "VISITDY"))
    tv = tv.sort_values("VISITNUM", kind="stable").reset_index(drop=True)
    return _with_ids(tv, study, "TV", tv_meta())


def build_ti(study: Study, design: TrialDesign, ct: Terminology) -> pd.DataFrame:
    """TI: one record per inclusion/exclusion criterion of the protocol version.

    Args:
        study: STUDYID.
        design: ``inclusion_exclusion`` (version, criteria: ietestcd, iecat, ietest).
        ct: terminology; IECAT must be a term of codelist IECAT (non-extensible).

    Algorithm: IETESTCD, IETEST (<= 200 characters, checked at load; SDTMIG 3.4 TI
    assumption 5), IECAT, TIVERS = the version; YAML order (inclusions first).
    """
    ie = design.inclusion_exclusion
    allowed = ct["IECAT"].values if "IECAT" in ct else ["INCLUSION", "EXCLUSION"]
    problems = [Problem(f"iecat {c.iecat!r} is not in codelist IECAT", file=design._file,
                        key=f"inclusion_exclusion.criteria[{i}].iecat", hint=f"use one of {allowed}")
                for i, c in enumerate(ie.criteria) if c.iecat not in allowed]
    if problems:
        raise SpecError(problems)
    records = [{"IETESTCD": c.ietestcd, "IETEST": c.ietest, "IECAT": c.iecat, "TIVERS": ie.version}
               for c in ie.criteria]
    ti = _str_frame(records, ["IETESTCD", "IETEST", "IECAT", "TIVERS"])
    return _with_ids(ti, study, "TI", ti_meta())


def _ct_version(ct: Terminology) -> str | None:
    """The SDTM CT package date ('SDTM CT 2024-03-29; ...' -> '2024-03-29') for TSVCDVER."""
    m = re.search(r"SDTM CT (\d{4}-\d{2}-\d{2})", ct.package or "")
    return m.group(1) if m else None


def _fmt_number(x: float) -> str:
    return f"{x:g}"


def _derived(p: TsParameter, study: Study) -> list[dict]:
    """Records of a ``derive:`` parameter (values taken from study.yaml)."""
    if p.derive == "studyid":
        return [{"TSVAL": study.studyid}]
    if p.derive == "title":
        return [{"TSVAL": _text(study.title)}]
    if p.derive == "sponsor":
        return [{"TSVAL": _text(study.sponsor)}]
    if p.derive == "data_cut":
        return [{"TSVAL": study.data_cut.isoformat()}]
    if p.derive == "narms":
        return [{"TSVAL": str(len(study.arms))}]
    # arm_doses: one record per arm, tied to the arm by TSGRPID (SDTMIG 3.4 TS assumption 13)
    return [{"TSVAL": None if a.dose is None else _fmt_number(a.dose),
             "TSVALNF": "UNK" if a.dose is None else None, "TSGRPID": a.armcd} for a in study.arms]


def _check_value(parmcd: str, value: str, ct: Terminology, key: str,
                 file: str | None) -> tuple[dict, list[Problem]]:
    """TSVALCD/TSVCDREF/TSVCDVER for one value, and the problems with the value itself."""
    problems: list[Problem] = []
    coded: dict = {}
    if len(value) > 0 and not value.isascii():
        problems.append(Problem("value is not ASCII", file=file, key=key))
    if parmcd in TS_RESPONSE_CODELISTS:
        name = TS_RESPONSE_CODELISTS[parmcd]
        if name not in ct:
            problems.append(Problem(f"codelist {name} (values of {parmcd}) is not in the CT subset",
                                    file=file, key=key, hint="check the codelist name, or define it under codelists in specs/ct/study-ct.yaml"))
            return coded, problems
        terms = {t.value: t for t in ct[name].terms}
        term = terms.get(value)
        if term is None:
            shown = list(terms)[:15]
            problems.append(Problem(f"{value!r} is not a term of codelist {name} for {parmcd}", file=file,
                                    key=key, hint=f"use one of {shown}{' ...' if len(terms) > 15 else ''}"))
            return coded, problems
        # A term without a C-code in our CT file (2024-only term) keeps TSVALCD blank: never invented.
        coded = {"TSVALCD": term.code, "TSVCDREF": CDISC_CT_REF, "TSVCDVER": _ct_version(ct)}
    elif parmcd in ISO_DATE_PARAMS:
        if not _ISO_DATE.match(value) or not is_iso8601(value):     # the format, and a real calendar day
            problems.append(Problem(f"{parmcd} {value!r} is not an ISO 8601 date (YYYY-MM-DD)",
                                    file=file, key=key))
        coded = {"TSVCDREF": ISO8601_REF}
    elif parmcd in ISO_DURATION_PARAMS:
        if not _ISO_DURATION.match(value):
            problems.append(Problem(f"{parmcd} {value!r} is not an ISO 8601 duration (e.g. P17Y)",
                                    file=file, key=key))
        coded = {"TSVCDREF": ISO8601_REF}
    elif parmcd in COUNTRY_PARAMS:
        if not re.fullmatch(r"[A-Z]{3}", value):
            problems.append(Problem(f"{parmcd} {value!r} is not an ISO 3166-1 alpha-3 code",
                                    file=file, key=key))
        coded = {"TSVCDREF": ISO3166_REF}
    elif parmcd in NUMERIC_PARAMS and not _NUMBER.match(value):
        problems.append(Problem(f"{parmcd} {value!r} is not a number", file=file, key=key))
    return coded, problems


def _apply_overrides(design: TrialDesign, overrides: Mapping[str, object] | None
                     ) -> tuple[list[TsParameter], dict[int, str]]:
    """The TS parameters with build-time values (e.g. ACTSUB from DM) in place of the YAML ones.

    Returns the parameters and {position: TSPARMCD} of the replaced ones (for messages).
    """
    params = list(design.trial_summary)
    replaced: dict[int, str] = {}
    problems: list[Problem] = []
    for parmcd, value in (overrides or {}).items():
        where = [i for i, p in enumerate(params) if p.parmcd == parmcd]
        if len(where) != 1 or params[where[0]].derive:
            problems.append(Problem(f"override {parmcd}: the spec must have exactly one non-derived "
                                    f"{parmcd} record to replace (found {len(where)})",
                                    file=design._file, key="trial_summary",
                                    hint=f"add {{parmcd: {parmcd}, value: ...}} to the spec"))
            continue
        try:
            params[where[0]] = TsParameter(parmcd=parmcd, value=value, grpid=params[where[0]].grpid)
        except ValidationError as exc:
            problems.append(Problem(f"override {parmcd}={value!r}: {exc.errors()[0]['msg']}",
                                    key=f"overrides.{parmcd}"))
            continue
        replaced[where[0]] = parmcd
    if problems:
        raise SpecError(problems)
    return params, replaced


def build_ts(study: Study, design: TrialDesign, ct: Terminology,
             overrides: Mapping[str, object] | None = None) -> pd.DataFrame:
    """TS: one record per trial summary parameter value.

    Args:
        study: STUDYID and the values ``derive:`` entries take (title, sponsor, data cut,
            number of arms, dose per arm).
        design: ``trial_summary`` entries, in output order.
        ct: terminology: TSPARMCD/TSPARM and the response codelists with C-codes.
        overrides: TSPARMCD -> value known only at build time (ACTSUB, SSTDTC from DM);
            each replaces the single YAML record of that parameter.

    Algorithm (SDTMIG 3.4 §7.4.2 and TS assumptions; FDA TCG TS parameters):
        1. Every TSPARMCD must be a term of CT TSPARMCD (extensible: sponsor terms come
           from study-ct.yaml); TSPARM = its CDISC decode (the paired TSPARM term).
        2. TSVAL from ``value``, ``derive`` (study.yaml) or blank with TSVALNF = the null
           flavor (TS assumption 10).
        3. Values of CT-coded parameters must be terms of their codelist
           (``TS_RESPONSE_CODELISTS``): TSVALCD = C-code, TSVCDREF = "CDISC CT",
           TSVCDVER = the SDTM CT package date (TS assumption 9). ISO 8601 dates and
           durations are checked and get TSVCDREF "ISO 8601", countries "ISO 3166-1 Alpha-3"
           (SDTMIG 3.4 TS example 1); explicit valcd/vcdref/vcdver in the YAML win for the others.
        4. TSSEQ = 1, 2, ... within TSPARMCD in YAML order (TS assumption 12).
        5. TSVAL longer than 200 characters is split at word boundaries into TSVAL,
           TSVAL1, ..., TSVALn (TS assumption 4, SDTMIG 3.4 §4.5.3.2).
    All problems are collected and raised together as one SpecError.
    """
    file = design._file
    params, replaced = _apply_overrides(design, overrides)
    problems: list[Problem] = []
    decode = ct["TSPARMCD"].decode_of() if "TSPARMCD" in ct else {}
    records: list[dict] = []
    for i in sorted(replaced):                 # a value the build replaces must still be a valid one
        orig = design.trial_summary[i]
        if orig.value:
            problems += _check_value(orig.parmcd, orig.value, ct, f"trial_summary[{i}].value", file)[1]
    for i, p in enumerate(params):             # loop over spec entries, not data records
        key = f"trial_summary[{i}]"
        if p.parmcd not in decode:
            problems.append(Problem(f"TSPARMCD {p.parmcd!r} is not in CT codelist TSPARMCD", file=file,
                                    key=f"{key}.parmcd",
                                    hint="use a CDISC parameter or add it under extensions.TSPARMCD "
                                         "in specs/ct/study-ct.yaml"))
            continue
        base = {"TSPARMCD": p.parmcd, "TSPARM": decode[p.parmcd], "TSGRPID": p.grpid,
                "TSVAL": None, "TSVALNF": None, "TSVALCD": None, "TSVCDREF": None, "TSVCDVER": None}
        if p.valnf:
            rows = [{"TSVALNF": p.valnf}]
        elif p.derive:
            rows = _derived(p, study)
        else:
            rows = [{"TSVAL": p.value}]
        for row in rows:
            rec = {**base, **row}
            if rec["TSVAL"]:
                where = (f"overrides.{p.parmcd}" if i in replaced
                         else f"{key}.{'derive' if p.derive else 'value'}")
                coded, found = _check_value(p.parmcd, rec["TSVAL"], ct, where,
                                            None if i in replaced else file)
                problems += found
                if coded and (p.valcd or p.vcdref or p.vcdver) and p.parmcd in TS_RESPONSE_CODELISTS:
                    problems.append(Problem(f"{p.parmcd} is CDISC CT: TSVALCD/TSVCDREF/TSVCDVER come from "
                                            "the CT file, remove valcd/vcdref/vcdver", file=file, key=key))
                rec.update({k: v for k, v in coded.items() if v is not None})
                for col, attr in (("TSVALCD", "valcd"), ("TSVCDREF", "vcdref"), ("TSVCDVER", "vcdver")):
                    if getattr(p, attr):
                        rec[col] = getattr(p, attr)
            records.append(rec)
    if problems:
        raise SpecError(problems)

    cols = ["TSSEQ", "TSGRPID", "TSPARMCD", "TSPARM", "TSVAL", "TSVALNF", "TSVALCD", "TSVCDREF", "TSVCDVER"]
    ts = pd.DataFrame.from_records(records, columns=[c for c in cols if c != "TSSEQ"])
    ts.insert(0, "TSSEQ", (ts.groupby("TSPARMCD", sort=False).cumcount() + 1).astype("float64"))
    pieces = split_text(ts["TSVAL"])
    n_extra = pieces.shape[1] - 1
    ts["TSVAL"] = pieces[0]
    extra_cols = [f"TSVAL{k}" for k in range(1, n_extra + 1)]
    for k, c in enumerate(extra_cols, start=1):
        ts[c] = pieces[k]
    order = ["TSSEQ", "TSGRPID", "TSPARMCD", "TSPARM", "TSVAL", *extra_cols,
             "TSVALNF", "TSVALCD", "TSVCDREF", "TSVCDVER"]
    ts = _str_frame(ts, order, num=("TSSEQ",))
    return _with_ids(ts, study, "TS", ts_meta(n_extra))


_CHUNK = re.compile(r"\S.{0,%d}(?=\s|$)|\S{%d}" % (MAX_TEXT - 1, MAX_TEXT))


def split_text(values: pd.Series, width: int = MAX_TEXT) -> pd.DataFrame:
    """Split text into pieces of at most ``width`` characters at blanks (SDTMIG 3.4 §4.5.3.2).

    Returns a DataFrame with one column per piece (0, 1, ...), at least one column;
    pieces are cut before a blank (the blank is dropped: rejoin the pieces with one space);
    a word longer than ``width`` is cut hard. Missing values stay missing in column 0.
    """
    if width != MAX_TEXT:
        pattern = re.compile(r"\S.{0,%d}(?=\s|$)|\S{%d}" % (width - 1, width))
    else:
        pattern = _CHUNK
    text = values.astype("object").where(values.notna(), None)
    pieces = text.str.findall(pattern).dropna().explode().dropna()
    long = pd.DataFrame({"row": pieces.index, "pos": pieces.groupby(level=0).cumcount().to_numpy(),
                         "piece": pieces.to_numpy()})
    frame = long.pivot(index="row", columns="pos", values="piece") if len(long) else pd.DataFrame()
    if frame.shape[1] == 0:
        frame = pd.DataFrame({0: pd.Series(dtype="object")})
    frame = frame.reindex(values.index)
    frame.columns = range(frame.shape[1])
    return frame


def _with_ids(df: pd.DataFrame, study: Study, domain: str, meta: DatasetMeta) -> pd.DataFrame:
    """Prefix STUDYID and DOMAIN and return the columns exactly as ``meta.names``."""
    df = df.copy()
    df.insert(0, "DOMAIN", pd.Series(domain, index=df.index, dtype="str"))
    df.insert(0, "STUDYID", pd.Series(study.studyid, index=df.index, dtype="str"))
    return df[meta.names].reset_index(drop=True)


def build_trial_design(study: Study, design: TrialDesign, ct: Terminology, *,
                       overrides: Mapping[str, object] | None = None
                       ) -> dict[str, tuple[pd.DataFrame, DatasetMeta]]:
    """Build the five trial design datasets with their metadata.

    Args:
        study: ``load_study(specs_dir)``.
        design: ``load_trial_design(specs_dir)``.
        ct: ``load_terminology(specs_dir)``.
        overrides: TS values known only after DM is built, e.g. ``ts_values_from_dm(dm)``
            (ACTSUB, SSTDTC); each replaces the YAML record of that parameter.

    Returns ``{"TA": (df, meta), "TE": ..., "TV": ..., "TI": ..., "TS": ...}``; every
    df has exactly the columns ``meta.names``, in order.

    Algorithm: ``build_te``, ``build_ta``, ``build_tv``, ``build_ti``, ``build_ts``
    (SDTMIG 3.4 §7.2-7.4); each raises SpecError naming the spec file and key path.
    """
    ts = build_ts(study, design, ct, overrides)
    n_extra = sum(c.startswith("TSVAL") and c[5:].isdigit() for c in ts.columns)
    return {
        "TA": (build_ta(study, design), ta_meta()),
        "TE": (build_te(study), te_meta()),
        "TV": (build_tv(study, design), tv_meta()),
        "TI": (build_ti(study, design, ct), ti_meta()),
        "TS": (ts, ts_meta(n_extra)),
    }


def ts_values_from_dm(dm: pd.DataFrame) -> dict[str, str]:
    """TS values that come from the built DM, for ``build_trial_design(overrides=...)``.

    Args:
        dm: the DM dataset (USUBJID, ARMCD, RFICDTC).

    Algorithm:
        1. Enrolled subjects = DM records with a non-blank ARMCD (screen failures have a
           null ARMCD and ARMNRS, SDTMIG 3.4 DM); all records when DM has no ARMCD.
        2. ACTSUB = number of distinct USUBJID among them (TS: actual number of subjects).
        3. SSTDTC = the earliest complete RFICDTC date (YYYY-MM-DD) among them: the study
           start date is the first informed consent (FDA Technical Rejection Criteria,
           Study Start Date); omitted when no subject has a complete consent date.
    """
    enrolled = dm
    if "ARMCD" in dm.columns:
        arm = dm["ARMCD"].astype("str").str.strip()
        enrolled = dm[dm["ARMCD"].notna() & arm.ne("")]
    out = {"ACTSUB": str(int(enrolled["USUBJID"].nunique()))}
    if "RFICDTC" in enrolled.columns:
        day = enrolled["RFICDTC"].astype("str").str.slice(0, 10)
        full = day[enrolled["RFICDTC"].notna() & day.str.fullmatch(r"\d{4}-\d{2}-\d{2}")]
        if len(full):
            out["SSTDTC"] = str(full.min())
    return out
