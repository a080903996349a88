"""Reading raw CRF exports (CSV, XLSX, SAS7BDAT, XPT) into frames that remember where each row came from.

Every frame returned carries two bookkeeping columns:
``__file`` (the file name relative to the raw folder) and ``__row`` (the row number a
data manager would look up: the line a record starts on in a CSV (line breaks inside
quoted values and blank lines counted), the sheet row in XLSX, both counting the header
as 1; the record number in SAS files). Every message about a raw value names both.

Nothing is lost silently: a file whose structure does not hold together (a CSV record
with more or fewer fields than the header, broken quoting, NUL bytes, duplicate or
missing column names over data, data on several sheets or to the right of the header,
a truncated or corrupt SAS file) raises one ``InputError`` listing every such problem
of the file with its row and column, instead of being read "as far as it goes".
"""
from __future__ import annotations

import csv
import io
import itertools
import mmap
import operator
import re
import struct
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, Problem

EXTENSIONS = (".csv", ".xlsx", ".sas7bdat", ".xpt")
FILE_COL = "__file"
ROW_COL = "__row"
MAX_LISTED = 20       # problems listed one by one per kind and file; the rest are counted
NUL_HINT = "export the form again as a CSV text file"


def find_form(raw_dir: Path, form: str) -> Path:
    """The one file in ``raw_dir`` for a form, by name and any supported extension."""
    raw_dir = Path(raw_dir)
    if "/" in form or "\\" in form or form.startswith("."):
        raise InputError(f"form name {form!r} must be a plain file name without a folder")
    hits = [raw_dir / (form + ext) for ext in EXTENSIONS if (raw_dir / (form + ext)).is_file()]
    if not hits:
        raise InputError(
            f"no raw file for form {form!r} in {raw_dir}",
            hint=f"expected one of {', '.join(form + e for e in EXTENSIONS)}",
        )
    if len(hits) > 1:
        raise InputError(f"form {form!r} has more than one raw file: {[h.name for h in hits]}; keep one")
    return hits[0]


def read_raw(path: Path) -> pd.DataFrame:
    """Read one raw file by its extension.

    Every value comes back as text, blanks as "" (so "NA" stays the text "NA", as the site
    typed it), whatever the file type stored: the same export as CSV, XLSX, SAS7BDAT or XPT
    gives the same frame (see :func:`_as_text` for typed XLSX cells and SAS numbers/dates).
    Column names are stripped and upper-cased.

    Raises:
        InputError: the file cannot be read, or its structure would lose or shift data;
            all problems of the file in one error, each naming the file, the row (CSV
            line / sheet row, header = 1; SAS record number) and the column when known.
    """
    path = Path(path)
    ext = path.suffix.lower()
    try:
        if ext == ".csv":
            table = _read_csv(path)
        elif ext == ".xlsx":
            table = _read_xlsx(path)
        elif ext in (".sas7bdat", ".xpt"):
            table = _read_sas(path, ext)
        else:
            raise InputError(f"unsupported raw file type {ext!r}", file=path.name,
                             hint=f"use one of {', '.join(EXTENSIONS)}")
        return _finish(table, path.name)
    except InputError:
        raise
    except _NotUtf8 as exc:
        raise InputError(f"not UTF-8 text at byte {exc.offset}", file=path.name, row=exc.line,
                         hint="export the file as UTF-8") from None
    except Exception as exc:  # parser errors from pandas/openpyxl/readstat
        raise InputError(f"cannot read file: {type(exc).__name__}: {exc}", file=path.name,
                         hint="the file is damaged or not in the format its extension says; "
                              "export it again") from None


# ----------------------------------------------------------------------------- shared

@dataclass
class _Table:
    """What a format reader found, before the header checks common to all formats.

    ``frame`` has positional columns (0..len(names)-1) of text values, one row per data
    record (``None`` when the structure is too broken to read values); ``rows`` the row
    number of each; ``problems`` the structural problems found so far.
    """

    names: list[str]
    frame: pd.DataFrame | None
    rows: np.ndarray
    layout: str                     # "csv", "xlsx" or "sas": how positions are named
    header_row: int | None = None   # line / sheet row of the header; None for SAS files
    problems: list[Problem] = field(default_factory=list)


def _position(layout: str, p: int) -> str:
    """How a data manager finds column position ``p`` (0-based) in the file."""
    if layout == "xlsx":
        return f"column {_letter(p)}"
    if layout == "sas":
        return f"variable {p + 1}"
    return f"field {p + 1}"


def _letter(p: int) -> str:
    """Spreadsheet column letter of 0-based position ``p`` (0 -> A, 26 -> AA)."""
    out = ""
    p += 1
    while p:
        p, r = divmod(p - 1, 26)
        out = chr(65 + r) + out
    return out


