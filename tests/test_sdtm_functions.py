"""Each SDTM mapping function against hand-checked values."""
import numpy as np
import pandas as pd
import pytest

from cdisc.sdtm import functions as fn


def S(*vals):
    return pd.Series(list(vals), dtype="str")


def test_iso8601_full_partial_and_unknown_dates():
    dtc, bad = fn.iso8601_dtc(
        S("12-MAR-2025", "un-mar-2025", "UN-UNK-2025", "12-UNK-2025", "2025-03", "2025-03-09", "", "5 jan 2024"),
        S("14:05", "", "", "", "", "08:30", "", "23:59"))
    assert dtc.tolist()[:6] == ["2025-03-12T14:05", "2025-03", "2025", "2025---12", "2025-03", "2025-03-09T08:30"]
    assert pd.isna(dtc.iloc[6])                       # blank stays blank, not an error
    assert dtc.iloc[7] == "2024-01-05T23:59"          # single-digit day, blank separators
    assert not bad.any()


def test_iso8601_time_only_on_complete_dates_and_unknown_minutes():
    dtc, bad = fn.iso8601_dtc(S("01-FEB-2024", "01-FEB-2024", "UN-FEB-2024", "01-FEB-2024"),
                              S("10:UN", "UN:UN", "10:00", "07:05:09"))
    assert dtc.tolist() == ["2024-02-01T10", "2024-02-01", "2024-02", "2024-02-01T07:05:09"]
    assert not bad.any()


@pytest.mark.parametrize("raw", ["31-FEB-2025", "12-MRZ-2025", "2025/13/01", "garbage", "UN-JAN-UNKN", "12-MAR-25"])
def test_iso8601_flags_malformed_dates(raw):
    dtc, bad = fn.iso8601_dtc(S(raw))
    assert bad.tolist() == [True]
    assert pd.isna(dtc.iloc[0])


def test_iso8601_flags_malformed_time():
    _, bad = fn.iso8601_dtc(S("01-FEB-2024", "01-FEB-2024"), S("25:00", "9.30"))
    assert bad.tolist() == [True, True]


def test_study_day_has_no_day_zero():
    # RFSTDTC 2025-03-11: the 11th is day 1, the 10th day -1, the 12th day 2; 2024-03-11 is -365 (2024 leap day is before)
    dy = fn.study_day(S("2025-03-11", "2025-03-10T23:00", "2025-03-12", "2025-03", "2024-03-11", ""),
                      S(*["2025-03-11T09:00"] * 6))
    assert dy.tolist()[:3] == [1.0, -1.0, 2.0]
    assert np.isnan(dy.iloc[3])                       # partial date: no study day
    assert dy.iloc[4] == -365.0
    assert np.isnan(dy.iloc[5])


def test_sequence_per_subject_missing_last_ties_in_file_order():
    f = pd.DataFrame({"USUBJID": ["B", "A", "A", "A", "B"],
                      "AESTDTC": ["2025-01-02", None, "2025-01-05", "2025-01-01", "2025-01-01"],
                      "AEDECOD": ["X", "Y", "Z", "Z", "X"]})
    assert fn.sequence(f, by="USUBJID", order=["AESTDTC", "AEDECOD"]).tolist() == [2.0, 3.0, 2.0, 1.0, 1.0]
    tie = pd.DataFrame({"USUBJID": ["A", "A"], "K": ["1", "1"]})
    assert fn.sequence(tie, by="USUBJID", order=["K"]).tolist() == [1.0, 2.0]


def test_template_blank_part_gives_blank():
    cols = {"STUDYID": S("S1", "S1"), "SUBJECT": S("101-001", " ")}
    out = fn.template("{STUDYID}-{SUBJECT}", cols.__getitem__)
    assert out.iloc[0] == "S1-101-001"
    assert pd.isna(out.iloc[1])
    with pytest.raises(ValueError):
        fn.template("{STUDYID.__class__}", cols.__getitem__)


def test_to_number_flags_text():
    num, bad = fn.to_number(S("12", " 3.5 ", "", "1e3", "twelve"))
    assert num.tolist()[:2] == [12.0, 3.5] and num.iloc[3] == 1000.0
    assert np.isnan(num.iloc[2]) and bad.tolist() == [False, False, False, False, True]


