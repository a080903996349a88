"""Define-XML 2.1 generator: model -> define.xml -> XSD valid, deterministic, renders.

The study is a three-subject cut of VGO-Cs01p: DM and LB (with value-level metadata on
LBORRES/LBSTRESN per LBTESTCD, Define-XML 2.1 §5.3.7) and ADSL.
"""
from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from lxml import etree

from cdisc.define import (
    CodeList, DefineModel, Document, DocumentRef, Origin, Standard, Study, Term, ValueLevel,
    copy_stylesheet, describe_dataset, describe_value_levels, describe_variable,
    iso8601_data_type, render_html, stylesheet_path, validate_define, write_define,
)
from cdisc.define.xsd import NS
from cdisc.errors import SpecError
from cdisc.metadata import DatasetMeta, VariableMeta

V = VariableMeta
STUDY = "VGO-Cs01p"
SDTMIG, ADAMIG = "STD.SDTMIG.3-4", "STD.ADAMIG.1-3"
SDTMCT = "STD.CT.SDTM.2024-03-29"


def _metas() -> dict[str, DatasetMeta]:
    dm = DatasetMeta(
        name="DM", label="Demographics", **{"class": "Special Purpose"},
        structure="One record per subject", keys=["STUDYID", "USUBJID"], variables=[
            V(name="STUDYID", label="Study Identifier", origin="Protocol", core="Req"),
            V(name="DOMAIN", label="Domain Abbreviation", origin="Assigned", core="Req"),
            V(name="USUBJID", label="Unique Subject Identifier", origin="Derived", core="Req",
              method="STUDYID || '-' || SITEID || '-' || SUBJID"),
            V(name="RFSTDTC", label="Subject Reference Start Date/Time", origin="Derived",
              core="Exp", method="Date/time of first CAR-NK infusion (EX.EXSTDTC)"),
            V(name="AGE", label="Age", type="Num", origin="CRF", core="Exp"),
            V(name="AGEU", label="Age Units", origin="Assigned", codelist="AGEU", core="Exp"),
            V(name="SEX", label="Sex", origin="CRF", codelist="SEX", core="Req"),
        ])
    lb = DatasetMeta(
        name="LB", label="Laboratory Test Results", **{"class": "Findings"},
        structure="One record per lab test per time point per visit per subject",
        keys=["STUDYID", "USUBJID", "LBTESTCD", "LBDTC"], variables=[
            V(name="STUDYID", label="Study Identifier", origin="Protocol", core="Req"),
            V(name="DOMAIN", label="Domain Abbreviation", origin="Assigned", core="Req"),
            V(name="USUBJID", label="Unique Subject Identifier", origin="Predecessor",
              source="DM.USUBJID", core="Req"),
            V(name="LBSEQ", label="Sequence Number", type="Num", origin="Derived", core="Req",
              method="Sequential number per USUBJID ordered by LBTESTCD, LBDTC"),
            V(name="LBTESTCD", label="Lab Test or Examination Short Name", origin="eDT",
              codelist="LBTESTCD", core="Req"),
            V(name="LBORRES", label="Result or Finding in Original Units", origin="eDT",
              core="Exp"),
            V(name="LBSTRESN", label="Numeric Result/Finding in Standard Units", type="Num",
              origin="Derived", method="LBORRES converted to standard units", core="Exp"),
            V(name="LBDTC", label="Date/Time of Specimen Collection", origin="eDT", core="Exp"),
        ])
    adsl = DatasetMeta(
        name="ADSL", label="Subject-Level Analysis Dataset", standard="ADaM",
        **{"class": "SUBJECT LEVEL ANALYSIS DATASET"}, structure="One record per subject",
        keys=["STUDYID", "USUBJID"], variables=[
            V(name="STUDYID", label="Study Identifier", origin="Predecessor", source="DM.STUDYID",
              core="Req"),
            V(name="USUBJID", label="Unique Subject Identifier", origin="Predecessor",
              source="DM.USUBJID", core="Req"),
            V(name="AGE", label="Age", type="Num", origin="Predecessor", source="DM.AGE",
              core="Req"),
            V(name="SAFFL", label="Safety Population Flag", origin="Derived", codelist="NY",
              method="Y if the subject received any CAR-NK infusion, else N", core="Cond"),
            V(name="TRTSDT", label="Date of First Exposure to Treatment", type="Num",
              format="DATE9.", origin="Derived", method="Date part of DM.RFSTDTC",
              comment="Infusion day 1 per protocol section 6.2", core="Cond"),
            V(name="DOSEKG", label="Planned Dose (cells/kg)", type="Num", origin="Protocol"),
        ])
    return {"DM": dm, "LB": lb, "ADSL": adsl}


