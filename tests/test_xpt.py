"""Tests for cdisc.xpt: SAS XPORT v5 writer, FDA TCG §4.1 / XPT v5 checks, reader.

Round trips go through two independent readers of the file we write: pyreadstat
(ReadStat, Python) and R haven (ReadStat, R; one Rscript call for all files). The
header layout is also checked byte by byte against SAS TS-140.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import shutil
import struct
import subprocess

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from cdisc.errors import ConformanceError
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.xpt import (
    IBM_MAX,
    check_xpt,
    ibm_to_ieee,
    ieee_to_ibm,
    parse_format,
    read_xpt,
    write_xpt,
)

CREATED = datetime.datetime(2024, 3, 5, 14, 7, 9)
STAMP = b"05MAR24:14:07:09"          # TS-140 ddMMMyy:hh:mm:ss of CREATED

# SAS day numbers, by hand (SAS day 0 = 1960-01-01):
#   1955-07-01 -> 1960-01-01: Jul..Dec 1955 = 31+31+30+31+30+31 = 184 days,
#   + 1956 (leap) 366 + 1957..1959 3*365 = 1095  -> 184 + 366 + 1095 = 1645, so -1645.
#   2024-02-29: 1960..2023 = 64 years with 16 leap years (1960, 1964, ..., 2020)
#   = 64*365 + 16 = 23376; Jan 31 + Feb 28 -> + 59 = 23435.
D_1955_07_01 = -1645
D_2024_02_29 = 23435
# SAS seconds: 1955-07-01T10:00:01 = -1645*86400 + 10*3600 + 1 = -142128000 + 36001
S_1955_07_01T10_00_01 = -142091999.0
# 2024-02-29T23:59:59.5 = 23435*86400 + 86399.5 = 2024784000 + 86399.5
S_2024_02_29T23_59_59_5 = 2024870399.5


def V(name, label, type="Char", **kw) -> VariableMeta:
    return VariableMeta(name=name, label=label, type=type, **kw)


def edge_dataset() -> tuple[pd.DataFrame, DatasetMeta]:
    """Ten records covering the numeric, character and date edge cases."""
    meta = DatasetMeta(name="EDGE", label="Edge cases for XPT v5", variables=[
        V("STUDYID", "Study Identifier"),
        V("TEXT", "Text with blanks and missings", length=40),
        V("BLANKS", "Always blank"),
        V("NUM", "Numeric edge values", "Num", format="8.2"),
        V("INTV", "Integers", "Num"),
        V("ADT", "Analysis Date", "Num", format="DATE9."),
        V("ADTM", "Analysis Datetime", "Num", format="DATETIME20."),
        V("ATM", "Analysis Time", "Num", format="TIME8."),
    ])
    num = [0.0, -0.0, 1.0, 0.1, 1 / 3, 1e75, 1e-75, np.nan, 42.0, -2.5]
    df = pd.DataFrame({
        "STUDYID": ["VGO-Cs01p"] * 10,
        # max used = 5 ("  abc" keeps its leading blanks; trailing blanks never count)
        "TEXT": ["A", None, "", "x  ", "  abc", np.nan, "Yes", "None", "nan", "b"],
        "BLANKS": ["", None, "   ", np.nan, "", "", " ", "", None, ""],
        "NUM": num,
        "INTV": np.arange(1, 11, dtype=np.int64) * -7,
        "ADT": pd.to_datetime(["1955-07-01", "1960-01-01", None, "2024-02-29"] + [None] * 6),
        "ADTM": pd.to_datetime(["1955-07-01T10:00:01", "1960-01-01T00:00:00", None,
                                "2024-02-29T23:59:59.5"] + [None] * 6, format="ISO8601"),
        "ATM": pd.to_timedelta(["10:00:00", None, "00:00:01", "23:59:59"] + [None] * 6),
    })
    df["TEXT"] = df["TEXT"].astype(object)
    return df, meta


# ------------------------------------------------------------------- IBM numbers

def test_ieee_to_ibm_known_bit_patterns():
    """Hand-computed IBM-370 doubles (TS-140): 0.h1h2.. (hex) x 16**(E-64), E biased 64."""
    x = np.array([1.0, -118.625, 0.1, np.nan, -0.0, 16.0 ** -65,
                  np.nextafter(IBM_MAX, 0.0), 255.0])
    got = [int(v) for v in ieee_to_ibm(x)]
    assert got == [
        0x4110000000000000,   # 1 = 0.1(hex) x 16**1 -> E = 65 = 0x41
        0xC276A00000000000,   # 118.625 = 0x76.A = 0.76A(hex) x 16**2 -> E = 0x42, sign bit
        0x401999999999999A,   # double 0x3FB999999999999A: p = -3, q = 0, shift 0 -> E = 0x40
        0x2E00000000000000,   # SAS missing '.'
        0x0000000000000000,   # negative zero is written as plain 0
        0x0010000000000000,   # smallest normalised IBM: 0.1(hex) x 16**-64, E = 0
        0x7FFFFFFFFFFFFFF8,   # largest double below 16**63: 53 one bits, shifted by 3
        0x42FF000000000000,   # 255 = 0xFF = 0.FF(hex) x 16**2
    ]


def test_ieee_ibm_round_trip_is_exact():
    """53-bit IEEE mantissas fit in the 56-bit IBM fraction: no rounding at all."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal(100_000) * 10.0 ** rng.integers(-75, 75, 100_000)
    assert np.array_equal(ibm_to_ieee(ieee_to_ibm(x)), x)


