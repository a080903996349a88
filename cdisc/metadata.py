"""Dataset and variable metadata shared by every writer (XPT, Dataset-JSON, define.xml).

One model serves SDTM and ADaM: the spec loaders turn their YAML into these, the XPT
writer and the Dataset-JSON writer read them, define.xml is generated from them.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

VarType = Literal["Char", "Num"]
Core = Literal["Req", "Exp", "Perm", "Cond"]


class VariableMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    label: str
    type: VarType = "Char"
    # Char: declared length; None means "the maximum length used" (FDA TCG 4.1.5.4).
    # Num: always 8 bytes in XPT.
    length: int | None = None
    format: str | None = None            # SAS display format, e.g. DATE9.
    origin: str | None = None            # Collected, Derived, Assigned, Protocol, Predecessor
    source: str | None = None            # origin source / predecessor text for define.xml
    codelist: str | None = None          # codelist short name in the CT subset
    core: Core | None = None
    key_sequence: int | None = None      # position in the dataset's natural keys
    significant_digits: int | None = None
    # Plausible values of a numeric variable given by the spec ([min, max], either may be
    # None); validation checks them (rule CDISC-DS-012).
    range: tuple[float | None, float | None] | None = None
    method: str | None = None            # derivation text for define.xml MethodDef
    comment: str | None = None


class DatasetMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str                             # e.g. AE, SUPPAE, ADSL (upper case, <= 8 chars)
    label: str
    variables: list[VariableMeta]
    keys: list[str] = Field(default_factory=list)
    class_: str | None = Field(default=None, alias="class")
    structure: str | None = None
    standard: Literal["SDTM", "ADaM"] = "SDTM"
    comment: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def variable(self, name: str) -> VariableMeta:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]


def check_variable_list(names: list[str], keys: list[str], sort: list[str] | None, what: str) -> None:
    """Spec sanity shared by SDTM and ADaM specs: no variable twice, keys and sort among them."""
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"variables listed twice: {dup}")
    for k in keys + (sort or []):
        if k not in names:
            raise ValueError(f"key/sort variable {k} is not a variable of the {what}")


class VariableSpec(BaseModel):
    """Metadata fields a spec gives every variable, SDTM and ADaM alike (one list for both)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    label: str
    type: VarType = "Char"
    length: int | None = None
    format: str | None = None
    core: Core | None = None
    codelist: str | None = None
    source: str | None = None            # origin source / predecessor, e.g. DM.AGE
    method: str | None = None            # derivation text for define.xml
    comment: str | None = None
    significant_digits: int | None = None
    range: tuple[float | None, float | None] | None = None   # plausible values of a Num variable

    def to_meta(self, *, origin: str | None, key_sequence: int | None = None) -> VariableMeta:
        return VariableMeta(name=self.name, label=self.label, type=self.type, length=self.length,
                            format=self.format, origin=origin, source=self.source,
                            codelist=self.codelist, core=self.core, key_sequence=key_sequence,
                            significant_digits=self.significant_digits, method=self.method,
                            comment=self.comment, range=self.range)
