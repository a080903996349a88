"""Nothing lost when reading a raw file (cdisc/rawio.py).

A raw file whose structure would drop, invent or shift values is an InputError that
names the file, the row (CSV line / sheet row with the header as 1, SAS record number)
and the column, with every such problem of the file in one error. Each test states one
broken file and the exact lines the data manager reads.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import warnings

import numpy as np
import openpyxl
import pandas as pd
import pyreadstat
import pytest
from conftest import RAW

from cdisc import rawio
from cdisc.errors import InputError
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.rawio import FILE_COL, ROW_COL, read_raw
from cdisc.xpt import write_xpt

CREATED = dt.datetime(2024, 3, 5, 14, 7, 9)


def problems(path) -> list[str]:
    """The lines of the InputError that reading ``path`` raises (each without its hint)."""
    with pytest.raises(InputError) as e:
        read_raw(path)
    return [str(dataclasses.replace(p, hint=None)) for p in e.value.problems]


def csv_file(tmp_path, name: str, content: bytes):
    p = tmp_path / name
    p.write_bytes(content)
    return p


def values(df: pd.DataFrame) -> dict:
    return df.drop(columns=[FILE_COL]).to_dict("list")


# ----------------------------------------------------------- 1./2. CSV field counts

def test_csv_rows_with_fewer_fields_than_the_header(tmp_path):
    # today: read silently, the missing fields as blanks
    p = csv_file(tmp_path, "ae.csv", b"SUBJECT,AETERM,AESEV\n101-001,Fever,MILD\n101-002,Rash\n"
                                     b"101-003,Cough,MILD\n101-004\n")
    assert problems(p) == [
        "ae.csv, row 3: the record has 2 fields, the header has 3",
        "ae.csv, row 5: the record has 1 fields, the header has 3",
    ]


def test_csv_row_with_more_fields_than_the_header(tmp_path):
    # today: pandas makes the first field the index and every value shifts one column
    p = csv_file(tmp_path, "ae.csv", b"SUBJECT,AETERM,AESEV\n101-001,Fever,MILD\n"
                                     b"101-002,Rash, itchy,MILD\n101-003,Cough,MILD\n")
    assert problems(p) == ["ae.csv, row 3: the record has 4 fields, the header has 3"]


def test_csv_field_count_names_the_line_a_multi_line_record_starts_on(tmp_path):
    # line 2-3: a quoted comment over two lines; line 4: blank; line 5 has a field too many
    p = csv_file(tmp_path, "ae.csv", b'SUBJECT,AECOMM\n101-001,"one\ntwo"\n\n101-002,x,y\n'
                                     b'101-003,"a\nb",c\n')
    assert problems(p) == [
        "ae.csv, row 5: the record has 3 fields, the header has 2",
        "ae.csv, row 6: the record has 3 fields, the header has 2 (lines 6-7)",
    ]


def test_csv_every_bad_row_is_listed_then_counted(tmp_path):
    lines = [b"A,B"] + [b"1,2,3" if i % 2 else b"1,2" for i in range(60)]
    p = csv_file(tmp_path, "x.csv", b"\n".join(lines) + b"\n")
    found = problems(p)
    bad_lines = [i + 2 for i in range(60) if i % 2]                 # 30 bad records
    assert found[:20] == [f"x.csv, row {n}: the record has 3 fields, the header has 2"
                          for n in bad_lines[:20]]
    assert found[20] == ("x.csv: 10 more records whose number of fields differs from the "
                         "header's 2 (30 in all), on lines "
                         + ", ".join(str(n) for n in bad_lines[20:]))
    assert len(found) == 21


# -------------------------------------------------------------- 3. duplicate columns

def test_csv_duplicate_column_names_pandas_would_mangle(tmp_path):
    # today: pandas renames the second A to A.1 and the duplicate check misses it
    p = csv_file(tmp_path, "dm.csv", b"SUBJECT,A,B,A\n101-001,1,2,3\n")
    assert problems(p) == [
        "dm.csv, row 1, column A: column name A appears 2 times in the header: "
        "field 2 ('A') and field 4 ('A')"]


def test_csv_duplicate_column_names_after_strip_and_upper_case(tmp_path):
    p = csv_file(tmp_path, "ae.csv", b"SUBJECT,AETERM,AESEV, aeterm\n101-001,Fever,MILD,fever\n")
    assert problems(p) == [
        "ae.csv, row 1, column AETERM: column name AETERM appears 2 times in the header: "
        "field 2 ('AETERM') and field 4 (' aeterm')"]


def test_xlsx_duplicate_column_names(tmp_path):
    p = tmp_path / "ae.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["SUBJECT", "AETERM", "aeterm "])
    wb.active.append(["101-001", "Fever", "fever"])
    wb.save(p)
    assert problems(p) == [
        "ae.xlsx, row 1, column AETERM: column name AETERM appears 2 times in the header: "
        "column B ('AETERM') and column C ('aeterm ')"]


def xpt_bytes(tmp_path, frame: pd.DataFrame, name: str = "x.xpt", **lengths) -> bytes:
    meta = DatasetMeta(name="AE", label="Adverse events", variables=[
        VariableMeta(name=c, label=c, type="Num" if frame[c].dtype.kind == "f" else "Char",
                     length=lengths.get(c)) for c in frame.columns])
    write_xpt(tmp_path / name, frame, meta, CREATED)
    return (tmp_path / name).read_bytes()


def test_xpt_duplicate_variable_names(tmp_path):
    # today: pyreadstat renames the second AETERM to AETERM_duplicated1 with a warning
    raw = xpt_bytes(tmp_path, pd.DataFrame({"AETERM": ["Fever"], "AETERX": ["fever"],
                                            "CASED": ["x"]}))
    p = tmp_path / "ae.xpt"
    p.write_bytes(raw.replace(b"AETERX  ", b"AETERM  ").replace(b"CASED   ", b"aeterm  "))
    assert problems(p) == [
        "ae.xpt, column AETERM: column name AETERM appears 3 times in the header: "
        "variable 1 ('AETERM') and variable 2 ('AETERM') and variable 3 ('aeterm')"]


def need_r_haven() -> None:
    ok = shutil.which("Rscript") is not None and subprocess.run(
        ["Rscript", "-e", "quit(status = !requireNamespace('haven', quietly = TRUE))"],
        capture_output=True, timeout=60).returncode == 0
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Rscript with the haven package is required in CI")
        pytest.skip("Rscript or R package haven not installed")


def r_sas7bdat(path, names: list[str], n: int = 3) -> None:
    """A SAS7BDAT file written by R haven (pyreadstat cannot write one)."""
    need_r_haven()
    script = ("a <- commandArgs(TRUE); k <- as.integer(a[2]); nm <- a[-(1:2)];"
              "d <- as.data.frame(lapply(seq_along(nm), function(i) sprintf('v%d-%06d', i, seq_len(k))));"
              "names(d) <- nm; suppressWarnings(haven::write_sas(d, a[1]))")
    res = subprocess.run(["Rscript", "-e", script, str(path), str(n), *names],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_sas7bdat_duplicate_variable_names(tmp_path):
    p = tmp_path / "ae.sas7bdat"
    r_sas7bdat(p, ["SUBJECT", "AETERM", "AETERM", "aeterm"])
    assert problems(p) == [
        "ae.sas7bdat, column AETERM: column name AETERM appears 3 times in the header: "
        "variable 2 ('AETERM') and variable 3 ('AETERM') and variable 4 ('aeterm')"]


# ------------------------------------------------------------- 4. empty header cells

def test_csv_empty_header_cell_over_data(tmp_path):
    # today: pandas names it 'Unnamed: 2', which no spec can name; its values are lost
    p = csv_file(tmp_path, "ae.csv", b"SUBJECT,AETERM,,AESEV\n101-001,Fever,,MILD\n"
                                     b"101-002,Rash,see note,MILD\n")
    assert problems(p) == [
        "ae.csv, row 3: field 3 holds 'see note' but the header (line 1) has no name for field 3"]


def test_csv_trailing_delimiter_on_every_line_holds_nothing(tmp_path):
    p = csv_file(tmp_path, "ae.csv", b"SUBJECT,AETERM,\n101-001,Fever,\n101-002,Rash,\n")
    df = read_raw(p)
    assert values(df) == {"SUBJECT": ["101-001", "101-002"], "AETERM": ["Fever", "Rash"],
                          ROW_COL: [2, 3]}


# ------------------------------------------------------------------------- 5. NUL bytes

def test_csv_nul_bytes_name_line_and_column(tmp_path):
    # today: pandas keeps the NUL in the value
    p = csv_file(tmp_path, "ae.csv", b'SUBJECT,AETERM,AECOMM\n101-001,Fever,\n'
                                     b'101-002,"Rash\nsevere\x00",x\n101-003,Co\x00ugh,\n')
    assert problems(p) == [
        "ae.csv, row 4, column AETERM: NUL byte (\\x00) in field 2: the file is binary or corrupt",
        "ae.csv, row 5, column AETERM: NUL byte (\\x00) in field 2: the file is binary or corrupt",
    ]


def test_csv_nul_byte_in_the_header(tmp_path):
    p = csv_file(tmp_path, "ae.csv", b"SUBJECT,AE\x00TERM\n101-001,Fever\n")
    assert problems(p) == [
        "ae.csv, row 1: NUL byte (\\x00) in field 2 of the header: the file is binary or corrupt"]


# ------------------------------------------------------------------------ 6. XLSX sheets

def workbook(path, sheets: dict[str, list[list]]) -> None:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    wb.save(path)


def test_xlsx_with_data_on_two_sheets(tmp_path):
    # today: only the first sheet is read, the second is lost
    p = tmp_path / "ae.xlsx"
    workbook(p, {"AE": [["SUBJECT", "AETERM"], ["101-001", "Fever"]],
                 "Empty": [],
                 "AE (2)": [["SUBJECT", "AETERM"], ["101-002", "Rash"]]})
    assert problems(p) == ["ae.xlsx: 2 sheets hold data: 'AE', 'AE (2)'; only one can be read"]


def test_xlsx_the_one_sheet_with_data_is_read_wherever_it_is(tmp_path):
    # today: the empty first sheet is read and the form has no rows
    p = tmp_path / "ae.xlsx"
    workbook(p, {"Cover": [], "AE": [["SUBJECT", "AETERM"], ["101-001", "Fever"], [],
                                     ["101-002", "Rash"]]})
    df = read_raw(p)
    # sheet rows: the blank row 3 is skipped, 101-002 stays row 4 (today: row 3)
    assert values(df) == {"SUBJECT": ["101-001", "101-002"], "AETERM": ["Fever", "Rash"],
                          ROW_COL: [2, 4]}


def test_xlsx_data_right_of_the_last_header_cell(tmp_path):
    # today: pandas names the column 'Unnamed: 2'; no spec reads it
    p = tmp_path / "ae.xlsx"
    workbook(p, {"AE": [["SUBJECT", "AETERM"], ["101-001", "Fever"],
                        ["101-002", "Rash", None, "itchy"]]})
    assert problems(p) == [
        "ae.xlsx, row 3, column D: cell D3 holds 'itchy' but header cell D1 is empty "
        "(to the right of the last header cell B1)"]


def test_xlsx_error_cells_keep_their_text(tmp_path):
    p = tmp_path / "lb.xlsx"
    workbook(p, {"LB": [["SUBJECT", "LBORRES"], ["101-001", "#DIV/0!"]]})
    assert read_raw(p)["LBORRES"].tolist() == ["#DIV/0!"]


# ---------------------------------------------------------------------------- 7. XPT

def ae_frame(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame({"SUBJECT": [f"101-{i:03d}" for i in range(n)], "AETERM": ["Fever"] * n,
                         "AETOXGR": np.arange(n, dtype=float)})


def test_xpt_written_by_our_writer_reads_back(tmp_path):
    raw = xpt_bytes(tmp_path, ae_frame())
    p = tmp_path / "ae.xpt"
    p.write_bytes(raw)
    df = read_raw(p)
    assert df["SUBJECT"].tolist() == [f"101-{i:03d}" for i in range(10)]
    assert df["AETOXGR"].tolist() == [str(i) for i in range(10)]
    assert df[ROW_COL].tolist() == list(range(1, 11))


@pytest.mark.parametrize("size,message", [
    (1439, "ae.xpt: the file is 1439 bytes, not a whole number of 80-byte records"),
    # 10 records of 22 bytes = 220 bytes, padded to 240; 160 bytes keep 7 records and 6
    # bytes of the eighth
    (1360, "ae.xpt: the data area ends with an incomplete record: 6 of its 22 bytes"),
    (1120, "ae.xpt: the file ends before the OBS header record"),
    (800, "ae.xpt: the file ends inside the NAMESTR records of its 3 variables"),
    (240, "ae.xpt: record 4 of the headers (bytes 240-319) is not the MEMBER header record"),
    (100, "ae.xpt: the file is 100 bytes, not a whole number of 80-byte records"),
])
def test_xpt_truncated(tmp_path, size, message):
    # today: pyreadstat reads a cut file "as far as it goes" (or fails with its own words)
    frame = ae_frame()
    frame["AETERM"] = "Fever!!"
    raw = xpt_bytes(tmp_path, frame)
    assert len(raw) == 1440
    p = tmp_path / "ae.xpt"
    p.write_bytes(raw[:size])
    assert problems(p) == [message]


def test_xpt_v5_cut_at_a_record_boundary_is_a_shorter_valid_file(tmp_path):
    """The limit of XPT v5: it does not record the number of observations, so a file cut
    where a record ends at a multiple of 80 bytes is a valid file with fewer records.
    What the file holds is read; nothing in it is lost."""
    raw = xpt_bytes(tmp_path, ae_frame())         # 10 records of 20 bytes: 4 per 80 bytes
    p = tmp_path / "ae.xpt"
    p.write_bytes(raw[:-80])
    assert read_raw(p)["SUBJECT"].tolist() == [f"101-{i:03d}" for i in range(8)]


def test_xpt_namestr_corrupt(tmp_path):
    raw = bytearray(xpt_bytes(tmp_path, ae_frame()))
    # the second NAMESTR (AETERM) starts at byte 640 + 140; its length is bytes 4-5
    raw[780 + 4: 780 + 6] = (0).to_bytes(2, "big")
    p = tmp_path / "ae.xpt"
    p.write_bytes(bytes(raw))
    assert problems(p) == ["ae.xpt, column AETERM: variable 2 (AETERM) has length 0 in its "
                           "NAMESTR record"]


def test_xpt_with_two_datasets(tmp_path):
    raw = xpt_bytes(tmp_path, ae_frame())
    p = tmp_path / "ae.xpt"
    p.write_bytes(raw + raw[240:])                    # a second member after the first
    assert problems(p) == ["ae.xpt: the file holds more than one dataset: a second MEMBER "
                           "header at byte 1440; only the first would be read"]


def test_not_an_xpt_file(tmp_path):
    p = tmp_path / "ae.xpt"
    p.write_bytes((RAW / "ae.csv").read_bytes()[:800])
    assert problems(p) == ["ae.xpt: not a SAS transport (XPT) file: it does not start with "
                           "the LIBRARY header record"]


def test_xpt_v8_observation_count_is_checked(tmp_path):
    p = tmp_path / "ae.xpt"
    pyreadstat.write_xport(ae_frame(20), str(p), file_format_version=8, table_name="AE")
    raw = p.read_bytes()
    # 20 records of 20 bytes = 400 bytes; cut 80 bytes: 16 whole records, which v5 could
    # not tell from a complete file; v8 records the count in its OBSV8 header
    p.write_bytes(raw[:-80])
    assert problems(p) == ["ae.xpt: the OBSV8 header declares 20 observations, but the data "
                           "area holds 16"]


def test_xpt_v8_with_long_names_and_labels_reads(tmp_path):
    p = tmp_path / "dm.xpt"
    frame = pd.DataFrame({"RECORDPOSITION": ["1", "2"], "AGE": [10.0, np.nan]})
    pyreadstat.write_xport(frame, str(p), file_format_version=8, table_name="DM",
                           column_labels=["Record position in the EDC form, as exported by it", "Age"])
    assert b"LABELV8" in p.read_bytes()
    df = read_raw(p)
    assert values(df) == {"RECORDPOSITION": ["1", "2"], "AGE": ["10", ""], ROW_COL: [1, 2]}


def test_xpt_trailing_blank_records_are_kept(tmp_path):
    # today: ReadStat drops every all-blank record at the end of the file
    frame = pd.DataFrame({"AECOMM": ["x"] + [""] * 200})
    p = tmp_path / "co.xpt"
    p.write_bytes(xpt_bytes(tmp_path, frame))
    assert len(pyreadstat.read_xport(str(p))[0]) == 1
    df = read_raw(p)
    # 201 one-byte records padded to 240 bytes: the last 80 bytes may be padding, so
    # 161 records are certain (the rest cannot be told from padding in XPT v5)
    assert len(df) == 161 and df["AECOMM"].tolist() == ["x"] + [""] * 160


def test_pyreadstat_errors_are_input_errors(tmp_path, monkeypatch):
    raw = xpt_bytes(tmp_path, ae_frame())
    p = tmp_path / "ae.xpt"
    p.write_bytes(raw)

    def broken(path, **kw):
        raise pyreadstat.ReadstatError("Invalid file, or file has unsupported features")

    monkeypatch.setattr(pyreadstat, "read_xport", broken)
    assert problems(p) == ["ae.xpt: cannot read the SAS file: ReadstatError: Invalid file, or "
                           "file has unsupported features"]


def test_sas7bdat_truncated(tmp_path):
    p = tmp_path / "ae.sas7bdat"
    r_sas7bdat(p, ["SUBJECT", "AETERM"], n=20000)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    assert problems(p) == ["ae.sas7bdat: cannot read the SAS file: ReadstatError: Unable to "
                           "read from file"]


def test_sas7bdat_fewer_rows_than_its_header_declares(tmp_path, monkeypatch):
    """A reader that stops early (e.g. a cut file a future ReadStat reads "as far as it goes")."""
    p = tmp_path / "ae.sas7bdat"
    p.write_bytes(b"")

    class Meta:
        number_rows = 5
        column_names = ["SUBJECT"]

    monkeypatch.setattr(pyreadstat, "read_sas7bdat",
                        lambda path, **kw: (pd.DataFrame({"SUBJECT": ["a", "b", "c"]}), Meta()))
    assert problems(p) == ["ae.sas7bdat: the file header declares 5 rows, but 3 could be read"]


# ------------------------------------------------------------ 8. what works keeps working

def test_all_problems_of_a_file_come_together(tmp_path):
    p = csv_file(tmp_path, "ae.csv", b"SUBJECT,AETERM,aeterm\n101-001,Fever\n101-002,a,b,c\n"
                                     b"101-003,x\x00,y\n")
    assert problems(p) == [
        "ae.csv, row 4, column AETERM: NUL byte (\\x00) in field 2: the file is binary or corrupt",
        "ae.csv, row 2: the record has 2 fields, the header has 3",
        "ae.csv, row 3: the record has 4 fields, the header has 3",
        "ae.csv, row 1, column AETERM: column name AETERM appears 2 times in the header: "
        "field 2 ('AETERM') and field 3 ('aeterm')",
    ]


def test_csv_broken_quoting_names_each_record(tmp_path):
    # today: pandas glues "ab"cd into abcd, and an unclosed quote is one pandas message
    p = csv_file(tmp_path, "ae.csv", b'SUBJECT,AETERM\n101-001,"Fever"ish\n101-002,Rash\n'
                                     b'101-003,"Cough\n101-004,x\n')
    assert problems(p) == [
        "ae.csv, row 2: broken quoting on line 2: ',' expected after '\"' (text after a "
        "closing quote)",
        "ae.csv, row 4: a quoted value opened in the record starting on line 4 is never "
        "closed: the rest of the file (to line 5) would be read as one value",
    ]


def test_csv_quotes_inside_unquoted_values_are_text(tmp_path):
    """A quote that does not open a value is a character (the csv module's rule, and pandas')."""
    p = csv_file(tmp_path, "vs.csv", b'SUBJECT,VSCOMM\n101-001,5" tall\n101-002,"x, ""y"""\n')
    df = read_raw(p)
    assert values(df) == {"SUBJECT": ["101-001", "101-002"], "VSCOMM": ['5" tall', 'x, "y"'],
                          ROW_COL: [2, 3]}