def test_parse_format():
    assert parse_format("DATE9.") == ("DATE", 9, 0)
    assert parse_format("8.2") == ("", 8, 2)
    assert parse_format("$CHAR20.") == ("$CHAR", 20, 0)
    assert parse_format("E8601DA.") == ("E8601DA", 0, 0)
    assert parse_format("DATETIME20.") == ("DATETIME", 20, 0)
    assert parse_format(None) == ("", 0, 0)
    assert parse_format("DATE9") is None           # the dot is mandatory


# ------------------------------------------------------------------- round trips

def test_round_trip_pyreadstat(tmp_path):
    df, meta = edge_dataset()
    path = tmp_path / "edge.xpt"
    info = write_xpt(path, df, meta, CREATED)
    # lengths = max bytes used: STUDYID 'VGO-Cs01p' = 9; TEXT '  abc' = 5 (declared 40
    # reduced); BLANKS all blank -> minimum 1; numbers 8
    assert info == {"records": 10, "variables": 8,
                    "lengths": {"STUDYID": 9, "TEXT": 5, "BLANKS": 1, "NUM": 8, "INTV": 8,
                                "ADT": 8, "ADTM": 8, "ATM": 8}}

    back, meta_back = read_xpt(path)
    assert list(back.columns) == meta.names
    assert meta_back["table_name"] == "EDGE"
    assert meta_back["file_label"] == "Edge cases for XPT v5"
    assert meta_back["labels"] == {v.name: v.label for v in meta.variables}
    assert meta_back["lengths"] == info["lengths"]
    assert meta_back["formats"]["NUM"] == "8.2"
    assert meta_back["formats"]["ADT"] == "DATE9"
    assert meta_back["formats"]["ADTM"] == "DATETIME20"
    assert meta_back["formats"]["ATM"] == "TIME8"
    assert meta_back["types"]["STUDYID"] == "string"
    assert meta_back["types"]["INTV"] == "double"
    # pyreadstat turns DATE9. into dates
    assert back["ADT"][0] == datetime.date(1955, 7, 1)

    raw, _ = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
    assert raw["STUDYID"].tolist() == ["VGO-Cs01p"] * 10
    # None/NaN/"" -> blanks (read back as ""); trailing blanks dropped; leading kept;
    # the texts "None" and "nan" are text, not missing
    assert raw["TEXT"].tolist() == ["A", "", "", "x", "  abc", "", "Yes", "None", "nan", "b"]
    assert raw["BLANKS"].tolist() == [""] * 10
    got = raw["NUM"].to_numpy()
    want = np.array([0.0, 0.0, 1.0, 0.1, 1 / 3, 1e75, 1e-75, np.nan, 42.0, -2.5])
    assert np.array_equal(got, want, equal_nan=True)       # exact, not approx
    assert not np.signbit(got[1])                           # -0 written as 0
    assert raw["INTV"].tolist() == [-7.0 * k for k in range(1, 11)]
    assert raw["ADT"].tolist()[:4] == [D_1955_07_01, 0.0, pytest.approx(np.nan, nan_ok=True),
                                       D_2024_02_29]
    assert raw["ADTM"].tolist()[:2] == [S_1955_07_01T10_00_01, 0.0]
    assert raw["ADTM"][3] == S_2024_02_29T23_59_59_5
    assert math.isnan(raw["ADTM"][2])
    assert raw["ATM"].tolist()[:4] == [36000.0, pytest.approx(np.nan, nan_ok=True), 1.0,
                                       86399.0]


