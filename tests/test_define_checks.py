"""define.xml checks (validation/define_checks.py, rules CDISC-DF-nnn) on a real package.

The package of the shipped study passes; each test edits one thing in a copy of its define.xml
(or data) and expects exactly its rule on the right dataset/variable.
"""
from __future__ import annotations

import shutil

import pytest
from lxml import etree

from cdisc.standards import load_standard
from conftest import SPECS
from cdisc.validation.define_checks import NS, check_define

SDTM = "m5/datasets/vgo-cs01p/tabulations/sdtm"
ADAM = "m5/datasets/vgo-cs01p/analysis/adam/datasets"
IG, ADAMIG = load_standard("sdtmig", "3.4"), load_standard("adamig", "1.3")


@pytest.fixture(scope="module")
def pkg(built, tmp_path_factory):
    from cdisc.package import package

    out = tmp_path_factory.mktemp("dfpkg") / "pkg"
    package(built.out, out, SPECS, allow_errors=True)
    return out


def _frames(folder):
    import pyreadstat

    return {p.stem.upper(): pyreadstat.read_xport(str(p))[0] for p in folder.glob("*.xpt")}


def _check(folder, mutate=None, data_mutate=None):
    path = folder / "define.xml"
    if mutate is not None:
        doc = etree.parse(str(path))
        mutate(doc)
        doc.write(str(path), xml_declaration=True, encoding="UTF-8")
    frames = _frames(folder)
    if data_mutate is not None:
        data_mutate(frames)
    from cdisc.standards import load_ct

    found = check_define(path, frames, IG, ADAMIG, ct_packages=[load_ct("sdtm", "2025-03-28")])
    return {(r.rule, r.dataset, r.variable if isinstance(r.variable, str) else None)
            for r in found.itertuples()}


@pytest.fixture
def copy(pkg, tmp_path):
    dst = tmp_path / "pkg"
    shutil.copytree(pkg, dst)
    return dst


def test_the_shipped_package_passes(pkg):
    assert _check(pkg / SDTM) == set() and _check(pkg / ADAM) == set()


def test_dictionary_codelists_are_not_enumerations(pkg):
    # MedDRA is an ExternalCodeList (no CodeListItems): DF-005 must not compare AEDECOD with it,
    # but the coded variables do point to it
    from lxml import etree

    root = etree.parse(str(pkg / SDTM / "define.xml")).getroot()
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
    ext = root.findall(".//odm:CodeList/odm:ExternalCodeList", ns)
    assert {(e.get("Dictionary"), e.get("Version")) for e in ext} == {("MedDRA", "27.1"), ("WHODrug", "GLOBALB3MAR24")}
    assert _check(pkg / SDTM) == set()


def test_validate_a_package_folder(pkg):
    """`cdisc validate` on a package: datasets, CORE rules and define.xml checks, clean."""
    from cdisc.validation import validate_folder

    result = validate_folder(pkg, specs_dir=SPECS)
    assert result.findings == [] and len(result.source["files"]) == 46   # 29 + ADEX + 12 new SDTM + ADCM, ADMH, ADVS, ADCRS (issue 12)
    status = {r.id: r.status for r in result.rules}
    assert status["CDISC-DF-002"] == "passed" and status["CDISC-DF-003"] == "passed"


def _x(doc, q):
    return doc.xpath(q, namespaces=NS)


def test_repeating_no_on_a_bds_dataset(copy):
    got = _check(copy / ADAM, lambda d: _x(d, "//odm:ItemGroupDef[@Name='ADLB']")[0].set("Repeating", "No"))
    assert got == {("CDISC-DF-001", "ADLB", None)}


def test_mandatory_no_on_a_key_and_on_a_req_variable(copy):
    def m(d):
        _x(d, "//odm:ItemGroupDef[@Name='AE']/odm:ItemRef[@ItemOID='IT.AE.AETERM']")[0].set("Mandatory", "No")
        _x(d, "//odm:ItemGroupDef[@Name='LB']/odm:ItemRef[@ItemOID='IT.LB.LBTESTCD']")[0].set("Mandatory", "No")
    assert _check(copy / SDTM, m) == {("CDISC-DF-002", "AE", "AETERM"), ("CDISC-DF-002", "LB", "LBTESTCD")}


def test_a_leaf_to_a_missing_file(copy):
    (copy / SDTM / "ta.xpt").unlink()
    got = _check(copy / SDTM)
    assert got == {("CDISC-DF-003", "define.xml", None)}


def test_references_that_resolve_to_nothing(copy):
    def m(d):
        _x(d, "//odm:ItemRef[@ItemOID='IT.DM.SEX']")[0].set("ItemOID", "IT.DM.GENDER")
    got = _check(copy / SDTM, m)
    assert ("CDISC-DF-004", "define.xml", None) in got


def test_a_data_value_outside_a_non_extensible_codelist(copy):
    def data(frames):
        frames["AE"].loc[0, "AESER"] = "MAYBE"
    assert _check(copy / SDTM, data_mutate=data) == {("CDISC-DF-005", "AE", "AESER")}


def test_an_invalid_origin(copy):
    def m(d):
        _x(d, "//odm:ItemDef[@OID='IT.AE.AETERM']/def:Origin")[0].set("Source", "Investigatorr")
        _x(d, "//odm:ItemDef[@OID='IT.AE.AESEQ']/def:Origin")[0].set("Type", "Computed")
    assert _check(copy / SDTM, m) == {("CDISC-DF-006", "AE", "AETERM"), ("CDISC-DF-006", "AE", "AESEQ")}


def test_a_dataset_file_without_its_itemgroupdef(copy):
    def m(d):
        g = _x(d, "//odm:ItemGroupDef[@Name='TV']")[0]
        g.getparent().remove(g)
    got = _check(copy / SDTM, m)
    assert ("CDISC-DF-007", "TV", None) in got
