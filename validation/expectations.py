"""Custom Great Expectations ColumnMapExpectations for CDISC checks.

This module imports great_expectations at import time (6-7 s), so only import it from
inside functions that are about to run GE (``validation.suites``). Importing it registers
the expectations with GE; a suite JSON written by the toolkit can be re-run outside it
after ``import validation.expectations``.

Every metric here works on the non-null values only (GE drops nulls first); the toolkit
turns blank strings into nulls before validation, so blanks are never "unexpected" here.
"""
from __future__ import annotations

from typing import ClassVar, Tuple

from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)
import pandas as pd

from .dates import iso8601_valid


class ColumnValuesIso8601(ColumnMapMetricProvider):
    """Values are SDTM ISO 8601 date/times (SDTMIG 3.4 §4.4.1-4.4.2, partial allowed)."""

    condition_metric_name = "column_values.cdisc_iso8601"
    condition_value_keys = ("allow_interval",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, allow_interval=False, **kwargs):
        return iso8601_valid(column, allow_interval=bool(allow_interval))


class ExpectColumnValuesToBeIso8601(ColumnMapExpectation):
    """Expect every non-null value to be an SDTM ISO 8601 date/time.

    Accepts right-truncated values (2023, 2023-05, 2023-05-10T14) and unknown middle
    components (2023---10, -----T07:15); rejects invalid calendar dates (2023-02-30).

    Args:
        column: the --DTC column.
        allow_interval: accept ``start/end`` intervals too (default False).
    """

    allow_interval: bool = False

    map_metric: ClassVar[str] = "column_values.cdisc_iso8601"
    success_keys: ClassVar[Tuple[str, ...]] = ("allow_interval", "mostly")
    args_keys: ClassVar[Tuple[str, ...]] = ("column",)


class ColumnValuesAsciiMaxBytes(ColumnMapMetricProvider):
    """Values are ASCII and at most ``max_bytes`` bytes (SAS XPORT v5 character limit)."""

    condition_metric_name = "column_values.cdisc_ascii_max_bytes"
    condition_value_keys = ("max_bytes",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, max_bytes=200, **kwargs):
        text = column.astype(str)
        ascii_only = ~text.str.contains(r"[^\x00-\x7f]", regex=True)
        return ascii_only & (text.str.encode("utf-8").str.len() <= int(max_bytes))


class ExpectColumnValuesToBeAsciiMax200Bytes(ColumnMapExpectation):
    """Expect every non-null value to be ASCII text of at most ``max_bytes`` (200) bytes.

    Args:
        column: a Char column.
        max_bytes: byte limit (SAS XPORT v5: 200).
    """

    max_bytes: int = 200

    map_metric: ClassVar[str] = "column_values.cdisc_ascii_max_bytes"
    success_keys: ClassVar[Tuple[str, ...]] = ("max_bytes", "mostly")
    args_keys: ClassVar[Tuple[str, ...]] = ("column",)


class ColumnValuesPositiveInteger(ColumnMapMetricProvider):
    """Values are whole numbers >= 1 (--SEQ, ASEQ)."""

    condition_metric_name = "column_values.cdisc_positive_integer"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        num = pd.to_numeric(column, errors="coerce")
        return num.notna() & (num >= 1) & (num % 1 == 0)


class ExpectColumnValuesToBePositiveIntegers(ColumnMapExpectation):
    """Expect every non-null value to be a positive integer (sequence numbers)."""

    map_metric: ClassVar[str] = "column_values.cdisc_positive_integer"
    success_keys: ClassVar[Tuple[str, ...]] = ("mostly",)
    args_keys: ClassVar[Tuple[str, ...]] = ("column",)


CUSTOM = {
    "ExpectColumnValuesToBeIso8601": ExpectColumnValuesToBeIso8601,
    "ExpectColumnValuesToBeAsciiMax200Bytes": ExpectColumnValuesToBeAsciiMax200Bytes,
    "ExpectColumnValuesToBePositiveIntegers": ExpectColumnValuesToBePositiveIntegers,
}
