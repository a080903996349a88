"""Writing workbooks with the same bytes for the same content.

openpyxl stamps ``docProps/core.xml`` with the time of saving and the zip entries with the
local clock. :func:`save` pins both to a given moment (the study's data cut), so a workbook
made twice from the same results or specs is byte-identical (a reviewer can hash it).
"""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

EPOCH = dt.datetime(1980, 1, 1)        # the earliest time a zip entry can hold
HEADER_FILL = PatternFill("solid", fgColor="DCE3EC")
HEADER_FONT = Font(bold=True)
WRAP = Alignment(wrap_text=True, vertical="top")


def _w3c(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def save(wb: Workbook, path: Path, when: dt.datetime | None) -> int:
    """Save ``wb`` to ``path`` with core properties and zip times pinned to ``when``
    (see :func:`to_bytes`); the file is replaced in one step. Returns its size."""
    return write(path, to_bytes(wb, when))


def write(path: Path, data: bytes) -> int:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)


def to_bytes(wb: Workbook, when: dt.datetime | None) -> bytes:
    """The bytes of ``wb`` with core properties and zip times pinned to ``when``.

    Steps: 1. created/modified of the core properties = ``when`` (openpyxl overwrites
    ``modified`` at save time, so step 3 puts it back); 2. save into memory; 3. copy every
    zip entry in the same order with the date ``when`` (never before 1980, the zip epoch)
    and the modified timestamp of ``docProps/core.xml`` replaced.
    """
    when = max(when or EPOCH, EPOCH)
    wb.properties.created = when
    wb.properties.modified = when
    wb.properties.creator = "cdisc"
    wb.properties.lastModifiedBy = None
    buf = io.BytesIO()
    wb.save(buf)
    out = io.BytesIO()
    stamp = _w3c(when)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>" + stamp.encode() + rb"\g<2>", data)
                data = re.sub(rb"(<dcterms:created[^>]*>)[^<]*(</dcterms:created>)",
                              rb"\g<1>" + stamp.encode() + rb"\g<2>", data)
            zi = zipfile.ZipInfo(info.filename, date_time=when.timetuple()[:6])
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, data)
    return out.getvalue()


MAX_ROWS = 1_048_575          # Excel's rows per sheet, less the header


MAX_CELL = 32_767             # characters Excel keeps in a cell (it cuts longer text when it saves)


def _clean(value, escape: bool):
    """Text Excel can hold: no control characters other than tab/newline, at most 32,767
    characters. ``escape`` (findings, evidence shown as it is): control characters are written
    as ``\\x07`` and longer text is cut with a note; else (specs, which must come back
    unchanged) either is refused."""
    if not isinstance(value, str):
        return value
    if ILLEGAL_CHARACTERS_RE.search(value):
        if not escape:
            raise ValueError(f"text with a control character cannot go into a workbook: {value!r}")
        value = ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    if len(value) > MAX_CELL:
        if not escape:
            raise ValueError(f"text of {len(value):,} characters does not fit in an Excel cell ({MAX_CELL:,}): "
                             f"{value[:60]!r}...")
        note = f" ... [cut: {len(value):,} characters]"
        value = value[: MAX_CELL - len(note)] + note
    return value


def table(wb: Workbook, title: str, header: list[str], rows: list[list], widths: dict[str, int] | None = None,
          wrap: tuple[str, ...] = (), escape: bool = True, choices: dict[str, list[str]] | None = None):
    """A sheet: a header row (bold, filled, frozen, filtered) and the rows below it.

    ``choices``: columns whose cells are one of a few values (type: Char/Num) get a drop-down
    list that refuses anything else typed (for the rows there and 500 more).

    ``wb`` is a write-only workbook (rows are streamed: a 120,000-finding sheet in seconds).
    Text is always text (a leading '=' is not a formula).
    """
    if len(rows) > MAX_ROWS:
        raise ValueError(f"{len(rows):,} rows do not fit in one Excel sheet ({MAX_ROWS:,})")
    ws = wb.create_sheet(title)
    for j, h in enumerate(header, 1):
        width = (widths or {}).get(h)
        if width is None:
            longest = max([len(str(h))] + [len(str(r[j - 1])) for r in rows[:200] if r[j - 1] is not None])
            width = min(60, max(8, longest + 2))
        ws.column_dimensions[get_column_letter(j)].width = width
    ws.freeze_panes = "A2"
    for h, values in (choices or {}).items():
        text = ",".join(values)
        if h in header and len(text) <= 250:
            col = get_column_letter(header.index(h) + 1)
            dv = DataValidation(type="list", formula1=f'"{text}"', allow_blank=True, showErrorMessage=True,
                                errorTitle=h, error=f"{h} is one of: {', '.join(values)}")
            dv.add(f"{col}2:{col}{len(rows) + 501}")
            ws.data_validations.append(dv)
    if header:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{max(1, len(rows) + 1)}"
    head = []
    for h in header:
        c = WriteOnlyCell(ws, value=h)
        c.font, c.fill = HEADER_FONT, HEADER_FILL
        head.append(c)
    ws.append(head)
    wrapped = {j for j, h in enumerate(header) if h in wrap}
    for r in rows:
        out = []
        for j, v in enumerate(r):
            v = _clean(v, escape)
            if isinstance(v, str) and (v.startswith("=") or j in wrapped):
                c = WriteOnlyCell(ws, value=v)
                c.data_type = "s"
                if j in wrapped:
                    c.alignment = WRAP
                out.append(c)
            else:
                out.append(v)
        ws.append(out)
    return ws


