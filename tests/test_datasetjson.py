"""Dataset-JSON v1.1 writer, reader and validator."""
from __future__ import annotations

import json
from datetime import datetime

import jsonschema
import numpy as np
import pandas as pd
import pyreadstat
import pytest

from cdisc.datasetjson import (
    _schema, dataset_meta_from_json, read_dataset_json, sas_format_kind, validate_dataset_json,
    write_dataset_json,
)
from cdisc.errors import DataError, SpecError
from cdisc.metadata import DatasetMeta, VariableMeta

V = VariableMeta
CREATED = datetime(2025, 6, 1, 12, 0, 0)
TRICKY = [1e-7, 0.1, 1 / 3, 1e75, -0.0, np.nan]


def _meta() -> DatasetMeta:
    return DatasetMeta(
        name="ADSL", label="Subject-Level Analysis Dataset", standard="ADaM",
        keys=["STUDYID", "USUBJID"], variables=[
            V(name="STUDYID", label="Study Identifier"),
            V(name="USUBJID", label="Unique Subject Identifier"),
            V(name="AGE", label="Age", type="Num"),
            V(name="X", label="Tricky number", type="Num"),
            V(name="COMMENT", label="Free text"),
            V(name="BRTHDT", label="Date of Birth", type="Num", format="DATE9."),
            V(name="TRTSDTM", label="Datetime of First Exposure", type="Num", format="DATETIME20."),
            V(name="TRTSTM", label="Time of First Exposure", type="Num", format="TIME8."),
        ])


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "STUDYID": ["VGO-Cs01p"] * 6,
        "USUBJID": [f"VGO-Cs01p-01-00{i}" for i in range(1, 7)],
        "AGE": [7.0, 12.0, np.nan, 3.0, 17.0, 9.0],
        "X": TRICKY,
        "COMMENT": ["café", "", None, "  leading kept", "trailing dropped  ", 'quote " and \\'],
        # -1 = 1959-12-31, -365 = 1959-01-01, -21914 = 1900-01-01 (60*365 + 14 leap days,
        # 1904..1956; 1900 itself is not leap), 0 = 1960-01-01, 23436 = 2024-03-01.
        "BRTHDT": [-1.0, -365.0, -21914.0, 0.0, 23436.0, np.nan],
        # -0.5 s before the SAS epoch, 1 day + 1 s, 2024-03-01T09:30:00 = 23436*86400 + 34200.
        "TRTSDTM": [-0.5, 86401.0, 23436 * 86400 + 34200.0, np.nan, 0.0, 1.25],
        "TRTSTM": [0.0, 34200.0, 86399.0, np.nan, 3600.5, 60.0],
    })


def _write(path, df=None, meta=None, **kw):
    args = dict(study_oid="VGO-Cs01p", metadata_version_oid="MDV.VGO-Cs01p.1", created=CREATED,
                originator="VGO", source_system={"name": "cdisc", "version": "0.1.0"},
                define_path="define.xml")
    args.update(kw)
    write_dataset_json(path, _frame() if df is None else df, meta or _meta(), **args)


@pytest.fixture()
def written(tmp_path):
    path = tmp_path / "adsl.json"
    _write(path)
    return path


def test_output_is_schema_valid(written):
    assert validate_dataset_json(written) == []
    doc = json.loads(written.read_text(encoding="utf-8"))
    jsonschema.Draft201909Validator(_schema()).validate(doc)   # raises if invalid
    assert list(doc)[:3] == ["datasetJSONCreationDateTime", "datasetJSONVersion", "fileOID"]
    assert list(doc)[-4:] == ["name", "label", "columns", "rows"]
    assert doc["datasetJSONVersion"] == "1.1.0"
    assert doc["datasetJSONCreationDateTime"] == "2025-06-01T12:00:00"
    assert doc["itemGroupOID"] == "IG.ADSL" and doc["records"] == 6


def test_column_metadata(written):
    cols = {c["name"]: c for c in json.loads(written.read_text(encoding="utf-8"))["columns"]}
    assert cols["USUBJID"] == {"itemOID": "IT.ADSL.USUBJID", "name": "USUBJID",
                               "label": "Unique Subject Identifier", "dataType": "string",
                               "length": 16, "keySequence": 2}
    assert cols["AGE"]["dataType"] == "integer"
    assert cols["X"]["dataType"] == "double"
    # Spec, Date/Time Variables: numeric ADaM dates are ISO strings with targetDataType integer.
    assert {k: cols["BRTHDT"][k] for k in ("dataType", "targetDataType", "displayFormat")} == {
        "dataType": "date", "targetDataType": "integer", "displayFormat": "DATE9."}
    assert cols["TRTSDTM"]["dataType"] == "datetime"
    assert cols["TRTSTM"]["dataType"] == "time"
    # 'trailing dropped' is 16 bytes, 'quote " and \' 13, 'café' 5 (é is 2 bytes in UTF-8),
    # '  leading kept' 14: the longest value wins.
    assert cols["COMMENT"]["length"] == 16


