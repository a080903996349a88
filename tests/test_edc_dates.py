"""Dates in any layout (sdtm.functions.dates_by_format; study.yaml raw.date_formats)."""
from __future__ import annotations

import pandas as pd
import pytest

from cdisc.study import RawConventions
from cdisc.sdtm import functions as fn


def S(*v):
    return pd.Series(list(v), dtype="str")


def parse(values, formats, time=None):
    dtc, bad, bad_t = fn.dates_by_format(S(*values), S(*time) if time else None, formats=formats)
    return [None if pd.isna(x) else x for x in dtc.tolist()], bad.tolist(), bad_t.tolist()


@pytest.mark.parametrize("fmt,value,want", [
    ("MM/DD/YYYY", "03/15/2024", "2024-03-15"),
    ("MM/DD/YYYY", "3/5/2024", "2024-03-05"),
    ("MM/DD/YYYY", "UN/UNK/2024", "2024"),
    ("MM/DD/YYYY", "03/UN/2024", "2024-03"),
    ("MM/DD/YYYY", "UNK/15/2024", "2024---15"),       # unknown month, known day (SDTMIG 3.4 §4.4.2)
    ("MM/DD/YYYY", "03/2024", "2024-03"),             # right-truncated forms of the layout
    ("MM/DD/YYYY", "2024", "2024"),
    ("DD/MM/YYYY", "UNK/03/2024", "2024-03"),
    ("DD.MM.YYYY", "15.03.2024", "2024-03-15"),
    ("DD.MM.YYYY", "03.2024", "2024-03"),
    ("YYYY/MM/DD", "2024/03/15", "2024-03-15"),
    ("YYYY/MM/DD", "2024/03", "2024-03"),
    ("DD-MON-YYYY", "15-mar-2024", "2024-03-15"),
    ("DD-MON-YYYY", "UN-MAR-2024", "2024-03"),
    ("DD-MON-YYYY", "MAR-2024", "2024-03"),
    ("MM/DD/YYYY HH:MM", "03/15/2024 14:05", "2024-03-15T14:05"),
    ("MM/DD/YYYY HH:MM", "03/15/2024", "2024-03-15"),      # the time part is optional
    ("MM/DD/YYYY HH:MM", "03/15/2024 14:UN", "2024-03-15T14"),
    ("DD.MM.YYYY HH:MM:SS", "15.03.2024 08:00:59", "2024-03-15T08:00:59"),
    ("MM/DD/YYYY HH:MM", "03/UN/2024 14:05", "2024-03"),   # a time only on a complete date
    ("YYYY-MM-DDTHH:MM", "2024-03-15T14:05", "2024-03-15T14:05"),   # T is the ISO date-time separator
    ("YYYY-MM-DDTHH:MM", "2024-03", "2024-03"),
])
def test_layouts_and_partial_forms(fmt, value, want):
    dtc, bad, _ = parse([value], [fmt])
    assert dtc == [want] and bad == [False]


@pytest.mark.parametrize("value", ["02/30/2024", "13/01/2024", "03/15/24", "15-03-2024", "UN/UN/UNK",
                                   "03/15/2024 25:00", "tomorrow", "０3/15/2024"])
def test_not_a_date_in_the_layout_is_flagged(value):
    dtc, bad, bad_t = parse([value], ["MM/DD/YYYY HH:MM"])
    assert bad[0] or bad_t[0]
    assert dtc == [None] if bad[0] else dtc == ["2024-03-15"]      # a bad time keeps the date, flagged


def test_layouts_tried_in_order_and_blank_is_not_an_error():
    dtc, bad, _ = parse(["15.03.2024", "2024-03-16", "", "03/17/2024"], ["DD.MM.YYYY", "YYYY-MM-DD", "MM/DD/YYYY"])
    assert dtc == ["2024-03-15", "2024-03-16", None, "2024-03-17"]
    assert bad == [False, False, False, False]


def test_separate_time_column():
    dtc, bad, bad_t = parse(["03/15/2024", "03/15/2024", "03/2024"], ["MM/DD/YYYY"], time=["09:30", "9.30", "10:00"])
    assert dtc == ["2024-03-15T09:30", "2024-03-15", "2024-03"]
    assert bad == [False, False, False] and bad_t == [False, True, False]


@pytest.mark.parametrize("fmt,message", [("DD.MM.YY", "no YYYY"), ("YYYY-MM-MM", "repeats"),
                                         ("YYYY-MM-DD x", "not a separator"), ("DD-MON-MM-YYYY", "both MM and MON")])
def test_bad_layouts_rejected(fmt, message):
    with pytest.raises(ValueError, match=message):
        fn.parse_date_format(fmt)


def test_formats_by_study_form_and_column():
    raw = RawConventions(date_formats={"*": ["MM/DD/YYYY"], "vs": ["DD.MM.YYYY"], "ae.AESTDAT": ["YYYY/MM/DD"]})
    assert raw.formats_for("dm", "BRTHDAT") == ["MM/DD/YYYY"]
    assert raw.formats_for("vs", "VSDAT") == ["DD.MM.YYYY"]
    assert raw.formats_for("ae", "AESTDAT") == ["YYYY/MM/DD"]
    assert raw.formats_for("ae", "AEENDAT") == ["MM/DD/YYYY"]
    assert RawConventions().formats_for("ae", "AESTDAT") == list(fn.DEFAULT_DATE_FORMATS)
    assert RawConventions(date_formats=["DD.MM.YYYY"]).formats_for("x", "Y") == ["DD.MM.YYYY"]


def test_vectorised_over_distinct_values():
    # 30,000 records of 3 distinct values parse like 3 values (no per-record Python work)
    import time

    values = pd.Series(["03/15/2024", "UN/UNK/2024", "03/2024"] * 10_000, dtype="str")
    t = time.perf_counter()
    dtc, bad, _ = fn.dates_by_format(values, formats=["MM/DD/YYYY"])
    assert time.perf_counter() - t < 2.0
    assert dtc.iloc[:3].tolist() == ["2024-03-15", "2024", "2024-03"] and not bad.any()