def test_other_input_dtypes(tmp_path):
    """Nullable, categorical, object-of-dates/times, tz-aware and bool columns."""
    meta = _meta(
        V("S1", "string dtype"), V("S2", "categorical"), V("S3", "object, all None"),
        V("S4", "float, all NaN"), V("N1", "Int64 with NA", "Num"),
        V("N2", "datetime.date objects", "Num", format="DATE9."),
        V("N3", "datetime.time objects", "Num", format="TIME8."),
        V("N4", "tz-aware datetimes", "Num", format="DATETIME20."),
        V("N5", "bool", "Num"), V("N6", "object numbers", "Num"),
        V("N7", "datetime64[s] dates", "Num", format="E8601DA."))
    df = pd.DataFrame({
        "S1": pd.Series(["a", None, "ccc"], dtype="string"),
        "S2": pd.Categorical(["x", None, "yy"]),
        "S3": pd.Series([None, None, None], dtype=object),
        "S4": [np.nan] * 3,
        "N1": pd.array([1, None, 3], dtype="Int64"),
        "N2": pd.Series([datetime.date(1955, 7, 1), None, datetime.date(1960, 1, 2)],
                        dtype=object),
        "N3": pd.Series([datetime.time(10, 0, 0), None, datetime.time(0, 0, 1)],
                        dtype=object),
        "N4": pd.to_datetime(["2024-01-01T12:00:00+02:00", None,
                              "1960-01-01T00:00:00+02:00"], format="ISO8601"),
        "N5": [True, False, True],
        "N6": pd.Series([1, 2.5, None], dtype=object),
        "N7": pd.to_datetime(["1960-01-01", "1960-01-03", None]).as_unit("s"),
    })
    info = write_xpt(tmp_path / "dt.xpt", df, meta, CREATED)
    assert [info["lengths"][k] for k in ("S1", "S2", "S3", "S4")] == [3, 2, 1, 1]
    raw, _ = pyreadstat.read_xport(str(tmp_path / "dt.xpt"), disable_datetime_conversion=True)
    got = {k: [None if isinstance(x, float) and math.isnan(x) else x for x in v]
           for k, v in raw.to_dict("list").items()}
    assert got["S1"] == ["a", "", "ccc"] and got["S2"] == ["x", "", "yy"]
    assert got["S3"] == got["S4"] == ["", "", ""]
    assert got["N1"] == [1.0, None, 3.0]
    assert got["N2"] == [D_1955_07_01, None, 1.0]
    assert got["N3"] == [36000.0, None, 1.0]
    # wall-clock time kept: 2024-01-01 = SAS day 23376 (23435 - 59), 12:00 = 43200 s
    assert got["N4"] == [23376 * 86400 + 43200.0, None, 0.0]
    assert got["N5"] == [1.0, 0.0, 1.0] and got["N6"] == [1.0, 2.5, None]
    assert got["N7"] == [0.0, 2.0, None]


