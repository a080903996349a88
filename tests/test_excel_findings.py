"""`cdisc findings --xlsx` and `cdisc findings import`: hand-checked rows and waivers."""
from __future__ import annotations

import json
import zipfile

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from cdisc.cli import main
from cdisc.errors import SpecError
from cdisc.excel.findings import append_waivers, plan_waivers, waivers_from_workbook
from cdisc.validation.waivers import load_waivers


def _f(rule, sev, ds, var, subj, seq, row, value, msg):
    return {"rule": rule, "severity": sev, "dataset": ds, "variable": var, "usubjid": subj, "seq": seq,
            "row": row, "value": value, "message": msg}


RESULTS = {
    "verdict": "NOT ready: 1 error", "ready_for_lock": False,
    "counts": {},
    "datasets": [
        {"name": "DM", "standard": "SDTM", "records": 10, "checks": 5, "errors": 0, "warnings": 1,
         "notices": 0, "waived": 0},
        {"name": "AE", "standard": "SDTM", "records": 42, "checks": 9, "errors": 1, "warnings": 1,
         "notices": 0, "waived": 1},
    ],
    "rules": [],
    # three findings, deliberately out of order: the Details sheet sorts by dataset, row, rule
    "findings": [
        _f("CORE-000701", "warning", "AE", "EPOCH", "S-002", 3, 7, None, "EPOCH is missing"),
        _f("CDISC-DS-001", "error", "AE", "AESTDTC", "S-001", 1, 2, "2024-13-01", "not an ISO 8601 date"),
        _f("CORE-000701", "warning", "DM", "ARM", "S-003", None, 3, None, "ARM is missing"),
    ],
    "waived": [
        {**_f("CORE-000774", "warning", "AE", "AEREASND", "S-004", 5, 9, None, "reason not done missing"),
         "waiver": {"rule": "CORE-000774", "dataset": "AE", "reason": "not collected", "approved_by": "DM lead"}},
    ],
    "unused_waivers": [],
}


@pytest.fixture()
def build(tmp_path):
    b = tmp_path / "build"
    (b / "validation").mkdir(parents=True)
    (b / "validation" / "results.json").write_text(json.dumps(RESULTS))
    (b / "manifest.json").write_text(json.dumps({"data_cut": "2025-03-01"}))
    return b


def _rows(ws):
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_workbook_sheets_and_rows(build, tmp_path):
    out = tmp_path / "f.xlsx"
    r = CliRunner().invoke(main, ["findings", str(build), "--xlsx", str(out)])
    assert r.exit_code == 0, r.output
    assert "3 findings, 1 waived" in r.output
    wb = load_workbook(out)
    assert wb.sheetnames == ["Dataset Summary", "Issue Summary", "Details", "Waived"]
    assert _rows(wb["Dataset Summary"]) == [
        ["Dataset", "Records", "Errors", "Warnings", "Notices", "Waived"],
        ["AE", 42, 1, 1, 0, 1],            # sorted by name: AE before DM
        ["DM", 10, 0, 1, 0, 0]]
    # errors first, then warnings; CORE-000701 has two findings with two messages (1 each):
    # the tie goes to the alphabetically first message, "ARM is missing"
    assert _rows(wb["Issue Summary"]) == [
        ["Rule", "Severity", "Message", "Datasets", "Count"],
        ["CDISC-DS-001", "error", "not an ISO 8601 date", "AE", 1],
        ["CORE-000701", "warning", "ARM is missing", "AE, DM", 2]]
    assert _rows(wb["Details"]) == [
        ["Dataset", "Row", "USUBJID", "Variable", "Value", "Rule", "Severity", "Message", "Explanation",
         "Approved by"],
        ["AE", 2, "S-001", "AESTDTC", "2024-13-01", "CDISC-DS-001", "error", "not an ISO 8601 date", None, None],
        ["AE", 7, "S-002", "EPOCH", None, "CORE-000701", "warning", "EPOCH is missing", None, None],
        ["DM", 3, "S-003", "ARM", None, "CORE-000701", "warning", "ARM is missing", None, None]]
    assert _rows(wb["Waived"])[1] == ["AE", 9, "S-004", "AEREASND", None, "CORE-000774", "warning",
                                      "reason not done missing", "not collected", "DM lead"]
    # the core properties carry the data cut, not the time of the run
    assert wb.properties.created.isoformat() == "2025-03-01T00:00:00"
    assert wb.properties.modified.isoformat() == "2025-03-01T00:00:00"


def test_same_results_same_bytes(build, tmp_path):
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    for p in (a, b):
        assert CliRunner().invoke(main, ["findings", str(build / "validation" / "results.json"),
                                         "--xlsx", str(p)]).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as z:
        assert {i.date_time for i in z.infolist()} == {(2025, 3, 1, 0, 0, 0)}


def _explain(path, row, text, approver=None):
    wb = load_workbook(path)
    ws = wb["Details"]
    ws.cell(row=row, column=9, value=text)
    if approver:
        ws.cell(row=row, column=10, value=approver)
    wb.save(path)


def test_one_explanation_gives_exactly_one_waiver(build, tmp_path):
    out = tmp_path / "f.xlsx"
    CliRunner().invoke(main, ["findings", str(build), "--xlsx", str(out)])
    _explain(out, 3, "  Partial AE start date; epoch cannot be known  ", "J. Smith")  # sheet row 3 = 2nd finding
    assert waivers_from_workbook(out) == [
        {"rule": "CORE-000701", "dataset": "AE", "usubjid": "S-002", "variable": "EPOCH",
         "reason": "Partial AE start date; epoch cannot be known", "approved_by": "J. Smith"}]


