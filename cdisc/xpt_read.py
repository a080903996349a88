"""SAS XPORT (XPT) reader for transport versions 5 and 8, vectorised with numpy.

``read_xport(path)`` returns ``(DataFrame, XptMeta)``. It replaces
``pyreadstat.read_xport(path, disable_datetime_conversion=True)`` in validation and gives
the same frame (same columns, dtypes and values; floats bit for bit; see "Differences from
pyreadstat" below for the few files where it deliberately does not). Why: pyreadstat keeps
about 7 KB per character cell for small files (it grows every column in 100,000-row
buffers), so validating a 1.5 MB build folder peaked at 600 MB.

File layout (SAS TS-140; v8: "The SAS V8 transport format"): 80-byte records::

    LIBRARY (v8: LIBV8) header, real header (SAS version, OS, created), modified
    MEMBER (MEMBV8) header: the NAMESTR length (140, or 136 on VAX/VMS)
    DSCRPTR (DSCPTV8) header, member record 1 (dataset name: 8 bytes, v8 32), member
        record 2 (modified, dataset label 40, dataset type 8)
    NAMESTR (NAMSTV8) header: the number of variables
    one NAMESTR per variable (type, length, number, name 8, label 40, format name 8,
        width, decimals, justification, informat name 8, width, decimals, position;
        v8: long name 32, label length), the block padded to a multiple of 80
    v8 only, optional: LABELV8 (index, name length, label length, name, label) or
        LABELV9 (the same plus format and informat texts) for names > 8 and labels > 40
    OBS (OBSV8: the number of observations) header
    the observations: fixed-width records, no separators, padded with blanks to 80

How it reads (no Python loop per record):

1. The file's bytes are read once; headers and NAMESTRs are parsed with ``struct`` and
   checked as ``cdisc.rawio._check_xpt`` checks them (whole 80-byte records, the headers in
   order, types 1/2, numeric lengths 2-8, positions = the sum of the lengths before,
   LABELV8/LABELV9 entries inside the file, one dataset per file, the data area whole
   records plus blank padding < 80 bytes, the v8 OBSV8 count).
2. The data area is one ``(records, record_length)`` uint8 view; each variable is a
   fixed-width column slice of it.
3. Numbers: the 2-8 stored bytes, zero-padded to 8, as big-endian uint64; SAS missing
   values ``.``, ``._``, ``.A``-``.Z`` (first byte 0x2E, 0x5F, 0x41-0x5A, all other bytes
   zero) are NaN; everything else is an IBM-370 hexadecimal double converted to IEEE
   with integer arithmetic exactly as TS-140's reference routine (and ReadStat) does it:
   the 56-bit fraction is shifted right by 0-3 bits to put its leading 1 at bit 52, the
   bits shifted out are dropped (truncation, not rounding), exponent 4*(E-65)+shift.
   ``0x7FFFFFFFFFFFFFFF`` (sign aside) is +-infinity, as ReadStat writes infinities.
4. Text: per column the stored bytes; trailing blanks and NULs are stripped and a NUL
   ends the value (ReadStat's C strings), leading blanks are kept; then decoded: ASCII
   and latin-1 by widening the bytes to UCS-4 code points (numpy ``U`` dtype, no codec
   call), other bytes of the rare non-ASCII records with ``encoding`` (UTF-8 by
   default, strict, like pyreadstat). A column whose values repeat (judged on a sample of
   2,048 records) is first reduced to its distinct byte strings (a 64-bit hash of each
   record's bytes, ``pandas.factorize``, then every record compared with its
   representative byte for byte, so a hash collision can never merge two values): each
   distinct value is decoded once and every record refers to the same ``str`` object.
5. Columns: Num float64 (NaN = missing); Char pandas ``str`` dtype with ``""`` for blank
   values, object dtype when the dataset has no records (pyreadstat gives that too).

Records (the rule of ``cdisc.rawio._check_xpt``): v5 does not store the number of
observations, so it is inferred from the data area: records count up to the last record
that is not all blanks, and at least as many as the padding rule requires (the padding after
the last record is fewer than 80 blanks, so blank records that reach beyond the last 80 bytes
are records). v8 files with a non-zero OBSV8 count use that count (it must agree with the
data area). A trailing all-blank record that fits inside the final 80 bytes cannot be told
from padding and is not a record (SAS writes the same bytes for both).

Differences from pyreadstat (ReadStat 1.1.9 inside pyreadstat 1.3.7), each deliberate:

* Trailing all-blank records beyond the padding (only possible when every variable is Char
  and blank) are records here; ReadStat drops every trailing all-blank record.
* A numeric value whose first byte is not a missing code and whose other bytes are all
  zero (IBM zero with a sign or an exponent, e.g. negative zero ``0x80 00..``) is 0.0 here;
  ReadStat returns NaN, turning a zero into a missing value.
* An unnormalised IBM number (first hex digit of the fraction 0; SAS never writes these)
  is converted at its true value here; ReadStat assumes the hidden 1 bit anyway and returns
  a wrong number.
* Numeric variables of length 2 are read; ReadStat returns NaN for all of them (it reads
  3-8 bytes only).
* Text that is not valid in ``encoding``: ``InputError`` naming the file, variable and
  record; pyreadstat raises ``UnicodeDecodeError`` (encoding None) or ReadstatError, and
  with ``encoding="utf-8"`` silently drops an incomplete multi-byte sequence at the end of
  a value, which is an error here too.
* Damaged files (cut inside a record, a NAMESTR with a wrong type/length/position, a second
  dataset in the file, a LABELV8 entry outside the file, a 136-byte NAMESTR misread, ...):
  ``InputError``; ReadStat reads what it can (a partial last record is dropped silently, a
  second member's headers become data).
* Two variables with the same name: ``InputError`` (a dict-based reader keeps one of them).

``datetime_as_numbers=False`` converts Num variables with a SAS date, datetime or time
format the way ``pyreadstat.read_xport(path)`` does (the same format lists; date ->
``datetime.date`` objects, datetime -> ``datetime64[us]``, time -> ``datetime.time``
objects; a column without values stays an object column of NaN); a value outside
Python's date range is an ``InputError`` (pyreadstat raises ``OverflowError``).
"""
from __future__ import annotations

