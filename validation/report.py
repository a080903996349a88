"""One self-contained HTML conformance report (inline CSS and script, no network).

Sections: verdict, per-dataset summary, findings grouped by severity and rule (filter by
dataset, subject and severity), waived findings, unused waivers, and the rule table
(status of every rule, including "not applicable"). Every value is HTML-escaped.
"""
from __future__ import annotations

from html import escape

from .model import SEVERITIES, Finding, ValidationResult

MAX_ROWS_PER_GROUP = 1000

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:0 16px 48px}
header.verdict{padding:20px 16px;color:#fff}
header.verdict h1{margin:0 auto;max-width:1200px;font-size:1.6em}
header.verdict p{margin:6px auto 0;max-width:1200px}
header.ok{background:#1f7a3d} header.bad{background:#b3261e}
h2{margin-top:28px;border-bottom:2px solid #d5d9e0;padding-bottom:4px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.9em}
th,td{border:1px solid #d5d9e0;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eceff3} td.n{text-align:right;font-variant-numeric:tabular-nums}
.sev{display:inline-block;min-width:60px;padding:1px 6px;border-radius:3px;font-size:.8em;font-weight:600;text-align:center;color:#fff}
.sev-error{background:#b3261e}.sev-warning{background:#b86e00}.sev-notice{background:#44617b}
details.rule{margin:10px 0;background:#fff;border:1px solid #d5d9e0;border-radius:4px}
details.rule>summary{cursor:pointer;padding:8px;font-weight:600}
details.rule .meta{font-weight:400;color:#555;font-size:.85em;margin:0 8px 6px}
.filters{display:flex;gap:16px;flex-wrap:wrap;align-items:center;background:#fff;padding:10px;border:1px solid #d5d9e0;border-radius:4px;position:sticky;top:0;z-index:1}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.95em}
.muted{color:#666}
"""

_JS = """
(function(){
  var ds=document.getElementById('f-ds'), su=document.getElementById('f-subj');
  var sev=document.querySelectorAll('input.f-sev');
  function apply(){
    var d=ds.value, s=su.value.trim().toUpperCase(), on={};
    for(var i=0;i<sev.length;i++){on[sev[i].value]=sev[i].checked;}
    var rows=document.querySelectorAll('tr[data-ds]');
    for(var j=0;j<rows.length;j++){
      var r=rows[j];
      var ok=(!d||r.getAttribute('data-ds')===d)&&(!s||(r.getAttribute('data-subj')||'').toUpperCase().indexOf(s)>=0)&&(on[r.getAttribute('data-sev')]!==false);
      r.style.display=ok?'':'none';
    }
    var groups=document.querySelectorAll('details.rule');
    for(var k=0;k<groups.length;k++){
      var g=groups[k], vis=0, rs=g.querySelectorAll('tr[data-ds]');
      for(var m=0;m<rs.length;m++){if(rs[m].style.display!=='none'){vis++;}}
      g.style.display=vis?'':'none';
      var c=g.querySelector('.count'); if(c){c.textContent=vis;}
    }
  }
  ds.addEventListener('change',apply); su.addEventListener('input',apply);
  for(var i=0;i<sev.length;i++){sev[i].addEventListener('change',apply);}
})();
"""


def _e(v) -> str:
    return "" if v is None else escape(str(v), quote=True)


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _sev(s: str) -> str:
    return f'<span class="sev sev-{_e(s)}">{_e(s.upper())}</span>'


def _finding_row(f: Finding, extra: str = "") -> str:
    return (
        f'<tr data-ds="{_e(f.dataset)}" data-subj="{_e(f.usubjid or "")}" data-sev="{_e(f.severity)}">'
        f"<td>{_e(f.dataset)}</td><td>{_e(f.variable)}</td><td class=\"mono\">{_e(f.usubjid)}</td>"
        f'<td class="n">{_e(f.seq)}</td><td class="n">{_e(f.row)}</td>'
        f'<td class="mono">{_e(f.value)}</td><td>{_e(f.message)}</td>{extra}</tr>'
    )


_FINDING_HEAD = ("<tr><th>Dataset</th><th>Variable</th><th>USUBJID</th><th>--SEQ</th>"
                 "<th>Row</th><th>Value</th><th>Message</th>")


def _reconciliation(manifest: dict) -> list[str]:
    """Raw rows and columns in, mapped and excluded (the build's manifest.json), per form."""
    parts = ['<h2 id="reconciliation">Reconciliation of the raw export</h2>',
             f'<p>Study {_e(manifest.get("studyid"))}, data cut {_e(manifest.get("data_cut"))}, '
             f'CT {_e(manifest.get("ct_package"))}. Every raw row is mapped or excluded by a named rule; '
             "every raw column is read by a spec or not mapped for a stated reason.</p>",
             "<table><tr><th>Domain</th><th>Raw file</th><th>Rows read</th><th>Mapped</th><th>Records</th>"
             "<th>Excluded (rule: rows)</th></tr>"]
    for r in manifest.get("reconciliation", []):
        excl = "; ".join(f"{_e(reason)}: {n}" for reason, n in (r.get("excluded") or {}).items() if n) or "-"
        parts.append(f"<tr><td>{_e(r.get('domain'))}</td><td>{_e(r.get('file'))}</td>"
                     f"<td class=\"n\">{r.get('rows_read')}</td><td class=\"n\">{r.get('rows_mapped')}</td>"
                     f"<td class=\"n\">{r.get('records')}</td><td>{excl}</td></tr>")
    parts.append("</table>")
    for f, reason in (manifest.get("unmapped_forms") or {}).items():
        parts.append(f'<p class="muted">Raw file not mapped: {_e(f)} ({_e(reason)})</p>')
    cols = manifest.get("columns") or []
    if cols:
        parts.append("<table><tr><th>Raw file</th><th>Columns</th><th>Read by a spec</th>"
                     "<th>Not mapped (column: reason)</th></tr>")
        for c in cols:
            nm = "<br>".join(f"{_e(k)}: {_e(v)}" for k, v in (c.get("not_mapped") or {}).items()) or "-"
            parts.append(f"<tr><td>{_e(c.get('file'))}</td><td class=\"n\">{c.get('columns')}</td>"
                         f"<td class=\"n\">{len(c.get('read') or [])}</td><td>{nm}</td></tr>")
        parts.append("</table>")
    return parts


def render_html(result: ValidationResult) -> str:
    """The report as one HTML string (no external references)."""
    rules = {r.id: r for r in result.catalogue}
    errors, warnings, notices = len(result.errors), len(result.warnings), len(result.notices)
    ok = errors == 0
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Conformance report</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<header class="verdict {"ok" if ok else "bad"}"><h1 id="verdict">{_e(result.verdict)}</h1>',
        f"<p>{_n(errors, 'error')} &middot; {_n(warnings, 'warning')} &middot; {_n(notices, 'notice')} &middot; "
        f"{len(result.waived)} waived &middot; fail on: {_e(result.fail_on)}</p></header><main>",
    ]

    # Per-dataset summary
    parts.append('<h2 id="datasets">Datasets</h2><table><tr><th>Dataset</th><th>Standard</th>'
                 "<th>Records</th><th>Checks run</th><th>Errors</th><th>Warnings</th>"
                 "<th>Notices</th><th>Waived</th></tr>")
    for d in result.datasets:
        parts.append(
            f"<tr><td>{_e(d.name)}</td><td>{_e(d.standard)}</td><td class=\"n\">{d.records}</td>"
            f'<td class="n">{d.checks}</td><td class="n">{d.errors}</td><td class="n">{d.warnings}</td>'
            f'<td class="n">{d.notices}</td><td class="n">{d.waived}</td></tr>'
        )
    parts.append("</table>")

    if result.build:
        parts += _reconciliation(result.build)

    # Filters
    ds_names = sorted({f.dataset for f in result.findings} | {f.dataset for f, _ in result.waived})
    parts.append('<h2 id="findings">Findings</h2><div class="filters">'
                 '<label>Dataset <select id="f-ds"><option value="">all</option>')
    parts += [f'<option value="{_e(n)}">{_e(n)}</option>' for n in ds_names]
    parts.append('</select></label><label>Subject <input id="f-subj" type="search" '
                 'placeholder="USUBJID contains"></label>')
    parts += [f'<label><input class="f-sev" type="checkbox" value="{s}" checked> {s}</label>' for s in SEVERITIES]
    parts.append("</div>")

    # Findings grouped by severity, then rule
    if not result.findings:
        parts.append('<p class="muted">No findings.</p>')
    for sev in SEVERITIES:
        by_rule: dict[str, list[Finding]] = {}
        for f in result.findings:
            if f.severity == sev:
                by_rule.setdefault(f.rule, []).append(f)
        for rid in sorted(by_rule):
            fs = by_rule[rid]
            r = rules.get(rid)
            refs = []
            if r is not None:
                refs.append(_e(r.standard))
                if r.cg_id:
                    refs.append(f"SDTMIG conformance {_e(r.cg_id)}")
                if r.fda_id:
                    refs.append(f"FDA {_e(r.fda_id)}")
                if r.core_id and r.core_id != r.id:
                    refs.append(f"CORE {_e(r.core_id)}")
            title = _e(r.message if r else rid)
            parts.append(
                f'<details class="rule" open id="rule-{_e(rid)}"><summary>{_sev(sev)} <code>{_e(rid)}</code> '
                f'{title} (<span class="count">{len(fs)}</span>)</summary>'
                f'<div class="meta">{" &middot; ".join(refs)}</div><table>{_FINDING_HEAD}</tr>'
            )
            parts += [_finding_row(f) for f in fs[:MAX_ROWS_PER_GROUP]]
            parts.append("</table>")
            if len(fs) > MAX_ROWS_PER_GROUP:
                parts.append(f'<p class="muted">{len(fs) - MAX_ROWS_PER_GROUP} more findings of this rule are '
                             "in results.json.</p>")
            parts.append("</details>")

    # Waived
    parts.append(f'<h2 id="waived">Waived findings ({len(result.waived)})</h2>')
    if result.waived:
        parts.append(f"<table>{_FINDING_HEAD}<th>Rule</th><th>Reason</th><th>Approved by</th></tr>")
        for f, w in result.waived:
            extra = f"<td><code>{_e(f.rule)}</code></td><td>{_e(w.reason)}</td><td>{_e(w.approved_by)}</td>"
            parts.append(_finding_row(f, extra))
        parts.append("</table>")
    else:
        parts.append('<p class="muted">None.</p>')
    if result.unused_waivers:
        parts.append("<h3>Waivers that matched no finding</h3><table><tr><th>Rule</th><th>Dataset</th>"
                     "<th>USUBJID</th><th>Variable</th><th>Row</th><th>Reason</th></tr>")
        for w in result.unused_waivers:
            parts.append(f"<tr><td>{_e(w.rule)}</td><td>{_e(w.dataset)}</td><td>{_e(w.usubjid)}</td>"
                         f"<td>{_e(w.variable)}</td><td>{_e(w.row)}</td><td>{_e(w.reason)}</td></tr>")
        parts.append("</table>")

    # Rules
    parts.append('<h2 id="rules">Rules</h2><table><tr><th>Rule</th><th>Severity</th><th>Status</th>'
                 "<th>Findings</th><th>Waived</th><th>Datasets</th><th>Standard</th><th>CG</th><th>FDA</th>"
                 "<th>CORE</th><th>Note</th></tr>")
    for st in result.rules:
        r = rules.get(st.id)
        parts.append(
            f"<tr><td><code>{_e(st.id)}</code><br><span class=\"muted\">{_e(r.message if r else '')}</span></td>"
            f"<td>{_sev(st.severity)}</td><td>{_e(st.status)}</td><td class=\"n\">{st.findings}</td>"
            f'<td class="n">{st.waived}</td><td>{_e(", ".join(st.datasets))}</td>'
            f"<td>{_e(r.standard if r else '')}</td><td>{_e(r.cg_id if r else '')}</td><td>{_e(r.fda_id if r else '')}</td>"
            f"<td>{_e(r.core_id if r else '')}</td><td>{_e(st.reason)}</td></tr>"
        )
    parts.append("</table>")
    parts.append(f"</main><script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"
