"""Issue 12, define.xml: ADaM Repeating/Mandatory, one MethodDef per PARAMCD through AVAL/AVALC
value-level metadata, PARAMCD/PARAM/AVALC/EVNTDESC/AVISIT codelists, MedDRA ExternalCodeList
with origin Assigned, and a clear error for a dictionary without a version.

The shipped build is used as it is; ``parameters:`` are added to a tmp copy of the specs
(the define reads them from the specs, the data does not change).
"""
from __future__ import annotations

import shutil

import pytest
import yaml
from lxml import etree

from cdisc.define import validate_define
from cdisc.define.from_build import build_define_models, read_build, write_defines
from cdisc.define.xsd import NS
from cdisc.errors import SpecError
from conftest import SPECS

DEF = "{%s}" % NS["def"]
# the shipped specs' own parameters (specs/adam/*.yaml), which the define must state one by one
TTE_PARAMS = yaml.safe_load((SPECS / "adam" / "adtte.yaml").read_text(encoding="utf-8"))["parameters"]
RS_PARAMS = {p["paramcd"]: p for p in
             yaml.safe_load((SPECS / "adam" / "adrs.yaml").read_text(encoding="utf-8"))["parameters"]}


def _specs(tmp_path, params=None, study_edit=None):
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs, ignore=shutil.ignore_patterns("__pycache__"))
    for name, plist in (params or {}).items():
        path = specs / "adam" / f"{name}.yaml"
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec["parameters"] = plist
        path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    if study_edit is not None:
        path = specs / "study.yaml"
        study = yaml.safe_load(path.read_text(encoding="utf-8"))
        study_edit(study)
        path.write_text(yaml.safe_dump(study, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return specs


def _x(doc, q):
    return doc.xpath(q, namespaces=NS)


@pytest.fixture(scope="module")
def datasets(built):
    return read_build(built.out)


@pytest.fixture(scope="module")
def with_params(built, datasets, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("i12")
    paths = write_defines(built.out, SPECS, {"SDTM": tmp / "sdtm", "ADaM": tmp / "adam"},
                          html=False, datasets=datasets)
    return {k: etree.parse(str(p)) for k, p in paths.items()}, paths


def test_repeating_and_mandatory(with_params):
    docs, _ = with_params
    adam = docs["ADaM"]
    rep = {g.get("Name"): g.get("Repeating") for g in _x(adam, "//odm:ItemGroupDef")}
    assert rep["ADSL"] == "No"
    assert {rep[n] for n in rep if n != "ADSL"} == {"Yes"} and {"ADAE", "ADLB", "ADTTE"} <= set(rep)
    mand = {(r.getparent().get("Name"), r.get("ItemOID").split(".")[-1]): r.get("Mandatory")
            for r in _x(adam, "//odm:ItemGroupDef/odm:ItemRef")}
    for var in ("PARAMCD", "PARAM", "AVAL", "CNSR", "USUBJID"):
        assert mand[("ADTTE", var)] == "Yes", var
    assert mand[("ADLB", "PARAMCD")] == "Yes" and mand[("ADAE", "AEDECOD")] == "Yes"


def test_one_method_per_parameter_through_value_level_metadata(with_params, datasets):
    docs, paths = with_params
    adam = docs["ADaM"]
    assert all(validate_define(p) == [] for p in paths.values())
    codes = sorted(set(datasets["ADTTE"].data["PARAMCD"]))
    assert codes == ["DOR", "LFS", "OS", "OSSENS"] == sorted(p["paramcd"] for p in TTE_PARAMS)
    refs = _x(adam, "//def:ValueListDef[@OID='VL.ADTTE.AVAL']/odm:ItemRef")
    assert [r.get("ItemOID") for r in refs] == [f"IT.ADTTE.AVAL.{c}" for c in codes]
    methods = [r.get("MethodOID") for r in refs]
    assert methods == [f"MT.ADTTE.AVAL.{c}" for c in codes] and len(set(methods)) == 4
    for ref, code in zip(refs, codes):
        wc = ref.find("def:WhereClauseRef", NS).get("WhereClauseOID")
        rc = _x(adam, f"//def:WhereClauseDef[@OID='{wc}']/odm:RangeCheck")
        assert len(rc) == 1 and rc[0].get("Comparator") == "EQ"
        assert rc[0].get(DEF + "ItemOID") == "IT.ADTTE.PARAMCD"
        assert [c.text for c in rc[0].findall("odm:CheckValue", NS)] == [code]
        text = _x(adam, f"//odm:MethodDef[@OID='MT.ADTTE.AVAL.{code}']//odm:TranslatedText/text()")
        assert text == [next(p["method"] for p in TTE_PARAMS if p["paramcd"] == code)]
    # the OS comment
    os_param = next(p for p in TTE_PARAMS if p["paramcd"] == "OS")
    assert _x(adam, "//def:CommentDef[@OID='COM.ADTTE.AVAL.OS']//odm:TranslatedText/text()") == [
        os_param["comment"].strip()]
    assert "lost to follow-up" in os_param["method"].lower()      # the protocol's definition, stated
    assert _x(adam, "//odm:ItemDef[@OID='IT.ADTTE.AVAL.OS']/odm:Description/odm:TranslatedText/text()") == [
        "Analysis Value: Overall Survival, Protocol: Death or Lost to Follow-up (days)"]
    # the AVAL ItemDef points at its value list
    assert _x(adam, "//odm:ItemDef[@OID='IT.ADTTE.AVAL']/def:ValueListRef/@ValueListOID") == ["VL.ADTTE.AVAL"]


def test_avalc_value_level_metadata_and_codelists(with_params, datasets):
    adam = with_params[0]["ADaM"]
    df = datasets["ADRS"].data
    avalc_codes = sorted(set(df.loc[df["AVALC"].str.strip() != "", "PARAMCD"]))
    refs = _x(adam, "//def:ValueListDef[@OID='VL.ADRS.AVALC']/odm:ItemRef")
    assert [r.get("ItemOID") for r in refs] == [f"IT.ADRS.AVALC.{c}" for c in avalc_codes]
    bor = next(r for r in refs if r.get("ItemOID") == "IT.ADRS.AVALC.BOR")
    assert bor.get("MethodOID") == "MT.ADRS.AVALC.BOR"
    item = _x(adam, "//odm:ItemDef[@OID='IT.ADRS.AVALC.BOR']")[0]
    assert item.find("odm:CodeListRef", NS).get("CodeListOID") == "CL.ADRS.AVALC.BOR"
    terms = _x(adam, "//odm:CodeList[@OID='CL.ADRS.AVALC.BOR']/odm:EnumeratedItem/@CodedValue")
    assert terms == RS_PARAMS["BOR"]["avalc"] == ["CR", "CRh", "CRi", "PR", "NR", "PD", "RELAPSED DISEASE"]
    assert set(df.loc[df["PARAMCD"] == "BOR", "AVALC"]) <= set(terms)
    yn = _x(adam, "//odm:CodeList[@OID='CL.ADRS.AVALC.ORRD28']/odm:EnumeratedItem/@CodedValue")
    assert yn == ["Y", "N"]
    assert _x(adam, "//odm:ItemDef[@OID='IT.ADRS.AVALC']/odm:CodeListRef/@CodeListOID") == ["CL.ADRS.AVALC"]
    # PARAMCD decoded by PARAM, from the parameters first
    items = _x(adam, "//odm:CodeList[@OID='CL.ADTTE.PARAMCD']/odm:CodeListItem")
    assert [(i.get("CodedValue"), i.findtext("odm:Decode/odm:TranslatedText", namespaces=NS))
            for i in items] == [(p["paramcd"], p["param"]) for p in TTE_PARAMS]
    assert _x(adam, "//odm:CodeList[@OID='CL.ADTTE.PARAM']/odm:EnumeratedItem/@CodedValue") == [
        p["param"] for p in TTE_PARAMS]
    evnt = _x(adam, "//odm:CodeList[@OID='CL.ADTTE.EVNTDESC']/odm:EnumeratedItem/@CodedValue")
    assert evnt == sorted(set(datasets["ADTTE"].data["EVNTDESC"]) - {""}) and "DEATH" in evnt
    avisit = _x(adam, "//odm:CodeList[@OID='CL.ADLB.AVISIT']/odm:EnumeratedItem/@CodedValue")
    assert avisit == sorted(set(datasets["ADLB"].data["AVISIT"].str.strip()) - {""})


def test_without_parameters_aval_keeps_the_dataset_method(built, datasets, tmp_path):
    model = build_define_models(built.out, _specs(tmp_path, {"adtte": []}), datasets=datasets)["ADaM"]
    aval = [v for v in model.value_levels if v.dataset == "ADTTE" and v.variable == "AVAL"]
    assert len(aval) == 4 and {v.method_oid for v in aval} == {"MT.ADTTE.AVAL"}
    paramcd = next(c for c in model.codelists if c.oid == "CL.ADTTE.PARAMCD")
    pairs = dict(zip(datasets["ADTTE"].data["PARAMCD"], datasets["ADTTE"].data["PARAM"]))
    assert {t.coded_value: t.decode for t in paramcd.terms} == pairs


def test_meddra_external_codelist_and_assigned_origin(with_params):
    docs, _ = with_params
    sdtm, adam = docs["SDTM"], docs["ADaM"]
    for doc in (sdtm, adam):
        ext = _x(doc, "//odm:CodeList[@OID='CL.MEDDRA']/odm:ExternalCodeList")
        assert [(e.get("Dictionary"), e.get("Version")) for e in ext] == [("MedDRA", "27.1")]
    assert _x(sdtm, "//odm:CodeList[@OID='CL.MEDDRA.CODE']/@DataType") == ["integer"]
    for var in ("AEDECOD", "AEBODSYS", "AELLT", "AEHLT", "AEHLGT", "AESOC"):
        item = _x(sdtm, f"//odm:ItemDef[@OID='IT.AE.{var}']")
        if not item:
            continue
        assert item[0].find("odm:CodeListRef", NS).get("CodeListOID") == "CL.MEDDRA", var
        assert item[0].find("def:Origin", NS).get("Type") == "Assigned", var
    for var in ("AEPTCD", "AELLTCD", "AESOCCD"):
        item = _x(sdtm, f"//odm:ItemDef[@OID='IT.AE.{var}']")[0]
        assert item.find("odm:CodeListRef", NS).get("CodeListOID") == "CL.MEDDRA.CODE", var
        assert item.find("def:Origin", NS).get("Type") == "Assigned"
    # the reported term stays Collected
    assert _x(sdtm, "//odm:ItemDef[@OID='IT.AE.AETERM']/def:Origin/@Type") == ["Collected"]
    # ADAE: MedDRA codelist, origin still Predecessor
    item = _x(adam, "//odm:ItemDef[@OID='IT.ADAE.AEDECOD']")[0]
    assert item.find("odm:CodeListRef", NS).get("CodeListOID") == "CL.MEDDRA"
    assert item.find("def:Origin", NS).get("Type") == "Predecessor"


def test_dictionary_without_a_version_is_a_spec_error(built, datasets, tmp_path):
    specs = _specs(tmp_path, study_edit=lambda s: s.update(dictionaries={"WHODRUG": "2024-03"}))
    with pytest.raises(SpecError) as err:
        build_define_models(built.out, specs, datasets=datasets)
    text = str(err.value)
    assert "study.yaml" in text and "dictionaries.MEDDRA" in text and "AE.AEDECOD" in text


def test_whodrug_for_a_cm_dataset():
    from cdisc.define.dictionaries import apply_dictionaries
    from cdisc.define.model import DatasetDefinition, ItemDefinition

    cm = DatasetDefinition(name="CM", label="Concomitant Medications", **{"class": "INTERVENTIONS"},
                           structure="One record per medication", purpose="Tabulation", href="cm.xpt",
                           items=[ItemDefinition(name="CMTRT", label="x", data_type="text"),
                                  ItemDefinition(name="CMDECOD", label="x", data_type="text")])
    cls = apply_dictionaries([cm], {"WHODrug": "GLOBAL B3 2024-03"}, standard="SDTM")
    assert [(c.oid, c.external.dictionary, c.external.version) for c in cls] == [
        ("CL.WHODRUG", "WHODrug", "GLOBAL B3 2024-03")]
    assert cm.items[1].codelist_oid == "CL.WHODRUG" and cm.items[0].codelist_oid is None
    with pytest.raises(SpecError, match="dictionaries.WHODRUG"):
        apply_dictionaries([cm], {"MEDDRA": "27.1"}, standard="SDTM")