def test_row_text(written):
    # One precision per column: TRTSDTM and TRTSTM hold a half second somewhere, so the
    # whole column is written to the millisecond.
    lines = written.read_text(encoding="utf-8").splitlines()
    rows = lines[lines.index('  "rows": [') + 1:-2]
    assert rows[0] == ('    ["VGO-Cs01p","VGO-Cs01p-01-001",7,1e-07,"café","1959-12-31",'
                       '"1959-12-31T23:59:59.500","00:00:00.000"],')
    assert rows[2] == ('    ["VGO-Cs01p","VGO-Cs01p-01-003",null,0.3333333333333333,"",'
                       '"1900-01-01","2024-03-01T09:30:00.000","23:59:59.000"],')
    assert ',-0.0,' in rows[4] and ',1e+75,' in rows[3]
    assert rows[5].split(",")[3] == "null"          # NaN -> null, never the invalid NaN


def test_round_trip_exact(written):
    df, meta = read_dataset_json(written)
    x = df["X"].to_numpy()
    expected = np.array(TRICKY)
    # Bit-for-bit: compare the IEEE patterns (distinguishes -0.0 from 0.0).
    assert np.array_equal(np.isnan(x), np.isnan(expected))
    assert np.array_equal(x[:5].view("int64"), expected[:5].view("int64"))
    assert np.signbit(x[4])
    assert df["BRTHDT"].tolist()[:5] == [-1.0, -365.0, -21914.0, 0.0, 23436.0]
    assert np.isnan(df["BRTHDT"].iloc[5])
    assert df["TRTSDTM"].tolist()[:3] == [-0.5, 86401.0, 23436 * 86400 + 34200.0]
    assert df["TRTSTM"].tolist()[4] == 3600.5
    assert df["COMMENT"].tolist() == ["café", "", "", "  leading kept", "trailing dropped",
                                      'quote " and \\']
    assert str(df["COMMENT"].dtype) == "str"
    assert meta["studyOID"] == "VGO-Cs01p" and "rows" not in meta


def test_reader_equals_xpt_read_back(tmp_path):
    """The JSON read-back is the frame pyreadstat gives for the same data in an XPT
    (numbers as SAS values). -0.0 and 1e75 are left out: the XPT route loses them
    (pyreadstat 1.3.7 reads -0.0 as 0.0 and 1e75 as inf), Dataset-JSON keeps them."""
    df = _frame()
    df["X"] = [1e-7, 0.1, 1 / 3, 2.5e10, -7.25, np.nan]
    meta = _meta()
    xpt = tmp_path / "adsl.xpt"
    pyreadstat.write_xport(df, str(xpt), table_name="ADSL", file_format_version=5,
                           column_labels=[v.label for v in meta.variables],
                           variable_format={v.name: v.format for v in meta.variables if v.format})
    from_xpt, _ = pyreadstat.read_xport(str(xpt), disable_datetime_conversion=True)
    path = tmp_path / "adsl.json"
    _write(path, df=df)
    from_json, _ = read_dataset_json(path)
    pd.testing.assert_frame_equal(from_json, from_xpt)
    # With conversion on both sides: date objects, datetime64[us], time objects.
    converted_xpt, _ = pyreadstat.read_xport(str(xpt))
    converted_json, _ = read_dataset_json(path, convert_dates=True)
    pd.testing.assert_frame_equal(converted_json, converted_xpt)


def test_deterministic_bytes(tmp_path, written):
    again = tmp_path / "again.json"
    _write(again)
    assert again.read_bytes() == written.read_bytes()


def test_meta_round_trip(written):
    _, meta = read_dataset_json(written)
    back = dataset_meta_from_json(meta, standard="ADaM")
    assert back.keys == ["STUDYID", "USUBJID"]
    assert [v.type for v in back.variables] == ["Char", "Char", "Num", "Num", "Char", "Num",
                                               "Num", "Num"]
    assert back.variable("BRTHDT").format == "DATE9."


def test_empty_dataset(tmp_path):
    path = tmp_path / "empty.json"
    _write(path, df=_frame().iloc[0:0])
    assert validate_dataset_json(path) == []
    df, meta = read_dataset_json(path)
    assert meta["records"] == 0 and len(df) == 0 and list(df.columns) == _meta().names


