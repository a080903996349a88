"""Issue 12, the package: generated reviewer's guides (cSDRG, ADRG as PDF), the aCRF listed as
missing (define.xml does not link it), a user's guide in specs/docs/ winning over the
generated one, and m5 holding only the file types the FDA TCG lists (Dataset-JSON,
define.html and the validation report beside m5 in supplementary/)."""
from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml
from lxml import etree

from cdisc.define.xsd import NS
from cdisc.package import package, verify_package, write_json_datasets
from conftest import SPECS

SDTM = "m5/datasets/vgo-cs01p/tabulations/sdtm"
ADAM = "m5/datasets/vgo-cs01p/analysis/adam/datasets"
TCG_TYPES = {".xpt", ".xml", ".xsl", ".pdf"}
WAIVED = [
    {"rule": "CORE-000701", "severity": "warning", "dataset": "AE", "variable": "EPOCH",
     "usubjid": "VGO-Cs01p-102-001", "row": 21, "seq": 1, "value": "EPOCH=",
     "message": "EPOCH is missing for clinical subject-level observation.",
     "waiver": {"rule": "CORE-000701", "dataset": "AE", "approved_by": "data management",
                "reason": "The AE start date is partial (2024-05); the epoch cannot be known."}},
    {"rule": "CORE-000774", "severity": "warning", "dataset": "RS", "variable": "RSREASND",
     "usubjid": None, "row": 3, "seq": 3, "value": "",
     "message": "RSREASND is not populated when RSSTAT = NOT DONE.",
     "waiver": {"rule": "CORE-000774", "dataset": "RS", "approved_by": "data management",
                "reason": "Extramedullary disease not evaluated; no reason field on the CRF."}},
]
REMAINING = [{"rule": "CDISC-AD-099", "severity": "notice", "dataset": "ADTTE", "variable": "CNSR",
              "usubjid": "VGO-Cs01p-101-002", "row": 2, "seq": None, "value": "1",
              "message": "Censored at the data cut (example remaining finding)."}]


def _results() -> dict:
    return {"counts": {"by_rule": {}, "by_severity": {"error": 0, "warning": 0, "notice": 1},
                       "waived": len(WAIVED)},
            "ready_for_lock": True, "verdict": "ready for lock", "findings": REMAINING,
            "waived": WAIVED}


@pytest.fixture(scope="module")
def build(built, tmp_path_factory):
    b = tmp_path_factory.mktemp("p12") / "build"
    shutil.copytree(built.out, b, ignore=shutil.ignore_patterns("validation"))
    (b / "validation").mkdir()
    (b / "validation" / "results.json").write_text(json.dumps(_results()), encoding="utf-8")
    (b / "validation" / "report.html").write_text("<html>report</html>\n", encoding="utf-8")
    write_json_datasets(b, SPECS)
    return b


@pytest.fixture(scope="module")
def pkg(build, tmp_path_factory):
    out = tmp_path_factory.mktemp("p12") / "out"
    messages: list[str] = []
    manifest = package(build, out, SPECS, echo=messages.append)
    return out, manifest, messages


