"""Define-XML 2.1: model, writer, offline XSD validation and the define2-1.xsl stylesheet.

Typical use::

    dm, methods, comments = describe_dataset(dm_meta, dm_df, href="dm.xpt",
                                             standard_oid="STD.SDTMIG.3-4")
    model = DefineModel(study=..., standards=[...], datasets=[dm, ...],
                        methods=methods, comments=comments, codelists=[...])
    write_define(out / "define.xml", model)
    copy_stylesheet(out)
    assert validate_define(out / "define.xml") == []
"""
from cdisc.define.model import (
    CodeList, Comment, DatasetDefinition, DefineModel, Document, DocumentRef,
    ExternalDictionary, ItemDefinition, Method, Origin, Standard, Study, Term, ValueLevel,
    WhereCondition, describe_dataset, describe_value_levels, describe_variable,
    iso8601_data_type, origin_from_meta,
)
from cdisc.define.writer import build_define, write_define
from cdisc.define.xsd import (
    check_references, copy_stylesheet, load_schema, render_html, schema_path, stylesheet_path,
    validate_define,
)

__all__ = [
    "CodeList", "Comment", "DatasetDefinition", "DefineModel", "Document", "DocumentRef",
    "ExternalDictionary", "ItemDefinition", "Method", "Origin", "Standard", "Study", "Term",
    "ValueLevel", "WhereCondition", "build_define", "check_references", "copy_stylesheet",
    "describe_dataset", "describe_value_levels", "describe_variable", "iso8601_data_type",
    "load_schema", "origin_from_meta", "render_html", "schema_path", "stylesheet_path",
    "validate_define", "write_define",
]