def test_zero_row_dataset(tmp_path):
    meta = DatasetMeta(name="EMPTY", label="No records", variables=[
        V("USUBJID", "Unique Subject Identifier"), V("AVAL", "Analysis Value", "Num")])
    df = pd.DataFrame({"USUBJID": pd.Series([], dtype="str"),
                       "AVAL": pd.Series([], dtype="float64")})
    assert check_xpt(df, meta) == []
    info = write_xpt(tmp_path / "empty.xpt", df, meta, CREATED)
    assert info == {"records": 0, "variables": 2, "lengths": {"USUBJID": 1, "AVAL": 8}}
    back, m = read_xpt(tmp_path / "empty.xpt")
    assert back.shape == (0, 2) and list(back.columns) == ["USUBJID", "AVAL"]
    assert m["lengths"] == {"USUBJID": 1, "AVAL": 8}
    # 3 library + 4 member + 1 namestr header + 2 NAMESTRs (280 -> 320) + OBS header
    # = 240 + 320 + 80 + 320 + 80 = 1040 bytes, no observation bytes
    assert (tmp_path / "empty.xpt").stat().st_size == 1040


def test_text_round_trip_in_blocks(tmp_path):
    """More records than one check block (65,536): lengths/missings found per block."""
    n = 70_000
    text = pd.Series(["AB"] * n, dtype="str")
    text[5] = np.nan
    text[n - 1] = "LONGEST-VALUE"        # 13 bytes, in the second block only
    num = np.arange(n, dtype=np.float64) / 8
    meta = DatasetMeta(name="BIG", label="Two blocks", variables=[
        V("TXT", "Text"), V("X", "Number", "Num")])
    df = pd.DataFrame({"TXT": text, "X": num})
    info = write_xpt(tmp_path / "big.xpt", df, meta, CREATED)
    assert info["lengths"] == {"TXT": 13, "X": 8}
    back, _ = read_xpt(tmp_path / "big.xpt")
    assert back["TXT"][5] == "" and back["TXT"][n - 1] == "LONGEST-VALUE"
    assert back["TXT"][n - 2] == "AB"
    assert np.array_equal(back["X"].to_numpy(), num)


# ------------------------------------------------------------------- bytes / headers

def _record_dataset():
    meta = DatasetMeta(name="LB", label="Laboratory Test Results", variables=[
        V("LBTESTCD", "Lab Test or Examination Short Name"),
        V("LBDT", "Date of Collection", "Num", format="DATE9."),
        V("LBSTRESN", "Numeric Result/Finding in Std Units", "Num", format="8.2"),
    ])
    df = pd.DataFrame({"LBTESTCD": ["ALT", "HGB", None],
                       "LBDT": pd.to_datetime(["1960-01-02", "1959-12-31", None]),
                       "LBSTRESN": [1.0, np.nan, -118.625]})
    return df, meta


