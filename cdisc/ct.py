"""Controlled terminology: whole CDISC CT packages (cdisc.standards) plus the study's own terms.

- The CDISC packages a study uses are named in ``study.yaml`` (``ct: {sdtm: 2025-03-28,
  adam: 2026-03-27}``) and shipped whole with the toolkit (``cdisc/standards/ct``, NCI EVS):
  every codelist with its C-code, submission values, preferred terms (the decodes), CDISC
  synonyms and extensible flag. Several versions sit side by side; a study keeps the
  version it was built with.
- ``specs/ct/study-ct.yaml`` (optional) holds what the sponsor adds: sponsor-defined
  codelists, extensions of extensible codelists, and raw spellings (synonyms) seen on the CRF.

Mapping a raw value: strip, collapse blanks, compare case-insensitively with the
submission value, the decode, the CDISC synonyms and the sponsor synonyms of that
codelist. A value that matches nothing is an error naming file, row and column, for
extensible codelists too: a new term must be added to study-ct.yaml on purpose, never
invented by the build.

Codelists are built on first use: a package has about 1,200 codelists, a study uses a few
dozen.
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
    from .distinct import on_distinct

    return on_distinct(s, _normalise_values)


def _normalise_values(s: pd.Series) -> pd.Series:
    return s.astype("str").str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()


def _norm(text: str) -> str:
    return " ".join(str(text).split()).casefold()


class Terminology:
    """All codelists a study may use, by short name (the codelist submission value).

    ``codelists`` is a read-only mapping that builds each codelist on first access from the
    CDISC packages (in order: SDTM, ADaM, Define-XML) or the sponsor's study-ct.yaml.
    """

    def __init__(self, codelists: "dict[str, Codelist] | _Codelists", package: str = "",
                 packages: list | None = None):
        self.codelists = codelists
        self.package = package
        self.packages = list(packages or [])      # cdisc.standards.CtPackage objects
        self.sponsor: dict = {}                   # the sponsor's codelists and extensions as given

    def __contains__(self, name: str) -> bool:
        return name in self.codelists

    def __getitem__(self, name: str) -> Codelist:
        return self.codelists[name]

    def package_of(self, name: str):
        """The CDISC package a codelist comes from (None for a sponsor codelist)."""
        cl = self.codelists[name] if name in self.codelists else None
        if cl is None or cl.sponsor:
            return None
        for p in self.packages:
            if p.codelist(name) is not None:
                return p
        return None

    def as_dict(self) -> "CtView":
        """Plain structure for validation/define: {name: {code, extensible, terms: [...]}} (lazy)."""
        return CtView(self)

    def map_values(self, raw: pd.Series, codelist: str) -> tuple[pd.Series, pd.Series]:
        """Map raw spellings to submission values.

        Returns (mapped, unknown_mask): blank raw values map to missing and are not
        unknown; non-blank values that match no spelling of the codelist are flagged.
        """
        cl = self.codelists[codelist]
        from .distinct import on_distinct

        norm = normalise(raw.fillna(""))
        mapped = on_distinct(norm, lambda u: u.map(cl.lookup))
        blank = norm.eq("")
        unknown = mapped.isna() & ~blank
        return mapped.where(~blank), unknown


def _plain(c: Codelist) -> dict:
    return {"code": c.code, "name": c.label, "extensible": c.extensible, "sponsor": c.sponsor,
            "terms": [{"value": t.value, "code": t.code, "decode": t.decode,
                       "synonyms": list(t.synonyms), "sponsor": t.sponsor} for t in c.terms]}


class CtView(dict):
    """``Terminology.as_dict()``: a dict whose entries are made on first access."""

    def __init__(self, ct: Terminology):
        super().__init__()
        self._ct = ct

    def __bool__(self) -> bool:           # a terminology is never "no CT", even before first use
        return True

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and (dict.__contains__(self, name) or name in self._ct)

    def __missing__(self, name: str) -> dict:
        if name not in self._ct:
            raise KeyError(name)
        value = _plain(self._ct[name])
        self[name] = value
        return value

    def get(self, name, default=None):
        return self[name] if name in self else default


class _Codelists:
    """Codelists by short name, built on first access (see Terminology)."""

    def __init__(self, packages: list, sponsor: dict[str, Codelist], extensions: dict[str, list[Term]],
                 synonyms: dict[str, dict[str, str]], file: str):
        self._packages = packages
        self._sponsor = sponsor
        self._extensions = extensions
        self._synonyms = synonyms
        self._file = file
        self._built: dict[str, Codelist] = {}

    def _cdisc(self, name: str):
        for p in self._packages:
            cl = p.by_name.get(name)
            if cl is not None:
                return cl
        return None

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and (name in self._built or name in self._sponsor or self._cdisc(name) is not None)

    def __getitem__(self, name: str) -> Codelist:
        if name in self._built:
            return self._built[name]
        if name in self._sponsor:
            cl = self._sponsor[name]
        else:
            src = self._cdisc(name)
            if src is None:
                raise KeyError(name)
            # The decode of a code in a paired codelist (LBTESTCD -> LBTEST, TSPARMCD -> TSPARM) is
            # the paired codelist's submission value for the same concept (SDTMIG 3.4 §4.5.1: --TEST
            # from CT), not the NCI preferred term ("Alanine Aminotransferase", not "... Measurement").
            paired = self._cdisc(name[:-2]) if name.endswith("CD") else None
            decode = ({} if paired is None else {t.code: t.value for t in paired.terms})
            cl = Codelist(name=src.name, code=src.code, label=src.label, extensible=src.extensible,
                          terms=[Term(value=t.value, code=t.code,
                                      decode=decode.get(t.code) or t.preferred_term or None,
                                      synonyms=list(t.synonyms)) for t in src.terms])
            cl.terms += [Term(value=t.value, decode=t.decode, synonyms=list(t.synonyms), sponsor=True)
                         for t in self._extensions.get(name, [])]
        _build_lookup(cl, self._synonyms.get(name, {}), self._file)
        self._built[name] = cl
        return cl

    def get(self, name, default=None):
        return self[name] if name in self else default

    def names(self) -> list[str]:
        out = list(self._sponsor)
        for p in self._packages:
            out += [n for n in p.by_name if n not in out]
        return out


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
    """The study's terminology: the CDISC packages study.yaml names plus specs/ct/study-ct.yaml.

    1. ``study.yaml: ct`` gives the SDTM and ADaM CT versions (default: the newest shipped);
       a version the toolkit does not ship is a spec error listing the ones it does;
    2. study-ct.yaml: sponsor codelists (a name a CDISC package already uses is an error),
       extensions of extensible CDISC codelists (non-extensible ones refuse them, as do terms
       CDISC already has), and raw spellings (synonyms) that must map to a term.
    """
    from .study import load_study

    study = load_study(specs_dir)
    file = "specs/ct/study-ct.yaml"
    path = Path(specs_dir) / "ct" / "study-ct.yaml"
    data = (load_yaml(path, display=file) or {}) if path.is_file() else {}
    return make_terminology(study.ct.sdtm, study.ct.adam, data, file=file)


def make_terminology(sdtm: str | None, adam: str | None, sponsor: dict | None = None, *,
                     file: str = "specs/ct/study-ct.yaml") -> Terminology:
    """A Terminology from CDISC CT versions and the content of a study-ct.yaml (``sponsor``:
    ``{codelists, extensions, synonyms}``); the build records both in ``study.json`` so a
    build folder can be validated without its specs."""
    from cdisc.standards import available_ct, latest_ct, load_ct

    packages = []
    for kind, version in (("sdtm", sdtm), ("adam", adam)):
        version = version or latest_ct(kind)
        try:
            packages.append(load_ct(kind, version))
        except KeyError:
            have = ", ".join(v for k, v in available_ct() if k == kind) or "none"
            raise SpecError(f"{kind.upper()} CT {version} is not shipped with cdisc", file="specs/study.yaml",
                            key=f"ct.{kind}", hint=f"use one of: {have}") from None

    def cdisc_has(name: str) -> bool:
        return any(p.by_name.get(name) is not None for p in packages)

    data = sponsor or {}
    codelists_: dict[str, Codelist] = {}
    extensions: dict[str, list[Term]] = {}
    synonyms: dict[str, dict[str, str]] = {}
    unknown_keys = set(data) - {"codelists", "extensions", "synonyms"}
    if unknown_keys:
        raise SpecError(f"unknown keys {sorted(unknown_keys)}", file=file,
                        hint="allowed: codelists, extensions, synonyms")
    for name, body in (data.get("codelists") or {}).items():
        if cdisc_has(name):
            raise SpecError(f"sponsor codelist {name} has the name of a CDISC codelist; "
                            "use 'extensions' to add terms to it", file=file, key=f"codelists.{name}")
        codelists_[name] = _codelist_from(name, body, sponsor=True, file=file)
    for name, terms in (data.get("extensions") or {}).items():
        src = next((p.by_name[name] for p in packages if name in p.by_name), None)
        if src is None:
            raise SpecError(f"extension of unknown codelist {name}", file=file, key=f"extensions.{name}")
        if not src.extensible:
            raise SpecError(f"codelist {name} is not extensible; sponsor terms cannot be added",
                            file=file, key=f"extensions.{name}")
        have = set(src.values)
        dup = [str(t["value"]) for t in terms if str(t["value"]) in have]
        if dup:
            raise SpecError(f"{', '.join(map(repr, dup))} already in the CDISC codelist {name} "
                            f"({src.code}, CT {next(p.version for p in packages if name in p.by_name)})",
                            file=file, key=f"extensions.{name}", hint="remove the extension: CDISC added the term")
        extensions[name] = [Term(value=str(t["value"]), decode=t.get("decode"),
                                 synonyms=list(t.get("synonyms") or []), sponsor=True) for t in terms]
    for name, mapping in (data.get("synonyms") or {}).items():
        if name not in codelists_ and not cdisc_has(name):
            raise SpecError(f"synonyms for unknown codelist {name}", file=file, key=f"synonyms.{name}")
        synonyms[name] = {str(k): str(v) for k, v in (mapping or {}).items()}
    codelists = _Codelists(packages, codelists_, extensions, synonyms, file)
    for name in list(synonyms) + list(extensions):      # a bad synonym is an error now, not at first use
        codelists[name]
    label = "; ".join(f"{'SDTM' if p.kind == 'sdtm' else 'ADaM'} CT {p.version}" for p in packages)
    ct = Terminology(codelists, package=label, packages=packages)
    ct.sponsor = {k: data[k] for k in ("codelists", "extensions") if data.get(k)}
    return ct


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
