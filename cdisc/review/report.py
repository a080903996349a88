"""The review report: ``report.html`` at the top of a build folder, one self-contained file.

Sections: header (study, data cut, run, tool, standards and CT versions, input hashes),
reconciliation of the raw export (manifest.json), findings with the raw file, row, site and
visit behind each SDTM record (validation/results.json joined to trace.json), and plots of
the ADaM datasets (cdisc.review.plots). A build that failed before writing gets the same
header and its errors (file, row, column, message, hint) instead (``write_failed_report``).

Deterministic: the same build folder gives the same bytes. The run time shown is the
build's creation stamp (the data cut at 00:00, also written into every XPT header), never
the clock. No network reference: CSS inline, plots as inline SVG, no script.
"""
from __future__ import annotations

import json
from html import escape
from pathlib import Path

from .trace import locate, read_trace

REPORT_FILE = "report.html"
ERRORS_FILE = "errors.json"
STANDARDS = "SDTMIG 3.4, ADaMIG 1.3, Define-XML 2.1"
MAX_FINDINGS = 500          # rows per table here; every finding is in validation/results.json

_CSS_EXTRA = """
header.review{background:#1d3557;color:#fff;padding:18px 16px}
header.review h1{margin:0 auto;max-width:1200px;font-size:1.5em}
header.review dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:10px auto 0;max-width:1200px}
header.review dt{font-weight:600;opacity:.85} header.review dd{margin:0}
header.failed{background:#b3261e}
nav.toc{max-width:1200px;margin:8px auto;padding:0 16px;font-size:.9em} nav.toc a{margin-right:14px}
figure.plot{background:#fff;border:1px solid #d5d9e0;border-radius:4px;margin:14px 0;padding:8px}
figure.plot figcaption{font-size:.85em;color:#555;margin-top:4px}
table.ae tr.soc td{font-weight:600;background:#f2f4f7} table.ae td.pt{padding-left:20px}
p.skip{background:#fff8e1;border:1px solid #e0c97a;padding:6px 10px;border-radius:4px}
"""


def _e(v) -> str:
    return "" if v is None else escape(str(v), quote=True)


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _page(title: str, header: list[str], body: list[str], *, failed: bool = False) -> str:
    from cdisc.validation.report import _CSS

    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{_CSS}{_CSS_EXTRA}</style></head><body>",
        f'<header class="review{" failed" if failed else ""}">', *header, "</header>", *body,
        "</main></body></html>"]) + "\n"


def header_items(manifest: dict, context: dict) -> list[tuple[str, str]]:
    """(label, value) pairs of the header, from manifest.json and study.json."""
    from cdisc import __version__

    ct = context.get("ct") or {}
    cut = manifest.get("data_cut") or context.get("data_cut") or ""
    return [("Study", manifest.get("studyid") or context.get("studyid") or ""),
            ("Data cut", cut),
            ("Run", f"{cut}T00:00:00 (the build's creation stamp, as in every XPT header)" if cut else ""),
            ("Tool", f"cdisc {__version__}"),
            ("Standards", STANDARDS),
            ("Controlled terminology", f"SDTM CT {ct.get('sdtm') or '-'}, ADaM CT {ct.get('adam') or '-'}"
                                       + (f" ({manifest['ct_package']})" if manifest.get("ct_package") else "")),
            ("SDTM source", "delivered SDTM datasets (--sdtm)" if manifest.get("sdtm_source") == "delivered"
             else "raw CRF exports")]


def _header(title: str, items: list[tuple[str, str]], verdict: str | None) -> list[str]:
    out = [f'<h1 id="title">{_e(title)}</h1>', "<dl>"]
    out += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items if v]
    if verdict:
        out.append(f'<dt>Verdict</dt><dd id="verdict">{_e(verdict)}</dd>')
    out.append("</dl>")
    return out


def _inputs(manifest: dict) -> list[str]:
    inputs = manifest.get("inputs") or []
    out = [f'<details id="inputs"><summary>Input hashes ({len(inputs)} files, SHA-256)</summary>'
           "<table><tr><th>File</th><th>SHA-256</th></tr>"]
    out += [f'<tr><td>{_e(i.get("file"))}</td><td class="mono">{_e(i.get("sha256"))}</td></tr>' for i in inputs]
    out.append("</table></details>")
    return out


