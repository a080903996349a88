"""Which study a command works on (cdisc/project.py) and `cdisc init` (issue 15, item 1)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cdisc.errors import InputError
from cdisc.project import resolve_study
from conftest import QUICK_FLAGS, REPO, copy_study, run_cli


def test_an_empty_folder_is_no_study_and_says_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run_cli("build")
    assert res.code == 2 and res.exception is None
    assert "no study in the current folder: no cdisc.yaml, specs/study.yaml or study.yaml" in res.stderr
    assert "cdisc init DIR" in res.stderr and "cdisc build --example" in res.stderr
    assert list(tmp_path.iterdir()) == []            # nothing written, in particular no build/


def test_the_study_in_the_current_folder_builds_into_its_build_folder(tmp_path, monkeypatch):
    study = copy_study(tmp_path)
    monkeypatch.chdir(study.root)
    res = run_cli("build", *QUICK_FLAGS)
    assert res.code == 0, res.output
    assert res.stdout.splitlines()[0] == (f"Study folder {study.root.resolve()} (specs/study.yaml): specs specs, "
                                          f"raw raw, output build")
    assert (study.root / "build" / "sdtm" / "dm.xpt").is_file()


def test_study_option_from_elsewhere_and_the_pilot_layout_with_sdtm(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = resolve_study(REPO / "studies" / "cdiscpilot01")
    assert (p.specs, p.raw, p.sdtm, p.out) == (REPO / "studies/cdiscpilot01/specs", None,
                                               REPO / "studies/cdiscpilot01/sdtm", REPO / "studies/cdiscpilot01/build")
    # the source checkout's sdtm/ is a Python package, not delivered SDTM: the repo root is a raw study
    r = resolve_study(REPO)
    assert (r.raw, r.sdtm) == (REPO / "raw", None)
    assert resolve_study(example=True).root == REPO


def test_a_project_file_names_the_folders_inside_the_study(tmp_path):
    root = tmp_path / "s"
    shutil.copytree(REPO / "specs", root / "mapping")
    shutil.copytree(REPO / "raw", root / "edc_export")
    (root / "cdisc.yaml").write_text("specs: mapping\nraw: edc_export\nout: outputs/cut1\n")
    p = resolve_study(root)
    assert (p.specs, p.raw, p.out, p.found_by) == (root / "mapping", root / "edc_export", root / "outputs/cut1",
                                                   "cdisc.yaml")
    (root / "cdisc.yaml").write_text("specs: mapping\nraw: ../../etc\n")
    with pytest.raises(InputError, match=r"`raw: \.\./\.\./etc` is outside the study folder"):
        resolve_study(root)
    (root / "cdisc.yaml").write_text("specs: mapping\nraws: edc_export\n")
    with pytest.raises(InputError, match="unknown keys raws"):
        resolve_study(root)


def test_raw_and_delivered_sdtm_side_by_side_must_be_chosen(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "study.yaml").write_text("studyid: X\n")
    (tmp_path / "raw").mkdir()
    (tmp_path / "sdtm").mkdir()
    (tmp_path / "sdtm" / "dm.xpt").write_bytes(b"")
    with pytest.raises(InputError, match="has both raw/ and sdtm/"):
        resolve_study(tmp_path)
    assert resolve_study(tmp_path, sdtm=tmp_path / "sdtm").sdtm == tmp_path / "sdtm"


def test_init_writes_a_study_that_builds_ready_for_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run_cli("init", "trial42")
    assert res.code == 0, res.output
    names = sorted(p.relative_to(tmp_path / "trial42").as_posix() for p in (tmp_path / "trial42").rglob("*")
                   if p.is_file())
    assert names == [".gitignore", "README.md", "raw/dm.csv", "specs/ct/study-ct.yaml", "specs/sdtm/dm.yaml",
                     "specs/study.yaml", "specs/waivers.yaml"]
    res = run_cli("build", "--study", "trial42")
    assert res.code == 0, res.output
    assert "Ready for lock: no errors" in res.output
    from cdisc.delivered import read_delivered

    dm = read_delivered(tmp_path / "trial42" / "build" / "sdtm" / "dm.xpt").frame
    assert dm["USUBJID"].tolist() == ["TRIAL42-01-001", "TRIAL42-01-002", "TRIAL42-02-001"]
    assert dm["SEX"].tolist() == ["F", "M", "F"] and dm["RFICDTC"].tolist()[0] == "2025-01-05"


def test_init_never_writes_into_a_folder_with_files(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    res = run_cli("init", tmp_path)
    assert res.code == 2 and "exists and is not empty" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_example_outside_a_source_checkout_says_so(monkeypatch, tmp_path):
    import cdisc.project as project

    monkeypatch.setattr(project, "REPO_ROOT", tmp_path)
    with pytest.raises(InputError, match="ships with the source repository"):
        project.resolve_study(example=True)


def test_messages_still_name_the_spec_file(tmp_path):
    study = copy_study(tmp_path)
    (study.specs / "sdtm" / "ae.yaml").write_text("domain: AE\nlabel: [\n")
    res = run_cli("build", "--study", study.root, *QUICK_FLAGS)
    assert res.code == 2 and "ae.yaml" in res.stderr
    assert Path(study.root).is_dir()


def test_a_spec_error_names_the_real_spec_folder(tmp_path, monkeypatch):
    """A spec folder not called specs/: the message names mapping/sdtm/ae.yaml, not specs/..."""
    root = tmp_path / "s"
    shutil.copytree(REPO / "specs", root / "mapping")
    shutil.copytree(REPO / "raw", root / "edc")
    (root / "cdisc.yaml").write_text("specs: mapping\nraw: edc\n")
    (root / "mapping" / "sdtm" / "ae.yaml").write_text("domain: AE\nlabel: [\n")
    monkeypatch.chdir(root)
    res = run_cli("build", *QUICK_FLAGS)
    assert res.code == 2 and "\nmapping/sdtm/ae.yaml" in res.stderr and "specs/sdtm" not in res.stderr