def test_bytes_deterministic_and_header_layout(tmp_path):
    df, meta = _record_dataset()
    a, b = tmp_path / "a.xpt", tmp_path / "b.xpt"
    write_xpt(a, df, meta, CREATED)
    write_xpt(b, df, meta, CREATED)
    data = a.read_bytes()
    assert data == b.read_bytes()
    assert len(data) % 80 == 0

    rec = [data[i:i + 80] for i in range(0, 640, 80)]
    assert rec[0] == (b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!"
                      b"000000000000000000000000000000  ")
    assert rec[1] == (b"SAS     SAS     SASLIB  9.4     Linux   " + b" " * 24 + STAMP)
    assert rec[2] == STAMP + b" " * 64                             # modified
    assert rec[3] == (b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!"
                      b"000000000000000001600000000140  ")
    assert rec[4].startswith(b"HEADER RECORD*******DSCRPTR HEADER RECORD!!!!!!!")
    assert rec[5] == (b"SAS     LB      SASDATA 9.4     Linux   " + b" " * 24 + STAMP)
    assert rec[6] == STAMP + b" " * 16 + b"Laboratory Test Results".ljust(40) + b" " * 8
    assert rec[7] == (b"HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!"
                      b"000000000300000000000000000000  ")

    # NAMESTR: >hhhh8s40s8shhh2s8shhi52s; 3 x 140 = 420 bytes, padded to 480
    # fields: 0 ntype 1 nhfun 2 nlng 3 nvar0 4 nname 5 nlabel 6 nform 7 nfl 8 nfd
    #         9 nfj 10 nfill 11 niform 12 nifl 13 nifd 14 npos 15 rest
    fields = [struct.unpack(">hhhh8s40s8shhh2s8shhi52s", data[640 + 140 * k:780 + 140 * k])
              for k in range(3)]
    ntype, _, nlng, nvar0, nname, nlabel, nform, nfl, nfd = fields[0][:9]
    assert (ntype, nlng, nvar0, nname, nform, nfl, nfd) == (2, 3, 1, b"LBTESTCD", b" " * 8, 0, 0)
    assert nlabel == b"Lab Test or Examination Short Name".ljust(40)
    assert fields[0][14] == 0                                       # npos
    f = fields[1]
    assert (f[0], f[2], f[3], f[4], f[6], f[7], f[8], f[14]) == (
        1, 8, 2, b"LBDT    ", b"DATE    ", 9, 0, 3)                  # after 3 text bytes
    f = fields[2]
    assert (f[0], f[2], f[6], f[7], f[8], f[14]) == (1, 8, b" " * 8, 8, 2, 11)
    assert fields[2][15] == b"\0" * 52 and fields[2][11] == b" " * 8
    assert data[1060:1120] == b" " * 60                             # NAMESTR padding

    assert data[1120:1200] == (b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!"
                               b"000000000000000000000000000000  ")
    obs = data[1200:]
    # 3 records x (3 + 8 + 8) = 57 bytes, then 23 blanks to 80
    assert len(obs) == 80 and obs[57:] == b" " * 23
    assert obs[0:3] == b"ALT" and obs[19:22] == b"HGB" and obs[38:41] == b"   "
    # LBDT 1960-01-02 = SAS day 1 = 0.1(hex) x 16**1 -> 41 10 00 ..
    assert obs[3:11] == bytes.fromhex("4110000000000000")
    # 1959-12-31 = day -1 -> C1 10 00 ..
    assert obs[22:30] == bytes.fromhex("C110000000000000")
    assert obs[41:49] == bytes.fromhex("2E00000000000000")          # NaT -> '.'
    assert obs[30:38] == bytes.fromhex("2E00000000000000")          # NaN -> '.'
    assert obs[49:57] == bytes.fromhex("C276A00000000000")          # -118.625


def test_other_timestamp_changes_only_header(tmp_path):
    df, meta = _record_dataset()
    write_xpt(tmp_path / "a.xpt", df, meta, CREATED)
    write_xpt(tmp_path / "b.xpt", df, meta, datetime.datetime(1999, 12, 31, 23, 59, 58))
    a, b = (tmp_path / "a.xpt").read_bytes(), (tmp_path / "b.xpt").read_bytes()
    assert b"31DEC99:23:59:58" in b and STAMP not in b
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    # created+modified in the library header and in the member header: 4 stamps, all
    # before the NAMESTR header at byte 560
    assert diff and max(diff) < 560


# ------------------------------------------------------------------- checks

def _meta(*variables, name="XX", label="Test dataset"):
    return DatasetMeta(name=name, label=label, variables=list(variables))


def test_check_clean_frame_has_no_problems():
    df, meta = edge_dataset()
    assert check_xpt(df, meta) == []


def test_check_variable_name_too_long():
    meta = _meta(V("TOOLONGNM", "Nine characters"))
    problems = check_xpt(pd.DataFrame({"TOOLONGNM": ["a"]}), meta)
    assert len(problems) == 1
    p = problems[0]
    assert (p.file, p.column, p.row) == ("XX", "TOOLONGNM", None)
    assert "9 characters" in p.message and "not a valid XPT v5 name" in p.message


