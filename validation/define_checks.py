"""define.xml checks: the metadata a reviewer reads must say what the datasets beside it hold.

Run by ``validate_folder`` for every ``define.xml`` in the folder (a submission package from
``cdisc package``, or a delivery), against the transport files in the same folder. Each check
is a rule of ``validation/rules.yaml`` (``engine: define``, ids CDISC-DF-nnn); the XSD itself
is checked when the package is made (cdisc.define.xsd).

- DF-001 Repeating: ``No`` only when no subject has two records (Define-XML 2.1 §5.3.5).
- DF-002 Mandatory: ``Yes`` for a variable the standard makes Req (SDTMIG 3.4 / ADaMIG 1.3)
  and for a key variable (KeySequence); Define-XML 2.1 §5.3.5.1.
- DF-003 every def:leaf points to a file beside define.xml (§5.3.11).
- DF-004 every reference resolves: ItemRef/@ItemOID, CodeListRef, MethodOID, CommentOID,
  ValueListRef, WhereClauseRef, def:ArchiveLocationID, DocumentRef/@leafID (ODM referential
  integrity, Define-XML 2.1 §4).
- DF-005 / DF-008 the data's values of a variable with a codelist are its CodeListItems or
  EnumeratedItems (non-extensible or sponsor codelist: DF-005 error; extensible CDISC
  codelist: DF-008 warning) (§5.3.9).
- DF-006 origins: a valid Type; Collected has a valid Source; Predecessor states its
  predecessor (§5.3.7.1 def:Origin).
- DF-007 every dataset file has an ItemGroupDef and every ItemGroupDef a file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from lxml import etree

from .rules import RAW_COLUMNS, as_text

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1",
      "xlink": "http://www.w3.org/1999/xlink"}
ORIGIN_TYPES = {"Collected", "Derived", "Assigned", "Protocol", "Predecessor", "Not Available"}
COLLECTED_SOURCES = {"Investigator", "Sponsor", "Subject", "Vendor"}


def _f(rule: str, dataset: str, variable=None, value=None, detail=None, row=None, usubjid=None) -> dict:
    return {"dataset": dataset, "variable": variable, "row": row, "usubjid": usubjid, "value": value,
            "detail": detail, "rule": rule}


def check_define(path: Path, datasets: dict[str, pd.DataFrame], ig, adamig, ct_packages=()) -> pd.DataFrame:
    """Raw findings (``RAW_COLUMNS`` + rule) of one define.xml against the datasets beside it.

    ``datasets``: name -> frame of the transport files in the folder of ``path``;
    ``ct_packages``: CDISC CT packages (for a codelist's extensible flag).
    """
    path = Path(path)
    folder = path.parent
    doc = etree.parse(str(path))
    x = lambda q, node=doc: node.xpath(q, namespaces=NS)  # noqa: E731
    out: list[dict] = []
    where = path.name

    oids = {kind: set(x(f"//{tag}/@OID")) for kind, tag in (
        ("item", "odm:ItemDef"), ("codelist", "odm:CodeList"), ("method", "odm:MethodDef"),
        ("comment", "def:CommentDef"), ("valuelist", "def:ValueListDef"), ("where", "def:WhereClauseDef"))}
    leaves = {lf.get("ID"): lf for lf in x("//def:leaf")}

    # DF-003 leaves resolve to files
    for lid, lf in leaves.items():
        href = lf.get(f"{{{NS['xlink']}}}href") or ""
        if href and not (folder / href).is_file():
            out.append(_f("CDISC-DF-003", where, None, href, f"def:leaf {lid} points to {href}, which is not in "
                                                               f"{folder.name}/"))
    # DF-004 references
    refs = [("//odm:ItemRef/@ItemOID", "item"), ("//odm:CodeListRef/@CodeListOID", "codelist"),
            ("//@MethodOID", "method"), ("//@def:CommentOID", "comment"),
            ("//def:ValueListRef/@ValueListOID", "valuelist"), ("//def:WhereClauseRef/@WhereClauseOID", "where")]
    for q, kind in refs:
        for oid in sorted(set(x(q)) - oids[kind]):
            out.append(_f("CDISC-DF-004", where, None, oid, f"{kind} reference {oid} has no definition"))
    for lid in sorted(set(x("//@def:ArchiveLocationID") + x("//def:DocumentRef/@leafID")) - set(leaves)):
        out.append(_f("CDISC-DF-004", where, None, lid, f"leaf reference {lid} has no def:leaf"))

    items = {it.get("OID"): it for it in x("//odm:ItemDef")}
    codelists = {cl.get("OID"): cl for cl in x("//odm:CodeList")}
    groups = x("//odm:ItemGroupDef")
    described = set()
    for g in groups:
        name = (g.get("Name") or "").upper()
        described.add(name)
        href = leaves.get(g.get(f"{{{NS['def']}}}ArchiveLocationID"))
        df = datasets.get(name)
        if df is None:
            if href is None:
                out.append(_f("CDISC-DF-007", name, None, None, "ItemGroupDef without a dataset file"))
            continue
        adam = g.get("Purpose") == "Analysis"
        # DF-001 Repeating
        if g.get("Repeating") == "No" and "USUBJID" in df.columns and df["USUBJID"].duplicated().any():
            n = int(df["USUBJID"].value_counts().max())
            out.append(_f("CDISC-DF-001", name, None, "No", f"Repeating=\"No\" but a subject has {n} records"))
        cls = g.get(f"{{{NS['def']}}}Class")
        for ref in x("odm:ItemRef", g):
            it = items.get(ref.get("ItemOID"))
            if it is None:
                continue
            var = it.get("Name")
            # DF-002 Mandatory for standard Req and keys
            std = (adamig.variable(name, var, class_name=_adam_class(adamig, name, cls)) if adam
                   else ig.variable(name, var))
            must = ref.get("KeySequence") is not None or (std is not None and std.core == "Req")
            if must and ref.get("Mandatory") != "Yes":
                why = "a key variable" if ref.get("KeySequence") is not None else f"Req in {'ADaMIG 1.3' if adam else 'SDTMIG 3.4'}"
                out.append(_f("CDISC-DF-002", name, var, ref.get("Mandatory"), f"Mandatory should be Yes: {why}"))
            # DF-006 origins
            for o in x("def:Origin", it):
                t, src = o.get("Type"), o.get("Source")
                if t not in ORIGIN_TYPES:
                    out.append(_f("CDISC-DF-006", name, var, t, f"origin type {t!r} is not one of {sorted(ORIGIN_TYPES)}"))
                elif t == "Collected" and src is not None and src not in COLLECTED_SOURCES:
                    out.append(_f("CDISC-DF-006", name, var, src, f"a Collected origin's Source must be one of "
                                                                  f"{sorted(COLLECTED_SOURCES)}"))
                elif t == "Predecessor" and not "".join(x("odm:Description//text()", o)).strip():
                    out.append(_f("CDISC-DF-006", name, var, t, "a Predecessor origin must name its predecessor"))
            # DF-005 / DF-008 data values vs codelist
            cref = x("odm:CodeListRef/@CodeListOID", it)
            if cref and var in df.columns and cref[0] in codelists and not x("def:ValueListRef", it):
                cl = codelists[cref[0]]
                if x("odm:ExternalCodeList", cl):
                    continue          # MedDRA/WHODrug: a dictionary, not enumerated terms
                allowed = set(x("odm:CodeListItem/@CodedValue|odm:EnumeratedItem/@CodedValue", cl))
                values = as_text(df[var]).astype(str).str.strip()
                bad = values.ne("") & ~values.isin(allowed)
                if bad.any():
                    code = x("odm:Alias[@Context='nci:ExtCodeID']/@Name", cl)
                    extensible = bool(code) and _extensible(code[0], ct_packages)
                    rule = "CDISC-DF-008" if extensible else "CDISC-DF-005"
                    for v in sorted(values[bad].unique())[:20]:
                        rows = np.flatnonzero((bad & values.eq(v)).to_numpy()) + 1
                        out.append(_f(rule, name, var, v, f"{len(rows)} record(s) hold a value that {cref[0]} "
                                                          "does not list", row=int(rows[0])))
    # DF-007 files without an ItemGroupDef (datasets of this define's purpose, beside it)
    for name in sorted(set(datasets) - described):
        out.append(_f("CDISC-DF-007", name, None, None, f"dataset file in {folder.name}/ has no ItemGroupDef in {where}"))
    frame = pd.DataFrame(out, columns=RAW_COLUMNS + ["rule"])
    return frame


def _extensible(code: str, packages) -> bool:
    """The CDISC codelist's own extensible flag (CT packages); a code none knows: not extensible."""
    for p in packages or ():
        cl = p.codelists.get(code)
        if cl is not None:
            return cl.extensible
    return False


def _adam_class(adamig, name: str, cls: str | None) -> str | None:
    from .standard import adam_class

    short = adam_class(name, [], cls)
    d = adamig.domains.get(short) if short else None
    return d.class_ if d is not None else None