import codecs
import datetime
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cdisc.distinct import compact_codes
from cdisc.errors import InputError

__all__ = ["read_xport", "XptMeta"]

RECORD = 80
_HEADER = re.compile(rb"HEADER RECORD\*{7}(?P<kind>[A-Z0-9 ]{8})HEADER RECORD!{7}(?P<digits>.{30})  ",
                     re.DOTALL)
_KINDS = {5: ("LIBRARY", "MEMBER", "DSCRPTR", "NAMESTR", "OBS"),
          8: ("LIBV8", "MEMBV8", "DSCPTV8", "NAMSTV8", "OBSV8")}
_MEMBER_NEEDLES = (b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!",
                   b"HEADER RECORD*******MEMBV8  HEADER RECORD!!!!!!!")
#: NAMESTR: ntype, nhfun, nlng, nvar0, nname, nlabel, nform, nfl, nfd, nfj, nfill, niform,
#: nifl, nifd, npos (the first 88 bytes; v8 adds the 32-byte long name and label length)
_NAMESTR = struct.Struct(">hhhh8s40s8shhh2s8shhi")
_LONGNAME = struct.Struct(">32sh")

_SIGN = np.uint64(1 << 63)
_ABS = np.uint64((1 << 63) - 1)
_M56 = np.uint64((1 << 56) - 1)
_M52 = np.uint64((1 << 52) - 1)

_factorize = pd.factorize  # hash-based codes of the record keys (a seam for the collision test)
_BLOCK_BYTES = 16 << 20   # data area read and converted in blocks of about this size
_SAMPLE = 2048            # records sampled to decide whether a text column is deduplicated
_VERIFY_BLOCK = 1 << 16   # records per block when checking deduplicated values byte by byte

# pyreadstat 1.3.7 (_readstat_parser.pyx): formats converted by read_xport's default
_FORMAT_NAME = re.compile(r"^([A-Z][A-Z0-9]+[A-Z])(\d+)?(?(2)(?:\.\d+)?$|$)")
_DATE_FORMATS = frozenset((
    "WEEKDATE", "MMDDYY", "DDMMYY", "YYMMDD", "DATE", "DDMMYYB", "DDMMYYC", "DDMMYYD",
    "DDMMYYN", "DDMMYYP", "DDMMYYS", "MMDDYYB", "MMDDYYC", "MMDDYYD", "MMDDYYN", "MMDDYYP",
    "MMDDYYS", "WEEKDATX", "DTDATE", "IS8601DA", "E8601DA", "B8601DA", "YYMMDDB", "YYMMDDD",
    "YYMMDDN", "YYMMDDP", "YYMMDDS"))
_DATETIME_FORMATS = frozenset(("DATETIME", "E8601DT", "DATEAMPM", "MDYAMPM", "IS8601DT",
                               "B8601DT", "B8601DN"))
_TIME_FORMATS = frozenset(("TIME", "HHMM", "TOD", "TIMEAMPM", "IS8601TM", "E8601TM", "B8601TM"))
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_SAS_DAY = np.datetime64("1960-01-01", "D")
_SAS_US = np.datetime64("1960-01-01T00:00:00", "us")
#: Python's date range in SAS days (datetime.date(1, 1, 1) .. (9999, 12, 31))
_MIN_DAY = (datetime.date(1, 1, 1) - datetime.date(1960, 1, 1)).days
_MAX_DAY = (datetime.date(9999, 12, 31) - datetime.date(1960, 1, 1)).days


