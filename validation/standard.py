"""Dataset metadata for validation from the standard itself, not only from our own specs.

The checks of a build were generated from the same specs the build came from, so an
Expected variable the spec forgot was never "missing" (issue 11). Here the metadata each
dataset is validated against is the standard's (SDTMIG 3.4 / ADaMIG 1.3, shipped in
``cdisc.standards``), merged with the study's spec where the study knows more:

- every IG variable of the domain whose Core is Req or Exp is required/expected, whatever
  the spec says (the stricter Core wins when both give one);
- a variable the spec gives no codelist gets the IG's (its NCI C-code looked up in the
  study's CT packages);
- everything else (labels, types, formats, ranges, keys, sponsor codelists) comes from the
  spec when there is one, else from the dataset as it is on disk and the IG.

A folder this toolkit did not build (a CRO delivery) has no specs: its metadata is made
from the files (names, labels, types) and the IG alone (``metadata_from_files``).
"""
from __future__ import annotations

import pandas as pd

from cdisc.metadata import DatasetMeta, VariableMeta

_CORE_RANK = {"Req": 3, "Exp": 2, "Cond": 1, "Perm": 0, None: -1}


# Findings result variables: the IG names a codelist for character results only (LBSTRESC
# C102580, RSSTRESC ONCRSR); numeric results are not its terms, and which codelist applies
# depends on the test (value-level metadata), so they are not checked against it here.
_RESULT_SUFFIXES = ("ORRES", "STRESC", "STRESN")


def _codelist_name(codes: tuple[str, ...] | list[str], ct) -> str | None:
    """The study-CT name of the codelist(s) a variable's NCI C-codes give (``C66742`` -> ``NY``).

    Several C-codes are alternatives (DSDECOD: NCOMPLT, PROTMLST, OTHEVENT): a value may be a
    term of any of them, so they become one union codelist ``NCOMPLT|PROTMLST|OTHEVENT`` in
    ``ct`` (extensible when any of them is)."""
    if not codes or ct is None:
        return None
    names = []
    for code in codes:
        name = _name_of(code, ct)
        if name and name in ct:
            names.append(name)
    if len(names) <= 1:
        return names[0] if names else None
    union = "|".join(names)
    if union not in ct and isinstance(ct, dict):
        parts = [ct[n] for n in names]
        terms, seen = [], set()
        for part in parts:
            for t in part["terms"]:
                if t["value"] not in seen:
                    seen.add(t["value"])
                    terms.append(t)
        dict.__setitem__(ct, union, {"code": None, "name": " or ".join(p["name"] for p in parts),
                                     "extensible": any(p["extensible"] for p in parts), "sponsor": False,
                                     "terms": terms})
    return union


def _name_of(code: str, ct) -> str | None:
    packages = getattr(ct, "packages", None)
    if packages is None:                    # a CtView of a Terminology
        packages = getattr(getattr(ct, "_ct", None), "packages", [])
    for p in packages:
        cl = p.codelists.get(code)
        if cl is not None:
            return cl.name
    return None


def adam_class(name: str, columns, declared: str | None = None) -> str | None:
    """ADaM data structure of a dataset: declared in its metadata, else inferred from its
    variables (ADSL by name; PARAMCD with CNSR: time-to-event; PARAMCD: BDS; else OCCDS)."""
    if declared:
        d = declared.upper()
        if "SUBJECT LEVEL" in d or d == "ADSL":
            return "ADSL"
        if "TIME-TO-EVENT" in d or d in ("TTE", "BDS-TTE"):
            return "TTE"
        if "BASIC DATA STRUCTURE" in d or d == "BDS":
            return "BDS"
        if "OCCURRENCE" in d or d == "OCCDS":
            return "OCCDS"
    cols = set(columns)
    if name.upper() == "ADSL":
        return "ADSL"
    if "PARAMCD" in cols:
        return "TTE" if "CNSR" in cols else "BDS"
    return "OCCDS" if "USUBJID" in cols else None


