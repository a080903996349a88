"""The CDISC pilot (CDISCPILOT01) built as a user would: one `cdisc build --sdtm` command on a
study folder with only study.yaml, ADaM specs, validation parameters and waivers; validated
(SDTMIG 3.4 rules and CDISC CORE), then packaged. Agreement with the published pilot ADaM is
measured on the XPT files written (what a reviewer receives)."""
from __future__ import annotations

import json

import pytest

from cdisc.delivered import read_delivered
from conftest import REPO, run_cli
from pilot_agreement import TARGET, compare

STUDY = REPO / "studies" / "cdiscpilot01"

# one worker builds the module fixture once (pytest -n auto runs with --dist loadfile; the group keeps it so under loadgroup)
pytestmark = pytest.mark.xdist_group(name="pilot_build")


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    out = tmp_path_factory.mktemp("pilot") / "build"
    res = run_cli("build", "--specs", STUDY / "specs", "--sdtm", STUDY / "sdtm", "--out", out, "--no-report")
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
    assert results["counts"]["by_severity"].get("error", 0) == 0 and results["counts"]["waived"] > 100_000


@pytest.mark.parametrize("name", ["ADSL", "ADLBC", "ADVS"])
def test_adam_from_the_xpt_agrees_with_the_published_pilot(pilot, name):
    out, _ = pilot
    r = compare(name, read_delivered(out / "adam" / f"{name.lower()}.xpt").frame)
    assert r.rate >= TARGET, (name, r.rate)
    assert r.matched == r.records_theirs == r.records_ours


@pytest.mark.parametrize("name, equal, cells", [("ADAE", 50467, 50933), ("ADTTE", 6037, 6096)])
def test_adae_and_adtte_agree_except_where_the_sdtm_update_deleted_records(pilot, name, equal, cells):
    """Below the 99.5% target, explained in DIFFERENCES.md: the delivered AE (PHUSE update) lacks
    230 duplicate AE records the published ADAE was derived from, which moves first-occurrence
    flags and ADTTE SRCSEQ; 12 subjects' actual arm follows the delivered ACTARM. The counts are
    pinned: a new difference fails here until DIFFERENCES.md says why."""
    out, _ = pilot
    r = compare(name, read_delivered(out / "adam" / f"{name.lower()}.xpt").frame)
    if name == "ADAE":       # measured on the 961 records both have (230 published records have no AE)
        assert (r.records_ours, r.records_theirs, r.matched) == (961, 1191, 961)
        # cells over the matched records only (a record only one side has is all-different)
        eq = sum(e for e, _ in r.by_variable.values())
        assert (eq, r.matched * len(r.by_variable)) == (equal, cells)
    else:
        assert (r.equal, r.cells) == (equal, cells)


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