def test_check_bad_dataset_name_and_label():
    meta = _meta(V("A", "x"), name="ae", label="L" * 41)
    problems = check_xpt(pd.DataFrame({"A": ["a"]}), meta)
    assert [(p.file, p.column) for p in problems] == [("ae", None), ("ae", None)]
    assert "dataset name 'ae'" in problems[0].message
    assert "dataset label is 41 characters" in problems[1].message


def test_check_label_41_chars():
    meta = _meta(V("AVAL", "X" * 41, "Num"))
    problems = check_xpt(pd.DataFrame({"AVAL": [1.0]}), meta)
    assert len(problems) == 1
    assert problems[0].column == "AVAL"
    assert "variable label is 41 characters, more than 40" in problems[0].message


def test_check_non_ascii_label():
    meta = _meta(V("TEMP", "Temperature (°C)", "Num"))
    problems = check_xpt(pd.DataFrame({"TEMP": [36.6]}), meta)
    assert len(problems) == 1
    assert problems[0].column == "TEMP"
    # '°' is character 14 of the label
    assert "'°' (U+00B0) at position 14" in problems[0].message


def test_check_non_ascii_value_names_row_column_and_character():
    meta = _meta(V("LBORRESU", "Original Units"))
    df = pd.DataFrame({"LBORRESU": ["g/L", "mmol/L", "µmol/L", None, "10^9/L"]})
    problems = check_xpt(df, meta)
    assert len(problems) == 1
    p = problems[0]
    assert (p.file, p.column, p.row) == ("XX", "LBORRESU", 3)        # 1-based record
    assert "'µ' (U+00B5) at position 1" in p.message and "'µmol/L'" in p.message
    with pytest.raises(ConformanceError) as exc:
        write_xpt("/nonexistent-dir/x.xpt", df, meta, CREATED)       # refused before I/O
    assert exc.value.problems[0].row == 3


def test_check_value_over_200_bytes():
    meta = _meta(V("COVAL", "Comment"))
    df = pd.DataFrame({"COVAL": ["short", "y" * 201, "z" * 200]})
    problems = check_xpt(df, meta)
    assert len(problems) == 1
    p = problems[0]
    assert (p.column, p.row) == ("COVAL", 2)
    assert "201 bytes, more than the XPT v5 limit of 200" in p.message


def test_check_declared_length_too_small_never_truncates(tmp_path):
    meta = _meta(V("AEDECOD", "Dictionary-Derived Term", length=3))
    df = pd.DataFrame({"AEDECOD": ["ABC", "ABCDE", "AB"]})
    problems = check_xpt(df, meta)
    assert len(problems) == 1
    p = problems[0]
    assert (p.column, p.row) == ("AEDECOD", 2)
    assert "5 bytes, longer than the declared length 3" in p.message
    assert "at least 5" in p.hint
    with pytest.raises(ConformanceError):
        write_xpt(tmp_path / "ae.xpt", df, meta, CREATED)
    assert list(tmp_path.iterdir()) == []                             # nothing written


def test_declared_length_larger_is_reduced(tmp_path):
    meta = _meta(V("AEDECOD", "Dictionary-Derived Term", length=200))
    df = pd.DataFrame({"AEDECOD": ["ABC", "ABCDE", None]})
    assert write_xpt(tmp_path / "ae.xpt", df, meta, CREATED)["lengths"] == {"AEDECOD": 5}


def test_check_text_in_numeric_column():
    meta = _meta(V("AVAL", "Analysis Value", "Num"))
    df = pd.DataFrame({"AVAL": pd.Series(["1.5", "abc", "", None, " 2 "], dtype="str")})
    problems = check_xpt(df, meta)
    assert len(problems) == 1
    p = problems[0]
    assert (p.column, p.row) == ("AVAL", 2)
    assert "non-numeric value 'abc'" in p.message


def test_numeric_text_and_blank_are_accepted(tmp_path):
    meta = _meta(V("AVAL", "Analysis Value", "Num"))
    df = pd.DataFrame({"AVAL": pd.Series(["1.5", "", None, " 2 "], dtype="str")})
    write_xpt(tmp_path / "x.xpt", df, meta, CREATED)
    back, _ = read_xpt(tmp_path / "x.xpt")
    assert np.array_equal(back["AVAL"].to_numpy(), [1.5, np.nan, np.nan, 2.0], equal_nan=True)