def _frames() -> dict[str, pd.DataFrame]:
    subjects = [f"{STUDY}-01-00{i}" for i in (1, 2, 3)]
    dm = pd.DataFrame({
        "STUDYID": [STUDY] * 3, "DOMAIN": ["DM"] * 3, "USUBJID": subjects,
        "RFSTDTC": ["2024-03-01T09:30:00", "2024-04-15", "2024-05"],
        "AGE": [7.0, 12.0, 15.0], "AGEU": ["YEARS"] * 3, "SEX": ["M", "F", "M"],
    })
    lb = pd.DataFrame({
        "STUDYID": [STUDY] * 4, "DOMAIN": ["LB"] * 4,
        "USUBJID": [subjects[0], subjects[0], subjects[1], subjects[1]],
        "LBSEQ": [1.0, 2.0, 1.0, 2.0],
        "LBTESTCD": ["GLUC", "HGB", "GLUC", "HGB"],
        "LBORRES": ["5.4", "11.25", "6.15", "9"],
        "LBSTRESN": [5.4, 112.5, 6.15, 90.0],
        "LBDTC": ["2024-03-01T08:00:00", "2024-03-01T08:00:00", "2024-04-15", "2024-04-15"],
    })
    adsl = pd.DataFrame({
        "STUDYID": [STUDY] * 3, "USUBJID": subjects, "AGE": [7.0, 12.0, 15.0],
        "SAFFL": ["Y", "Y", "N"], "TRTSDT": [23436.0, 23481.0, np.nan],
        "DOSEKG": [1e6, 3e6, 1e7],
    })
    return {"DM": dm, "LB": lb, "ADSL": adsl}


