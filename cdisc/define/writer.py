"""Write a DefineModel as define.xml (Define-XML 2.1.0 on ODM 1.3.2).

OIDs follow one scheme, shared with Dataset-JSON (``itemGroupOID``/``itemOID``):

| element            | OID                                     |
|--------------------|-----------------------------------------|
| ItemGroupDef       | ``IG.<DS>``                             |
| ItemDef            | ``IT.<DS>.<VAR>``                       |
| value-level ItemDef| ``IT.<DS>.<VAR>.<where values>``        |
| def:ValueListDef   | ``VL.<DS>.<VAR>``                       |
| def:WhereClauseDef | ``WC.<DS>.<VAR>.<COMPARATOR>.<values>`` per condition, joined |
| def:leaf (dataset) | ``LF.<DS>``                             |
| split part (TCG §3.3.2) | ``IG.<DS><n>`` / ``LF.<DS><n>``, ItemRefs to ``IT.<DS>.<VAR>`` |
"""
from __future__ import annotations

from pathlib import Path

from cdisc.define.model import (
    DefineModel, DocumentRef, ItemDefinition, Origin, ValueLevel, WhereCondition, oid_part,
)
from cdisc.define.xsd import NS, STYLESHEET_NAME
from cdisc.errors import Problem, SpecError

ODM, DEF, XLINK = NS["odm"], NS["def"], NS["xlink"]
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DEFINE_VERSION = "2.1.0"
# Define-XML 2.1 §5.3.6.1: Length is given for text, integer and float only, and
# SignificantDigits for float only; ISO 8601 types carry neither.
_HAS_LENGTH = {"text", "integer", "float"}


def _d(name: str) -> str:
    return "{%s}%s" % (DEF, name)


def _o(name: str) -> str:
    return "{%s}%s" % (ODM, name)


def _sub(parent, tag: str, attrs: dict | None = None, text: str | None = None):
    from lxml import etree

    el = etree.SubElement(parent, tag)
    for key, value in (attrs or {}).items():
        if value is not None:
            el.set(key, str(value))
    if text is not None:
        el.text = text
    return el


def _description(parent, text: str | None, tag: str = "Description") -> None:
    if text is None:
        return
    desc = _sub(parent, _o(tag))
    _sub(desc, _o("TranslatedText"), {XML_LANG: "en"}, text)


def _document_refs(parent, refs: list[DocumentRef]) -> None:
    for ref in refs:
        doc = _sub(parent, _d("DocumentRef"), {"leafID": ref.leaf_id})
        if ref.pages or ref.first_page is not None:
            _sub(doc, _d("PDFPageRef"), {
                "PageRefs": ref.pages, "FirstPage": ref.first_page,
                "LastPage": ref.last_page, "Type": ref.page_type,
            })


def _origin(parent, origin: Origin | None) -> None:
    if origin is None:
        return
    el = _sub(parent, _d("Origin"), {"Type": origin.type, "Source": origin.source})
    _description(el, origin.description)
    _document_refs(el, origin.documents)


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def where_clause_oid(dataset: str, variable: str, where: list[WhereCondition]) -> str:
    """``WC.<DS>.<VAR>.<COMP>.<values>`` for each condition (EQ is left implicit)."""
    parts = []
    for cond in where:
        comp = "" if cond.comparator == "EQ" else f"{cond.comparator}."
        parts.append(f"{oid_part(cond.variable)}.{comp}{oid_part('_'.join(cond.values))}")
    return f"WC.{dataset}.{variable}." + ".".join(parts)


