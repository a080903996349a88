"""`cdisc validate PATH` on folders this toolkit did not build (issue 11): XPT or Dataset-JSON,
no specs, split datasets as one domain, the report beside the folder, never inside it."""
from __future__ import annotations

import json

import shutil

import pyreadstat
import pytest

from conftest import SPECS, run_cli, tree_bytes
from cdisc.validation import validate_folder


@pytest.fixture
def delivery(tmp_path, built):
    """A 'CRO delivery': the shipped study's SDTM XPT files in a folder of their own."""
    d = tmp_path / "delivery" / "tabulations"
    d.mkdir(parents=True)
    for f in (built.out / "sdtm").glob("*.xpt"):
        shutil.copy(f, d / f.name)
    return tmp_path / "delivery"


def test_a_build_validates_on_its_own(built):
    """No --specs: the build's study.json gives CT versions, sponsor terms, rule parameters."""
    result = validate_folder(built.out)
    assert result.findings == [] and result.source["build"] is True
    assert result.source["ct"] == "SDTM CT 2025-03-28; ADaM CT 2026-03-27"


def test_a_delivery_is_checked_against_the_standard_alone(delivery):
    before = tree_bytes(delivery)
    res = run_cli("validate", delivery)
    assert res.code == 1, res.output                  # errors remain (below)
    assert "Validated 33 datasets of" in res.stdout and "against SDTMIG 3.4 / ADaMIG 1.3" in res.stdout
    report = delivery.with_name("delivery.validation")
    assert (report / "report.html").is_file() and (report / "results.json").is_file()
    assert tree_bytes(delivery) == before            # nothing written into the delivery
    # what the command found (its results.json; validating again would find the same)
    findings = json.loads((report / "results.json").read_text())["findings"]
    by = {(f["rule"], f["dataset"], f["variable"], f["value"]) for f in findings}
    # the sponsor's CD7 test code is not CDISC CT: without the study's CT it is reported
    assert ("CDISC-DS-005", "LB", "LBTESTCD", "CD7") in by
    # RFSTDTC is the first VGO-Cs01p infusion; without the study's parameter (specs/validation.yaml)
    # the rule takes every EX record as study treatment, lymphodepletion included
    assert {f["dataset"] for f in findings if f["rule"] == "CDISC-XD-004"} == {"DM"}
    # with the study's specs the same folder is clean
    assert validate_folder(delivery, specs_dir=SPECS).findings == []


def test_split_datasets_are_one_domain(delivery, built):
    """SDTMIG §4.1.7: LB split by LBCAT into LBCH/LBHE; --SEQ must be unique across the splits.
    A finding names the split file and the record within it."""
    from cdisc.xpt import write_xpt
    from cdisc.pipeline import load_build_metadata

    folder = delivery / "tabulations"
    lb, _ = pyreadstat.read_xport(str(folder / "lb.xpt"))
    (folder / "lb.xpt").unlink()
    meta = load_build_metadata(built.out)["LB"]
    import datetime as dt

    ch = lb[lb["LBCAT"] == "CHEMISTRY"].reset_index(drop=True)
    he = lb[lb["LBCAT"] != "CHEMISTRY"].reset_index(drop=True)
    he.loc[4, "LBSEQ"] = ch.loc[ch["USUBJID"] == he.loc[4, "USUBJID"], "LBSEQ"].iloc[0]   # duplicate across files
    for name, part in (("LBCH", ch), ("LBHE", he)):
        write_xpt(folder / f"{name.lower()}.xpt", part, meta.model_copy(update={"name": name}),
                  dt.datetime(2026, 2, 28))
    result = validate_folder(delivery, specs_dir=SPECS)
    dup = {(f.rule, f.dataset, f.row) for f in result.findings if f.rule == "CDISC-DS-010"}
    first = ch.index[(ch["USUBJID"] == he.loc[4, "USUBJID"]) & (ch["LBSEQ"] == he.loc[4, "LBSEQ"])][0] + 1
    assert dup == {("CDISC-DS-010", "LBHE", 5), ("CDISC-DS-010", "LBCH", int(first))}


def test_dataset_json_folder(tmp_path, built):
    """The same datasets as Dataset-JSON v1.1 validate like their XPT (no XPT in the folder)."""
    from cdisc.package import write_json_datasets

    b = tmp_path / "b"
    shutil.copytree(built.out, b)
    write_json_datasets(b, SPECS)
    d = tmp_path / "json"
    d.mkdir()
    for f in (b / "sdtm").glob("*.json"):
        shutil.copy(f, d / f.name)
    result = validate_folder(d, specs_dir=SPECS)
    assert len(result.source["files"]) == 33 and all(f.endswith(".json") for f in result.source["files"].values())
    assert result.findings == []


def test_the_report_never_goes_into_the_validated_folder(delivery):
    res = run_cli("validate", delivery, "--report", delivery / "report")
    assert res.code == 2 and "is inside the validated folder" in res.stderr
    res = run_cli("validate", delivery, "--report", delivery)
    assert res.code == 2 and "is the validated folder or contains it" in res.stderr


def test_a_folder_without_datasets(tmp_path):
    (tmp_path / "empty").mkdir()
    res = run_cli("validate", tmp_path / "empty")
    assert res.code == 2 and "no datasets (.xpt or Dataset-JSON)" in res.stderr


def test_core_starts_once_the_sdtm_files_are_read(tmp_path, built):
    """A build's CORE rules (SDTM only) start as soon as sdtm/ is read, beside the reading of
    adam/: the callback sees the SDTM datasets alone, and the folder is then the one a single
    pass reads (same datasets, same order). A damaged ADaM file read after that is still an
    InputError naming it, and the started CORE child is stopped, not left behind."""
    import multiprocessing

    import pandas as pd

    from cdisc.errors import InputError
    from cdisc.validation.folder import read_folder

    seen = []
    early = read_folder(built.out, on_sdtm=lambda f: seen.append(sorted(f.datasets)))
    plain = read_folder(built.out)
    sdtm = sorted(p.stem.upper() for p in (built.out / "sdtm").glob("*.xpt"))
    assert seen == [sdtm] and "ADSL" not in seen[0] and "DM" in seen[0]
    assert list(early.datasets) == list(plain.datasets) and list(early.files) == list(plain.files)
    assert list(early.labels) == list(plain.labels) and list(early.xpt_meta) == list(plain.xpt_meta)
    for name in plain.datasets:
        pd.testing.assert_frame_equal(early.datasets[name], plain.datasets[name])

    copy = tmp_path / "build"
    shutil.copytree(built.out, copy)
    adsl = copy / "adam" / "adsl.xpt"
    adsl.write_bytes(adsl.read_bytes()[:-400])        # cut inside its last records
    with pytest.raises(InputError) as exc:
        validate_folder(copy)
    assert "adsl.xpt" in str(exc.value)
    assert multiprocessing.active_children() == []