WAIVERS_TEXT = """\
# Approved exceptions (this comment must survive the import)
waivers:
  - rule: CORE-000774
    dataset: RS
    reason: not collected   # an inline comment
"""


def test_import_dry_run_then_write_keeps_comments_and_refuses_duplicates(build, tmp_path):
    out = tmp_path / "f.xlsx"
    wfile = tmp_path / "waivers.yaml"
    wfile.write_text(WAIVERS_TEXT)
    CliRunner().invoke(main, ["findings", str(build), "--xlsx", str(out)])
    _explain(out, 3, "epoch unknown")
    _explain(out, 4, "ARM not assigned: screen failure", "DM lead")
    r = CliRunner().invoke(main, ["findings", "import", str(out), "--waivers", str(wfile)])
    assert r.exit_code == 0, r.output
    assert "Would add 2 waivers" in r.output and "dry run" in r.output
    assert wfile.read_text() == WAIVERS_TEXT                    # dry run: untouched
    r = CliRunner().invoke(main, ["findings", "import", str(out), "--waivers", str(wfile), "--write"])
    assert r.exit_code == 0, r.output
    text = wfile.read_text()
    assert text.startswith(WAIVERS_TEXT)                        # appended: comments and layout kept
    got = [w.model_dump(exclude_none=True) for w in load_waivers(wfile)]
    assert got == [
        {"rule": "CORE-000774", "dataset": "RS", "reason": "not collected"},
        {"rule": "CORE-000701", "dataset": "AE", "usubjid": "S-002", "variable": "EPOCH", "reason": "epoch unknown"},
        {"rule": "CORE-000701", "dataset": "DM", "usubjid": "S-003", "variable": "ARM",
         "reason": "ARM not assigned: screen failure", "approved_by": "DM lead"}]
    # a second import adds nothing: both are already there
    r = CliRunner().invoke(main, ["findings", "import", str(out), "--waivers", str(wfile), "--write"])
    assert r.exit_code == 0 and "No new waivers" in r.output and r.output.count("skipped") == 2
    assert wfile.read_text() == text


def test_empty_waivers_list_and_other_keys(tmp_path):
    wfile = tmp_path / "waivers.yaml"
    wfile.write_text("waivers: []\nintegrity: []\n")
    w = {"rule": "R1", "dataset": "AE", "reason": "ok"}
    add, skipped = plan_waivers([w, dict(w)], wfile)
    assert add == [w] and len(skipped) == 1                     # the second row repeats the first
    append_waivers(wfile, add)
    assert wfile.read_text() == "waivers:\n  - rule: R1\n    dataset: AE\n    reason: ok\nintegrity: []\n"


def test_unsafe_file_is_not_touched(tmp_path):
    wfile = tmp_path / "waivers.yaml"
    text = "waivers:\n  - {rule: R0, dataset: AE, reason: x}\nintegrity:\n  - {rule: death_consistency, dataset: DM, reason: y}\n"
    wfile.write_text(text)
    with pytest.raises(SpecError, match="by hand"):
        append_waivers(wfile, [{"rule": "R1", "dataset": "AE", "reason": "ok"}])
    assert wfile.read_text() == text


def test_not_a_results_file(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    r = CliRunner().invoke(main, ["findings", str(tmp_path / "x.json"), "--xlsx", str(tmp_path / "o.xlsx")])
    assert r.exit_code == 2 and "not a cdisc results.json" in r.output


def test_a_broader_waiver_already_in_the_file_covers_the_row(tmp_path):
    wfile = tmp_path / "waivers.yaml"
    wfile.write_text("waivers:\n  - {rule: CORE-000701, dataset: AE, variable: EPOCH, reason: partial dates}\n")
    covered = {"rule": "CORE-000701", "dataset": "AE", "usubjid": "S-002", "variable": "EPOCH", "reason": "x"}
    other = {"rule": "CORE-000701", "dataset": "AE", "usubjid": "S-002", "variable": "ARM", "reason": "y"}
    add, skipped = plan_waivers([covered, other], wfile)
    assert add == [other]
    assert skipped[0][0] == covered and "broader waiver (rule: CORE-000701, dataset: AE, variable: EPOCH)" in skipped[0][1]


def test_fast_reader_agrees_with_openpyxl(build, tmp_path):
    from cdisc.excel import xlsxio

    out = tmp_path / "f.xlsx"
    CliRunner().invoke(main, ["findings", str(build), "--xlsx", str(out)])
    _explain(out, 4, "  spaces kept by the cell ", "Ünïcode approver")    # saved again by openpyxl (normal mode)
    wb = load_workbook(out, read_only=True, data_only=True)      # a formula cell: its cached value, as ours
    for sheet in wb.sheetnames:
        assert xlsxio.fast_table(out, sheet) == xlsxio.read_table(wb[sheet]), sheet
    assert xlsxio.fast_table(out, "No such sheet") is None
    assert waivers_from_workbook(out)[0]["approved_by"] == "Ünïcode approver"


def test_text_excel_cannot_hold_is_shown_not_lost_silently(tmp_path):
    from cdisc.excel import xlsxio

    # a control character (BEL, 0x07) is written as \x07; 40,000 characters are cut to 32,767 with a note
    assert xlsxio._clean("a\x07b", escape=True) == "a\\x07b"
    cut = xlsxio._clean("x" * 40_000, escape=True)
    assert len(cut) == 32_767 and cut.endswith(" ... [cut: 40,000 characters]")
    with pytest.raises(ValueError, match="control character"):
        xlsxio._clean("a\x07b", escape=False)
    with pytest.raises(ValueError, match="does not fit"):
        xlsxio._clean("x" * 40_000, escape=False)