def standard_definitions(name: str, meta: DatasetMeta | None, columns, ig, adamig) -> tuple[list, object, str | None]:
    """(the standard's variable definitions for this dataset, the standard, its class)."""
    standard = meta.standard if meta is not None else ("ADaM" if name.upper().startswith("AD") else "SDTM")
    if standard == "SDTM":
        dom = ig.domain_for(name)
        if dom is None:
            return [], ig, None
        return list(dom.variables), ig, dom.class_
    cls = adam_class(name, columns, meta.class_ if meta is not None else None)
    if cls is None or cls not in adamig.domains:
        return [], adamig, cls
    defs = list(adamig.domains[cls].variables)
    if cls == "OCCDS" and name.upper() != "ADAE":
        # the shipped OCCDS table is ADaM ADAE v1.0: its AE variables bind ADAE only
        defs = [d for d in defs if not d.name.startswith("AE")]
    return defs, adamig, cls


def merge_with_standard(name: str, meta: DatasetMeta, columns, ct, ig, adamig, *,
                        add_missing: bool = True) -> DatasetMeta:
    """The spec's metadata of one dataset, with the standard's Core designations and codelists."""
    defs, std, _ = standard_definitions(name, meta, columns, ig, adamig)
    if not defs:
        return meta
    prefix = name[:2] if meta.standard == "SDTM" and name[:4] != "SUPP" else None
    by_name = {}
    for d in defs:
        n = d.name.replace("--", prefix) if prefix and d.name.startswith("--") else d.name
        if any(ch.islower() for ch in n):
            continue                             # ADaM placeholders (TRTxxP, ANLzzFL): matched below
        by_name[n] = d
    variables = []
    for v in meta.variables:
        d = by_name.get(v.name)
        if d is None and meta.standard == "ADaM":
            cls = adam_class(name, columns, meta.class_)
            d = std.variable(name, v.name, class_name=std.domains[cls].class_) if cls in std.domains else None
        update = {}
        if d is not None:
            if _CORE_RANK.get(d.core, -1) > _CORE_RANK.get(v.core, -1) and d.core in ("Req", "Exp"):
                update["core"] = d.core
            if not v.codelist and not v.name.endswith(_RESULT_SUFFIXES):
                cl = _codelist_name(getattr(d, "codelists", ()) or (), ct)
                if cl:
                    update["codelist"] = cl
        variables.append(v.model_copy(update=update) if update else v)
    have = {v.name for v in variables}
    for n, d in (by_name.items() if add_missing else ()):
        if n in have or d.core not in ("Req", "Exp") or "--" in n:
            continue
        # a Req/Exp variable of the standard the spec does not define: checked for presence
        variables.append(VariableMeta(name=n, label=d.label or n, type=d.type or "Char", core=d.core,
                                      codelist=None if n.endswith(_RESULT_SUFFIXES)
                                      else _codelist_name(getattr(d, "codelists", ()) or (), ct)))
    return meta.model_copy(update={"variables": variables})


def metadata_from_files(datasets: dict[str, pd.DataFrame], labels: dict[str, dict], ct, ig, adamig
                        ) -> dict[str, DatasetMeta]:
    """Metadata of datasets nobody gave us specs for: the files' own names, labels and types,
    the IG's Core designations and codelists.

    ``labels``: per dataset ``{"label": dataset label, "variables": {name: label}}`` as read
    from the transport files.
    """
    out = {}
    for name, df in datasets.items():
        info = labels.get(name, {})
        standard = "ADaM" if name.upper().startswith("AD") else "SDTM"
        defs, _, cls = standard_definitions(name, None, df.columns, ig, adamig)
        variables = [VariableMeta(name=c, label=(info.get("variables") or {}).get(c) or c,
                                  type="Num" if df[c].dtype.kind in "fiub" else "Char")
                     for c in df.columns]
        meta = DatasetMeta(name=name, label=info.get("label") or name, variables=variables,
                           standard=standard, **{"class": cls})
        out[name] = merge_with_standard(name, meta, df.columns, ct, ig, adamig)
    return out