def read_table(ws) -> tuple[list[str], list[dict]]:
    """(header, rows as {header: value, "__row": sheet row}) of a sheet written by :func:`table`;
    blank rows skipped."""
    rows = ws.iter_rows(values_only=True)
    header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
    out = []
    for i, r in enumerate(rows, 2):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in r):
            continue
        out.append({**{h: v for h, v in zip(header, r) if h}, "__row": i})
    return header, out


_NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
       "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
       "rel": "http://schemas.openxmlformats.org/package/2006/relationships"}


def _col(ref: str) -> int:
    """'AB12' -> 28 (1-based column of a cell reference)."""
    n = 0
    for ch in ref:
        if not ch.isalpha():
            break
        n = n * 26 + (ord(ch.upper()) - 64)
    return n


def fast_rows(path: Path, sheet: str) -> list[list] | None:
    """The rows of one sheet read straight from the file's XML (lxml, streaming): about ten times
    faster than openpyxl for a large sheet. Cell values: shared, inline and formula-result text,
    numbers (int when integral text), booleans. Returns None when the sheet does not exist.

    Steps: 1. xl/workbook.xml and its relationships give the sheet's part; 2. the shared
    strings are read (rich text: the runs joined, phonetic runs left out); 3. each ``row`` is
    parsed as it streams, cells placed by their reference (empty cells are not stored).
    """
    from lxml import etree

    m = "{%s}" % _NS["m"]
    with zipfile.ZipFile(path) as z:
        wbx = etree.fromstring(z.read("xl/workbook.xml"))
        rid = next((s.get("{%s}id" % _NS["r"]) for s in wbx.iter(m + "sheet") if s.get("name") == sheet), None)
        if rid is None:
            return None
        rels = etree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
        target = next(r.get("Target") for r in rels.iter("{%s}Relationship" % _NS["rel"]) if r.get("Id") == rid)
        part = target.lstrip("/") if target.startswith("/") else "xl/" + target
        shared: list[str] = []
        if "xl/sharedStrings.xml" in z.namelist():
            for si in etree.fromstring(z.read("xl/sharedStrings.xml")).iter(m + "si"):
                shared.append("".join(t.text or "" for t in si.iter(m + "t")
                                      if t.getparent().tag != m + "rPh"))
        rows: list[list] = []
        with z.open(part) as fh:
            for _, row in etree.iterparse(fh, tag=m + "row"):
                cells: dict[int, object] = {}
                for j, c in enumerate(row.iter(m + "c"), 1):
                    ref, t = c.get("r"), c.get("t")
                    col = _col(ref) if ref else j
                    v = c.find(m + "v")
                    if t == "inlineStr":
                        val = "".join(x.text or "" for x in c.iter(m + "t"))
                    elif v is None or v.text is None:
                        continue
                    elif t == "s":
                        val = shared[int(v.text)]
                    elif t in ("str", "e"):
                        val = v.text
                    elif t == "b":
                        val = v.text.strip() == "1"
                    else:
                        txt = v.text.strip()
                        val = int(txt) if txt.lstrip("-").isdigit() else float(txt)
                    cells[col] = val
                r = int(row.get("r") or len(rows) + 1)
                while len(rows) < r - 1:
                    rows.append([])
                rows.append([cells.get(k) for k in range(1, max(cells, default=0) + 1)])
                row.clear()
        return rows


def fast_table(path: Path, sheet: str) -> tuple[list[str], list[dict]] | None:
    """:func:`read_table` of one sheet through :func:`fast_rows` (None: no such sheet)."""
    rows = fast_rows(path, sheet)
    if rows is None:
        return None
    header = [str(h).strip() if h is not None else "" for h in (rows[0] if rows else [])]
    out = []
    for i, r in enumerate(rows[1:], 2):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in r):
            continue
        r = r + [None] * (len(header) - len(r))           # empty cells at the end are not stored
        out.append({**{h: v for h, v in zip(header, r) if h}, "__row": i})
    return header, out
