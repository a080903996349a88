"""Reviewer's guides for the submission package: cSDRG (SDTM) and ADRG (ADaM) as PDF.

FDA Study Data Technical Conformance Guide §2.2/§4.1.2: the tabulation and analysis data
reviewer's guides are PDF files beside define.xml (``csdrg.pdf`` in tabulations/sdtm,
``adrg.pdf`` in analysis/adam/datasets). The section plan follows the PHUSE cSDRG/ADRG
templates, filled only from what the build knows:

1. Introduction: study id, title, protocol, sponsor, data cut, standards (SDTMIG 3.4 /
   ADaMIG 1.3), the CDISC CT packages and the coding dictionaries (study.yaml
   ``dictionaries``);
2. Protocol description: trial summary (TS parameters), arms and elements (TA, TE);
3. Datasets: name, label, class, structure, keys, records, variables;
4. Derivations: each dataset's comment and the method text of every Derived variable;
   ADaM: each parameter (PARAMCD, PARAM and its ``parameters:`` method, else the data's
   PARAMCD/PARAM pairs);
5. Data conformance: the build's validation verdict, the findings that remain and the
   waived findings with the waiver's reason and approver (the "explanation of conformance
   findings"), for the datasets of that standard.

Deterministic bytes: no clock anywhere; the PDF's CreationDate is the data cut, the content
streams are left uncompressed (so the text can be checked) and fpdf2's /ID is a hash of the
content. Text is set in the PDF core font Helvetica (Latin-1): other characters are
transliterated (≥ -> >=) or replaced by "?".
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

GUIDES = {"SDTM": ("csdrg.pdf", "Clinical Study Data Reviewer's Guide"),
          "ADaM": ("adrg.pdf", "Analysis Data Reviewer's Guide")}
IG_NAMES = {"SDTM": "SDTMIG 3.4 (SDTM v2.0)", "ADaM": "ADaMIG 1.3 (ADaM v2.1)"}
_TRANSLIT = {"≥": ">=", "≤": "<=", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"',
             "…": "...", "→": "->", "←": "<-", "≠": "!=", "•": "-", "\u00a0": " ", "−": "-"}


def _latin1(text) -> str:
    s = "" if text is None else str(text)
    for a, b in _TRANSLIT.items():
        s = s.replace(a, b)
    return s.encode("latin-1", "replace").decode("latin-1")


class _Pdf:
    """A few layout primitives on fpdf2 (A4 portrait, Helvetica, numbered pages)."""

    def __init__(self, title: str, subject: str, author: str, created: dt.datetime):
        from fpdf import FPDF

        outer = self

        class Doc(FPDF):
            def footer(self):
                self.set_y(-12)
                self.set_font("Helvetica", size=8)
                self.cell(0, 5, _latin1(f"{outer.running}  -  page {self.page_no()}"), align="C")

        self.running = _latin1(subject)
        pdf = Doc(format="A4")
        pdf.set_compression(False)
        pdf.set_creation_date(created.replace(tzinfo=dt.timezone.utc))
        pdf.set_title(_latin1(title))
        pdf.set_subject(_latin1(subject))
        pdf.set_author(_latin1(author))
        pdf.set_creator("cdisc")
        pdf.set_auto_page_break(True, margin=16)
        pdf.set_margins(15, 15, 15)
        pdf.add_page()
        self.pdf = pdf

    def title(self, text: str, sub: list[str]) -> None:
        self.pdf.set_font("Helvetica", "B", 18)
        self.pdf.multi_cell(0, 9, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font("Helvetica", size=11)
        for line in sub:
            self.pdf.multi_cell(0, 6, _latin1(line), new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(4)

    def heading(self, text: str, level: int = 1) -> None:
        self.pdf.ln(3 if level == 1 else 1)
        self.pdf.set_font("Helvetica", "B", 14 if level == 1 else 11)
        self.pdf.multi_cell(0, 7, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font("Helvetica", size=9)

    def para(self, text: str) -> None:
        self.pdf.set_font("Helvetica", size=9)
        self.pdf.multi_cell(0, 4.6, _latin1(text), new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(1.5)

    def table(self, headers: list[str], rows: list[list], widths: tuple) -> None:
        if not rows:
            self.para("(none)")
            return
        self.pdf.set_font("Helvetica", size=8)
        with self.pdf.table(col_widths=widths, text_align="LEFT", line_height=4,
                            first_row_as_headings=True) as table:
            for row in [headers] + rows:
                r = table.row()
                for cell in row:
                    r.cell(_latin1(cell))
        self.pdf.ln(2)

    def output(self, path: Path) -> int:
        data = bytes(self.pdf.output())
        Path(path).write_bytes(data)
        return self.pdf.pages_count


def _results(build_dir: Path) -> dict | None:
    path = Path(build_dir) / "validation" / "results.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def _column(df, name: str) -> list[str]:
    return [str(v).strip() for v in df[name]] if name in df.columns else [""] * len(df)


def _trial_design(doc: _Pdf, datasets: dict) -> None:
    doc.heading("2. Protocol description")
    ts = datasets.get("TS")
    if ts is not None:
        doc.heading("2.1 Trial summary (TS)", 2)
        rows = [[c, p, v] for c, p, v in zip(_column(ts.data, "TSPARMCD"), _column(ts.data, "TSPARM"),
                                              _column(ts.data, "TSVAL"))]
        doc.table(["TSPARMCD", "Parameter", "Value"], rows, (25, 60, 95))
    ta = datasets.get("TA")
    if ta is not None:
        doc.heading("2.2 Trial arms (TA)", 2)
        cols = ["ARMCD", "ARM", "TAETORD", "ETCD", "ELEMENT", "EPOCH"]
        rows = [list(r) for r in zip(*(_column(ta.data, c) for c in cols))]
        doc.table(cols, rows, (18, 50, 16, 18, 48, 30))
    te = datasets.get("TE")
    if te is not None:
        doc.heading("2.3 Trial elements (TE)", 2)
        cols = ["ETCD", "ELEMENT", "TESTRL", "TEENRL"]
        rows = [list(r) for r in zip(*(_column(te.data, c) for c in cols))]
        doc.table(cols, rows, (18, 42, 60, 60))


def _datasets_section(doc: _Pdf, group: list, number: str) -> None:
    doc.heading(f"{number}. Datasets")
    rows = []
    for ds in group:
        m = ds.meta
        rows.append([f"{ds.name} ({ds.path.name})", m.label, m.class_ or "", m.structure or "",
                     ", ".join(m.keys), str(len(ds.data)), str(len(m.variables))])
    doc.table(["Dataset", "Label", "Class", "Structure", "Keys", "Records", "Vars"], rows,
              (24, 32, 26, 38, 38, 12, 10))


def _derivations(doc: _Pdf, group: list, number: str, parameters: dict) -> None:
    doc.heading(f"{number}. Derivations and dataset notes")
    for ds in group:
        m = ds.meta
        derived = [v for v in m.variables if v.method]
        params = parameters.get(ds.name)
        if not (m.comment or derived or params or "PARAMCD" in ds.data.columns):
            continue
        doc.heading(f"{ds.name} - {m.label}", 2)
        if m.comment:
            doc.para(m.comment)
        if "PARAMCD" in ds.data.columns:
            if params:
                rows = [[p.paramcd, p.param, p.method + (f" Note: {p.comment}" if p.comment else "")]
                        for p in params]
            else:
                pairs = dict(zip(_column(ds.data, "PARAMCD"), _column(ds.data, "PARAM")))
                rows = [[c, n, "see AVAL/AVALC derivation"] for c, n in sorted(pairs.items())]
            doc.table(["PARAMCD", "PARAM", "Definition"], rows, (22, 55, 103))
        if derived:
            doc.table(["Variable", "Label", "Method"],
                      [[v.name, v.label, v.method] for v in derived], (22, 45, 113))


def _conformance(doc: _Pdf, results: dict | None, names: set[str], number: str) -> tuple[int, int]:
    doc.heading(f"{number}. Data conformance summary")
    if results is None:
        doc.para("The build has no validation results (validation/results.json): the package "
                 "was made from an unvalidated build.")
        return 0, 0
    counts = results.get("counts", {})
    sev = counts.get("by_severity", {})
    doc.para(f"Validation verdict: {results.get('verdict') or 'n/a'}. Whole build: "
             f"{sev.get('error', 0)} error(s), {sev.get('warning', 0)} warning(s), "
             f"{sev.get('notice', 0)} notice(s), {counts.get('waived', 0)} waived finding(s). "
             "Checks: the CDISC CORE rules, the toolkit's conformance and plausibility rules and "
             "the define.xml checks (validation/rules.yaml).")
    findings = [f for f in results.get("findings", []) if f.get("dataset") in names]
    doc.heading(f"{number}.1 Findings that remain", 2)
    doc.table(["Rule", "Severity", "Dataset", "Variable", "Subject", "Message"],
              [[f.get("rule"), f.get("severity"), f.get("dataset"), f.get("variable") or "",
                f.get("usubjid") or "", f.get("message") or ""] for f in findings],
              (24, 16, 16, 18, 32, 74))
    waived = [f for f in results.get("waived", []) if f.get("dataset") in names]
    doc.heading(f"{number}.2 Waived findings and their explanation", 2)
    doc.table(["Rule", "Dataset", "Variable", "Subject", "Finding", "Explanation (approved by)"],
              [[f.get("rule"), f.get("dataset"), f.get("variable") or "", f.get("usubjid") or "",
                f.get("message") or "", f"{(f.get('waiver') or {}).get('reason', '')} "
                f"({(f.get('waiver') or {}).get('approved_by', 'n/a')})"] for f in waived],
              (22, 14, 16, 28, 35, 65))
    return len(findings), len(waived)


def _baseline_text(specs_dir: Path) -> str | None:
    """Which DM reference each --LOBXFL is computed against, from the SDTM specs' baseline_flag
    rules (study-agnostic: the study's own specs say it; ADaM baselines are in the ADRG)."""
    from cdisc.pipeline import load_domain_specs

    refs: dict[str, list[str]] = {}
    for name, (spec, _) in sorted(load_domain_specs(specs_dir).items()):
        for var in spec.variables:
            if var.baseline_flag is not None:
                refs.setdefault(var.baseline_flag.reference, []).append(f"{name}.{var.name}")
    if not refs:
        return None
    parts = [f"{', '.join(vs)}: the last result on or before DM.{ref}" for ref, vs in sorted(refs.items())]
    return ("Baseline flags (SDTMIG 3.4 --LOBXFL): " + "; ".join(parts) + ". ADaM baselines (ABLFL) "
            "are derived in the analysis datasets and may use another reference; see the ADRG.")


def write_guide(standard: str, path: Path, *, build_dir: Path, specs_dir: Path,
                datasets: dict) -> dict:
    """Write the cSDRG (``standard`` SDTM) or ADRG (ADaM) of a build as PDF.

    Args:
        standard: SDTM or ADaM.
        path: the PDF to write (csdrg.pdf / adrg.pdf).
        build_dir, specs_dir: the build and its specs.
        datasets: the build read by :func:`cdisc.define.from_build.read_build`.

    Returns:
        ``{"pages", "findings", "waived"}`` for the package manifest.
    """
    from cdisc.ct import load_terminology
    from cdisc.define.from_build import _adam_specs
    from cdisc.study import load_study

    study = load_study(Path(specs_dir))
    ct = load_terminology(Path(specs_dir))
    file, title = GUIDES[standard]
    group = sorted((d for d in datasets.values() if d.standard == standard),
                   key=lambda d: (d.name != "ADSL", (d.meta.class_ or ""), d.name))
    doc = _Pdf(f"{study.studyid} {title}", f"{study.studyid} {title}", study.sponsor or "",
               study.created)
    doc.title(title, [f"Study {study.studyid}: {study.title.strip()}",
                      f"Protocol: {study.protocol or study.studyid}    Sponsor: {study.sponsor or 'n/a'}",
                      f"Data cut: {study.data_cut.isoformat()}    Generated by cdisc from the build "
                      "and the study specs"])
    doc.heading("1. Introduction")
    doc.para(f"This guide describes the {standard} datasets of study {study.studyid} submitted "
             f"with define.xml (Define-XML 2.1) in the same folder. Standard: {IG_NAMES[standard]}.")
    ct_rows = [[p.kind.upper(), p.version] for p in ct.packages]
    dict_rows = [[k, v] for k, v in sorted(study.dictionaries.items())]
    doc.table(["Controlled terminology", "Version"], ct_rows + [[f"Dictionary {k}", v] for k, v in dict_rows],
              (90, 90))
    if standard == "SDTM":
        _trial_design(doc, datasets)
        text = _baseline_text(Path(specs_dir))
        if text:
            doc.para(text)
        number = 3
        parameters = {}
    else:
        parameters = {n: list(s.parameters) for n, s in _adam_specs(Path(specs_dir)).items()
                      if s.parameters}
        number = 2
    _datasets_section(doc, group, str(number))
    _derivations(doc, group, str(number + 1), parameters)
    n_find, n_waived = _conformance(doc, _results(build_dir), {d.name for d in group}, str(number + 2))
    pages = doc.output(path)
    return {"pages": pages, "findings": n_find, "waived": n_waived}


def package_documents(build_dir: Path, specs_dir: Path, dirs: dict[str, Path],
                      rel_dirs: dict[str, str], datasets: dict, echo=None
                      ) -> tuple[list[dict], set[str]]:
    """Put the documents define.xml links to beside it; say which are missing.

    Args:
        dirs / rel_dirs: standard -> its m5 folder (absolute / relative to the package).
        echo: called with a one-line message for each missing document (the CLI's stderr).

    Returns:
        ``(manifest entries, hrefs present)``: per document of
        :data:`cdisc.define.from_build.DOCUMENTS` ``{"file", "title", "included",
        "source"}`` (``specs/docs/<file>`` when the study supplies it, ``generated`` for a
        guide written here, None when missing) and ``pages`` for a generated guide.

    Steps: 1. a file in ``specs/docs/`` (acrf.pdf, csdrg.pdf, adrg.pdf) is copied and wins;
    2. otherwise csdrg.pdf / adrg.pdf are generated (:func:`write_guide`); 3. acrf.pdf is
    never generated: it is listed ``included: false`` and define.xml does not link it.
    """
    import shutil

    from cdisc.define.from_build import DOCUMENTS

    entries, present = [], set()
    generated = {file: std for std, (file, _) in GUIDES.items()}
    for std, folder in sorted(dirs.items()):
        for doc in DOCUMENTS[std]:
            src = Path(specs_dir) / "docs" / doc.href
            entry = {"file": f"{rel_dirs[std]}/{doc.href}", "title": doc.title}
            if src.is_file():
                shutil.copyfile(src, folder / doc.href)
                entry.update(included=True, source=f"specs/docs/{doc.href}")
            elif generated.get(doc.href) == std:
                info = write_guide(std, folder / doc.href, build_dir=build_dir,
                                   specs_dir=specs_dir, datasets=datasets)
                entry.update(included=True, source="generated", pages=info["pages"])
            else:
                entry.update(included=False, source=None)
                if echo is not None:
                    echo(f"cdisc package: {doc.href} ({doc.title}) is missing: not in "
                         f"{Path(specs_dir) / 'docs'}; define.xml does not link it and "
                         "manifest.json lists it as not included")
            if entry["included"]:
                present.add(doc.href)
            entries.append(entry)
    return entries, present