def _model() -> DefineModel:
    metas, frames = _metas(), _frames()
    crf = {"AGE": Origin(type="Collected", source="Investigator",
                         documents=[DocumentRef(leaf_id="LF.acrf", pages="3")]),
           "SEX": Origin(type="Collected", source="Investigator",
                         documents=[DocumentRef(leaf_id="LF.acrf", pages="3")])}
    dm, m1, c1 = describe_dataset(metas["DM"], frames["DM"], href="dm.xpt", standard_oid=SDTMIG,
                                  origins=crf,
                                  roles={"STUDYID": "Identifier", "SEX": "Record Qualifier"})
    lb, m2, c2 = describe_dataset(metas["LB"], frames["LB"], href="lb.xpt", standard_oid=SDTMIG)
    adsl, m3, c3 = describe_dataset(metas["ADSL"], frames["ADSL"], href="adsl.xpt",
                                    standard_oid=ADAMIG)
    vlm = describe_value_levels([
        ValueLevel(dataset="LB", variable="LBORRES", where=[("LBTESTCD", "EQ", ["GLUC"])],
                   label="Glucose", origin=Origin(type="Collected", source="Vendor")),
        ValueLevel(dataset="LB", variable="LBORRES", where=[("LBTESTCD", "EQ", ["HGB"])],
                   label="Hemoglobin", origin=Origin(type="Collected", source="Vendor")),
        ValueLevel(dataset="LB", variable="LBSTRESN", where=[("LBTESTCD", "IN", ["GLUC", "HGB"])],
                   origin=Origin(type="Derived", source="Sponsor"), method_oid="MT.LB.LBSTRESN"),
    ], frames, metas)
    codelists = [
        CodeList(oid="CL.SEX", name="Sex", c_code="C66731", standard_oid=SDTMCT, terms=[
            Term(coded_value="F", c_code="C16576", order=1),
            Term(coded_value="M", c_code="C20197", order=2)]),
        CodeList(oid="CL.AGEU", name="Age Unit", c_code="C66781", standard_oid=SDTMCT,
                 terms=[Term(coded_value="YEARS", c_code="C29848")]),
        CodeList(oid="CL.LBTESTCD", name="Laboratory Test Code", c_code="C65047",
                 standard_oid=SDTMCT, terms=[
                     Term(coded_value="GLUC", decode="Glucose", c_code="C105585"),
                     Term(coded_value="HGB", decode="Hemoglobin", c_code="C64848"),
                     Term(coded_value="CD7NK", decode="CD7 CAR-NK Cells", extended=True)]),
        CodeList(oid="CL.NY", name="No Yes Response", c_code="C66742", standard_oid=SDTMCT,
                 terms=[Term(coded_value="N", decode="No", c_code="C49487"),
                        Term(coded_value="Y", decode="Yes", c_code="C49488")]),
    ]
    return DefineModel(
        study=Study(oid=STUDY, name=STUDY, description="CD7 CAR-NK cells in children with "
                    "relapsed/refractory T-ALL", protocol_name=STUDY,
                    metadata_version_oid="MDV.VGO-Cs01p.1", metadata_version_name="Draft 1",
                    file_oid=f"{STUDY}.define", created=datetime(2025, 6, 1, 12, 0, 0),
                    originator="VGO", source_system="cdisc", source_system_version="0.1.0"),
        standards=[
            Standard(oid=SDTMIG, name="SDTMIG", type="IG", version="3.4"),
            Standard(oid=ADAMIG, name="ADaMIG", type="IG", version="1.3"),
            Standard(oid=SDTMCT, name="CDISC/NCI", type="CT", version="2024-03-29",
                     publishing_set="SDTM"),
        ],
        datasets=[dm, lb, adsl], value_levels=vlm, codelists=codelists,
        methods=m1 + m2 + m3, comments=c1 + c2 + c3,
        documents=[Document(id="LF.acrf", href="acrf.pdf", title="Annotated CRF"),
                   Document(id="LF.csdrg", href="csdrg.pdf",
                            title="Clinical Study Data Reviewer's Guide"),
                   Document(id="LF.adrg", href="adrg.pdf", title="Analysis Data Reviewer's Guide")],
        annotated_crf=[DocumentRef(leaf_id="LF.acrf")],
        supplemental_docs=[DocumentRef(leaf_id="LF.csdrg"), DocumentRef(leaf_id="LF.adrg")],
    )


@pytest.fixture(scope="module")
def define_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("define") / "define.xml"
    write_define(out, _model())
    return out


def _item(doc, oid):
    found = doc.xpath(f"//odm:ItemDef[@OID='{oid}']", namespaces=NS)
    assert len(found) == 1, oid
    return found[0]


def test_define_is_xsd_valid(define_file):
    assert validate_define(define_file) == []