def reconciliation(manifest: dict) -> list[str]:
    """Raw rows read / mapped / excluded per form and per domain, unmapped forms and columns
    (raw builds); the delivered datasets (``--sdtm`` builds)."""
    rec = manifest.get("reconciliation") or []
    out = ['<h2 id="reconciliation">Reconciliation</h2>']
    if manifest.get("sdtm_source") == "delivered":
        out.append("<p>Built from delivered SDTM datasets, copied byte for byte.</p><table><tr><th>Dataset</th>"
                   "<th>File</th><th>Records</th><th>Variables</th></tr>")
        out += [f"<tr><td>{_e(r.get('dataset'))}</td><td>{_e(r.get('file'))}</td><td class=\"n\">{_e(r.get('records'))}"
                f"</td><td class=\"n\">{_e(r.get('variables'))}</td></tr>" for r in rec]
        out.append("</table>")
        return out
    by_dom: dict[str, list[int]] = {}
    for r in rec:
        t = by_dom.setdefault(str(r.get("domain")), [0, 0, 0, 0])
        excl = sum(int(n or 0) for n in (r.get("excluded") or {}).values())
        for i, v in enumerate((r.get("rows_read"), r.get("rows_mapped"), excl, r.get("records"))):
            t[i] += int(v or 0)
    out.append('<h3>Per domain</h3><table id="recon-domain"><tr><th>Domain</th><th>Raw rows read (melted forms: row values)</th>'
               "<th>Mapped</th><th>Excluded</th><th>Records</th></tr>")
    out += [f'<tr><td>{_e(d)}</td><td class="n">{a}</td><td class="n">{b}</td><td class="n">{c}</td>'
            f'<td class="n">{n}</td></tr>' for d, (a, b, c, n) in sorted(by_dom.items())]
    out.append("</table><h3>Per form and domain (excluded by which rule)</h3>")
    out.append('<table id="recon-form"><tr><th>Raw file</th><th>Domain</th><th>Rows read</th><th>Mapped</th>'
               "<th>Records</th><th>Excluded (rule: rows)</th></tr>")
    for r in sorted(rec, key=lambda r: (str(r.get("file")), str(r.get("domain")))):
        excl = "; ".join(f"{_e(k)}: {n}" for k, n in (r.get("excluded") or {}).items() if n) or "-"
        out.append(f"<tr><td>{_e(r.get('file'))}</td><td>{_e(r.get('domain'))}</td>"
                   f'<td class="n">{_e(r.get("rows_read"))}</td><td class="n">{_e(r.get("rows_mapped"))}</td>'
                   f'<td class="n">{_e(r.get("records"))}</td><td>{excl}</td></tr>')
    out.append("</table>")
    for f, reason in sorted((manifest.get("unmapped_forms") or {}).items()):
        out.append(f'<p class="muted">Raw file not mapped: {_e(f)} ({_e(reason)})</p>')
    cols = manifest.get("columns") or []
    if cols:
        n_nm = sum(len(c.get("not_mapped") or {}) for c in cols)
        out.append(f'<details id="recon-columns-details"><summary>Raw columns not mapped: {n_nm} columns of '
                   f'{len(cols)} forms, each with the reason</summary><table id="recon-columns"><tr><th>Raw file</th>'
                   "<th>Columns</th><th>Read by a spec</th><th>Not mapped</th><th>Column: reason</th></tr>")
        for c in cols:
            nm = c.get("not_mapped") or {}
            reasons = "<br>".join(f"<code>{_e(k)}</code>: {_e(v)}" for k, v in nm.items()) or "-"
            out.append(f"<tr><td>{_e(c.get('file'))}</td><td class=\"n\">{_e(c.get('columns'))}</td>"
                       f'<td class="n">{len(c.get("read") or [])}</td><td class="n">{len(nm)}</td><td>{reasons}</td></tr>')
        out.append("</table></details>")
    return out


_SEV = {"error": 0, "warning": 1, "notice": 2}
_FHEAD = ("<tr><th>Severity</th><th>Rule</th><th>Dataset</th><th>Record</th><th>Variable</th><th>USUBJID</th>"
          "<th>Site</th><th>Visit</th><th>Raw file</th><th>Raw row</th><th>Value</th><th>Message</th>")


