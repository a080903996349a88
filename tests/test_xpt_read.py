"""Tests for cdisc.xpt_read: our vectorised SAS XPORT v5/v8 reader against pyreadstat.

Equivalence: every XPT file of the shipped study build, files written by pyreadstat itself
(v5, v8 with long names, labels and formats), files written by cdisc.xpt.write_xpt and
files put together byte by byte here (special missing values, short numbers, IBM bit
patterns, NUL bytes, non-ASCII bytes) give the frame pyreadstat gives: same columns, same
dtypes, same values (floats bit for bit), same labels, formats, lengths and types. Where
we deliberately differ (module docstring of cdisc.xpt_read), the test says so and checks
both sides. Damaged files give InputError naming the file, never another exception.
"""
from __future__ import annotations

import datetime
import struct

import numpy as np
import pandas as pd
import pyreadstat
import pytest

import cdisc.xpt_read as xr
from cdisc.errors import InputError
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.rawio import _check_xpt
from cdisc.xpt import IBM_MAX, IBM_MIN, ieee_to_ibm, write_xpt
from cdisc.xpt_read import XptMeta, read_xport

CREATED = datetime.datetime(2024, 3, 5, 14, 7, 9)
TYPES = {"string": "Char", "double": "Num"}


# ----------------------------------------------------------------------------- helpers

def assert_same(path, *, dates: bool = False, encoding: str | None = None) -> tuple[pd.DataFrame, XptMeta]:
    """Our frame and metadata equal pyreadstat's for ``path``; returns ours."""
    kw = {} if dates else {"disable_datetime_conversion": True}
    if encoding:
        kw["encoding"] = {"latin-1": "latin1"}.get(encoding, encoding)   # iconv's name
    theirs, tm = pyreadstat.read_xport(str(path), **kw)
    ours, om = read_xport(path, datetime_as_numbers=not dates,
                          **({"encoding": encoding} if encoding else {}))
    assert list(ours.columns) == list(theirs.columns)
    assert ours.shape == theirs.shape
    assert isinstance(ours.index, pd.RangeIndex) and ours.index.equals(theirs.index)
    for c in theirs.columns:
        a, b = theirs[c], ours[c]
        assert b.dtype == a.dtype, (path, c, a.dtype, b.dtype)
        x, y = a.to_numpy(), b.to_numpy()
        if x.dtype == np.float64:
            nx, ny = np.isnan(x), np.isnan(y)
            assert np.array_equal(nx, ny), (path, c)
            assert np.array_equal(x[~nx].view(np.uint64), y[~ny].view(np.uint64)), (path, c)
        else:
            xl, yl = x.tolist(), y.tolist()
            assert [type(v) for v in xl] == [type(v) for v in yl], (path, c)
            assert all(u == v or (u != u and v != v) for u, v in zip(xl, yl)), (path, c)
    # metadata: pyreadstat gives None for a blank label or format
    assert om.column_names == list(tm.column_names)
    assert om.column_labels == [v or "" for v in tm.column_labels]
    assert om.pyreadstat_formats == [tm.original_variable_types[c] for c in tm.column_names]
    assert om.lengths_by_name == tm.variable_storage_width
    assert om.types_by_name == {k: TYPES[v] for k, v in tm.readstat_variable_types.items()}
    assert om.table_name == (tm.table_name or "")
    assert om.file_label == (tm.file_label or "")
    assert om.records == len(theirs)
    return ours, om


def V(name, label="", type="Char", **kw) -> VariableMeta:
    return VariableMeta(name=name, label=label, type=type, **kw)


def ours_xpt(path, df, variables, name="T", label="Test dataset"):
    write_xpt(path, df, DatasetMeta(name=name, label=label, variables=variables), CREATED)
    return path


def _hdr(kind: str, digits: str = "0" * 30) -> bytes:
    return b"HEADER RECORD*******" + kind.encode().ljust(8) + b"HEADER RECORD!!!!!!!" + \
        digits.encode().ljust(30) + b"  "


def _pad(b: bytes, fill: bytes = b" ") -> bytes:
    return b + fill * (-len(b) % 80)