def test_define_content(define_file):
    doc = etree.parse(str(define_file))
    root = doc.getroot()
    assert root.get("ODMVersion") == "1.3.2"
    assert root.get("{%s}Context" % NS["def"]) == "Submission"
    pi = root.getprevious()
    assert pi.target == "xml-stylesheet" and 'href="define2-1.xsl"' in pi.text
    mdv = doc.find(".//odm:MetaDataVersion", NS)
    assert mdv.get("{%s}DefineVersion" % NS["def"]) == "2.1.0"
    names = [ig.get("Name") for ig in doc.xpath("//odm:ItemGroupDef", namespaces=NS)]
    assert names == ["DM", "LB", "ADSL"]
    dm = doc.xpath("//odm:ItemGroupDef[@OID='IG.DM']", namespaces=NS)[0]
    assert dm.get("Purpose") == "Tabulation" and dm.get("Repeating") == "No"
    assert dm.find("def:Class", NS).get("Name") == "SPECIAL PURPOSE"
    assert dm.find("def:leaf", NS).get("{%s}href" % NS["xlink"]) == "dm.xpt"
    adsl = doc.xpath("//odm:ItemGroupDef[@OID='IG.ADSL']", namespaces=NS)[0]
    assert adsl.get("Purpose") == "Analysis" and adsl.get("Domain") is None
    # KeySequence from DatasetMeta.keys; Mandatory from core Req.
    lb_refs = {r.get("ItemOID"): r
               for r in doc.xpath("//odm:ItemGroupDef[@OID='IG.LB']/odm:ItemRef", namespaces=NS)}
    assert lb_refs["IT.LB.LBDTC"].get("KeySequence") == "4"
    assert lb_refs["IT.LB.LBORRES"].get("Mandatory") == "No"
    assert lb_refs["IT.LB.LBSEQ"].get("MethodOID") == "MT.LB.LBSEQ"

    # AGE 7/12/15 -> integer, 2 digits; TRTSDT SAS day 23481 -> integer, 5 digits, DATE9.
    age = _item(doc, "IT.DM.AGE")
    assert (age.get("DataType"), age.get("Length")) == ("integer", "2")
    origin = age.find("def:Origin", NS)
    assert (origin.get("Type"), origin.get("Source")) == ("Collected", "Investigator")
    assert origin.find("def:DocumentRef/def:PDFPageRef", NS).get("PageRefs") == "3"
    trtsdt = _item(doc, "IT.ADSL.TRTSDT")
    assert (trtsdt.get("DataType"), trtsdt.get("Length")) == ("integer", "5")
    assert trtsdt.get("{%s}DisplayFormat" % NS["def"]) == "DATE9."
    assert trtsdt.get("{%s}CommentOID" % NS["def"]) == "COM.ADSL.TRTSDT"
    # USUBJID "VGO-Cs01p-01-001" is 16 bytes: the real maximum, not a declared 200.
    assert _item(doc, "IT.DM.USUBJID").get("Length") == "16"
    # RFSTDTC mixes a full datetime, a date and a year-month -> partialDatetime, no Length.
    rfst = _item(doc, "IT.DM.RFSTDTC")
    assert rfst.get("DataType") == "partialDatetime" and rfst.get("Length") is None
    # LBSTRESN 5.4, 112.5, 6.15, 90 -> float, 2 decimals, 3 + 2 = 5 digits.
    stresn = _item(doc, "IT.LB.LBSTRESN")
    assert (stresn.get("DataType"), stresn.get("Length"), stresn.get("SignificantDigits")) == (
        "float", "5", "2")
    # ADSL.AGE from DM.AGE
    pred = _item(doc, "IT.ADSL.AGE").find("def:Origin", NS)
    assert pred.get("Type") == "Predecessor"
    assert pred.findtext("odm:Description/odm:TranslatedText", namespaces=NS) == "DM.AGE"


