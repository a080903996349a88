"""Parallel and distributed builds (cdisc.executor): the same files as the serial build.

The serial build is the session's ``built``; each executor builds the shipped study (same
specs and raw folders, quick flags) and every file it wrote must be the bytes ``built``
holds. The default build never imports dask (this test runs first in the file, before the
Dask tests of this module import it; no other test module imports dask).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import QUICK_FLAGS, RAW, SPECS, copy_study, run_cli


def _dask_modules() -> list[str]:
    return sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))


def test_default_build_imports_no_dask(built):
    """A plain local build (``built``: `cdisc build` in this process) leaves dask unimported."""
    assert built.result.code == 0
    assert _dask_modules() == []


def assert_same_build(ours: Path, serial: Path) -> None:
    """Every file of ``ours`` is byte-identical to the serial build's; the manifests are equal
    but for the option that differs (the session build draws the review report, which its
    list of written files, .cdisc-output.json, also names)."""
    files = sorted(p.relative_to(ours).as_posix() for p in ours.rglob("*") if p.is_file())
    assert {"manifest.json", "metadata.json", "sdtm/dm.xpt", "sdtm/suppae.xpt", "adam/adsl.xpt"} <= set(files)
    for rel in files:
        if rel not in ("manifest.json", ".cdisc-output.json"):
            assert (ours / rel).read_bytes() == (serial / rel).read_bytes(), f"{rel} differs from the serial build"
    mine, theirs = (json.loads((d / "manifest.json").read_text(encoding="utf-8")) for d in (ours, serial))
    for m in (mine, theirs):
        m["build"]["options"].pop("review_report")
    assert mine == theirs


def _build(out: Path, *executor: str):
    res = run_cli("build", "--specs", SPECS, "--raw", RAW, "--out", out, *QUICK_FLAGS, *executor)
    assert res.code == 0, f"{res.stderr}\n{res.exception!r}"
    return res


def test_process_pool_build_is_identical(built, tmp_path):
    res = _build(tmp_path / "out", "--executor", "processes", "--jobs", "2")
    assert_same_build(tmp_path / "out", built.out)
    # progress lines in the serial build's order (records and names; seconds differ)
    lines = [ln.split()[:3] for ln in res.stdout.splitlines() if ln.startswith("  sdtm ") or ln.startswith("  adam ")]
    serial = [ln.split()[:3] for ln in built.result.stdout.splitlines()
              if ln.startswith("  sdtm ") or ln.startswith("  adam ")]
    assert lines == serial


def test_dask_local_cluster_build_is_identical(built, tmp_path):
    """A LocalCluster of two worker processes (cdisc.executor.DaskExecutor without an address)."""
    pytest.importorskip("distributed")
    _build(tmp_path / "out", "--executor", "dask", "--jobs", "2")
    assert_same_build(tmp_path / "out", built.out)


def test_unreachable_scheduler_is_one_clear_error(tmp_path):
    pytest.importorskip("distributed")       # (its config, read below, comes with it)
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "0.2s"}):
        res = run_cli("build", "--specs", SPECS, "--raw", RAW, "--out", tmp_path / "out", *QUICK_FLAGS,
                      "--scheduler", "tcp://127.0.0.1:1")
    assert res.code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in res.stderr
    assert "Traceback" not in res.output and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, says", [
    (["--executor", "local", "--jobs", "2"], "--jobs 2 with --executor local"),
    (["--executor", "processes", "--scheduler", "tcp://h:8786"], "--scheduler is for --executor dask"),
])
def test_contradicting_executor_options_are_usage_errors(tmp_path, args, says):
    res = run_cli("build", "--specs", SPECS, "--raw", RAW, "--out", tmp_path / "out", *QUICK_FLAGS, *args)
    assert res.code == 2 and says in res.stderr and "Traceback" not in res.output


def test_build_all_reports_the_broken_study_and_builds_the_other(tmp_path):
    good = copy_study(tmp_path / "good", domains=("DM", "AE", "EX"))
    bad = copy_study(tmp_path / "bad", domains=("DM", "AE", "EX"))
    ae = bad.read_spec("sdtm/ae.yaml")
    ae["variables"] = [v for v in ae["variables"] if v["name"] != "AETERM"]
    bad.write_spec("sdtm/ae.yaml", ae)
    res = run_cli("build-all", good.root, bad.root, *QUICK_FLAGS)
    assert res.code == 2, res.output
    assert f"{bad.root}: FAILED: " in res.stderr and "AETERM" in res.stderr
    assert f"{good.root}: ready -> {good.root / 'build'}" in res.stdout
    assert "1 of 2 studies built; 1 failed" in res.stdout
    manifest = json.loads((good.root / "build" / "manifest.json").read_text(encoding="utf-8"))
    assert {o["dataset"] for o in manifest["outputs"]} >= {"DM", "AE", "EX"}
    assert not (bad.root / "build").exists()


class InlineParallel:
    """A parallel executor that runs its tasks here, one after another: the merge of task
    results (forms, their problems, columns, progress) without the cost of processes."""

    kind, parallel, workers = "inline", True, 1

    def map(self, fn, items):
        from cdisc.executor import Executor

        return Executor().map(fn, items)


def test_problems_come_in_the_serial_order(tmp_path):
    """Data problems of several domains, raw values outside allowed_values and unread raw columns:
    the same list, in the same order, whether the domains after DM ran as tasks or not."""
    from cdisc.errors import DataError
    from cdisc.pipeline import build_sdtm

    study = copy_study(tmp_path, domains=("DM", "AE", "EX"))
    study.set_raw("ae", 5, "AESTDAT", "31-FEB-2025")
    study.set_raw("ae", 4, "RECSTATUS", "Gone")
    study.set_raw("ex", 3, "EXDAT", "99-XXX-2024")
    ae = study.read_csv("ae")
    study.write_csv("ae", ae.assign(AEXTRA="x"))
    found = []
    for executor in (None, InlineParallel()):
        with pytest.raises(DataError) as exc:
            build_sdtm(study.specs, study.raw, executor=executor)
        found.append([str(p) for p in exc.value.problems])
    assert len(found[0]) >= 4 and found[0] == found[1]
    assert any("AEXTRA" in p for p in found[0]) and any("Gone" in p for p in found[0])


def test_forked_writer_build_is_identical(built, tmp_path, monkeypatch):
    """A forked child writing half of the transport files (cdisc.xpt_fork; forced here for the
    small study, on any number of cores): every file the serial build's bytes."""
    import cdisc.xpt_fork as xf

    shares = []
    real = xf.share
    monkeypatch.setattr(xf, "MIN_RECORDS", 0)
    monkeypatch.setattr(xf, "can_fork", lambda: True)
    monkeypatch.setattr(xf, "share", lambda sizes: shares.append(real(sizes)) or shares[-1])
    _build(tmp_path / "out")
    assert_same_build(tmp_path / "out", built.out)
    assert len(shares) == 1 and 10 < len(shares[0]) < 40        # about half of the 46 datasets


def _fork_answers(conn):
    from cdisc.validation.core_bridge import _parallel
    from cdisc.xpt_fork import can_fork

    conn.send((can_fork(), _parallel()))
    conn.close()


def test_no_forked_children_inside_a_daemonic_process():
    """A daemonic process (a Dask worker by default, a pool worker) may not start children:
    there the XPT files and the CORE rules are done in the process itself, not by a fork that
    would raise."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_fork_answers, args=(child,), daemon=True)
    proc.start()
    assert parent.recv() == (False, False)
    proc.join()