def craft(variables, rows: bytes, *, version: int = 5, obs: int | None = None,
          nlen: int = 140, labels: bytes | None = None, labels_kind: str = "LABELV8",
          label_count: int = 0, name: str = "CRAFT", label: str = "crafted") -> bytes:
    """A transport file put together by hand (TS-140): ``variables`` are
    (name, ntype, length) or (name, ntype, length, label, (fmt, w, d)); ``rows`` the data
    area before padding."""
    k = _KINDS8 if version == 8 else _KINDS5
    stamp = b"05MAR24:14:07:09"
    out = [_hdr(k[0]), b"SAS     SAS     SASLIB  9.4     Linux   " + b" " * 24 + stamp,
           stamp + b" " * 64, _hdr(k[1], "00000000000000000160000000" + f"{nlen:04d}"), _hdr(k[2])]
    if version == 5:
        out.append(b"SAS     " + name.encode().ljust(8) + b"SASDATA 9.4     Linux   " + b" " * 24 + stamp)
    else:
        out.append(b"SAS     " + name.encode().ljust(32) + b"SASDATA 9.4     Linux   " + stamp)
    out.append(stamp + b" " * 16 + label.encode().ljust(40) + b"DATA    ")
    out.append(_hdr(k[3], f"000000{len(variables):04d}" + "0" * 20))
    nam, pos = b"", 0
    for i, v in enumerate(variables, start=1):
        vname, ntype, length = v[:3]
        vlabel = v[3] if len(v) > 3 else ""
        fname, fw, fd = v[4] if len(v) > 4 else ("", 0, 0)
        rec = struct.pack(">hhhh8s40s8shhh2s8shhi", ntype, 0, length, i, vname.encode()[:8].ljust(8),
                          vlabel.encode()[:40].ljust(40), fname.encode().ljust(8), fw, fd, 0, b"\0\0",
                          b" " * 8, 0, 0, pos)
        rec += struct.pack(">32sh", vname.encode().ljust(32), len(vlabel)) + b"\0" * 18 \
            if version == 8 else b"\0" * 52
        nam += rec[:nlen]
        pos += length
    out.append(_pad(nam))
    if labels is not None:
        out.append(_hdr(labels_kind, f"{label_count:<5d}"))
        out.append(_pad(labels))
    out.append(_hdr(k[4], f"{obs:15d}" if obs is not None else "0" * 30))
    out.append(_pad(rows))
    return b"".join(out)


_KINDS5 = ("LIBRARY", "MEMBER", "DSCRPTR", "NAMESTR", "OBS")
_KINDS8 = ("LIBV8", "MEMBV8", "DSCPTV8", "NAMSTV8", "OBSV8")


def be8(values) -> list[bytes]:
    return [int(v).to_bytes(8, "big") for v in values]


# ---------------------------------------------------------------------- the study build

def test_every_file_of_the_study_build_equals_pyreadstat(built):
    files = built.files()
    assert len(files) == 46   # 29 + ADEX + 12 new SDTM + ADCM, ADMH, ADVS, ADCRS (issue 12)
    assert {f.parent.name for f in files} == {"sdtm", "adam"}
    records = 0
    for f in files:
        df, meta = assert_same(f)
        assert_same(f, dates=True)
        records += len(df)
        assert meta.version == 5 and meta.table_name == f.stem.upper()
        # XptMeta formats are the SAS texts
        for fmt, rs in zip(meta.formats, meta.pyreadstat_formats):
            assert (fmt == "") == (rs is None)
            if rs is not None:
                assert fmt.rstrip(".") == rs or fmt == rs + "."
    assert records > 3000


def test_study_build_char_columns_are_str_with_empty_strings(built):
    df, meta = read_xport(built.out / built.output("AE")["file"])
    for name, t in zip(meta.column_names, meta.types):
        if t == "Char":
            assert df[name].dtype == "str"
            assert not df[name].isna().any()
        else:
            assert df[name].dtype == np.float64
    assert (df == "").any().any()          # blank values are "" (not NaN), as pyreadstat gives


# ----------------------------------------------------------------- files pyreadstat wrote

@pytest.mark.parametrize("version", [5, 8])
def test_pyreadstat_written_files(tmp_path, version):
    n = 300
    rng = np.random.default_rng(version)
    df = pd.DataFrame({
        "STUDYID": ["S-1"] * n,
        "TEXT": [f"value {i} " + "x" * (i % 37) for i in range(n)],
        "BLANK": [""] * n,
        "NUM": rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n),
        "DATE": np.where(np.arange(n) % 7 == 0, np.nan, rng.integers(-20000, 30000, n)).astype(float),
        "DTM": np.where(np.arange(n) % 5 == 0, np.nan, rng.uniform(-2e9, 2e9, n)),
        "TM": np.where(np.arange(n) % 3 == 0, np.nan, rng.uniform(0, 86400, n)),
    })
    df.loc[4, "NUM"] = np.nan
    df.loc[5, "NUM"] = -0.0
    df.loc[6, "NUM"] = np.inf
    df.loc[7, "NUM"] = -np.inf
    formats = {"NUM": "BEST12.", "DATE": "DATE9.", "DTM": "DATETIME20.", "TM": "TIME8.",
               "TEXT": "$CHAR200."}
    labels = ["Study Identifier", "Text", "", "Number", "Date", "Datetime", "Time"]
    if version == 8:
        df = df.rename(columns={"TEXT": "A_LONG_VARIABLE_NAME_OF_32_CHARS"})
        formats["A_LONG_VARIABLE_NAME_OF_32_CHARS"] = formats.pop("TEXT")
        labels[1] = "a label that is longer than the forty characters of version 5"
    p = tmp_path / f"p{version}.xpt"
    pyreadstat.write_xport(df, str(p), file_format_version=version, table_name="PYRS",
                           file_label="written by pyreadstat", column_labels=labels,
                           variable_format=formats)
    ours, meta = assert_same(p)
    assert_same(p, dates=True)
    assert meta.version == version
    assert meta.column_labels[1] == labels[1]
    assert meta.formats_by_name["DATE"] == "DATE9." and meta.formats_by_name["NUM"] == "BEST12."
    assert ours["NUM"].iloc[5] == 0.0 and ours["NUM"].iloc[6] == np.inf and ours["NUM"].iloc[7] == -np.inf
    if version == 8:
        assert b"LABELV8" in p.read_bytes()
        assert meta.column_names[1] == "A_LONG_VARIABLE_NAME_OF_32_CHARS"


