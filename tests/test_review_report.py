"""The review report (issue 15 item 4): OUT/report.html of a build, one self-contained file.

Uses the session's ``built`` build of the shipped study (tests/conftest.py); nothing here
builds the full study again.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cdisc.review.km import kaplan_meier, number_at_risk
from cdisc.review.plots import PLOTS, draw_all, read_adam
from cdisc.review.report import render_review
from cdisc.review.trace import locate, read_trace

PLOT_IDS = ("swimmer", "km", "pk", "cd7", "ae")


@pytest.fixture(scope="module")
def page(built) -> str:
    return (built.out / "report.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------------- KM estimator

def test_kaplan_meier_hand_computed():
    # times 1e 2e 2c 3e 4c 5e 5e 6c (e = event, c = censored), n = 8:
    # t=1: at risk 8, 1 event -> S = 7/8 = 0.875
    # t=2: at risk 7 (the censoring at 2 still at risk), 1 event -> 0.875 * 6/7 = 0.75
    # t=3: at risk 5 (3,4,5,5,6), 1 event -> 0.75 * 4/5 = 0.6
    # t=5: at risk 3 (5,5,6), 2 events -> 0.6 * 1/3 = 0.2 ; median = first S <= 0.5 -> 5
    km = kaplan_meier([1, 2, 2, 3, 4, 5, 5, 6], [1, 1, 0, 1, 0, 1, 1, 0])
    assert km.time.tolist() == [0, 1, 2, 3, 5]
    assert np.allclose(km.survival, [1, 0.875, 0.75, 0.6, 0.2])
    assert km.at_risk.tolist() == [8, 8, 7, 5, 3]
    assert km.events.tolist() == [0, 1, 1, 1, 2]
    assert km.censor_times.tolist() == [2, 4, 6]
    assert km.median == 5
    assert km.at(4.5) == pytest.approx(0.6) and km.at(0.5) == 1.0
    # at risk at 0, 2, 3, 7: 8, 7 (>= 2), 5, 0
    assert number_at_risk([1, 2, 2, 3, 4, 5, 5, 6], [0, 2, 3, 7]) == [8, 7, 5, 0]


def test_kaplan_meier_no_events_and_missing_times():
    # all censored: the curve stays at 1, no median; a missing time is dropped
    km = kaplan_meier([3, None, 7], [0, 1, 0])
    assert km.n == 2 and km.survival.tolist() == [1.0] and km.median is None


def test_kaplan_meier_os_of_the_shipped_study(built):
    # ADTTE OS (9 subjects): deaths at days 79, 84, 228 and a lost-to-follow-up event at 118;
    # censored at 203, 356, 361, 368, 371.
    # S(79) = 8/9; S(84) = 8/9 * 7/8 = 7/9; S(118) = 7/9 * 6/7 = 6/9; S(228) = 6/9 * 4/5 = 0.5333
    # (at 228 at risk: 228, 356, 361, 368, 371 = 5; 203 was censored before)
    tte = read_adam(built.out)["ADTTE"]
    os_ = tte[tte["PARAMCD"] == "OS"]
    km = kaplan_meier(os_["AVAL"], os_["CNSR"] == 0)
    assert km.time.tolist() == [0, 79, 84, 118, 228]
    assert np.allclose(km.survival, [1, 8 / 9, 7 / 9, 6 / 9, 6 / 9 * 4 / 5])
    assert km.median is None


# ------------------------------------------------------------------------- the page

def test_page_is_one_file_without_network_references(page):
    refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', page)
    assert not [r for r in refs if re.match(r"(?i)(https?:)?//", r)], refs
    # only in-page anchors and the local conformance report
    assert {r for r in refs if not r.startswith("#")} <= {"validation/report.html"}
    assert "<script" not in page and "<link" not in page and "@import" not in page


def test_header_values_come_from_the_build(built, page):
    m = built.manifest
    ctx = json.loads((built.out / "study.json").read_text(encoding="utf-8"))
    from cdisc import __version__

    assert f"Review report: {m['studyid']}, data cut {m['data_cut']}" in page
    assert f"<dd>{m['data_cut']}T00:00:00 (the build" in page          # run stamp = data cut, not the clock
    assert f"<dd>cdisc {__version__}</dd>" in page
    assert "SDTMIG 3.4, ADaMIG 1.3" in page
    assert f"SDTM CT {ctx['ct']['sdtm']}, ADaM CT {ctx['ct']['adam']}" in page
    # every input hash of the manifest
    assert len(m["inputs"]) > 50
    for i in m["inputs"]:
        assert f'<td>{i["file"]}</td><td class="mono">{i["sha256"]}</td>' in page


def test_reconciliation_numbers_from_the_manifest(built, page):
    ae = built.recon("AE", "ae.csv")
    # ae.csv: 60 rows read, 3 deleted in EDC, 57 mapped into 57 AE records
    assert (ae["rows_read"], ae["rows_mapped"], ae["records"]) == (60, 57, 57)
    assert ('<tr><td>ae.csv</td><td>AE</td><td class="n">60</td><td class="n">57</td><td class="n">57</td>'
            "<td>record deleted in EDC (entered in error): 3</td></tr>") in page
    # per domain: the sums over the domain's forms
    for dom in ("AE", "LB", "VS"):
        recs = [r for r in built.manifest["reconciliation"] if r["domain"] == dom]
        read = sum(r["rows_read"] for r in recs)
        mapped = sum(r["rows_mapped"] for r in recs)
        excl = sum(sum(r["excluded"].values()) for r in recs)
        assert read == mapped + excl
        assert (f'<tr><td>{dom}</td><td class="n">{read}</td><td class="n">{mapped}</td><td class="n">{excl}</td>'
                in page)
    # an unmapped column with its reason
    ada = next(c for c in built.manifest["columns"] if c["file"] == "ada.csv")
    assert ada["not_mapped"]["PROJECT"].startswith("EDC project code")
    assert f"<code>PROJECT</code>: {ada['not_mapped']['PROJECT']}" in page


def test_every_plot_is_an_inline_svg(page):
    for pid in PLOT_IDS:
        m = re.search(rf'<figure class="plot" id="fig-{pid}"><svg [^>]*>(.*?)</svg>', page, re.S)
        assert m, pid
        assert len(m.group(1)) > 5000, pid                 # drawn, not an empty frame
    assert 'id="skip-' not in page
    # the AE subject table: Cytokine release syndrome in all 9 subjects (ADAE, worst grades 1 x3, 2 x5, 3 x1)
    assert ('<td class="pt">Cytokine release syndrome</td><td class="n">9</td><td class="n">3</td>'
            '<td class="n">5</td><td class="n">1</td>') in page


def test_report_is_byte_identical_when_rendered_again(built):
    # another process, another hash seed: the same bytes as the build wrote
    code = ("import sys; from pathlib import Path; from cdisc.review.report import render_review;"
            "sys.stdout.buffer.write(render_review(Path(sys.argv[1])).encode('utf-8'))")
    out = subprocess.run([sys.executable, "-c", code, str(built.out)], capture_output=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "123"}, timeout=120).stdout
    assert out == (built.out / "report.html").read_bytes()


# ------------------------------------------------------------------------- trace and findings

def test_trace_points_at_the_raw_row(built):
    # AE record 1 is 101-001 "Neutrophil count decreased" from ae.csv line 2 (header = line 1)
    trace = read_trace(built.out)
    ae = built.df("AE")
    raw = pd.read_csv(Path(__file__).resolve().parent.parent / "raw" / "ae.csv", dtype=str, keep_default_na=False)
    assert len(trace["AE"]["file"]) == len(ae)
    for rec in (1, 20, len(ae)):
        loc = locate(trace, "AE", rec)
        assert loc["file"] == "ae.csv"
        line = raw.iloc[loc["raw_row"] - 2]
        assert ae.loc[rec - 1, "USUBJID"].endswith(line["SUBJECT"])
        assert ae.loc[rec - 1, "AETERM"] == line["AETERM"]
        assert loc["site"] == line["SITENUMBER"]
    assert locate(trace, "AE", 0) == {} and locate(trace, "TS", 1) == {}


def test_findings_carry_raw_file_row_site_and_visit(built, tmp_path):
    # a finding on VS record 5: the page shows vs.csv, its raw row, the site and the visit
    trace = read_trace(built.out)
    loc = locate(trace, "VS", 5)
    assert loc["file"] == "vs.csv" and loc["visit"] and loc["site"]
    folder = tmp_path / "b"
    shutil.copytree(built.out, folder, ignore=shutil.ignore_patterns("*.xpt"))
    (folder / "validation").mkdir(exist_ok=True)
    finding = {"rule": "SD0026", "severity": "error", "dataset": "VS", "row": 5, "variable": "VSSTRESN",
               "usubjid": built.df("VS").loc[4, "USUBJID"], "seq": 5, "value": "VSSTRESN=", "message": "m"}
    (folder / "validation" / "results.json").write_text(json.dumps(
        {"verdict": "Not ready for lock", "counts": {"error": 1}, "findings": [finding], "waived": [],
         "ready_for_lock": False}), encoding="utf-8")
    html = render_review(folder, plots=[])
    assert ('<tr><td>error</td><td><code>SD0026</code></td><td>VS</td><td class="n">1</td><td>m</td></tr>'
            in html)
    assert (f'<td>{loc["site"]}</td><td>{loc["visit"]}</td><td>vs.csv</td><td class="n">{loc["raw_row"]}</td>'
            in html)
    assert 'class="review failed"' in html


# ------------------------------------------------------------------------- other studies

def test_plots_of_a_study_without_the_data_are_notes():
    plots = draw_all({})
    assert [p.id for p in plots] == list(PLOT_IDS) and len(PLOTS) == 5
    assert all(p.svg is None and p.note.startswith("Not drawn") for p in plots)
    # a dataset of another shape (the pilot's ADTTE has no OS/LFS/DOR) is a note, not a crash
    tte = pd.DataFrame({"PARAMCD": ["TTDE"], "AVAL": [10.0], "CNSR": [1]})
    km = draw_all({"ADTTE": tte})[1]
    assert km.svg is None and "none of PARAMCD OS, LFS, DOR" in km.note
    # the pilot's ADAE has AESEV, no toxicity grade: the AE summary is drawn with ungraded bars
    adae = pd.DataFrame({"USUBJID": ["01-701-1015", "01-701-1015", "01-701-1023"], "TRTEMFL": "Y",
                         "AEBODSYS": "SKIN AND SUBCUTANEOUS TISSUE DISORDERS",
                         "AEDECOD": ["ERYTHEMA", "ERYTHEMA", "PRURITUS"]})
    ae = draw_all({"ADAE": adae})[4]
    assert ae.svg is not None and "No toxicity grade" in ae.svg
    # 2 subjects in the SOC, ERYTHEMA 1 subject (twice), PRURITUS 1: no grade columns filled
    assert '<td>SKIN AND SUBCUTANEOUS TISSUE DISORDERS</td><td class="n">2</td>' in ae.tables[0]
    assert '<td class="pt">ERYTHEMA</td><td class="n">1</td><td class="n"></td>' in ae.tables[0]


def test_a_large_study_gets_summary_curves_not_one_line_per_subject():
    """Above MAX_SUBJECT_LINES subjects (40) the swimmer plot is a note and the PK and CD7 plots
    show per dose level the median and 10th-90th percentile per (nominal) time point: no subject
    in a legend. 50 subjects, concentrations 1..50 at NFRLT 2 h and 2 x that at 24 h (actual
    times scattered): median 25.5 and 51 at the two nominal times."""
    n = 50
    subj = [f"S-{i:03d}" for i in range(n)]
    adsl = pd.DataFrame({"USUBJID": subj, "TRT01A": "DOSE 1", "TRTSDT": 23000.0})
    conc = np.arange(1, n + 1, dtype=float)
    adpc = pd.DataFrame({"USUBJID": subj * 2, "TRT01A": "DOSE 1", "AVAL": np.r_[conc, 2 * conc],
                         "NFRLT": [2.0] * n + [24.0] * n, "AFRLT": np.r_[2 + conc / 100, 24 + conc / 100],
                         "BLQFL": "", "AVALU": "10^6/L"})
    adlb = pd.DataFrame({"USUBJID": subj, "TRT01A": "DOSE 1", "PARAMCD": "CD7", "PARAM": "CD7+ Cells",
                         "AVAL": conc, "ADY": 1.0})
    adrs = pd.DataFrame({"USUBJID": subj, "PARAMCD": "OVR", "AVALC": "CR", "ADT": 23028.0})
    swimmer, _, pk, cd7, _ = draw_all({"ADSL": adsl, "ADPC": adpc, "ADLB": adlb, "ADRS": adrs})
    assert swimmer.svg is None and swimmer.note.startswith("Not drawn: 50 treated subjects")
    assert "50 subjects: median and 10th-90th percentile of the quantifiable samples per nominal time point" in pk.note
    assert cd7.note.startswith("More than 40 subjects")
    for plot in (pk, cd7):
        assert plot.svg is not None and "S-0" not in plot.svg           # no subject in a legend
    from cdisc.review.plots import _median_band
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    _median_band(ax, adpc.assign(_t=adpc["NFRLT"], _y=adpc["AVAL"]), "#000000", "median")
    assert list(ax.lines[0].get_xdata()) == [2.0, 24.0] and list(ax.lines[0].get_ydata()) == [25.5, 51.0]


# ------------------------------------------------------------------------- failed build

def test_failed_build_leaves_a_report_only_folder(study):
    # ae.csv line 5 has AESTDAT 31-FEB-2025 (no 31st in February): a mapping error, nothing is built
    study.set_raw("ae", 5, "AESTDAT", "31-FEB-2025")
    out = study.root / "out"
    res = study.build(out)
    assert res.code == 1, res.output
    assert not out.exists() and res.changed == []
    failed = out.with_name("out.failed")
    assert sorted(p.name for p in failed.iterdir()) == [".cdisc-output.json", "errors.json", "report.html"]
    errors = json.loads((failed / "errors.json").read_text(encoding="utf-8"))["errors"]
    e = next(e for e in errors if e["column"] == "AESTDAT")
    assert (e["file"], e["row"]) == ("ae.csv", 5) and "31-FEB-2025" in e["message"]
    html = (failed / "report.html").read_text(encoding="utf-8")
    assert '<td>ae.csv</td><td class="n">5</td><td>AESTDAT</td>' in html
    assert "Build failed: VGO-Cs01p, data cut" in html
    assert f"Report of the failed build: {failed / 'report.html'}" in res.stdout
    # the next good build removes the failed-report folder
    study.set_raw("ae", 5, "AESTDAT", "11-APR-2024")
    assert study.build(out).code == 0                  # (a study copy builds with --no-report)
    assert not failed.exists() and (out / "sdtm" / "ae.xpt").is_file()


def test_failed_report_never_replaces_a_folder_of_the_user(study):
    # OUT.failed already holds the user's own file: the errors still print, the folder stays as it is
    study.set_raw("ae", 5, "AESTDAT", "31-FEB-2025")
    out = study.root / "out"
    mine = out.with_name("out.failed")
    mine.mkdir()
    (mine / "notes.txt").write_text("mine", encoding="utf-8")
    res = study.build(out)
    assert res.code == 1 and "ae.csv, row 5, column AESTDAT" in res.stderr
    assert res.stderr.startswith("cdisc: data error")
    assert f"note: no report of the failed build was written: --out (failed copy) {mine}" in res.stdout
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and not out.exists()


# ------------------------------------------------------------------------- headless Chromium

def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _png_colours(path: Path) -> int:
    """Distinct RGB colours of a screenshot (Pillow comes with matplotlib)."""
    from PIL import Image

    with Image.open(path) as im:
        return len(im.convert("RGB").getcolors(maxcolors=1 << 24))


def test_page_renders_in_headless_chromium(built, tmp_path):
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing in CI (.ci/run installs it)")
        pytest.skip("chromium is not installed")
    url = (built.out / "report.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([exe, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    # the DOM Chromium built holds every plot's SVG
    for pid in PLOT_IDS:
        assert re.search(rf'id="fig-{pid}"><svg', dom.stdout), pid
    shot = tmp_path / "shot.png"
    res = subprocess.run([exe, *flags, f"--screenshot={shot}", "--window-size=1200,4000", url],
                         capture_output=True, text=True, timeout=120)
    assert shot.is_file(), res.stderr[-2000:]
    assert _png_colours(shot) > 50                        # a blank page has 1 or 2 colours


def test_trace_entries_number_raw_rows_and_leave_unknown_ones_null():
    """trace.json per SDTM record: the raw file's index and line, null line and -1 file for a
    derived record, the subject's site from DM and the visit."""
    from types import SimpleNamespace

    from cdisc.rawio import FILE_COL, ROW_COL
    from cdisc.review.trace import trace_entries

    dm = pd.DataFrame({"USUBJID": ["S-1", "S-2"], "SITEID": ["101", "102"]})
    ae = pd.DataFrame({"USUBJID": ["S-2", "S-1", "S-1"], "VISIT": ["DAY 1", None, "DAY 8"]})
    trace = pd.DataFrame({FILE_COL: ["ae.csv", None, "ae2.csv"], ROW_COL: [7, None, 12.0]})
    result = SimpleNamespace(datasets={
        "DM": SimpleNamespace(standard="SDTM", data=dm, trace=None),
        "AE": SimpleNamespace(standard="SDTM", data=ae, trace=trace)})
    got = trace_entries(result)
    assert list(got) == ["AE"]
    assert got["AE"] == {"files": ["ae.csv", "ae2.csv"], "file": [0, -1, 1], "row": [7, None, 12],
                         "site": ["102", "101", "101"], "visit": ["DAY 1", "", "DAY 8"]}
    assert json.dumps(got["AE"]["row"]) == "[7, null, 12]"