@dataclass
class XptMeta:
    """What the headers and NAMESTRs of an XPT file say; lists are in variable order.

    ``formats``/``informats`` are the SAS texts (``"DATE9."``, ``"$CHAR200."``, ``"8.2"``,
    ``"E8601DA."``; ``""`` when the variable has none); ``pyreadstat_formats`` gives them as
    ``pyreadstat``'s ``original_variable_types`` does (``"DATE9"``, ``"8.2"``, None).
    """

    version: int                      # 5 or 8
    table_name: str                   # dataset name (member record)
    file_label: str                   # dataset label
    dataset_type: str
    sas_version: str
    os_name: str
    created: datetime.datetime | None
    modified: datetime.datetime | None
    column_names: list[str]
    column_labels: list[str]
    types: list[str]                  # "Char" / "Num"
    lengths: list[int]                # storage lengths in bytes
    formats: list[str]
    informats: list[str]
    records: int
    record_length: int
    pyreadstat_formats: list[str | None] = field(default_factory=list, repr=False)

    @property
    def labels(self) -> dict[str, str]:
        """{variable: label}"""
        return dict(zip(self.column_names, self.column_labels))

    @property
    def lengths_by_name(self) -> dict[str, int]:
        return dict(zip(self.column_names, self.lengths))

    @property
    def types_by_name(self) -> dict[str, str]:
        return dict(zip(self.column_names, self.types))

    @property
    def formats_by_name(self) -> dict[str, str]:
        return dict(zip(self.column_names, self.formats))


class _Bad(Exception):
    """Internal: a structural problem; turned into InputError with the file name."""

    def __init__(self, message: str, column: str | None = None, row: int | None = None,
                 hint: str | None = None):
        super().__init__(message)
        self.column = column
        self.row = row
        self.hint = hint


# --------------------------------------------------------------------------- public

def read_xport(path, *, datetime_as_numbers: bool = True, encoding: str = "utf-8",
               remember_distinct: bool = False) -> tuple[pd.DataFrame, XptMeta]:
    """Read a SAS transport file (v5 or v8) into a DataFrame and its metadata.

    Args:
        path: the .xpt file (one dataset).
        datetime_as_numbers: True (default): every Num variable is float64, dates stay SAS
            numbers (as ``pyreadstat.read_xport(..., disable_datetime_conversion=True)``).
            False: Num variables with a date/datetime/time format are converted as
            ``pyreadstat.read_xport(path)`` converts them (see the module docstring).
        encoding: of text values, names and labels; an ASCII-compatible codec. Default
            UTF-8 (strict), which is what pyreadstat does without an encoding; "latin-1"
            or "cp1252" for files written in those.
        remember_distinct: leave each text column's distinct values (found anyway to decode
            them) with ``cdisc.distinct``, so later tests of the column work on those; the
            column's array becomes read-only (validation reads this way: it never changes a
            dataset it checks).

    Returns:
        (frame, meta): Char columns ``str`` dtype ("" for blanks), Num columns float64
        (NaN for every SAS missing value); see :class:`XptMeta`.

    Raises:
        InputError: the file cannot be read, is not an XPT file, is truncated or damaged,
            or has text that is not valid in ``encoding``; it names the file (and variable
            and 1-based record where there is one). Never another exception for bad input.
    """
    path = Path(path)
    _check_encoding(encoding)
    try:
        with open(path, "rb") as fh:
            return _read(_File(fh), datetime_as_numbers, encoding, remember_distinct)
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", file=str(path)) from None
    except _Bad as exc:
        hint = exc.hint or ("the XPT file is truncated or damaged; export it again"
                            if exc.row is None else None)
        raise InputError(str(exc), file=str(path), column=exc.column, row=exc.row,
                         hint=hint) from None


# --------------------------------------------------------------------------- the file

class _File:
    """The file, read once: ``src[a:b]`` gives header bytes (read ahead in 64 KB steps and
    kept), ``read_into`` fills a buffer from an offset (the data area, block by block)."""

    def __init__(self, fh):
        self.fh = fh
        self.size = os.fstat(fh.fileno()).st_size
        self.head = b""

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, s: slice) -> bytes:
        start, stop = s.start or 0, min(self.size, self.size if s.stop is None else s.stop)
        if stop <= len(self.head):
            return self.head[start:stop]
        if start > len(self.head):                  # beyond the headers: not kept
            self.fh.seek(start)
            return self.fh.read(max(0, stop - start))
        want = min(self.size, max(stop, 2 * len(self.head), 1 << 16)) - len(self.head)
        self.fh.seek(len(self.head))
        self.head += self.fh.read(want)
        return self.head[start:stop]

    def read_into(self, offset: int, buf: np.ndarray) -> None:
        self.fh.seek(offset)
        view = memoryview(buf).cast("B")
        got = 0
        while got < len(view):
            n = self.fh.readinto(view[got:])
            if not n:
                raise _Bad(f"the file ends at byte {offset + got}, before the {len(view)} bytes "
                           f"from byte {offset} (did it change while being read?)")
            got += n


# --------------------------------------------------------------------------- headers

def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    sample = bytes(range(32, 127))
    if sample.decode(encoding) != sample.decode("ascii"):
        raise ValueError(f"encoding {encoding!r} is not ASCII-compatible; XPT text is ASCII-based")


def _cstr(raw: bytes) -> bytes:
    """ReadStat's text rule: strip trailing blanks and NULs, then a NUL ends the text."""
    return raw.rstrip(b" \0").split(b"\0", 1)[0]


def _text(raw: bytes, encoding: str, what: str, column: str | None = None) -> str:
    try:
        return _cstr(raw).decode(encoding)
    except UnicodeDecodeError as exc:
        raise _Bad(f"the {what} is not valid {encoding}: {exc.reason} at byte {exc.start + 1} "
                   f"({_cstr(raw)!r})", column=column) from None


