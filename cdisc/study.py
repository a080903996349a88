"""The study definition (specs/study.yaml): identity, data cut, arms, visit schedule, epochs.

Everything study-specific that is not a domain mapping lives here, so a second study is
a new study.yaml, not new code.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .specio import load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RawConventions(_Strict):
    """How the EDC export is laid out (same columns on every form)."""

    subject: str = "SUBJECT"          # raw column with the subject identifier
    site: str = "SITENUMBER"
    folder: str = "FOLDER"
    form: str = "FORM"
    record_position: str = "RECORDPOSITION"
    # Date layouts of the export, tried in order (sdtm.functions.dates_by_format): a list for
    # the whole study, or a mapping "*" (every form) / form / "form.COLUMN" -> list, the most
    # specific entry winning. E.g. {"*": [MM/DD/YYYY], vs: [DD.MM.YYYY HH:MM], "ae.AESTDAT": [YYYY/MM/DD]}.
    date_formats: list[str] | dict[str, list[str]] = Field(default_factory=lambda: ["DD-MON-YYYY", "YYYY-MM-DD"])
    unknown_tokens: list[str] = Field(default_factory=lambda: ["UN", "UNK", "UK", "XX", "UNKN"])
    unscheduled_prefix: str = "UNS"   # folders not in the schedule whose OID starts so are unscheduled
    # Columns whose values the EDC controls (a record status, a yes/no flag): every value in
    # any form must be one of these, exactly; anything else is an error naming file/row/column.
    # E.g. {RECSTATUS: ["", "Deleted"]}: a "deleted" or "Removed" status is never mapped as live.
    allowed_values: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("date_formats")
    @classmethod
    def _layouts(cls, v):
        from cdisc.sdtm.functions import parse_date_format

        for fmts in (v.values() if isinstance(v, dict) else [v]):
            if not fmts:
                raise ValueError("date_formats: give at least one layout, e.g. MM/DD/YYYY")
            for f in fmts:
                parse_date_format(str(f))
        return v

    def formats_for(self, form: str | None, column: str | None) -> list[str]:
        """The date layouts of a raw column: ``form.COLUMN``, then ``form``, then ``*``."""
        v = self.date_formats
        if isinstance(v, list):
            return list(v)
        by = {str(k).strip().upper(): f for k, f in v.items()}
        for key in ((f"{form}.{column}" if form and column else None), form, "*"):
            if key and key.upper() in by:
                return list(by[key.upper()])
        from cdisc.sdtm.functions import DEFAULT_DATE_FORMATS

        return list(DEFAULT_DATE_FORMATS)


def _newest(kind: str) -> str:
    from cdisc.standards import latest_ct

    return latest_ct(kind)


class CtVersions(_Strict):
    """The CDISC CT package versions the study is built with (shipped whole in cdisc.standards)."""

    sdtm: str = Field(default_factory=lambda: _newest("sdtm"))
    adam: str = Field(default_factory=lambda: _newest("adam"))

    @field_validator("sdtm", "adam", mode="before")
    @classmethod
    def _date_text(cls, v: object) -> object:
        return v.isoformat() if isinstance(v, dt.date) else v


class Arm(_Strict):
    armcd: str
    arm: str
    dose: float | None = None
    dose_unit: str | None = None
    description: str | None = None


class Visit(_Strict):
    folder: str                       # EDC folder OID
    visitnum: float
    visit: str                        # SDTM VISIT
    day: int | None = None            # planned study day (VISITDY)
    window_before: int | None = None  # days allowed before the planned day
    window_after: int | None = None
    epoch: str | None = None


class Element(_Strict):
    """A trial element (TE) and, per subject, where it starts (SE)."""

    etcd: str
    element: str
    epoch: str
    # Subject's start of this element: a DM variable (e.g. RFICDTC, RFXSTDTC), optionally
    # shifted by days (the follow-up element starts the day after the DLT window).
    start: "str | Aggregate"
    start_offset_days: int = 0
    rule_start: str | None = None     # TESTRL text for TE
    rule_end: str | None = None       # TEENRL text for TE
    duration: str | None = None       # TEDUR (ISO 8601 duration)


from cdisc.sdtm.spec import Aggregate  # noqa: E402  (the same aggregate rule the DM spec uses)

Element.model_rebuild()


_UNITS = {"": 1, "B": 1, "BYTES": 1, "KB": 1024, "KIB": 1024, "MB": 1024**2, "MIB": 1024**2,
          "GB": 1024**3, "GIB": 1024**3, "TB": 1024**4, "TIB": 1024**4}


def parse_size(value: int | str) -> int:
    """Bytes of a size written as ``5 GB``, ``100 MB``, ``2.5GiB`` or a plain number of bytes.

    KB/MB/GB/TB are binary (1024-based), as cdisc's 5 GB default always was
    (5 x 1024^3 bytes); the TCG does not say which. Raises ValueError for anything else.
    """
    import re

    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size")
    if isinstance(value, int):
        number, unit = value, ""
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(value))
        if not m or m.group(2).upper() not in _UNITS:
            raise ValueError(f"{value!r} is not a size: write e.g. 5 GB, 100 MB or a number of bytes")
        number, unit = float(m.group(1)), m.group(2).upper()
    size = int(number * _UNITS[unit])
    if size < 1:
        raise ValueError(f"{value!r}: a size limit must be at least 1 byte")
    return size


#: Dataset size limits cdisc knows from the agency's own guide; any other agency (PMDA,
#: NMPA, a partner) gets its limit from study.yaml. FDA Study Data Technical Conformance
#: Guide §3.3.2 (Dataset Size): a dataset over 5 GB is also submitted split into smaller
#: files by a logical variable (e.g. LBCAT) in a ``split`` folder, the full file kept.
BUILTIN_SPLIT_LIMITS = {"FDA": 5 * 1024**3}


class AgencyRules(_Strict):
    """How a submission package for one agency treats large transport files."""

    # Largest transport file before it is also submitted split: "5 GB", "100 MB" or bytes.
    # None: the built-in limit of the agency (BUILTIN_SPLIT_LIMITS), else an error.
    split_limit: int | str | None = None
    # dataset -> variable to split it by (default: --CAT, PARCAT1, PARAMCD, ... in order)
    split_by: dict[str, str] = Field(default_factory=dict)

    @field_validator("split_limit")
    @classmethod
    def _size(cls, v):
        return None if v is None else parse_size(v)

    @field_validator("split_by")
    @classmethod
    def _upper(cls, v):
        return {str(k).upper(): str(var).upper() for k, var in v.items()}


class Submission(_Strict):
    """The agencies a package is made for (``cdisc package --agency NAME``)."""

    agency: str = "FDA"                      # the default target of `cdisc package`
    agencies: dict[str, AgencyRules] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_default(self) -> "Submission":
        if self.agency not in self.agencies and self.agency not in BUILTIN_SPLIT_LIMITS:
            raise ValueError(f"agency: {self.agency!r} is not in submission.agencies "
                             f"({', '.join(self.names) or 'none'})")
        return self

    @property
    def names(self) -> list[str]:
        """Agencies a package can target: the built-in ones and those of study.yaml."""
        return sorted(set(BUILTIN_SPLIT_LIMITS) | set(self.agencies))


class Study(_Strict):
    studyid: str
    title: str
    sponsor: str
    protocol: str | None = None
    data_cut: dt.date
    raw: RawConventions = Field(default_factory=RawConventions)
    ct: CtVersions = Field(default_factory=CtVersions)
    # Required for a build from raw forms (sdtm/); a study built from delivered SDTM
    # (`cdisc build --sdtm`) takes its arms and visits from the delivered TA/TV and DM.
    arms: list[Arm] = Field(default_factory=list)
    visits: list[Visit] = Field(default_factory=list)
    elements: list[Element] = Field(default_factory=list)
    lookups: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    forms_not_mapped: dict[str, str] = Field(default_factory=dict)  # form -> reason
    # Raw columns no rule reads, each with the reason it is not needed: form -> {COLUMN: reason};
    # the form "*" lists columns of every form (the EDC's own bookkeeping columns).
    columns_not_mapped: dict[str, dict[str, str]] = Field(default_factory=dict)
    trial_summary: list[dict[str, Any]] = Field(default_factory=list)
    # Coding dictionaries and their versions, e.g. {MEDDRA: "27.1", WHODRUG: "GLOBAL B3 2024-03"}:
    # define.xml names them as ExternalCodeLists of the coded variables.
    dictionaries: dict[str, str] = Field(default_factory=dict)
    inclusion_exclusion: list[dict[str, Any]] = Field(default_factory=list)
    # Per-agency packaging rules (dataset size limit, split variables): `cdisc package --agency`.
    submission: Submission = Field(default_factory=Submission)

    @model_validator(mode="after")
    def _reasons(self) -> "Study":
        for form, cols in self.columns_not_mapped.items():
            for col, reason in (cols or {}).items():
                if not str(reason or "").strip():
                    raise ValueError(f"columns_not_mapped.{form}.{col}: give the reason the column is not mapped")
        for form, reason in self.forms_not_mapped.items():
            if not str(reason or "").strip():
                raise ValueError(f"forms_not_mapped.{form}: give the reason the form is not mapped")
        return self

    def column_not_mapped(self, form: str, column: str) -> str | None:
        """The reason study.yaml gives for not mapping a raw column of a form, if any."""
        for key in (form, "*"):
            cols = {str(c).upper(): r for c, r in (self.columns_not_mapped.get(key) or {}).items()}
            if column.upper() in cols:
                return cols[column.upper()]
        return None

    @model_validator(mode="after")
    def _unique(self) -> "Study":
        for name, values in (("arms.armcd", [a.armcd for a in self.arms]),
                             ("visits.folder", [v.folder for v in self.visits]),
                             ("visits.visitnum", [v.visitnum for v in self.visits])):
            dup = sorted({x for x in values if values.count(x) > 1})
            if dup:
                raise ValueError(f"duplicate {name}: {dup}")
        return self

    @property
    def created(self) -> dt.datetime:
        """Timestamp written into file headers: the data cut, so rebuilds are byte-identical."""
        return dt.datetime.combine(self.data_cut, dt.time(0, 0, 0))

    def table(self, name: str) -> list[dict[str, Any]]:
        """A lookup table by name: 'arms', 'visits' or one of ``lookups``."""
        if name == "arms":
            return [a.model_dump() for a in self.arms]
        if name == "visits":
            return [v.model_dump() for v in self.visits]
        if name in self.lookups:
            return self.lookups[name]
        raise KeyError(name)


def load_study(specs_dir: Path) -> Study:
    path = Path(specs_dir) / "study.yaml"
    return load_model(Study, path, display=_display(path, specs_dir))


def _display(path: Path, base: Path) -> str:
    try:
        return str(Path("specs") / Path(path).relative_to(base))
    except ValueError:
        return str(path)
