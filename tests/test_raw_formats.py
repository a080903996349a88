"""The raw reader (cdisc/rawio.py): CSV, XLSX, SAS7BDAT and XPT give the same text values,
and every row carries the number a data manager looks up (CSV line / sheet row with the
header as 1; record number in SAS files)."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from cdisc.errors import InputError
from cdisc.rawio import FILE_COL, ROW_COL, read_raw
from conftest import RAW

TRACE = [FILE_COL, ROW_COL]


def dm_csv() -> pd.DataFrame:
    return pd.read_csv(RAW / "dm.csv", dtype=str, keep_default_na=False)


def values(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=TRACE)


def need_r_haven() -> None:
    ok = shutil.which("Rscript") is not None and subprocess.run(
        ["Rscript", "-e", "quit(status = !requireNamespace('haven', quietly = TRUE))"],
        capture_output=True, timeout=60).returncode == 0
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Rscript with the haven package is required in CI")
        pytest.skip("Rscript or R package haven not installed")


# ------------------------------------------------------------------------------------ CSV

def test_csv_is_read_as_text_with_line_numbers():
    df = read_raw(RAW / "dm.csv")
    assert values(df).equals(dm_csv())
    assert df[ROW_COL].tolist() == list(range(2, 11))         # 9 subjects on lines 2..10
    assert set(df[FILE_COL]) == {"dm.csv"}
    assert df.loc[df["SUBJECT"] == "102-003", ROW_COL].item() == 7
    ae = read_raw(RAW / "ae.csv")
    # 101-002 hypotension (line 11) and duplicate headache (line 13), 103-003 hypotension (line 60)
    assert ae.loc[ae["RECSTATUS"] == "Deleted", ROW_COL].tolist() == [11, 13, 60]
    assert ae.loc[ae[ROW_COL] == 3, "AECOMM"].item() == "Fever 38.6 °C; paracetamol only"
    assert (ae["AESDTH"] == "").sum() > 0 and ae["AESDTH"].notna().all()    # blanks are ""


def test_csv_keeps_na_text_and_strips_and_upper_cases_headers(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text(" subject ,Value\n101-001,NA\n101-002,\n", encoding="utf-8")
    df = read_raw(p)
    assert list(df.columns[:2]) == ["SUBJECT", "VALUE"]
    assert df["VALUE"].tolist() == ["NA", ""]


def test_csv_row_numbers_survive_line_breaks_in_values_and_blank_lines(tmp_path):
    # line 1 header; 2-3 a comment with a line break; 4 blank; 5 next record; 6-8 a
    # CRLF comment over three lines; 9 the last record
    p = tmp_path / "ae.csv"
    p.write_bytes(b'SUBJECT,AECOMM\n101-001,"first\nsecond"\n\n101-002,x\n'
                  b'101-003,"a\r\nb\nc"\n101-004,y\n')
    df = read_raw(p)
    assert df["SUBJECT"].tolist() == ["101-001", "101-002", "101-003", "101-004"]
    assert df[ROW_COL].tolist() == [2, 5, 6, 9]
    assert df["AECOMM"].tolist() == ["first\nsecond", "x", "a\r\nb\nc", "y"]


def test_csv_with_bom_and_crlf_reads_the_same(tmp_path):
    """Excel's 'CSV UTF-8' starts with a BOM; the first column must keep its name."""
    p = tmp_path / "dm.csv"
    p.write_bytes(b"\xef\xbb\xbf" + (RAW / "dm.csv").read_bytes().replace(b"\n", b"\r\n"))
    df = read_raw(p)
    assert df.columns[0] == "PROJECT"
    assert values(df).equals(dm_csv()) and df[ROW_COL].tolist() == list(range(2, 11))


def test_csv_not_utf8_names_byte_and_line(tmp_path):
    # dm.csv in Latin-1: the first non-ASCII character is the o-circumflex of 'Hôpital'
    # (site 102), on line 5 (102-001)
    p = tmp_path / "dm.csv"
    latin = (RAW / "dm.csv").read_text(encoding="utf-8").encode("latin-1")
    p.write_bytes(latin)
    with pytest.raises(InputError) as e:
        read_raw(p)
    prob = e.value.problems[0]
    assert (prob.file, prob.row) == ("dm.csv", 5)
    offset = latin.index("ô".encode("latin-1"))
    assert f"not UTF-8 text at byte {offset}" in prob.message


