"""The ADaM dataset spec (specs/adam/<dataset>.yaml): metadata plus ordered derivation steps.

A step names one derivation of the library (``adam.derive.DERIVATIONS``) or one of the
runner's few built-in steps (``filter``, ``assign``, ``case``, ``map_values``, ``nca``,
``stack``) and gives its arguments as data. Arguments that name a dataset (``dataset_add``,
``dataset_ref``, ``dataset_adsl``, the values of ``source_datasets``) are resolved to the
built SDTM/ADaM frame of that name; conditions are strings in the safe expression language.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cdisc.metadata import DatasetMeta, VariableSpec, check_variable_list

BUILTIN_STEPS = ("filter", "assign", "case", "map_values", "nca", "stack", "merge_supp", "row_max", "row_min", "drop")
DATASET_ARGS = ("dataset_add", "dataset_ref", "dataset_adsl", "dataset_relrec")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SourceRef(_Strict):
    dataset: str                         # SDTM domain or earlier ADaM dataset, e.g. DM, ADSL
    filter: str | None = None            # keep only these records (expression)
    # Start from no records: the steps create them (ADTTE parameters from derive_param_tte).
    empty: bool = False


class Step(_Strict):
    """One derivation call: ``{derivation: name, args: {...}, append: bool}``."""

    derivation: str
    args: dict[str, Any] = Field(default_factory=dict)
    # For derivations that return only new records (derive_param_exist_flag, derive_param_tte
    # without `dataset`, nca): append them to the records built so far.
    append: bool = False
    comment: str | None = None


class AdamVariable(VariableSpec):
    origin: Literal["Predecessor", "Derived", "Assigned", "Collected", "Protocol"] = "Derived"

    @field_validator("name")
    @classmethod
    def _upper(cls, v: str) -> str:
        if v != v.upper() or not v.replace("_", "").isalnum():
            raise ValueError(f"variable name {v!r} must be upper-case letters, digits or _")
        return v

    @model_validator(mode="after")
    def _provenance(self) -> "AdamVariable":
        if self.origin == "Predecessor" and not self.source:
            raise ValueError(f"{self.name}: a Predecessor variable needs `source` (e.g. DM.{self.name})")
        if self.origin == "Derived" and not self.method:
            raise ValueError(f"{self.name}: a Derived variable needs `method` (the derivation text)")
        return self


class Parameter(_Strict):
    """One analysis parameter of a BDS dataset, as define.xml and the reviewer's guide state it.

    ``method``: how AVAL/AVALC of this parameter is derived (events, censoring, windows), one
    MethodDef per parameter in define.xml; ``avalc``: the AVALC values it can take (a
    codelist of the AVALC value-level metadata); ``comment``: what else a reviewer needs
    (e.g. which of two OS definitions is the protocol's).
    """

    paramcd: str
    param: str
    method: str
    avalc: list[str] | None = None
    aval_unit: str | None = None
    comment: str | None = None

    @field_validator("paramcd")
    @classmethod
    def _code(cls, v: str) -> str:
        # ADaMIG 1.3 §3.3.4: PARAMCD <= 8 characters, letters, digits and _, not starting with a digit
        if not (v and len(v) <= 8 and v.replace("_", "").isalnum() and v.isupper() and not v[0].isdigit()):
            raise ValueError(f"PARAMCD {v!r}: at most 8 upper-case letters, digits or _, not starting with a digit")
        return v


class AdamSpec(_Strict):
    """One ADaM dataset, or (``output: false``) an intermediate dataset other specs read and that
    is never written: admiral's intermediate objects (single doses from
    ``create_single_dose_dataset`` for a joined last-dose merge, a one-record-per-visit
    helper). An intermediate needs no label, class, structure, keys or variable metadata; it
    keeps every column its steps made."""

    dataset: str
    output: bool = True
    label: str = ""
    class_: str = Field(default="", alias="class")
    structure: str = ""
    keys: list[str] = Field(default_factory=list)
    source: SourceRef
    steps: list[Step] = Field(default_factory=list)
    variables: list[AdamVariable] = Field(default_factory=list)
    sort: list[str] | None = None
    parameters: list[Parameter] = Field(default_factory=list)

    @field_validator("dataset")
    @classmethod
    def _name(cls, v: str) -> str:
        if not (v.replace("_", "").isalnum() and v == v.upper() and len(v) <= 8 and not v[0].isdigit()):
            raise ValueError("a dataset name is upper case letters, digits or _, <= 8 characters")
        return v

    @model_validator(mode="after")
    def _keys(self) -> "AdamSpec":
        if not self.output:
            return self
        if not self.dataset.startswith("AD"):
            raise ValueError("an ADaM dataset name starts with AD (an intermediate dataset says `output: false`)")
        missing = [k for k in ("label", "class_", "structure", "keys", "variables") if not getattr(self, k)]
        if missing:
            raise ValueError(f"an ADaM dataset that is written needs {', '.join(m.rstrip('_') for m in missing)}")
        check_variable_list([v.name for v in self.variables], self.keys, self.sort, "dataset")
        codes = [p.paramcd for p in self.parameters]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"parameters: PARAMCD listed twice: {', '.join(dup)}")
        return self

    def meta(self) -> DatasetMeta:
        keyseq = {k: i + 1 for i, k in enumerate(self.keys)}
        return DatasetMeta(
            name=self.dataset, label=self.label, keys=self.keys, structure=self.structure,
            standard="ADaM", **{"class": self.class_},
            variables=[v.to_meta(origin=v.origin, key_sequence=keyseq.get(v.name)) for v in self.variables])

    def dependencies(self) -> set[str]:
        """Datasets this spec reads (for build order)."""
        deps = {self.source.dataset}
        for st in self.steps:
            for k in DATASET_ARGS + ("dataset",):
                if isinstance(st.args.get(k), str) and st.args[k] != "SELF":
                    deps.add(st.args[k])
            for name in (st.args.get("source_datasets") or {}).values():
                deps.add(name)
            if st.derivation == "merge_supp":
                deps.add(st.args.get("supp"))
            if st.derivation == "stack":
                deps |= {s["dataset"] if isinstance(s, dict) else s for s in st.args.get("datasets", [])}
        return deps