def _stamp(raw: bytes) -> datetime.datetime | None:
    """ddMMMyy:hh:mm:ss (2-digit year: < 60 -> 20yy, as ReadStat reads it) or None."""
    m = re.fullmatch(rb"(\d\d)([A-Z]{3})(\d\d):(\d\d):(\d\d):(\d\d)", raw[:16])
    if not m or m[2].decode() not in _MONTHS:
        return None
    year = int(m[3])
    year += 2000 if year < 60 else 1900
    try:
        return datetime.datetime(year, _MONTHS.index(m[2].decode()) + 1, int(m[1]), int(m[4]),
                                 int(m[5]), int(m[6]))
    except ValueError:
        return None


def _format_texts(name: str, width: int, decimals: int) -> tuple[str, str | None]:
    """(SAS text, pyreadstat text) of a NAMESTR format: ("DATE9.", "DATE9"), ("8.2", "8.2"),
    ("$CHAR200.", "$CHAR200"), ("", None)."""
    width = max(width, 0)
    decimals = max(decimals, 0)
    readstat = name + (str(width) if width else "") + (f".{decimals}" if decimals else "")
    if not (name or width or decimals):
        return "", None
    return f"{name}{width or ''}.{decimals or ''}", readstat


@dataclass
class _Var:
    ntype: int
    length: int
    position: int
    name: str
    label: str
    fmt: str
    fmt_readstat: str | None
    informat: str


def _read(raw: _File, datetime_as_numbers: bool, encoding: str,
          remember_distinct: bool = False) -> tuple[pd.DataFrame, XptMeta]:
    size = len(raw)
    if size == 0:
        raise _Bad("the file is empty")

    def record(i: int) -> bytes:
        return raw[RECORD * i: RECORD * i + RECORD]

    def header(i: int, kind: str) -> re.Match:
        rec = record(i)
        m = _HEADER.fullmatch(rec)
        if len(rec) < RECORD or not m or m["kind"].decode().strip() != kind:
            raise _Bad(f"record {i + 1} of the headers (bytes {RECORD * i}-{RECORD * i + 79}) is "
                       f"not the {kind} header record")
        return m

    first = _HEADER.fullmatch(record(0))
    kind = first["kind"].decode().strip() if first else ""
    version = 5 if kind == "LIBRARY" else 8 if kind == "LIBV8" else None
    if version is None:
        raise _Bad("not a SAS transport (XPT) file: it does not start with the LIBRARY header "
                   "record", hint="export it as SAS XPORT (version 5 or 8)")
    if size % RECORD:
        raise _Bad(f"the file is {size} bytes, not a whole number of 80-byte records")
    names = _KINDS[version]
    real = record(1)
    sas_version = _text(real[24:32], encoding, "SAS version")
    os_name = _text(real[32:40], encoding, "operating system name")
    created = _stamp(real[64:80])
    modified = _stamp(record(2)[:16])
    member = header(3, names[1])
    nlen_text = member["digits"][26:30]
    if nlen_text not in (b"0140", b"0136"):
        raise _Bad(f"the MEMBER header gives a NAMESTR length of {nlen_text.decode('latin-1')!r}, "
                   f"not 0140 or 0136")
    nlen = int(nlen_text)
    header(4, names[2])
    mem1, mem2 = record(5), record(6)
    if len(mem2) < RECORD:
        raise _Bad("the file ends inside the member header records")
    table_name = _text(mem1[8:16] if version == 5 else mem1[8:40], encoding, "dataset name")
    file_label = _text(mem2[32:72], encoding, "dataset label")
    dataset_type = _text(mem2[72:80], encoding, "dataset type")
    count = header(7, names[3])["digits"][5:10]
    if not count.isdigit() or int(count) < 1:
        raise _Bad(f"the NAMESTR header gives {count.decode('latin-1')!r} variables")
    nvar = int(count)
    start = 8 * RECORD
    end = start + nvar * nlen
    if end > size:
        raise _Bad(f"the file ends inside the NAMESTR records of its {nvar} variables")
    variables = _namestrs(raw, start, nlen, nvar, version, encoding)
    reclen = sum(v.length for v in variables)
    at = (end + RECORD - 1) // RECORD
    if RECORD * at + RECORD > size:
        raise _Bad("the file ends before the OBS header record")
    m = _HEADER.fullmatch(record(at))
    if version == 8 and m and m["kind"].decode().strip() in ("LABELV8", "LABELV9"):
        at = _labels(raw, at, m, variables, encoding)
    obs = header(at, names[4])
    seen: set[str] = set()
    for v in variables:
        if v.name in seen:
            raise _Bad(f"variable {v.name} appears twice in the NAMESTR records", column=v.name)
        seen.add(v.name)

    data_start = RECORD * (at + 1)
    d = size - data_start
    full = d // reclen
    tail = raw[data_start + full * reclen:]
    if tail.strip(b" "):
        raise _Bad(f"the data area ends with an incomplete record: {len(tail)} of its {reclen} bytes")
    if len(tail) >= RECORD:
        raise _Bad(f"the data area ends with {len(tail)} blank bytes that are not a whole record "
                   f"({reclen} bytes); the padding is fewer than 80")
    nonblank = _last_nonblank(raw, data_start, reclen, full)
    least = (d - RECORD) // reclen + 1 if d else 0
    records = max(nonblank, least)
    declared = obs["digits"][:15]
    if version == 8 and declared.strip().isdigit() and declared.strip(b" 0"):
        n = int(declared)
        if not (nonblank <= n <= full and d - n * reclen < RECORD):
            raise _Bad(f"the OBSV8 header declares {n} observations, but the data area holds {records}")
        records = n

    # the data area, in blocks of ~16 MB of whole records (the file is read once; the
    # blocks bound the temporary arrays); each variable fills its preallocated column
    columns = {v.name: np.empty(records, dtype=np.float64 if v.ntype == 1 else object)
               for v in variables}
    block = max(1, _BLOCK_BYTES // reclen)
    coded: dict | None = {} if remember_distinct else None
    buf = np.empty(min(block, records) * reclen, dtype=np.uint8)
    for lo in range(0, records, block):
        hi = min(records, lo + block)
        chunk = buf[: (hi - lo) * reclen]
        raw.read_into(data_start + lo * reclen, chunk)
        _no_member_header(raw, chunk, data_start + lo * reclen)
        rows = chunk.reshape(hi - lo, reclen)
        for v in variables:
            slab = rows[:, v.position: v.position + v.length]
            if v.ntype == 1:
                columns[v.name][lo:hi] = _numbers(slab)
            else:
                values, codes = _texts_coded(slab, encoding, v.name, lo)
                columns[v.name][lo:hi] = values if codes is None else values[codes]
                if coded is not None:
                    coded[v.name] = (None if codes is None or coded.get(v.name, ()) is None
                                     else coded.get(v.name, []) + [(values, compact_codes(codes, len(values)))])
    del buf
    if coded:
        _remember_distinct(columns, coded)
    if not datetime_as_numbers:
        for v in variables:
            if v.ntype == 1:
                columns[v.name] = _as_datetimes(columns[v.name], v)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(records), copy=False) if columns else pd.DataFrame()
    meta = XptMeta(
        version=version, table_name=table_name, file_label=file_label,
        dataset_type=dataset_type, sas_version=sas_version, os_name=os_name,
        created=created, modified=modified,
        column_names=[v.name for v in variables], column_labels=[v.label for v in variables],
        types=["Num" if v.ntype == 1 else "Char" for v in variables],
        lengths=[v.length for v in variables], formats=[v.fmt for v in variables],
        informats=[v.informat for v in variables], records=records, record_length=reclen,
        pyreadstat_formats=[v.fmt_readstat for v in variables])
    return frame, meta