# ----------------------------------------------------------------------------------- XLSX

def test_xlsx_text_cells_read_like_the_csv(tmp_path):
    p = tmp_path / "dm.xlsx"
    dm_csv().to_excel(p, index=False)
    df = read_raw(p)
    assert values(df).equals(dm_csv())
    assert df[ROW_COL].tolist() == list(range(2, 11))         # sheet rows, header = row 1
    assert set(df[FILE_COL]) == {"dm.xlsx"}


def typed_dm() -> pd.DataFrame:
    """dm.csv as a spreadsheet user would save it: numbers and complete dates as typed cells."""
    dm = dm_csv().astype(object)
    dm["AGE"] = dm["AGE"].astype(int)
    dm["SITENUMBER"] = dm["SITENUMBER"].astype(int)
    full = ~dm["BRTHDAT"].str.startswith("UN")                # partial dates stay text
    dm.loc[full, "BRTHDAT"] = pd.to_datetime(dm.loc[full, "BRTHDAT"], format="%d-%b-%Y").dt.date
    return dm


def typed_ex() -> pd.DataFrame:
    ex = pd.read_csv(RAW / "ex.csv", dtype=str, keep_default_na=False).astype(object)
    ex["EXDAT"] = pd.to_datetime(ex["EXDAT"], format="%d-%b-%Y").dt.date
    for c in ("EXSTTIM", "EXENTIM"):
        ex[c] = pd.to_datetime(ex[c], format="%H:%M").dt.time
    for c in ("EXNUM", "RECORDPOSITION"):
        ex[c] = ex[c].astype(int)
    for c in ("EXDOSE", "EXVOL", "EXWT"):
        ex[c] = ex[c].astype(float)
    return ex


def test_xlsx_typed_cells_become_the_text_a_csv_holds(tmp_path):
    p = tmp_path / "dm.xlsx"
    typed_dm().to_excel(p, index=False)
    df = read_raw(p)
    # 101-001: BRTHDAT 14-AUG-2013 as a date cell -> ISO text; AGE 10 as a number -> '10'
    r = df.iloc[0]
    assert (r["BRTHDAT"], r["AGE"], r["SITENUMBER"]) == ("2013-08-14", "10", "101")
    assert df.loc[1, "BRTHDAT"] == "UN-JUN-2012"
    p = tmp_path / "ex.xlsx"
    typed_ex().to_excel(p, index=False)
    ex = read_raw(p)
    # ex.csv line 2: 27-MAR-2024 10:35-11:07, EXDOSE 1.0 (an Excel number 1), EXWT 32.4
    assert ex.loc[0, ["EXDAT", "EXSTTIM", "EXENTIM", "EXDOSE", "EXWT", "EXNUM"]].tolist() == \
        ["2024-03-27", "10:35", "11:07", "1", "32.4", "1"]
    assert (ex[dm_csv().columns[:9]].eq("")).sum().sum() == 0


# ------------------------------------------------------------------------------------ XPT

def test_xpt_reads_the_same_values_with_record_numbers(tmp_path):
    p = tmp_path / "dm.xpt"
    # raw EDC names are longer than 8 characters (RECORDPOSITION): XPT version 8
    pyreadstat.write_xport(dm_csv(), str(p), file_format_version=8, table_name="DM")
    df = read_raw(p)
    assert values(df).equals(dm_csv())
    assert df[ROW_COL].tolist() == list(range(1, 10))         # SAS record numbers
    assert set(df[FILE_COL]) == {"dm.xpt"}


def test_xpt_numeric_and_date_columns_become_text(tmp_path):
    p = tmp_path / "x.xpt"
    src = pd.DataFrame({"SITENUMBER": [101.0, 102.0, np.nan], "EXWT": [32.4, 41.0, 3.25],
                        "EXDAT": [dt.date(2024, 3, 27), dt.date(2024, 7, 30), None],
                        "NAME": ["a", "", "c"]})
    pyreadstat.write_xport(src, str(p), file_format_version=8)
    df = read_raw(p)
    assert df["SITENUMBER"].tolist() == ["101", "102", ""]      # not '101.0', not 'nan'
    assert df["EXWT"].tolist() == ["32.4", "41", "3.25"]
    assert df["EXDAT"].tolist() == ["2024-03-27", "2024-07-30", ""]
    assert df["NAME"].tolist() == ["a", "", "c"]


# ------------------------------------------------------------------------------- SAS7BDAT

