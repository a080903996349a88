"""CDISC Controlled Terminology packages shipped whole in ``cdisc/standards/ct`` (NCI EVS).

Each file ``<kind>ct-<YYYY-MM-DD>.json.gz`` (kind ``sdtm``, ``adam`` or ``define-xml``) holds a
complete package: every codelist with its NCI C-code, submission value (short name, e.g.
``NY``), name, extensible flag, and every term with its C-code, submission value, preferred
term, synonyms and definition. See data/PROVENANCE.md for where each package came from.
"""
from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .model import no_gc

CT_DIR = Path(__file__).resolve().parent / "ct"
_FILE = re.compile(r"^(?P<kind>[a-z][a-z-]*?)ct-(?P<version>\d{4}-\d{2}-\d{2})\.json\.gz$")
_KINDS = {"sdtm": "sdtm", "sdtmct": "sdtm", "adam": "adam", "adamct": "adam",
          "define": "define-xml", "definexml": "define-xml", "define-xml": "define-xml",
          "define-xmlct": "define-xml"}


def _fold(text: str) -> str:
    return " ".join(str(text).split()).casefold()


@dataclass(frozen=True, slots=True)
class CtTerm:
    code: str
    value: str                      # CDISC submission value
    preferred_term: str             # NCI preferred term (the decode)
    synonyms: tuple[str, ...]
    definition: str


class CtCodelist:
    """One codelist: ``code`` (C-code), ``name`` (short name, e.g. ``NY``), ``label``."""

    __slots__ = ("code", "name", "label", "extensible", "preferred_term", "synonyms", "definition",
                 "_raw_terms", "_terms", "_by_value", "_by_code", "_lookup")

    def __init__(self, raw: dict):
        self.code: str = raw["conceptId"]
        self.name: str = raw["submissionValue"]
        self.label: str = raw.get("name", "")
        self.extensible: bool = bool(raw["extensible"])
        self.preferred_term: str = raw.get("preferredTerm", "")
        self.synonyms: tuple[str, ...] = tuple(raw.get("synonyms") or ())
        self.definition: str = raw.get("definition", "")
        self._raw_terms = raw["terms"]
        self._terms: tuple[CtTerm, ...] | None = None
        self._by_value: dict[str, CtTerm] | None = None
        self._by_code: dict[str, CtTerm] | None = None
        self._lookup: dict[str, CtTerm] | None = None

    def __repr__(self) -> str:
        ext = "extensible" if self.extensible else "non-extensible"
        return f"<CtCodelist {self.name} {self.code} ({ext}, {len(self._raw_terms)} terms)>"

    @property
    def terms(self) -> tuple[CtTerm, ...]:
        if self._terms is None:
            self._terms = tuple(CtTerm(t["conceptId"], t["submissionValue"], t.get("preferredTerm", ""),
                                       tuple(t.get("synonyms") or ()), t.get("definition", ""))
                                for t in self._raw_terms)
        return self._terms

    @property
    def values(self) -> list[str]:
        return [t["submissionValue"] for t in self._raw_terms]

    def __len__(self) -> int:
        return len(self._raw_terms)

    def __contains__(self, value: str) -> bool:
        return self.term(value) is not None

    def term(self, value: str) -> CtTerm | None:
        """The term whose submission value is exactly ``value`` (case matters, as in CDISC CT)."""
        if self._by_value is None:
            self._by_value = {t.value: t for t in self.terms}
        return self._by_value.get(value)

    def term_by_code(self, code: str) -> CtTerm | None:
        if self._by_code is None:
            self._by_code = {t.code: t for t in self.terms}
        return self._by_code.get(code)

    def find(self, text: str) -> CtTerm | None:
        """A term by submission value, preferred term or CDISC synonym, ignoring case and
        repeated blanks (exact submission values win over synonyms; a synonym two terms share
        matches neither)."""
        if self._lookup is None:
            lookup: dict[str, CtTerm] = {}
            shared: set[str] = set()
            for t in self.terms:
                for s in t.synonyms:
                    k = _fold(s)
                    if k in lookup and lookup[k] is not t:
                        shared.add(k)
                    lookup[k] = t
            for k in shared:
                del lookup[k]
            for t in self.terms:
                if t.preferred_term:
                    lookup[_fold(t.preferred_term)] = t
            for t in self.terms:
                lookup[_fold(t.value)] = t
            self._lookup = lookup
        return self._lookup.get(_fold(text))


class CtPackage:
    """One CT package: codelists by C-code (``pkg["C66742"]``) and by short name (``pkg["NY"]``)."""

    def __init__(self, kind: str, version: str, raw: dict):
        self.kind = kind
        self.version = version
        self.name: str = raw.get("package") or f"{kind}ct-{version}"
        self.source: str | None = raw.get("source")
        self.codelists: dict[str, CtCodelist] = {}
        self.by_name: dict[str, CtCodelist] = {}
        for c in raw["codelists"]:
            cl = CtCodelist(c)
            self.codelists[cl.code] = cl
            self.by_name[cl.name] = cl

    def __repr__(self) -> str:
        return f"<CtPackage {self.name}: {len(self.codelists)} codelists>"

    def __len__(self) -> int:
        return len(self.codelists)

    def __iter__(self):
        return iter(self.codelists.values())

    def __contains__(self, key: str) -> bool:
        return key in self.codelists or key in self.by_name

    def __getitem__(self, key: str) -> CtCodelist:
        cl = self.codelist(key)
        if cl is None:
            raise KeyError(f"{key!r} is neither a codelist C-code nor a codelist short name in {self.name}")
        return cl

    def codelist(self, key: str) -> CtCodelist | None:
        """By C-code (``C66742``) or submission short name (``NY``)."""
        return self.codelists.get(key) or self.by_name.get(key)

    @property
    def term_count(self) -> int:
        return sum(len(c) for c in self.codelists.values())

    def term(self, codelist: str, value: str) -> CtTerm | None:
        cl = self.codelist(codelist)
        return cl.term(value) if cl else None


def _kind(kind: str) -> str:
    k = kind.strip().lower().replace("_", "-")
    if k not in _KINDS:
        raise KeyError(f"unknown CT kind {kind!r}; use sdtm, adam or define-xml")
    return _KINDS[k]


def available_ct() -> list[tuple[str, str]]:
    """``[(kind, version), ...]`` of the packages shipped, e.g. ``("sdtm", "2025-03-28")``."""
    out = []
    for p in CT_DIR.glob("*.json.gz"):
        m = _FILE.match(p.name)
        if m:
            out.append((m["kind"], m["version"]))
    return sorted(out)


def latest_ct(kind: str) -> str:
    kind = _kind(kind)
    versions = [v for k, v in available_ct() if k == kind]
    if not versions:
        raise KeyError(f"no {kind} CT package shipped")
    return versions[-1]


@lru_cache(maxsize=8)
def _load(kind: str, version: str) -> CtPackage:
    path = CT_DIR / f"{kind}ct-{version}.json.gz"
    if not path.is_file():
        have = ", ".join(v for k, v in available_ct() if k == kind) or "none"
        raise KeyError(f"no {kind} CT package {version} shipped (have: {have})")
    with no_gc():
        return CtPackage(kind, version, json.loads(gzip.decompress(path.read_bytes())))


def load_ct(kind: str, version: str | None = None) -> CtPackage:
    """``load_ct("sdtm", "2025-03-28")``; ``version=None`` gives the newest shipped (cached)."""
    kind = _kind(kind)
    return _load(kind, version or latest_ct(kind))
