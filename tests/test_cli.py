"""The `cdisc` command line: help, usage errors, the build summary, --debug, exit codes.

Exit codes (README, cdisc/cli.py): 0 success, 1 the data has errors, 2 bad usage, bad
spec or unreadable input.
"""
from __future__ import annotations

import re

import pytest
import yaml

from conftest import QUICK_FLAGS, REPO, SPECS, run_cli, run_cli_subprocess


def test_main_help_lists_build_and_exit_codes():
    res = run_cli("--help")
    assert res.code == 0
    assert re.search(r"^\s+build\s+\S", res.stdout, re.M), res.stdout
    assert "Exit codes: 0 success, 1 the data has errors, 2 bad usage" in " ".join(res.stdout.split())


def test_build_help_describes_the_options():
    res = run_cli("build", "--help")
    assert res.code == 0
    text = " ".join(res.stdout.split())
    for opt, words in (("--specs", "Study spec folder"), ("--raw", "raw CRF exports"),
                       ("--out", "Output folder"), ("--debug", "traceback")):
        assert re.search(rf"{opt}\b[^-]*?{words}", text), (opt, text)
    assert "Default: build/ in the study folder" in text      # where the files go without --out
    assert "reconciliation" in text


def test_unknown_option_is_a_usage_error():
    res = run_cli("build", "--colour")
    assert res.code == 2 and "No such option '--colour'" in res.stderr and "Usage: cdisc build" in res.stderr


@pytest.mark.parametrize("option", ["--raw", "--specs"])
def test_missing_folder_is_a_usage_error(tmp_path, option):
    missing = tmp_path / "nowhere"
    res = run_cli("build", option, missing, "--out", tmp_path / "out")
    assert res.code == 2
    assert f"cdisc: usage error: {option} folder {missing} does not exist" in res.stderr
    assert "Traceback" not in res.output and not (tmp_path / "out").exists()


def test_missing_raw_folder_through_the_installed_command(tmp_path):
    """The console script itself (sys.exit path), not only click's test runner."""
    missing = tmp_path / "nowhere"
    res = run_cli_subprocess("build", "--raw", missing, "--out", tmp_path / "out")
    assert res.code == 2, res.stderr
    assert f"--raw folder {missing} does not exist" in res.stderr and "Traceback" not in res.stderr


def _spec_variables(domain: str) -> int:
    return len(yaml.safe_load((SPECS / "sdtm" / f"{domain}.yaml").read_text(encoding="utf-8"))["variables"])


def test_clean_build_prints_datasets_and_reconciliation(built):
    out = built.result.stdout
    assert built.result.code == 0 and built.result.stderr == ""
    # the first line says which study folder and which folders (issue 15: never the wrong study)
    first, second = out.splitlines()[:2]
    assert first.startswith(f"Study folder {REPO} (--specs): specs {REPO / 'specs'}, raw {REPO / 'raw'}, output ")
    assert second.startswith("Study VGO-Cs01p (data cut 2026-02-28), CT: ")
    # records hand-checked: DM 9 subjects; EX 14 infusions + 18 lymphodepletion lines;
    # AE 60 rows - 1 deleted; SE 9 x 4 elements; SUPPAE 59 x (AECRS, AEICANS, AEDLT) + 14
    # AECRSGR + 3 AEICNSGR (ae.csv lines 19, 32, 59) + 57 AETOXSCL = 245 (3 x 57 + 14 + 3 + 57). SUPP-- have 10 variables, SE 12
    # (SDTMIG 3.4 SE with SESTDY/SEENDY; no SEUPDES).
    rows = {"DM": (9, _spec_variables("dm")), "EX": (32, _spec_variables("ex")), "AE": (57, _spec_variables("ae")),
            "SE": (36, 12), "SUPPAE": (245, 10)}
    for ds, (n, nvar) in rows.items():
        pattern = rf"^{ds}\s+{n}\s+{nvar}\s+\S*sdtm/{ds.lower()}\.xpt$"
        assert re.search(pattern, out, re.M), (pattern, out)
    assert "Reconciliation of raw rows (read = mapped + excluded):" in out
    assert re.search(r"^AE\s+ae\.csv\s+60\s+57\s+57\s+3 by 'record deleted in EDC \(entered in error\)'$", out, re.M)
    assert re.search(r"^DM\s+dm\.csv\s+9\s+9\s+9\s+-$", out, re.M)
    assert re.search(r"^EX\s+ex\.csv\s+14\s+14\s+14\s+-$", out, re.M)
    assert re.search(r"^not mapped: truth\.csv \(synthetic-data truth table", out, re.M)
    n = len(built.manifest["outputs"])
    assert re.search(rf"^Wrote {n} datasets to {re.escape(str(built.out))} in \d+\.\d s$", out, re.M)


def test_data_error_shows_a_traceback_only_with_debug(study):
    study.set_raw("ae", 5, "AESTDAT", "31-FEB-2025")
    plain = study.build()
    assert plain.code == 1 and "Traceback" not in plain.output
    debug = study.build(None, "--debug")
    assert debug.code == 1
    assert "ae.csv, row 5, column AESTDAT:" in debug.stderr and "Traceback" in debug.stderr


def test_internal_error_is_reported_as_a_bug_with_exit_2(monkeypatch, tmp_path):
    import importlib

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(importlib.import_module("cdisc.pipeline"), "build_sdtm", boom)
    res = run_cli("build", "--out", tmp_path / "out", *QUICK_FLAGS)
    assert res.code == 2
    assert "cdisc: internal error: RuntimeError: boom" in res.stderr
    assert "rerun with --debug" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("build", "--out", tmp_path / "out", "--debug", *QUICK_FLAGS)
    assert res.code == 2 and "Traceback" in res.stderr and not (tmp_path / "out").exists()
