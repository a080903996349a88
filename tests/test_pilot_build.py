"""The CDISC pilot (CDISCPILOT01) built as a user would: one `cdisc build --sdtm` command on a
study folder with only study.yaml, ADaM specs, validation parameters and waivers; validated
(SDTMIG 3.4 rules and CDISC CORE), then packaged. Agreement with the published pilot ADaM is
measured on the XPT files written (what a reviewer receives)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cdisc.delivered import read_delivered
from conftest import REPO, run_cli
from pilot_agreement import TARGET, compare

STUDY = REPO / "studies" / "cdiscpilot01"


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    out = tmp_path_factory.mktemp("pilot") / "build"
    res = run_cli("build", "--specs", STUDY / "specs", "--sdtm", STUDY / "sdtm", "--out", out)
    assert res.code == 0, res.output
    return out, res


def test_the_study_folder_has_no_sdtm_specs_and_builds_ready_for_lock(pilot):
    out, res = pilot
    assert not (STUDY / "specs" / "sdtm").exists() and not (STUDY / "raw").exists()
    assert "Ready for lock: no errors" in res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sdtm_source"] == "delivered" and manifest["studyid"] == "CDISCPILOT01"
    delivered = sorted(p.name for p in (STUDY / "sdtm").glob("*.parquet"))
    assert len(delivered) == 31
    for name in delivered:                       # byte for byte, never re-emitted
        assert (out / "sdtm" / name).read_bytes() == (STUDY / "sdtm" / name).read_bytes(), name
    results = json.loads((out / "validation" / "results.json").read_text())
    # the delivery's SDTMIG 3.1.2-era findings are waived with reasons, not hidden
    assert results["counts"]["error"] == 0 and len(results["waived"]) > 100_000


@pytest.mark.parametrize("name", ["ADLBC", "ADVS"])
def test_adam_from_the_xpt_agrees_with_the_published_pilot(pilot, name):
    out, _ = pilot
    r = compare(name, read_delivered(out / "adam" / f"{name.lower()}.xpt").frame)
    assert r.rate >= TARGET, (name, r.rate)
    assert r.matched == r.records_theirs == r.records_ours


def test_the_package_has_the_adam_define_and_says_what_the_sdtm_folder_lacks(pilot, tmp_path):
    out, _ = pilot
    res = run_cli("package", "--build", out, "--out", tmp_path / "pkg", "--specs", STUDY / "specs")
    assert res.code == 0, res.output
    assert "has no define.xml" in res.output and "not SAS XPORT" in res.output
    pkg = tmp_path / "pkg"
    assert (pkg / "m5/datasets/cdiscpilot01/analysis/adam/datasets/define.xml").is_file()
    tab = pkg / "m5/datasets/cdiscpilot01/tabulations/sdtm"
    assert (tab / "dm.parquet").read_bytes() == (STUDY / "sdtm" / "dm.parquet").read_bytes()
    assert not (tab / "define.xml").exists()