def _finding_rows(items: list[dict], trace: dict, waived: bool) -> list[str]:
    out = []
    for f in items[:MAX_FINDINGS]:
        loc = locate(trace, f.get("dataset"), f.get("row"))
        extra = ""
        if waived:
            w = f.get("waiver") or {}
            extra = f"<td>{_e(w.get('reason'))}</td>"
        out.append(f'<tr><td>{_e(f.get("severity"))}</td><td><code>{_e(f.get("rule"))}</code></td>'
                   f'<td>{_e(f.get("dataset"))}</td><td class="n">{_e(f.get("row"))}</td><td>{_e(f.get("variable"))}</td>'
                   f'<td class="mono">{_e(f.get("usubjid"))}</td><td>{_e(loc.get("site"))}</td>'
                   f'<td>{_e(loc.get("visit"))}</td><td>{_e(loc.get("file"))}</td>'
                   f'<td class="n">{_e(loc.get("raw_row"))}</td><td class="mono">{_e(f.get("value"))}</td>'
                   f"<td>{_e(f.get('message'))}</td>{extra}</tr>")
    if len(items) > MAX_FINDINGS:
        out.append(f'<tr><td colspan="12" class="muted">{len(items) - MAX_FINDINGS} more in '
                   "validation/results.json</td></tr>")
    return out


def findings(results: dict, trace: dict) -> list[str]:
    """Active and waived findings, each with the raw file, row, site and visit of its SDTM record."""
    out = ['<h2 id="findings">Findings</h2>']
    if not results:
        return out + ['<p class="skip">This build was not validated (--no-validate): no findings.</p>']
    counts = results.get("counts") or {}
    out.append(f"<p>{_e(results.get('verdict'))}: {counts.get('error', 0)} errors, {counts.get('warning', 0)} "
               f"warnings, {counts.get('notice', 0)} notices, {len(results.get('waived') or [])} waived. "
               'The full conformance report (rules, filters): <a href="validation/report.html">'
               "validation/report.html</a>.</p>")
    active = results.get("findings") or []
    if active:
        by_rule: dict[tuple, int] = {}
        for f in active:
            k = (str(f.get("severity")), str(f.get("rule")), str(f.get("dataset")), str(f.get("message")))
            by_rule[k] = by_rule.get(k, 0) + 1
        out.append('<table id="findings-by-rule"><tr><th>Severity</th><th>Rule</th><th>Dataset</th><th>Findings</th>'
                   "<th>Message</th></tr>")
        out += [f'<tr><td>{_e(sv)}</td><td><code>{_e(r)}</code></td><td>{_e(d)}</td><td class="n">{n}</td>'
                f"<td>{_e(m)}</td></tr>" for (sv, r, d, m), n in sorted(by_rule.items(), key=lambda kv: (_SEV.get(kv[0][0], 9), kv[0]))]
        out.append("</table>")
        out += [f'<h3>Each finding with its raw row{" (the first " + str(MAX_FINDINGS) + ")" if len(active) > MAX_FINDINGS else ""}</h3>',
                f'<table id="findings-active">{_FHEAD}</tr>', *_finding_rows(active, trace, False), "</table>"]
    else:
        out.append('<p class="muted">No active findings.</p>')
    waived = results.get("waived") or []
    if waived:
        out += [f'<details id="waived"><summary>Waived findings ({len(waived)}), with the raw rows and reasons</summary>'
                f'<table id="findings-waived">{_FHEAD}<th>Waiver reason</th></tr>',
                *_finding_rows(waived, trace, True), "</table></details>"]
    return out


def plots_section(plots) -> list[str]:
    out = ['<h2 id="plots">Plots of the ADaM datasets</h2>']
    for p in plots:
        out.append(f'<h3 id="plot-{_e(p.id)}">{_e(p.title)}</h3>')
        if p.svg is None:
            out.append(f'<p class="skip" id="skip-{_e(p.id)}">{_e(p.note)}</p>')
            continue
        out.append(f'<figure class="plot" id="fig-{_e(p.id)}">{p.svg}'
                   + (f"<figcaption>{_e(p.note)}</figcaption>" if p.note else "") + "</figure>")
        out += p.tables
    return out