def test_pyreadstat_v8_labelv9_long_format(tmp_path):
    p = tmp_path / "v9.xpt"
    df = pd.DataFrame({"X": [1.0, 2.0], "LONGNAMEVARIABLE": ["a", "b"]})
    pyreadstat.write_xport(df, str(p), file_format_version=8,
                           variable_format={"X": "DATETIMEXYZ20.", "LONGNAMEVARIABLE": "$CHAR5."})
    assert b"LABELV9" in p.read_bytes()
    _, meta = assert_same(p)
    assert_same(p, dates=True)
    assert meta.formats == ["DATETIMEXYZ20.", "$CHAR5."]


@pytest.mark.parametrize("version", [5, 8])
def test_empty_dataset_written_by_pyreadstat(tmp_path, version):
    p = tmp_path / "empty.xpt"
    df = pd.DataFrame({"A": pd.Series([], dtype=str), "N": pd.Series([], dtype=float),
                       "D": pd.Series([], dtype=float)})
    pyreadstat.write_xport(df, str(p), file_format_version=version, table_name="E",
                           variable_format={"D": "DATE9."})
    ours, meta = assert_same(p)
    assert_same(p, dates=True)
    assert ours.shape == (0, 3) and meta.records == 0
    assert ours["A"].dtype == object          # as pyreadstat: no values, no str inference


def test_empty_dataset_written_by_us(tmp_path):
    p = ours_xpt(tmp_path / "e.xpt", pd.DataFrame({"A": pd.Series([], dtype="str"),
                                                    "N": pd.Series([], dtype=float)}),
                 [V("A"), V("N", type="Num")])
    ours, meta = assert_same(p)
    assert len(ours) == 0 and meta.records == _check_xpt(p).records == 0


# -------------------------------------------------------------- files our writer wrote

def test_200_byte_character_variable(tmp_path):
    n = 50
    text = ["".join(chr(65 + (i * 7 + j) % 26) for j in range(200)) for i in range(n)]
    text[3] = " leading blank kept" + " " * 10
    text[4] = ""
    df = pd.DataFrame({"LONG": text, "SHORT": ["x"] * n})
    p = ours_xpt(tmp_path / "long.xpt", df, [V("LONG", "200 bytes", format="$CHAR200."), V("SHORT")])
    ours, meta = assert_same(p)
    assert meta.lengths == [200, 1] and meta.formats[0] == "$CHAR200."
    assert ours["LONG"].tolist()[:3] == text[:3]
    assert ours["LONG"].iloc[3] == " leading blank kept" and ours["LONG"].iloc[4] == ""


def test_numbers_at_the_ibm_range_limits(tmp_path):
    big = np.nextafter(IBM_MAX, 0.0)
    x = np.array([IBM_MIN, -IBM_MIN, big, -big, np.nextafter(IBM_MIN, 1.0), 1.0, -1.0, 0.1,
                  1 / 3, 2.0 ** 52 + 1, 2.0 ** 53, -(2.0 ** 53), 5e-324 * 0 + 1e-78, 1e75, -0.0,
                  0.0, np.nan, 16.0 ** -64, 16.0 ** 62, np.pi, -np.e, 123456789.123456789])
    p = ours_xpt(tmp_path / "lim.xpt", pd.DataFrame({"X": x}), [V("X", type="Num")])
    ours, _ = assert_same(p)
    got = ours["X"].to_numpy()
    want = np.where(x == 0, 0.0, x)                      # -0 is written as 0
    ok = ~np.isnan(want)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.array_equal(got[ok].view(np.uint64), want[ok].view(np.uint64))


