"""The CORE rules of a build's validation start on its SDTM files while its ADaM is derived
(cdisc/cli.py ``_early_core``; validation/core_bridge.py ``CoreEvaluation.waiting``, ``go``,
``attach``). The findings are those of a validation that starts them after reading the folder;
files changed after the child was sent them are evaluated again from what the validation
read; a build that stops before validating leaves no child behind.

Forced on any machine by making ``cdisc.runtime.can_fork`` say yes (CI may have one core).
"""
from __future__ import annotations

import datetime
import json
import multiprocessing
import shutil
import time

import pyreadstat
import pytest

from conftest import RAW, SPECS, copy_study, run_cli
from cdisc.pipeline import load_build_metadata
from cdisc.validation import validate_folder
from cdisc.validation.core_bridge import CoreEvaluation
from cdisc.xpt import write_xpt


@pytest.fixture
def events(monkeypatch):
    """Fork allowed; the order of go (files sent), ADaM derivation and attach (taken or not)."""
    import cdisc.adam.build as adam_build
    import cdisc.runtime

    monkeypatch.setattr(cdisc.runtime, "can_fork", lambda: True)
    seen = []
    go, attach, add_adam = CoreEvaluation.go, CoreEvaluation.attach, adam_build.add_adam

    def spy_go(self, folder, files):
        seen.append(("go", sorted(files)))
        return go(self, folder, files)

    def spy_attach(self, folder, files, datasets):
        taken = attach(self, folder, files, datasets)
        seen.append(("attach", taken))
        return taken

    def spy_adam(*args, **kwargs):
        seen.append(("adam",))
        return add_adam(*args, **kwargs)

    monkeypatch.setattr(CoreEvaluation, "go", spy_go)
    monkeypatch.setattr(CoreEvaluation, "attach", spy_attach)
    monkeypatch.setattr(adam_build, "add_adam", spy_adam)
    return seen


def _core_statuses(results: dict) -> dict[str, str]:
    return {r["id"]: r["status"] for r in results["rules"] if r["id"].startswith("CORE-")}


def test_core_starts_on_the_sdtm_files_before_adam_with_the_same_findings(events, built, tmp_path):
    res = run_cli("build", "--specs", SPECS, "--raw", RAW, "--out", tmp_path / "out", "--no-report")
    assert res.code == 0, res.output
    sdtm = sorted(p.stem.upper() for p in (built.out / "sdtm").glob("*.xpt"))
    assert [e[0] for e in events] == ["go", "adam", "attach"]
    assert events[0][1] == sdtm and "ADSL" not in events[0][1]
    assert events[2] == ("attach", True)
    assert multiprocessing.active_children() == []
    # the validation that starts the CORE rules after reading the folder (no build, no early child)
    validate_folder(built.out, specs_dir=SPECS, report_dir=tmp_path / "ref")
    ours = (tmp_path / "out" / "validation" / "results.json").read_bytes()
    assert ours == (tmp_path / "ref" / "results.json").read_bytes()
    statuses = _core_statuses(json.loads(ours))
    assert len(statuses) > 400 and sum(s == "passed" for s in statuses.values()) > 100


def test_files_changed_after_the_child_was_sent_them_are_evaluated_again(events, built, tmp_path):
    """AE rewritten after the child read it (it takes rules only once it has read the files),
    with AESER Y and no AES* flag (CORE-000266): the child's outcome is not taken; the findings
    are those of the folder as it is now."""
    folder = tmp_path / "build"
    shutil.copytree(built.out, folder)
    files = {p.stem.upper(): f"sdtm/{p.name}" for p in sorted((folder / "sdtm").glob("*.xpt"))}
    run = CoreEvaluation.waiting()
    assert run is not None
    run.go(folder, files)
    deadline = time.monotonic() + 60
    while run._counter.value == 0 and time.monotonic() < deadline:      # the child has read the files
        time.sleep(0.05)
    ae = folder / "sdtm" / "ae.xpt"
    df, _ = pyreadstat.read_xport(ae, disable_datetime_conversion=True)
    assert df.loc[0, "AESER"] == "N"
    df.loc[0, "AESER"] = "Y"
    write_xpt(ae, df, load_build_metadata(folder)["AE"], datetime.datetime(2026, 1, 1))
    validate_folder(folder, specs_dir=SPECS, report_dir=tmp_path / "early", early_core=run)
    assert events[-1] == ("attach", False)
    assert multiprocessing.active_children() == []
    validate_folder(folder, specs_dir=SPECS, report_dir=tmp_path / "plain")
    ours = (tmp_path / "early" / "results.json").read_bytes()
    assert ours == (tmp_path / "plain" / "results.json").read_bytes()
    found = json.loads(ours)["findings"]
    assert any(f["dataset"] == "AE" and f["row"] == 1 and f["rule"] == "CORE-000266" for f in found)


def test_a_build_that_stops_in_adam_leaves_no_child_behind(events, tmp_path):
    study = copy_study(tmp_path)
    spec = study.specs / "adam" / "adcm.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("number(CMLINE)", "number(NOSUCHVAR)"),
                    encoding="utf-8")
    res = run_cli("build", "--specs", study.specs, "--raw", study.raw, "--out", tmp_path / "out", "--no-report")
    assert res.code != 0 and "NOSUCHVAR" in res.output
    assert [e[0] for e in events] == ["go", "adam"]
    assert multiprocessing.active_children() == []
    assert not (tmp_path / "out").exists()


def test_large_sdtm_files_leave_core_to_the_validation_child(events, tmp_path, monkeypatch):
    """Above EARLY_MAX_BYTES of SDTM files the early child is stopped unused (it would read a
    copy of them beside the build's frames): the validation forks its own, as for any folder."""
    import cdisc.validation.core_bridge as cb

    assert cb.CoreEvaluation.worth_it([{"bytes": cb.EARLY_MAX_BYTES}])
    assert not cb.CoreEvaluation.worth_it([{"bytes": cb.EARLY_MAX_BYTES - 10}, {"bytes": 11}])
    monkeypatch.setattr(cb, "EARLY_MAX_BYTES", 0)
    study = copy_study(tmp_path, domains=("DM", "AE", "EX"))
    res = run_cli("build", "--specs", study.specs, "--raw", study.raw, "--out", tmp_path / "out", "--no-report")
    assert res.code == 0, res.output
    assert [e[0] for e in events] == ["adam"]                  # no go, no attach
    assert multiprocessing.active_children() == []
    results = json.loads((tmp_path / "out" / "validation" / "results.json").read_text(encoding="utf-8"))
    assert sum(s == "passed" for s in _core_statuses(results).values()) > 50
