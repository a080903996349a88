"""define.xml 2.1 of the shipped study, generated from a build folder and the specs.

The shipped study is built once per session (conftest ``built``, ~1 s); the defines are
written once per module into a tmp folder. A small synthetic build (LB + ADLB) covers
the value-level metadata of findings and BDS datasets, which the shipped study may not
have yet.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from lxml import etree

from cdisc.define import validate_define
from cdisc.define.from_build import (
    build_define_models, read_build, sdtm_role, write_defines,
)
from cdisc.define.xsd import NS
from cdisc.errors import SpecError
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.study import load_study
from cdisc.xpt import write_xpt

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
DEF = "{%s}" % NS["def"]


@pytest.fixture(scope="module")
def defines(built, tmp_path_factory):
    out = tmp_path_factory.mktemp("defines")
    paths = write_defines(built.out, SPECS, {"SDTM": out / "sdtm", "ADaM": out / "adam"})
    return {std: etree.parse(str(p)) for std, p in paths.items()} | {"paths": paths}


def _one(doc, xpath):
    found = doc.xpath(xpath, namespaces=NS)
    assert len(found) == 1, (xpath, len(found))
    return found[0]


def _item(doc, oid):
    return _one(doc, f"//odm:ItemDef[@OID='{oid}']")


def _ref(doc, ds, var):
    return _one(doc, f"//odm:ItemGroupDef[@OID='IG.{ds}']/odm:ItemRef[@ItemOID='IT.{ds}.{var}']")


def test_both_defines_pass_the_xsd_with_zero_errors(defines):
    paths = defines["paths"]
    assert sorted(paths) == ["ADaM", "SDTM"]
    for std, path in paths.items():
        assert validate_define(path) == [], std
        # FDA TCG §4.1.4.5: the stylesheet ships beside define.xml; define.html rendered.
        assert (path.parent / "define2-1.xsl").is_file()
    html = (paths["SDTM"].parent / "define.html").read_text(encoding="utf-8")
    assert "<title>VGO-Cs01p: SDTMIG 3.4</title>" in html
    assert "Reported Term for the Adverse Event" in html and "LYMPHODEPLETION" in html
    html = (paths["ADaM"].parent / "define.html").read_text(encoding="utf-8")
    assert "<title>VGO-Cs01p: ADaMIG 1.3</title>" in html and "ADSL" in html


def test_standards_and_documents(defines):
    sdtm, adam = defines["SDTM"], defines["ADaM"]
    std = [(s.get("Name"), s.get("Type"), s.get("Version"), s.get("PublishingSet"))
           for s in sdtm.xpath("//def:Standard", namespaces=NS)]
    # study.yaml says ct: {sdtm: 2025-03-28, adam: 2026-03-27}
    assert std == [("SDTMIG", "IG", "3.4", None), ("CDISC/NCI", "CT", "2025-03-28", "SDTM")]
    astd = [(s.get("Name"), s.get("Version")) for s in adam.xpath("//def:Standard", namespaces=NS)]
    # ADaM datasets use SDTM codelists too (SEX, NY) and ADaM ones (DATEFL, adam-ct.yaml
    # "package: ADaM CT 2026-03-27").
    assert astd == [("ADaMIG", "1.3"), ("CDISC/NCI", "2025-03-28"), ("CDISC/NCI", "2026-03-27")]
    # specs/docs/ holds no reviewer documents yet: define.xml names none (no dead links);
    # tests/test_package.py::test_reviewer_documents_from_specs_docs covers present ones
    assert sdtm.xpath("//def:AnnotatedCRF|//def:SupplementalDoc", namespaces=NS) == []
    assert adam.xpath("//def:SupplementalDoc", namespaces=NS) == []
    assert sdtm.xpath("//odm:MetaDataVersion/def:leaf/@xlink:href", namespaces=NS) == []
    # CreationDateTime is the data cut (study.yaml data_cut: 2026-02-28), never the clock.
    assert sdtm.getroot().get("CreationDateTime") == "2026-02-28T00:00:00"
    assert _one(sdtm, "//odm:Study").get("OID") == "ST.VGO-Cs01p"


def test_item_groups(defines):
    sdtm, adam = defines["SDTM"], defines["ADaM"]
    # Class order (SDTMIG 3.4): special purpose, interventions, events, relationship.
    names = sdtm.xpath("//odm:ItemGroupDef/@Name", namespaces=NS)
    assert names.index("DM") < names.index("EX") < names.index("AE") < names.index("SUPPAE")
    dm = _one(sdtm, "//odm:ItemGroupDef[@OID='IG.DM']")
    assert (dm.get("Purpose"), dm.get("Repeating"), dm.get("Domain")) == ("Tabulation", "No", "DM")
    assert dm.find("def:Class", NS).get("Name") == "SPECIAL PURPOSE"
    assert dm.find("def:leaf", NS).get("{%s}href" % NS["xlink"]) == "dm.xpt"
    ae = _one(sdtm, "//odm:ItemGroupDef[@OID='IG.AE']")
    assert (ae.get("Repeating"), ae.get(DEF + "Structure")) == (
        "Yes", "One record per adverse event per subject")
    # specs/sdtm/ae.yaml keys: [STUDYID, USUBJID, AEDECOD, AESTDTC]
    keys = {r.get("ItemOID"): r.get("KeySequence") for r in ae.findall("odm:ItemRef", NS)
            if r.get("KeySequence")}
    assert keys == {"IT.AE.STUDYID": "1", "IT.AE.USUBJID": "2", "IT.AE.AEDECOD": "3",
                    "IT.AE.AESTDTC": "4"}
    supp = _one(sdtm, "//odm:ItemGroupDef[@OID='IG.SUPPAE']")
    assert supp.get("Domain") == "AE" and supp.find("def:Class", NS).get("Name") == "RELATIONSHIP"
    adsl = _one(adam, "//odm:ItemGroupDef[@OID='IG.ADSL']")
    assert (adsl.get("Purpose"), adsl.get("Domain")) == ("Analysis", None)
    assert adam.xpath("//odm:ItemGroupDef/@Name", namespaces=NS)[0] == "ADSL"
    assert _one(adam, "//odm:ItemGroupDef[@OID='IG.ADAE']").find("def:Class", NS).get("Name") == \
        "OCCURRENCE DATA STRUCTURE"


def test_item_defs_from_the_data(defines, built):
    sdtm, adam = defines["SDTM"], defines["ADaM"]
    ae = built.df("AE")
    # Longest AETERM in the data is 54 characters: Length is the real maximum (FDA TCG
    # §4.1.5.2), not a declared 200.
    assert int(ae["AETERM"].str.len().max()) == 54
    assert (_item(sdtm, "IT.AE.AETERM").get("DataType"), _item(sdtm, "IT.AE.AETERM").get("Length")) \
        == ("text", "54")
    # AESEQ runs 1..9 within a subject (subject 103-003 has 9 AEs) -> integer, 1 digit.
    assert ae.groupby("USUBJID").size().max() == 9
    assert (_item(sdtm, "IT.AE.AESEQ").get("DataType"), _item(sdtm, "IT.AE.AESEQ").get("Length")) \
        == ("integer", "1")
    # AESTDTC holds ISO 8601 date/times of mixed precision -> an ISO type, no Length.
    stdtc = _item(sdtm, "IT.AE.AESTDTC")
    assert stdtc.get("DataType") in ("date", "datetime", "partialDate", "partialDatetime",
                                     "incompleteDatetime") and stdtc.get("Length") is None
    # ADSL.TRTSDT: SAS day counts (5 digits, e.g. 23462 = 2024-03-28) with DATE9.
    trtsdt = _item(adam, "IT.ADSL.TRTSDT")
    assert (trtsdt.get("DataType"), trtsdt.get("Length"), trtsdt.get(DEF + "DisplayFormat")) == (
        "integer", "5", "DATE9.")


def test_origins_methods_and_comments(defines):
    sdtm, adam = defines["SDTM"], defines["ADaM"]
    origin = _item(sdtm, "IT.AE.AETERM").find("def:Origin", NS)
    assert (origin.get("Type"), origin.get("Source")) == ("Collected", "Investigator")
    # the shipped study has no specs/docs/acrf.pdf: no page reference to a document the
    # package would not hold (a dead def:leaf; CDISC-DF-003)
    assert origin.find("def:DocumentRef", NS) is None
    # AESEQ is Derived (rule `sequence`) with no method text in the spec: the method is
    # generated from the rule.
    assert _ref(sdtm, "AE", "AESEQ").get("MethodOID") == "MT.AE.AESEQ"
    text = _one(sdtm, "//odm:MethodDef[@OID='MT.AE.AESEQ']").findtext(
        "odm:Description/odm:TranslatedText", namespaces=NS)
    assert text == ("Sequence number of the record within USUBJID, records ordered by "
                    "AESTDTC, AEDECOD, AETERM.")
    # DM.USUBJID has spec method text: used as written.
    text = _one(sdtm, "//odm:MethodDef[@OID='MT.DM.USUBJID']").findtext(
        "odm:Description/odm:TranslatedText", namespaces=NS)
    assert text == "Concatenation of STUDYID, '-' and the EDC subject number (site-subject)"
    # Every Derived item, in both defines, has a MethodOID on its ItemRef (Define-XML 2.1).
    for doc in (sdtm, adam):
        derived = doc.xpath("//odm:ItemDef[def:Origin/@Type='Derived']/@OID", namespaces=NS)
        assert derived
        refs = {r.get("ItemOID"): r.get("MethodOID")
                for r in doc.xpath("//odm:ItemGroupDef/odm:ItemRef | //def:ValueListDef/odm:ItemRef",
                                   namespaces=NS)}
        assert [oid for oid in derived if not refs.get(oid)] == []
    # AETOXGR comment from the spec -> def:CommentDef.
    assert _item(sdtm, "IT.AE.AETOXGR").get(DEF + "CommentOID") == "COM.AE.AETOXGR"
    assert "CTCAE v5.0" in _one(sdtm, "//def:CommentDef[@OID='COM.AE.AETOXGR']").findtext(
        "odm:Description/odm:TranslatedText", namespaces=NS)
    # ADaM Predecessor: ADAE.AETERM from AE.AETERM (specs/adam/adae.yaml source).
    pred = _item(adam, "IT.ADAE.AETERM").find("def:Origin", NS)
    assert pred.get("Type") == "Predecessor"
    assert pred.findtext("odm:Description/odm:TranslatedText", namespaces=NS) == "AE.AETERM"


def test_codelists(defines, built):
    sdtm = defines["SDTM"]
    # Only referenced codelists are listed.
    for doc in (sdtm, defines["ADaM"]):
        listed = set(doc.xpath("//odm:CodeList/@OID", namespaces=NS))
        referenced = set(doc.xpath("//odm:CodeListRef/@CodeListOID", namespaces=NS))
        assert listed == referenced
    # NY is non-extensible: every term, with its NCI C-code (specs/ct/sdtm-ct.yaml).
    ny = _one(sdtm, "//odm:CodeList[@OID='CL.NY']")
    assert ny.find("odm:Alias", NS).get("Name") == "C66742"
    terms = {i.get("CodedValue"): i.find("odm:Alias", NS).get("Name")
             for i in ny.findall("odm:CodeListItem", NS)}
    assert terms == {"N": "C49487", "NA": "C48660", "U": "C17998", "Y": "C49488"}
    assert ny.find("odm:CodeListItem/odm:Decode/odm:TranslatedText", NS).text == "No"
    # EPOCH is extensible: only the 4 epochs SE uses, in CT order, and the sponsor term
    # LYMPHODEPLETION (study-ct.yaml extension) as ExtendedValue without a C-code.
    assert sorted(set(built.df("SE")["EPOCH"])) == ["FOLLOW-UP", "LYMPHODEPLETION", "SCREENING",
                                                    "TREATMENT"]
    epoch = _one(sdtm, "//odm:CodeList[@OID='CL.EPOCH']")
    items = epoch.findall("odm:CodeListItem", NS)
    assert [i.get("CodedValue") for i in items] == ["FOLLOW-UP", "SCREENING", "TREATMENT",
                                                    "LYMPHODEPLETION"]
    assert [i.get(DEF + "ExtendedValue") for i in items] == [None, None, None, "Yes"]
    assert items[-1].find("odm:Alias", NS) is None
    # FOLLOW-UP is C202578 in SDTM CT 2025-03-28 (and 2023-12-15; C99158 in the 2015 package)
    assert items[0].find("odm:Alias", NS).get("Name") == "C202578"
    # A sponsor codelist (TOXGR) has no C-code and no CT standard.
    toxgr = _one(sdtm, "//odm:CodeList[@OID='CL.TOXGR']")
    assert toxgr.find("odm:Alias", NS) is None and toxgr.get(DEF + "StandardOID") is None
    assert ny.get(DEF + "StandardOID") == "STD.CT.SDTM.2025-03-28"


def test_supp_qval_value_level_metadata(defines, built):
    sdtm = defines["SDTM"]
    vl = _one(sdtm, "//def:ValueListDef[@OID='VL.SUPPAE.QVAL']")
    oids = [r.get("ItemOID") for r in vl.findall("odm:ItemRef", NS)]
    # specs/sdtm/ae.yaml supplemental QNAMs, sorted
    assert oids == ["IT.SUPPAE.QVAL.AECRS", "IT.SUPPAE.QVAL.AECRSGR", "IT.SUPPAE.QVAL.AEDLT",
                    "IT.SUPPAE.QVAL.AEICANS", "IT.SUPPAE.QVAL.AEICNSGR", "IT.SUPPAE.QVAL.AETOXSCL"]
    grade = _item(sdtm, "IT.SUPPAE.QVAL.AECRSGR")
    # Coded grades "1".."4" stay text: the ItemDef type must be its codelist's.
    assert grade.find("odm:CodeListRef", NS).get("CodeListOID") == "CL.ASTCTGR"
    assert (grade.get("DataType"), grade.get("Length")) == ("text", "1")
    assert grade.findtext("odm:Description/odm:TranslatedText", namespaces=NS) == "ASTCT CRS Grade"
    assert grade.find("def:Origin", NS).get("Type") == "Collected"
    wc = _one(sdtm, "//def:WhereClauseDef[@OID='WC.SUPPAE.QVAL.QNAM.AECRSGR']/odm:RangeCheck")
    assert wc.get(DEF + "ItemOID") == "IT.SUPPAE.QNAM" and wc.findtext("odm:CheckValue", namespaces=NS) == "AECRSGR"
    assert _item(sdtm, "IT.SUPPAE.QVAL").find("def:ValueListRef", NS).get("ValueListOID") == \
        "VL.SUPPAE.QVAL"


def test_sdtm_roles(built):
    meta = read_build(built.out)["AE"].meta
    roles = {v: sdtm_role(meta, v) for v in ("STUDYID", "AESEQ", "AETERM", "AEDECOD", "AESTDTC",
                                             "AESTDY", "AESER", "EPOCH", "AELLT")}
    assert roles == {"STUDYID": "Identifier", "AESEQ": "Identifier", "AETERM": "Topic",
                     "AEDECOD": "Synonym Qualifier", "AESTDTC": "Timing", "AESTDY": "Timing",
                     "AESER": "Record Qualifier", "EPOCH": "Timing",
                     "AELLT": "Variable Qualifier"}


def test_deterministic_and_broken_define_detected(defines, tmp_path, built):
    path = defines["paths"]["SDTM"]
    again = write_defines(built.out, SPECS, {"SDTM": tmp_path / "s", "ADaM": tmp_path / "a"},
                          html=False)
    assert again["SDTM"].read_bytes() == path.read_bytes()
    assert again["ADaM"].read_bytes() == defines["paths"]["ADaM"].read_bytes()
    # Remove a required attribute (ItemDef/@DataType) from one ItemDef.
    text = path.read_text(encoding="utf-8")
    target = '<ItemDef OID="IT.AE.AETERM" Name="AETERM" SASFieldName="AETERM" DataType="text"'
    assert text.count(target) == 1
    line = text[: text.index(target)].count("\n") + 1
    broken = tmp_path / "define.xml"
    broken.write_text(text.replace(target, target.replace(' DataType="text"', "")), encoding="utf-8")
    problems = validate_define(broken)
    assert len(problems) == 1
    assert problems[0].row == line
    assert "ItemDef" in problems[0].message and "'DataType' is required" in problems[0].message


# --------------------------------------------------------------------------------------
# Value-level metadata of findings (LB) and BDS (ADLB): a small synthetic build
# --------------------------------------------------------------------------------------
V = VariableMeta


def _lb_build(folder: Path) -> Path:
    created = load_study(SPECS).created
    lb_meta = DatasetMeta(
        name="LB", label="Laboratory Test Results", **{"class": "FINDINGS"},
        structure="One record per lab test per visit per subject",
        keys=["STUDYID", "USUBJID", "LBTESTCD", "LBSEQ"], standard="SDTM", variables=[
            V(name="STUDYID", label="Study Identifier", origin="Assigned", core="Req"),
            V(name="USUBJID", label="Unique Subject Identifier", origin="Derived",
              method="STUDYID-SUBJECT", core="Req"),
            V(name="LBSEQ", label="Sequence Number", type="Num", origin="Derived",
              method="Sequence", core="Req"),
            V(name="LBTESTCD", label="Lab Test or Examination Short Name", origin="Collected",
              source="Vendor", codelist="LBTESTCD", core="Req"),
            V(name="LBTEST", label="Lab Test or Examination Name", origin="Collected",
              source="Vendor", core="Req"),
            V(name="LBORRES", label="Result or Finding in Original Units", origin="Collected",
              source="Vendor", core="Exp"),
            V(name="LBSTRESN", label="Numeric Result/Finding in Standard Units", type="Num",
              origin="Derived", method="LBORRES as a number", core="Exp")])
    lb = pd.DataFrame({
        "STUDYID": ["VGO-Cs01p"] * 6, "USUBJID": ["S-1"] * 6,
        "LBSEQ": [1.0, 2, 3, 4, 5, 6],
        "LBTESTCD": ["HGB", "HGB", "PLAT", "PLAT", "CD7NK", "CD7NK"],
        "LBTEST": ["Hemoglobin", "Hemoglobin", "Platelets", "Platelets", "CD7+ NK Cells",
                   "CD7+ NK Cells"],
        "LBORRES": ["130", "128", "45.5", "120.25", "12", ""],
        "LBSTRESN": [130, 128, 45.5, 120.25, float("nan"), float("nan")]})
    adlb_meta = DatasetMeta(
        name="ADLB", label="Laboratory Analysis Dataset", **{"class": "BASIC DATA STRUCTURE"},
        structure="One record per subject per parameter per analysis visit",
        keys=["USUBJID", "PARAMCD"], standard="ADaM", variables=[
            V(name="USUBJID", label="Unique Subject Identifier", origin="Predecessor",
              source="LB.USUBJID"),
            V(name="PARAMCD", label="Parameter Code", origin="Assigned"),
            V(name="PARAM", label="Parameter", origin="Assigned"),
            V(name="AVAL", label="Analysis Value", type="Num", origin="Predecessor",
              source="LB.LBSTRESN")])
    adlb = pd.DataFrame({"USUBJID": ["S-1"] * 4, "PARAMCD": ["HGB", "HGB", "PLAT", "PLAT"],
                         "PARAM": ["Hemoglobin (g/L)"] * 2 + ["Platelets (10^9/L)"] * 2,
                         "AVAL": [130, 128, 45.5, 120.25]})
    for sub, meta, df in (("sdtm", lb_meta, lb), ("adam", adlb_meta, adlb)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        write_xpt(folder / sub / f"{meta.name.lower()}.xpt", df, meta, created)
    metadata = {m.name: m.model_dump(mode="json", by_alias=True, exclude_none=True)
                for m in (lb_meta, adlb_meta)}
    (folder / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return folder


def test_findings_and_bds_value_level_metadata(tmp_path):
    build = _lb_build(tmp_path / "build")
    paths = write_defines(build, SPECS, html=False)
    assert all(validate_define(p) == [] for p in paths.values())
    sdtm, adam = (etree.parse(str(paths[s])) for s in ("SDTM", "ADaM"))
    refs = _one(sdtm, "//def:ValueListDef[@OID='VL.LB.LBORRES']").findall("odm:ItemRef", NS)
    assert [r.get("ItemOID") for r in refs] == ["IT.LB.LBORRES.CD7NK", "IT.LB.LBORRES.HGB",
                                                "IT.LB.LBORRES.PLAT"]

    def attrs(doc, oid):
        el = _item(doc, oid)
        return el.get("DataType"), el.get("Length"), el.get("SignificantDigits")

    # HGB "130", "128": whole numbers -> integer, 3 characters.
    assert attrs(sdtm, "IT.LB.LBORRES.HGB") == ("integer", "3", None)
    # PLAT "45.5", "120.25": 2 decimals at most; longest text "120.25" = 6 characters.
    assert attrs(sdtm, "IT.LB.LBORRES.PLAT") == ("float", "6", "2")
    # CD7NK "12" (and one blank): integer, 2 characters.
    assert attrs(sdtm, "IT.LB.LBORRES.CD7NK") == ("integer", "2", None)
    # LBSTRESN: no CD7NK entry (all missing); PLAT 45.5/120.25 -> 3 integer digits + 2.
    refs = _one(sdtm, "//def:ValueListDef[@OID='VL.LB.LBSTRESN']").findall("odm:ItemRef", NS)
    assert [r.get("ItemOID") for r in refs] == ["IT.LB.LBSTRESN.HGB", "IT.LB.LBSTRESN.PLAT"]
    assert refs[0].get("MethodOID") == "MT.LB.LBSTRESN"
    assert attrs(sdtm, "IT.LB.LBSTRESN.PLAT") == ("float", "5", "2")
    assert _item(sdtm, "IT.LB.LBSTRESN.PLAT").findtext(
        "odm:Description/odm:TranslatedText", namespaces=NS) == \
        "Numeric Result/Finding in Standard Units: Platelets"
    # LBTESTCD is extensible: only HGB and PLAT from CT (C64848, C51951), CD7NK as a
    # sponsor ExtendedValue.
    items = _one(sdtm, "//odm:CodeList[@OID='CL.LBTESTCD']").findall("odm:CodeListItem", NS)
    assert [(i.get("CodedValue"), i.get(DEF + "ExtendedValue"),
             None if i.find("odm:Alias", NS) is None else i.find("odm:Alias", NS).get("Name"))
            for i in items] == [("HGB", None, "C64848"), ("PLAT", None, "C51951"),
                                ("CD7NK", "Yes", None)]
    # The collected vendor data has no aCRF reference.
    assert _item(sdtm, "IT.LB.LBORRES").find("def:Origin", NS).get("Source") == "Vendor"
    assert _item(sdtm, "IT.LB.LBORRES").find("def:Origin/def:DocumentRef", NS) is None
    # ADLB: AVAL per PARAMCD.
    refs = _one(adam, "//def:ValueListDef[@OID='VL.ADLB.AVAL']").findall("odm:ItemRef", NS)
    assert [r.get("ItemOID") for r in refs] == ["IT.ADLB.AVAL.HGB", "IT.ADLB.AVAL.PLAT"]
    assert attrs(adam, "IT.ADLB.AVAL.HGB") == ("integer", "3", None)
    assert attrs(adam, "IT.ADLB.AVAL.PLAT") == ("float", "5", "2")


def test_unknown_codelist_is_a_spec_error(tmp_path):
    build = _lb_build(tmp_path / "build")
    metadata = json.loads((build / "metadata.json").read_text(encoding="utf-8"))
    metadata["LB"]["variables"][5]["codelist"] = "NOSUCHCL"
    (build / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        build_define_models(build, SPECS)
    assert "codelist NOSUCHCL is referenced but not in specs/ct" in str(err.value)
