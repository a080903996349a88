"""The submission package: Dataset-JSON beside the XPTs, define.xml, eCTD m5 folders,
checksummed manifest, refusal of an unvalidated build, TCG §3.3.2 splitting.

The shipped study is built once per session (conftest ``built``); this module copies the
build and gives the copy a validation verdict of its own (results.json with 0 errors,
or with 1 error for the refusal tests), so the tests do not depend on the current
validation findings or spend 7 s validating.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cdisc.datasetjson import validate_dataset_json
from cdisc.define import validate_define
from cdisc.define.from_build import BuildDataset, read_build, read_xpt_values
from cdisc.errors import DataError
from cdisc.outdir import OutputError
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.package import (
    compare_json_to_xpt, package, plan_split, split_dataset, verify_package,
    write_json_datasets,
)
from cdisc.study import load_study
from cdisc.xpt import write_xpt

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
SDTM = "m5/datasets/vgo-cs01p/tabulations/sdtm"
ADAM = "m5/datasets/vgo-cs01p/analysis/adam/datasets"


def _results(errors: int) -> dict:
    by_rule = {"CDISC-XD-017": {"findings": errors, "severity": "error"}} if errors else {}
    return {"counts": {"by_rule": by_rule,
                       "by_severity": {"error": errors, "warning": 0, "notice": 0}, "waived": 0},
            "ready_for_lock": errors == 0, "verdict": "ready" if not errors else "NOT ready",
            "findings": []}


def _copy_build(src: Path, dst: Path, errors: int | None = 0) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("validation"))
    if errors is not None:
        (dst / "validation").mkdir()
        (dst / "validation" / "results.json").write_text(json.dumps(_results(errors)),
                                                        encoding="utf-8")
        (dst / "validation" / "report.html").write_text("<html>report</html>\n", encoding="utf-8")
    return dst


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def build(built, tmp_path_factory) -> Path:
    b = _copy_build(built.out, tmp_path_factory.mktemp("pkg") / "build")
    write_json_datasets(b, SPECS)
    return b


@pytest.fixture(scope="module")
def pkg(build, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pkg") / "out"
    return out, package(build, out, SPECS)


# --------------------------------------------------------------------------------------
# Dataset-JSON
# --------------------------------------------------------------------------------------
def test_dataset_json_is_valid_and_round_trips_exactly(build):
    xpts = sorted(build.rglob("*.xpt"))
    assert xpts and len(sorted(build.rglob("*.json"))) >= len(xpts)
    for xpt in xpts:
        js = xpt.with_suffix(".json")
        assert validate_dataset_json(js) == [], js
        assert compare_json_to_xpt(js, xpt) == [], js
    doc = json.loads((build / "sdtm" / "ae.json").read_text(encoding="utf-8"))
    # Header: data cut as creation time (study.yaml data_cut 2026-02-28), the define OIDs.
    assert doc["datasetJSONCreationDateTime"] == "2026-02-28T00:00:00"
    assert (doc["studyOID"], doc["metaDataVersionOID"], doc["metaDataRef"]) == (
        "ST.VGO-Cs01p", "MDV.VGO-Cs01p.SDTMIG.3-4", "define.xml")
    cols = {c["name"]: c for c in doc["columns"]}
    # AETERM: longest value 54 characters; AESEQ: whole numbers; keys from ae.yaml.
    assert (cols["AETERM"]["dataType"], cols["AETERM"]["length"]) == ("string", 54)
    assert cols["AESEQ"]["dataType"] == "integer"
    assert cols["AEDECOD"]["keySequence"] == 3 and cols["AEDECOD"]["itemOID"] == "IT.AE.AEDECOD"
    adsl = {c["name"]: c for c in json.loads(
        (build / "adam" / "adsl.json").read_text(encoding="utf-8"))["columns"]}
    assert (adsl["TRTSDT"]["dataType"], adsl["TRTSDT"]["targetDataType"],
            adsl["TRTSDT"]["displayFormat"]) == ("date", "integer", "DATE9.")


def test_dataset_json_tricky_floats(tmp_path):
    """Values that a decimal text round trip could break come back bit for bit."""
    created = load_study(SPECS).created
    meta = DatasetMeta(name="XX", label="Tricky numbers", **{"class": "FINDINGS"},
                       structure="One record per value", keys=["XXSEQ"], variables=[
                           VariableMeta(name="XXSEQ", label="Sequence", type="Num"),
                           VariableMeta(name="XXVAL", label="Value", type="Num"),
                           VariableMeta(name="XXDT", label="Date", type="Num", format="DATE9."),
                           VariableMeta(name="XXDTM", label="Datetime", type="Num",
                                        format="DATETIME20."),
                           VariableMeta(name="XXTXT", label="Text")])
    values = [0.1, 1 / 3, 1e-7, 123456789.123456789, 1e15 + 0.5, 7e75, 1e-78, -2.5, np.nan]
    n = len(values)
    df = pd.DataFrame({"XXSEQ": np.arange(1.0, n + 1), "XXVAL": values,
                       # -1 = 1959-12-31 (before the SAS epoch), 23462 = 2024-03-28
                       "XXDT": [-1.0, 23462.0] + [np.nan] * (n - 2),
                       "XXDTM": [0.5, 2027155200.0] + [np.nan] * (n - 2),
                       "XXTXT": ["a", " lead", ""] + ["x"] * (n - 3)})
    (tmp_path / "sdtm").mkdir()
    write_xpt(tmp_path / "sdtm" / "xx.xpt", df, meta, created)
    (tmp_path / "metadata.json").write_text(
        json.dumps({"XX": meta.model_dump(mode="json", by_alias=True, exclude_none=True)}),
        encoding="utf-8")
    [js] = write_json_datasets(tmp_path, SPECS)
    assert validate_dataset_json(js) == []
    assert compare_json_to_xpt(js, tmp_path / "sdtm" / "xx.xpt") == []
    back = read_xpt_values(tmp_path / "sdtm" / "xx.xpt")
    assert back["XXVAL"].iloc[:8].tolist() == values[:8]     # XPT itself is exact (IBM 56 bits)
    text = js.read_text(encoding="utf-8")
    assert '"1959-12-31"' in text and "0.3333333333333333" in text and "1e-07" in text


# --------------------------------------------------------------------------------------
# Package layout, manifest, determinism
# --------------------------------------------------------------------------------------
def test_layout(pkg, build):
    out, manifest = pkg
    sdtm, adam = out / SDTM, out / ADAM
    names = {p.name for p in sdtm.iterdir()}
    # m5 holds only what the FDA TCG lists: XPT, define.xml + stylesheet, reviewer's guides
    # (issue 12); Dataset-JSON, define.html and the validation report are in supplementary/.
    assert {"ae.xpt", "dm.xpt", "suppae.xpt", "define.xml", "define2-1.xsl", "csdrg.pdf"} <= names
    assert {"adsl.xpt", "adae.xpt", "define.xml", "define2-1.xsl", "adrg.pdf"} <= \
        {p.name for p in adam.iterdir()}
    assert {"validation-report.html", "define.html", "ae.json"}.isdisjoint(names)
    assert (out / "supplementary" / "sdtm" / "ae.json").is_file()
    assert (out / "supplementary" / "adam" / "adsl.json").is_file()
    assert (out / "supplementary" / "validation" / "report.html").is_file()
    # The transport files are the build's, byte for byte, except those whose character
    # lengths the package widened to the study-wide ones (TCG §4.1.5.2): same values.
    widened = {e["file"].rsplit("/", 1)[1] for e in manifest["datasets"] if e.get("lengths_widened")}
    assert widened and "dm.xpt" not in widened
    for xpt in sorted(build.rglob("*.xpt")):
        folder = sdtm if xpt.parent.name == "sdtm" else adam
        if xpt.name in widened:
            pd.testing.assert_frame_equal(read_xpt_values(folder / xpt.name), read_xpt_values(xpt))
        else:
            assert (folder / xpt.name).read_bytes() == xpt.read_bytes(), xpt.name
    # Dataset-JSON copies say the lengths the transport files and define.xml say (study-wide):
    # the build's copy where the XPT kept its lengths, written again where they were widened
    from cdisc.xpt_read import read_xport

    for js in sorted((out / "supplementary").glob("*/*.json")):
        folder = sdtm if js.parent.name == "sdtm" else adam
        xpt = folder / js.with_suffix(".xpt").name
        if not xpt.is_file():
            continue
        columns = json.loads(js.read_text(encoding="utf-8"))["columns"]
        want = read_xport(xpt)[1].lengths_by_name
        assert {c["name"]: c["length"] for c in columns if "length" in c} == {
            c["name"]: want[c["name"]] for c in columns if c["dataType"] == "string"}, js.name
        built = build / js.parent.name / js.name
        if xpt.name in widened:
            assert js.read_bytes() != built.read_bytes()
            assert compare_json_to_xpt(js, xpt) == [], js.name
        else:
            assert js.read_bytes() == built.read_bytes(), js.name
    for path in (sdtm / "define.xml", adam / "define.xml"):
        assert validate_define(path) == []
    assert manifest["validation"]["errors"] == 0 and manifest["validation"]["allow_errors"] is False
    assert manifest["created"] == "2026-02-28T00:00:00" and manifest["splits"] == []
    # No acrf/csdrg/adrg in specs/docs: the guides are generated, the aCRF is missing.
    assert {d["file"].rsplit("/", 1)[1]: (d["included"], d["source"]) for d in manifest["documents"]} == {
        "acrf.pdf": (False, None), "csdrg.pdf": (True, "generated"), "adrg.pdf": (True, "generated")}


def test_manifest_checksums(pkg):
    out, manifest = pkg
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    listed = [f["path"] for f in manifest["files"]]
    assert listed == sorted(listed)
    assert listed == [p for p in on_disk if p not in ("manifest.json", "manifest.json.sha256", ".cdisc-output.json")]
    for f in manifest["files"]:
        data = (out / f["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"])
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8")) == manifest
    assert verify_package(out) == []


def test_packaging_twice_gives_identical_bytes(pkg, build, tmp_path):
    out, _ = pkg
    again = tmp_path / "again"
    # Packaging over an earlier package replaces it whole: files of the earlier package
    # that the new one does not have (here its split parts) go, and the result is the very
    # bytes of a package made afresh.
    package(build, again, SPECS, split_limit_bytes=200_000)
    assert any("/split/" in p for p in tree_bytes(again))
    package(build, again, SPECS)
    assert tree_bytes(again) == tree_bytes(out)
    # A file cdisc did not write is never removed: the package folder is refused instead.
    (again / "notes.txt").write_text("mine", encoding="utf-8")
    before = tree_bytes(again)
    with pytest.raises(OutputError, match="holds files cdisc did not write: notes.txt"):
        package(build, again, SPECS)
    assert tree_bytes(again) == before


@pytest.mark.parametrize("edit", [
    ("record count", lambda m: m["datasets"][0].update(records=m["datasets"][0]["records"] + 1)),
    ("data cut", lambda m: m.update(data_cut="2027-01-01")),
    ("validation verdict", lambda m: m["validation"].update(errors=(m["validation"]["errors"] or 0) + 3)),
])
def test_verify_detects_an_edited_manifest(pkg, tmp_path, edit):
    """manifest.json itself is protected by the SHA-256 in manifest.json.sha256 beside it."""
    out, _ = pkg
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert verify_package(copy) == []
    m = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    edit[1](m)
    (copy / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (p,) = verify_package(copy)
    assert p.file == "manifest.json" and "manifest.json changed after packaging" in p.message


def test_verify_needs_the_manifest_hash(pkg, tmp_path):
    out, _ = pkg
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "manifest.json.sha256").unlink()
    (p,) = verify_package(copy)
    assert "manifest.json.sha256 not found" in p.message


def test_verify_package_detects_tampering(pkg, tmp_path):
    out, _ = pkg
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    ae = copy / SDTM / "ae.xpt"
    data = bytearray(ae.read_bytes())
    data[-100] ^= 0x01                       # one bit in one record
    ae.write_bytes(bytes(data))
    (copy / "supplementary" / "adam" / "adsl.json").unlink()   # beside m5 (issue 12)
    (copy / SDTM / "notes.txt").write_text("extra", encoding="utf-8")
    problems = verify_package(copy)
    found = {(p.file, p.message.split(":")[0].split(" (")[0]) for p in problems}
    assert found == {(f"{SDTM}/ae.xpt", "file changed"),
                     ("supplementary/adam/adsl.json", "file listed in manifest.json is missing"),
                     (f"{SDTM}/notes.txt", "file is not in manifest.json")}
    (copy / "manifest.json").unlink()
    assert "manifest.json not found" in verify_package(copy)[0].message


# --------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------
def test_refuses_a_build_with_validation_errors(built, tmp_path):
    bad = _copy_build(built.out, tmp_path / "bad", errors=1)
    with pytest.raises(DataError) as err:
        package(bad, tmp_path / "out", SPECS)
    assert err.value.exit_code == 1
    text = str(err.value)
    assert "1 validation error finding(s) (CDISC-XD-017)" in text and "--allow-errors" in text
    assert not (tmp_path / "out").exists()
    manifest = package(bad, tmp_path / "out", SPECS, allow_errors=True)
    assert manifest["validation"]["errors"] == 1 and manifest["validation"]["allow_errors"] is True
    assert verify_package(tmp_path / "out") == []


def test_refuses_unvalidated_or_changed_build(built, tmp_path):
    raw = _copy_build(built.out, tmp_path / "raw", errors=None)
    with pytest.raises(DataError, match="no validation results"):
        package(raw, tmp_path / "out", SPECS)
    changed = _copy_build(built.out, tmp_path / "changed")
    dm = changed / "sdtm" / "dm.xpt"
    dm.write_bytes(dm.read_bytes()[:-80] + b" " * 80)
    with pytest.raises(DataError, match="differs from the one the build wrote"):
        package(changed, tmp_path / "out", SPECS)
    with pytest.raises(OutputError, match="is the build folder or contains it"):
        package(changed, changed, SPECS)
    with pytest.raises(OutputError, match="is the build folder or contains it"):
        package(changed, changed.parent, SPECS)
    with pytest.raises(OutputError, match="is inside the build folder"):
        package(changed, changed / "pkg", SPECS)


# --------------------------------------------------------------------------------------
# FDA TCG §3.3.2 split
# --------------------------------------------------------------------------------------
def test_split_dataset_ae_with_a_tiny_limit(build, tmp_path):
    """AE: 36 variables, records of 643 bytes; header = 3 + 4 + 1 + 63 + 1 records of 80
    bytes (36 namestrs x 140 = 5040 = 63 x 80) = 5,760 bytes; 5760 + pad80(57 x 643 =
    36651 -> 36720) = 42,480 bytes. Under a 20,000-byte limit a part holds at most 22
    records (5760 + pad80(22 x 643 = 14146) = 19,920 <= 20,000; 23 records give 20,560).
    AE has no AECAT, so it is split by USUBJID; records per subject (sorted): 6, 6, 7 |
    6, 7, 6 | 5, 5, 9 -> greedy parts of 19, 19 and 19 records: ae1, ae2, ae3.xpt."""
    import pyreadstat

    limit = 20_000
    ds = read_build(build)["AE"]
    assert ds.path.stat().st_size == 42_480
    var, parts = plan_split(ds, limit)
    assert var == "USUBJID" and [len(p) for p in parts] == [3, 3, 3]
    info = split_dataset(ds, tmp_path / "split", limit, load_study(SPECS).created)
    assert [p["file"] for p in info["parts"]] == ["split/ae1.xpt", "split/ae2.xpt", "split/ae3.xpt"]
    assert [p["records"] for p in info["parts"]] == [19, 19, 19]
    assert info["parts"][2]["values"] == ["VGO-Cs01p-103-001", "VGO-Cs01p-103-002",
                                          "VGO-Cs01p-103-003"]
    pieces = []
    for part in info["parts"]:
        path = tmp_path / part["file"]
        assert path.stat().st_size <= limit
        df = read_xpt_values(path)
        assert sorted(set(df["USUBJID"])) == part["values"]
        # The dataset inside a part is named as its file (TCG §4.1.1): AE1, AE2, AE3.
        assert pyreadstat.read_xport(str(path), metadataonly=True)[1].table_name == part["dataset"]
        pieces.append(df)
    # Stacked, the parts are the full dataset: AE is sorted by USUBJID first, so even
    # the record order is the same.
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), ds.data,
                                  check_dtype=False)
    # A split variable whose one value is too big is refused: AESER = "N" has 50 records.
    with pytest.raises(DataError, match="AESER='N' alone"):
        plan_split(ds, limit, by="AESER")


def test_category_variable_gives_one_file_per_category(tmp_path):
    """LB with LBCAT A (1 record), B (1), C (3); records of 1 + 8 + 200 = 209 bytes;
    header 3 + 4 + 1 + 6 (3 namestrs = 420 -> 480 bytes) + 1 records = 1,200 bytes. The
    whole file is 1200 + pad80(5 x 209 = 1045 -> 1120) = 2,320 bytes; under a 2,100-byte
    limit four records fit (1200 + pad80(836) = 2,080). Packing would give [A, B], [C];
    a category variable (TCG §3.3.2: LB by LBCAT) gives one file per category."""
    meta = DatasetMeta(name="LB", label="Laboratory Test Results", **{"class": "FINDINGS"},
                       structure="One record per test", keys=["LBSEQ"], variables=[
                           VariableMeta(name="LBCAT", label="Category"),
                           VariableMeta(name="LBSEQ", label="Sequence Number", type="Num"),
                           VariableMeta(name="LBTXT", label="Text")])
    df = pd.DataFrame({"LBCAT": ["A", "B", "C", "C", "C"], "LBSEQ": [1.0, 2, 3, 4, 5],
                       "LBTXT": ["x" * 200] * 5})
    path = tmp_path / "lb.xpt"
    write_xpt(path, df, meta, load_study(SPECS).created)
    assert path.stat().st_size == 2320
    ds = BuildDataset("LB", "SDTM", meta, path, "sdtm/lb.xpt", read_xpt_values(path))
    assert plan_split(ds, 2100) == ("LBCAT", [["A"], ["B"], ["C"]])
    # Any other variable is packed: 4 sequence numbers fit in one file, then 1.
    assert plan_split(ds, 2100, by="LBSEQ") == ("LBSEQ", [["1.0", "2.0", "3.0", "4.0"], ["5.0"]])


# test_package_split_agency.py packages the build once with a small configured limit and
# checks the split there (every file over the limit split, parts, define.xml, lengths).


def test_reviewer_documents_from_specs_docs(build, tmp_path):
    """acrf.pdf / csdrg.pdf / adrg.pdf, when the study keeps them in specs/docs/, go
    beside the define.xml whose def:leaf names them (TCG: tabulations/sdtm holds the aCRF
    and cSDRG, analysis/adam/datasets the ADRG)."""
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs, ignore=shutil.ignore_patterns("__pycache__"))
    (specs / "docs").mkdir(exist_ok=True)
    (specs / "docs" / "acrf.pdf").write_bytes(b"%PDF-1.4 acrf\n")
    (specs / "docs" / "adrg.pdf").write_bytes(b"%PDF-1.4 adrg\n")
    out = tmp_path / "out"
    manifest = package(build, out, specs)
    assert {d["file"].rsplit("/", 1)[1]: (d["included"], d["source"]) for d in manifest["documents"]} == {
        "acrf.pdf": (True, "specs/docs/acrf.pdf"), "csdrg.pdf": (True, "generated"),
        "adrg.pdf": (True, "specs/docs/adrg.pdf")}
    assert (out / SDTM / "acrf.pdf").read_bytes() == b"%PDF-1.4 acrf\n"
    assert (out / ADAM / "adrg.pdf").read_bytes() == b"%PDF-1.4 adrg\n"
    assert f"{SDTM}/acrf.pdf" in [f["path"] for f in manifest["files"]]
    assert verify_package(out) == []
    # define.xml links exactly the documents the package holds (no dead def:leaf)
    from lxml import etree

    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1",
          "xlink": "http://www.w3.org/1999/xlink"}
    sdtm = etree.parse(str(out / SDTM / "define.xml"))
    assert sdtm.xpath("//odm:MetaDataVersion/def:leaf/@xlink:href", namespaces=ns) == [
        "acrf.pdf", "csdrg.pdf"]
    assert sdtm.xpath("//def:AnnotatedCRF/def:DocumentRef/@leafID", namespaces=ns) == ["LF.acrf"]
    adam = etree.parse(str(out / ADAM / "define.xml"))
    assert adam.xpath("//def:SupplementalDoc/def:DocumentRef/@leafID", namespaces=ns) == ["LF.adrg"]