def test_integer_column_keeps_negative_zero_and_big_values(tmp_path):
    meta = DatasetMeta(name="T", label="t", variables=[V(name="N", label="n", type="Num")])
    for values, expected in (([1.0, -0.0], "double"), ([1.0, 2.0**53 + 2], "double"),
                             ([1.0, 2.0**53], "integer")):
        path = tmp_path / "t.json"
        _write(path, df=pd.DataFrame({"N": values}), meta=meta)
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["columns"][0]["dataType"] == expected
        back, _ = read_dataset_json(path)
        assert np.array_equal(back["N"].to_numpy().view("int64"), np.array(values).view("int64"))


def test_missing_required_key_is_caught(tmp_path, written):
    doc = json.loads(written.read_text(encoding="utf-8"))
    del doc["itemGroupOID"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    problems = validate_dataset_json(bad)
    assert len(problems) == 1
    assert "'itemGroupOID' is a required property" in problems[0].message
    assert problems[0].file == str(bad)


def test_schema_error_is_located(tmp_path, written):
    doc = json.loads(written.read_text(encoding="utf-8"))
    doc["columns"][2]["dataType"] = "number"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    [problem] = validate_dataset_json(bad)
    assert problem.key == "columns[2].dataType" and "'number' is not one of" in problem.message


def test_semantic_checks(tmp_path, written):
    doc = json.loads(written.read_text(encoding="utf-8"))
    doc["records"] = 7                       # 6 rows
    doc["rows"][1][2] = "12"                 # AGE is integer
    doc["dbLastModifiedDateTime"] = "2025-06-02T00:00:00"   # after creation
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    keys = sorted(p.key for p in validate_dataset_json(bad))
    assert keys == ["dbLastModifiedDateTime", "records", "rows[1][2]"]


def test_syntax_error_has_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "name": "DM",\n  oops\n}\n', encoding="utf-8")
    [problem] = validate_dataset_json(bad)
    assert problem.row == 3


def test_writer_rejects_bad_input(tmp_path):
    path = tmp_path / "x.json"
    with pytest.raises(SpecError, match="AGE of ADSL is not in the data"):
        _write(path, df=_frame().drop(columns="AGE"))
    with pytest.raises(SpecError, match="column EXTRA is not in the ADSL metadata"):
        _write(path, df=_frame().assign(EXTRA=1))
    with pytest.raises(DataError, match="not a whole number") as err:
        _write(path, df=_frame().assign(BRTHDT=[0.0, 0.5, 1.0, 2.0, 3.0, 4.0]))
    assert err.value.problems[0].row == 2 and err.value.problems[0].column == "BRTHDT"
    with pytest.raises(DataError, match="non-numeric"):
        _write(path, df=_frame().assign(AGE=["7", "x", "1", "2", "3", "4"]))
    with pytest.raises(DataError, match="infinity"):
        _write(path, df=_frame().assign(X=[np.inf] * 6))
    with pytest.raises(SpecError, match="on or before"):
        _write(path, db_last_modified=datetime(2026, 1, 1))


@pytest.mark.parametrize("fmt, kind", [
    ("DATE9.", "date"), ("date9", "date"), ("E8601DA10.", "date"), ("YYMMDD10.", "date"),
    ("MMDDYYS10.", "date"), ("DATETIME20.", "datetime"), ("E8601DT19.", "datetime"),
    ("TIME8.", "time"), ("E8601TM.", "time"), ("8.2", None), ("BEST12.", None),
    ("$CHAR20.", None), (None, None),
])
def test_sas_format_kind(fmt, kind):
    assert sas_format_kind(fmt) == kind


def test_datetime64_input_gives_sas_values(tmp_path):
    """A frame may hold dates as datetime64 / datetime.date; the file is the same as for
    the SAS numbers: 2024-03-01 = day 23436, 2024-03-01T09:30 = 23436*86400 + 34200 s."""
    from datetime import date as d

    meta = DatasetMeta(name="T", label="t", variables=[
        V(name="ADT", label="date", type="Num", format="DATE9."),
        V(name="BDT", label="date objects", type="Num", format="E8601DA."),
        V(name="ADTM", label="datetime", type="Num", format="E8601DT19.")])
    df = pd.DataFrame({"ADT": pd.to_datetime(["2024-03-01", None]),
                       "BDT": [d(2024, 3, 1), None],
                       "ADTM": pd.to_datetime(["2024-03-01T09:30:00", None])})
    path = tmp_path / "t.json"
    _write(path, df=df, meta=meta)
    assert json.loads(path.read_text(encoding="utf-8"))["rows"][0] == [
        "2024-03-01", "2024-03-01", "2024-03-01T09:30:00"]
    back, _ = read_dataset_json(path)
    assert back.iloc[0].tolist() == [23436.0, 23436.0, 23436 * 86400 + 34200.0]
    assert back.iloc[1].isna().all()
