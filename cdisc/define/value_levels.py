"""Value-level metadata of one dataset for define.xml (Define-XML 2.1 §5.3.7-5.3.8).

Split out of :mod:`cdisc.define.from_build`: LBORRES/LBSTRESN per LBTESTCD, RSORRES per
RSTESTCD, PCSTRESN per PCTESTCD, ISORRES per ISTESTCD, AVAL per PARAMCD (ADaM; AVALC and the
per-parameter methods are added by :mod:`cdisc.define.adam_params`) and QVAL per QNAM
(SUPP--, with each qualifier's QORIG, codelist, method and comment from the SDTM spec).
"""
from __future__ import annotations

import pandas as pd

from cdisc.define.model import (
    Comment, Document, DocumentRef, Method, Origin, ValueLevel, origin_from_meta,
)
from cdisc.define.roles_methods import _rule_method

ACRF = Document(id="LF.acrf", href="acrf.pdf", title="Annotated Case Report Form")
# (dataset test, where-variable, result variables, variable naming the code) per
# Define-XML 2.1 §5.3.7; an ADaM dataset qualifies by having PARAMCD, a SUPP-- by QNAM.
VLM_TARGETS = [
    (lambda ds, std: ds == "LB", "LBTESTCD", ["LBORRES", "LBSTRESN"], "LBTEST"),
    (lambda ds, std: ds == "RS", "RSTESTCD", ["RSORRES"], "RSTEST"),
    (lambda ds, std: ds == "PC", "PCTESTCD", ["PCSTRESN"], "PCTEST"),
    (lambda ds, std: ds == "IS", "ISTESTCD", ["ISORRES"], "ISTEST"),
    (lambda ds, std: std == "ADaM", "PARAMCD", ["AVAL"], "PARAM"),
    (lambda ds, std: std == "SDTM" and ds.startswith("SUPP"), "QNAM", ["QVAL"], "QLABEL"),
]


def _supp_qualifiers(sdtm_specs: dict) -> dict[str, dict[str, object]]:
    """SUPP-- dataset name -> QNAM -> the spec's Supplemental entry."""
    out: dict[str, dict[str, object]] = {}
    for dom, (spec, _) in sdtm_specs.items():
        if spec.supplemental:
            out[f"SUPP{dom}"] = {s.name: s for s in spec.supplemental}
    return out


def _with_standard_core(meta, data):
    """The dataset's metadata with the standard's Core designations (SDTMIG 3.4 / ADaMIG 1.3:
    Req makes an ItemRef Mandatory), without adding variables the dataset does not have."""
    from cdisc.standards import load_standard
    from cdisc.validation.standard import merge_with_standard

    merged = merge_with_standard(meta.name, meta, list(data.columns), None, load_standard("sdtmig", "3.4"),
                                 load_standard("adamig", "1.3"), add_missing=False)
    return merged


def _qorig_origin(sup, acrf: bool = True) -> Origin:
    """def:Origin of one supplemental qualifier: its QORIG (``CRF`` = Collected from the
    Investigator), else the origin its spec rule implies (sdtm/spec.py defaults)."""
    meta = sup.meta()
    if sup.qorig:
        meta = meta.model_copy(update={"origin": sup.qorig})
    origin = origin_from_meta(meta, dataset="SUPP")
    if origin.type == "Collected" and origin.source == "Investigator" and acrf:
        origin = origin.model_copy(update={"documents": [DocumentRef(leaf_id=ACRF.id)]})
    return origin


def value_levels_for(ds, items: dict[str, object], supp: dict[str, object],
                     methods: list[Method], comments: list[Comment], acrf: bool = True) -> list[ValueLevel]:
    """The ValueLevel entries of one dataset (see VLM_TARGETS), data type/length/digits
    left for :func:`describe_value_levels`. Adds MethodDefs/CommentDefs the SUPP-- QVAL
    entries need to ``methods``/``comments``."""
    out: list[ValueLevel] = []
    df = ds.data
    for applies, code_var, targets, label_var in VLM_TARGETS:
        if not applies(ds.name, ds.standard) or code_var not in df.columns:
            continue
        codes = df[code_var].astype(str).str.strip()
        names = (df[label_var].astype(str).str.strip() if label_var in df.columns
                 else pd.Series([""] * len(df), index=df.index))
        first_name = names.groupby(codes, sort=True).first()
        for target in targets:
            if target not in df.columns:
                continue
            parent = items[target]
            col = df[target]
            present = (col.notna() if pd.api.types.is_numeric_dtype(col)
                       else col.astype(str).str.strip() != "")
            for code in sorted(set(codes[present & (codes != "")])):
                label = first_name.get(code) or code
                fields: dict[str, object] = {
                    "dataset": ds.name, "variable": target,
                    "where": [(code_var, "EQ", [code])],
                    "label": f"{parent.label}: {label}" if code_var != "QNAM" else label,
                    "origin": parent.origin, "method_oid": parent.method_oid,
                }
                sup = supp.get(code) if code_var == "QNAM" else None
                if sup is not None:
                    fields["origin"] = _qorig_origin(sup, acrf)
                    fields["mandatory"] = True
                    if sup.codelist:
                        # The ItemDef's DataType must be its CodeList's (Define-XML 2.1
                        # §5.3.9): coded QVALs stay text even when they read as numbers.
                        fields["codelist_oid"] = f"CL.{sup.codelist}"
                        fields["data_type"] = "text"
                    text = sup.method
                    if fields["origin"].type == "Derived" and not text:
                        text = _rule_method(sup)
                    if text:
                        oid = f"MT.{ds.name}.{target}.{code}"
                        methods.append(Method(oid=oid, name=f"Algorithm to derive {code}",
                                              description=text))
                        fields["method_oid"] = oid
                    if sup.comment:
                        oid = f"COM.{ds.name}.{target}.{code}"
                        comments.append(Comment(oid=oid, description=sup.comment))
                        fields["comment_oid"] = oid
                out.append(ValueLevel(**fields))
    return out