def with_datetimes(frame: pd.DataFrame, meta: XptMeta, path) -> pd.DataFrame:
    """The frame ``read_xport(path, datetime_as_numbers=False)`` gives, made from the one
    ``read_xport(path)`` gave without reading the file again: the Num variables with a date,
    datetime or time format converted as pyreadstat converts them, every other column the
    same array (pandas copy-on-write: a change to either frame copies that column first).
    Validation needs both views of each file; sharing the text columns halves their memory."""
    out = frame.copy(deep=False)
    for name, kind, fmt, fmt_rs in zip(meta.column_names, meta.types, meta.formats, meta.pyreadstat_formats):
        if kind != "Num" or _date_kind(fmt_rs) is None:
            continue
        v = _Var(1, 8, 0, name, "", fmt, fmt_rs, "")
        try:
            out[name] = _as_datetimes(frame[name].to_numpy(dtype=np.float64), v)
        except _Bad as exc:
            raise InputError(str(exc), file=str(path), column=exc.column, row=exc.row) from None
    return out


def _namestrs(raw: _File, start: int, nlen: int, nvar: int, version: int, encoding: str) -> list[_Var]:
    out = []
    pos = 0
    for i in range(nvar):                       # one loop step per variable, not per record
        at = start + i * nlen
        (ntype, _hfun, length, _number, nname, nlabel, nform, nfl, nfd, _nfj, _fill, niform,
         nifl, nifd, npos) = _NAMESTR.unpack(raw[at: at + _NAMESTR.size])
        where = f"variable {i + 1}"
        name = _text(nname, encoding, f"name of {where}")
        if version == 8 and nlen == 140:
            longname, _lablen = _LONGNAME.unpack(raw[at + _NAMESTR.size: at + 122])
            name = _text(longname, encoding, f"name of {where}") or name
        shown = name or where
        if ntype not in (1, 2):
            raise _Bad(f"{where} ({shown}) has type {ntype} in its NAMESTR record "
                       f"(1 numeric, 2 character)", column=shown)
        if length < 1 or (ntype == 1 and not 2 <= length <= 8):
            raise _Bad(f"{where} ({shown}) has length {length} in its NAMESTR record", column=shown)
        if npos != pos:
            raise _Bad(f"{where} ({shown}) starts at byte {npos} of the observation in its NAMESTR "
                       f"record, but the variables before it end at byte {pos}", column=shown)
        if not name:
            raise _Bad(f"{where} has no name in its NAMESTR record", column=shown)
        fmt, fmt_rs = _format_texts(_text(nform, encoding, f"format of {shown}"), nfl, nfd)
        informat, _ = _format_texts(_text(niform, encoding, f"informat of {shown}"), nifl, nifd)
        out.append(_Var(ntype, length, pos, name, _text(nlabel, encoding, f"label of {shown}"),
                        fmt, fmt_rs, informat))
        pos += length
    return out


