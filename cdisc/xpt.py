"""SAS XPORT (XPT) version 5 writer, conformance checks and a reader for validation.

FDA requires SDTM and ADaM datasets as SAS transport files, version 5 (FDA Study Data
Technical Conformance Guide, TCG §3.3.1 and §4.1). This module writes them from a
pandas DataFrame plus the shared ``DatasetMeta`` without SAS:

* ``check_xpt(df, meta)`` lists every XPT v5 / TCG §4.1 violation, writes nothing;
* ``write_xpt(path, df, meta, created)`` refuses (``ConformanceError``) when there is any
  violation, otherwise writes a byte-deterministic file;
* ``read_xpt(path)`` reads a file back with pyreadstat (tests and validation only).

Why our own writer: pyreadstat's writer is slow (about 8 MB/s on 1M x 20) and cannot
set character lengths; the ``xport`` package does not install with pandas 3.

File layout (SAS Technical Paper TS-140, "Record Layout of a SAS Version 5 or 6 Data
Set in SAS Transport (XPORT) Format"): every record is 80 bytes, padded with ASCII
blanks::

    LIBRARY header record, 2 real-header records (SAS version, OS, created, modified)
    MEMBER header record, DSCRPTR header record,
    2 member-header records (dataset name, version, OS, created / modified, label, type)
    NAMESTR header record (number of variables)
    one 140-byte NAMESTR per variable, the block padded to a multiple of 80
    OBS header record
    the observations: fixed-width records, no separators, the block padded to 80

Numbers are 8-byte IBM System/370 hexadecimal floats, big-endian; character values are
ASCII, left-aligned and blank-padded to the variable length.

Values:
* Char: NaN/None/NA and "" are written as blanks (SAS has no missing text); the
  texts "None" or "nan" stay text. Trailing blanks are not kept (SAS pads anyway),
  leading blanks are.
* Num: NaN/None/NA/NaT -> SAS missing ``.``; -0 -> 0. Numeric text (" 2.5") is
  parsed, blank text is missing, other text is an error.
* Dates: datetime-likes become SAS numbers chosen by the format: date formats
  (DATE9., YYMMDD10., E8601DA., ...) -> days since 1960-01-01 (a time of day under a
  date format is an error, not silently dropped); DATETIME20./E8601DT. -> seconds
  since 1960-01-01T00:00; TIME8./E8601TM. -> seconds since midnight (timedelta or
  time of day). Dates before 1960 are negative. Time-zone aware values keep their
  wall-clock time. A datetime column without such a format is an error (the unit
  would be a guess).
* Problems carry the 1-based record number of the dataset in ``Problem.row``.

Memory: the checks keep one copy of the text bytes (in 65,536-record blocks) for the
writer, numbers stay as the frame's float64 (or the converted dates); records are
assembled and written in ~4 MB blocks. Two threads: numeric checks overlap the text
checks, and the file write overlaps the assembly of the next block.

Lengths (TCG §4.1, variable lengths; Pinnacle 21 rule SD1082): a character variable's length is the
maximum number of bytes actually used by its values (trailing blanks do not count,
because SAS pads with blanks anyway), at least 1. A declared ``VariableMeta.length``
smaller than that is an error (we never truncate data); a declared length larger than
that is *reduced* to the maximum used, as the TCG asks (the allotted length of a
character column is to be the maximum length actually used). The maximum is taken per
dataset; harmonising one variable's length across datasets is the caller's job.
Numeric variables are always 8
bytes, the full IBM double, so every IEEE double in range round-trips exactly.
"""
from __future__ import annotations

import datetime
import os
import re
import struct
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cdisc.errors import ConformanceError, Problem
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.sasformats import format_kind

__all__ = [
    "check_xpt",
    "write_xpt",
    "read_xpt",
    "ieee_to_ibm",
    "parse_format",
    "SAS_VERSION",
    "SAS_OS",
]

SAS_VERSION = "9.4"
#: Operating-system name in the headers. Fixed (not the running platform) so the same
#: data gives the same bytes on every machine.
SAS_OS = "Linux"

MAX_NAME = 8          # XPT v5 / TCG §4.1: dataset and variable names <= 8 chars
MAX_LABEL = 40        # XPT v5 / TCG §4.1: labels <= 40 chars
MAX_CHAR = 200        # XPT v5 / TCG §4.1: character values <= 200 bytes
MAX_LISTED = 20       # problems listed per variable and check; the rest are counted
CHECK_BLOCK = 1 << 16  # records per block when checking text columns
NAMESTR_LEN = 140
RECORD = 80

#: IBM-370 double: 0.h1h2...h14 (hex) x 16**(E-64), E in 0..127. Normalised values
#: lie in [16**-65, 16**63); anything outside cannot be stored.
IBM_MIN = 16.0 ** -65  # 5.397605346934028e-79
IBM_MAX = 16.0 ** 63   # 7.237005577332262e+75 (exclusive)
IBM_MISSING = np.uint64(0x2E << 56)  # SAS '.' missing: 0x2E then seven zero bytes

_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,7}$")
_FORMAT_RE = re.compile(r"^(\$?(?:[A-Z_](?:[A-Z0-9_]*[A-Z_])?)?)(\d*)\.(\d*)$")

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN",
           "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_SAS_EPOCH = np.datetime64("1960-01-01T00:00:00", "s")


# --------------------------------------------------------------------------- numbers

