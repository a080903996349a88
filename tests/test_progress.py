"""Progress of `cdisc build` (issue 15 item 2): a line per stage and dataset as it goes,
--quiet (the verdict line only) and --json (a machine summary). On the `cdisc init` study
(one DM form of 3 subjects), so each build takes about a second."""
from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from cdisc.progress import Progress
from conftest import run_cli


@pytest.fixture()
def study(tmp_path):
    res = run_cli("init", tmp_path / "s")
    assert res.code == 0, res.output
    return tmp_path / "s"


def test_one_line_per_dataset_before_the_summary(study):
    res = run_cli("build", "--study", study)
    assert res.code == 0, res.output
    lines = res.stdout.splitlines()
    # the init study's raw/dm.csv has 3 rows, all mapped: DM has 3 records
    dm = next(i for i, x in enumerate(lines) if x.startswith("  sdtm   DM               3 records "))
    assert lines[dm].endswith(" s")
    integrity = next(i for i, x in enumerate(lines) if x.startswith("  check  integrity"))
    stage = next(i for i, x in enumerate(lines) if x.startswith("[sdtm] 1 SDTM datasets ("))
    table = lines.index("dataset     records  vars  file")
    verdict = lines.index("Ready for lock: no errors")
    assert dm < integrity < stage < table < verdict          # printed as it goes, summary after
    assert "[write] 1 datasets written, 0 kept (" in res.stdout
    assert "\r" not in res.stdout                           # not a terminal: plain lines only


def test_quiet_prints_only_the_verdict(study):
    res = run_cli("build", "--study", study, "--quiet")
    assert res.code == 0, res.output
    assert res.stdout == "Ready for lock: no errors\n"
    again = run_cli("build", "--study", study, "-q")
    assert (again.code, again.stdout) == (0, "Ready for lock: no errors\n")


def test_quiet_error_goes_to_stderr_only(study):
    dm = study / "raw" / "dm.csv"
    header, *rows = dm.read_text().splitlines()
    dm.write_text("\n".join([header.replace("SUBJECT", "SUBJ")] + rows) + "\n")
    res = run_cli("build", "--study", study, "--quiet")
    assert res.code == 2
    assert res.stdout == ""
    assert "SUBJECT" in res.stderr


def test_json_summary(study):
    res = run_cli("build", "--study", study, "--json")
    assert res.code == 0, res.output
    s = json.loads(res.stdout)
    assert s["mode"] == "full" and s["exit_code"] == 0 and s["verdict"] == "Ready for lock: no errors"
    assert s["rebuilt"] == ["DM"] and s["kept"] == []
    [dm] = s["datasets"]
    assert (dm["dataset"], dm["records"], dm["variables"], dm["status"]) == ("DM", 3, 17, "built")
    assert dm["seconds"] >= 0 and s["timings"]["total"] > 0 and "validation" in s["timings"]
    again = json.loads(run_cli("build", "--study", study, "--json").stdout)
    assert again["mode"] == "up_to_date" and again["exit_code"] == 0
    assert [(d["dataset"], d["status"]) for d in again["datasets"]] == [("DM", "kept")]


def test_live_display_on_a_terminal():
    @click.command()
    def cmd():
        p = Progress(live=True)
        p("sdtm", "DM", 3, 0.5)
        p("sdtm", "AE", 12, 0.25)
        p.finish()

    out = CliRunner().invoke(cmd, color=True).output   # color: keep the escape codes
    # each finished line first erases the status line, which is written without a newline
    assert out.startswith("  sdtm   DM               3 records    0.50 s\n... sdtm: DM done (")
    assert "\r\x1b[K  sdtm   AE              12 records    0.25 s\n" in out
    assert out.endswith("\r\x1b[K")
