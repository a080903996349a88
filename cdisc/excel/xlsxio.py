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


def _clean(value, escape: bool):
    """Text Excel can hold: control characters other than tab/newline cannot be in a cell.
    ``escape``: write them as ``\\x07`` (findings show evidence as it is); else refuse."""
    if isinstance(value, str) and ILLEGAL_CHARACTERS_RE.search(value):
        if not escape:
            raise ValueError(f"text with a control character cannot go into a workbook: {value!r}")
        return ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    return value


def table(wb: Workbook, title: str, header: list[str], rows: list[list], widths: dict[str, int] | None = None,
          wrap: tuple[str, ...] = (), escape: bool = True):
    """A sheet: a header row (bold, filled, frozen, filtered) and the rows below it.

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
