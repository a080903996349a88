"""Inputs of the CORE evaluator: datasets with their variable metadata, and what CORE derives
from a dataset's name and first record (domain, RDOMAIN, split and SUPP-- families)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

SUPPLEMENTARY_PREFIXES = ("SUPP", "SQ")


@dataclass(frozen=True)
class Variable:
    """One variable of a dataset as the transport file declares it."""

    name: str
    label: str = ""
    type: str = "Char"  # "Char" or "Num"
    length: int | None = None
    format: str = ""


@dataclass
class Dataset:
    """A dataset to validate.

    ``frame`` holds the records as read from the file (XPT read by pyreadstat: Char columns are
    ``str`` with ``""`` for missing, Num columns ``float64`` with NaN). ``variables`` is the
    file's variable metadata in file order (defaults to the frame's columns, typed by dtype).
    ``filename`` and ``size`` feed the Dataset Metadata rules (file name and size in bytes).
    """

    name: str
    frame: pd.DataFrame
    label: str = ""
    variables: list[Variable] = field(default_factory=list)
    filename: str | None = None
    size: int | None = None
    first_record: dict | None = None  # as CORE's metadata reader gives it (default: from frame)
    error: str | None = None  # the file could not be read (frame is None): an execution error where needed
    #: CORE's XPT and Dataset-JSON readers round every float to 15 decimals (Python round);
    #: its CSV reader does not (False for CORE's CSV test data)
    round_floats: bool = True

    def __post_init__(self) -> None:
        self.name = self.name.upper()
        if self.frame is None:
            return
        if not self.variables:
            self.variables = [
                Variable(str(c), "", "Num" if pd.api.types.is_numeric_dtype(self.frame[c]) else "Char")
                for c in self.frame.columns
            ]
        if self.filename is None:
            self.filename = f"{self.name.lower()}.xpt"


class DatasetInfo:
    """What CORE derives from a dataset (cdisc_rules_engine SDTMDatasetMetadata).

    ``domain`` is the first record's DOMAIN (None without one); ``rdomain`` the first record's
    RDOMAIN for SUPP--/SQ-- datasets; ``unsplit_name`` the domain (or ``SUPP`` + RDOMAIN): two
    datasets with the same unsplit name are one domain split per SDTMIG section 4.1.7.
    ``wildcard`` replaces ``--`` in variable names. All computed once.
    """

    __slots__ = (
        "ap_suffix",
        "domain",
        "filename",
        "first_record",
        "is_ap",
        "is_split",
        "is_supp",
        "label",
        "name",
        "rdomain",
        "record_count",
        "size",
        "unsplit_name",
        "wildcard",
    )

    def __init__(self, name: str, label: str, filename: str, first_record: dict | None, record_count: int, size: int):
        self.name, self.label, self.filename = name, label, filename
        self.first_record, self.record_count, self.size = first_record, record_count, size
        first = first_record or {}
        self.domain = first.get("DOMAIN", None)
        self.is_supp = name.startswith(SUPPLEMENTARY_PREFIXES)
        self.rdomain = first.get("RDOMAIN", None) if self.is_supp else None
        if self.domain:
            self.unsplit_name = self.domain
        elif name.startswith("SUPP"):
            self.unsplit_name = f"SUPP{self.rdomain}"
        elif name.startswith("SQ"):
            self.unsplit_name = f"SQ{self.rdomain}"
        else:
            self.unsplit_name = name
        self.is_split = name != self.unsplit_name
        if self.is_supp:
            self.is_ap = isinstance(self.rdomain, str) and len(self.rdomain) == 4 and self.rdomain.startswith("AP")
        else:
            self.is_ap = "APID" in first or name.startswith("AP")
        if not self.is_ap or self.is_supp:
            self.ap_suffix = ""
        else:
            self.ap_suffix = self.domain[2:] if isinstance(self.domain, str) and len(self.domain) >= 4 else ""
        self.wildcard = self.ap_suffix or self.domain or ""

    def __repr__(self) -> str:
        return f"DatasetInfo({self.name!r}, domain={self.domain!r}, unsplit={self.unsplit_name!r})"


def first_record(frame: pd.DataFrame) -> dict | None:
    """The first record as CORE's metadata readers give it: every value as text."""
    if len(frame) == 0:
        return None
    out = {}
    for name, value in frame.iloc[0].items():
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif value is None or pd.isna(value):
            value = "" if not isinstance(value, float) else "nan"
        out[str(name)] = value if isinstance(value, str) else str(value)
    return out


def dataset_info(ds: Dataset, first: dict | None = None) -> DatasetInfo:
    return DatasetInfo(
        name=ds.name,
        label=ds.label or "",
        filename=ds.filename or f"{ds.name.lower()}.xpt",
        first_record=first if first is not None else (
            ds.first_record if ds.first_record is not None else first_record(ds.frame)),
        record_count=len(ds.frame) if ds.frame is not None else 0,
        size=int(ds.size) if ds.size is not None else int(ds.frame.memory_usage(deep=False).sum()),
    )


def families(infos: Iterable[DatasetInfo]) -> dict[str, list[DatasetInfo]]:
    """Datasets grouped by unsplit name, in input order."""
    out: dict[str, list[DatasetInfo]] = {}
    for info in infos:
        out.setdefault(info.unsplit_name, []).append(info)
    return out