def test_lookup_case_insensitive_and_unmatched():
    table = [{"armcd": "DL1", "arm": "Low"}, {"armcd": "DL2", "arm": "Mid"}]
    out, bad = fn.lookup(S("dl1", "DL2", "DL9", ""), table, key="armcd", field="arm")
    assert out.tolist()[:2] == ["Low", "Mid"] and bad.tolist() == [False, False, True, False]


def test_epoch_from_subject_elements():
    se = pd.DataFrame({"USUBJID": ["A", "A", "A"], "EPOCH": ["SCREENING", "TREATMENT", "FOLLOW-UP"],
                       "SESTDTC": ["2025-01-01", "2025-01-10T09:00", "2025-02-07"],
                       "SEENDTC": ["2025-01-10T09:00", "2025-02-07", "2025-12-31"]})
    ep = fn.epoch(S("2024-12-31", "2025-01-01", "2025-01-10", "2025-02-06", "2025-02-07", "2026-01-01", "2025-01"),
                  S(*["A"] * 7), se)
    got = [x if isinstance(x, str) else None for x in ep.tolist()]
    assert got[:6] == [None, "SCREENING", "TREATMENT", "TREATMENT", "FOLLOW-UP", None]
    # with times: a sample at 08:30 before the 09:00 infusion is still screening; 09:30 is treatment
    timed = fn.epoch(S("2025-01-10T08:30", "2025-01-10T09:30"), S("A", "A"), se)
    assert timed.tolist() == ["SCREENING", "TREATMENT"]
    assert pd.isna(ep.iloc[6])                        # 2025-01 spans screening and treatment: no EPOCH


def test_epoch_of_partial_dates_when_the_whole_span_is_one_element():
    """SDTMIG 3.4 §4.1.3.1 / CORE-000701: a partial date gets the EPOCH its every possible day has."""
    se = pd.DataFrame({"USUBJID": ["A", "A", "A"], "EPOCH": ["SCREENING", "TREATMENT", "FOLLOW-UP"],
                       "SESTDTC": ["2025-01-01", "2025-01-10T09:00", "2025-03-01"],
                       "SEENDTC": ["2025-01-10T09:00", "2025-03-01", "2025-12-31"]})
    ep = fn.epoch(S("2025-02", "2025-01", "2025-03", "2025-04", "2025", "2026-01", "2024-12"), S(*["A"] * 7), se)
    got = [x if isinstance(x, str) else None for x in ep.tolist()]
    # Feb is all treatment; Jan spans screening/treatment; 2025-03-01 starts follow-up, so March and
    # April are all follow-up; 2025 spans every element; 2026-01 is after the last end; 2024-12 before
    assert got == ["TREATMENT", None, "FOLLOW-UP", "FOLLOW-UP", None, None, None]


def test_ascii_transliteration_for_free_text():
    out = fn.ascii_transliterate(S("Fever 38.6 °C", "Résolu après tocilizumab", "8 mg/kg ×1", "漢", ""))
    assert out.tolist()[:3] == ["Fever 38.6 deg C", "Resolu apres tocilizumab", "8 mg/kg x1"]
    assert out.iloc[3] == "漢"          # no spelling: left for the XPT check to report, never dropped
    assert out.iloc[4] == ""


def test_ae_comments_reach_co_in_ascii():
    from pathlib import Path

    from cdisc.pipeline import build_sdtm

    root = Path(__file__).resolve().parent.parent
    co = build_sdtm(root / "specs", root / "raw").datasets["CO"].data
    # ae.csv has 14 non-blank AECOMM; 3 are on deleted records ("Duplicate of line 5 - entered
    # in error" and the two CRS-associated hypotension lines) -> 11 comments
    assert len(co) == 11 and set(co["RDOMAIN"]) == {"AE"} and set(co["IDVAR"]) == {"AESPID"}
    r = co[(co["USUBJID"] == "VGO-Cs01p-102-002") & (co["IDVARVAL"] == "1")].iloc[0]
    assert r["COVAL"] == "Fievre 38,9 deg C"          # raw "Fièvre 38,9 °C"
    assert co["COVAL"].map(str.isascii).all()