def _preview(value: str, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _listed(problems: list[Problem], hits, make, rest) -> None:
    """One Problem per hit for the first MAX_LISTED hits, then ``rest(n_more, n_all)``."""
    total = len(hits)
    for h in hits[:MAX_LISTED]:
        problems.append(make(h))
    if total > MAX_LISTED:
        problems.append(rest(total - MAX_LISTED, total))


def _finish(t: _Table, file: str) -> pd.DataFrame:
    """Header checks common to all formats, then the frame with ``__file`` / ``__row``.

    1. names are stripped and upper-cased;
    2. a column without a name is dropped when it is blank in every row (a trailing
       delimiter, an empty spreadsheet column); a value in such a column is an error
       naming its row and column position (it would be lost);
    3. two columns with the same name (after step 1: ``AETERM`` and `` aeterm``) are an
       error naming both positions: a spec could not tell which one it means;
    4. every problem (the format reader's and these) is raised in one InputError.
    """
    problems = list(t.problems)
    names = [str(n).strip().upper() for n in t.names]
    keep = [p for p, n in enumerate(names) if n]
    last_named = keep[-1] if keep else -1
    if t.frame is not None:
        for p, n in enumerate(names):
            if n:
                continue
            col = t.frame.iloc[:, p]
            filled = np.flatnonzero(col.str.strip().ne("").to_numpy(dtype=bool))
            if not len(filled):
                continue
            values = col.to_numpy(dtype=object)
            _listed(problems, filled, lambda i, p=p, v=values: _unnamed_value(t, file, p, i, v[i], last_named),
                    lambda more, total, p=p: Problem(
                        f"{more} more values in {_position(t.layout, p)}, which has no name in the "
                        f"header ({total} in all)", file=file, column=_column_ref(t.layout, p),
                        hint="name the column in the header, or remove the values"))
    seen: dict[str, list[int]] = {}
    for p in keep:
        seen.setdefault(names[p], []).append(p)
    for name, where in seen.items():
        if len(where) > 1:
            places = " and ".join(f"{_position(t.layout, p)} ({str(t.names[p])!r})" for p in where)
            problems.append(Problem(
                f"column name {name} appears {len(where)} times in the header: {places}",
                file=file, row=t.header_row, column=name,
                hint="rename or remove the extra column; a spec could not tell which one it means"))
    if problems:
        raise InputError(problems)
    if t.frame is None:  # pragma: no cover - a reader returns no frame only with problems
        raise InputError("cannot read file", file=file)
    df = t.frame.iloc[:, keep].copy() if len(keep) != t.frame.shape[1] else t.frame
    df.columns = [names[p] for p in keep]
    df = df.reset_index(drop=True)
    df[FILE_COL] = file
    df[ROW_COL] = np.asarray(t.rows, dtype=np.int64)
    return df


def _column_ref(layout: str, p: int) -> str | None:
    return _letter(p) if layout == "xlsx" else None


def _unnamed_value(t: _Table, file: str, p: int, i: int, value: str, last_named: int) -> Problem:
    row = int(t.rows[i])
    hint = "name the column in the header, or remove the value"
    if t.layout == "xlsx":
        where = (f" (to the right of the last header cell {_letter(last_named)}{t.header_row})"
                 if p > last_named >= 0 else "")
        return Problem(f"cell {_letter(p)}{row} holds {_preview(value)} but header cell "
                       f"{_letter(p)}{t.header_row} is empty{where}",
                       file=file, row=row, column=_letter(p), hint=hint)
    if t.layout == "csv":
        return Problem(f"field {p + 1} holds {_preview(value)} but the header (line "
                       f"{t.header_row}) has no name for field {p + 1}", file=file, row=row,
                       hint=hint)
    return Problem(f"variable {p + 1} holds {_preview(value)} but has no name", file=file,
                   row=row, hint=hint)


# -------------------------------------------------------------------------------- CSV

class _NotUtf8(Exception):
    def __init__(self, offset: int, line: int):
        self.offset, self.line = offset, line


def _breaks(text: str) -> int:
    """Line breaks in ``text`` as an editor counts them: \\r\\n, \\n or a lone \\r."""
    return text.count("\n") + text.count("\r") - text.count("\r\n")


@contextmanager
def _field_limit(size: int):
    """Let one CSV value be as long as the whole file (the csv module stops at 128 KiB:
    an unclosed quote would then be reported as a too-long field, not as what it is)."""
    old = csv.field_size_limit()
    csv.field_size_limit(max(old, size + 1))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _reader(text: str):
    """The CSV parser whose idea of records and fields every check uses.

    RFC 4180 / Excel dialect, ``strict``: text after a closing quote (``"ab"cd``) and a
    quote never closed are errors instead of being glued on or swallowing the rest of the
    file. ``newline=""`` hands it \\r\\n, \\n and lone \\r line ends untranslated, so
    values keep their line breaks and ``line_num`` counts lines as an editor does.
    """
    return csv.reader(io.StringIO(text, newline=""), strict=True)


def _csv_shape(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Field count and last line of every record (blank lines are records of 0 fields).

    One pass of the csv module, iterated in C: ``zip`` takes a record (its length) and
    then the reader's ``line_num`` right after it, so no Python code runs per record.
    Raises ``csv.Error`` on broken quoting (the caller then scans record by record).
    """
    reader = _reader(text)
    pairs = zip(map(len, reader), map(operator.attrgetter("line_num"), itertools.repeat(reader)))
    flat = np.fromiter(itertools.chain.from_iterable(pairs), dtype=np.int64)
    shape = flat.reshape(-1, 2)
    return shape[:, 0].copy(), shape[:, 1].copy()


_QUOTE, _COMMA, _LF, _CR = 34, 44, 10, 13
_CHUNK = 1 << 20


def _csv_shape_bytes(b: np.ndarray):
    """``_csv_shape`` computed from the UTF-8 bytes with numpy, or None when it cannot be.

    Only four bytes shape a CSV: quote, comma, LF and CR (UTF-8 never uses them inside a
    multi-byte character). Their positions are found in 1 MiB chunks; the rest works
    on that short list:

    1. a byte is inside a quoted value when an odd number of quotes precede it; that
       holds when every quote opens a value (after a comma, a line end or at the start),
       closes one (before a comma, a line end or at the end) or is one of a doubled
       pair inside one, which is checked; any other quote (``5" tall``, ``"ab"cd``, an
       unclosed quote) returns None and the csv module decides;
    2. line breaks are LF, and CR not followed by LF; those outside quotes end records;
    3. a record's field count is 1 + its commas outside quotes, 0 for an empty line; its
       last line is 1 + the line breaks before its terminator.

    Returns (counts, ends, rstart, rend): per record, the fields, the last line and the
    byte range of its text (without the line end). Equal to ``_csv_shape`` whenever it
    is not None (tested against it on random text).
    """
    n = len(b)
    counts, ends, tstarts, quotes = [], [], [], []
    parity = commas = lines = 0
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        c = b[lo:hi]
        s = np.flatnonzero((c == _QUOTE) | (c == _COMMA) | (c == _LF) | (c == _CR))
        kind = c[s]
        isq = kind == _QUOTE
        before = np.cumsum(isq) + parity           # quotes up to each special byte
        outside = (before & 1) == 0
        if isq.any():
            quotes.append(s[isq] + lo)
            parity = int(before[-1]) & 1
        lf = kind == _LF
        cr = kind == _CR
        lone_cr = cr.copy()
        lone_cr[:-1] &= ~((s[1:] == s[:-1] + 1) & lf[1:])
        if len(s) and s[-1] == hi - lo - 1 and hi < n and b[hi] == _LF:
            lone_cr[-1] = False
        brk = lf | lone_cr
        term = brk & outside
        comma = (kind == _COMMA) & outside
        t = np.flatnonzero(term)
        if not len(s):
            continue
        before_t = np.cumsum(comma)                # commas up to each special byte
        at = before_t[t]
        per = np.diff(at, prepend=0)               # commas of each record ending here
        if len(t):
            per[0] += commas
            commas = int(before_t[-1] - at[-1])
        else:
            commas += int(before_t[-1])
        counts.append(per + 1)
        breaks = np.cumsum(brk)
        ends.append(breaks[t] + lines)             # 1 + the line breaks before it
        tstarts.append(s[t] + lo)
        lines += int(breaks[-1])
    q = np.concatenate(quotes) if quotes else np.zeros(0, dtype=np.int64)
    if len(q) % 2:
        return None
    if len(q):
        closing = np.zeros(len(q), dtype=bool)
        closing[1::2] = True                        # the 2nd, 4th, ... quote
        prev = b[np.maximum(q - 1, 0)].copy()
        prev[q == 0] = _LF
        nxt = b[np.minimum(q + 1, n - 1)].copy()
        nxt[q == n - 1] = _COMMA
        doubled = np.zeros(len(q), dtype=bool)      # a closing-rank quote right before the next
        doubled[:-1] = closing[:-1] & (q[1:] == q[:-1] + 1)
        after_doubled = np.zeros(len(q), dtype=bool)
        after_doubled[1:] = doubled[:-1]
        starts_value = (prev == _COMMA) | (prev == _LF) | (prev == _CR)
        ends_value = (nxt == _COMMA) | (nxt == _LF) | (nxt == _CR)
        if not np.where(closing, ends_value | doubled, starts_value | after_doubled).all():
            return None
    tpos = np.concatenate(tstarts) if tstarts else np.zeros(0, dtype=np.int64)
    counts = np.concatenate(counts + [np.array([commas + 1])]).astype(np.int64)
    ends = np.concatenate(ends + [np.array([lines + 1])]).astype(np.int64)
    rstart = np.concatenate(([0], tpos + 1))
    crlf = (tpos > 0) & (b[tpos] == _LF) & (b[np.maximum(tpos - 1, 0)] == _CR)
    rend = np.concatenate((tpos - crlf, [n]))
    if rstart[-1] >= n:                             # the text ends with a line end
        rstart, rend, counts, ends = rstart[:-1], rend[:-1], counts[:-1], ends[:-1]
    counts[rend == rstart] = 0
    return counts, ends, rstart, rend


@dataclass
class _Scan:
    """Record-by-record scan of a CSV that is broken (quoting) or holds NUL bytes."""

    counts: np.ndarray              # fields per record; -1 for a record with broken quoting
    ends: np.ndarray                # last line of each record
    header: list[str] | None
    quoting: list[tuple[int, str]]  # (record index, csv error) for broken quoting
    nul: list[tuple[int, int, int]]  # (record index, field index, line offset in the record)


def _csv_scan(text: str) -> _Scan:
    """The slow path, only for files that are already known to be broken.

    After a quoting error the csv reader resumes on the next line, so every broken
    record is found, not only the first.
    """
    reader = _reader(text)
    counts: list[int] = []
    ends: list[int] = []
    header = None
    quoting: list[tuple[int, str]] = []
    nul: list[tuple[int, int, int]] = []
    while True:
        before = reader.line_num
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            quoting.append((len(counts), str(exc)))
            counts.append(-1)
            ends.append(reader.line_num)
            if reader.line_num == before:     # no progress: nothing more can be read
                break
            continue
        k = len(counts)
        counts.append(len(rec))
        ends.append(reader.line_num)
        if header is None and rec:
            header = rec
        for j, value in enumerate(rec):
            at = value.find("\x00")
            if at >= 0:
                nul.append((k, j, _breaks(",".join(rec[:j] + [value[:at]]))))
    return _Scan(np.asarray(counts, dtype=np.int64), np.asarray(ends, dtype=np.int64), header,
                 quoting, nul)


def _read_csv(path: Path) -> _Table:
    """A CSV as text, with the line number each record starts on (header = line 1).

    Records are not lines: a quoted value may hold line breaks (free-text comments), and
    blank lines are skipped, so the record index alone would point later messages at the
    wrong line. Steps:
    1. decode as UTF-8 (a BOM, as Excel writes it, is dropped so the first column keeps
       its name); an undecodable byte is reported with its offset and line;
    2. each record's field count and last line (so its first line: the line after the
       previous record), as the csv module (strict Excel dialect) sees them: from the
       bytes with numpy (:func:`_csv_shape_bytes`), or, when quotes are used in other
       ways than RFC 4180 quoting, from one C-level pass of the csv module
       (:func:`_csv_shape`); blank lines are records without fields and are dropped
       (they hold no data); the first record with fields is the header;
    3. every record whose field count differs from the header's is an error naming its
       line (fewer fields would be read as blanks, more would shift every value);
       broken quoting and NUL bytes (a binary or corrupt file) are errors too, found by
       a record-by-record scan that runs only for such files (:func:`_csv_scan`);
    4. a well-formed file is parsed for its values by pandas' C parser (fast), which must
       see the same records and header as the csv module (checked; if it does not, the
       csv module's records are used).
    """
    data = Path(path).read_bytes()
    file = Path(path).name
    skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    decoded: list[str] = []

    def text() -> str:
        """The whole file as text, decoded once when a check or a slow path needs it (a
        well-formed file is only decoded field by field, by pandas)."""
        if not decoded:
            try:
                decoded.append(data[skip:].decode("utf-8"))
            except UnicodeDecodeError as exc:
                pos = exc.start + skip
                raise _NotUtf8(pos, data[:pos].count(b"\n") + 1) from None
        return decoded[0]

    problems: list[Problem] = []
    scan = shape = None
    if b"\x00" not in data:
        shape = _csv_shape_bytes(np.frombuffer(data, dtype=np.uint8, offset=skip))
    if shape is not None:
        counts, ends, rstart, rend = shape
        first = np.flatnonzero(counts > 0)
        header = None
        if len(first):
            h = int(first[0])
            try:
                head = data[skip + rstart[h]: skip + rend[h]].decode("utf-8")
            except UnicodeDecodeError:
                text()                                   # raises with the file offset
                raise
            with _field_limit(len(head)):
                header = next(_reader(head), None)
            if header is None or len(header) != counts[h]:   # pragma: no cover - never seen
                shape = None
    if shape is None:
        with _field_limit(len(text())):
            if b"\x00" not in data:
                try:
                    counts, ends = _csv_shape(text())
                except csv.Error:
                    scan = _csv_scan(text())
            else:
                scan = _csv_scan(text())
            if scan is None:
                header = next(filter(None, _reader(text())), None)
            else:
                counts, ends, header = scan.counts, scan.ends, scan.header
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = 1
        starts[1:] = ends[:-1] + 1
    if scan is not None:
        for k, message in scan.quoting:
            problems.append(_quoting_problem(file, int(starts[k]), int(ends[k]), message))
        if not scan.nul and b"\x00" in data:          # inside a record with broken quoting
            at = data.index(b"\x00")
            problems.append(Problem(f"NUL byte (\\x00) at byte {at}: the file is binary or corrupt",
                                    file=file, row=_breaks(data[skip:at].decode("utf-8")) + 1,
                                    hint=NUL_HINT))
    if header is None:
        if not problems:
            raise InputError("the file is empty: there is no header line", file=file,
                             hint="export the form again with its header line")
        raise InputError(problems)
    h = int(np.flatnonzero(counts > 0)[0])
    m = int(counts[h])
    if scan is not None:
        def nul_problem(hit):
            k, j, offset = hit
            column = (header[j].strip().upper() or None) if j < m and k != h else None
            what = f"field {j + 1}" + (" of the header" if k == h else "")
            return Problem(f"NUL byte (\\x00) in {what}: the file is binary or corrupt", file=file,
                           row=int(starts[k]) + offset, column=column, hint=NUL_HINT)

        _listed(problems, scan.nul, nul_problem, lambda more, total: Problem(
            f"{more} more values with NUL bytes ({total} in all)", file=file, hint=NUL_HINT))
    index = np.arange(len(counts))
    wrong = np.flatnonzero((index > h) & (counts > 0) & (counts != m))
    _listed(problems, wrong, lambda k: _field_count_problem(file, int(starts[k]), int(ends[k]),
                                                            int(counts[k]), m),
            lambda more, total: Problem(
                f"{more} more records whose number of fields differs from the header's {m} "
                f"({total} in all), on lines {_line_list(starts[wrong[MAX_LISTED:]])}",
                file=file, hint="every record must have one field per header column"))
    if problems:
        text()                    # a file that is not UTF-8 is reported as that, first
        return _Table(header, None, np.zeros(0, dtype=np.int64), "csv", int(starts[h]), problems)
    keep = (index > h) & (counts > 0)
    frame = _csv_values(data[skip:] if skip else data, text, m, counts, header, h, keep)
    return _Table(header, frame, starts[keep], "csv", int(starts[h]))


def _line_list(lines: np.ndarray, limit: int = 100) -> str:
    shown = ", ".join(str(int(x)) for x in lines[:limit])
    return shown + (", ..." if len(lines) > limit else "")


def _field_count_problem(file: str, start: int, end: int, n: int, m: int) -> Problem:
    span = f" (lines {start}-{end})" if end > start else ""
    if n > m:
        hint = "a value holding the delimiter must be quoted; or a column is missing from the header"
    else:
        hint = "fields are missing: a cut-off line, or a line break in an unquoted value"
    return Problem(f"the record has {n} fields, the header has {m}{span}", file=file, row=start,
                   hint=hint)


def _quoting_problem(file: str, start: int, end: int, message: str) -> Problem:
    if "end of data" in message:
        text = (f"a quoted value opened in the record starting on line {start} is never "
                f"closed: the rest of the file (to line {end}) would be read as one value")
        hint = "close the quote; a quote inside a quoted value is written twice (\"\")"
    else:
        text = f"broken quoting on line {end}: {message} (text after a closing quote)"
        hint = "a value holding quotes must be quoted as a whole, with each quote written twice (\"\")"
    return Problem(text, file=file, row=start, hint=hint)


def _csv_values(body: bytes, text, m: int, counts: np.ndarray, header: list[str], h: int,
                keep: np.ndarray) -> pd.DataFrame:
    """The values of a well-formed CSV, one positional text column per header field.

    pandas' C parser keeps blank lines as rows here (``skip_blank_lines=False``), so its
    rows are the csv module's records one to one: same number of records and the same
    header, or the csv module's own records are used (slower, never different). pandas
    decodes every field strictly as UTF-8; a byte that is not is reported by ``text()``.
    """
    try:
        df = pd.read_csv(io.BytesIO(body), encoding="utf-8", header=None, names=range(m),
                         dtype=str, keep_default_na=False, na_filter=False,
                         skip_blank_lines=False, engine="c")
    except UnicodeDecodeError:
        text()                                           # raises with the file offset
        df = None
    except (pd.errors.ParserError, ValueError):          # pragma: no cover - never seen
        df = None
    if df is not None and len(df) == len(counts) and df.iloc[h].tolist() == list(header):
        out = df.iloc[h + 1:] if keep[h + 1:].all() else df[keep]
        return out.reset_index(drop=True)
    with _field_limit(len(text())):
        return _csv_values_slow(text(), m, keep)


def _csv_values_slow(text: str, m: int, keep: np.ndarray) -> pd.DataFrame:
    """The same frame built from the csv module's records (used when pandas disagrees)."""
    records = list(itertools.compress(_reader(text), keep))
    columns = list(zip(*records)) if records else [()] * m
    return pd.DataFrame({p: pd.Series(np.asarray(c, dtype=object), dtype="str")
                         for p, c in enumerate(columns)}, index=pd.RangeIndex(len(records)))


# ------------------------------------------------------------------------------- XLSX

def _cell_text(value) -> str:
    """A spreadsheet cell as text, the way pandas' Excel reader shows it.

    Empty -> ""; text as typed; a whole number without ".0" (SITENUMBER 101.0 -> "101"),
    other numbers as their shortest text; a date cell "YYYY-MM-DD HH:MM:SS", a time
    "HH:MM:SS" (both shortened by :func:`_dates_as_text`); TRUE/FALSE -> "True"/"False";
    an error cell (#N/A, #DIV/0!) keeps its text, so it is reported rather than read as a
    blank.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _dates_as_text(text: pd.Series) -> pd.Series:
    """"YYYY-MM-DD 00:00:00" -> "YYYY-MM-DD" (a date cell or SAS date, which the ISO 8601
    date rule accepts) and "HH:MM:00" -> "HH:MM" (a time cell; pandas writes times as that
    text). A date with a time of day is left whole: a date rule reports it as malformed
    rather than guessing how to split it."""
    return (text.str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", r"\1", regex=True)
            .str.replace(r"^(\d{2}:\d{2}):00$", r"\1", regex=True))


def _read_xlsx(path: Path) -> _Table:
    """The one sheet of a workbook that holds data, cells as text, with sheet row numbers.

    1. every sheet is read (openpyxl, cached values); a sheet holds data when any cell is
       not blank; more than one such sheet is an error naming them (only one could be
       read: the others would be lost); one sheet with data is read whichever its place;
    2. cells become text (:func:`_cell_text`, :func:`_dates_as_text`), column by column;
    3. the first row with data is the header; blank rows are dropped, every other row
       keeps its sheet row number; cells below an empty header cell (e.g. to the right
       of the last header cell) are checked by :func:`_finish`.
    """
    from openpyxl import load_workbook

    file = path.name
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        with_data: list[str] = []
        chosen = None
        for ws in wb.worksheets:
            ws.reset_dimensions()
            rows = list(ws.iter_rows(values_only=True))
            columns = [_dates_as_text(pd.Series(list(map(_cell_text, col)), dtype="str"))
                       for col in itertools.zip_longest(*rows, fillvalue=None)]
            filled = np.zeros(len(rows), dtype=bool)
            for col in columns:
                filled |= col.str.strip().ne("").to_numpy(dtype=bool)
            if filled.any():
                with_data.append(ws.title)
                if chosen is None:
                    chosen = (columns, filled)
    finally:
        wb.close()
    if len(with_data) > 1:
        raise InputError(f"{len(with_data)} sheets hold data: "
                         f"{', '.join(repr(s) for s in with_data)}; only one can be read",
                         file=file, hint="keep one sheet per raw form: move the data to one "
                                         "sheet or delete the others")
    if chosen is None:
        raise InputError("the workbook is empty: no sheet holds a header row", file=file,
                         hint="export the form again with its header row")
    columns, filled = chosen
    h = int(np.flatnonzero(filled)[0])
    header = [c.iloc[h] for c in columns]
    keep = filled.copy()
    keep[: h + 1] = False
    frame = pd.DataFrame({p: c[keep].reset_index(drop=True) for p, c in enumerate(columns)},
                         index=pd.RangeIndex(int(keep.sum())))
    return _Table(header, frame, np.flatnonzero(keep) + 1, "xlsx", h + 1)


# -------------------------------------------------------------------------------- SAS

_RENAMED = re.compile(r"column '(?P<name>.*)' is duplicated, renamed to '(?P<new>.*)'")


def _read_sas(path: Path, ext: str) -> _Table:
    """A SAS7BDAT or XPT file through pyreadstat, checked not to have lost records.

    XPT: the structure is checked first (:func:`_check_xpt`) and gives the number of
    records the file holds; pyreadstat (ReadStat) silently drops trailing all-blank
    records, which are added back (blank values) when they are real records. SAS7BDAT:
    the row count the file header declares must equal the rows read. Variables that
    pyreadstat renames because their names repeat (``AETERM_duplicated1``) get their
    name back, so the header check reports the duplicate.
    """
    import pyreadstat

    file = path.name
    xpt = _check_xpt(path) if ext == ".xpt" else None
    reader = pyreadstat.read_sas7bdat if ext == ".sas7bdat" else pyreadstat.read_xport
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            df, meta = reader(str(path))
    except Exception as exc:
        raise InputError(f"cannot read the SAS file: {type(exc).__name__}: {exc}", file=file,
                         hint="the file is truncated, damaged or not a SAS file; export it again") from None
    original = {}
    for w in caught:
        m = _RENAMED.search(str(w.message))
        if m:
            original[m["new"]] = m["name"]
        else:                                  # pass on what pyreadstat says otherwise
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    names = [original.get(str(c), str(c)) for c in df.columns]
    n = len(df)
    if xpt is not None:
        if n != xpt.nonblank:
            raise InputError(f"{n} records were read, but the data area holds {xpt.nonblank} "
                             f"records (not counting trailing blank ones)", file=file,
                             hint="the file is damaged; export it again")
        if xpt.records > n:
            if xpt.numeric:
                raise InputError(
                    f"records {n + 1} to {xpt.records} are all blanks, which is not a valid "
                    f"value for the numeric variables", file=file, row=n + 1,
                    hint="the file is damaged; export it again")
            blank = pd.DataFrame({c: [""] * (xpt.records - n) for c in df.columns})
            df = pd.concat([df.astype(object), blank], ignore_index=True)
    else:
        declared = getattr(meta, "number_rows", None)
        if declared is not None and declared >= 0 and declared != n:
            raise InputError(f"the file header declares {declared} rows, but {n} could be read",
                             file=file, hint="the file is truncated or damaged; export it again")
    df = _as_text(df)
    df.columns = range(df.shape[1])
    return _Table(names, df, np.arange(1, len(df) + 1, dtype=np.int64), "sas")


# --------------------------------------------------------------------------- XPT check

_HEADER = re.compile(rb"HEADER RECORD\*{7}(?P<kind>[A-Z0-9 ]{8})HEADER RECORD!{7}(?P<digits>.{30})  ",
                     re.DOTALL)
_XPT_KINDS = {5: ("LIBRARY", "MEMBER", "DSCRPTR", "NAMESTR", "OBS"),
              8: ("LIBV8", "MEMBV8", "DSCPTV8", "NAMSTV8", "OBSV8")}
_NAMESTR = struct.Struct(">hhhh8s40s8shhh2s8shhi")


@dataclass
class _XptShape:
    version: int
    records: int        # records the data area holds
    nonblank: int       # up to the last record that is not all blanks (what ReadStat reads)
    numeric: bool       # any numeric variable


def _check_xpt(path: Path) -> _XptShape:
    """Check the structure of a SAS transport file (v5 or v8) before reading it.

    SAS TS-140 layout: 80-byte records; LIBRARY, real header, modified; MEMBER,
    DSCRPTR, two member records; NAMESTR header with the variable count, one 140- (or
    136-) byte NAMESTR per variable padded to 80; (v8: an optional LABELV8/LABELV9
    block); OBS header; then the observations, fixed-width records padded with blanks
    to a multiple of 80. Checked:

    1. the file is a whole number of 80-byte records (a cut anywhere else is found);
    2. each header record is the one expected, in order; the variable count is a number;
    3. every NAMESTR has a type (1 numeric, 2 character), a length (numeric 2-8,
       character >= 1) and a position equal to the sum of the lengths before it;
    4. the data area holds whole records plus only blank padding: bytes after the last
       whole record must be blanks, and fewer than 80 (more would be records);
    5. the data area holds no second MEMBER header (only one dataset would be read);
    6. v8: the observation count in the OBSV8 header equals the records found.

    Records are counted up to the last one that is not all blanks, and at least as many
    as the padding rule requires (blank records beyond the last 80 bytes are records).
    A v5 file cut exactly at a record boundary that is also a multiple of 80 is a valid
    shorter file: nothing in v5 records the number of observations.
    """
    file = path.name
    size = path.stat().st_size

    def fail(message: str, column: str | None = None):
        return InputError(message, file=file, column=column,
                          hint="the XPT file is truncated or damaged; export it again")

    if size == 0:
        raise fail("the file is empty")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        def record(i: int) -> bytes:
            return mm[80 * i: 80 * i + 80]

        def header(i: int, kind: str) -> re.Match:
            rec = record(i)
            m = _HEADER.fullmatch(rec)
            if len(rec) < 80 or not m or m["kind"].decode().strip() != kind:
                raise fail(f"record {i + 1} of the headers (bytes {80 * i}-{80 * i + 79}) is not "
                           f"the {kind} header record")
            return m

        first = _HEADER.fullmatch(record(0))
        kind = first["kind"].decode().strip() if first else ""
        version = 5 if kind == "LIBRARY" else 8 if kind == "LIBV8" else None
        if version is None:
            raise InputError("not a SAS transport (XPT) file: it does not start with the "
                             "LIBRARY header record", file=file,
                             hint="export the form as SAS XPORT (version 5 or 8)")
        if size % 80:
            raise fail(f"the file is {size} bytes, not a whole number of 80-byte records")
        names = _XPT_KINDS[version]
        member = header(3, names[1])
        nlen_text = member["digits"][26:30]
        if nlen_text not in (b"0140", b"0136"):
            raise fail(f"the MEMBER header gives a NAMESTR length of {nlen_text!r}, not 0140 or 0136")
        nlen = int(nlen_text)
        header(4, names[2])
        namestr = header(7, names[3])
        count = namestr["digits"][5:10]
        if not count.isdigit() or int(count) < 1:
            raise fail(f"the NAMESTR header gives {count!r} variables")
        nvar = int(count)
        start = 8 * 80
        end = start + nvar * nlen
        if end > size:
            raise fail(f"the file ends inside the NAMESTR records of its {nvar} variables")
        pos = 0
        numeric = False
        for i in range(nvar):
            raw = mm[start + i * nlen: start + i * nlen + 88]
            ntype, _, length, _, name, *_rest, npos = _NAMESTR.unpack(raw)
            label = name.decode("latin-1").strip() or f"variable {i + 1}"
            if ntype not in (1, 2):
                raise fail(f"variable {i + 1} ({label}) has type {ntype} in its NAMESTR record "
                           f"(1 numeric, 2 character)", column=label)
            if length < 1 or (ntype == 1 and not 2 <= length <= 8):
                raise fail(f"variable {i + 1} ({label}) has length {length} in its NAMESTR record",
                           column=label)
            if npos != pos:
                raise fail(f"variable {i + 1} ({label}) starts at byte {npos} of the observation "
                           f"in its NAMESTR record, but the variables before it end at byte {pos}",
                           column=label)
            numeric |= ntype == 1
            pos += length
        reclen = pos
        at = (end + 79) // 80
        if 80 * at + 80 > size:
            raise fail("the file ends before the OBS header record")
        if version == 8 and _HEADER.fullmatch(record(at)) and \
                _HEADER.fullmatch(record(at))["kind"].decode().strip() in ("LABELV8", "LABELV9"):
            at = _skip_labels(mm, at, nvar, fail)
        obs = header(at, names[4])
        data_start = 80 * (at + 1)
        d = size - data_start
        second = _find_aligned(mm, (b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!",
                                    b"HEADER RECORD*******MEMBV8  HEADER RECORD!!!!!!!"), data_start)
        if second is not None:
            raise InputError(f"the file holds more than one dataset: a second MEMBER header at "
                             f"byte {second}; only the first would be read", file=file,
                             hint="export one dataset per XPT file")
        full = d // reclen
        tail = mm[data_start + full * reclen: size]
        if tail.strip(b" "):
            raise fail(f"the data area ends with an incomplete record: {len(tail)} of its "
                       f"{reclen} bytes")
        nonblank = _last_nonblank(mm, data_start, reclen, full)
        least = (d - 80) // reclen + 1 if d else 0
        records = max(nonblank, least)
        declared = obs["digits"][:15]
        if version == 8 and declared.strip().isdigit() and declared.strip(b"0"):
            n = int(declared)
            if not (nonblank <= n <= full and d - n * reclen < 80):
                raise fail(f"the OBSV8 header declares {n} observations, but the data area holds "
                           f"{records}")
            records = n
    return _XptShape(version, records, nonblank, numeric)


def _skip_labels(mm, at: int, nvar: int, fail) -> int:
    """Skip a v8 LABELV8/LABELV9 block; return the record index after it."""
    m = _HEADER.fullmatch(mm[80 * at: 80 * at + 80])
    number = re.match(rb" *([0-9]{1,5})", m["digits"])     # "00003" or "3    "
    if not number:
        raise fail("the LABELV8 header has no label count")
    count = int(number[1])
    v9 = m["kind"].startswith(b"LABELV9")
    pos = 80 * (at + 1)
    width = 10 if v9 else 6
    for _ in range(count):
        part = mm[pos: pos + width]
        if len(part) < width:
            raise fail("the file ends inside the LABELV8 block")
        fields = struct.unpack(">" + "H" * (width // 2), part)
        if fields[0] >= nvar:
            raise fail(f"a LABELV8 entry names variable {fields[0] + 1} of {nvar}")
        pos += width + sum(fields[1:])
    return (pos + 79) // 80


def _find_aligned(mm, needles: tuple[bytes, ...], start: int) -> int | None:
    """First 80-byte-aligned offset >= start where one of ``needles`` begins."""
    for needle in needles:
        at = mm.find(needle, start)
        while at >= 0:
            if at % 80 == 0:
                return at
            at = mm.find(needle, at + 1)
    return None


def _last_nonblank(mm, data_start: int, reclen: int, full: int) -> int:
    """1 + index of the last record that is not all blanks (0 if none), scanning back."""
    if full == 0:
        return 0
    buf = np.frombuffer(mm, dtype=np.uint8, count=full * reclen, offset=data_start)
    stop = full
    block = max(1, (1 << 20) // reclen)
    while stop > 0:
        lo = max(0, stop - block)
        recs = buf[lo * reclen: stop * reclen].reshape(stop - lo, reclen)
        hit = np.flatnonzero((recs != 32).any(axis=1))
        if len(hit):
            return lo + int(hit[-1]) + 1
        stop = lo
    return 0


# ----------------------------------------------------------------------- text values

def _as_text(df: pd.DataFrame) -> pd.DataFrame:
    """SAS numeric/date values as the text a CSV export would hold.

    1. missing (NaN, NaT, None) -> "" (a CSV blank), never the text "nan";
    2. numbers as their shortest text, integers without ".0" (SITENUMBER 101.0 -> "101",
       so a Char variable assigned from it is "101", and AETOXGR 3.0 -> "3" matches CT);
    3. a date value (SAS DATE format; pandas shows "YYYY-MM-DD 00:00:00") ->
       "YYYY-MM-DD", which the ISO 8601 date rule accepts; a time value "HH:MM:00" -> "HH:MM".
    A date and time in one value is left as "YYYY-MM-DD HH:MM:SS", which a date rule reports
    as malformed rather than guessing how to split it.
    """
    cols = []
    for i in range(df.shape[1]):               # a loop over columns, each step vectorised
        col = df.iloc[:, i]
        missing = col.isna()
        if pd.api.types.is_float_dtype(col):
            text = col.astype("str").str.replace(r"\.0$", "", regex=True)
        else:
            text = col.astype("str")
        text = _dates_as_text(text.where(~missing, ""))
        cols.append(text.astype("str").rename(i))
    out = pd.concat(cols, axis=1) if cols else pd.DataFrame(index=df.index)
    out.columns = df.columns
    return out


def require_columns(df: pd.DataFrame, columns: set[str], *, file: str, key: str | None = None) -> None:
    """Every raw column a spec names must exist; list what the file has instead."""
    missing = sorted(c for c in columns if c not in df.columns)
    if missing:
        import difflib

        have = [c for c in df.columns if not c.startswith("__")]
        problems = []
        for col in missing:
            close = difflib.get_close_matches(col, have, n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"the file has: {', '.join(have)}"
            problems.append(Problem(f"column {col} named by the spec is missing", file=file,
                                    column=col, key=key, hint=hint))
        raise InputError(problems)