def test_check_infinite_overflow_underflow():
    meta = _meta(V("AVAL", "Analysis Value", "Num"))
    df = pd.DataFrame({"AVAL": [1.0, np.inf, 1e80, -np.inf, 1e-80, 0.0, 1e75, 6e-79]})
    problems = check_xpt(df, meta)
    got = [(p.row, p.message.split(" ")[2]) for p in problems]
    # inf rows 2 and 4; 1e80 overflows (>= 16**63 = 7.2e75); 1e-80 underflows
    # (< 16**-65 = 5.4e-79); 0, 1e75 and 6e-79 are fine
    assert [p.row for p in problems] == [2, 4, 3, 5]
    assert "infinite" in problems[0].message and "infinite" in problems[1].message
    assert "1e+80 overflows" in problems[2].message
    assert "1e-80 underflows" in problems[3].message
    assert all(p.column == "AVAL" for p in problems) and len(got) == 4


def test_check_columns_must_match_metadata():
    meta = _meta(V("A", "a"), V("B", "b", "Num"))
    problems = check_xpt(pd.DataFrame({"A": ["x"], "C": [1]}), meta)
    msgs = sorted((p.column, p.message.split(" is ")[1][:10]) for p in problems)
    assert msgs == [("B", "in the met"), ("C", "in the dat")]


def test_check_time_of_day_under_date_format():
    meta = _meta(V("ADT", "Analysis Date", "Num", format="DATE9."))
    df = pd.DataFrame({"ADT": pd.to_datetime(["2024-01-01", "2024-01-02 08:00"],
                                             format="ISO8601")})
    problems = check_xpt(df, meta)
    assert [(p.column, p.row) for p in problems] == [("ADT", 2)]


def test_check_non_text_in_char_column():
    meta = _meta(V("AVALC", "Analysis Value (C)"))
    df = pd.DataFrame({"AVALC": pd.Series(["1", 2, None, b"x"], dtype=object)})
    problems = check_xpt(df, meta)
    assert [p.row for p in problems] == [2, 4]
    assert "non-text value 2" in problems[0].message


def test_many_problems_listed_then_counted_and_all_reported():
    """All problems of all variables at once; 20 listed per check, the rest counted."""
    meta = _meta(V("TXT", "Text"), V("NUM", "Number", "Num"), V("BADNAME12", "x"))
    df = pd.DataFrame({"TXT": ["µ"] * 25, "NUM": [np.inf] + [1.0] * 24,
                       "BADNAME12": ["a"] * 25})
    problems = check_xpt(df, meta)
    txt = [p for p in problems if p.column == "TXT"]
    assert [p.row for p in txt[:20]] == list(range(1, 21))
    assert txt[20].row is None and "5 more records" in txt[20].message
    assert "(25 in all)" in txt[20].message and len(txt) == 21
    assert [p.row for p in problems if p.column == "NUM"] == [1]
    assert [p.column for p in problems if "not a valid XPT v5 name" in p.message] == [
        "BADNAME12"]
    with pytest.raises(ConformanceError) as exc:
        write_xpt("/nonexistent-dir/x.xpt", df, meta, CREATED)
    assert len(exc.value.problems) == len(problems) == 1 + 21 + 1


# ------------------------------------------------------------------- R haven

R_SCRIPT = r"""
`%or%` <- function(a, b) if (is.null(a)) b else a
args <- commandArgs(trailingOnly = TRUE)
out <- args[1]
res <- list()
for (f in args[-1]) {
  d <- haven::read_xpt(f)
  cols <- list()
  for (nm in names(d)) {
    x <- d[[nm]]
    if (is.character(x)) {
      vals <- as.list(x)
    } else {
      num <- as.numeric(unclass(x))
      vals <- as.list(vapply(num, function(v) if (is.na(v)) "NA" else format(v, digits = 17), ""))
    }
    cols[[nm]] <- list(class = class(x)[1], label = attr(x, "label") %or% NA,
                       format = attr(x, "format.sas") %or% NA,
                       width = attr(x, "width") %or% NA, values = vals)
  }
  res[[basename(f)]] <- list(names = as.list(names(d)), label = attr(d, "label") %or% NA,
                             nrow = nrow(d), columns = cols)
}
jsonlite::write_json(res, out, auto_unbox = TRUE, na = "null", null = "null")
"""


