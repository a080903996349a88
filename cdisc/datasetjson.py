"""CDISC Dataset-JSON v1.1: write, read and validate one dataset per file.

Dataset-JSON v1.1 (CDISC Data Exchange Standards, final 2024-12-05) is the JSON
alternative to SAS V5 transport for submission datasets. A file is one object whose
attributes come in the order the specification lists them (datasetJSONCreationDateTime,
datasetJSONVersion, fileOID, dbLastModifiedDateTime, originator, sourceSystem, studyOID,
metaDataVersionOID, metaDataRef, itemGroupOID, records, name, label, columns, rows), so a
streaming reader can stop after the metadata.

How this module maps the toolkit's data (what an XPT file would hold) to Dataset-JSON,
following the specification's "Supported Column Data Type Combinations" table:

| XPT variable                         | dataType  | targetDataType | JSON value            |
|--------------------------------------|-----------|----------------|-----------------------|
| Char                                 | string    | -              | string, blank -> ""   |
| Num, every value a whole number      | integer   | -              | integer               |
| Num, otherwise                       | double    | -              | number (shortest      |
|                                      |           |                | round-trip repr)      |
| Num with a SAS date format (DATE9.)  | date      | integer        | "YYYY-MM-DD"          |
| Num with a SAS datetime format       | datetime  | integer        | "YYYY-MM-DDThh:mm:ss" |
| Num with a SAS time format           | time      | integer        | "hh:mm:ss"            |

* Missing numeric values are ``null`` (spec, Row Data: "Missing values are represented by
  null. Empty strings are represented by ''").
* SAS V5 transport cannot tell a blank character value from a missing one, and
  pyreadstat reads both back as ``""``; so a blank or missing Char value is written as
  ``""`` and a ``null`` in a string column is read back as ``""``. Trailing blanks are
  insignificant in SAS and are dropped, as the XPT round trip drops them.
* Non-integer numbers are written as numpy's shortest repr that round-trips the IEEE
  double exactly (``1e-07``, ``0.1``, ``0.3333333333333333``, ``1e+75``, ``-0.0``).
  ``double`` is used rather than ``float`` because the values are IEEE 754 doubles
  written at full precision; define.xml, which has no ``double``, calls the same
  variable ``float``.
* A whole-number column containing a negative zero, or a value beyond 2**53, is written
  as ``double`` so that the bits survive.
* Numeric dates become ISO 8601 strings with ``targetDataType: "integer"`` (spec,
  Date/Time Variables: "For ADaM datasets, the targetDataType must be set to integer"),
  and the reader turns them back into SAS day/second counts.

The reader returns what an XPT read-back returns
(``pyreadstat.read_xport(path, disable_datetime_conversion=True)``): Char columns of
pandas ``str`` dtype with ``""`` for blanks, Num columns as float64 with NaN for missing,
numeric dates as SAS day counts (days since 1960-01-01), datetimes as seconds since
1960-01-01T00:00:00 and times as seconds since midnight. With ``convert_dates=True`` it
returns what pyreadstat's default read gives instead (``datetime.date``, ``datetime64[us]``,
``datetime.time``).
"""
from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cdisc.errors import DataError, InputError, Problem, SpecError
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.sasformats import format_kind

DATASET_JSON_VERSION = "1.1.0"
SAS_EPOCH_DAY = np.datetime64("1960-01-01", "D")
SAS_EPOCH_SECOND = np.datetime64("1960-01-01T00:00:00", "s")
_MAX_EXACT_INT = 2.0**53

# --------------------------------------------------------------------------------------
# SAS display formats: which ones mark a numeric variable as a date, datetime or time
# --------------------------------------------------------------------------------------
def sas_format_kind(fmt: str | None) -> str | None:
    """Classify a SAS display format as ``"date"``, ``"datetime"``, ``"time"`` or None
    (see :mod:`cdisc.sasformats`)."""
    return format_kind(fmt)


