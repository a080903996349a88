"""ADaM parameter metadata for define.xml: one MethodDef per PARAMCD, AVAL/AVALC value-level
metadata and the codelists of PARAMCD, PARAM, AVALC, EVNTDESC, AVISIT (Define-XML 2.1
§5.3.7-5.3.10, ADaMIG 1.3 §3.3).

Where a BDS spec lists ``parameters:`` (adam/spec.py ``Parameter``: paramcd, param, method,
avalc, aval_unit, comment), each parameter's ``method`` is the MethodDef of its AVAL and
AVALC value-level items (``MT.<DS>.AVAL.<PARAMCD>``, ``MT.<DS>.AVALC.<PARAMCD>``: OS, LFS and
DOR each state their own events and censoring), its ``comment`` a CommentDef and its
``avalc`` the CodeList of its AVALC value-level item. Without ``parameters:`` the value-level
items keep the dataset variable's method and the codelists come from the data.

Codelists (OIDs ``CL.<DS>.<VAR>``, sponsor-defined, no C-codes):

* PARAMCD: CodeListItems PARAMCD with PARAM as Decode (the spec's parameters in spec order,
  then any pair only the data has);
* PARAM: EnumeratedItems of the PARAM texts;
* AVALC (ADRS), EVNTDESC, CNSDTDSC, AVISIT: EnumeratedItems of the values in the data
  (AVALC: the parameters' ``avalc`` values first) — only where the variable has no CT
  codelist of its own.
"""
from __future__ import annotations

import pandas as pd

from cdisc.define.model import CodeList, Comment, DatasetDefinition, Method, Term, ValueLevel

# variables given a data-driven codelist when the dataset has them and the spec names none
DATA_CODELISTS = ("EVNTDESC", "CNSDTDSC", "AVISIT")
AVALC_CODELIST_DATASETS = ("ADRS",)


def _text(series: pd.Series) -> pd.Series:
    return series.astype(str).str.strip()


def _numeric(values: list[str]) -> bool:
    """Values that all read as numbers ("5.4", "<0.1"): the text of a numeric result."""
    nums = pd.to_numeric(pd.Series([v.lstrip("<>=") for v in values], dtype=object), errors="coerce")
    return bool(values) and bool(nums.notna().all())


def _ordered_unique(values) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        if v and v not in seen:
            seen[v] = None
    return list(seen)


def _enumerated(oid: str, name: str, values: list[str]) -> CodeList:
    return CodeList(oid=oid, name=name, data_type="text",
                    terms=[Term(coded_value=v, order=i) for i, v in enumerate(values, start=1)])


