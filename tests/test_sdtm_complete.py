"""Complete SDTM (issue 3): RS, LB, PC, IS, DS, SV (+SUPP--), trial design, from specs only.

The shipped study is built once (SDTM only, no ADaM/validation) into a tmp folder and read
back with pyreadstat; every subject is checked against raw/truth.csv (the generator's
truth) and individual records against values worked out by hand from the raw CSVs.
Bad-input tests copy raw/ and specs/ to a tmp folder, break one cell and build again.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml
from click.testing import CliRunner

from cdisc.pipeline import build_sdtm, write_outputs
from cdisc.errors import DataError
from cdisc.sdtm import functions as fn
from cdisc.sdtm.results import standardise

ROOT = Path(__file__).resolve().parent.parent
SPECS, RAW = ROOT / "specs", ROOT / "raw"
NEW = ["RS", "LB", "PC", "IS", "DS", "SV", "SUPPRS", "SUPPDS"]


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("complete") / "out"
    result = build_sdtm(SPECS, RAW)
    write_outputs(result, folder, specs_dir=SPECS, raw_dir=RAW)
    return folder


@pytest.fixture(scope="module")
def manifest(out) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


_cache: dict = {}


def read(out: Path, name: str) -> tuple[pd.DataFrame, object]:
    key = (str(out), name)
    if key not in _cache:
        _cache[key] = pyreadstat.read_xport(str(out / "sdtm" / f"{name.lower()}.xpt"))
    return _cache[key]


@pytest.fixture(scope="module")
def ds(out):
    return lambda name: read(out, name)[0]


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    return pd.read_csv(RAW / "truth.csv", dtype=str, keep_default_na=False).set_index("SUBJECT")


SUBJECTS = [f"{s}-{n:03d}" for s in (101, 102, 103) for n in (1, 2, 3)]


def uid(subject: str) -> str:
    return f"VGO-Cs01p-{subject}"


def copy_study(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(SPECS, tmp_path / "specs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(RAW, tmp_path / "raw", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "specs", tmp_path / "raw"


def set_cell(raw: Path, form: str, line: int, column: str, value: str) -> None:
    """Set one raw cell; ``line`` is the file line (header = 1), as messages give it."""
    df = pd.read_csv(raw / f"{form}.csv", dtype=str, keep_default_na=False)
    df.loc[line - 2, column] = value
    df.to_csv(raw / f"{form}.csv", index=False, lineterminator="\n")


def problems_of(specs: Path, raw: Path) -> list:
    with pytest.raises(DataError) as err:
        build_sdtm(specs, raw)
    return err.value.problems


# ---------------------------------------------------------------------------------------
# the datasets exist, read back, with their labels
# ---------------------------------------------------------------------------------------
LABELS = {"RS": "Disease Response and Clin Classification", "LB": "Laboratory Test Results",
          "PC": "Pharmacokinetics Concentrations", "IS": "Immunogenicity Specimen Assessments",
          "DS": "Disposition", "SV": "Subject Visits", "SUPPRS": "Supplemental Qualifiers for RS",
          "SUPPDS": "Supplemental Qualifiers for DS"}


@pytest.mark.parametrize("name", NEW)
def test_dataset_reads_back_with_labels(out, name):
    df, meta = read(out, name)
    assert meta.table_name == name
    assert meta.file_label == LABELS[name]
    assert len(df) > 0
    spec_file = SPECS / "sdtm" / f"{name.lower()}.yaml"
    if spec_file.is_file():
        spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
        expected = {v["name"]: v["label"] for v in spec["variables"]}
        assert list(df.columns) == list(expected)
        assert meta.column_names_to_labels == expected


def test_record_counts(ds):
    # RS: 40 overall responses (49 rs rows - 9 Screening), 49 EMD, 27 MRD status = 116
    # LB: 934 lb + 172 fc + 27 mrd + 49 marrow blasts (peripheral blasts deduplicated) = 1182
    # IS: 35 screening + 16 confirmatory + 13 titres = 64; PC 106 samples; DS 9 + 6 + 3 = 18; SV 97
    assert {n: len(ds(n)) for n in ("RS", "LB", "IS", "PC", "DS", "SV")} == \
        {"RS": 116, "LB": 1182, "IS": 64, "PC": 106, "DS": 18, "SV": 97}


def test_trial_design_datasets_are_written(manifest):
    written = {o["dataset"] for o in manifest["outputs"]}
    assert {"TA", "TE", "TV", "TI", "TS"} <= written


def test_reconciliation_accounts_for_every_raw_row(manifest):
    rec = manifest["reconciliation"]
    for r in rec:
        assert r["rows_read"] == r["rows_mapped"] + sum(r["excluded"].values()), r
    by = {(r["domain"], r["file"]): {**r, "excluded": {k: n for k, n in r["excluded"].items() if n}} for r in rec}
    # Screening marrows have no overall response: 9 subjects -> 9 rows, named reason
    ov = by[("RS", "rs.csv:OVRLRESP")]
    assert (ov["rows_read"], ov["rows_mapped"]) == (49, 40)
    assert list(ov["excluded"].values()) == [9] and "Screening" in next(iter(ov["excluded"]))
    pb = by[("LB", "rs.csv:PBBLAST")]
    assert pb["rows_mapped"] == 0 and list(pb["excluded"].values()) == [49]
    eos = by[("DS", "eos.csv")]
    assert eos["rows_mapped"] == 6 and list(eos["excluded"].values()) == [3]     # 3 deaths
    assert by[("IS", "ada.csv:ADACONF")]["rows_mapped"] == 16                     # screen-positive samples
    assert by[("IS", "ada.csv:ADATITER")]["rows_mapped"] == 13                    # confirmed-positive samples
    read_forms = {r["form"] for r in rec}
    assert {"sv", "rs", "mrd", "lb", "fc", "pk", "ada", "ic", "eos", "dth"} <= read_forms
    assert list(manifest["unmapped_forms"]) == ["truth.csv"]


# ---------------------------------------------------------------------------------------
# against the truth table, every subject
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("subject", SUBJECTS)
def test_day28_response_relapse_and_mrd(ds, truth, subject):
    t = truth.loc[subject]
    rs = ds("RS")
    rs = rs[rs.USUBJID == uid(subject)]
    d28 = rs[(rs.RSTESTCD == "OVRLRESP") & (rs.VISIT == "DAY 28")]
    assert d28.RSSTRESC.tolist() == [t.D28_RESPONSE]
    assert set(d28.RSEVAL) == {"INVESTIGATOR"} and set(d28.RSCAT) == {"PROTOCOL DEFINED RESPONSE CRITERIA"}
    relapse = rs.loc[rs.RSSTRESC == "RELAPSED DISEASE", "RSDTC"]
    assert (relapse.min() if len(relapse) else "") == t.RELAPSE_DATE
    mrd_status = rs[(rs.RSTESTCD == "MRDIND") & (rs.VISIT == "DAY 28")].RSSTRESC.tolist()
    assert mrd_status == [t.MRD_D28]
    lb = ds("LB")
    mrd = lb[(lb.USUBJID == uid(subject)) & (lb.LBTESTCD == "LEUKCE") & (lb.VISIT == "DAY 28")]
    assert mrd.LBORRES.tolist() == [t.MRD_D28_VALUE]
    assert mrd[["LBSPEC", "LBMETHOD", "LBORRESU", "LBLLOQ"]].iloc[0].tolist() == \
        ["BONE MARROW", "FLOW CYTOMETRY", "%", 0.01]


@pytest.mark.parametrize("subject", SUBJECTS)
def test_death_in_dm_and_ds(ds, truth, subject):
    t = truth.loc[subject]
    dm = ds("DM").set_index("USUBJID").loc[uid(subject)]
    d = ds("DS")
    death = d[(d.USUBJID == uid(subject)) & (d.DSDECOD == "DEATH")]
    assert dm.DTHDTC == t.DEATH_DATE
    assert dm.DTHFL == ("Y" if t.DEATH_DATE else "")
    assert death.DSSTDTC.tolist() == ([t.DEATH_DATE] if t.DEATH_DATE else [])


@pytest.mark.parametrize("subject", SUBJECTS)
def test_first_cd7_count(ds, truth, subject):
    t = truth.loc[subject]
    lb = ds("LB")
    cd7 = lb[(lb.USUBJID == uid(subject)) & (lb.LBTESTCD == "CD7")].sort_values("LBDTC").iloc[0]
    assert cd7.LBORRES == t.FIRST_CD7_COUNT
    # cells/uL (and cells/µL at site 101) is CDISC UNIT 10^6/L; the factor is 1
    assert t.FIRST_CD7_UNIT == "cells/uL" and (cd7.LBORRESU, cd7.LBSTRESU) == ("10^6/L", "10^6/L")
    assert cd7.LBSTRESN == pytest.approx(float(t.FIRST_CD7_COUNT))
    assert (cd7.LBTEST, cd7.LBMETHOD, cd7.LBSPEC, cd7.VISIT) == ("CD7+ Cells", "FLOW CYTOMETRY", "BLOOD", "SCREENING")


@pytest.mark.parametrize("subject", SUBJECTS)
def test_disposition_terms(ds, truth, subject):
    t = truth.loc[subject]
    d = ds("DS")
    d = d[d.USUBJID == uid(subject)]
    ic = d[d.DSCAT == "PROTOCOL MILESTONE"]
    assert ic.DSDECOD.tolist() == ["INFORMED CONSENT OBTAINED"] and ic.DSTERM.tolist() == ["Parental consent"]
    assert ic.DSSTDTC.iloc[0][:10] == t.CONSENT_DATE and ic.EPOCH.iloc[0] == "SCREENING"
    disp = d[d.DSCAT == "DISPOSITION EVENT"]
    assert disp.DSDECOD.tolist() == [t.EOS_REASON]
    # a death's DSSTDTC is the death date (= EOSDAT); otherwise EOSDAT
    assert disp.DSSTDTC.tolist() == [t.EOS_DATE]


def test_ds_terms_as_collected(ds):
    d = ds("DS").set_index("USUBJID")
    disp = d[d.DSCAT == "DISPOSITION EVENT"]
    # eos.csv EOSREAS as typed; death records carry the cause from dth.csv DTHCAUSSP
    assert disp.loc[uid("102-001"), "DSTERM"] == "Withdrawal by parent/guardian"
    assert disp.loc[uid("103-001"), "DSTERM"] == "Lost to follow-up"
    assert disp.loc[uid("101-003"), "DSTERM"] == "Pseudomonas aeruginosa sepsis while in MRD-negative CR"
    supp = ds("SUPPDS")
    assent = supp[supp.QNAM == "ASSENT"].set_index("USUBJID").QVAL
    assert assent[uid("101-003")] == "N" and assent[uid("103-001")] == "N" and (assent == "Y").sum() == 7


# ---------------------------------------------------------------------------------------
# hand-checked records
# ---------------------------------------------------------------------------------------
def rec(df: pd.DataFrame, **where) -> pd.Series:
    m = pd.Series(True, index=df.index)
    for k, v in where.items():
        m &= df[k] == v
    hit = df[m]
    assert len(hit) == 1, (where, len(hit))
    return hit.iloc[0]


def test_pc_blq_per_ig(ds):
    pc = ds("PC")
    # pk.csv line 2: 101-001 Pre-dose "BLQ"; line 107: 103-003 Pre-dose "<LLOQ" (site 103 spelling)
    for subject, orres in (("101-001", "BLQ"), ("103-003", "<LLOQ")):
        r = rec(pc, USUBJID=uid(subject), PCTPT="Pre-dose")
        assert (r.PCORRES, r.PCSTRESC, r.PCLLOQ, r.PCSTRESU) == (orres, "BLQ", 0.5, "10^6/L")
        assert np.isnan(r.PCSTRESN)
        assert (r.PCTPTNUM, r.PCELTM, r.VISITNUM, r.PCDY) == (0.0, "PT0H", 3.0, 1.0)
    # 9 pre-dose + 16 later samples are below the LLOQ (raw/README.md known issue 7)
    assert (pc.PCSTRESC == "BLQ").sum() == 25 and pc.PCSTRESN.isna().sum() == 25
    # 103-003 Day 14: 143.82 cells/uL = Cmax in truth; nominal 312 h = (14 - 1) x 24
    r = rec(pc, USUBJID=uid("103-003"), PCTPT="Day 14")
    assert (r.PCSTRESC, r.PCSTRESN, r.PCELTM, r.PCTPTNUM) == ("143.82", 143.82, "PT312H", 312.0)
    assert r.VISITNUM != r.VISITNUM      # between visits: no VISITNUM
    assert r.PCRFTDTC == "2025-01-14T10:00" and r.PCTPTREF == "START OF FIRST VGO-CS01P INFUSION"


def test_lb_conversion_and_nrind_hand_checked(ds):
    lb = ds("LB")
    s = uid("103-001")
    # lb.csv 103-001 Screening: Hemoglobin 9.5 g/dL, range 11.5-15.5 -> x10 = 95 g/L, 115-155 -> LOW
    r = rec(lb, USUBJID=s, LBTESTCD="HGB", VISIT="SCREENING")
    assert (r.LBORRES, r.LBORRESU, r.LBSTRESC, r.LBSTRESN, r.LBSTRESU) == ("9.5", "g/dL", "95", 95.0, "g/L")
    assert (r.LBSTNRLO, r.LBSTNRHI, r.LBNRIND) == (115.0, 155.0, "LOW")
    # Creatinine 0.31 mg/dL x 88.42 = 27.41 -> 27 umol/L; range 0.3-0.7 -> 26.53-61.89 -> 27-62: NORMAL
    r = rec(lb, USUBJID=s, LBTESTCD="CREAT", VISIT="SCREENING")
    assert (r.LBSTRESC, r.LBSTRESN, r.LBSTRESU, r.LBSTNRLO, r.LBSTNRHI, r.LBNRIND) == \
        ("27", 27.0, "umol/L", 27.0, 62.0, "NORMAL")
    # CRP 9.9 mg/L, range 0-5 -> HIGH
    assert rec(lb, USUBJID=s, LBTESTCD="CRP", VISIT="SCREENING").LBNRIND == "HIGH"
    # CRP "<5" (101-001 Day 1): LBSTRESC keeps "<5", no LBSTRESN; every value below 5 is in 0-5 -> NORMAL
    r = rec(lb, USUBJID=uid("101-001"), LBTESTCD="CRP", VISIT="DAY 1")
    assert (r.LBORRES, r.LBSTRESC, r.LBNRIND) == ("<5", "<5", "NORMAL") and np.isnan(r.LBSTRESN)
    # 102-002 Day 28 MRD 0.003 % typed below the 0.01 % sensitivity -> "<0.01", no number
    r = rec(lb, USUBJID=uid("102-002"), LBTESTCD="LEUKCE", VISIT="DAY 28")
    assert (r.LBORRES, r.LBSTRESC, r.LBLLOQ) == ("0.003", "<0.01", 0.01) and np.isnan(r.LBSTRESN)
    # ANC spelled "Neutrophils" at site 102 and "x10^9/L": same test and unit as sites 101/103
    r = rec(lb, USUBJID=uid("102-001"), LBTESTCD="NEUT", VISIT="SCREENING")
    assert (r.LBTEST, r.LBORRESU, r.LBSTRESU) == ("Neutrophils", "10^9/L", "10^9/L")
    # Not done: 101-003 Day 15 ferritin, haemolysed
    r = rec(lb, USUBJID=uid("101-003"), LBTESTCD="FERRITIN", VISIT="DAY 15")
    assert (r.LBORRES, r.LBSTAT, r.LBREASND) == ("", "NOT DONE", "Sample haemolysed")
    assert r.LBNRIND == "" and np.isnan(r.LBSTRESN)


def test_lb_baseline_flag_hand_checked(ds):
    lb = ds("LB")
    # --LOBXFL is anchored at RFXSTDTC, the first protocol-specified treatment (SDTMIG 3.4):
    # 103-001's lymphodepletion started 2024-05-30T08:50 (ld.csv), so the Day 1 labs drawn on
    # 2024-06-04 at 07:44 (before the 09:50 infusion) are after it; Screening is the baseline.
    s = uid("103-001")
    hgb = lb[(lb.USUBJID == s) & (lb.LBTESTCD == "HGB")].set_index("VISIT").LBLOBXFL
    assert hgb["SCREENING"] == "Y" and hgb["DAY 1"] == "" and (hgb == "Y").sum() == 1
    # bone-marrow blasts (response CRF): only the Screening marrow precedes the infusion
    bm = lb[(lb.USUBJID == s) & (lb.LBTESTCD == "BLASTLE") & (lb.LBSPEC == "BONE MARROW")].set_index("VISIT")
    assert bm.loc["SCREENING", "LBLOBXFL"] == "Y" and (bm.LBLOBXFL == "Y").sum() == 1
    # MRD is never measured before dosing: no baseline record at all
    assert (lb[lb.LBTESTCD == "LEUKCE"].LBLOBXFL == "").all()
    # exactly one flag per subject, test and specimen that has a pre-dose result
    flags = lb.groupby(["USUBJID", "LBTESTCD", "LBSPEC"]).LBLOBXFL.agg(lambda x: (x == "Y").sum())
    # 9 subjects x 13 test/specimen pairs measured at Screening: blood HGB, NEUT, PLAT, WBC,
    # BLASTLE, CD7, CD7LY; serum ALT, AST, CREAT, CRP, FERRITIN; bone-marrow BLASTLE (cytokines
    # and MRD are only measured after dosing)
    assert set(flags) == {0, 1} and flags.sum() == 117


def test_unscheduled_visitnum(ds):
    lb, rs, sv = ds("LB"), ds("RS"), ds("SV")
    # 102-003 UNS2 on Day 45: last planned visit on or before is Day 28 (VISITNUM 6) -> 6.02
    assert set(rs[(rs.USUBJID == uid("102-003")) & (rs.VISIT == "UNSCHEDULED 6.02")].VISITNUM) == {6.02}
    # 103-002 UNS2 (Day 150, relapse) after Month 3 (8) -> 8.02; 103-003 UNS2 (Day 17) after Day 15 -> 5.02
    assert rec(sv, USUBJID=uid("103-002"), VISIT="UNSCHEDULED 8.02").VISITNUM == 8.02
    assert set(lb[(lb.USUBJID == uid("103-003")) & (lb.VISIT == "UNSCHEDULED 5.02")].VISITNUM) == {5.02}
    # every UNS1 (CRS work-up, Day 3-4) follows Day 1 (3) -> 3.01
    assert set(sv[sv.VISIT == "UNSCHEDULED 3.01"].VISITNUM) == {3.01}
    # one VISIT value, one VISITNUM, across the study (FDA validator SD0052)
    for d in (lb, rs, sv):
        assert d.groupby("VISIT")["VISITNUM"].nunique().max() == 1
    r = rec(sv, USUBJID=uid("103-002"), VISIT="UNSCHEDULED 8.02")
    assert (r.SVUPDES, r.SVPRESP, r.SVOCCUR, r.VISITDY) == ("Rising peripheral blasts", "", "", r.VISITDY)


def test_sv_missed_visits(ds):
    sv = ds("SV")
    for subject, visit, num, reason in (
            ("102-002", "MONTH 9", 10.0, "Family travelling abroad; visit not rescheduled"),
            ("103-001", "MONTH 6", 9.0, "Subject did not attend; family could not be reached")):
        r = rec(sv, USUBJID=uid(subject), VISIT=visit)
        assert (r.VISITNUM, r.SVPRESP, r.SVOCCUR, r.SVREASOC, r.SVSTDTC) == (num, "Y", "N", reason, "")
    assert (sv.SVOCCUR == "N").sum() == 2
    r = rec(sv, USUBJID=uid("102-002"), VISIT="MONTH 12")
    assert (r.SVOCCUR, r.SVSTDTC, r.SVSTDY, r.VISITDY) == ("Y", "2025-09-08", 371.0, 365.0)
    assert "EPOCH" not in sv.columns          # not in the SDTMIG 3.4 SV table (CORE-000550)


def test_rs_crh_relapse_emd_and_supp(ds):
    rs = ds("RS")
    r = rec(rs, USUBJID=uid("102-002"), RSTESTCD="OVRLRESP", VISIT="DAY 28")
    assert (r.RSORRES, r.RSSTRESC, r.RSTEST) == ("CRh", "CRh", "Overall Response")   # sponsor ONCRSR extension
    r = rec(rs, USUBJID=uid("101-002"), RSTESTCD="OVRLRESP", VISIT="MONTH 9")
    assert (r.RSORRES, r.RSSTRESC) == ("cr", "CR")
    r = rec(rs, USUBJID=uid("103-002"), RSTESTCD="OVRLRESP", VISIT="UNSCHEDULED 8.02")
    assert (r.RSORRES, r.RSSTRESC, r.RSDTC, r.RSDY, r.EPOCH) == \
        ("Relapse", "RELAPSED DISEASE", "2025-02-27", 150.0, "FOLLOW-UP")
    # EMD "Not evaluated" (101-001 Day 28): no result, RSSTAT NOT DONE
    r = rec(rs, USUBJID=uid("101-001"), RSTESTCD="EMDIND", VISIT="DAY 28")
    assert (r.RSORRES, r.RSSTRESC, r.RSSTAT) == ("", "", "NOT DONE")
    r = rec(rs, USUBJID=uid("101-001"), RSTESTCD="EMDIND", VISIT="MONTH 2")
    assert (r.RSORRES, r.RSSTRESC, r.RSTEST) == ("Present", "POSITIVE", "Extramedullary Disease Indicator")
    # no overall response at Screening
    assert rs[(rs.VISIT == "SCREENING") & (rs.RSTESTCD == "OVRLRESP")].empty
    supp = ds("SUPPRS")
    r = rec(rs, USUBJID=uid("102-002"), RSTESTCD="OVRLRESP", VISIT="DAY 28")
    q = supp[(supp.USUBJID == r.USUBJID) & (supp.IDVARVAL == str(int(r.RSSEQ)))].set_index("QNAM").QVAL
    assert q.to_dict() == {"ANCCAT": "ANC >= 1.0 x10^9/L", "PLTCAT": "PLT 50 to < 100 x10^9/L"}


def test_is_tiers_and_titre(ds):
    i = ds("IS")
    s = uid("102-001")
    # ada.csv 102-001 Month 6: screen Positive, confirm Positive, titre typed "80" (no "1:")
    m6 = i[(i.USUBJID == s) & (i.VISIT == "MONTH 6")].set_index("ISSCAT")
    assert m6.ISORRES.to_dict() == {"CONFIRMATORY": "Positive", "SCREENING": "Positive", "TITER": "80"}
    assert m6.loc["TITER", "ISSTRESN"] == 80.0 and m6.loc["TITER", "ISSTRESU"] == "titer"
    r = rec(i, USUBJID=uid("101-002"), ISSCAT="TITER", VISIT="MONTH 3")
    assert (r.ISORRES, r.ISSTRESC, r.ISSTRESN) == ("1:160", "160", 160.0)        # truth ADA_MAX_TITER 160
    assert set(i.ISTESTCD) == {"ADA_BAB"} and set(i.ISTEST) == {"Binding Antidrug Antibody"}
    # ADA is first sampled on Day 1 before the infusion, which is after lymphodepletion began
    # (RFXSTDTC): ISLOBXFL is anchored at the first VGO-Cs01p infusion (RFSTDTC; issue 12,
    # specs/sdtm/is.yaml), so it flags the day-1 pre-dose sample, the ADIS ABLFL record.
    assert (i.ISLOBXFL == "Y").sum() > 0
    assert set(i.loc[i.ISLOBXFL == "Y", "ISDY"]) == {1.0}
    assert len(i[(i.ISLOBXFL == "Y")].groupby(["USUBJID", "ISSCAT"])) == (i.ISLOBXFL == "Y").sum()
    assert set(i[i.VISIT == "DAY 1"].ISDY) == {1.0}


# ---------------------------------------------------------------------------------------
# bad inputs: one clear message naming file, row and column
# ---------------------------------------------------------------------------------------
def test_unknown_test_code_is_reported(tmp_path):
    specs, raw = copy_study(tmp_path)
    set_cell(raw, "lb", 2, "LBTEST", "Blood pixie count")       # 101-001 Screening WBC line
    set_cell(raw, "fc", 3, "FCTEST", "CD8+ cells absolute count")
    probs = problems_of(specs, raw)
    lb = [p for p in probs if p.file == "lb.csv"]
    fc = [p for p in probs if p.file == "fc.csv"]
    assert [(p.row, p.column) for p in lb] == [(2, "LBTEST")] and "'Blood pixie count'" in lb[0].message
    assert "LBTESTCD" in lb[0].message
    # the renamed column is named as in fc.csv, not the spec's working name
    assert [(p.row, p.column) for p in fc] == [(3, "FCTEST")]


def test_response_outside_ct_is_reported(tmp_path):
    specs, raw = copy_study(tmp_path)
    set_cell(raw, "rs", 3, "OVRLRESP", "Much better")           # 101-001 Day 28
    probs = problems_of(specs, raw)
    assert [(p.file, p.row, p.column) for p in probs] == [("rs.csv", 3, "OVRLRESP")]
    assert "'Much better'" in probs[0].message and "ONCRSR" in probs[0].message


def test_lab_result_without_unit_is_reported(tmp_path):
    specs, raw = copy_study(tmp_path)
    set_cell(raw, "lb", 2, "LBORRESU", "")                      # 101-001 Screening WBC 3.37
    probs = problems_of(specs, raw)
    assert [(p.file, p.row, p.column) for p in probs] == [("lb.csv", 2, "LBORRESU")]
    # one message for the one blank cell, although LBSTRESC/N/U and LBSTNRLO/HI all need the unit
    assert probs[0].message == "a numeric result of test WBC has no unit"


def test_unitless_test_per_conversion_table_is_accepted(tmp_path):
    specs, raw = copy_study(tmp_path)
    set_cell(raw, "lb", 2, "LBORRESU", "")
    study = yaml.safe_load((specs / "study.yaml").read_text(encoding="utf-8"))
    study["lookups"]["unit_conversions"] = [r for r in study["lookups"]["unit_conversions"] if r["testcd"] != "WBC"] \
        + [{"testcd": "WBC"}]
    (specs / "study.yaml").write_text(yaml.safe_dump(study, sort_keys=False, allow_unicode=True), encoding="utf-8")
    # now every other WBC record (with unit 10^9/L) has no conversion row: 85 problems, not line 2
    probs = problems_of(specs, raw)
    assert {p.column for p in probs} == {"LBORRESU"} and 2 not in {p.row for p in probs}
    assert all("no unit conversion for test WBC from unit '10^9/L'" in p.message for p in probs)


def test_transcription_mismatch_between_forms_is_reported(tmp_path):
    specs, raw = copy_study(tmp_path)
    set_cell(raw, "rs", 2, "PBBLAST", "22.0")                   # lb.csv says 21.0 for 101-001 Screening
    probs = problems_of(specs, raw)
    assert [(p.file, p.row, p.column) for p in probs] == [("rs.csv", 2, "PBBLAST")]
    assert "21" in probs[0].message and "lb.csv row" in probs[0].message


def test_cli_exit_code_and_message(tmp_path):
    from cdisc.cli import main

    specs, raw = copy_study(tmp_path)
    set_cell(raw, "rs", 3, "OVRLRESP", "Much better")
    res = CliRunner().invoke(main, ["build", "--specs", str(specs), "--raw", str(raw), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "rs.csv, row 3, column OVRLRESP: value 'Much better'" in res.stderr


# ---------------------------------------------------------------------------------------
# the engine pieces, on hand values
# ---------------------------------------------------------------------------------------
CONV = [{"testcd": "HGB", "orresu": "g/dL", "stresu": "g/L", "factor": 10, "decimals": 0},
        {"testcd": "CRP", "orresu": "mg/L", "stresu": "mg/L"}, {"testcd": "PH"},
        {"testcd": "ADA", "orresu": "titer", "stresu": "titer"}]


def _std(orres, orresu, testcd, part, **kw):
    n = len(orres)
    raw = pd.DataFrame({"__file": ["x.csv"] * n, "__row": range(2, n + 2)})
    s = lambda v: pd.Series(v, dtype="object")  # noqa: E731
    return standardise(s(orres), s(orresu), s(testcd), raw, part=part, conversions=CONV, where="t", **kw)


def test_standardise_parts():
    orres = ["8.9", "<5", "7.4", "1:80", "Positive", "", "BLQ", "0.3"]
    unit = ["g/dL", "mg/L", "", "titer", "", "mg/L", "mg/L", "mg/L"]
    tc = ["HGB", "CRP", "PH", "ADA", "HIVAB", "CRP", "CRP", "CRP"]
    lloq = pd.Series([None, None, None, None, None, None, 0.5, 0.5])
    c, p = _std(orres, unit, tc, "stresc", lloq=lloq, below_lloq=["BLQ"])
    # 8.9 g/dL x 10 = 89 g/L (0 decimals); "<5" kept; unitless pH kept; 1:80 -> 80; 0.3 < LLOQ 0.5 -> "<0.5";
    # a text result of a test without unit conversions (a character test) is kept as collected
    assert c.tolist()[:5] == ["89", "<5", "7.4", "80", "Positive"] and pd.isna(c[5])
    assert c.tolist()[6:] == ["BLQ", "<0.5"] and p == []
    n, _ = _std(orres, unit, tc, "stresn", lloq=lloq, below_lloq=["BLQ"])
    assert n.tolist()[0] == 89.0 and n.tolist()[2:4] == [7.4, 80.0]
    assert n.isna().tolist() == [False, True, False, False, True, True, True, True]
    u, _ = _std(orres, unit, tc, "stresu", below_lloq=["BLQ"])
    assert u.tolist()[:4] == ["g/L", "mg/L", None, "titer"] or (u.tolist()[:2] == ["g/L", "mg/L"] and pd.isna(u[2]))


@pytest.mark.parametrize("typed", ["5,3", "1,200", "1 200", "NaN", "n/a", "inf", "1e400", "ND", "5.3.1"])
def test_standardise_reports_a_numeric_result_that_does_not_parse(typed):
    """A result of a numeric test (one with unit conversions), or one given with a unit, that is
    not a plain number is reported with its value, never kept as a character result without
    --STRESN and --STRESU."""
    for part in ("stresc", "stresn", "stresu"):
        _, p = _std(["8.9", typed], ["g/dL", "g/dL"], ["HGB", "HGB"], part,
                    names={"orres": pd.Series(["LBORRES", "LBORRES"])})
        assert [(x.file, x.row, x.column) for x in p] == [("x.csv", 3, "LBORRES")], part
        assert f"result {typed!r} of test HGB is not a number (unit 'g/dL')" in p[0].message
    # without a unit, for a test the table converts
    _, p = _std([typed], [""], ["CRP"], "stresc")
    assert len(p) == 1 and f"result {typed!r} of test CRP is not a number" in p[0].message


def test_standardise_reports_missing_unit_and_unknown_conversion():
    _, p = _std(["12", "12"], ["", "mmol/L"], ["HGB", "HGB"], "stresn",
                names={"orresu": pd.Series(["LBORRESU", "FCRESU"])})
    assert [(x.file, x.row, x.column) for x in p] == [("x.csv", 2, "LBORRESU"), ("x.csv", 3, "FCRESU")]
    assert "no unit" in p[0].message and "no unit conversion for test HGB from unit 'mmol/L'" in p[1].message


def test_nrind_rules():
    res = pd.Series([3.0, 5.0, 9.0, np.nan, np.nan, np.nan, 4.0, np.nan])
    lo = pd.Series([4.0, 0.0, 0.0, 0.0, 10.0, 0.0, np.nan, 1.0])
    hi = pd.Series([8.0, 5.0, 5.0, 5.0, 20.0, 5.0, np.nan, 5.0])
    txt = pd.Series(["3", "5", "9", "<5", "<8", ">10", "4", "<5"])
    # limits inclusive; "<5" in 0-5 NORMAL; "<8" below LO 10 LOW; ">10" above HI 5 HIGH; no range -> missing;
    # "<5" with LO 1: a value could be below 1 -> undetermined
    assert fn.nrind(res, lo, hi, txt).tolist()[:6] == ["LOW", "NORMAL", "HIGH", "NORMAL", "LOW", "HIGH"]
    assert pd.isna(fn.nrind(res, lo, hi, txt)[6]) and pd.isna(fn.nrind(res, lo, hi, txt)[7])


def test_baseline_flag_times_and_missing_results():
    by = pd.DataFrame({"USUBJID": ["A"] * 5 + ["B"], "TEST": ["X"] * 6})
    dtc = pd.Series(["2024-01-01", "2024-01-10T08:00", "2024-01-10T10:00", "2024-01-09", "2024-01-20", "2024-01-10"])
    result = pd.Series(["1", "2", "3", "", "5", "6"])
    ref = pd.Series(["2024-01-10T09:00"] * 5 + ["2024-01-10T09:00"])
    # A: 08:00 on the dosing day is before 09:00 (flag); 10:00 is after; the blank result never counts
    # B: a date-only record on the dosing day compares by date -> on or before -> flag
    assert fn.baseline_flag(by, dtc, result, ref).fillna("").tolist() == ["", "Y", "", "", "", "Y"]


def test_cases_and_number_text():
    c = fn.cases([pd.Series([True, False, False]), pd.Series([True, True, False])], ["N", "Y"], pd.RangeIndex(3))
    assert c.tolist()[:2] == ["N", "Y"] and pd.isna(c[2])
    assert fn.number_text(pd.Series([89.00000000000001, 106.104, 0.5])).tolist() == ["89", "106.104", "0.5"]
    assert fn.number_text(pd.Series([26.526]), pd.Series([0])).tolist() == ["27"]


def test_melt_over_stacked_forms(tmp_path):
    """melt: set constants beat an equally named column of another stacked form; one reconciliation
    line per melted field; a blank field makes no record; messages name the melted raw column."""
    from cdisc.ct import load_terminology
    from cdisc.study import load_study
    from cdisc.sdtm.engine import Context, map_domain
    from cdisc.sdtm.spec import DomainSpec

    (tmp_path / "a.csv").write_text("SUBJECT,TEST,RES\n1,WBC,3\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text("SUBJECT,F1,F2\n1,PR,\n2,CR,Present\n3,XX,Absent\n", encoding="utf-8")
    spec = DomainSpec.model_validate({
        "domain": "ZZ", "label": "t", "class": "FINDINGS", "structure": "t", "keys": ["USUBJID", "T"],
        "sources": [{"form": "a", "columns": {"RESULT": "RES"}},
                    {"form": "b", "melt": [{"column": "F1", "set": {"TEST": "OVRLRESP"}},
                                           {"column": "F2", "set": {"TEST": "EMDIND"}, "blank_reason": "not done"}]}],
        "variables": [{"name": "USUBJID", "label": "u", "assign": "SUBJECT"},
                      {"name": "T", "label": "t", "assign": "TEST"},
                      {"name": "R", "label": "r", "assign": "RESULT"},
                      {"name": "C", "label": "c", "map": "RESULT", "codelist": "ONCRSR",
                       "when": "TEST != 'WBC'"}]})
    ctx = Context(study=load_study(SPECS), ct=load_terminology(SPECS), raw_dir=tmp_path)
    res = map_domain(spec, ctx, spec_file="zz.yaml")
    got = res.data.sort_values(["USUBJID", "T"])[["USUBJID", "T", "R"]].values.tolist()
    assert got == [["1", "OVRLRESP", "PR"], ["1", "WBC", "3"], ["2", "EMDIND", "Present"],
                   ["2", "OVRLRESP", "CR"], ["3", "EMDIND", "Absent"], ["3", "OVRLRESP", "XX"]]
    lines = {r.file: (r.rows_read, r.rows_mapped, r.excluded) for r in res.reconciliation}
    assert lines == {"a.csv": (1, 1, {}), "b.csv:F1": (3, 3, {}), "b.csv:F2": (3, 2, {"not done": 1})}
    assert [(p.file, p.row, p.column) for p in res.problems] == [("b.csv", 4, "F1")]   # 'XX' not in ONCRSR
