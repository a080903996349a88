"""Controlled terminology: the CDISC CT subset shipped in specs/ct plus the study's own terms.

Files (both in ``specs/ct/``):
- ``sdtm-ct.yaml`` / ``adam-ct.yaml``: CDISC codelists as published (C-codes, submission
  values, preferred terms as decodes, CDISC synonyms, extensible or not).
- ``study-ct.yaml`` (optional): what the sponsor adds — sponsor-defined codelists,
  extensions of extensible codelists, and raw spellings (synonyms) seen on the CRF.

Mapping a raw value: strip, collapse blanks, compare case-insensitively with the
submission value, the decode, the CDISC synonyms and the sponsor synonyms of that
codelist. A value that matches nothing is an error naming file, row and column, for
extensible codelists too: a new term must be added to study-ct.yaml on purpose, never
invented by the build.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import Problem, SpecError
from .specio import load_yaml


@dataclass
class Term:
    value: str
    code: str | None = None
    decode: str | None = None
    synonyms: list[str] = field(default_factory=list)
    sponsor: bool = False          # an extension of an extensible codelist, or a sponsor codelist


@dataclass
class Codelist:
    name: str
    code: str | None
    label: str
    extensible: bool
    terms: list[Term]
    sponsor: bool = False
    lookup: dict[str, str] = field(default_factory=dict)   # normalised spelling -> submission value

    @property
    def values(self) -> list[str]:
        return [t.value for t in self.terms]

    def decode_of(self) -> dict[str, str]:
        return {t.value: (t.decode or t.value) for t in self.terms}


def normalise(s: pd.Series) -> pd.Series:
    """Case-folded, trimmed, single-spaced text used to match raw spellings to terms."""
    return s.astype("str").str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()


def _norm(text: str) -> str:
    return " ".join(str(text).split()).casefold()


class Terminology:
    """All codelists a study may use, by short name (the codelist submission value)."""

    def __init__(self, codelists: dict[str, Codelist], package: str = ""):
        self.codelists = codelists
        self.package = package

    def __contains__(self, name: str) -> bool:
        return name in self.codelists

    def __getitem__(self, name: str) -> Codelist:
        return self.codelists[name]

    def as_dict(self) -> dict:
        """Plain structure for validation/define: {name: {code, extensible, terms: [...]}}."""
        return {
            n: {"code": c.code, "name": c.label, "extensible": c.extensible, "sponsor": c.sponsor,
                "terms": [{"value": t.value, "code": t.code, "decode": t.decode,
                           "synonyms": list(t.synonyms), "sponsor": t.sponsor} for t in c.terms]}
            for n, c in self.codelists.items()
        }

    def map_values(self, raw: pd.Series, codelist: str) -> tuple[pd.Series, pd.Series]:
        """Map raw spellings to submission values.

        Returns (mapped, unknown_mask): blank raw values map to missing and are not
        unknown; non-blank values that match no spelling of the codelist are flagged.
        """
        cl = self.codelists[codelist]
        norm = normalise(raw.fillna(""))
        mapped = norm.map(cl.lookup)
        blank = norm.eq("")
        unknown = mapped.isna() & ~blank
        return mapped.where(~blank), unknown


def _build_lookup(cl: Codelist, extra: dict[str, str], file: str) -> None:
    """Spellings -> value. Exact values and decodes win over CDISC synonyms, sponsor synonyms over all."""
    lookup: dict[str, str] = {}
    ambiguous: set[str] = set()
    for t in cl.terms:                                   # CDISC synonyms: drop ones two terms share
        for syn in t.synonyms:
            k = _norm(syn)
            if k in lookup and lookup[k] != t.value:
                ambiguous.add(k)
            lookup[k] = t.value
    for k in ambiguous:
        lookup.pop(k, None)
    for t in cl.terms:
        if t.decode:
            lookup[_norm(t.decode)] = t.value
    for t in cl.terms:
        lookup[_norm(t.value)] = t.value
    values = set(cl.values)
    for spelling, value in extra.items():
        if value not in values:
            raise SpecError(f"synonym {spelling!r} maps to {value!r}, which is not a term of codelist {cl.name}",
                            file=file, key=f"synonyms.{cl.name}")
        lookup[_norm(spelling)] = value
    cl.lookup = lookup


def _codelist_from(name: str, body: dict, *, sponsor: bool, file: str) -> Codelist:
    try:
        terms = [Term(value=str(t["value"]), code=t.get("code"), decode=t.get("decode"),
                      synonyms=[str(s) for s in (t.get("synonyms") or [])], sponsor=sponsor)
                 for t in body.get("terms", [])]
    except (KeyError, TypeError, AttributeError):
        raise SpecError("every term needs a 'value'", file=file, key=f"codelists.{name}.terms") from None
    return Codelist(name=name, code=body.get("code"), label=body.get("name", name),
                    extensible=bool(body.get("extensible", False)), terms=terms, sponsor=sponsor)


def load_terminology(specs_dir: Path) -> Terminology:
    ct_dir = Path(specs_dir) / "ct"
    codelists: dict[str, Codelist] = {}
    packages = []
    for fname in ("sdtm-ct.yaml", "adam-ct.yaml"):
        path = ct_dir / fname
        if not path.is_file():
            continue
        data = load_yaml(path, display=f"specs/ct/{fname}") or {}
        packages.append(str(data.get("package", fname)))
        for name, body in (data.get("codelists") or {}).items():
            codelists[name] = _codelist_from(name, body, sponsor=False, file=f"specs/ct/{fname}")

    synonyms: dict[str, dict[str, str]] = {}
    study_path = ct_dir / "study-ct.yaml"
    if study_path.is_file():
        file = "specs/ct/study-ct.yaml"
        data = load_yaml(study_path, display=file) or {}
        unknown_keys = set(data) - {"codelists", "extensions", "synonyms"}
        if unknown_keys:
            raise SpecError(f"unknown keys {sorted(unknown_keys)}", file=file,
                            hint="allowed: codelists, extensions, synonyms")
        for name, body in (data.get("codelists") or {}).items():
            if name in codelists:
                raise SpecError(f"sponsor codelist {name} has the name of a CDISC codelist; "
                                "use 'extensions' to add terms to it", file=file, key=f"codelists.{name}")
            codelists[name] = _codelist_from(name, body, sponsor=True, file=file)
        for name, terms in (data.get("extensions") or {}).items():
            if name not in codelists:
                raise SpecError(f"extension of unknown codelist {name}", file=file, key=f"extensions.{name}")
            if not codelists[name].extensible:
                raise SpecError(f"codelist {name} is not extensible; sponsor terms cannot be added",
                                file=file, key=f"extensions.{name}")
            for t in terms:
                codelists[name].terms.append(Term(value=str(t["value"]), decode=t.get("decode"),
                                                  synonyms=list(t.get("synonyms") or []), sponsor=True))
        for name, mapping in (data.get("synonyms") or {}).items():
            if name not in codelists:
                raise SpecError(f"synonyms for unknown codelist {name}", file=file, key=f"synonyms.{name}")
            synonyms[name] = {str(k): str(v) for k, v in (mapping or {}).items()}

    for name, cl in codelists.items():
        _build_lookup(cl, synonyms.get(name, {}), "specs/ct/study-ct.yaml")
    return Terminology(codelists, package="; ".join(packages))


def unknown_term_problems(raw: pd.DataFrame, column: str, unknown: pd.Series, codelist: Codelist,
                          *, limit: int = 20) -> list[Problem]:
    """One Problem per raw row whose value is not a term (file, row, column named)."""
    bad = raw.loc[unknown]
    allowed = ", ".join(cl for cl in cl_values_preview(codelist))
    kind = "extensible" if codelist.extensible else "non-extensible"
    return [
        Problem(f"value {v!r} is not in the {kind} codelist {codelist.name} ({codelist.code or 'sponsor'})",
                file=f, row=int(r), column=column,
                hint=f"use one of: {allowed}, or add the spelling under synonyms.{codelist.name} in specs/ct/study-ct.yaml")
        for v, f, r in zip(bad[column].tolist(), bad["__file"].tolist(), bad["__row"].tolist())
    ]


def cl_values_preview(cl: Codelist, n: int = 12) -> list[str]:
    vals = cl.values
    return vals[:n] + (["..."] if len(vals) > n else [])