def _pdf_text(path) -> bytes:
    """The literal strings of the (uncompressed) content streams, joined."""
    data = path.read_bytes()
    assert b"/FlateDecode" not in data
    return b" ".join(s.replace(b"\\(", b"(").replace(b"\\)", b")")
                     for s in re.findall(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj", data))


def test_m5_holds_only_tcg_file_types(pkg):
    out, manifest, _ = pkg
    m5 = [p for p in (out / "m5").rglob("*") if p.is_file()]
    assert m5 and {p.suffix for p in m5} == TCG_TYPES
    assert not [p for p in m5 if p.suffix in (".json", ".html")]
    sup = {e["file"]: e["kind"] for e in manifest["supplementary"]}
    assert sup["supplementary/sdtm/ae.json"] == "Dataset-JSON"
    assert sup["supplementary/adam/define.html"] == "define.html"
    assert sup["supplementary/validation/report.html"] == "validation report"
    files = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert all(len(files[f]) == 64 for f in sup)
    ds = {d["dataset"]: d for d in manifest["datasets"]}
    assert ds["AE"]["dataset_json"] == "supplementary/sdtm/ae.json"
    assert verify_package(out) == []


def test_generated_guides_and_missing_acrf(pkg):
    out, manifest, messages = pkg
    docs = {d["file"].rsplit("/", 1)[1]: d for d in manifest["documents"]}
    assert (docs["acrf.pdf"]["included"], docs["acrf.pdf"]["source"]) == (False, None)
    assert docs["csdrg.pdf"]["source"] == docs["adrg.pdf"]["source"] == "generated"
    assert docs["csdrg.pdf"]["pages"] >= 3 and docs["adrg.pdf"]["pages"] >= 3
    assert not (out / SDTM / "acrf.pdf").exists()
    assert [m for m in messages if "acrf.pdf" in m and "missing" in m]
    sdtm = etree.parse(str(out / SDTM / "define.xml"))
    assert sdtm.xpath("//odm:MetaDataVersion/def:leaf/@xlink:href", namespaces=NS) == ["csdrg.pdf"]
    assert sdtm.xpath("//def:AnnotatedCRF", namespaces=NS) == []
    assert sdtm.xpath("//def:Origin/def:DocumentRef", namespaces=NS) == []
    adam = etree.parse(str(out / ADAM / "define.xml"))
    assert adam.xpath("//odm:MetaDataVersion/def:leaf/@xlink:href", namespaces=NS) == ["adrg.pdf"]

    csdrg = (out / SDTM / "csdrg.pdf").read_bytes()
    assert csdrg.startswith(b"%PDF-")
    assert b"/CreationDate (D:20260228000000Z)" in csdrg      # the data cut, not the clock
    text = _pdf_text(out / SDTM / "csdrg.pdf")
    assert b"VGO-Cs01p" in text and b"27.1" in text             # study id, MedDRA version
    for rule in ("CORE-000701", "CORE-000774"):              # the waived findings' rules
        assert rule.encode() in text
    assert b"data management" in text and b"SDTMIG 3.4" in text
    assert b"TSPARMCD" in text                                  # trial design section
    assert b"CDISC-AD-099" not in text                          # an ADTTE finding: the ADRG's
    adrg = _pdf_text(out / ADAM / "adrg.pdf")
    assert b"CDISC-AD-099" in adrg and b"CORE-000701" not in adrg
    assert b"ADTTE" in adrg and b"Overall Survival" in adrg


def test_same_build_gives_identical_packages(pkg, build, tmp_path):
    out, manifest, _ = pkg
    again = tmp_path / "again"
    assert package(build, again, SPECS, echo=lambda m: None) == manifest
    on = lambda root: {p.relative_to(root).as_posix(): p.read_bytes()   # noqa: E731
                       for p in sorted(root.rglob("*")) if p.is_file()}
    assert on(again) == on(out)


def test_user_guide_wins_and_parameters_reach_the_adrg(build, tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs, ignore=shutil.ignore_patterns("__pycache__"))
    (specs / "docs").mkdir(exist_ok=True)
    (specs / "docs" / "csdrg.pdf").write_bytes(b"%PDF-1.4 the sponsor's own cSDRG\n")
    path = specs / "adam" / "adtte.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["parameters"] = [
        {"paramcd": "OS", "param": "Overall Survival (days)",
         "method": "Event: death from any cause (protocol definition). Censored at LSTALVDT."},
        {"paramcd": "LFS", "param": "Leukemia-Free Survival (days)", "method": "LFS method text."},
        {"paramcd": "DOR", "param": "Duration of Response (CR/CRh/CRi) (days)",
         "method": "DOR method text."}]
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    out = tmp_path / "out"
    manifest = package(build, out, specs, echo=lambda m: None)
    docs = {d["file"].rsplit("/", 1)[1]: d["source"] for d in manifest["documents"]}
    assert docs == {"acrf.pdf": None, "csdrg.pdf": "specs/docs/csdrg.pdf", "adrg.pdf": "generated"}
    assert (out / SDTM / "csdrg.pdf").read_bytes() == b"%PDF-1.4 the sponsor's own cSDRG\n"
    adrg = _pdf_text(out / ADAM / "adrg.pdf")
    assert b"death from any cause (protocol definition)" in adrg
    adam = etree.parse(str(out / ADAM / "define.xml"))
    assert adam.xpath("//odm:MethodDef[@OID='MT.ADTTE.AVAL.OS']//odm:TranslatedText/text()",
                      namespaces=NS) == [spec["parameters"][0]["method"]]
    assert verify_package(out) == []


def test_a_package_validates_on_its_own_as_its_build_did(pkg):
    """The package carries the build's study.json (CT versions, sponsor CT, rule parameters,
    waivers, data cut) in supplementary/validation/, so `cdisc validate PACKAGE` without specs
    gives the build's verdict: no findings, the study's waivers applied (CORE-000701 on the 23
    prior-therapy CM records and 2 AE, CORE-000774 on RS), and the Dataset-JSON copies in
    supplementary/ are not read a second time."""
    from cdisc.validation import validate_folder

    out, manifest, _ = pkg
    sup = {e["file"]: e["kind"] for e in manifest["supplementary"]}
    assert sup["supplementary/validation/study.json"] == "validation context"
    result = validate_folder(out)
    assert [(f.rule, f.dataset) for f in result.findings] == []
    assert len(result.waived) == 26 and {f.rule for f, _ in result.waived} == {"CORE-000701", "CORE-000774"}
    assert len(result.source["files"]) == len(manifest["datasets"])