def test_value_level_metadata(define_file):
    doc = etree.parse(str(define_file))
    vld = doc.xpath("//def:ValueListDef[@OID='VL.LB.LBORRES']", namespaces=NS)[0]
    refs = vld.findall("odm:ItemRef", NS)
    assert [r.get("ItemOID") for r in refs] == ["IT.LB.LBORRES.GLUC", "IT.LB.LBORRES.HGB"]
    wc_oid = refs[0].find("def:WhereClauseRef", NS).get("WhereClauseOID")
    assert wc_oid == "WC.LB.LBORRES.LBTESTCD.GLUC"
    rc = doc.xpath(f"//def:WhereClauseDef[@OID='{wc_oid}']/odm:RangeCheck", namespaces=NS)[0]
    assert rc.get("Comparator") == "EQ"
    assert rc.get("{%s}ItemOID" % NS["def"]) == "IT.LB.LBTESTCD"
    assert [c.text for c in rc.findall("odm:CheckValue", NS)] == ["GLUC"]
    # Glucose results "5.4", "6.15": numeric text -> float, 2 decimals; 4 bytes ("6.15").
    gluc = _item(doc, "IT.LB.LBORRES.GLUC")
    assert (gluc.get("DataType"), gluc.get("Length"), gluc.get("SignificantDigits")) == (
        "float", "4", "2")
    # Hemoglobin "11.25", "9": 5 bytes.
    assert _item(doc, "IT.LB.LBORRES.HGB").get("Length") == "5"
    # The parent points at its value list.
    parent = _item(doc, "IT.LB.LBORRES")
    assert parent.find("def:ValueListRef", NS).get("ValueListOID") == "VL.LB.LBORRES"
    inclause = doc.xpath("//def:WhereClauseDef[@OID='WC.LB.LBSTRESN.LBTESTCD.IN.GLUC_HGB']"
                         "/odm:RangeCheck/odm:CheckValue", namespaces=NS)
    assert [c.text for c in inclause] == ["GLUC", "HGB"]


def test_codelists(define_file):
    doc = etree.parse(str(define_file))
    sex = doc.xpath("//odm:CodeList[@OID='CL.SEX']", namespaces=NS)[0]
    assert [e.get("CodedValue") for e in sex.findall("odm:EnumeratedItem", NS)] == ["F", "M"]
    assert sex.find("odm:Alias", NS).get("Name") == "C66731"
    assert sex.find("odm:EnumeratedItem/odm:Alias", NS).get("Context") == "nci:ExtCodeID"
    lbtestcd = doc.xpath("//odm:CodeList[@OID='CL.LBTESTCD']", namespaces=NS)[0]
    items = lbtestcd.findall("odm:CodeListItem", NS)
    assert [i.findtext("odm:Decode/odm:TranslatedText", namespaces=NS) for i in items] == [
        "Glucose", "Hemoglobin", "CD7 CAR-NK Cells"]
    assert items[2].get("{%s}ExtendedValue" % NS["def"]) == "Yes"
    assert items[0].get("{%s}ExtendedValue" % NS["def"]) is None


def test_documents(define_file):
    doc = etree.parse(str(define_file))
    assert doc.xpath("//def:AnnotatedCRF/def:DocumentRef/@leafID", namespaces=NS) == ["LF.acrf"]
    assert doc.xpath("//def:SupplementalDoc/def:DocumentRef/@leafID", namespaces=NS) == [
        "LF.csdrg", "LF.adrg"]
    hrefs = doc.xpath("//odm:MetaDataVersion/def:leaf/@xlink:href", namespaces=NS)
    assert hrefs == ["acrf.pdf", "csdrg.pdf", "adrg.pdf"]


def test_deterministic_bytes(tmp_path, define_file):
    again = tmp_path / "define.xml"
    write_define(again, _model())
    assert again.read_bytes() == define_file.read_bytes()


def test_broken_define_is_caught(tmp_path, define_file):
    text = define_file.read_text(encoding="utf-8")
    target = '<ItemDef OID="IT.DM.AGE" '
    assert text.count(target) == 1
    line = text[: text.index(target)].count("\n") + 1
    broken = tmp_path / "define.xml"
    broken.write_text(text.replace(target, "<ItemDef "), encoding="utf-8")
    problems = validate_define(broken)
    xsd = [p for p in problems if p.message.startswith("XSD")]
    assert len(xsd) == 1
    assert xsd[0].row == line
    assert "ItemDef" in xsd[0].message and "'OID' is required" in xsd[0].message
    assert f"row {line}" in str(xsd[0])
    # The ItemRef that pointed at it is now dangling: a second, reference problem.
    dangling = [p for p in problems if "does not match any ItemDef" in p.message]
    assert [p.message.split("=")[1].split(" ")[0] for p in dangling] == ["'IT.DM.AGE'"]


