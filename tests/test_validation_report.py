"""results.json, report.html, waivers and exit codes (rule catalogue only: no GE, fast)."""
from __future__ import annotations

import json
import re

import pytest

from cdisc.errors import SpecError
from cdisc.validation import Waiver, load_waivers, validate_datasets
from cdisc.validation.sample import S1, S2, sample_build

ODD = "<b>X&Y</b>"


def defects():
    """Three findings: orphan subject (error, value with markup), ADSL.AGE (error), TS (warning)."""
    data, metas, ct = sample_build()
    data["AE"].loc[3, "USUBJID"] = ODD                  # AE 4 -> XD-001
    data["ADSL"].loc[0, "AGE"] = 11.0                   # ADSL 1 -> XD-010 (DM.AGE = 10)
    ts = data["TS"]
    data["TS"] = ts[ts["TSPARMCD"] != "TBLIND"].reset_index(drop=True)   # XD-009 warning
    return data, metas, ct


def run(out=None, waivers=(), fail_on="error"):
    data, metas, ct = defects()
    return validate_datasets(data, metas, ct, run_ge=False, out_dir=out, waivers=waivers, fail_on=fail_on)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    return run(a), a / "validation", b / "validation", run(b)


def test_result_counts_and_exit_codes(written):
    result = written[0]
    assert [f.rule for f in result.errors] == ["CDISC-XD-001", "CDISC-XD-010"]
    assert [f.rule for f in result.warnings] == ["CDISC-XD-009"]
    assert result.exit_code() == 1 and result.exit_code("never") == 0
    assert result.verdict == "NOT ready: 2 errors"
    with pytest.raises(ValueError):
        result.exit_code("sometimes")


def test_results_json_is_deterministic_and_complete(written):
    _, a, b, _ = written
    ta, tb = ((p / "results.json").read_text() for p in (a, b))
    assert ta == tb
    doc = json.loads(ta)
    assert doc["verdict"] == "NOT ready: 2 errors" and doc["ready_for_lock"] is False
    assert doc["counts"]["by_severity"] == {"error": 2, "warning": 1, "notice": 0}
    assert doc["counts"]["by_rule"]["CDISC-XD-010"] == {"severity": "error", "findings": 1}
    first = doc["findings"][0]
    assert first == {"rule": "CDISC-XD-001", "severity": "error", "dataset": "AE", "variable": "USUBJID",
                     "usubjid": ODD, "seq": 1, "row": 4, "value": ODD, "message": "Subject is not in DM"}
    ae = next(d for d in doc["datasets"] if d["name"] == "AE")
    assert (ae["records"], ae["errors"], ae["warnings"]) == (4, 1, 0)
    # No timestamps or timings anywhere in the file.
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", ta) and "timing" not in ta


