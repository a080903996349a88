"""SDTMIG / ADaMIG metadata as shipped in ``cdisc/standards/data`` (see data/PROVENANCE.md).

A :class:`Standard` holds the implementation guide's domains (SDTM) or data structures
(ADaM) with their variables in IG order, and for SDTM the SDTM model's class variables, so a
validator can tell which variables a domain (standard or custom) may hold:

- :meth:`Standard.domain_for` maps a dataset name to its IG domain: split datasets
  (SDTMIG 3.4 section 4.1.7: LBCH, LBHE -> LB; QSCG -> QS; FAMH -> FA), SUPP-- / SQ-- -> SUPPQUAL;
  a custom domain gives None.
- :meth:`Standard.allowed_variables` lists what the model allows in a dataset: for a domain of a
  general observation class the General Observations identifiers, the class's variables and
  the General Observations timing variables with ``--`` replaced by the domain code, the IG's
  own variables taking precedence (the same construction as the CDISC CORE engine's
  ``get_variables_metadata_from_standard``), minus the model variables whose SDTM v2.0 usage
  restriction excludes the domain ("Not in human clinical trials", "AE domain only", "Not in
  Findings class domains", ...). Other domains (special-purpose, trial design, relationship)
  allow exactly the IG table.
- :meth:`Standard.variable` resolves one variable name for a dataset (``LBSEQ`` from ``--SEQ``;
  an ADaM name such as ``TRT01P`` from ``TRTxxP``); None means "not allowed here".
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from cdisc.gcpause import gc_paused as no_gc  # JSON parsing makes no cycles worth collecting

DATA = Path(__file__).resolve().parent / "data"

GENERAL_OBSERVATIONS = "General Observations"
GO_CLASSES = ("Interventions", "Events", "Findings", "Findings About")


@dataclass(frozen=True, slots=True)
class VariableDef:
    """One variable of an IG domain / ADaM structure, or of the SDTM model.

    ``type`` is ``Char`` or ``Num``; ``core`` is ``Req``/``Exp``/``Perm`` (SDTM) or
    ``Req``/``Cond``/``Perm`` (ADaM), None for a model variable the IG table does not list
    (permissible where the model allows it); ``codelists`` are NCI C-codes; ``format`` is the
    described value domain (``ISO 8601 datetime or interval``, ``MedDRA``, ...); ``values`` a
    value list (``DOMAIN`` = ``AE``; ADaM ``Y; N``); ``model`` the SDTM model variable it
    implements (``Events.--TERM``, ``DM.ARMNRS``); ``group`` the ADaM variable set;
    ``restriction`` the SDTM model usage restriction (``text`` plus parsed keys).
    """
    name: str
    label: str
    type: str
    core: str | None
    role: str | None
    order: int
    codelists: tuple[str, ...] = ()
    format: str | None = None
    values: tuple[str, ...] | None = None
    model: str | None = None
    group: str | None = None
    notes: str | None = None
    restriction: dict | None = field(default=None, compare=False)
    ccode: str | None = None

    @property
    def value_domain(self) -> str | None:
        return self.format


@dataclass(slots=True)
class DomainDef:
    """An SDTMIG domain (or SDTM model dataset), or an ADaM data structure."""
    name: str
    label: str
    class_: str | None
    structure: str | None
    variables: list[VariableDef]
    keys: tuple[str, ...] | None = None
    subclass: str | None = None
    source: str | None = None
    _by_name: dict[str, VariableDef] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {v.name: v for v in self.variables}

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    def get(self, name: str) -> VariableDef | None:
        """The variable of this table with exactly this name."""
        return self._by_name.get(name)

    def with_core(self, *cores: str) -> list[VariableDef]:
        return [v for v in self.variables if v.core in cores]

    @property
    def required(self) -> list[VariableDef]:
        return self.with_core("Req")

    @property
    def expected(self) -> list[VariableDef]:
        return self.with_core("Exp")


def _variable(d: dict) -> VariableDef:
    return VariableDef(
        name=d["name"], label=d["label"], type=d["type"], core=d.get("core"), role=d.get("role"),
        order=d["order"], codelists=tuple(d.get("codelists") or ()), format=d.get("format"),
        values=tuple(d["values"]) if d.get("values") else None, model=d.get("model"),
        group=d.get("group"), notes=d.get("notes"), restriction=d.get("restriction"),
        ccode=d.get("ccode"))


def _norm_class(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).casefold()


# ADaM placeholders (ADaMIG v1.3 section 3.1.1 item 2): lower-case runs in a variable name
_ADAM_PLACEHOLDER = {"xx": "(?:0[1-9]|[1-9][0-9])", "zz": "(?:0[1-9]|[1-9][0-9])",
                     "y": "(?:[1-9][0-9]?)", "w": "[1-9]"}


def _adam_pattern(name: str) -> re.Pattern | None:
    parts = re.split(r"([a-z]+)", name)
    if len(parts) == 1:
        return None
    rx = "".join(_ADAM_PLACEHOLDER.get(p, re.escape(p)) if i % 2 else re.escape(p)
                 for i, p in enumerate(parts))
    return re.compile(rx + r"\Z")


class Standard:
    """Metadata of one implementation guide version (``sdtmig`` 3.4 or ``adamig`` 1.3)."""

    def __init__(self, raw: dict):
        st = raw["standard"]
        self.name: str = st["name"]
        self.version: str = st["version"]
        self.title: str = st.get("title", "")
        self.label: str = st.get("label", "")
        self.effective_date: str | None = st.get("effective_date")
        self.model_name: str | None = raw.get("model", {}).get("name")
        self.model_version: str | None = raw.get("model", {}).get("version")
        self.source: dict = raw.get("source", {})
        self.conventions: dict | None = raw.get("conventions")
        self.classes: list[dict] = raw.get("classes", [])
        self.domains: dict[str, DomainDef] = {}
        by_name = {d["name"]: d for d in raw["domains"]}
        for d in raw["domains"]:
            src = by_name[d["variables_from"]] if d.get("variables_from") else d
            self.domains[d["name"]] = DomainDef(
                name=d["name"], label=d["label"], class_=d.get("class"), structure=d.get("structure"),
                variables=[_variable(v) for v in src["variables"]],
                keys=tuple(d["keys"]) if d.get("keys") else None, subclass=d.get("subclass"),
                source=d.get("source"))
        model = raw.get("model", {})
        self.model_classes: dict[str, list[VariableDef]] = {
            name: [_variable(v) for v in c["variables"]] for name, c in (model.get("classes") or {}).items()}
        self._model_class_parent = {name: c.get("parent") for name, c in (model.get("classes") or {}).items()}
        self.model_datasets: dict[str, DomainDef] = {
            d["name"]: DomainDef(name=d["name"], label=d["label"], class_=d.get("class"), structure=None,
                                 variables=[_variable(v) for v in d["variables"]], source="model")
            for d in model.get("datasets") or ()}
        self._class_names = {_norm_class(n): n for n in self.model_classes}
        self._class_names.update({_norm_class(c["name"]): c["name"] for c in self.classes})
        for d in self.domains.values():                       # ADaM: classes are the structures' classes
            if d.class_:
                self._class_names.setdefault(_norm_class(d.class_), d.class_)
        self._allowed_cache: dict[tuple, list[VariableDef]] = {}
        self._patterns: dict[str, list[tuple[re.Pattern, VariableDef]]] = {}

    def __repr__(self) -> str:
        return f"<Standard {self.name} {self.version}: {len(self.domains)} domains>"

    @property
    def is_sdtm(self) -> bool:
        return self.name == "sdtmig"

    # ------------------------------------------------------------------ classes
    def class_name(self, name: str) -> str:
        """The standard's spelling of a class name (``FINDINGS ABOUT`` -> ``Findings About``)."""
        try:
            return self._class_names[_norm_class(name)]
        except KeyError:
            raise KeyError(f"unknown class {name!r} in {self.title}") from None

    def class_of(self, dataset: str) -> str | None:
        d = self.domain_for(dataset)
        return d.class_ if d else None

    def class_variables(self, class_name: str) -> list[VariableDef]:
        """Model variables a domain of this class may hold, names with ``--``.

        SDTM general observation classes: the General Observations identifiers, the class
        variables (Findings About: the Findings variables with --OBJ after --TEST), then the
        General Observations timing variables. Other SDTM classes have no class variables
        (their domains are fixed tables: see ``model_datasets``). ADaM: the variables of the
        data structure of that class (``BASIC DATA STRUCTURE`` -> BDS).
        """
        cls = self.class_name(class_name)
        if not self.is_sdtm:
            tables = [d for d in self.domains.values() if d.class_ == cls]
            tables.sort(key=lambda d: d.subclass is not None)        # BDS before its TTE subclass
            return list(tables[0].variables) if tables else []
        if cls not in GO_CLASSES:
            return list(self.model_classes.get(cls, []))
        go = self.model_classes[GENERAL_OBSERVATIONS]
        if cls == "Findings About":
            findings = self.model_classes["Findings"]
            cut = next(i for i, v in enumerate(findings) if v.name == "--TEST") + 1
            own = findings[:cut] + self.model_classes["Findings About"] + findings[cut:]
        else:
            own = self.model_classes[cls]
        return ([v for v in go if v.role == "Identifier"] + list(own)
                + [v for v in go if v.role == "Timing"])

    # ------------------------------------------------------------------ datasets
    def domain_for(self, dataset_name: str) -> DomainDef | None:
        """The IG domain (ADaM: data structure) a dataset belongs to, or None for a custom one.

        SDTM: exact IG names; SUPP-- and SQ-- -> SUPPQUAL; split datasets (SDTMIG 3.4 section
        4.1.7), whose names are the domain code plus up to two characters -> that domain
        (LBCH -> LB, QSCG -> QS, FAMH -> FA). ADaM: ``ADSL`` and the structure names only,
        since an analysis dataset's class is declared in its metadata, not in its name.
        """
        name = dataset_name.strip().upper()
        if name in self.domains:
            return self.domains[name]
        if not self.is_sdtm:
            return None
        if (name.startswith("SUPP") and len(name) > 4) or (name.startswith("SQ") and len(name) > 3):
            return self.domains.get("SUPPQUAL")             # SUPPAE, SUPPLBCH; SQ-- when SUPP-- is too long
        if 3 <= len(name) <= 4:
            d = self.domains.get(name[:2])
            if d is not None and d.class_ in GO_CLASSES:
                return d
        return None

    def _prefix(self, dataset_name: str, domain: DomainDef | None) -> str:
        if domain is not None and len(domain.name) == 2:
            return domain.name
        return dataset_name.strip().upper()[:2]

    def allowed_variables(self, dataset_name: str, class_name: str | None = None, *,
                          apply_restrictions: bool = True) -> list[VariableDef]:
        """Variables the standard allows in this dataset, ``--`` resolved, in model order.

        A custom SDTM domain needs ``class_name`` (Interventions, Events, Findings, Findings
        About). Model variables not in the IG table come with ``core=None``. Raises
        ``ValueError`` for a custom domain without a class.
        """
        domain = self.domain_for(dataset_name)
        if not self.is_sdtm:
            if domain is None:
                if class_name is None:
                    raise ValueError(f"{dataset_name}: not an ADaM structure name; give the class")
                return self.class_variables(class_name)
            return list(domain.variables)
        cls = domain.class_ if domain is not None else (self.class_name(class_name) if class_name else None)
        if cls is None:
            raise ValueError(f"{dataset_name}: custom domain; give its class")
        prefix = self._prefix(dataset_name, domain)
        key = (domain.name if domain else None, prefix, cls, apply_restrictions)
        hit = self._allowed_cache.get(key)
        if hit is not None:
            return list(hit)
        if cls not in GO_CLASSES:
            result = list(domain.variables) if domain else []
        else:
            result = self._go_allowed(domain, prefix, cls, apply_restrictions)
        self._allowed_cache[key] = result
        return list(result)

    def _excluded(self, v: VariableDef, code: str, cls: str) -> bool:
        r = v.restriction
        if not r:
            return False
        if r.get("human_clinical_trials") is False:
            return True                                     # SDTMIG 3.4 is the human clinical trials IG
        if "only_domains" in r and code not in r["only_domains"]:
            return True
        if code in r.get("not_domains", ()):
            return True
        classes = {cls, self._model_class_parent.get(cls) or cls}
        return any(c in classes for c in r.get("not_classes", ()))

    def _go_allowed(self, domain: DomainDef | None, prefix: str, cls: str,
                    apply_restrictions: bool) -> list[VariableDef]:
        go = self.model_classes[GENERAL_OBSERVATIONS]
        idents = [v for v in go if v.role == "Identifier"]
        timing = [v for v in go if v.role == "Timing"]
        own = self.class_variables(cls)[len(idents):-len(timing) or None]
        sections: list[list[VariableDef]] = []
        for part in (idents, own, timing):
            kept = [v for v in part if not (apply_restrictions and self._excluded(v, prefix, cls))]
            sections.append([replace(v, name=v.name.replace("--", prefix), core=None) for v in kept])
        result = sections[0] + sections[1] + sections[2]
        if domain is None:
            return result
        index = {v.name: i for i, v in enumerate(result)}
        n_ident, n_timing = len(sections[0]), len(sections[2])
        for ig in domain.variables:
            i = index.get(ig.name)
            if i is not None:
                result[i] = ig
                continue
            if ig.role == "Identifier":                      # an IG variable the model class lacks
                at = n_ident
                n_ident += 1
            elif ig.role == "Timing":
                at = len(result)
            else:
                at = len(result) - n_timing
            result.insert(at, ig)
            index = {v.name: i for i, v in enumerate(result)}
        return result

    def variable(self, dataset_name: str, name: str, class_name: str | None = None) -> VariableDef | None:
        """The definition of ``name`` in this dataset, or None when the standard does not allow it.

        SDTM: the IG table first, then the model variables allowed for the domain (``LBSEQ``
        from ``--SEQ``; ``--SEQ`` itself is resolved with the domain code). ADaM: exact name,
        then placeholder names (``TRT01P`` -> ``TRTxxP``, ``ANL01FL`` -> ``ANLzzFL``).
        """
        name = name.strip().upper()
        domain = self.domain_for(dataset_name)
        if not self.is_sdtm:
            table = domain.variables if domain else (self.class_variables(class_name) if class_name else [])
            key = domain.name if domain else f"class:{class_name}"
            for v in table:
                if v.name == name:
                    return v
            pats = self._patterns.get(key)
            if pats is None:
                pats = [(p, v) for v in table if (p := _adam_pattern(v.name)) is not None]
                self._patterns[key] = pats
            return next((v for p, v in pats if p.match(name)), None)
        if name.startswith("--"):
            name = self._prefix(dataset_name, domain) + name[2:]
        if domain is not None:
            v = domain.get(name)
            if v is not None:
                return v
            if domain.class_ not in GO_CLASSES:
                return None
        elif class_name is None:
            return None
        return next((v for v in self.allowed_variables(dataset_name, class_name) if v.name == name), None)


_FILES = {("sdtmig", "3.4"): "sdtmig-3.4.json", ("adamig", "1.3"): "adamig-1.3.json"}


def available_standards() -> list[tuple[str, str]]:
    return sorted(_FILES)


@lru_cache(maxsize=None)
def load_standard(name: str, version: str) -> Standard:
    """``load_standard("sdtmig", "3.4")`` / ``load_standard("adamig", "1.3")`` (cached)."""
    key = (name.strip().lower().replace("-", ""), version.strip().replace("-", "."))
    if key not in _FILES:
        raise KeyError(f"no metadata for {name} {version}; available: "
                       + ", ".join(f"{n} {v}" for n, v in available_standards()))
    with no_gc():
        return Standard(json.loads((DATA / _FILES[key]).read_bytes()))