@pytest.mark.skipif(hasattr(pyreadstat, "write_sas7bdat"), reason="pyreadstat can write sas7bdat: test it directly")
def test_sas7bdat_written_by_r_haven_reads_the_same(tmp_path):
    """pyreadstat cannot write SAS7BDAT (no write_sas7bdat), so R haven writes the file."""
    need_r_haven()
    p = tmp_path / "dm.sas7bdat"
    script = ("d <- read.csv(commandArgs(TRUE)[1], colClasses = 'character', encoding = 'UTF-8');"
              "d$AGE <- as.numeric(d$AGE);"
              "suppressWarnings(haven::write_sas(d, commandArgs(TRUE)[2]))")
    res = subprocess.run(["Rscript", "-e", script, str(RAW / "dm.csv"), str(p)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    df = read_raw(p)
    assert values(df).equals(dm_csv())                          # AGE numeric 10 -> '10'
    assert df[ROW_COL].tolist() == list(range(1, 10))


# ------------------------------------------------------------------------- whole builds

def _replace_form(study, form: str, frame: pd.DataFrame, ext: str) -> None:
    (study.raw / f"{form}.csv").unlink()
    path = study.raw / f"{form}.{ext}"
    if ext == "xlsx":
        frame.to_excel(path, index=False)
    else:
        pyreadstat.write_xport(frame, str(path), file_format_version=8, table_name=form.upper())


@pytest.mark.parametrize("ext", ["xlsx", "xpt"])
def test_build_from_dm_in_another_format_gives_the_identical_dm(built, full_study, ext):
    study = full_study
    _replace_form(study, "dm", dm_csv(), ext)
    res = study.build()
    assert res.code == 0, res.stderr
    out = study.root / "out" / "sdtm"
    assert (out / "dm.xpt").read_bytes() == (built.out / "sdtm" / "dm.xpt").read_bytes()
    assert f"dm.{ext}" in res.stdout                            # the reconciliation names the file


def test_build_from_typed_spreadsheets_gives_identical_sdtm(built, full_study):
    """dm.xlsx and ex.xlsx with number, date and time cells: same DM, EX, SE, AE bytes."""
    study = full_study
    _replace_form(study, "dm", typed_dm(), "xlsx")
    _replace_form(study, "ex", typed_ex(), "xlsx")
    res = study.build()
    assert res.code == 0, res.stderr
    for name in ("dm", "ex", "se", "ae", "suppae"):
        assert (study.root / "out" / "sdtm" / f"{name}.xpt").read_bytes() == \
            (built.out / "sdtm" / f"{name}.xpt").read_bytes(), name


def test_build_from_sas_file_with_numeric_columns_gives_identical_dm(built, full_study):
    study = full_study
    dm = dm_csv()
    dm["AGE"] = dm["AGE"].astype(float)
    dm["SITENUMBER"] = dm["SITENUMBER"].astype(float)           # SITEID must stay '101'
    _replace_form(study, "dm", dm, "xpt")
    res = study.build()
    assert res.code == 0, res.stderr
    assert (study.root / "out" / "sdtm" / "dm.xpt").read_bytes() == (built.out / "sdtm" / "dm.xpt").read_bytes()


@pytest.mark.parametrize("ext,row", [("xlsx", 3), ("xpt", 2)])
def test_messages_use_the_row_number_of_the_format(study, ext, row):
    # 101-002 is the second subject: sheet row 3 (header = 1), SAS record 2
    dm = dm_csv()
    dm.loc[1, "SEX"] = "Unknown gender"
    _replace_form(study, "dm", dm, ext)
    res = study.build()
    assert res.code == 1
    assert f"dm.{ext}, row {row}, column SEX: value 'Unknown gender'" in res.stderr


def test_two_files_for_one_form_is_an_input_error(study):
    dm_csv().to_excel(study.raw / "dm.xlsx", index=False)
    res = study.build()
    assert res.code == 2 and "Traceback" not in res.output
    assert "form 'dm' has more than one raw file: ['dm.csv', 'dm.xlsx']" in res.stderr


def test_unreadable_raw_file_is_an_input_error(study):
    (study.raw / "dm.csv").write_bytes((RAW / "dm.csv").read_text(encoding="utf-8").encode("latin-1"))
    res = study.build()
    assert res.code == 2 and "Traceback" not in res.output
    assert "dm.csv, row 5: not UTF-8 text at byte" in res.stderr