def test_report_is_self_contained_and_escaped(written):
    html = (written[1] / "report.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "src=" not in html
    assert html.count("<style>") == 1 and html.count("<script>") == 1
    assert 'id="verdict">NOT ready: 2 errors</h1>' in html
    assert ODD not in html and "&lt;b&gt;X&amp;Y&lt;/b&gt;" in html
    # Findings grouped by rule, with their row references and filter attributes.
    assert 'id="rule-CDISC-XD-010"' in html and "11 vs 10" in html
    assert f'data-ds="ADSL" data-subj="{S1}" data-sev="error"' in html
    assert '<option value="TS">TS</option>' in html
    assert "Waived findings (0)" in html


def test_waiver_moves_finding_to_waived_section(tmp_path):
    w = Waiver(rule="CDISC-XD-010", dataset="ADSL", usubjid=S1, variable="AGE",
               reason="Age recalculated at consent per protocol amendment 2", approved_by="Medical monitor")
    unused = Waiver(rule="CDISC-XD-001", dataset="AE", usubjid=S2, reason="not matching anything")
    result = run(tmp_path, waivers=[w, unused])
    assert [f.rule for f in result.errors] == ["CDISC-XD-001"]
    assert [(f.rule, f.row) for f, _ in result.waived] == [("CDISC-XD-010", 1)]
    assert result.unused_waivers == [unused]
    status = {r.id: r for r in result.rules}["CDISC-XD-010"]
    assert (status.status, status.findings, status.waived) == ("passed", 0, 1)
    doc = json.loads((tmp_path / "validation" / "results.json").read_text())
    assert doc["waived"][0]["waiver"]["reason"] == w.reason and doc["counts"]["waived"] == 1
    html = (tmp_path / "validation" / "report.html").read_text()
    assert "Waived findings (1)" in html and "Age recalculated at consent" in html
    assert "Waivers that matched no finding" in html


def test_ready_verdict_and_fail_on_warning(tmp_path):
    waivers = [Waiver(rule="CDISC-XD-001", dataset="AE", reason="test subject"),
               Waiver(rule="CDISC-XD-010", dataset="ADSL", reason="known")]
    result = run(tmp_path, waivers=waivers, fail_on="warning")
    assert result.errors == [] and len(result.warnings) == 1
    assert result.verdict == "Ready for lock: no errors"
    assert result.exit_code() == 1 and result.exit_code("error") == 0
    html = (tmp_path / "validation" / "report.html").read_text()
    assert 'class="verdict ok"' in html


def test_load_waivers(tmp_path):
    p = tmp_path / "waivers.yaml"
    p.write_text("- {rule: cdisc-xd-001, dataset: ae, usubjid: X, reason: ' screen failure '}\n"
                 "- {rule: CDISC-XD-010, dataset: ADSL, row: 3, reason: ok, approved_by: QA}\n")
    ws = load_waivers(p)
    assert [(w.rule, w.dataset, w.reason, w.row) for w in ws] == [
        ("CDISC-XD-001", "AE", "screen failure", None), ("CDISC-XD-010", "ADSL", "ok", 3)]
    assert load_waivers(tmp_path / "absent.yaml") == []
    p.write_text("waivers:\n  - {rule: CDISC-XD-001, dataset: AE}\n  - {rule: R, dataset: D, reason: '  '}\n")
    with pytest.raises(SpecError) as exc:
        load_waivers(p)
    text = str(exc.value)
    assert "key waivers[0].reason" in text and "key waivers[1].reason" in text


def test_report_shows_the_build_reconciliation(built):
    """The raw rows and columns of the build (manifest.json) are in the report a data manager reads."""
    from cdisc.validation.report import render_html

    data, metas, ct = sample_build()
    result = validate_datasets(data, metas, ct, run_ge=False, build=built.manifest)
    html = render_html(result)
    assert 'id="reconciliation"' in html
    # ae.csv: 60 rows read, 57 mapped, 3 excluded by the deleted-record rule
    assert re.search(r"<td>AE</td><td>ae\.csv</td><td class=\"n\">60</td><td class=\"n\">57</td>"
                     r"<td class=\"n\">57</td><td>record deleted in EDC \(entered in error\): 3</td>", html)
    # ae.csv: 44 columns = 36 read by a spec + 8 not mapped for a stated reason (6 EDC bookkeeping
    # columns, the EDC's coded AEREL_STD and AEACN_STD)
    row = re.search(r"<td>ae\.csv</td><td class=\"n\">44</td><td class=\"n\">36</td><td>(.*?)</td></tr>", html)
    assert row and row.group(1).count("<br>") == 7
    assert "AEREL_STD: the EDC&#x27;s coded value of AEREL" in row.group(1)
    assert "Raw file not mapped: truth.csv" in html


def test_a_finding_in_results_json_is_every_field_of_the_finding():
    """Finding.to_dict builds its dict by hand (asdict's recursive copy cost seconds on 100,000
    waived findings): it must stay every field, with a NaN --SEQ as null."""
    from dataclasses import asdict, fields, replace

    from cdisc.validation.model import Finding

    f = Finding(rule="R1", severity="error", dataset="AE", variable="AESTDTC", usubjid="S-1", seq=3.0, row=4,
                value="2024-13-01", message="bad date")
    assert f.to_dict() == asdict(f) and list(f.to_dict()) == [x.name for x in fields(Finding)]
    assert replace(f, seq=float("nan")).to_dict()["seq"] is None