def test_ibm_conversion_is_bit_identical_to_readstat_on_random_patterns(tmp_path):
    """Random normalised IBM numbers with all 56 fraction bits used (SAS writes such; our
    writer never does): the dropped low bits must be dropped as ReadStat drops them."""
    rng = np.random.default_rng(7)
    n = 20000
    frac = rng.integers(1 << 52, 1 << 56, n, dtype=np.uint64)
    frac[: n // 4] >>= np.uint64(3)          # leading hex digit 1: no bit dropped
    frac[n // 4: n // 2] >>= np.uint64(2)
    frac[n // 2: 3 * n // 4] >>= np.uint64(1)
    frac |= np.uint64(1 << 52)
    exp = rng.integers(0, 128, n, dtype=np.uint64)
    sign = rng.integers(0, 2, n, dtype=np.uint64)
    bits = (sign << np.uint64(63)) | (exp << np.uint64(56)) | frac
    bits[:4] = [0x7FFFFFFFFFFFFFFE, 0x0010000000000000, 0xC110000000000000, 0x4110000000000001]
    rows = bits.astype(">u8").tobytes()
    p = tmp_path / "ibm.xpt"
    p.write_bytes(craft([("X", 1, 8)], rows))
    ours, _ = assert_same(p)
    assert ours["X"].iloc[2] == -1.0
    # our writer's IBM numbers read back to the same IEEE double
    x = ours["X"].to_numpy()
    assert np.array_equal(xr.ibm_bits_to_float(ieee_to_ibm(x)).view(np.uint64), x.view(np.uint64))


def test_short_numbers_and_special_missing_values(tmp_path):
    """Numeric lengths 3-8, zero-padded; '.', '._', '.A'-'.Z' are missing (NaN) at every length."""
    codes = [0x2E, 0x5F, 0x41, 0x4D, 0x5A]
    values = [1.0, -2.5, 100.0, 0.0, 1 / 3]
    for width in range(3, 9):
        cells = [bytes([c]) + b"\0" * (width - 1) for c in codes]
        cells += [b[:width] for b in be8(ieee_to_ibm(np.array(values)))]
        rows = b"".join(c + b"k" for c in cells)
        p = tmp_path / f"w{width}.xpt"
        p.write_bytes(craft([("X", 1, width), ("K", 2, 1)], rows))
        ours, _ = assert_same(p)
        x = ours["X"].to_numpy()
        assert np.isnan(x[: len(codes)]).all()
        assert not np.isnan(x[len(codes):]).any()
        if width == 8:
            assert x[len(codes):].tolist() == values


def test_negative_zero_and_zero_with_exponent_are_zero(tmp_path):
    """IBM -0 (0x80 00..) and zeros with an exponent: 0.0 here; ReadStat returns NaN
    (documented difference); IEEE -0.0 written by us or pyreadstat is plain 0 either way."""
    cells = be8([0x8000000000000000, 0x4000000000000000, 0xC100000000000000, 0x0100000000000000,
                 0x0000000000000000])
    p = tmp_path / "zero.xpt"
    p.write_bytes(craft([("X", 1, 8)], b"".join(cells)))
    ours, _ = read_xport(p)
    theirs, _ = pyreadstat.read_xport(str(p), disable_datetime_conversion=True)
    assert ours["X"].tolist() == [0.0] * 5
    assert not np.signbit(ours["X"].to_numpy()).any()
    assert np.isnan(theirs["X"].to_numpy()[:4]).all() and theirs["X"].iloc[4] == 0.0
    # -0.0 through our writer: stored as 0, read back as 0.0 by both
    p2 = ours_xpt(tmp_path / "negzero.xpt", pd.DataFrame({"X": [-0.0, 1.0]}), [V("X", type="Num")])
    ours2, _ = assert_same(p2)
    assert not np.signbit(ours2["X"].to_numpy()).any()


def test_unnormalised_and_length_2_numbers(tmp_path):
    """Deliberate differences: an unnormalised IBM number at its true value (ReadStat assumes
    a hidden 1 bit), and length-2 numbers decoded (ReadStat gives NaN)."""
    p = tmp_path / "unnorm.xpt"
    p.write_bytes(craft([("X", 1, 8)], b"".join(be8([0x4101000000000000, 0xC100800000000000]))))
    ours, _ = read_xport(p)
    assert ours["X"].tolist() == [1 / 16, -1 / 32]
    p2 = tmp_path / "two.xpt"
    p2.write_bytes(craft([("X", 1, 2), ("C", 2, 2)], b"\x41\x10ab\x42\x64cd.\x00ef"))
    ours2, _ = read_xport(p2)
    theirs2, _ = pyreadstat.read_xport(str(p2), disable_datetime_conversion=True)
    assert ours2["X"].tolist()[:2] == [1.0, 100.0] and np.isnan(ours2["X"].iloc[2])
    assert theirs2["X"].isna().all()
    assert ours2["C"].tolist() == theirs2["C"].tolist() == ["ab", "cd", "ef"]


# ---------------------------------------------------------------------------- text bytes

def test_nul_bytes_end_a_value_as_in_readstat(tmp_path):
    cells = [b"abcdefgh", b"abc\0efgh", b"\0bcdefgh", b"ab \0    ", b"abcdef\0 ", b"a  \0 \0  ",
             b"        ", b"\0\0\0\0\0\0\0\0", b" lead   ", b"ab\0 \0 x ", b"ab \0xy  "]
    p = tmp_path / "nul.xpt"
    p.write_bytes(craft([("C", 2, 8)], b"".join(cells)))
    ours, _ = assert_same(p)
    assert ours["C"].tolist() == ["abcdefgh", "abc", "", "ab", "abcdef", "a", "", "", " lead", "ab",
                                  "ab "]


def test_non_ascii_bytes(tmp_path):
    """UTF-8 text reads as pyreadstat reads it; a byte that is not UTF-8 is an InputError
    naming file, variable and record (pyreadstat: UnicodeDecodeError); with
    encoding='latin-1' / 'cp1252' the same text as pyreadstat with that encoding."""
    utf8 = [("µg/L".encode(), b"a"), ("Müller".encode(), b"b"), (b"plain", b"c")]
    rows = b"".join(t.ljust(10) + k for t, k in utf8)
    p = tmp_path / "utf8.xpt"
    p.write_bytes(craft([("T", 2, 10), ("K", 2, 1)], rows))
    ours, _ = assert_same(p)
    assert ours["T"].tolist() == ["µg/L", "Müller", "plain"]

    latin = [(b"\xb5g/L", b"a"), (b"M\xfcller", b"b"), (b"plain", b"c"), (b"Alzheimer\x92", b"d")]
    p2 = tmp_path / "latin.xpt"
    p2.write_bytes(craft([("T", 2, 10), ("K", 2, 1)], b"".join(t.ljust(10) + k for t, k in latin)))
    with pytest.raises(UnicodeDecodeError):
        pyreadstat.read_xport(str(p2), disable_datetime_conversion=True)
    with pytest.raises(InputError) as exc:
        read_xport(p2)
    problem = exc.value.problems[0]
    assert problem.file == str(p2) and problem.column == "T" and problem.row == 1
    assert "latin.xpt" in str(exc.value)
    ours_l, _ = assert_same(p2, encoding="latin-1")
    assert ours_l["T"].tolist()[:3] == ["µg/L", "Müller", "plain"]
    ours_c, _ = assert_same(p2, encoding="cp1252")
    assert ours_c["T"].iloc[3] == "Alzheimer\u2019"


def test_repeated_values_are_shared_and_collisions_fall_back(tmp_path, monkeypatch):
    """A repetitive column is decoded once per distinct value; a (simulated) hash collision
    is detected by the byte comparison and gives the same values."""
    n = 30000
    wide = np.array([f"STUDY-{i % 7}-" + "x" * (i % 3) for i in range(n)], dtype=object)
    short = np.array([f"S{i % 5}" for i in range(n)], dtype=object)
    uniq = np.array([f"U{i:07d}" for i in range(n)], dtype=object)
    df = pd.DataFrame({"WIDE": wide, "SHORT": short, "UNIQ": uniq})
    p = ours_xpt(tmp_path / "rep.xpt", df, [V("WIDE"), V("SHORT"), V("UNIQ")])
    ours, _ = assert_same(p)
    assert ours["WIDE"].tolist() == wide.tolist()
    values = ours["WIDE"].to_numpy()
    assert values[0] is values[21]                       # one str object per distinct value
    real = pd.factorize

    def collide(key):                                    # every record gets code 0 or 1
        codes, uniques = real(key)
        return codes % 2, uniques[:2]

    monkeypatch.setattr(xr, "_factorize", collide)
    p2 = ours_xpt(tmp_path / "wide.xpt", df[["WIDE"]], [V("WIDE")])     # hashed keys only
    ours2, _ = assert_same(p2)
    assert ours2["WIDE"].tolist() == wide.tolist()


# ------------------------------------------------------------------ records and padding

def test_trailing_blank_records_follow_the_file_structure(tmp_path):
    """All-Char records that are blank at the end: records reaching beyond the final 80
    bytes are records (ReadStat drops every trailing blank record: documented difference);
    one that fits in the final 80 bytes is padding. The count is the one _check_xpt gives."""
    reclen = 30
    rows = b"a" * reclen + b" " * reclen * 5       # 6 records, the last 5 blank: 180 bytes
    p = tmp_path / "blank.xpt"
    p.write_bytes(craft([("C", 2, reclen)], rows))
    ours, meta = read_xport(p)
    theirs, _ = pyreadstat.read_xport(str(p))
    # 180 bytes + 60 padding = 240; the records must reach past 240 - 80 = 160 -> 6 records
    assert meta.records == len(ours) == _check_xpt(p).records == 6
    assert ours["C"].tolist() == ["a" * reclen] + [""] * 5
    assert len(theirs) == 1
    p2 = tmp_path / "blank2.xpt"
    p2.write_bytes(craft([("C", 2, 10)], b"b" * 10 + b" " * 10))     # 2 records in 80 bytes
    ours2, meta2 = assert_same(p2)
    assert meta2.records == _check_xpt(p2).records == 1


def test_v8_observation_count_is_used_and_checked(tmp_path):
    rows = b"x" * 10 + b" " * 10 * 3
    p = tmp_path / "obs.xpt"
    p.write_bytes(craft([("C", 2, 10)], rows, version=8, obs=4))
    _, meta = read_xport(p)
    assert meta.records == 4 == _check_xpt(p).records
    bad = tmp_path / "obsbad.xpt"
    bad.write_bytes(craft([("C", 2, 10)], rows, version=8, obs=9))
    with pytest.raises(InputError, match="OBSV8 header declares 9"):
        read_xport(bad)


def test_crafted_v8_with_labelv8_block(tmp_path):
    label = "A label of more than forty characters, as v8 allows"
    entry = struct.pack(">HHH", 2, len("LONG_NAME_2"), len(label)) + b"LONG_NAME_2" + label.encode()
    rows = b"ab" + b"".join(be8(ieee_to_ibm(np.array([2.5])))) + b"cd" + b".\0\0\0\0\0\0\0"
    p = tmp_path / "l8.xpt"
    p.write_bytes(craft([("C", 2, 2), ("LONG_NAM", 1, 8, "short label")], rows, version=8, obs=2,
                        labels=entry, label_count=1))
    ours, meta = assert_same(p)
    assert meta.column_names == ["C", "LONG_NAME_2"] and meta.column_labels[1] == label
    assert ours["LONG_NAME_2"].iloc[0] == 2.5 and np.isnan(ours["LONG_NAME_2"].iloc[1])


def test_namestr_136_bytes(tmp_path):
    p = tmp_path / "vax.xpt"
    p.write_bytes(craft([("A", 2, 3), ("B", 2, 2)], b"abcde" * 3, nlen=136))
    ours, _ = read_xport(p)
    assert ours["A"].tolist() == ["abc"] * 3 and ours["B"].tolist() == ["de"] * 3


def test_metadata_formats_informats_and_header_fields(tmp_path):
    p = tmp_path / "fmt.xpt"
    p.write_bytes(craft([("D", 1, 8, "Date", ("DATE", 9, 0)), ("N", 1, 8, "Num", ("", 8, 2)),
                         ("C", 2, 4, "Char", ("$CHAR", 4, 0)), ("E", 1, 8, "ISO", ("E8601DA", 0, 0)),
                         ("Z", 1, 8)],
                        b"\0" * 8 * 2 + b"abcd" + b"\0" * 16, name="FMT", label="Formats"))
    _, meta = assert_same(p)
    assert meta.formats == ["DATE9.", "8.2", "$CHAR4.", "E8601DA.", ""]
    assert meta.pyreadstat_formats == ["DATE9", "8.2", "$CHAR4", "E8601DA", None]
    assert meta.informats == [""] * 5
    assert (meta.table_name, meta.file_label, meta.dataset_type) == ("FMT", "Formats", "DATA")
    assert meta.created == CREATED and meta.sas_version == "9.4" and meta.os_name == "Linux"
    assert meta.types == ["Num", "Num", "Char", "Num", "Num"] and meta.record_length == 36


def test_dates_converted_as_pyreadstat_converts_them(tmp_path):
    days = np.array([0, -1645, 23435, np.nan, 1.9, -1.9, 2936549])
    secs = np.array([0, -142091999.0, 2024870399.5, np.nan, 86399.9999996, -0.5, 1e9])
    p = ours_xpt(tmp_path / "dates.xpt", pd.DataFrame({"D": days, "DT": secs, "T": secs % 86400,
                                                       "E": days}),
                 [V("D", type="Num", format="DATE9."), V("DT", type="Num", format="DATETIME20."),
                  V("T", type="Num", format="TIME8."), V("E", type="Num", format="E8601DA.")])
    ours, _ = assert_same(p, dates=True)
    assert ours["D"].iloc[2] == datetime.date(2024, 2, 29)
    assert ours["DT"].dtype == "datetime64[us]"
    out = ours_xpt(tmp_path / "far.xpt", pd.DataFrame({"D": [1e7]}), [V("D", type="Num", format="DATE9.")])
    with pytest.raises(InputError, match="outside the years 1-9999"):
        read_xport(out, datetime_as_numbers=False)
    assert read_xport(out)[0]["D"].iloc[0] == 1e7


# ------------------------------------------------------------------------ damaged files

def _good(tmp_path):
    n = 40
    df = pd.DataFrame({"STUDYID": ["S"] * n, "TXT": [f"t{i}" * 3 for i in range(n)],
                       "N": np.arange(n, dtype=float)})
    return ours_xpt(tmp_path / "good.xpt", df, [V("STUDYID"), V("TXT"), V("N", type="Num")]).read_bytes()


def test_truncated_files_raise_input_error_naming_the_file(tmp_path):
    raw = _good(tmp_path)
    bad = tmp_path / "cut.xpt"
    seen = 0
    for cut in list(range(0, 1200, 7)) + list(range(80, len(raw), 80)) + [len(raw) - 1, len(raw) - 41]:
        bad.write_bytes(raw[:cut])
        try:
            df, meta = read_xport(bad)
        except InputError as exc:
            assert "cut.xpt" in str(exc)
            seen += 1
            continue
        # a cut at a record boundary inside the data area is a shorter valid v5 file
        assert cut % 80 == 0 and meta.records == _check_xpt(bad).records
    assert seen > 150


def test_corrupt_files_never_raise_anything_but_input_error(tmp_path):
    raw = bytearray(_good(tmp_path))
    rng = np.random.default_rng(3)
    bad = tmp_path / "corrupt.xpt"
    for _ in range(400):
        b = bytearray(raw)
        for i in rng.integers(0, 1000, rng.integers(1, 4)):          # headers and NAMESTRs
            b[i] = int(rng.integers(0, 256))
        bad.write_bytes(bytes(b))
        try:
            read_xport(bad)
        except InputError as exc:
            assert "corrupt.xpt" in str(exc)


@pytest.mark.parametrize("case,match", [
    ("empty", "empty"),
    ("notxpt", "not a SAS transport"),
    ("type", "has type 3"),
    ("numlen", "has length 9"),
    ("position", "starts at byte"),
    ("tail", "incomplete record"),
    ("member", "more than one dataset"),
    ("dupname", "appears twice"),
    ("labelidx", "LABELV8 entry names variable 5"),
])
def test_damage_is_reported(tmp_path, case, match):
    p = tmp_path / f"{case}.xpt"
    if case == "empty":
        p.write_bytes(b"")
    elif case == "notxpt":
        p.write_bytes(b"id,value\n1,2\n" * 10)
    elif case == "type":
        p.write_bytes(craft([("A", 3, 8)], b"x" * 8))
    elif case == "numlen":
        p.write_bytes(craft([("A", 1, 9)], b"x" * 9))
    elif case == "position":
        raw = bytearray(craft([("A", 2, 2), ("B", 2, 2)], b"abcd"))
        raw[8 * 80 + 140 + 84: 8 * 80 + 140 + 88] = struct.pack(">i", 5)
        p.write_bytes(bytes(raw))
    elif case == "tail":
        p.write_bytes(craft([("A", 2, 30)], b"x" * 30 + b"y" * 45))
    elif case == "member":
        one = craft([("A", 2, 8)], b"abcdefgh")
        p.write_bytes(one + one[3 * 80:])
    elif case == "dupname":
        p.write_bytes(craft([("A", 2, 1), ("A", 2, 1)], b"ab"))
    elif case == "labelidx":
        entry = struct.pack(">HHH", 5, 1, 1) + b"XY"
        p.write_bytes(craft([("A", 2, 1)], b"a", version=8, labels=entry, label_count=1))
    with pytest.raises(InputError, match=match) as exc:
        read_xport(p)
    assert p.name in str(exc.value)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read the file") as exc:
        read_xport(tmp_path / "nope.xpt")
    assert "nope.xpt" in str(exc.value)


def test_labelv8_entry_for_the_last_variable(tmp_path):
    """A LABELV8 entry naming the last variable (1-based index == number of variables)."""
    label = "x" * 60
    entry = struct.pack(">HHH", 2, 1, len(label)) + b"B" + label.encode()
    p = tmp_path / "last.xpt"
    p.write_bytes(craft([("A", 2, 1), ("B", 2, 1)], b"ab", version=8, obs=1, labels=entry,
                        label_count=1))
    _, meta = assert_same(p)
    assert meta.column_labels == ["", label]


# ------------------------------------------------------------------ block-wise reading

@pytest.mark.parametrize("block", [1, 97, 1000, 4096])
def test_small_blocks_give_the_same_frame(tmp_path, monkeypatch, built, block):
    """The data area is read in blocks (16 MB by default); any block size gives the same
    frame, the same record numbers in errors and finds a second dataset anywhere."""
    monkeypatch.setattr(xr, "_BLOCK_BYTES", block)
    for f in built.files()[:6]:
        assert_same(f)
    n = 3000
    df = pd.DataFrame({"T": [f"v{i % 11}" * (1 + i % 4) for i in range(n)],
                       "N": np.arange(n, dtype=float) / 7})
    p = ours_xpt(tmp_path / "blocks.xpt", df, [V("T"), V("N", type="Num")])
    ours, _ = assert_same(p)
    assert ours["T"].tolist() == df["T"].tolist()
    raw = bytearray(p.read_bytes())
    start = raw.find(b"HEADER RECORD*******OBS") + 80
    reclen = 12 + 8
    at = start + 2345 * reclen
    raw[at: at + 2] = b"\xff\xfe"
    bad = tmp_path / "badtext.xpt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(InputError) as exc:
        read_xport(bad)
    assert exc.value.problems[0].row == 2346 and exc.value.problems[0].column == "T"


@pytest.mark.parametrize("shift", [0, 8, 40, 79])
def test_second_member_found_in_any_block(tmp_path, monkeypatch, shift):
    """A second MEMBER header after many records, at block boundaries of every phase."""
    monkeypatch.setattr(xr, "_BLOCK_BYTES", 80 * 7 + shift)
    one = craft([("A", 2, 8)], b"abcdefgh" * 200)
    p = tmp_path / "two.xpt"
    p.write_bytes(one + one[3 * 80:])
    with pytest.raises(InputError, match="more than one dataset"):
        read_xport(p)


# ------------------------------------------------------------------ distinct values left for validation

@pytest.mark.parametrize("block", [97 * 13, 16 << 20])
def test_remembered_distinct_values_are_pandas_codes(tmp_path, monkeypatch, block):
    """``remember_distinct``: each text column's distinct values (found to decode them) are left
    with cdisc.distinct, joined over the blocks the file is read in, numbered as pd.factorize
    numbers them; texts from different bytes (a NUL where a blank pads) are one value; a
    mostly distinct column is not remembered; a remembered column is read-only."""
    from cdisc import distinct

    monkeypatch.setattr(xr, "_BLOCK_BYTES", block)
    n = 3000
    # later blocks meet values in another order than the first, and "" (blank) late
    words = ["A", "BB", "CCC", "DDDD", "E"]
    rep = [words[(i * 7) % 5] if i < 1500 else ("" if i % 9 == 0 else words[4 - i % 5]) for i in range(n)]
    df = pd.DataFrame({"REP": rep, "UNIQ": [f"U{i:05d}" for i in range(n)]})
    p = ours_xpt(tmp_path / "d.xpt", df, [V("REP"), V("UNIQ")])
    raw = bytearray(p.read_bytes())
    start = raw.find(b"HEADER RECORD*******OBS") + 80
    reclen = 4 + 6
    assert raw[start + 2999 * reclen: start + 2999 * reclen + 4] == b"A   "
    raw[start + 2999 * reclen + 3] = 0                # "A   " -> "A  \0": the same text
    p.write_bytes(bytes(raw))

    plain, _ = read_xport(p)
    ours, _ = read_xport(p, remember_distinct=True)
    assert ours.equals(plain) and ours["REP"].tolist()[2999] == rep[2999]
    assert distinct.known(plain["REP"]) is None
    assert distinct.known(ours["UNIQ"]) is None
    for s in (ours["REP"], ours["REP"].to_numpy(dtype=object), ours.copy(deep=False)["REP"]):
        assert distinct.known(s) is not None
        codes, uniques = distinct.factorize(s)
        want_codes, want_uniques = pd.factorize(s)
        assert codes.dtype == want_codes.dtype and np.array_equal(codes, want_codes)
        assert type(uniques) is type(want_uniques) and list(uniques) == list(want_uniques)
    assert list(distinct.factorize(ours["REP"])[1]) == ["A", "CCC", "E", "BB", "DDDD", ""]
    assert distinct.known(ours["REP"].iloc[:10]) is None          # a slice is another array
    fresh, _ = read_xport(p, remember_distinct=True)
    with pytest.raises(ValueError, match="read-only"):           # no shallow copy to copy for
        fresh.loc[0, "REP"] = "changed"
    shared = ours.copy(deep=False)
    shared.loc[0, "REP"] = "changed"                                # copy-on-write: a new array
    assert distinct.known(shared["REP"]) is None and ours["REP"].iloc[0] == "A"
    assert distinct.on_known(ours["REP"], lambda s: s.str.len()).tolist() == [len(v) for v in rep]