# --------------------------------------------------------------------------------------
# Numeric <-> ISO 8601 conversions (vectorised)
# --------------------------------------------------------------------------------------
def _require_whole(values: np.ndarray, what: str, where: dict) -> np.ndarray:
    present = ~np.isnan(values)
    bad = present & (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{what} value {values[row]!r} is not a whole number",
            row=row + 1, hint="SAS dates are whole days; round the derivation", **where)
    return present


def sas_days_to_iso(values: np.ndarray, *, where: dict | None = None) -> np.ndarray:
    """SAS day counts (days since 1960-01-01) -> ISO 8601 dates; NaN -> None.

    Dates before 1960 are negative day counts (-1 is 1959-12-31).
    """
    values = np.asarray(values, dtype="float64")
    present = _require_whole(values, "date", where or {})
    out = np.full(values.shape, None, dtype=object)
    days = values[present].astype("int64").astype("timedelta64[D]")
    out[present] = np.datetime_as_string(SAS_EPOCH_DAY + days, unit="D").astype(object)
    return out


def _seconds_unit(seconds: np.ndarray) -> tuple[str, int]:
    # Pick the coarsest unit that represents every value exactly, so whole-second
    # datetimes are written without a fraction and read back bit-identically.
    for unit, scale in (("s", 1), ("ms", 1_000), ("us", 1_000_000)):
        scaled = seconds * scale
        if np.all(scaled == np.round(scaled)):
            return unit, scale
    return "us", 1_000_000


def sas_seconds_to_iso(values: np.ndarray, *, kind: str, where: dict | None = None) -> np.ndarray:
    """SAS datetimes (seconds since 1960-01-01T00:00:00) or times (seconds since
    midnight) -> ISO 8601 strings; NaN -> None.

    Steps: 1. keep the non-missing values; 2. choose s, ms or us as the unit that holds
    every value exactly (fractions finer than 1 us are rounded to 1 us); 3. add them to
    the SAS epoch (datetime) or to midnight (time) as numpy datetime64 and format.
    """
    values = np.asarray(values, dtype="float64")
    present = ~np.isnan(values)
    out = np.full(values.shape, None, dtype=object)
    secs = values[present]
    if kind == "time":
        bad = (secs < 0) | (secs >= 86400)
        if bad.any():
            row = int(np.flatnonzero(present)[np.flatnonzero(bad)[0]])
            raise DataError(
                f"time value {values[row]!r} is not within one day (0 <= t < 86400 s)",
                row=row + 1, **(where or {}))
    unit, scale = _seconds_unit(secs)
    ticks = np.round(secs * scale).astype("int64").astype(f"timedelta64[{unit}]")
    base = SAS_EPOCH_SECOND if kind == "datetime" else np.datetime64("1970-01-01T00:00:00", "s")
    text = np.datetime_as_string(base + ticks, unit=unit)
    if kind == "time":
        text = pd.Series(text, dtype=object).str[11:].to_numpy(dtype=object)
    out[present] = text.astype(object)
    return out


def iso_to_sas(values: list, *, kind: str, where: dict | None = None) -> np.ndarray:
    """ISO 8601 date/datetime/time strings -> SAS numbers (float64, NaN for null).

    Dates give days since 1960-01-01, datetimes seconds since 1960-01-01T00:00:00,
    times seconds since midnight; the inverse of :func:`sas_days_to_iso` and
    :func:`sas_seconds_to_iso`.
    """
    arr = np.asarray(values, dtype=object)
    present = ~(pd.isna(arr) | (arr == ""))
    out = np.full(arr.shape, np.nan)
    if not present.any():
        return out
    text = arr[present].astype(str)
    try:
        if kind == "date":
            stamps = text.astype("datetime64[D]")
            out[present] = (stamps - SAS_EPOCH_DAY).astype("int64").astype("float64")
            return out
        if kind == "time":
            text = np.char.add("1970-01-01T", text)
        stamps = text.astype("datetime64[us]")
    except ValueError as exc:
        raise DataError(f"value is not an ISO 8601 {kind}: {exc}", **(where or {})) from exc
    base = SAS_EPOCH_SECOND if kind == "datetime" else np.datetime64("1970-01-01T00:00:00", "s")
    micros = (stamps - base.astype("datetime64[us]")).astype("int64")
    whole, frac = np.divmod(micros, 1_000_000)
    out[present] = whole.astype("float64") + frac.astype("float64") / 1e6
    return out