def ieee_to_ibm(values: np.ndarray) -> np.ndarray:
    """Convert IEEE-754 doubles to IBM System/370 hexadecimal doubles (as uint64).

    Args:
        values: float64 array. NaN becomes the SAS missing value ``.``; values must be
            finite and inside the IBM range (callers check that first; out-of-range
            values give undefined bits).

    Returns:
        uint64 array of the same shape; ``.astype(">u8")`` gives the file bytes.

    Algorithm (TS-140 "Numeric data fields"; exact, no rounding):
        1. Split the double into sign s, biased exponent e and 52-bit fraction f;
           the value is m / 2**53 * 2**p with m = f | 2**52 (53 bits), p = e - 1022.
        2. IBM needs a power of 16: q = ceil(p / 4), r = 4q - p in 0..3, so the value is
           (m / 2**53 / 2**r) * 16**q. In integers: q = (e - 1019) >> 2 (arithmetic
           shift = floor) and 3 - r = (e + 1) & 3.
        3. The 56-bit IBM fraction is M = m << (3 - r): a left shift, so all 53
           significant bits are kept and the first hex digit is non-zero (normalised).
        4. Result = s << 63 | (q + 64) << 56 | M; zero and -0 give 0; NaN gives 0x2E << 56.
    """
    x = np.ascontiguousarray(values, dtype=np.float64)
    bits = x.view(np.uint64)
    e = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    mant = (bits & np.uint64((1 << 52) - 1)) | np.uint64(1 << 52)
    exponent = (((e - 1019) >> 2) + 64).astype(np.uint64) << np.uint64(56)
    ibm = (bits & np.uint64(1 << 63)) | exponent | (mant << ((e + 1) & 3).astype(np.uint64))
    ibm[e == 0] = 0                         # +0, -0 (subnormals are rejected by checks)
    ibm[np.isnan(x)] = IBM_MISSING
    return ibm


def ibm_to_ieee(ibm: np.ndarray) -> np.ndarray:
    """Convert IBM-370 doubles (uint64) back to IEEE doubles; SAS missing -> NaN.

    Used by the tests to check ``ieee_to_ibm`` independently of pyreadstat:
    value = (-1)**s * M / 2**56 * 16**(E - 64), computed with ``np.ldexp`` (exact for
    M with at most 53 significant bits).
    """
    ibm = np.asarray(ibm, dtype=np.uint64)
    sign = np.where((ibm >> np.uint64(63)) != 0, -1.0, 1.0)
    e = ((ibm >> np.uint64(56)) & np.uint64(0x7F)).astype(np.int64)
    m = (ibm & np.uint64((1 << 56) - 1)).astype(np.float64)  # exact when <= 53 bits used
    out = sign * np.ldexp(m, 4 * (e - 64) - 56)
    missing = (m == 0) & (ibm != 0) & ((ibm >> np.uint64(63)) == 0)
    out[missing] = np.nan
    return out


# --------------------------------------------------------------------------- formats

def parse_format(fmt: str | None) -> tuple[str, int, int] | None:
    """Split a SAS format into (name, width, decimals) for the NAMESTR record.

    ``"DATE9."`` -> ("DATE", 9, 0); ``"8.2"`` -> ("", 8, 2); ``"$CHAR20."`` ->
    ("$CHAR", 20, 0); ``"E8601DA."`` -> ("E8601DA", 0, 0); ``None``/"" -> ("", 0, 0).
    Returns None when the text is not a SAS format (a name must not end in a digit, the
    width is the trailing digit run before the mandatory dot).
    """
    if fmt is None or not fmt.strip():
        return ("", 0, 0)
    m = _FORMAT_RE.match(fmt.strip().upper())
    if not m:
        return None
    name, width, dec = m.groups()
    return (name, int(width or 0), int(dec or 0))


def _format_kind(name: str) -> str | None:
    """'date', 'datetime', 'time' or None for a format name (decides the SAS unit)."""
    return format_kind(name)


# --------------------------------------------------------------------------- checks