def render_review(folder: Path, plots=None) -> str:
    """The review report of a build folder as one HTML string."""
    from .plots import draw_all, read_adam

    folder = Path(folder)
    manifest, context = _load(folder / "manifest.json"), _load(folder / "study.json")
    results = _load(folder / "validation" / "results.json")
    plots = draw_all(read_adam(folder)) if plots is None else plots
    title = f"Review report: {manifest.get('studyid', '')}, data cut {manifest.get('data_cut', '')}"
    header = _header(title, header_items(manifest, context), results.get("verdict"))
    body = ['<nav class="toc"><a href="#reconciliation">Reconciliation</a><a href="#findings">Findings</a>'
            '<a href="#plots">Plots</a><a href="#inputs">Inputs</a></nav><main>']
    body += reconciliation(manifest) + findings(results, read_trace(folder)) + plots_section(plots)
    body += ['<h2 id="inputs-h">Inputs</h2>'] + _inputs(manifest)
    return _page(title, header, body, failed=bool(results) and not results.get("ready_for_lock", True))


def write_review_report(folder: Path) -> Path:
    """Write ``report.html`` into a build folder (staging or final)."""
    path = Path(folder) / REPORT_FILE
    path.write_text(render_review(folder), encoding="utf-8")
    return path


def error_records(exc) -> list[dict]:
    """The problems of a CdiscError as records (file, row, column, key, message, hint)."""
    kind = type(exc).__name__
    return [{"kind": kind, "file": p.file, "row": p.row, "column": p.column, "key": p.key, "message": p.message,
             "hint": p.hint} for p in exc.problems]


def write_failed_report(folder: Path, exc, *, specs_dir: Path | None = None, raw_dir: Path | None = None) -> Path:
    """``errors.json`` and ``report.html`` of a build that stopped with errors, into ``folder``.

    The header is the study's (when its study.yaml still loads) and the input hashes; the body
    the errors, one row each, in the order the build found them.
    """
    from cdisc.pipeline import _inputs as input_hashes
    from cdisc.errors import CdiscError

    folder = Path(folder)
    context, manifest = {}, {}
    if specs_dir is not None:
        try:
            from cdisc.study import load_study

            st = load_study(specs_dir)
            context = {"studyid": st.studyid, "data_cut": st.data_cut.isoformat(),
                       "ct": {"sdtm": st.ct.sdtm, "adam": st.ct.adam}}
        except (CdiscError, OSError, ValueError):
            pass
        try:
            manifest = {"inputs": input_hashes(specs_dir, raw_dir) if raw_dir is not None else []}
        except OSError:
            pass
    errors = error_records(exc)
    (folder / ERRORS_FILE).write_text(json.dumps({"tool": "cdisc", "studyid": context.get("studyid"),
                                                  "data_cut": context.get("data_cut"), "errors": errors},
                                                 indent=1) + "\n", encoding="utf-8")
    title = f"Build failed: {context.get('studyid', 'study')}" + (
        f", data cut {context['data_cut']}" if context.get("data_cut") else "")
    verdict = f"{len(errors)} {type(exc).__name__.replace('Error', ' error').lower()}{'s' if len(errors) != 1 else ''}" \
              "; nothing was built"
    header = _header(title, header_items(manifest, context), verdict)
    body = ['<main><h2 id="errors">Errors</h2><p>Fix these in the raw export (a site query) or the specs, '
            f"then build again. The same list is in {ERRORS_FILE}.</p>",
            '<table id="error-table"><tr><th>#</th><th>File</th><th>Row</th><th>Column</th><th>Key</th>'
            "<th>Message</th><th>Hint</th></tr>"]
    body += [f'<tr><td class="n">{i}</td><td>{_e(e["file"])}</td><td class="n">{_e(e["row"])}</td>'
             f'<td>{_e(e["column"])}</td><td>{_e(e["key"])}</td><td>{_e(e["message"])}</td><td>{_e(e["hint"])}</td></tr>'
             for i, e in enumerate(errors, 1)]
    body.append("</table>")
    if manifest.get("inputs"):
        body += ['<h2 id="inputs-h">Inputs</h2>'] + _inputs(manifest)
    path = folder / REPORT_FILE
    path.write_text(_page(title, header, body, failed=True), encoding="utf-8")
    return path