def _haven_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(
        ["Rscript", "-e", "quit(status = !(requireNamespace('haven', quietly = TRUE) && "
                          "requireNamespace('jsonlite', quietly = TRUE)))"],
        capture_output=True, timeout=120)
    return probe.returncode == 0


def test_round_trip_r_haven(tmp_path):
    if not _haven_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Rscript with haven and jsonlite is required when CI=true")
        pytest.skip("Rscript with haven/jsonlite not installed")
    df, meta = edge_dataset()
    write_xpt(tmp_path / "edge.xpt", df, meta, CREATED)
    e_df = pd.DataFrame({"USUBJID": pd.Series([], dtype="str"),
                         "AVAL": pd.Series([], dtype="float64")})
    e_meta = _meta(V("USUBJID", "Unique Subject Identifier"), V("AVAL", "Value", "Num"),
                   name="EMPTY", label="No records")
    write_xpt(tmp_path / "empty.xpt", e_df, e_meta, CREATED)
    script = tmp_path / "read.R"
    script.write_text(R_SCRIPT)
    out = tmp_path / "haven.json"
    run = subprocess.run(["Rscript", str(script), str(out), str(tmp_path / "edge.xpt"),
                          str(tmp_path / "empty.xpt")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    got = json.loads(out.read_text())

    edge = got["edge.xpt"]
    assert edge["names"] == meta.names and edge["nrow"] == 10
    assert edge["label"] == "Edge cases for XPT v5"
    cols = edge["columns"]
    assert {k: c["label"] for k, c in cols.items()} == {v.name: v.label for v in meta.variables}
    assert cols["NUM"]["format"] == "8.2" and cols["ADT"]["format"] == "DATE9"
    assert cols["ADTM"]["format"] == "DATETIME20" and cols["ATM"]["format"] == "TIME8"
    # haven 2.5 has no 'width' for XPT text columns; if a version reports it, it must
    # be our length
    for name, width in {"STUDYID": 9, "TEXT": 5, "BLANKS": 1}.items():
        assert cols[name]["width"] in (None, width)
    assert cols["TEXT"]["values"] == ["A", "", "", "x", "  abc", "", "Yes", "None", "nan",
                                      "b"]
    assert cols["BLANKS"]["values"] == [""] * 10

    def nums(name):
        return [float("nan") if v == "NA" else float(v) for v in cols[name]["values"]]
    assert np.array_equal(nums("NUM"), [0.0, 0.0, 1.0, 0.1, 1 / 3, 1e75, 1e-75, np.nan,
                                        42.0, -2.5], equal_nan=True)
    assert nums("INTV") == [-7.0 * k for k in range(1, 11)]
    # R counts from 1970-01-01 = SAS day 3653 (1960..1969: 10*365 + 3 leap days)
    assert cols["ADT"]["class"] == "Date"
    assert nums("ADT")[:2] == [D_1955_07_01 - 3653, -3653.0]
    assert nums("ADT")[3] == D_2024_02_29 - 3653
    assert cols["ADTM"]["class"] == "POSIXct"
    assert nums("ADTM")[0] == S_1955_07_01T10_00_01 - 3653 * 86400
    assert nums("ADTM")[3] == S_2024_02_29T23_59_59_5 - 3653 * 86400
    assert cols["ATM"]["class"] == "hms"
    assert nums("ATM")[:4][::2] == [36000.0, 1.0] and nums("ATM")[3] == 86399.0

    empty = got["empty.xpt"]
    assert empty["names"] == ["USUBJID", "AVAL"] and empty["nrow"] == 0
    assert empty["label"] == "No records"
