"""Standards metadata the CORE rules need (SDTMIG domains and variables, SDTM model classes,
controlled terminology), behind a small provider interface.

The evaluator asks a :class:`Library` for:

- ``domain_class(domain)``: the IG class name of a standard domain ("Events",
  "Special-Purpose", "Findings About", ...), ``None`` for a domain the IG does not define;
- ``domain_label(domain)``;
- ``ig_variables(domain)``: the IG's variables of a domain, each a dict with ``name`` (with
  ``--`` where the IG has it), ``label``, ``ordinal`` (int), ``role``, ``core``
  (Req/Exp/Perm), ``type`` (Char/Num), ``codelists`` (C-codes); ``None`` when not an IG domain;
- ``model_class_variables(class_name)``: the SDTM model's class variables (same keys);
- ``model_dataset_variables(domain)``: the model's own dataset definitions (DM, SE, TS, ...);
- ``is_standard_domain(domain)``: whether the IG or the model defines the dataset;
- ``codelist(c_code)``: a CT codelist (``{"submission_value", "extensible", "terms": [...]}``)
  or ``None`` (no CT loaded: CORE 0.17.1 as shipped runs without CT packages too).

:func:`from_cdisc_standards` adapts the project's ``cdisc.standards`` (the default);
:class:`JsonLibrary` reads the compact JSON form written by ``tests/core_cases/make_library.py``
from CORE's own standards cache (the exact metadata CORE 0.17.1 uses: the tests' reference).
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Library(Protocol):
    def domain_class(self, domain: str) -> str | None: ...

    def domain_label(self, domain: str) -> str | None: ...

    def ig_variables(self, domain: str) -> list[dict] | None: ...

    def model_class_variables(self, class_name: str) -> list[dict]: ...

    def model_dataset_variables(self, domain: str) -> list[dict] | None: ...

    def is_standard_domain(self, domain: str) -> bool: ...

    def codelist(self, c_code: str) -> dict | None: ...


class NullLibrary:
    """No standards metadata: rules that need it are reported as not executed."""

    available = False

    def domain_class(self, domain):
        return None

    def domain_label(self, domain):
        return None

    def ig_variables(self, domain):
        return None

    def model_class_variables(self, class_name):
        return []

    def model_dataset_variables(self, domain):
        return None

    def is_standard_domain(self, domain):
        return False

    def codelist(self, c_code):
        return None


class JsonLibrary:
    """Library from one JSON document::

        {"standard": {"name", "version", "classes": [{"name", "datasets": [
             {"name", "label", "variables": [{name, label, ordinal, role, core, type, codelists}]}]}]},
         "model": {"name", "version", "classes": [{"name", "variables": [...]}],
                   "datasets": [{"name", "label", "variables": [...]}]},
         "ct": {c_code: {...}}   # optional
        }
    """

    available = True

    def __init__(self, doc: dict):
        self.doc = doc
        self._ig: dict[str, tuple[str, dict]] = {}
        for cls in doc["standard"]["classes"]:
            for ds in cls.get("datasets", []):
                self._ig.setdefault(ds["name"], (cls["name"], ds))
        self._model_classes = {c["name"]: c for c in doc["model"]["classes"]}
        self._model_datasets = {d["name"]: d for d in doc["model"].get("datasets", [])}
        self._model_dataset_class = {}
        for cls in doc["model"]["classes"]:
            for ds in cls.get("datasets", []):
                self._model_dataset_class.setdefault(ds, cls["name"])
        self._ct = doc.get("ct") or {}

    @classmethod
    def load(cls, path: str | Path) -> JsonLibrary:
        path = Path(path)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            return cls(json.load(fh))

    def domain_class(self, domain):
        if domain in self._ig:
            return self._ig[domain][0]
        return self._model_dataset_class.get(domain)

    def domain_label(self, domain):
        if domain in self._ig:
            return self._ig[domain][1].get("label", "")
        return None

    def ig_variables(self, domain):
        if domain not in self._ig:
            return None
        return [dict(v) for v in self._ig[domain][1]["variables"]]

    def model_class_variables(self, class_name):
        for name, cls in self._model_classes.items():
            if _ct_class(name) == _ct_class(class_name):
                return [dict(v) for v in cls.get("variables", [])]
        raise KeyError(f"class {class_name!r} is not in the SDTM model")

    def has_model_class(self, class_name) -> bool:
        return any(_ct_class(n) == _ct_class(class_name) for n in self._model_classes)

    def model_dataset_variables(self, domain):
        ds = self._model_datasets.get(domain)
        return None if ds is None else [dict(v) for v in ds.get("variables", [])]

    def is_standard_domain(self, domain):
        return domain in self._ig or domain in self._model_datasets

    def codelist(self, c_code):
        return self._ct.get(c_code)


def _ct_class(name: str | None) -> str | None:
    """CORE's class naming: library 'Special-Purpose' -> 'SPECIAL PURPOSE', others upper case."""
    if name is None:
        return None
    conversions = {"special-purpose": "SPECIAL PURPOSE", "special-purpose datasets": "SPECIAL-PURPOSE"}
    return conversions.get(name.lower(), name.upper())


