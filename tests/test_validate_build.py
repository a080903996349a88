"""`cdisc validate` on a build folder as it is on disk: clean, then with defects written into the XPT files.

The shipped study validates with zero findings. Each defect below is written into a copy
of the build with the toolkit's own XPT writer (as a user replacing a dataset would) and
must be reported by its rule, on its subject and record, with exit code 1.
"""
import json
import shutil

import numpy as np
import pytest
import yaml

from cdisc.pipeline import load_build_metadata
from cdisc.xpt import read_xpt, write_xpt

from conftest import SPECS, run_cli


def _rewrite(folder, dataset, change):
    """Read one dataset of a build, apply `change(df)`, write it back with the same metadata."""
    meta = load_build_metadata(folder)[dataset]
    sub = "adam" if meta.standard == "ADaM" else "sdtm"
    path = folder / sub / f"{dataset.lower()}.xpt"
    df, _ = read_xpt(path)
    df = change(df.copy())
    import datetime as dt

    write_xpt(path, df, meta, dt.datetime(2026, 2, 28))
    return df


@pytest.fixture(scope="module")
def clean_copy(built, tmp_path_factory):
    folder = tmp_path_factory.mktemp("validate") / "build"
    shutil.copytree(built.out, folder)
    return folder


def _findings(folder):
    return json.loads((folder / "validation" / "results.json").read_text())


def test_shipped_study_validates_with_zero_findings(clean_copy):
    res = run_cli("validate", "--out", clean_copy)
    assert res.code == 0, res.output
    out = _findings(clean_copy)
    assert out["findings"] == [] and out["ready_for_lock"] is True
    html = (clean_copy / "validation" / "report.html").read_text()
    assert "Ready for lock" in html and "http://" not in html and "https://" not in html
    assert (clean_copy / "validation" / "suites" / "AE.json").is_file()


@pytest.fixture(scope="module")
def tampered(built, tmp_path_factory):
    folder = tmp_path_factory.mktemp("tampered") / "build"
    shutil.copytree(built.out, folder)
    # AE record 1 moves to a subject DM does not know; AE record 2 gets an impossible date
    _rewrite(folder, "AE", lambda d: d.assign(
        USUBJID=np.where(np.arange(len(d)) == 0, "VGO-Cs01p-999-999", d["USUBJID"]),
        AESTDTC=np.where(np.arange(len(d)) == 1, "2024-02-30", d["AESTDTC"])))
    # TS loses its study start date
    _rewrite(folder, "TS", lambda d: d[d["TSPARMCD"] != "SSTDTC"].reset_index(drop=True))
    # ADTTE record 3 gets CNSR = 2
    _rewrite(folder, "ADTTE", lambda d: d.assign(CNSR=np.where(np.arange(len(d)) == 2, 2.0, d["CNSR"])))
    # ADSL record 5: an age outside the protocol's 2-17 years (range in specs/adam/adsl.yaml)
    _rewrite(folder, "ADSL", lambda d: d.assign(AGE=np.where(np.arange(len(d)) == 4, 1.0, d["AGE"])))
    # a value outside a non-extensible codelist: DM record 4 SEX = "X"
    _rewrite(folder, "DM", lambda d: d.assign(SEX=np.where(np.arange(len(d)) == 3, "X", d["SEX"])))
    res = run_cli("validate", "--out", folder)
    return folder, res, _findings(folder)


def _hits(findings, rule):
    return [f for f in findings["findings"] if f["rule"] == rule]


def test_tampered_build_fails_with_exit_code_1(tampered):
    _, res, out = tampered
    assert res.code == 1
    assert out["ready_for_lock"] is False


def test_orphan_subject_is_reported_on_its_record(tampered):
    hits = _hits(tampered[2], "CDISC-XD-001")
    assert [(h["dataset"], h["usubjid"], h["row"]) for h in hits] == [("AE", "VGO-Cs01p-999-999", 1)]


def test_impossible_date_is_reported(tampered):
    hits = [h for h in _hits(tampered[2], "CDISC-DS-006") if h["dataset"] == "AE"]
    assert [(h["variable"], h["row"], h["value"]) for h in hits] == [("AESTDTC", 2, "2024-02-30")]


def test_missing_ts_parameter_is_reported(tampered):
    hits = _hits(tampered[2], "CDISC-XD-008")
    assert [h["value"] for h in hits] == ["SSTDTC"]


def test_cnsr_outside_0_1_is_reported(tampered):
    hits = _hits(tampered[2], "CDISC-XD-012")
    assert [(h["dataset"], h["row"]) for h in hits] == [("ADTTE", 3)]


def test_value_outside_nonextensible_codelist_is_reported(tampered):
    hits = [h for h in _hits(tampered[2], "CDISC-DS-004") if h["dataset"] == "DM"]
    assert [(h["variable"], h["row"], h["value"]) for h in hits] == [("SEX", 4, "X")]


def test_value_outside_the_spec_range_is_reported(tampered):
    hits = _hits(tampered[2], "CDISC-DS-012")
    assert [(h["dataset"], h["variable"], h["row"]) for h in hits] == [("ADSL", "AGE", 5)]


def test_waiver_moves_a_finding_to_waived(tampered, tmp_path):
    folder = tampered[0]
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    (specs / "waivers.yaml").write_text(yaml.safe_dump({"waivers": [
        {"rule": "CDISC-XD-001", "dataset": "AE", "usubjid": "VGO-Cs01p-999-999",
         "reason": "test subject entered by the vendor; removed at the next transfer",
         "approved_by": "data manager"}]}))
    res = run_cli("validate", "--out", folder, "--specs", specs)
    out = _findings(folder)
    assert [w["rule"] for w in out["waived"]] == ["CDISC-XD-001"]
    assert _hits(out, "CDISC-XD-001") == []
    assert res.code == 1            # the other errors remain
