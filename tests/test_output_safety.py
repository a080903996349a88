"""Output folders: `cdisc build` and `cdisc package` never delete or overwrite what they did not write.

Mishaps of a careless or unlucky user (issue 10): a mistyped --out that names the raw
export, the specs or a folder of their own; a build killed half way; a full or read-only
disk; a symlinked output; a build that fails validation. Each case asserts the exit code,
one message naming the folder, and that every byte of the inputs and of an earlier build
is unchanged.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cdisc.outdir import LOCK, MARKER, OLD_TAG, TMP_TAG
from conftest import QUICK_FLAGS, copy_study, run_cli, tree_bytes

USAGE = 2


@pytest.fixture
def study(tmp_path, built):
    s = copy_study(tmp_path, domains=("DM", "AE", "EX"))
    shutil.copytree(built.out, s.root / "out")
    return s


def snapshot(*folders: Path) -> dict:
    return {str(f): tree_bytes(f) for f in folders}


def refused(res, *fragments: str) -> None:
    assert res.code == USAGE, f"exit {res.code}\n{res.stdout}\n{res.stderr}"
    assert "Traceback" not in res.output and "internal error" not in res.stderr, res.stderr
    assert res.stderr.startswith("cdisc: "), res.stderr
    for f in fragments:
        assert f in res.stderr, f"{f!r} not in {res.stderr}"


def build(study, out, *extra):
    return run_cli("build", "--specs", study.specs, "--raw", study.raw, "--out", out, *QUICK_FLAGS, *extra)


# ----------------------------------------------------------------- where a build may write
@pytest.mark.parametrize("target, what", [
    ("raw", "is the raw folder or contains it"),
    ("specs", "is the specs folder or contains it"),
    (".", "is the study folder or contains it"),
    ("..", "is the study folder or contains it"),
    ("raw/build", "is inside the raw folder"),
    ("specs/out", "is inside the specs folder"),
])
def test_build_refuses_the_study_folders(study, target, what):
    before = snapshot(study.root)
    res = build(study, study.root / target)
    refused(res, what)
    assert snapshot(study.root) == before


def test_build_refuses_a_folder_it_did_not_write(study, tmp_path):
    mine = tmp_path / "Documents"
    mine.mkdir()
    (mine / "thesis.docx").write_bytes(b"years of work")
    before = snapshot(mine)
    refused(build(study, mine), "is not empty and is not a build folder written by cdisc")
    assert snapshot(mine) == before


def test_build_refuses_an_earlier_build_holding_a_users_file(study):
    out = study.root / "out"
    (out / "sdtm" / "notes.txt").write_text("my notes", encoding="utf-8")
    before = snapshot(out)
    refused(build(study, out), "holds files cdisc did not write: sdtm/notes.txt")
    assert snapshot(out) == before


def test_build_refuses_a_file_and_a_dangling_link(study, tmp_path):
    f = tmp_path / "out.txt"
    f.write_text("x", encoding="utf-8")
    res = build(study, f)                               # click's own usage error
    assert res.code == USAGE and "is a file" in res.stderr and "Traceback" not in res.output
    link = tmp_path / "gone"
    link.symlink_to(tmp_path / "nowhere")
    refused(build(study, link), "is a symbolic link to", "which does not exist")
    assert f.read_text(encoding="utf-8") == "x" and link.is_symlink()


def test_build_replaces_an_earlier_build_whole(study, tmp_path):
    out = study.root / "out"
    (out / "sdtm" / "zz.xpt").write_bytes(b"")        # not in the marker: refused ...
    refused(build(study, out), "sdtm/zz.xpt")
    (out / "sdtm" / "zz.xpt").unlink()                # ... an earlier build of ours is replaced
    res = build(study, out)
    assert res.code == 0, res.stderr
    marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != MARKER)
    assert marker["kind"] == "build" and marker["files"] == on_disk
    assert "adam/adsl.xpt" not in on_disk                   # the slim study has no ADaM: nothing stale
    assert sorted(p.name for p in study.root.iterdir()) == ["out", "raw", "specs"]


def test_symlinked_out_is_followed_and_stays_a_link(study, tmp_path):
    real = tmp_path / "disk" / "build"
    real.parent.mkdir()
    shutil.move(study.root / "out", real)
    link = study.root / "out"
    link.symlink_to(real)
    res = build(study, link)
    assert res.code == 0, res.stderr
    assert link.is_symlink() and Path(os.readlink(link)) == real
    assert (real / "sdtm" / "dm.xpt").is_file()
    assert sorted(p.name for p in real.parent.iterdir()) == ["build"]   # nothing stray beside it
    assert sorted(p.name for p in study.root.iterdir()) == ["out", "raw", "specs"]


def test_a_new_nested_output_folder_is_created(study, tmp_path):
    res = build(study, tmp_path / "a" / "b" / "build")
    assert res.code == 0, res.stderr
    assert (tmp_path / "a" / "b" / "build" / "sdtm" / "dm.xpt").is_file()


# ----------------------------------------------------------------- disks that say no
def test_full_disk_is_a_message_and_the_earlier_build_stays(study, monkeypatch):
    import cdisc.xpt

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(a[0]))

    monkeypatch.setattr(cdisc.xpt, "write_xpt", full)
    out = study.root / "out"
    before = snapshot(out)
    refused(build(study, out), "no space left on the device", "nothing was replaced")
    assert snapshot(out) == before
    assert sorted(p.name for p in study.root.iterdir()) == ["out", "raw", "specs"]


def test_read_only_output_parent_is_a_message(study, tmp_path, monkeypatch):
    import cdisc.outdir

    monkeypatch.setattr(cdisc.outdir, "_writable", lambda folder: False)
    refused(build(study, tmp_path / "ro" / "build"), "permission denied")
    assert not (tmp_path / "ro").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_for_real(study, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        refused(build(study, ro / "build"), "permission denied")
    finally:
        ro.chmod(0o755)


# ----------------------------------------------------------------- killed runs
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_leftovers_of_a_killed_run_are_cleaned_but_not_others(study):
    root = study.root
    dead = _dead_pid()
    stale = root / f".out.{TMP_TAG}-{dead}-abcd1234"
    stale.mkdir()
    (stale / LOCK).write_text(json.dumps({"tool": "cdisc", "pid": dead, "host": socket.gethostname()}),
                              encoding="utf-8")
    (stale / "sdtm").mkdir()
    old = root / f".out.{OLD_TAG}-{dead}"
    shutil.copytree(root / "out", old)
    live = root / f".out.{TMP_TAG}-{os.getpid()}-live0000"      # a run still going on
    live.mkdir()
    (live / LOCK).write_text(json.dumps({"tool": "cdisc", "pid": os.getpid(), "host": socket.gethostname()}),
                             encoding="utf-8")
    foreign = root / f".out.{TMP_TAG}-1-notours"                # no lock file: not ours
    foreign.mkdir()
    res = build(study, root / "out")
    assert res.code == 0, res.stderr
    names = sorted(p.name for p in root.iterdir())
    assert stale.name not in names and old.name not in names
    assert live.name in names and foreign.name in names


def _processes_naming(path: Path) -> list[int]:
    """Live processes (not zombies) whose command line names ``path``."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if str(path) in (d / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(d.name))
            except OSError:
                pass
    return found


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to see the children")
def test_build_killed_during_validation_keeps_the_earlier_build(study):
    """kill -9 while validating (the staging folder is complete but undecided): --out is the
    earlier build byte for byte; the next run removes the staging folder."""
    out = study.root / "out"
    before = snapshot(out)
    exe = Path(sys.executable).with_name("cdisc")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cdisc.cli"]
    proc = subprocess.Popen(cmd + ["build", "--specs", str(study.specs), "--raw", str(study.raw), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    staged = []
    while time.time() < deadline and proc.poll() is None:
        staged = [p for p in study.root.glob(f".out.{TMP_TAG}-*") if (p / "manifest.json").is_file()]
        if staged:
            break
        time.sleep(0.05)
    assert staged and proc.poll() is None, "the build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert snapshot(out) == before
    # its forked children (the CORE rules, XPT files) die with it: none is left waiting for ever
    deadline = time.time() + 20
    while _processes_naming(study.root) and time.time() < deadline:
        time.sleep(0.1)
    assert _processes_naming(study.root) == []
    assert build(study, out).code == 0
    assert not list(study.root.glob(f".out.{TMP_TAG}-*"))


# ----------------------------------------------------------------- validation decides
def test_a_build_that_fails_validation_goes_beside_the_earlier_one(study):
    out = study.root / "out"
    before = snapshot(out)
    d = study.read_spec("study.yaml")
    d["data_cut"] = "2024-06-30"             # AE and EX records after it: CDISC-XD-018 errors
    study.write_spec("study.yaml", d)
    res = run_cli("build", "--specs", study.specs, "--raw", study.raw, "--out", out)
    assert res.code == 1, res.stderr
    assert "CDISC-XD-018" in res.stdout
    assert f"so it was written to {out}.failed; {out} still holds the earlier build" in res.stderr
    assert snapshot(out) == before
    failed = Path(f"{out}.failed")
    assert (failed / "validation" / "report.html").is_file() and (failed / "sdtm" / "ae.xpt").is_file()
    # a later good build replaces --out and removes the failed one (cdisc wrote it)
    d["data_cut"] = "2026-02-28"
    study.write_spec("study.yaml", d)
    assert build(study, out).code == 0
    assert not failed.exists()


def test_validate_then_rebuild(study):
    """`cdisc validate` adds validation/ to the build's marker, so the next build may replace it."""
    out = study.root / "out"
    assert build(study, out).code == 0
    res = run_cli("validate", "--out", out, "--specs", study.specs)
    assert res.code == 0, res.stderr
    marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    assert "validation/report.html" in marker["files"]
    assert build(study, out).code == 0


# ----------------------------------------------------------------- packages
@pytest.fixture
def validated(tmp_path, built):
    """A validated build of the shipped study (copied; validation runs once per session)."""
    return built


@pytest.mark.parametrize("target, what", [
    ("specs", "is the specs folder or contains it"),
    ("raw", "is the raw folder or contains it"),
    (".", "is the study folder or contains it"),
    ("out", "is the build folder or contains it"),
    ("out/pkg", "is inside the build folder"),
])
def test_package_refuses_the_study_and_build_folders(study, target, what):
    before = snapshot(study.root)
    res = run_cli("package", "--build", study.root / "out", "--out", study.root / target, "--specs", study.specs,
                  "--raw", study.raw, "--allow-errors")
    refused(res, what)
    assert snapshot(study.root) == before


def test_package_refuses_a_folder_it_did_not_write(study, tmp_path):
    mine = tmp_path / "submission"
    mine.mkdir()
    (mine / "cover-letter.pdf").write_bytes(b"%PDF")
    res = run_cli("package", "--build", study.root / "out", "--out", mine, "--specs", study.specs, "--allow-errors")
    refused(res, "is not empty and is not a package folder written by cdisc")
    assert (mine / "cover-letter.pdf").read_bytes() == b"%PDF" and len(list(mine.iterdir())) == 1