def test_csv_old_mac_line_ends(tmp_path):
    p = csv_file(tmp_path, "ae.csv", b'SUBJECT,AECOMM\r101-001,"a\rb"\r\r101-002,c\r')
    df = read_raw(p)
    assert values(df) == {"SUBJECT": ["101-001", "101-002"], "AECOMM": ["a\rb", "c"],
                          ROW_COL: [2, 5]}


def test_csv_bom_crlf_and_line_breaks_in_values(tmp_path):
    p = csv_file(tmp_path, "ae.csv", b'\xef\xbb\xbfSUBJECT,AECOMM\r\n101-001,"a\r\nb"\r\n\r\n'
                                     b'101-002,\xc2\xb0C\r\n')
    df = read_raw(p)
    assert values(df) == {"SUBJECT": ["101-001", "101-002"], "AECOMM": ["a\r\nb", "°C"],
                          ROW_COL: [2, 5]}


def test_csv_empty_file(tmp_path):
    assert problems(csv_file(tmp_path, "ae.csv", b"")) == [
        "ae.csv: the file is empty: there is no header line"]
    assert problems(csv_file(tmp_path, "ae.csv", b"\n\r\n")) == [
        "ae.csv: the file is empty: there is no header line"]


def test_csv_header_only_gives_no_rows(tmp_path):
    df = read_raw(csv_file(tmp_path, "ae.csv", b"SUBJECT,AETERM\n"))
    assert list(df.columns) == ["SUBJECT", "AETERM", FILE_COL, ROW_COL] and len(df) == 0