@dataclass
class _Column:
    """One checked variable; ``fill`` writes its bytes for a block of records."""

    name: str
    label: str
    ntype: int                      # 1 numeric, 2 character (NAMESTR ntype)
    length: int
    fmt: tuple[str, int, int]
    chunks: list[np.ndarray] | None = None  # Char: (CHECK_BLOCK, width) blank-padded bytes
    values: np.ndarray | None = None    # Num: float64 SAS numbers, NaN = missing

    def fill(self, dst: np.ndarray, start: int, stop: int) -> None:
        """Write records [start, stop) of this variable into ``dst`` ((rows, length) uint8).

        Char: bytes kept by the checks (already ASCII, blank-padded, missing values
        blank); [start, stop) lies inside one CHECK_BLOCK chunk. Only trailing blanks
        can lie beyond ``length`` (the checks made sure), so cutting there loses
        nothing; a chunk narrower than ``length`` is padded with blanks.
        Num: big-endian IBM-370 doubles.
        """
        if self.ntype == 1:
            ibm = ieee_to_ibm(self.values[start:stop]).astype(">u8")
            dst[...] = ibm.view(np.uint8).reshape(stop - start, 8)
            return
        chunk = self.chunks[start // CHECK_BLOCK]
        a = start % CHECK_BLOCK
        w = min(chunk.shape[1], self.length)
        dst[:, :w] = chunk[a:a + stop - start, :w]
        if w < self.length:
            dst[:, w:] = 32


def _preview(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _report_rows(problems: list[Problem], file: str, column: str, rows: np.ndarray,
                 describe, hint: str, what: str) -> None:
    """Add one Problem per offending record (first MAX_LISTED) plus a count of the rest.

    ``rows`` are 0-based positions; Problems carry the 1-based record number.
    ``describe(k, i)`` gives the message for the k-th offending record, at position i
    (called at most MAX_LISTED times).
    """
    total = len(rows)
    for k, i in enumerate(rows[:MAX_LISTED]):
        problems.append(Problem(describe(k, int(i)), file=file, row=int(i) + 1,
                                column=column, hint=hint))
    if total > MAX_LISTED:
        problems.append(Problem(
            f"{total - MAX_LISTED} more records with {what} ({total} in all)",
            file=file, column=column, hint=hint))


def _check_names(meta: DatasetMeta, problems: list[Problem]) -> None:
    """Dataset/variable names and labels (TCG §4.1, XPT v5 NAMESTR limits)."""
    ds = meta.name
    if not _NAME_RE.match(ds):
        problems.append(Problem(
            f"dataset name {ds!r} is not a valid XPT v5 name", file=ds,
            hint="1-8 characters, upper-case letters, digits or underscore, "
                 "starting with a letter (FDA TCG §4.1, XPT v5)"))
    _check_label(meta.label, problems, file=ds, column=None, what="dataset label")
    seen: set[str] = set()
    for v in meta.variables:
        if not _NAME_RE.match(v.name):
            problems.append(Problem(
                f"variable name {v.name!r} is not a valid XPT v5 name "
                f"({len(v.name)} characters)", file=ds, column=v.name,
                hint="1-8 characters, upper-case letters, digits or underscore, "
                     "starting with a letter (FDA TCG §4.1, XPT v5)"))
        if v.name in seen:
            problems.append(Problem(f"variable {v.name!r} is declared twice", file=ds,
                                    column=v.name, hint="remove the duplicate from the spec"))
        seen.add(v.name)
        _check_label(v.label, problems, file=ds, column=v.name, what="variable label")
        parsed = parse_format(v.format)
        if parsed is None:
            problems.append(Problem(f"format {v.format!r} is not a SAS format", file=ds,
                                    column=v.name,
                                    hint="write NAMEw.d, e.g. DATE9., 8.2 or $CHAR20."))
            continue
        name = parsed[0]
        if len(name) > MAX_NAME:
            problems.append(Problem(
                f"format name {name!r} is longer than 8 characters", file=ds,
                column=v.name, hint="XPT v5 NAMESTR holds 8-character format names"))
        if v.type == "Num" and name.startswith("$"):
            problems.append(Problem(f"numeric variable has character format {v.format!r}",
                                    file=ds, column=v.name, hint="drop the $ format"))
        if v.type == "Char" and v.format and not name.startswith("$"):
            problems.append(Problem(f"character variable has numeric format {v.format!r}",
                                    file=ds, column=v.name,
                                    hint="use a $ format (e.g. $20.) or none"))
    if len(meta.variables) == 0:
        problems.append(Problem("dataset has no variables", file=ds,
                                hint="an XPT member needs at least one variable"))
    elif len(meta.variables) > 9999:
        problems.append(Problem(f"{len(meta.variables)} variables; XPT v5 allows 9999",
                                file=ds, hint="split the dataset"))


def _check_label(label: str, problems: list[Problem], file: str, column: str | None,
                 what: str) -> None:
    if len(label) > MAX_LABEL:
        problems.append(Problem(
            f"{what} is {len(label)} characters, more than {MAX_LABEL}: {label!r}",
            file=file, column=column, hint="shorten it (FDA TCG §4.1, XPT v5 limit)"))
    bad = [c for c in label if ord(c) > 127]
    if bad:
        problems.append(Problem(
            f"{what} has non-ASCII character {bad[0]!r} (U+{ord(bad[0]):04X}) "
            f"at position {label.index(bad[0]) + 1}: {label!r}",
            file=file, column=column,
            hint="use ASCII only (FDA TCG §4.1, XPT v5 is ASCII); e.g. write 'u' or 'mc' for 'µ'"))


def _used_lengths(nonblank: np.ndarray) -> np.ndarray:
    """Per-record used length: position of the last non-blank character (0 if none)."""
    if nonblank.shape[0] == 0 or nonblank.shape[1] == 0:
        return np.zeros(nonblank.shape[0], dtype=np.int64)
    last = nonblank.shape[1] - nonblank[:, ::-1].argmax(axis=1)
    last[~nonblank.any(axis=1)] = 0
    return last.astype(np.int64)


def _width_guess(obj: np.ndarray, declared: int | None) -> int:
    """Width to try first when encoding: the declared length, else the longest of
    about 2000 evenly spaced values (only a speed hint; it is verified)."""
    if declared is not None:
        return declared
    step = max(1, len(obj) // 2048)
    try:
        guess = pd.Series(obj[::step], dtype=object).str.len().max()
    except AttributeError:              # the sample holds no text at all
        return 0
    return 0 if pd.isna(guess) else int(guess)


def _encode_ascii(obj: np.ndarray, guess: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Fixed-width ASCII byte array of an object array of text, and its str_len.

    Returns None when some value is not ASCII (numpy's ASCII codec refuses it).
    Numpy finds the width itself in an extra pass over the Python strings; the guess
    saves that pass. It is checked: with one spare byte, a value that does not fit
    shows up as str_len > guess, and the block is encoded again without a guess.
    Missing values are encoded as b'nan'/b'None'/b'<NA>', hence the minimum of 4.
    """
    guess = max(guess, 4)
    try:
        enc = np.array(obj, dtype=f"S{guess + 1}")
        lens = np.strings.str_len(enc)
        if len(lens) == 0 or int(lens.max()) <= guess:
            return enc, lens
        enc = np.array(obj, dtype="S")
    except UnicodeEncodeError:
        return None
    return enc, np.strings.str_len(enc)


def _ascii_block(obj: np.ndarray, guess: int
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """Bytes and used length of each value of a block of text; None if not all ASCII.

    Returns (codes, used, control): codes is the (records, width) uint8 array, blank-padded,
    with missing values blank, at most 16 bytes wider than the longest value (so a generous
    declared length does not cost memory); used is each record's length without
    trailing blanks; control the records holding a control character (U+0000-U+001F,
    U+007F: tab, line break, NUL, ...).
    1. Encode (``_encode_ascii``); missing values appear as 3-4 byte b'nan'/b'None'/
       b'<NA>'/b'NaT', so only those are tested with ``pd.isna`` (a literal "None"
       text stays text) and blanked.
    2. ``str_len`` counts trailing blanks; records whose last character is a blank are
       found with a gather of one byte per record and searched for their last
       non-blank.
    3. numpy pads with NUL bytes; they become blanks (the XPT padding).
    """
    r = _encode_ascii(obj, guess)
    if r is None:
        return None
    enc, lens = r
    m = len(obj)
    width = enc.dtype.itemsize
    codes = enc.view(np.uint8).reshape(m, width)
    used = lens.astype(np.int64)
    cand = np.flatnonzero((used == 3) | (used == 4))
    if len(cand):
        missing = cand[pd.isna(obj[cand])]
        used[missing] = 0
        codes[missing] = 0
    if m:
        # control characters (C0, DEL; a NUL inside the value) never reach a transport file
        inside = np.arange(width, dtype=np.int64)[None, :] < used[:, None]
        ctrl = (((codes < 32) & (codes != 0)) | (codes == 127) | ((codes == 0) & inside)).any(axis=1)
        last = codes.ravel()[np.arange(m, dtype=np.int64) * width + np.maximum(used - 1, 0)]
        trail = np.flatnonzero((last == 32) & (used > 0))
        if len(trail):
            sub = codes[trail]
            used[trail] = _used_lengths((sub != 32) & (sub != 0))
    codes[codes == 0] = 32
    longest = int(used.max()) if m else 0
    if width > longest + 16:            # a generous declared length: keep what is used
        codes = np.ascontiguousarray(codes[:, :max(longest, 1)])
    return codes, used, (np.flatnonzero(ctrl) if m else np.zeros(0, dtype=np.int64))


def _char_column(s: pd.Series, v: VariableMeta, ds: str, problems: list[Problem]
                 ) -> _Column:
    """Check one character variable and find its length.

    Algorithm (TCG §4.1: ASCII, lengths; XPT v5 200-byte limit):
        1. Non-string values (numbers, bytes, ...) are errors; missing values
           (NaN/None/NA) and "" are written as blanks.
        2. Fast path, in blocks of records: numpy ASCII-encodes each block into a
           fixed-width byte array in C (``_ascii_block``), giving each record's used
           length (trailing blanks carry nothing: SAS pads with blanks); missing
           values and padding become blanks. The bytes are kept for the writer (one
           copy of the text, in blocks; the writer streams them into the records).
        3. Slow path (some value is not ASCII): the column becomes a UCS-4 array whose
           uint32 code points locate every non-ASCII character (the first one of each
           record is reported) and give UTF-8 byte lengths for the checks.
        4. Control characters (tab, line break, NUL, ...) are errors: printable text only.
        5. Length = max used, at least 1. Values over 200 bytes are errors; a declared
           length smaller than a value is an error (never truncated); a larger
           declared length is reduced to the max used (TCG §4.1).
    """
    n = len(s)
    col = _Column(v.name, v.label, 2, 1, parse_format(v.format) or ("", 0, 0))
    dtype = s.dtype
    if (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype)
            or pd.api.types.is_timedelta64_dtype(dtype)) and not isinstance(
                dtype, pd.CategoricalDtype):
        if s.notna().any():
            problems.append(Problem(
                f"character variable holds {dtype} data", file=ds, column=v.name,
                hint="convert the values to text in the derivation, or declare the "
                     "variable Num"))
            return col
        s = pd.Series([""] * n, index=s.index, dtype=object)  # all missing -> blanks
    obj = s.to_numpy(dtype=object)       # may share the frame's array: never mutate it
    if n and not isinstance(dtype, pd.StringDtype):
        inferred = pd.api.types.infer_dtype(obj, skipna=True)
        if inferred not in ("string", "empty"):
            # .str methods give NaN for elements without that str method (numbers,
            # bytes, ...): a vectorised "is this a Python str" test
            try:
                nonstr = pd.Series(obj, dtype=object).str.isnumeric().isna().to_numpy().copy()
            except AttributeError:      # .str refuses a column without any strings
                nonstr = np.ones(n, dtype=bool)
            nonstr &= ~pd.isna(obj)
            rows = np.flatnonzero(nonstr)
            shown = obj
            _report_rows(problems, ds, v.name, rows,
                         lambda k, i: f"character variable holds non-text value "
                                      f"{_preview(shown[i])}",
                         "convert the value to text in the derivation", "non-text values")
            obj = obj.copy()
            obj[rows] = ""

    guess = _width_guess(obj, v.length) if n else 0
    chunks, used_parts, control = [], [], []
    for start in range(0, n, CHECK_BLOCK):
        r = _ascii_block(obj[start:start + CHECK_BLOCK], guess)
        if r is None:
            break
        chunks.append(r[0])
        used_parts.append(r[1])
        control.append(r[2] + start)
    else:
        r = ()
    ctrl_rows = np.concatenate(control) if control else np.zeros(0, dtype=np.int64)
    if r is not None and len(ctrl_rows):
        def _ctrl(k, i):
            ch = next(c for c in str(obj[i]) if ord(c) < 32 or ord(c) == 127)
            return (f"control character {ch!r} (U+{ord(ch):04X}) in value {_preview(obj[i])}")
        _report_rows(problems, ds, v.name, ctrl_rows, _ctrl,
                     "remove tabs, line breaks and other control characters (a transport file holds "
                     "printable ASCII); for free text use `ascii: transliterate`, which turns them into blanks",
                     "control characters")
    if r is None:                                    # slow path: some value not ASCII
        missing = pd.isna(obj)
        text = obj.copy()
        text[missing] = ""
        u = text.astype("U")
        codes = u.view(np.uint32).reshape(n, u.dtype.itemsize // 4)
        high = codes > 127
        rows = np.flatnonzero(high.any(axis=1))
        first = high[rows].argmax(axis=1)

        def _desc(k, i):
            ch = chr(int(codes[i, first[k]]))
            return (f"non-ASCII character {ch!r} (U+{ord(ch):04X}) at position "
                    f"{int(first[k]) + 1} in value {_preview(text[i])}")
        _report_rows(problems, ds, v.name, rows, _desc,
                     "use ASCII only (FDA TCG §4.1, XPT v5 is ASCII); e.g. 'u' for 'µ', plain "
                     "quotes and hyphens", "non-ASCII characters")
        # used length in UTF-8 bytes, for the byte-length checks
        extra = ((codes > 0x7F).sum(axis=1) + (codes > 0x7FF).sum(axis=1)
                 + (codes > 0xFFFF).sum(axis=1))
        used = _used_lengths((codes != 32) & (codes != 0)) + extra
        writable = False
    else:
        used = np.concatenate(used_parts) if n else np.zeros(0, dtype=np.int64)
        writable = True

    maxlen = max(int(used.max()) if n else 0, 1)
    too_long = np.flatnonzero(used > MAX_CHAR)
    if len(too_long):                                # XPT v5, TCG §4.1
        writable = False
        _report_rows(problems, ds, v.name, too_long,
                     lambda k, i: f"value is {int(used[i])} bytes, more than the XPT v5 "
                                  f"limit of {MAX_CHAR}: {_preview(obj[i])}",
                     "split the text over several variables or into SUPP-- "
                     "(SDTMIG 4.5.3.2)", f"values longer than {MAX_CHAR} bytes")
    if v.length is not None and maxlen > v.length:   # never truncate
        _report_rows(problems, ds, v.name, np.flatnonzero(used > v.length),
                     lambda k, i: f"value is {int(used[i])} bytes, longer than the "
                                  f"declared length {v.length}: {_preview(obj[i])}",
                     f"raise the declared length to at least {maxlen} (values are "
                     f"never truncated)", "values longer than the declared length")
    col.length = min(maxlen, MAX_CHAR)
    if writable:
        col.chunks = chunks
    return col


def _datetime_numbers(arr: np.ndarray, kind: str | None, v: VariableMeta, ds: str,
                      problems: list[Problem]) -> np.ndarray | None:
    """SAS numbers from datetime64/timedelta64 values (NaT -> NaN).

    SAS dates are days since 1960-01-01, datetimes seconds since 1960-01-01T00:00,
    times seconds since midnight; the format decides which one (SAS dates carry no
    unit of their own). Dates before 1960 are negative.
    """
    where = dict(file=ds, column=v.name)
    unit, count = np.datetime_data(arr.dtype)
    per_s = np.timedelta64(1, "s") / np.timedelta64(count, unit)     # ticks per second
    per_day = per_s * 86400
    nat = np.isnat(arr)
    if arr.dtype.kind == "m":
        if kind not in (None, "time"):
            problems.append(Problem(
                f"time-of-day (timedelta) values with {kind} format {v.format!r}", **where,
                hint="use TIME8. or E8601TM. for durations since midnight"))
            return None
        ticks = arr.astype(np.int64).astype(np.float64)
        out = ticks / per_s
    else:
        if kind is None:
            problems.append(Problem(
                f"datetime values need a date, datetime or time format, got {v.format!r}",
                **where, hint="declare DATE9. (days since 1960) or DATETIME20. (seconds "
                              "since 1960) so the SAS unit is known"))
            return None
        ticks = (arr - _SAS_EPOCH.astype(arr.dtype)).astype(np.int64)
        if kind == "date":
            days, rem = np.divmod(ticks, np.int64(round(per_day)))
            rows = np.flatnonzero((rem != 0) & ~nat)
            if len(rows):
                _report_rows(problems, ds, v.name, rows,
                             lambda k, i: f"value {str(arr[i])!r} has a time of day but the "
                                       f"format {v.format!r} is a date",
                             "normalise to midnight (.dt.normalize()) or use DATETIME20.",
                             "a time of day under a date format")
            out = days.astype(np.float64)
        elif kind == "datetime":
            out = ticks.astype(np.float64) / per_s
        else:
            out = np.mod(ticks, np.int64(round(per_day))).astype(np.float64) / per_s
    out[nat] = np.nan
    return out


def _num_column(s: pd.Series, v: VariableMeta, ds: str, problems: list[Problem]
                ) -> _Column:
    """Check one numeric variable and turn it into SAS numbers (float64).

    Algorithm (XPT v5 numeric fields, TS-140):
        1. Get float64 values: numeric dtypes directly (NA -> NaN); datetime-likes
           converted to SAS dates/datetimes/times by the format; text columns parsed
           with ``pd.to_numeric`` (blank text is missing, other non-numbers are errors).
        2. +/-inf, |x| >= 16**63 (overflow) and 0 < |x| < 16**-65 (underflow to 0) are
           errors: the IBM-370 double cannot hold them.
        3. The writer encodes the values block by block with ``ieee_to_ibm`` (8 bytes,
           big-endian).
    """
    n = len(s)
    parsed = parse_format(v.format) or ("", 0, 0)
    kind = _format_kind(parsed[0])
    col = _Column(v.name, v.label, 1, 8, parsed)
    where = dict(file=ds, column=v.name)
    hint_num = "numeric variables hold numbers (or dates with a date format)"
    dtype = s.dtype
    values: np.ndarray | None = None
    if pd.api.types.is_bool_dtype(dtype):
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        if getattr(dtype, "tz", None) is not None:
            s = s.dt.tz_localize(None)   # keep the wall-clock time; SAS has no time zone
        values = _datetime_numbers(s.to_numpy(), kind, v, ds, problems)
    elif pd.api.types.is_timedelta64_dtype(dtype):
        values = _datetime_numbers(s.to_numpy(), kind, v, ds, problems)
    elif pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        if pd.api.types.is_integer_dtype(dtype) and n:
            # a double holds integers exactly only up to 2**53 (compared as integers)
            present = s.notna().to_numpy()
            ints = s.to_numpy()[present] if present.all() else s.dropna().to_numpy()
            rows = np.flatnonzero(present)[(ints > 2**53) | (ints < -(2**53))]
            if len(rows):
                _report_rows(problems, ds, v.name, rows,
                             lambda k, i: f"integer {s.iloc[i]} cannot be stored exactly "
                                          f"in 8 bytes", "store it as text",
                             "integers beyond 2**53")
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        inferred = pd.api.types.infer_dtype(s, skipna=True)
        try:
            if inferred in ("date", "datetime", "datetime64"):
                conv = pd.to_datetime(s)
                if getattr(conv.dtype, "tz", None) is not None:
                    conv = conv.dt.tz_localize(None)
                values = _datetime_numbers(conv.to_numpy(), kind, v, ds, problems)
            elif inferred == "time":
                conv = pd.to_timedelta(s.astype(object).where(s.notna()).astype("str"))
                values = _datetime_numbers(conv.to_numpy(), kind or "time", v, ds, problems)
            elif inferred == "timedelta":
                values = _datetime_numbers(pd.to_timedelta(s).to_numpy(), kind, v, ds, problems)
        except (ValueError, TypeError) as exc:
            problems.append(Problem(f"cannot read the values as dates/times: {exc}", **where,
                                    hint=hint_num))
            return col
        if values is None and inferred not in ("date", "datetime", "datetime64", "time",
                                               "timedelta"):
            text = s.astype("str").str.strip() if n else pd.Series([], dtype="str")
            blank = (text == "").to_numpy(dtype=bool, na_value=False)
            nums = pd.to_numeric(text.mask(blank), errors="coerce")
            values = pd.Series(nums).to_numpy(dtype=np.float64, na_value=np.nan).copy()
            bad = np.flatnonzero(s.notna().to_numpy() & ~blank & np.isnan(values))
            if len(bad):
                original = s.to_numpy(dtype=object)
                _report_rows(problems, ds, v.name, bad,
                             lambda k, i: f"non-numeric value {_preview(original[i])} in a "
                                       f"numeric variable", hint_num, "non-numeric values")
                values[bad] = np.nan
    if values is None:
        return col

    with np.errstate(invalid="ignore"):
        mag = np.abs(values)
        # one cheap pass decides; the offending records are located only if needed
        bad = (np.fmax.reduce(mag, initial=0.0) >= IBM_MAX
               or bool(((mag > 0) & (mag < IBM_MIN)).any())) if len(mag) else False
        inf = over = under = np.zeros(0, dtype=np.int64)
        if bad:
            inf = np.flatnonzero(np.isinf(mag))
            over = np.flatnonzero(np.isfinite(mag) & (mag >= IBM_MAX))
            under = np.flatnonzero((mag > 0) & (mag < IBM_MIN))
    if len(inf):
        _report_rows(problems, ds, v.name, inf,
                     lambda k, i: f"value {float(values[i])} is infinite; XPT cannot store it",
                     "set it to missing or fix the derivation (division by zero?)",
                     "infinite values")
    if len(over):
        _report_rows(problems, ds, v.name, over,
                     lambda k, i: f"value {float(values[i])!r} overflows the IBM-370 double "
                                  f"(|x| < {IBM_MAX:.4g})",
                     "rescale the value or store as text", "overflowing values")
    if len(under):
        _report_rows(problems, ds, v.name, under,
                     lambda k, i: f"value {float(values[i])!r} underflows the IBM-370 double "
                                  f"to 0 (|x| >= {IBM_MIN:.4g})",
                     "rescale the value or round to 0", "underflowing values")
    if not bad:
        col.values = values
    return col


def _analyse(df: pd.DataFrame, meta: DatasetMeta) -> tuple[list[Problem], list[_Column]]:
    """Run every check; return the problems and the checked columns in metadata order."""
    problems: list[Problem] = []
    ds = meta.name
    _check_names(meta, problems)
    cols = list(df.columns)
    dup = pd.Index(cols)[pd.Index(cols).duplicated()].unique()
    for name in dup:
        problems.append(Problem(f"column {name!r} appears more than once in the data",
                                file=ds, column=str(name), hint="drop the duplicate"))
    declared = set(meta.names)
    for name in cols:
        if name not in declared:
            problems.append(Problem(f"column {name!r} is in the data but not in the "
                                    f"dataset metadata", file=ds, column=str(name),
                                    hint="add it to the spec or drop it"))
    # Numeric columns are checked in a second thread while this one checks the text
    # columns (numpy's float work releases the GIL, encoding Python strings cannot).
    # Problems are collected per variable and joined in metadata order (deterministic).
    entries: list[tuple[list[Problem], _Column | Future | None]] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        for v in meta.variables:
            found: list[Problem] = []
            if v.name not in cols:
                found.append(Problem(f"variable {v.name!r} is in the metadata but not in "
                                     f"the data", file=ds, column=v.name,
                                     hint="derive it or remove it from the spec"))
                entries.append((found, None))
            elif v.name in dup:
                entries.append((found, None))
            elif v.type == "Num":
                entries.append((found, pool.submit(_num_column, df[v.name], v, ds, found)))
            else:
                entries.append((found, _char_column(df[v.name], v, ds, found)))
        out: list[_Column] = []
        for found, col in entries:
            if isinstance(col, Future):
                col = col.result()
            problems.extend(found)
            if col is not None:
                out.append(col)
    return problems, out


def check_xpt(df: pd.DataFrame, meta: DatasetMeta) -> list[Problem]:
    """List every FDA TCG §4.1 / SAS XPT v5 violation of ``df`` under ``meta``; write nothing.

    Args:
        df: the dataset; must have exactly the columns named in ``meta.variables``.
        meta: dataset metadata (name, label, variables with type/length/format).

    Returns:
        All problems (empty list when the frame can be written). Each names the dataset
        (``file``), the variable (``column``), the 1-based record number (``row``) for
        value problems, the offending value, and a hint. Per variable and check the
        first 20 records are listed, then one Problem with the count of the rest.

    Checks, in order:
        1. Dataset and variable names: 1-8 characters, A-Z, 0-9, _, starting with a
           letter; labels <= 40 characters, ASCII only (TCG §4.1).
        2. Formats parse as NAMEw.d with a name <= 8 characters.
        3. Columns equal the declared variables (no extra, none missing, no duplicates).
        4. Char: text only, ASCII only (first offending character reported), <= 200
           bytes, not longer than a declared length (never truncated).
        5. Num: numbers or datetime-likes (with a date/datetime/time format);
           non-numeric text, +/-inf, overflow (>= 16**63) and non-zero underflow
           (< 16**-65) are errors.
    """
    return _analyse(df, meta)[0]


# --------------------------------------------------------------------------- writing

def _sas_datetime(ts: datetime.datetime) -> bytes:
    """ddMMMyy:hh:mm:ss, e.g. 05MAR24:14:07:09 (TS-140 header timestamps, 2-digit year).

    Built by hand: ``strftime('%b')`` depends on the locale.
    """
    return (f"{ts.day:02d}{_MONTHS[ts.month - 1]}{ts.year % 100:02d}:"
            f"{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}").encode("ascii")


def _field(text: str, width: int) -> bytes:
    """Left-aligned, blank-padded ASCII field of exactly ``width`` bytes."""
    raw = text.encode("ascii")
    assert len(raw) <= width, (text, width)
    return raw.ljust(width, b" ")


def _header_record(kind: str, digits: str = "0" * 30) -> bytes:
    rec = b"HEADER RECORD*******" + _field(kind, 8) + b"HEADER RECORD!!!!!!!" \
        + digits.encode("ascii") + b"  "
    assert len(rec) == RECORD
    return rec


def _pad80(raw: bytes) -> bytes:
    return raw + b" " * (-len(raw) % RECORD)


def _headers(meta: DatasetMeta, cols: list[_Column], created: datetime.datetime) -> bytes:
    """Library, member, descriptor, NAMESTR and OBS header records (TS-140 layout)."""
    stamp = _sas_datetime(created)
    version = _field(SAS_VERSION, 8)
    osname = _field(SAS_OS, 8)
    out = [
        _header_record("LIBRARY"),
        # real header: 'SAS', 'SAS', 'SASLIB', version, OS, 24 blanks, created
        b"SAS     SAS     SASLIB  " + version + osname + b" " * 24 + stamp,
        # second real header: modified + 64 blanks
        stamp + b" " * 64,
        # member header: 0160 = length of the member descriptor, 0140 = NAMESTR length
        _header_record("MEMBER", "000000000000000001600000000140"),
        _header_record("DSCRPTR"),
        # member header data: 'SAS', dataset name, 'SASDATA', version, OS, 24 blanks, created
        b"SAS     " + _field(meta.name, 8) + b"SASDATA " + version + osname + b" " * 24
        + stamp,
        # second member record: modified, 16 blanks, dataset label (40), dataset type (8)
        stamp + b" " * 16 + _field(meta.label, 40) + b" " * 8,
        _header_record("NAMESTR", f"000000{len(cols):04d}" + "0" * 20),
    ]
    namestrs = []
    pos = 0
    for number, c in enumerate(cols, start=1):
        fname, fwidth, fdec = c.fmt
        namestrs.append(struct.pack(
            ">hhhh8s40s8shhh2s8shhi52s",
            c.ntype, 0, c.length, number,
            _field(c.name, 8), _field(c.label, 40), _field(fname, 8),
            fwidth, fdec, 0, b"\0\0",
            b" " * 8, 0, 0, pos, b"\0" * 52))
        assert len(namestrs[-1]) == NAMESTR_LEN
        pos += c.length
    out.append(_pad80(b"".join(namestrs)))
    out.append(_header_record("OBS"))
    raw = b"".join(out)
    assert all(len(r) % RECORD == 0 for r in out)
    return raw


def _given_lengths(cols: list[_Column], lengths: dict[str, int], ds: str) -> list[Problem]:
    """Widen character columns to the lengths the caller gives (``fill`` pads with blanks);
    a length shorter than a value or over 200 is a problem (values are never truncated)."""
    problems = []
    for c in cols:
        want = lengths.get(c.name)
        if c.ntype != 2 or want is None:
            continue
        if not c.length <= want <= MAX_CHAR:
            problems.append(Problem(f"given length {want} is outside {c.length}..{MAX_CHAR} (the "
                                    f"longest value has {c.length} bytes)", file=ds, column=c.name))
            continue
        c.length = int(want)
    return problems


def write_xpt(path, df: pd.DataFrame, meta: DatasetMeta,
              created: datetime.datetime, *, lengths: dict[str, int] | None = None) -> dict:
    """Write ``df`` as a SAS XPORT v5 file named by ``meta`` (FDA TCG §3.3.1, §4.1).

    Args:
        path: output file (written to a temporary file next to it, then renamed, so a
            failed write never leaves a half file).
        df: dataset with exactly the columns of ``meta.variables``.
        meta: dataset name/label and variables (order, name, label, type, length,
            format).
        created: timestamp stored as created and modified in the headers; the output is
            byte-for-byte determined by (df, meta, created, lengths).
        lengths: character variable -> length to write instead of the longest value of
            ``df`` (a study-wide length, FDA TCG §4.1.5.2, given by the package: a split
            part keeps the full dataset's lengths); never shorter than a value.

    Returns:
        ``{"records": n, "variables": k, "lengths": {VAR: length}}``.

    Raises:
        ConformanceError: with all problems ``check_xpt`` finds; nothing is written.

    Algorithm:
        1. Run the checks of ``check_xpt`` (which also fix each character length and
           turn numeric columns into SAS numbers); raise if there is any problem.
        2. Write the headers (TS-140): LIBRARY, MEMBER, DSCRPTR, NAMESTR (one 140-byte
           record per variable: type, length, number, name, label, format name, width,
           decimals, position in the record), OBS.
        3. Observations, in blocks of ~4 MB of records: each column fills its byte
           range of a fixed-width (records x record length) numpy buffer - the
           ASCII text bytes kept by the checks, cut/blank-padded to the length, or
           the numbers as big-endian IBM-370 doubles (missing -> 0x2E 00 ..); a
           second thread writes block k while block k+1 is filled. Pad the end with
           blanks to a multiple of 80 bytes.
    """
    problems, cols = _analyse(df, meta)
    problems += _given_lengths(cols, lengths or {}, meta.name)
    if problems:
        raise ConformanceError(problems)
    n = len(df)
    reclen = sum(c.length for c in cols)
    offsets = np.cumsum([0] + [c.length for c in cols])
    header = _headers(meta, cols, created)
    path = Path(path)
    # ~4 MB of records per block (cache-sized); a power of two, so that every block
    # lies inside one CHECK_BLOCK chunk of the text bytes kept by the checks
    block = 1 << max(0, min(CHECK_BLOCK.bit_length() - 1,
                            ((4 << 20) // max(reclen, 1)).bit_length() - 1))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # Double buffering: a second thread writes block k (the write releases the GIL)
        # while this one fills block k+1. Moving the numpy assembly to that thread too
        # was slower: both threads then fight over the GIL.
        with os.fdopen(fd, "wb") as fh, ThreadPoolExecutor(max_workers=1) as io:
            fh.write(header)
            bufs = [np.empty((min(block, n), reclen), dtype=np.uint8) for _ in range(2)]
            pending: Future | None = None
            for k, start in enumerate(range(0, n, block)):
                stop = min(start + block, n)
                rows = bufs[k % 2][: stop - start]
                for c, off in zip(cols, offsets):
                    c.fill(rows[:, off:off + c.length], start, stop)
                if pending is not None:
                    pending.result()          # block k-1 written; block k-2 freed this buffer
                pending = io.submit(fh.write, memoryview(rows).cast("B"))
            if pending is not None:
                pending.result()
            fh.write(b" " * (-(n * reclen) % RECORD))
        os.chmod(tmp, 0o644)              # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return {"records": n, "variables": len(cols),
            "lengths": {c.name: c.length for c in cols}}


# --------------------------------------------------------------------------- reading

def read_xpt(path) -> tuple[pd.DataFrame, dict]:
    """Read an XPT file with pyreadstat (tests and validation; not used by the build).

    Returns:
        (df, info) with info = {"labels": {VAR: label}, "lengths": {VAR: storage
        width}, "formats": {VAR: SAS format as stored, e.g. "DATE9"}, "types": {VAR:
        "string"/"double"}, "table_name": dataset name, "file_label": dataset label}.
        Columns with date/datetime/time formats come back as pyreadstat converts them
        (datetime.date / datetime / time objects).
    """
    import pyreadstat

    df, meta = pyreadstat.read_xport(str(path))
    info = {
        "labels": dict(meta.column_names_to_labels),
        "lengths": dict(meta.variable_storage_width),
        "formats": dict(meta.original_variable_types),
        "types": dict(meta.readstat_variable_types),
        "table_name": meta.table_name,
        "file_label": meta.file_label,
    }
    return df, info