def test_not_well_formed(tmp_path):
    bad = tmp_path / "define.xml"
    bad.write_text("<ODM>\n<Study>\n</ODM>\n", encoding="utf-8")
    problems = validate_define(bad)
    assert len(problems) == 1 and problems[0].row == 3


def test_stylesheet_renders_html(tmp_path, define_file):
    target = copy_stylesheet(tmp_path)
    assert target.name == "define2-1.xsl"
    assert target.read_bytes() == stylesheet_path().read_bytes()
    html = render_html(define_file, tmp_path / "define.html")
    for name in ("DM", "LB", "ADSL", "Demographics", "Laboratory Test Results",
                 "Subject-Level Analysis Dataset", "Hemoglobin"):
        assert name in html
    assert (tmp_path / "define.html").read_text(encoding="utf-8") == html


def test_dangling_codelist_is_a_spec_error():
    model = _model()
    model.codelists = [c for c in model.codelists if c.oid != "CL.SEX"]
    with pytest.raises(SpecError) as err:
        write_define("/nonexistent/define.xml", model)
    assert "DM.SEX refers to codelist 'CL.SEX'" in str(err.value)


def test_derived_without_method_is_a_spec_error():
    meta = _metas()["DM"]
    meta.variables[3].method = None  # RFSTDTC is Derived
    with pytest.raises(SpecError, match="DM.RFSTDTC is Derived but has no method"):
        describe_dataset(meta, _frames()["DM"], href="dm.xpt")


@pytest.mark.parametrize("values, expected", [
    (["2024-03-01", "2023-12-31"], "date"),
    (["2024-03-01T09:30:00", "2024-03-01T10:00:00.5"], "datetime"),
    (["2024-03", "2024-03-01"], "partialDate"),
    (["2024-03-01T09:30", "2024-03-01"], "partialDatetime"),
    (["2024---15", "2024-03-01"], "incompleteDatetime"),
    (["P3D", "PT2H"], "durationDatetime"),
    (["not a date"], "text"),
    ([None, ""], "datetime"),
])
def test_iso8601_data_type(values, expected):
    assert iso8601_data_type(pd.Series(values, dtype=object)) == expected


def test_describe_variable_float_digits():
    # 0.1 -> 1 decimal, 1e-07 -> 7 decimals (0.0000001), 123.25 -> 3 integer digits:
    # SignificantDigits 7, Length 3 + 7 = 10.
    var = VariableMeta(name="X", label="x", type="Num")
    stats = describe_variable(var, pd.Series([0.1, 1e-7, 123.25, np.nan]), dataset="T")
    assert stats == {"data_type": "float", "length": 10, "significant_digits": 7,
                     "display_format": None}


def test_dataset_json_oids_resolve_in_define(tmp_path, define_file):
    """Dataset-JSON's studyOID, metaDataVersionOID, itemGroupOID and itemOIDs are foreign
    keys into define.xml (Dataset-JSON v1.1, Top-level Metadata and Column Metadata)."""
    from cdisc.datasetjson import write_dataset_json

    doc = etree.parse(str(define_file))
    item_oids = set(doc.xpath("//odm:ItemDef/@OID", namespaces=NS))
    group_oids = set(doc.xpath("//odm:ItemGroupDef/@OID", namespaces=NS))
    study = doc.getroot().find("odm:Study", NS)
    mdv = study.find("odm:MetaDataVersion", NS)
    for name, meta in _metas().items():
        path = tmp_path / f"{name.lower()}.json"
        write_dataset_json(path, _frames()[name], meta, study_oid=study.get("OID"),
                           metadata_version_oid=mdv.get("OID"), created=datetime(2025, 6, 1),
                           originator="VGO", define_path="define.xml")
        out = json.loads(path.read_text(encoding="utf-8"))
        assert out["itemGroupOID"] in group_oids
        assert {c["itemOID"] for c in out["columns"]} <= item_oids