# --------------------------------------------------------------------------------------
# Column typing
# --------------------------------------------------------------------------------------
def numeric_data_type(values: np.ndarray) -> str:
    """``"integer"`` when every non-missing value is a whole number that JSON and a
    float64 both hold exactly (|x| <= 2**53, no negative zero), else ``"double"``."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return "integer"
    whole = np.all(present == np.round(present)) and np.all(np.abs(present) <= _MAX_EXACT_INT)
    negative_zero = np.any((present == 0) & np.signbit(present))
    return "integer" if whole and not negative_zero else "double"


def _has_type(values, types: tuple) -> np.ndarray:
    """Element-wise exact type test (bool is not an int here), without a Python loop
    over the records: map type over the values and test set membership in pandas."""
    kinds = pd.Series(list(map(type, values)), dtype=object)
    return kinds.isin(types).to_numpy()


def char_values(series: pd.Series, *, where: dict) -> np.ndarray:
    """A Char column as an object array of str: missing -> "", trailing blanks dropped."""
    obj = series.astype(object)
    missing = obj.isna().to_numpy()
    arr = obj.to_numpy(dtype=object, copy=True)
    arr[missing] = ""
    non_str = ~_has_type(arr, (str,))
    if non_str.any():
        row = int(np.flatnonzero(non_str)[0])
        raise DataError(
            f"Char variable holds a non-text value {arr[row]!r}", row=row + 1,
            hint="convert it to text in the derivation or declare the variable Num", **where)
    return pd.Series(arr, dtype=object).str.rstrip(" ").to_numpy(dtype=object)


def num_values(series: pd.Series, *, where: dict, kind: str | None = None) -> np.ndarray:
    """A Num column as float64 SAS values.

    Dates held as datetime64 or ``datetime.date`` objects become SAS day counts, or
    seconds when ``kind`` is ``"datetime"`` (the variable has a SAS datetime format).
    """
    if series.dtype == object:
        first = series.dropna().head(1).tolist()
        if first and isinstance(first[0], (date, datetime)):
            series = pd.to_datetime(series)
    if pd.api.types.is_datetime64_any_dtype(series):
        return _datetime_series_to_sas(series, seconds=kind == "datetime")
    try:
        values = pd.to_numeric(series, errors="raise").to_numpy(dtype="float64", na_value=np.nan)
    except (ValueError, TypeError) as exc:
        raise DataError(f"Num variable holds a non-numeric value: {exc}",
                        hint="clean the value or declare the variable Char", **where) from exc
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise DataError(f"Num variable holds {values[row]!r}; SAS has no infinity",
                        row=row + 1, **where)
    return values


def _datetime_series_to_sas(series: pd.Series, *, seconds: bool) -> np.ndarray:
    stamps = series.to_numpy(dtype="datetime64[us]")
    present = ~np.isnat(stamps)
    out = np.full(stamps.shape, np.nan)
    micros = (stamps[present] - SAS_EPOCH_SECOND.astype("datetime64[us]")).astype("int64")
    out[present] = micros / (1_000_000 if seconds else 86_400_000_000)
    return out


def _key_sequence(meta: DatasetMeta, var: VariableMeta) -> int | None:
    if var.key_sequence is not None:
        return var.key_sequence
    if var.name in meta.keys:
        return meta.keys.index(var.name) + 1
    return None


def _utf8_max_length(values: np.ndarray) -> int:
    if values.size == 0:
        return 1
    lengths = pd.Series(values, dtype=object).str.encode("utf-8").str.len()
    return max(int(lengths.max()), 1)


def _format_datetime(value: datetime) -> str:
    spec = "seconds" if value.microsecond == 0 else "microseconds"
    return value.isoformat(timespec=spec)


# --------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------
def _encode_column(df: pd.DataFrame, meta: DatasetMeta, var: VariableMeta,
                   file: str) -> tuple[dict, np.ndarray]:
    """Column metadata (spec attribute order) and the JSON text of each value."""
    where = {"file": file, "column": var.name}
    column: dict[str, Any] = {
        "itemOID": f"IT.{meta.name}.{var.name}",
        "name": var.name,
        "label": var.label,
    }
    if var.type == "Char":
        values = char_values(df[var.name], where=where)
        column["dataType"] = "string"
        column["length"] = _utf8_max_length(values)
        text = np.array(list(map(lambda v: json.dumps(v, ensure_ascii=False), values.tolist())),
                        dtype=object)
    else:
        kind = sas_format_kind(var.format)
        values = num_values(df[var.name], where=where, kind=kind)
        if kind == "date":
            iso = sas_days_to_iso(values, where=where)
        elif kind in ("datetime", "time"):
            iso = sas_seconds_to_iso(values, kind=kind, where=where)
        if kind:
            column["dataType"] = kind
            column["targetDataType"] = "integer"
            # ISO 8601 strings hold no character that JSON must escape.
            text = np.full(values.shape, "null", dtype=object)
            present = ~pd.isna(iso)
            text[present] = '"' + iso[present] + '"'
        else:
            column["dataType"] = numeric_data_type(values)
            missing = np.isnan(values)
            text = np.full(values.shape, "null", dtype=object)
            if column["dataType"] == "integer":
                text[~missing] = values[~missing].astype("int64").astype(str).astype(object)
            else:
                # numpy's str() of a float64 is the shortest string that parses back to
                # the same double (Dragon4, unique=True): 1e-07 stays 1e-07, -0.0 keeps
                # its sign; Python's json would turn NaN into the invalid token NaN.
                text[~missing] = values[~missing].astype(str).astype(object)
    if var.format:
        column["displayFormat"] = var.format
    key = _key_sequence(meta, var)
    if key is not None:
        column["keySequence"] = key
    return column, text


def write_dataset_json(path, df: pd.DataFrame, meta: DatasetMeta, *, study_oid: str,
                       metadata_version_oid: str, created: datetime, originator: str,
                       source_system: dict | None = None, define_path: str | None = None,
                       file_oid: str | None = None,
                       db_last_modified: datetime | None = None,
                       lengths: dict[str, int] | None = None) -> None:
    """Write one dataset as a CDISC Dataset-JSON v1.1 file.

    Args:
        path: output file (``.json``).
        df: the dataset, one column per variable in ``meta`` (Char as text, Num as
            numbers; numeric dates as SAS day counts or datetime64).
        meta: dataset metadata; its variable order is the column order.
        study_oid: ``studyOID``, the define.xml ``Study/@OID``.
        metadata_version_oid: ``metaDataVersionOID``, the define.xml
            ``MetaDataVersion/@OID``.
        created: ``datasetJSONCreationDateTime``; passed in so output is reproducible.
        originator: the organisation that generated the file.
        source_system: ``{"name": ..., "version": ...}`` of the source system, or None.
        define_path: ``metaDataRef``, e.g. ``"define.xml"``, or None.
        file_oid: ``fileOID``; default ``"<study_oid>.<metadata_version_oid>.<NAME>"``.
        db_last_modified: ``dbLastModifiedDateTime``; default ``created``. Must not be
            after ``created`` (spec, Top-level Metadata Attributes).
        lengths: character variable -> the length define.xml gives it (a package's
            study-wide lengths, FDA TCG §4.1.5.2); a column's ``length`` is never less than
            its longest value. Default: each column's longest value.

    Steps:
        1. check that ``df`` has exactly the variables of ``meta``;
        2. encode each column (see the module docstring for the type mapping): Char
           -> JSON strings, blanks as ""; Num -> integer or shortest round-trip double,
           missing as null; Num with a SAS date/datetime/time format -> ISO 8601 string
           with targetDataType "integer";
        3. join the encoded columns into one JSON array per row, one row per line;
        4. write the top-level attributes in the specification's order, UTF-8, so the
           same inputs always give the same bytes.

    Raises:
        SpecError: variables missing from ``df`` or columns missing from ``meta``, an
            incomplete ``source_system``, or ``db_last_modified`` after ``created``.
        DataError: a value the type cannot hold (text in a Num, a fractional date).
    """
    path = Path(path)
    file = str(path)
    missing = [n for n in meta.names if n not in df.columns]
    extra = [c for c in df.columns if c not in meta.names]
    if missing or extra:
        problems = [Problem(f"variable {n} of {meta.name} is not in the data", file=file,
                            column=n, hint="derive it or remove it from the spec")
                    for n in missing]
        problems += [Problem(f"column {c} is not in the {meta.name} metadata", file=file,
                             column=c, hint="add it to the spec or drop it")
                     for c in extra]
        raise SpecError(problems)
    if source_system is not None and (set(source_system) != {"name", "version"}):
        raise SpecError("sourceSystem needs exactly the keys 'name' and 'version'",
                        file=file, key="source_system")
    db_last_modified = db_last_modified or created
    if db_last_modified > created:
        raise SpecError("dbLastModifiedDateTime must be on or before the creation time",
                        file=file, key="db_last_modified")

    columns, texts = [], []
    for var in meta.variables:
        column, text = _encode_column(df, meta, var, file)
        if lengths and "length" in column and var.name in lengths:
            column["length"] = max(column["length"], int(lengths[var.name]))
        columns.append(column)
        texts.append(text)

    header: dict[str, Any] = {
        "datasetJSONCreationDateTime": _format_datetime(created),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": file_oid or f"{study_oid}.{metadata_version_oid}.{meta.name}",
        "dbLastModifiedDateTime": _format_datetime(db_last_modified),
        "originator": originator,
    }
    if source_system is not None:
        header["sourceSystem"] = {"name": source_system["name"],
                                  "version": source_system["version"]}
    header["studyOID"] = study_oid
    header["metaDataVersionOID"] = metadata_version_oid
    if define_path is not None:
        header["metaDataRef"] = define_path
    header["itemGroupOID"] = f"IG.{meta.name}"
    header["records"] = int(len(df))
    header["name"] = meta.name
    header["label"] = meta.label

    def dumps(obj) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))

    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {dumps(v)}," for k, v in header.items()]
    lines.append('  "columns": [')
    lines.append(",\n".join(f"    {dumps(c)}" for c in columns))
    lines.append("  ],")
    if len(df):
        row_text = texts[0].copy() if texts else np.full(len(df), "", dtype=object)
        for text in texts[1:]:
            row_text = row_text + "," + text
        lines.append('  "rows": [')
        lines.append(",\n".join(("    [" + row_text + "]").tolist()))
        lines.append("  ]")
    else:
        lines.append('  "rows": []')
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------
def _load(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError as exc:
        raise InputError(f"Dataset-JSON file not found: {path}", file=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", file=str(path), row=exc.lineno) from exc


def _python_dates(values: np.ndarray, kind: str) -> pd.Series:
    """SAS numbers -> what pyreadstat's default XPT read gives: ``datetime.date`` /
    ``datetime.time`` objects with NaN for missing, or datetime64[us] with NaT."""
    present = ~np.isnan(values)
    if kind == "datetime":
        stamps = np.full(values.shape, np.datetime64("NaT"), dtype="datetime64[us]")
        stamps[present] = SAS_EPOCH_SECOND.astype("datetime64[us]") + np.round(
            values[present] * 1e6).astype("int64").astype("timedelta64[us]")
        return pd.Series(stamps, dtype="datetime64[us]")
    out = np.full(values.shape, np.nan, dtype=object)
    if kind == "date":
        days = values[present].astype("int64").astype("timedelta64[D]")
        out[present] = (SAS_EPOCH_DAY + days).astype(object)
    else:
        micros = np.round(values[present] * 1e6).astype("int64").astype("timedelta64[us]")
        base = np.datetime64("1970-01-01T00:00:00", "us")
        out[present] = pd.DatetimeIndex(base + micros).time.astype(object)
    return pd.Series(out, dtype=object)


def read_dataset_json(path, *, convert_dates: bool = False) -> tuple[pd.DataFrame, dict]:
    """Read a Dataset-JSON v1.1 file into the frame an XPT read-back would give.

    Args:
        path: a ``.json`` Dataset-JSON file (one dataset).
        convert_dates: False (default): numeric dates stay SAS numbers, as
            ``pyreadstat.read_xport(..., disable_datetime_conversion=True)`` gives;
            True: dates become ``datetime.date``, datetimes ``datetime64[us]``, times
            ``datetime.time``, as ``pyreadstat.read_xport(...)`` (and
            ``cdisc.xpt.read_xpt``) give.

    Returns:
        ``(df, meta)``: ``df`` with one column per ``columns`` entry, in order; ``meta``
        is the file's top-level object without ``rows``.

    Steps:
        1. parse the file and check each row has one value per column;
        2. per column: string/URI (and date/datetime/time without targetDataType) ->
           pandas ``str`` with ``null`` read as ""; integer/float/double -> float64 with
           ``null`` as NaN; decimal strings -> float64; date/datetime/time with
           targetDataType "integer" -> SAS day or second counts (float64);
           boolean -> pandas ``boolean``.

    Raises:
        InputError: the file is missing or not JSON, or lacks ``columns``.
        DataError: a row has the wrong number of values or a value its column cannot
            hold.
    """
    path = Path(path)
    file = str(path)
    doc = _load(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), list):
        raise InputError("no 'columns' array: not a Dataset-JSON v1.1 file", file=file,
                         key="columns")
    columns = doc["columns"]
    rows = doc.get("rows") or []
    widths = set(map(len, rows))
    if widths - {len(columns)}:
        bad = next(i for i, r in enumerate(rows) if len(r) != len(columns))
        raise DataError(f"row has {len(rows[bad])} values but there are {len(columns)} columns",
                        file=file, key=f"rows[{bad}]")
    by_column = list(zip(*rows)) if rows else [()] * len(columns)
    data = {}
    for col, values in zip(columns, by_column):
        name = col.get("name")
        where = {"file": file, "column": name}
        data_type = col.get("dataType")
        target = col.get("targetDataType")
        values = list(values)
        if data_type in ("date", "datetime", "time") and target == "integer":
            sas = iso_to_sas(values, kind=data_type, where=where)
            data[name] = (_python_dates(sas, data_type) if convert_dates
                          else pd.Series(sas, dtype="float64"))
        elif data_type in ("integer", "float", "double"):
            try:
                data[name] = pd.Series(np.array(values, dtype="float64"), dtype="float64")
            except (TypeError, ValueError) as exc:
                raise DataError(f"{data_type} column holds a non-number: {exc}", **where) from exc
        elif data_type == "decimal":
            data[name] = pd.to_numeric(pd.Series(values, dtype=object)).astype("float64")
        elif data_type == "boolean":
            data[name] = pd.Series(values, dtype="boolean")
        else:
            arr = np.array(values, dtype=object)
            arr[pd.isna(arr)] = ""
            if not _has_type(arr, (str,)).all():
                raise DataError(f"{data_type} column holds a non-string value", **where)
            data[name] = pd.Series(arr, dtype="str")
    df = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    meta = {k: v for k, v in doc.items() if k != "rows"}
    return df, meta


def dataset_meta_from_json(meta: dict, *, standard: str = "SDTM") -> DatasetMeta:
    """Turn the metadata half of :func:`read_dataset_json` back into a DatasetMeta.

    Char columns get their ``length``; numeric dates get their ``displayFormat``;
    keys come from ``keySequence`` in key order.
    """
    variables, keyed = [], []
    for col in meta["columns"]:
        is_char = col["dataType"] in ("string", "URI") or (
            col["dataType"] in ("date", "datetime", "time") and col.get("targetDataType") is None)
        variables.append(VariableMeta(
            name=col["name"], label=col["label"], type="Char" if is_char else "Num",
            length=col.get("length") if is_char else None, format=col.get("displayFormat"),
            key_sequence=col.get("keySequence")))
        if col.get("keySequence") is not None:
            keyed.append((col["keySequence"], col["name"]))
    return DatasetMeta(name=meta["name"], label=meta["label"], variables=variables,
                       keys=[n for _, n in sorted(keyed)], standard=standard)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _schema() -> dict:
    text = resources.files("cdisc").joinpath("schemas/dataset-json-1.1.schema.json").read_text(
        encoding="utf-8")
    return json.loads(text)


def _json_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


_JSON_TYPES = {
    "string": (str,), "URI": (str,), "date": (str,), "datetime": (str,), "time": (str,),
    "decimal": (str,), "integer": (int,), "float": (int, float), "double": (int, float),
    "boolean": (bool,),
}


def validate_dataset_json(path) -> list[Problem]:
    """Check a Dataset-JSON file against the v1.1 JSON schema and the spec's rules.

    Args:
        path: the ``.json`` file.

    Returns:
        One Problem per finding (empty list: valid). ``key`` is the JSON path, e.g.
        ``columns[3].dataType``; JSON syntax errors carry the line in ``row``.

    Steps:
        1. parse the file (a syntax error is one Problem with its line number);
        2. validate against the shipped CDISC Dataset-JSON 1.1 schema (draft 2019-09);
        3. check what the schema cannot: ``records`` equals the number of rows, every
           row has one value per column, column names are unique,
           dbLastModifiedDateTime is not after datasetJSONCreationDateTime, and each
           value's JSON type fits its column (Supported Column Data Type Combinations:
           string/date/decimal as strings, integer as integers, float/double as numbers).
    """
    import jsonschema

    path = Path(path)
    file = str(path)
    try:
        doc = _load(path)
    except InputError as exc:
        return exc.problems
    schema = _schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    problems = [Problem(f"schema: {err.message}", file=file, key=_json_path(err.absolute_path))
                for err in errors]
    if problems or not isinstance(doc, dict):
        return problems
    columns, rows = doc.get("columns", []), doc.get("rows")
    if rows is not None and doc.get("records") != len(rows):
        problems.append(Problem(f"records is {doc.get('records')} but there are {len(rows)} rows",
                                file=file, key="records"))
    names = [c["name"] for c in columns]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(Problem(f"column {dup} appears more than once", file=file, key="columns"))
    created, modified = doc.get("datasetJSONCreationDateTime"), doc.get("dbLastModifiedDateTime")
    if created and modified:
        try:
            if datetime.fromisoformat(modified) > datetime.fromisoformat(created):
                problems.append(Problem(
                    "dbLastModifiedDateTime is after datasetJSONCreationDateTime",
                    file=file, key="dbLastModifiedDateTime"))
        except (TypeError, ValueError):
            pass  # mixed naive/aware times cannot be ordered; the schema checked the form
    if not rows:
        return problems
    widths = np.fromiter(map(len, rows), dtype="int64", count=len(rows))
    bad_rows = np.flatnonzero(widths != len(columns))
    for i in bad_rows[:20].tolist():
        problems.append(Problem(f"row has {len(rows[i])} values, expected {len(columns)}",
                                file=file, key=f"rows[{i}]"))
    if bad_rows.size:
        return problems
    for j, (col, values) in enumerate(zip(columns, zip(*rows))):
        allowed = _JSON_TYPES.get(col["dataType"])
        if allowed is None:
            continue
        wrong = np.flatnonzero(~_has_type(values, allowed + (type(None),)))
        if wrong.size:
            i = int(wrong[0])
            problems.append(Problem(
                f"{col['dataType']} column {col['name']} holds {json.dumps(values[i])} "
                f"({wrong.size} such value(s))", file=file, column=col["name"],
                key=f"rows[{i}][{j}]"))
    return problems