ct_class = _ct_class


class StandardsLibrary:
    """:class:`Library` over ``cdisc.standards`` (the project's shipped SDTMIG / SDTM model
    metadata and CT packages)."""

    available = True

    def __init__(self, standard, ct=None, use_ct: bool = False):
        """``use_ct``: give the CT-dependent operations the CT packages of ``cdisc.standards``
        (``get_codelist_attributes``, ``valid_codelist_dates``). Off by default, as CORE 0.17.1
        runs without CT packages unless given them (its results then match ours)."""
        self.std = standard
        self.ct = ct
        self.use_ct = use_ct

    @staticmethod
    def _var(v) -> dict:
        return {"name": v.name, "label": v.label or "", "ordinal": int(v.order or 0), "role": v.role or "",
                "core": v.core or "", "type": v.type or "", "codelists": list(v.codelists or ())}

    def _class(self, name):
        try:
            return self.std.class_name(name)
        except KeyError:
            return None

    def domain_class(self, domain):
        d = self.std.domains.get(domain)
        if d is not None:
            return d.class_
        m = self.std.model_datasets.get(domain)
        return m.class_ if m is not None else None

    def domain_label(self, domain):
        d = self.std.domains.get(domain)
        return d.label if d is not None else None

    def ig_variables(self, domain):
        d = self.std.domains.get(domain)
        return None if d is None else [self._var(v) for v in d.variables]

    def model_class_variables(self, class_name):
        cls = self._class(class_name)
        if cls is None or cls not in self.std.model_classes:
            raise KeyError(f"class {class_name!r} is not in the SDTM model")
        return [self._var(v) for v in self.std.model_classes[cls]]

    def model_dataset_variables(self, domain):
        m = self.std.model_datasets.get(domain)
        return None if m is None else [self._var(v) for v in m.variables]

    def is_standard_domain(self, domain):
        return domain in self.std.domains or domain in self.std.model_datasets

    def codelist(self, c_code):
        if self.ct is None:
            return None
        try:
            return self.ct.codelist(c_code)
        except KeyError:
            return None

    def ct_packages(self) -> list[str]:
        """Names of the CT packages available, e.g. ``sdtmct-2025-03-28`` ([] without CT)."""
        if not self.use_ct:
            return []
        from cdisc.standards import available_ct

        return [f"{kind}ct-{version}" for kind, version in available_ct()]

    def ct_package(self, name: str):
        """A CT package by name (``sdtmct-2025-03-28``), or None."""
        if not self.use_ct or name not in self.ct_packages():
            return None
        from cdisc.standards import load_ct

        kind, _, version = name.partition("ct-")
        return load_ct(kind, version)


def from_cdisc_standards(name: str = "sdtmig", version: str = "3.4", ct: Any = None,
                         use_ct: bool = False) -> Library:
    """The :class:`Library` of ``cdisc.standards.load_standard(name, version)``.

    ``ct``: the study's CT package (``cdisc.standards.load_ct(...)``) for ``codelist()``;
    ``use_ct``: let the CT-dependent operations use the shipped CT packages. Without them the
    CT-dependent rules behave as CORE 0.17.1 does when run without CT packages.
    """
    from cdisc.standards import load_standard

    return StandardsLibrary(load_standard(name, version), ct, use_ct)