def _check_model(model: DefineModel) -> None:
    """Cross-references the XSD cannot see, caught before anything is written."""
    problems: list[Problem] = []
    known = {
        "standard": {s.oid for s in model.standards},
        "codelist": {c.oid for c in model.codelists},
        "method": {m.oid for m in model.methods},
        "comment": {c.oid for c in model.comments},
        "leaf": {d.id for d in model.documents},
    }

    def need(kind: str, oid: str | None, where: str) -> None:
        if oid is not None and oid not in known[kind]:
            problems.append(Problem(f"{where} refers to {kind} {oid!r}, which is not defined",
                                    key=where, hint=f"add it to the model's {kind}s"))

    for kind, objs in (("standard", model.standards), ("codelist", model.codelists),
                       ("method", model.methods), ("comment", model.comments),
                       ("leaf", model.documents)):
        ids = [getattr(o, "oid", None) or getattr(o, "id") for o in objs]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(Problem(f"{kind} {dup!r} is defined more than once", key=f"{kind}s"))
    names = [n for ds in model.datasets for n in [ds.name] + [p.name for p in ds.split_parts]]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(f"dataset {dup} is listed more than once", key="datasets"))
    for ref in model.annotated_crf + model.supplemental_docs:
        need("leaf", ref.leaf_id, "documents")
    need("comment", model.comment_oid, "MetaDataVersion")
    by_name = {ds.name: ds for ds in model.datasets}
    for ds in model.datasets:
        need("standard", ds.standard_oid, f"{ds.name}")
        need("comment", ds.comment_oid, f"{ds.name}")
        for part in ds.split_parts:
            need("comment", part.comment_oid, f"{part.name}")
        for item in ds.items:
            where = f"{ds.name}.{item.name}"
            need("codelist", item.codelist_oid, where)
            need("method", item.method_oid, where)
            need("comment", item.comment_oid, where)
            for ref in (item.origin.documents if item.origin else []):
                need("leaf", ref.leaf_id, where)
    for cl in model.codelists:
        need("standard", cl.standard_oid, cl.oid)
        need("comment", cl.comment_oid, cl.oid)
    for m in model.methods + model.comments:
        for ref in m.documents:
            need("leaf", ref.leaf_id, m.oid)
    for vl in model.value_levels:
        where = f"value level {vl.dataset}.{vl.variable} [{vl.suffix}]"
        ds = by_name.get(vl.dataset)
        if ds is None or vl.variable not in {i.name for i in ds.items}:
            problems.append(Problem(f"{where}: {vl.dataset}.{vl.variable} is not a described "
                                    "variable", key="value_levels"))
            continue
        for cond in vl.where:
            if cond.variable not in {i.name for i in ds.items}:
                problems.append(Problem(f"{where}: where-clause variable {cond.variable} is not "
                                        f"in {vl.dataset}", key="value_levels"))
        if vl.data_type is None:
            problems.append(Problem(f"{where}: no data type", key="value_levels",
                                    hint="set data_type or run describe_value_levels"))
        need("codelist", vl.codelist_oid, where)
        need("method", vl.method_oid, where)
        need("comment", vl.comment_oid, where)
    if problems:
        raise SpecError(problems)


def _item_def(parent, oid: str, name: str, item: ItemDefinition | ValueLevel,
              label: str | None, value_list_oid: str | None = None) -> None:
    has_length = item.data_type in _HAS_LENGTH
    el = _sub(parent, _o("ItemDef"), {
        "OID": oid, "Name": name, "SASFieldName": name, "DataType": item.data_type,
        "Length": item.length if has_length else None,
        "SignificantDigits": item.significant_digits if item.data_type == "float" else None,
        _d("DisplayFormat"): item.display_format, _d("CommentOID"): item.comment_oid,
    })
    _description(el, label)
    if item.codelist_oid:
        _sub(el, _o("CodeListRef"), {"CodeListOID": item.codelist_oid})
    _origin(el, item.origin)
    if value_list_oid:
        _sub(el, _d("ValueListRef"), {"ValueListOID": value_list_oid})


def _item_group(mdv, ds, name: str, href: str, description: str, comment_oid: str | None) -> None:
    """One ItemGroupDef with its def:leaf; ``name`` is ``ds.name`` or one of its split
    parts, whose ItemRefs point at the dataset's own ItemDefs (``IT.<DS>.<VAR>``)."""
    ig = _sub(mdv, _o("ItemGroupDef"), {
        "OID": f"IG.{name}", "Domain": ds.domain, "Name": name,
        "Repeating": _yes_no(ds.repeating), "IsReferenceData": _yes_no(ds.is_reference_data),
        "SASDatasetName": name, "Purpose": ds.purpose, _d("Structure"): ds.structure,
        _d("StandardOID"): ds.standard_oid, _d("HasNoData"): "Yes" if ds.has_no_data else None,
        _d("ArchiveLocationID"): f"LF.{name}", _d("CommentOID"): comment_oid,
    })
    _description(ig, description)
    for order, item in enumerate(ds.items, start=1):
        _sub(ig, _o("ItemRef"), {
            "ItemOID": f"IT.{ds.name}.{item.name}", "OrderNumber": order,
            "Mandatory": _yes_no(item.mandatory), "KeySequence": item.key_sequence,
            "MethodOID": item.method_oid, "Role": item.role,
        })
    _sub(ig, _d("Class"), {"Name": ds.class_})
    leaf = _sub(ig, _d("leaf"), {"ID": f"LF.{name}", "{%s}href" % XLINK: href})
    _sub(leaf, _d("title"), text=href)


