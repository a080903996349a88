"""Incremental builds (issue 15 item 3): the build graph in manifest.json, "nothing changed",
a one-form change rebuilds only its dependants (byte-identical to a full build), --select.

One full build of a private copy of the shipped study (``--no-validate``: validation is the
same whole-folder step either way and is tested elsewhere) is shared by the module; the tests
that change an input work on copies of it.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from cdisc.graph import input_hashes, parse_select, plan_build
from conftest import Study, copy_study, tree_bytes

OPTIONS = {"formats": ["xpt"], "validate": False, "review_report": False, "fail_on": "error", "engine": "native",
           "source": "raw"}  # as QUICK_FLAGS build (--no-validate --no-report)

# raw/ae.csv is read by two SDTM specs (specs/sdtm/ae.yaml, specs/sdtm/co.yaml: comments on the AE
# record). ADSL reads AE (specs/adam/adsl.yaml: LSTAESDTC/LSTAEEDTC for LSTALVDT, dataset_add: AE), so
# every ADaM dataset that reads ADSL follows: ADAE, ADCM, ADIS, ADLB, ADMH, ADPC, ADRS, ADVS
# (each merges ADSL), ADCRS (reads ADAE), ADPP (ADPC, ADSL), ADTTE (ADRS, ADSL).
# ADEX reads only DM and EX (specs/adam/adex.yaml): kept. No other SDTM domain reads ae.csv: kept.
AE_CHANGE_REBUILDS = {"AE", "CO", "ADSL", "ADAE", "ADCM", "ADCRS", "ADIS", "ADLB", "ADMH", "ADPC", "ADPP",
                      "ADRS", "ADTTE", "ADVS"}
# raw/icu.csv is read by HO and RELREC (specs/sdtm/ho.yaml, relrec.yaml: ICU stays caused by CRS/ICANS);
# of the ADaM specs only ADCRS reads HO or RELREC (specs/adam/adcrs.yaml, dataset_relrec/dataset_add: HO),
# and nothing reads ADCRS. ADSL reads neither.
ICU_CHANGE_REBUILDS = {"HO", "RELREC", "ADCRS"}
# raw/vs.csv: VS, and ADSL reads VS (baseline weight/height, dataset_add: VS), so VS, ADVS, ADSL and
# every ADaM dataset after ADSL: the AE set less AE and CO (and ADEX still kept).
VS_CHANGE_REBUILDS = AE_CHANGE_REBUILDS - {"AE", "CO"} | {"VS"}


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """(study copy, its build folder) after one full build."""
    study = copy_study(tmp_path_factory.mktemp("incr"))
    out = study.root / "out"
    res = study.build(out)
    assert res.code == 0, res.output
    assert "Full build (no earlier build in" in res.stdout
    return study, out


def _fork(first, tmp_path: Path):
    """A private copy of the study and its build (a test may change both)."""
    study, out = first
    root = tmp_path / "s"
    shutil.copytree(study.root, root, symlinks=True)
    s = Study(root, root / "specs", root / "raw")
    return s, root / "out"


def test_manifest_records_the_graph(first):
    _, out = first
    rec = json.loads((out / "manifest.json").read_text())["build"]
    nodes = rec["nodes"]
    # the engine records the forms each domain read: AE and CO read ae.csv; DM also reads the forms
    # that give RFSTDTC/RFXSTDTC/DTHDTC/RFPENDTC (ic, ex, ld, dth, eos)
    assert nodes["AE"]["files"] == ["raw/ae.csv", "specs/sdtm/ae.yaml"]
    assert nodes["CO"]["files"] == ["raw/ae.csv", "specs/sdtm/co.yaml"]
    assert nodes["AE"]["outputs"] == ["AE", "SUPPAE"] and nodes["AE"]["upstream"] == ["DM"]
    assert nodes["DM"]["outputs"] == ["DM", "SE"] and nodes["DM"]["upstream"] == []
    assert nodes["TD"]["outputs"] == ["TA", "TE", "TI", "TS", "TV"] and nodes["TD"]["upstream"] == ["DM"]
    assert nodes["PP"]["upstream"] == ["PC"]
    assert nodes["ADAE"]["upstream"] == ["ADSL", "AE"]
    assert nodes["ADEX"]["upstream"] == ["DM", "EX"]
    assert rec["global"] == ["specs/ct/README.md", "specs/ct/study-ct.yaml", "specs/study.yaml"]
    assert "specs/waivers.yaml" in rec["checks"] and "raw/truth.csv" in rec["checks"]


def test_nothing_changed_is_quick_and_touches_nothing(first):
    study, out = first
    before = tree_bytes(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    t = time.perf_counter()
    res = study.build(out)
    seconds = time.perf_counter() - t
    assert res.code == 0, res.output
    assert f"Nothing changed since the build in {out} (manifest {out / 'manifest.json'}, 46 datasets" in res.stdout
    assert "up to date" in res.stdout and "Wrote" not in res.stdout
    assert seconds < 1.0, seconds
    assert tree_bytes(out) == before
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == mtimes
    assert not list(out.parent.glob(".out.cdisc-*"))       # no staging folder was even made


def test_plan_for_an_ae_change_is_the_hand_checked_set(first, tmp_path):
    study, out = _fork(first, tmp_path)
    study.set_raw("ae", 2, "AETOXGR", "3")
    plan = plan_build(out, input_hashes(study.specs, study.raw), OPTIONS)
    assert plan.mode == "incremental" and plan.changed == ["raw/ae.csv"]
    assert plan.dirty == AE_CHANGE_REBUILDS


def test_plan_for_other_changes(first, tmp_path):
    study, out = _fork(first, tmp_path)
    hashes = input_hashes(study.specs, study.raw)
    assert plan_build(out, hashes, OPTIONS).mode == "up_to_date"
    assert plan_build(out, hashes, OPTIONS, full=True).mode == "full"
    assert plan_build(out, hashes, {**OPTIONS, "formats": ["json", "xpt"]}).mode == "full"
    # vs.csv: VS and ADVS only
    vs = (study.raw / "vs.csv").read_bytes()
    (study.raw / "vs.csv").write_bytes(vs.replace(b"\n", b"\r\n", 1))      # any byte change counts
    assert plan_build(out, input_hashes(study.specs, study.raw), OPTIONS).dirty == VS_CHANGE_REBUILDS
    (study.raw / "vs.csv").write_bytes(vs)
    icu = (study.raw / "icu.csv").read_bytes()
    (study.raw / "icu.csv").write_bytes(icu.replace(b"\n", b"\r\n", 1))
    assert plan_build(out, input_hashes(study.specs, study.raw), OPTIONS).dirty == ICU_CHANGE_REBUILDS
    (study.raw / "icu.csv").write_bytes(icu)
    # dm.csv: DM feeds every domain (RFSTDTC, --DY, EPOCH via SE): everything
    dm = (study.raw / "dm.csv").read_bytes()
    (study.raw / "dm.csv").write_bytes(dm.replace(b"\n", b"\r\n", 1))
    plan = plan_build(out, input_hashes(study.specs, study.raw), OPTIONS)
    assert plan.dirty == set(plan.nodes)
    (study.raw / "dm.csv").write_bytes(dm)
    # waivers.yaml: no dataset, but the checks and validation run again
    (study.specs / "waivers.yaml").write_text((study.specs / "waivers.yaml").read_text() + "\n# reviewed\n")
    plan = plan_build(out, input_hashes(study.specs, study.raw), OPTIONS)
    assert (plan.mode, plan.dirty) == ("incremental", set())
    # study.yaml is read by every dataset: full
    (study.specs / "study.yaml").write_text((study.specs / "study.yaml").read_text() + "\n# note\n")
    plan = plan_build(out, input_hashes(study.specs, study.raw), OPTIONS)
    assert plan.mode == "full" and "specs/study.yaml changed" in plan.reason
    # a new raw file: full (it may be a new form)
    (study.raw / "new.csv").write_text("A\n1\n")
    assert plan_build(out, input_hashes(study.specs, study.raw), OPTIONS).mode == "full"


def test_a_changed_output_file_in_out_is_rebuilt(first, tmp_path):
    study, out = _fork(first, tmp_path)
    with open(out / "adam" / "advs.xpt", "r+b") as f:
        f.seek(-1, 2)
        f.write(b"!")
    plan = plan_build(out, input_hashes(study.specs, study.raw), OPTIONS)
    assert plan.mode == "incremental" and plan.dirty == {"ADVS"}
    # a file cdisc wrote that is gone (the marker lists it): no node to blame, so everything
    (out / "trace.json").unlink()
    plan = plan_build(out, input_hashes(study.specs, study.raw), OPTIONS)
    assert plan.mode == "full" and "trace.json is missing" in plan.reason


def test_one_form_change_is_byte_identical_to_a_full_build(first, tmp_path):
    study, out = _fork(first, tmp_path)
    study.set_raw("ae", 2, "AETOXGR", "3")      # hand-chosen: grade 1 CRS -> 3 on AE row 1
    res = study.build(out)
    assert res.code == 0, res.output
    line = next(x for x in res.stdout.splitlines() if x.startswith("Incremental build:"))
    assert f"rebuilding {', '.join(sorted(AE_CHANGE_REBUILDS))} (14 of 33)" in line
    assert "  adam   ADEX            73 records  kept" in res.stdout
    assert "  sdtm   AE              57 records  kept" not in res.stdout
    full = study.build(tmp_path / "full", "--full")
    assert full.code == 0, full.output
    a, b = tree_bytes(out), tree_bytes(tmp_path / "full")
    assert sorted(a) == sorted(b)
    assert [f for f in a if a[f] != b[f]] == []
    assert a["sdtm/ae.xpt"] != tree_bytes(first[1])["sdtm/ae.xpt"]     # the change did reach AE


def test_select(first, tmp_path):
    study, out = _fork(first, tmp_path)
    plan = plan_build(out, input_hashes(study.specs, study.raw), OPTIONS)
    assert parse_select("ADSL+", plan.nodes) == {"ADSL", "ADAE", "ADCM", "ADCRS", "ADIS", "ADLB", "ADMH", "ADPC",
                                                  "ADPP", "ADRS", "ADTTE", "ADVS"}
    assert parse_select("ae", plan.nodes) == {"AE"}
    assert parse_select("suppae,ts", plan.nodes) == {"AE", "TD"}
    assert parse_select("+ADVS", plan.nodes) == {"ADVS", "VS", "ADSL", "DM"} | \
        set(plan.nodes["ADSL"].upstream) | {"EX"}
    with pytest.raises(ValueError, match="no dataset or node XX"):
        parse_select("XX", plan.nodes)
    # DM changed and not selected, but ADVS reads it (through VS and ADSL): refused, nothing written
    before = tree_bytes(out)
    dm = (study.raw / "dm.csv").read_bytes()
    (study.raw / "dm.csv").write_bytes(dm.replace(b"\n", b"\r\n", 1))
    res = study.build(out, "--select", "ADVS")
    assert res.code == 2
    assert "--select ADVS: ADEX, ADSL, AE, CM, DD, DM, DS, EX, IS, LB, MH, PC, PR, RS, TD, VS changed since" \
        in res.stderr and "(raw/dm.csv) and are read by the selection" in res.stderr
    assert "e.g. --select DM+" in res.stderr
    assert tree_bytes(out) == before
    (study.raw / "dm.csv").write_bytes(dm)
    # icu.csv changed: --select ADCRS is refused too (HO, RELREC are upstream), and so is --select ho+
    # (HO and ADCRS, which reads the changed RELREC); --select ho builds HO alone and keeps RELREC and
    # ADCRS out of date (changed, not selected); a plain build then does just those two
    icu = (study.raw / "icu.csv").read_bytes()
    (study.raw / "icu.csv").write_bytes(icu.replace(b"\n", b"\r\n", 1))
    refused = study.build(out, "--select", "ADCRS")
    assert refused.code == 2 and "HO, RELREC changed since" in refused.stderr
    assert study.build(out, "--select", "ho+").code == 2
    res = study.build(out, "--select", "ho")
    assert res.code == 0, res.output
    assert "Selected build: HO;" in res.stdout
    assert "Out of date (changed, not selected, kept as they were): ADCRS, RELREC;" in res.stdout
    res = study.build(out)
    assert "rebuilding ADCRS, RELREC (2 of 33)" in res.stdout, res.stdout
    assert "Nothing changed" in study.build(out).stdout


def test_select_needs_an_earlier_build(tmp_path):
    study = copy_study(tmp_path)
    res = study.build(tmp_path / "nothing", "--select", "AE")
    assert res.code == 2 and "needs an earlier build" in res.stderr
    assert not (tmp_path / "nothing").exists()


def test_a_kept_sdtm_dataset_that_differs_means_a_full_build(first, tmp_path):
    """The SDTM of an incremental build is mapped again in memory; a domain the graph calls
    unchanged must come out as the very bytes OUT holds, else (an input the graph does not know)
    everything is built again. Simulated: OUT's VS file and its manifest entry are altered alike."""
    study, out = _fork(first, tmp_path)
    vs = out / "sdtm" / "vs.xpt"
    vs.write_bytes(vs.read_bytes()[:-80] + b" " * 80)
    manifest = json.loads((out / "manifest.json").read_text())
    entry = next(o for o in manifest["outputs"] if o["dataset"] == "VS")
    entry["sha256"] = __import__("hashlib").sha256(vs.read_bytes()).hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    icu = (study.raw / "icu.csv").read_bytes()
    (study.raw / "icu.csv").write_bytes(icu.replace(b"\n", b"\r\n", 1))
    res = study.build(out)
    assert res.code == 0, res.output
    assert "rebuilding ADCRS, HO, RELREC (3 of 33)" in res.stdout
    assert f"note: VS differs from the build in {out} although none of its recorded inputs changed" in res.stdout
    assert "Full build (--full)" in res.stdout
    # VS does not read icu.csv: the full build gave back the very bytes of the first build
    assert (out / "sdtm" / "vs.xpt").read_bytes() == (first[1] / "sdtm" / "vs.xpt").read_bytes()
    assert "Nothing changed" in study.build(out).stdout
