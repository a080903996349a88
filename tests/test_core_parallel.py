"""The CORE rules evaluated on two cores (validation/core_bridge.CoreEvaluation).

The findings must not depend on where a rule was evaluated: the parallel run, the serial run
(CDISC_JOBS=1) and a run whose child process died half-way give the same frames, in the
catalogue's order.
"""
from __future__ import annotations

import os

import pandas as pd
import pytest

from cdisc.validation import core_bridge
from cdisc.validation.core_bridge import CoreEvaluation, evaluate_core
from cdisc.validation.folder import core_datasets, read_folder

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork-based parallelism is POSIX only")

COLUMNS = ["core_id", "dataset", "record", "variables", "values"]


@pytest.fixture(scope="module")
def datasets(built):
    from cdisc.standards import load_standard

    folder = read_folder(built.out)
    return core_datasets(built.out, folder, load_standard("sdtmig", "3.4"))


@pytest.fixture(scope="module")
def serial(datasets):
    return evaluate_core(datasets)


def _same(a, b) -> None:
    fa, fb = a[0][COLUMNS].astype(str), b[0][COLUMNS].astype(str)
    pd.testing.assert_frame_equal(fa.reset_index(drop=True), fb.reset_index(drop=True))
    sa, sb = (x[1][["core_id", "status", "findings", "evaluated"]].reset_index(drop=True) for x in (a, b))
    pd.testing.assert_frame_equal(sa, sb)


def test_parallel_equals_serial(datasets, serial, monkeypatch):
    monkeypatch.setattr(core_bridge, "_parallel", lambda: True)
    job = CoreEvaluation(datasets).start()
    assert job._proc is not None, "a child process was started"
    out = job.result()
    _same(out, serial)
    # the shipped study's known CORE findings are all there: 142, as CDISC CORE 0.17.1 itself
    # reports on this build (benchmarks/core_findings/study.json.gz): 116 documented CORE false
    # positives (e.g. CORE-000550 on TS, CORE-000767 on the AE-HO relationship with no FA) and
    # 26 waived (CORE-000701 on 2 AE and the 23 prior-therapy CM records, CORE-000774 on RS)
    assert len(out[0]) == len(serial[0]) == 142
    assert list(out[1]["core_id"]) == sorted(out[1]["core_id"])      # catalogue order
    assert out[1]["core_id"].is_unique and len(out[1]) == 430


def _dies(datasets, claim, conn):      # a child killed after taking (and losing) three rules
    for _ in range(3):
        claim()
    os._exit(9)


def test_child_that_dies_loses_no_rule(datasets, serial, monkeypatch):
    monkeypatch.setattr(core_bridge, "_parallel", lambda: True)
    monkeypatch.setattr(core_bridge, "_child", _dies)
    out = CoreEvaluation(datasets).start().result()
    _same(out, serial)


def test_one_core_runs_in_process(datasets, serial, monkeypatch):
    monkeypatch.setenv("CDISC_JOBS", "1")
    job = CoreEvaluation(datasets).start()
    assert job._proc is None
    _same(job.result(), serial)


def test_large_value_checks_in_slices_give_the_whole_frames_findings(datasets, monkeypatch):
    """A Value Check frame (one row per value) over SLICE_VALUES values is built and checked a
    slice of variables at a time (engine._value_check_slices): with slices of 50 values, every
    Value Check rule gives the findings, in the order, and the status of the whole frame. Two AE
    values and one CM value start with a blank (CORE-000867 flags them), so findings are made in
    more than one slice and more than one dataset; one AETERM is blank (CORE-000356, a rule with
    an operation: the standard's required variables)."""
    import dataclasses

    from cdisc.validation.core import engine, from_cdisc_standards, load_rules, run_core_rules

    data = dict(datasets)
    ae, cm = data["AE"].frame.copy(), data["CM"].frame.copy()
    ae.loc[2, "AETERM"], ae.loc[5, "AEDECOD"] = " " + ae.loc[2, "AETERM"], " " + ae.loc[5, "AEDECOD"]
    cm.loc[0, "CMTRT"] = " " + cm.loc[0, "CMTRT"]
    ae.loc[7, "AETERM"] = ""                           # a required variable without a value: CORE-000356
    data["AE"], data["CM"] = (dataclasses.replace(data["AE"], frame=ae), dataclasses.replace(data["CM"], frame=cm))
    rules = [r for r in load_rules() if r.rule_type in engine.VALUE_CHECKS]
    assert [r.id for r in rules] == ["CORE-000356", "CORE-000867", "CORE-000890"]
    library = from_cdisc_standards()
    whole = run_core_rules(data, library, rules=rules)
    monkeypatch.setattr(engine, "SLICE_VALUES", 50)
    sliced = run_core_rules(data, library, rules=rules)
    _same(sliced, whole)
    got = whole[0][whole[0]["core_id"] == "CORE-000867"]
    assert list(got["variables"].map(tuple).unique()) == [("variable_value", "variable_name")]
    assert sorted(zip(got["dataset"], got["record"].astype(int), got["values"].map(lambda v: v[1]))) == \
        [("AE", 3, "AETERM"), ("AE", 6, "AEDECOD"), ("CM", 1, "CMTRT")]
    req = whole[0][whole[0]["core_id"] == "CORE-000356"]
    assert sorted(zip(req["dataset"], req["record"].astype(int))) == [("AE", 8)]


def test_documented_differences_are_decided_per_rule_dataset_and_variables():
    """core_bridge._not_explained: a difference explains the findings of its rule on its datasets
    that name one of its variables; findings of rules outside our catalogue are dropped; the
    rest stay, in order, with the per-rule count of what was explained."""
    from cdisc.validation.core_bridge import Difference, _not_explained

    findings = pd.DataFrame({
        "core_id": ["CORE-1", "CORE-1", "CORE-1", "CORE-2", "CORE-9", "CORE-1"],
        "dataset": ["AE", "AE", "LB", "AE", "AE", "AE"],
        "variables": [["AESTDTC"], ["aestdtc", "AEENDTC"], ["LBDTC"], ["AESTDTC"], ["AESTDTC"], None],
        "record": [1, 2, 3, 4, 5, 6]})
    by_id = {"CORE-1": [Difference("CORE-1", "CORE reads partial dates as missing", ("AE",), ("AESTDTC",))],
             "CORE-2": [Difference("CORE-2", "another CORE defect", (), (), report=True)]}
    rest, explained = _not_explained(findings, {"CORE-1": None, "CORE-2": None}, by_id)
    assert rest["record"].tolist() == [3, 4, 6]     # LB, the reported difference, no variables
    assert explained == {"CORE-1": 2}
    empty, none = _not_explained(findings.iloc[:0], {"CORE-1": None}, by_id)
    assert empty.empty and none == {}