def build_define(model: DefineModel):
    """The define.xml document (lxml ElementTree) for ``model``.

    Steps (element order is the XSD's sequence for MetaDataVersion):
        1. check cross-references (codelists, methods, comments, standards, leaves,
           value-level variables); any dangling one raises SpecError listing all;
        2. ODM root with ODMVersion 1.3.2, FileType Snapshot, def:Context, and the
           ``xml-stylesheet`` processing instruction pointing at define2-1.xsl;
        3. Study/GlobalVariables, MetaDataVersion with def:DefineVersion 2.1.0;
        4. def:Standards, def:AnnotatedCRF, def:SupplementalDoc;
        5. def:ValueListDef per variable with value-level metadata, then the distinct
           def:WhereClauseDefs;
        6. ItemGroupDef per dataset (ItemRefs in variable order, def:Class, def:leaf);
        7. ItemDef per dataset variable, then per value-level item;
        8. CodeList, MethodDef, def:CommentDef, and the document def:leafs.
    """
    from lxml import etree

    _check_model(model)
    st = model.study
    root = etree.Element(_o("ODM"), nsmap={None: ODM, "def": DEF, "xlink": XLINK})
    created = st.created.isoformat(
        timespec="microseconds" if st.created.microsecond else "seconds")
    for key, value in (("ODMVersion", "1.3.2"), ("FileType", "Snapshot"),
                       ("FileOID", st.file_oid), ("CreationDateTime", created),
                       ("Originator", st.originator), ("SourceSystem", st.source_system),
                       ("SourceSystemVersion", st.source_system_version),
                       (_d("Context"), st.context)):
        if value is not None:
            root.set(key, value)
    tree = etree.ElementTree(root)
    root.addprevious(etree.ProcessingInstruction(
        "xml-stylesheet", f'type="text/xsl" href="{STYLESHEET_NAME}"'))

    study = _sub(root, _o("Study"), {"OID": st.oid})
    gv = _sub(study, _o("GlobalVariables"))
    _sub(gv, _o("StudyName"), text=st.name)
    _sub(gv, _o("StudyDescription"), text=st.description)
    _sub(gv, _o("ProtocolName"), text=st.protocol_name)
    mdv = _sub(study, _o("MetaDataVersion"), {
        "OID": st.metadata_version_oid, "Name": st.metadata_version_name,
        "Description": st.metadata_version_description, _d("DefineVersion"): DEFINE_VERSION,
        _d("CommentOID"): model.comment_oid,
    })

    standards = _sub(mdv, _d("Standards"))
    for s in model.standards:
        _sub(standards, _d("Standard"), {"OID": s.oid, "Name": s.name, "Type": s.type,
                                          "PublishingSet": s.publishing_set,
                                          "Version": s.version, "Status": s.status})
    if model.annotated_crf:
        _document_refs(_sub(mdv, _d("AnnotatedCRF")), model.annotated_crf)
    if model.supplemental_docs:
        _document_refs(_sub(mdv, _d("SupplementalDoc")), model.supplemental_docs)

    # Value-level metadata, grouped by parent variable in first-seen order.
    groups: dict[tuple[str, str], list[ValueLevel]] = {}
    for vl in model.value_levels:
        groups.setdefault((vl.dataset, vl.variable), []).append(vl)
    vl_items: list[tuple[str, ValueLevel]] = []
    where_defs: dict[str, list[WhereCondition]] = {}
    value_list_oids: dict[tuple[str, str], str] = {}
    for (ds, var), entries in groups.items():
        vl_oid = f"VL.{ds}.{var}"
        value_list_oids[(ds, var)] = vl_oid
        vld = _sub(mdv, _d("ValueListDef"), {"OID": vl_oid})
        used: set[str] = set()
        for order, vl in enumerate(entries, start=1):
            item_oid = f"IT.{ds}.{var}.{vl.suffix}"
            n = 2
            while item_oid in used:  # two clauses whose values sanitise alike
                item_oid, n = f"IT.{ds}.{var}.{vl.suffix}.{n}", n + 1
            used.add(item_oid)
            wc_oid = where_clause_oid(ds, var, vl.where)
            n = 2
            base = wc_oid
            while wc_oid in where_defs and where_defs[wc_oid] != vl.where:
                wc_oid, n = f"{base}.{n}", n + 1
            where_defs[wc_oid] = vl.where
            ref = _sub(vld, _o("ItemRef"), {"ItemOID": item_oid, "OrderNumber": order,
                                            "Mandatory": _yes_no(vl.mandatory),
                                            "MethodOID": vl.method_oid})
            _sub(ref, _d("WhereClauseRef"), {"WhereClauseOID": wc_oid})
            vl_items.append((item_oid, vl))
    for wc_oid, where in where_defs.items():
        ds = wc_oid.split(".")[1]
        wcd = _sub(mdv, _d("WhereClauseDef"), {"OID": wc_oid})
        for cond in where:
            rc = _sub(wcd, _o("RangeCheck"), {"Comparator": cond.comparator, "SoftHard": "Soft",
                                              _d("ItemOID"): f"IT.{ds}.{cond.variable}"})
            for value in cond.values:
                _sub(rc, _o("CheckValue"), text=value)

    for ds in model.datasets:
        _item_group(mdv, ds, ds.name, ds.href, ds.label, ds.comment_oid)
        # each split file (FDA TCG §3.3.2) right after its dataset, with its own leaf
        for part in ds.split_parts:
            _item_group(mdv, ds, part.name, part.href, part.description, part.comment_oid)

    for ds in model.datasets:
        for item in ds.items:
            _item_def(mdv, f"IT.{ds.name}.{item.name}", item.name, item, item.label,
                      value_list_oids.get((ds.name, item.name)))
    for item_oid, vl in vl_items:
        _item_def(mdv, item_oid, vl.variable, vl, vl.label)

    for cl in model.codelists:
        el = _sub(mdv, _o("CodeList"), {"OID": cl.oid, "Name": cl.name, "DataType": cl.data_type,
                                         _d("StandardOID"): cl.standard_oid,
                                         _d("CommentOID"): cl.comment_oid})
        if cl.external is not None:
            _sub(el, _o("ExternalCodeList"), {"Dictionary": cl.external.dictionary,
                                              "Version": cl.external.version,
                                              "ref": cl.external.ref, "href": cl.external.href})
        decoded = cl.has_decodes
        for term in cl.terms:
            tag = "CodeListItem" if decoded else "EnumeratedItem"
            t = _sub(el, _o(tag), {"CodedValue": term.coded_value, "Rank": term.rank,
                                   "OrderNumber": term.order,
                                   _d("ExtendedValue"): "Yes" if term.extended else None})
            if decoded:
                # ODM: every CodeListItem has a Decode; a term without one decodes to itself.
                _description(t, term.decode if term.decode is not None else term.coded_value,
                             tag="Decode")
            if term.c_code:
                _sub(t, _o("Alias"), {"Context": "nci:ExtCodeID", "Name": term.c_code})
        if cl.c_code:
            _sub(el, _o("Alias"), {"Context": "nci:ExtCodeID", "Name": cl.c_code})

    for m in model.methods:
        el = _sub(mdv, _o("MethodDef"), {"OID": m.oid, "Name": m.name, "Type": m.type})
        _description(el, m.description)
        if m.expression:
            _sub(el, _o("FormalExpression"), {"Context": m.expression_context}, m.expression)
        _document_refs(el, m.documents)
    for c in model.comments:
        el = _sub(mdv, _d("CommentDef"), {"OID": c.oid})
        _description(el, c.description)
        _document_refs(el, c.documents)
    for doc in model.documents:
        leaf = _sub(mdv, _d("leaf"), {"ID": doc.id, "{%s}href" % XLINK: doc.href})
        _sub(leaf, _d("title"), text=doc.title)
    return tree


def write_define(path, model: DefineModel) -> None:
    """Write ``model`` as define.xml (UTF-8, two-space indent, same bytes every time).

    Args:
        path: output file, usually ``define.xml`` beside the .xpt files.
        model: the Define-XML 2.1 model (see :mod:`cdisc.define.model`).

    Raises:
        SpecError: a reference in the model does not resolve (see :func:`build_define`).

    The stylesheet is not copied here; call ``copy_stylesheet(path.parent)``.
    """
    from lxml import etree

    tree = build_define(model)
    # lxml writes the declaration with single quotes; the usual double-quoted form is
    # written by hand (tostring of the tree keeps the stylesheet PI before the root).
    body = etree.tostring(tree, encoding="UTF-8", pretty_print=True, xml_declaration=False)
    Path(path).write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n' + body)