def test_csv_when_pandas_sees_other_records_the_csv_module_wins(tmp_path, monkeypatch):
    p = csv_file(tmp_path, "ae.csv", b"SUBJECT,AETERM\n101-001,Fever\n101-002,Rash\n")
    real = pd.read_csv

    def one_row_short(*a, **kw):
        return real(*a, **kw).iloc[:-1]

    monkeypatch.setattr(rawio.pd, "read_csv", one_row_short)
    df = read_raw(p)
    assert values(df) == {"SUBJECT": ["101-001", "101-002"], "AETERM": ["Fever", "Rash"],
                          ROW_COL: [2, 3]}


def test_shipped_raw_files_read_as_before():
    """Every raw CSV of the study reads, with the values pandas reads and lines 2, 3, ..."""
    for f in sorted(RAW.glob("*.csv")):
        df = read_raw(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = pd.read_csv(f, dtype=str, keep_default_na=False)
        ref.columns = [c.strip().upper() for c in ref.columns]
        assert df.drop(columns=[FILE_COL, ROW_COL]).equals(ref), f.name


def test_build_reports_a_bad_raw_file_as_an_input_error(study):
    ae = (study.raw / "ae.csv").read_bytes().split(b"\n")
    ae[4] += b",extra"                                            # line 5: one field too many
    (study.raw / "ae.csv").write_bytes(b"\n".join(ae))
    res = study.build()
    assert res.code == 2 and "Traceback" not in res.output
    assert "ae.csv, row 5: the record has 45 fields, the header has 44" in res.stderr