def _labels(raw: _File, at: int, m: re.Match, variables: list[_Var], encoding: str) -> int:
    """Apply a v8 LABELV8/LABELV9 block (long names, labels, formats); return the record
    index after it."""
    number = re.match(rb" *([0-9]{1,5})", m["digits"])     # "00003" or "3    "
    if not number:
        raise _Bad("the LABELV8 header has no label count")
    count = int(number[1])
    v9 = m["kind"].startswith(b"LABELV9")
    width = 10 if v9 else 6
    pos = RECORD * (at + 1)
    for _ in range(count):
        part = raw[pos: pos + width]
        if len(part) < width:
            raise _Bad("the file ends inside the LABELV8 block")
        fields = struct.unpack(">" + "H" * (width // 2), part)
        index = fields[0]
        if not 1 <= index <= len(variables):
            raise _Bad(f"a LABELV8 entry names variable {index} of {len(variables)}")
        pos += width
        texts = []
        for n in fields[1:]:
            if pos + n > len(raw):
                raise _Bad("the file ends inside the LABELV8 block")
            texts.append(raw[pos: pos + n])
            pos += n
        v = variables[index - 1]
        v.name = _text(texts[0], encoding, f"long name of variable {index}") or v.name
        v.label = _text(texts[1], encoding, f"long label of {v.name}", v.name)
        if v9:
            fmt = _text(texts[2], encoding, f"format of {v.name}", v.name)
            v.fmt, v.fmt_readstat = fmt, (fmt or None)
            v.informat = _text(texts[3], encoding, f"informat of {v.name}", v.name)
    return (pos + RECORD - 1) // RECORD


def _no_member_header(raw: _File, chunk: np.ndarray, offset: int) -> None:
    """A MEMBER (MEMBV8) header at an 80-byte-aligned file offset inside ``chunk`` (the
    bytes from file offset ``offset``) means a second dataset: an error. The aligned 80-byte
    rows of the chunk are one (n, 80) view: rows starting with "H" are compared with the
    headers in one vectorised step; a partial row at the end of the chunk is read from the
    file."""
    first = -offset % RECORD
    n = max(0, (len(chunk) - first) // RECORD)
    found = []
    if n:
        grid = chunk[first: first + n * RECORD].reshape(n, RECORD)
        cand = np.flatnonzero(grid[:, 0] == ord("H"))
        if len(cand):
            head = grid[cand, : len(_MEMBER_NEEDLES[0])]
            for needle in _MEMBER_NEEDLES:
                hit = (head == np.frombuffer(needle, dtype=np.uint8)).all(axis=1)
                found += [first + RECORD * int(c) for c in cand[hit][:1]]
    rest = first + n * RECORD
    if rest < len(chunk) and raw[offset + rest: offset + rest + len(_MEMBER_NEEDLES[0])] \
            in _MEMBER_NEEDLES:
        found.append(rest)
    if found:
        raise _Bad(f"the file holds more than one dataset: a second MEMBER header at byte "
                   f"{offset + min(found)}; only the first would be read",
                   hint="export one dataset per XPT file")


def _last_nonblank(raw: _File, data_start: int, reclen: int, full: int) -> int:
    """1 + index of the last record that is not all blanks (0 if none), scanning back in
    blocks of about 1 MB (usually the last record decides)."""
    stop = full
    block = max(1, (1 << 20) // reclen)
    while stop > 0:
        lo = max(0, stop - block)
        buf = np.empty((stop - lo) * reclen, dtype=np.uint8)
        raw.read_into(data_start + lo * reclen, buf)
        hit = np.flatnonzero((buf.reshape(stop - lo, reclen) != 32).any(axis=1))
        if len(hit):
            return lo + int(hit[-1]) + 1
        stop = lo
    return 0


# --------------------------------------------------------------------------- numbers

def _remember_distinct(columns: dict, coded: dict) -> None:
    """Leave each text column's distinct values with cdisc.distinct (``read_xport``'s
    ``remember_distinct``): the blocks' codes joined into one numbering of the column."""
    from cdisc import distinct

    for name, blocks in coded.items():
        if not blocks:
            continue
        texts = np.concatenate([b[0] for b in blocks])
        glob, uniques = pd.factorize(texts)           # equal texts from different blocks are one value
        offsets = np.cumsum([0] + [len(b[0]) for b in blocks[:-1]])
        codes = np.concatenate([glob[off + c] for off, (_, c) in zip(offsets, blocks)])
        codes, first = distinct.first_seen_order(codes, len(uniques))
        distinct.remember(columns[name], distinct.compact_codes(codes, len(uniques)), first)


def _numbers(slab: np.ndarray) -> np.ndarray:
    """(records, 2..8) stored bytes -> float64 (see the module docstring, step 3)."""
    n, width = slab.shape
    if width == 8:
        be = np.ascontiguousarray(slab).view(">u8").reshape(n)
    else:
        padded = np.zeros((n, 8), dtype=np.uint8)
        padded[:, :width] = slab
        be = padded.view(">u8").reshape(n)
    return ibm_bits_to_float(be.astype(np.uint64))


def ibm_bits_to_float(bits: np.ndarray) -> np.ndarray:
    """IBM-370 doubles (uint64, native order) -> float64, as TS-140's reference routine.

    SAS missing values (first byte 0x2E, 0x5F or 0x41-0x5A, the other seven zero) -> NaN;
    any other zero fraction -> 0.0; 0x7FFFFFFFFFFFFFFF (either sign) -> +-inf (ReadStat's
    infinity); normalised numbers: exact integer conversion, the 0-3 lowest fraction bits
    that do not fit the 52-bit IEEE fraction are dropped; unnormalised numbers (leading hex
    digit 0) at their true value.
    """
    bits = np.asarray(bits, dtype=np.uint64)
    frac = bits & _M56
    top = frac >> np.uint64(52)                             # leading hex digit 0..15
    shift = ((top >= 2).astype(np.uint64) + (top >= 4) + (top >= 8)).astype(np.uint64)
    e16 = ((bits >> np.uint64(56)) & np.uint64(0x7F)).astype(np.int64)
    exponent = (4 * e16 - 260 + 1023 + shift.astype(np.int64)).astype(np.uint64)
    out = ((bits & _SIGN) | (exponent << np.uint64(52)) | ((frac >> shift) & _M52)).view(np.float64)
    zero = frac == 0
    if zero.any():
        first = bits[zero] >> np.uint64(56)
        missing = (first == 0x2E) | (first == 0x5F) | ((first >= 0x41) & (first <= 0x5A))
        out[zero] = np.where(missing, np.nan, 0.0)
    unnormal = (top == 0) & ~zero
    if unnormal.any():
        u = bits[unnormal]
        value = np.ldexp((u & _M56).astype(np.float64), 4 * (e16[unnormal] - 64) - 56)
        out[unnormal] = np.where((u & _SIGN) != 0, -value, value)
    inf = (bits & _ABS) == _ABS
    if inf.any():
        out[inf] = np.where((bits[inf] & _SIGN) != 0, -np.inf, np.inf)
    return out


# --------------------------------------------------------------------------- text

def _texts(slab: np.ndarray, encoding: str, column: str, first: int = 0) -> np.ndarray:
    """(records, width) stored bytes -> object array of str (module docstring, step 4)."""
    values, codes = _texts_coded(slab, encoding, column, first)
    return values if codes is None else values[codes]


def _texts_coded(slab: np.ndarray, encoding: str, column: str, first: int = 0):
    """(values, codes): the text of record i is ``values[codes[i]]``, or ``values[i]`` when
    codes is None (a column of mostly distinct records is decoded record by record)."""
    n, width = slab.shape
    if n == 0:
        return np.empty(0, dtype=object), None
    codes = None
    if _repetitive(slab):
        codes, reps = _distinct(slab)
        rows = slab[reps]
    else:
        rows = np.array(slab)
    try:
        values = _decode(rows, encoding)
    except _BadRow as exc:
        record = exc.index if codes is None else int(np.flatnonzero(codes == exc.index)[0])
        raise _Bad(f"text that is not valid {encoding}: {exc.reason} ({exc.raw!r})",
                   column=column, row=first + record + 1) from None
    return values, codes


class _BadRow(Exception):
    def __init__(self, index: int, reason: str, raw: bytes):
        super().__init__(reason)
        self.index, self.reason, self.raw = index, reason, raw


def _repetitive(slab: np.ndarray) -> bool:
    """True when at most half of ~2,048 evenly spaced records are distinct."""
    n, width = slab.shape
    if n < 2:
        return False
    pick = np.unique(np.linspace(0, n - 1, min(n, _SAMPLE)).astype(np.int64))
    sample = np.ascontiguousarray(slab[pick]).view(f"S{width}").ravel()
    return len(np.unique(sample)) * 2 <= len(pick)


def _distinct(slab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(codes, representatives): record i holds the same bytes as record reps[codes[i]].

    Records up to 8 bytes are their own 64-bit key; longer ones are hashed, and every
    record is then compared with its representative byte for byte (in blocks), so a hash
    collision falls back to an exact sort-based ``np.unique`` instead of merging values.
    """
    n, width = slab.shape
    words = (width + 7) // 8
    buf = np.zeros((n, words * 8), dtype=np.uint8)
    buf[:, :width] = slab
    w64 = buf.view(np.uint64)
    if words == 1:
        key = w64[:, 0]
    else:
        key = np.full(n, 0x243F6A8885A308D3, dtype=np.uint64)
        mult = np.uint64(0x9E3779B97F4A7C15)
        for j in range(words):                       # a loop over 8-byte words of the width
            key ^= w64[:, j]
            key *= mult
            key ^= key >> np.uint64(29)
    codes, uniques = _factorize(key)
    reps = np.empty(len(uniques), dtype=np.int64)
    reps[codes] = np.arange(n, dtype=np.int64)
    if words > 1:
        for lo in range(0, n, _VERIFY_BLOCK):
            hi = min(n, lo + _VERIFY_BLOCK)
            if not np.array_equal(w64[lo:hi], w64[reps[codes[lo:hi]]]):
                _, first, codes = np.unique(buf.view(f"S{words * 8}").ravel(), return_index=True,
                                            return_inverse=True)
                return codes.reshape(n), first
    return codes, reps


def _decode(rows: np.ndarray, encoding: str) -> np.ndarray:
    """Strip (ReadStat's rule) and decode each record of ``rows`` (m, width).

    Trailing blanks: ``np.strings.rstrip`` on the records as numpy bytes (``S`` values end
    at their trailing NULs anyway). Records holding a NUL byte anywhere get ReadStat's exact
    rule instead (strip trailing blanks and NULs, then the first NUL ends the text). Bytes
    become code points by widening to uint32 (ASCII and latin-1 need no codec); records
    with bytes >= 0x80 are decoded with ``encoding`` unless it is latin-1.
    """
    m, width = rows.shape
    rows = np.ascontiguousarray(rows)
    stripped = np.strings.rstrip(rows.view(f"S{width}").reshape(m), b" ")
    if stripped.dtype.itemsize == width:
        clean = stripped.view(np.uint8).reshape(m, width)
    else:
        clean = np.zeros((m, width), dtype=np.uint8)
        clean[:, : stripped.dtype.itemsize] = stripped.view(np.uint8).reshape(m, -1)
    if rows.min() == 0:                                  # NUL bytes: the exact rule, those records
        special = np.flatnonzero((rows == 0).any(axis=1))
        sub = rows[special]
        nul = sub == 0
        idx = np.arange(1, width + 1, dtype=np.int32 if width > 250 else np.uint8)
        keep = np.where((sub == 32) | nul, 0, idx).max(axis=1)     # 1 + last non-blank/NUL
        keep = np.minimum(keep, np.where(nul, idx - 1, width).min(axis=1))  # first NUL
        sub[idx[None, :] > keep[:, None]] = 0
        clean[special] = sub
    text = clean.astype(np.uint32).view(f"U{width}").reshape(m)   # byte -> code point
    if codecs.lookup(encoding).name != "iso8859-1" and clean.max() >= 0x80:
        high = np.flatnonzero((clean >= 0x80).any(axis=1))
        raw = clean[high].view(f"S{width}").reshape(len(high))
        try:
            text[high] = np.strings.decode(raw, encoding, "strict")
        except UnicodeDecodeError:
            for k, value in zip(high, raw.tolist()):     # error path only: find the record
                try:
                    value.decode(encoding)
                except UnicodeDecodeError as exc:
                    raise _BadRow(int(k), exc.reason, value) from None
            raise
    return text.astype(object)


# --------------------------------------------------------------------------- dates

def _date_kind(fmt: str | None) -> str | None:
    """'date', 'datetime', 'time' or None, by pyreadstat's rule (its format text and lists)."""
    if not fmt:
        return None
    m = _FORMAT_NAME.match(fmt)
    if not m:
        return None
    name = m.group(1)
    if name in _DATE_FORMATS:
        return "date"
    if name in _DATETIME_FORMATS:
        return "datetime"
    if name in _TIME_FORMATS:
        return "time"
    return None


def _as_datetimes(values: np.ndarray, v: _Var) -> np.ndarray:
    """pyreadstat's date conversion of one Num column (object array, NaN for missing)."""
    kind = _date_kind(v.fmt_readstat)
    if kind is None:
        return values
    out = np.full(len(values), np.nan, dtype=object)
    ok = ~np.isnan(values)
    if not ok.any():
        return out
    x = values[ok]
    with np.errstate(invalid="ignore", over="ignore"):
        if kind == "date":
            days = np.trunc(x)                        # C cast: towards zero
            bad = ~((days >= _MIN_DAY) & (days <= _MAX_DAY))
        else:
            days = np.floor(x / 86400)
            secs = np.trunc(np.mod(x, 86400))
            usecs = np.rint(np.mod(x, 1) * 1e6)         # Python round(): half to even
            bad = ~((days >= _MIN_DAY - 1) & (days <= _MAX_DAY))
    if bad.any():
        i = int(np.flatnonzero(ok)[np.flatnonzero(bad)[0]])
        raise _Bad(f"value {values[i]!r} of a {kind} variable (format {v.fmt}) is outside "
                   f"the years 1-9999", column=v.name, row=i + 1)
    if kind == "date":
        out[ok] = (_SAS_DAY + days.astype(np.int64).astype("timedelta64[D]")).astype(object)
        return out
    micro = (days.astype(np.int64) * 86_400_000_000 + secs.astype(np.int64) * 1_000_000
             + usecs.astype(np.int64))
    stamps = _SAS_US + micro.astype("timedelta64[us]")
    lo, hi = np.datetime64("0001-01-01", "us"), np.datetime64("9999-12-31T23:59:59.999999", "us")
    bad = (stamps < lo) | (stamps > hi)
    if bad.any():
        i = int(np.flatnonzero(ok)[np.flatnonzero(bad)[0]])
        raise _Bad(f"value {values[i]!r} of a {kind} variable (format {v.fmt}) is outside "
                   f"the years 1-9999", column=v.name, row=i + 1)
    if kind == "datetime":
        out[ok] = stamps.astype(object)
    else:
        out[ok] = pd.DatetimeIndex(stamps).time
    return out