def parameter_metadata(ds_name: str, df: pd.DataFrame, dataset: DatasetDefinition,
                       parameters: list, value_levels: list[ValueLevel]
                       ) -> tuple[list[ValueLevel], list[CodeList], list[Method], list[Comment]]:
    """Value-level metadata and codelists of one ADaM BDS dataset's parameters.

    Args:
        ds_name: dataset name (ADTTE).
        df: its data as transported.
        dataset: its DatasetDefinition (items get their ``codelist_oid`` set here).
        parameters: the spec's ``parameters:`` (may be empty).
        value_levels: this dataset's value-level items so far (AVAL per PARAMCD from
            ``VLM_TARGETS``); returned with per-parameter methods and AVALC items added.

    Returns:
        ``(value_levels, codelists, methods, comments)`` to add to the model.

    Steps:
        1. PARAMCD -> PARAM pairs: the spec's parameters, then the data's other pairs;
        2. AVAL items: a parameter's method becomes ``MT.<DS>.AVAL.<PARAMCD>`` and its
           comment ``COM.<DS>.AVAL.<PARAMCD>``;
        3. AVALC items, one per PARAMCD whose AVALC is non-blank in the data or whose
           parameter lists ``avalc``: where PARAMCD EQ code, method as for AVAL
           (``MT.<DS>.AVALC.<PARAMCD>``, else the AVALC variable's), codelist
           ``CL.<DS>.AVALC.<PARAMCD>`` of the parameter's ``avalc`` (then data values it
           lacks) or of the data's values;
           (a data-only AVALC whose values all read as numbers gets none);
        4. codelists PARAMCD (decoded by PARAM), PARAM, AVALC for ADRS, EVNTDESC/CNSDTDSC/
           AVISIT from the data, attached to items that have no codelist.
    """
    items = {i.name: i for i in dataset.items}
    if "PARAMCD" not in df.columns:
        return value_levels, [], [], []
    # ADaMIG 1.3 §3.3.4: PARAM and PARAMCD are Req in every BDS dataset; ADaM BDS for
    # time-to-event (a dataset with CNSR): AVAL and CNSR are Req too.
    for name in ("PARAMCD", "PARAM") + (("AVAL", "CNSR") if "CNSR" in items else ()):
        if name in items:
            items[name].mandatory = True
    by_code = {p.paramcd: p for p in parameters}
    codes = _text(df["PARAMCD"])
    names = _text(df["PARAM"]) if "PARAM" in df.columns else codes
    pairs: dict[str, str] = {p.paramcd: p.param for p in parameters}
    for code, name in zip(codes, names):
        if code and code not in pairs:
            pairs[code] = name
    methods: list[Method] = []
    comments: list[Comment] = []
    codelists: list[CodeList] = []

    def param_method(var: str, code: str) -> str | None:
        p = by_code.get(code)
        if p is None or not p.method:
            return None
        oid = f"MT.{ds_name}.{var}.{code}"
        methods.append(Method(oid=oid, name=f"Algorithm to derive {var} where PARAMCD = {code}",
                              description=p.method))
        return oid

    def param_comment(var: str, code: str) -> str | None:
        p = by_code.get(code)
        if p is None or not p.comment:
            return None
        oid = f"COM.{ds_name}.{var}.{code}"
        comments.append(Comment(oid=oid, description=p.comment))
        return oid

    out: list[ValueLevel] = []
    for vl in value_levels:
        if vl.dataset == ds_name and vl.variable == "AVAL" and len(vl.where) == 1 \
                and vl.where[0].variable == "PARAMCD":
            code = vl.where[0].values[0]
            update = {"label": f"{items['AVAL'].label}: {pairs.get(code, code)}"} if "AVAL" in items else {}
            if (oid := param_method("AVAL", code)) is not None:
                update["method_oid"] = oid
            if (oid := param_comment("AVAL", code)) is not None:
                update["comment_oid"] = oid
            vl = vl.model_copy(update=update)
        out.append(vl)

    if "AVALC" in df.columns and "AVALC" in items:
        avalc = _text(df["AVALC"])
        parent = items["AVALC"]
        for code in sorted(set(codes[(avalc != "") & (codes != "")]) | {
                p.paramcd for p in parameters if p.avalc}):
            p = by_code.get(code)
            data_values = _ordered_unique(sorted(set(avalc[(codes == code) & (avalc != "")])))
            if not (p and p.avalc) and _numeric(data_values):
                data_values = []              # AVALC as the text of a numeric AVAL: no codelist
            values = _ordered_unique(list(p.avalc or []) + data_values) if p else data_values
            cl_oid = None
            if values:
                cl_oid = f"CL.{ds_name}.AVALC.{code}"
                codelists.append(_enumerated(cl_oid, f"{ds_name} AVALC where PARAMCD = {code}",
                                             values))
            out.append(ValueLevel(
                dataset=ds_name, variable="AVALC", where=[("PARAMCD", "EQ", [code])],
                label=f"{parent.label}: {pairs.get(code, code)}", origin=parent.origin,
                method_oid=param_method("AVALC", code) or parent.method_oid,
                comment_oid=param_comment("AVALC", code), codelist_oid=cl_oid,
                data_type="text"))

    def attach(var: str, codelist: CodeList) -> None:
        if var in items and items[var].codelist_oid is None and codelist.terms:
            items[var].codelist_oid = codelist.oid
            codelists.append(codelist)

    attach("PARAMCD", CodeList(
        oid=f"CL.{ds_name}.PARAMCD", name=f"{ds_name} Parameter Code", data_type="text",
        terms=[Term(coded_value=c, decode=n, order=i)
               for i, (c, n) in enumerate(pairs.items(), start=1)]))
    attach("PARAM", _enumerated(f"CL.{ds_name}.PARAM", f"{ds_name} Parameter",
                                _ordered_unique(pairs.values())))
    extra = list(DATA_CODELISTS) + (["AVALC"] if ds_name in AVALC_CODELIST_DATASETS else [])
    for var in extra:
        if var not in df.columns:
            continue
        values = sorted(set(_text(df[var])) - {""})
        if var == "AVALC":
            values = _ordered_unique([v for p in parameters for v in (p.avalc or [])] + values)
        attach(var, _enumerated(f"CL.{ds_name}.{var}", f"{ds_name} {var}", values))
    return out, codelists, methods, comments
