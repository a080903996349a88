"""A small, hand-made, conformant build (frames + metadata + CT) for tests and demos.

Three subjects of a VGO-Cs01p-like study: DM, AE, SUPPAE, EX, TS (SDTM) and ADSL, ADAE,
ADTTE, ADRS (ADaM). Frames look as read back from XPT: Char columns are ``str`` with
"" for blank, Num columns float64, ADaM dates numeric SAS dates (DATE9.).

Hand calculations the data relies on (SDTMIG 3.4 §4.4.4, RFSTDTC = first dose):
    001: RFSTDTC 2023-01-20. AE 2023-01-21 -> day 2; AE 2023-01-25 -> 6;
         AE 2023-01-18 -> 18-20 = -2; 2023-01-19 -> -1; EX 2023-02-03 -> 14+1 = 15.
    002: RFSTDTC 2023-02-15T10:30. AE 2023-02-16T08:00 -> 1+1 = 2; AE end 2023-02
         (partial) -> no AEENDY.
    003: RFSTDTC 2023-03-10. AE 2023-03-15 -> 5+1 = 6.
SAS dates = days since 1960-01-01, e.g. 2023-01-20 -> 23030.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdisc.metadata import DatasetMeta, VariableMeta

STUDY = "VGO-CS01P"
S1, S2, S3 = (f"{STUDY}-00{i}" for i in (1, 2, 3))

#: TS parameters present in the sample: the union of the two TS rules' lists.
TS_PARAMS = [
    "SSTDTC", "SDTIGVER", "SDTMVER", "STYPE", "TPHASE", "TTYPE", "TITLE",
    "ACTSUB", "ADDON", "AGEMAX", "AGEMIN", "INDIC", "INTMODEL", "INTTYPE", "LENGTH", "NARMS",
    "OBJPRIM", "PLANSUB", "RANDOM", "REGID", "SENDTC", "SEXPOP", "SPONSOR", "TBLIND", "TCNTRL",
    "TDIGRP", "TINDTP", "TRT",
]


def sas_date(iso: str | None) -> float:
    """Days since 1960-01-01 of an ISO date (NaN for None/"")."""
    if not iso:
        return np.nan
    return float((pd.Timestamp(iso[:10]) - pd.Timestamp("1960-01-01")).days)


def _v(name, label, type="Char", core=None, codelist=None, fmt=None, length=None, key=None):
    return VariableMeta(name=name, label=label, type=type, core=core, codelist=codelist,
                        format=fmt, length=length, key_sequence=key)


def _ident(domain: bool = True) -> list[VariableMeta]:
    out = [_v("STUDYID", "Study Identifier", core="Req", length=9)]
    if domain:
        out.append(_v("DOMAIN", "Domain Abbreviation", core="Req", length=2))
    out.append(_v("USUBJID", "Unique Subject Identifier", core="Req", length=13))
    return out


def _frame(rows: list[dict], meta: DatasetMeta) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=meta.names)
    for v in meta.variables:
        if v.type == "Num":
            df[v.name] = pd.to_numeric(df[v.name], errors="coerce").astype("float64")
        else:
            df[v.name] = df[v.name].fillna("").astype(str)
    return df


def sample_ct() -> dict:
    """A tiny CT subset in the ``specs/ct/sdtm-ct.yaml`` ``codelists`` format."""
    def cl(ext, *values):
        return {"code": None, "extensible": ext,
                "terms": [{"value": v, "code": None, "decode": v, "synonyms": []} for v in values]}
    return {
        "NY": cl(False, "N", "Y", "U", "NA"),
        "SEX": cl(False, "F", "M", "U", "UNDIFFERENTIATED"),
        "AGEU": cl(False, "YEARS", "MONTHS", "DAYS"),
        "AESEV": cl(False, "MILD", "MODERATE", "SEVERE"),
        "ROUTE": cl(True, "INTRAVENOUS", "ORAL", "SUBCUTANEOUS"),
    }


def sample_build() -> tuple[dict[str, pd.DataFrame], dict[str, DatasetMeta], dict]:
    """(datasets, metas, ct) of a clean build on which validation finds nothing."""
    metas: dict[str, DatasetMeta] = {}
    data: dict[str, pd.DataFrame] = {}

    # ---------------------------------------------------------------- DM
    metas["DM"] = DatasetMeta(
        name="DM", label="Demographics", class_="SPECIAL PURPOSE", keys=["STUDYID", "USUBJID"],
        variables=_ident() + [
            _v("SUBJID", "Subject Identifier for the Study", core="Req"),
            _v("RFSTDTC", "Subject Reference Start Date/Time", core="Exp"),
            _v("RFENDTC", "Subject Reference End Date/Time", core="Exp"),
            _v("RFXSTDTC", "Date/Time of First Study Treatment", core="Exp"),
            _v("RFXENDTC", "Date/Time of Last Study Treatment", core="Exp"),
            _v("RFICDTC", "Date/Time of Informed Consent", core="Exp"),
            _v("DTHDTC", "Date/Time of Death", core="Exp"),
            _v("DTHFL", "Subject Death Flag", core="Exp", codelist="NY"),
            _v("SITEID", "Study Site Identifier", core="Req"),
            _v("BRTHDTC", "Date/Time of Birth", core="Perm"),
            _v("AGE", "Age", type="Num", core="Exp"),
            _v("AGEU", "Age Units", core="Exp", codelist="AGEU"),
            _v("SEX", "Sex", core="Req", codelist="SEX"),
            _v("ARMCD", "Planned Arm Code", core="Exp"),
            _v("ARM", "Description of Planned Arm", core="Exp"),
            _v("ACTARMCD", "Actual Arm Code", core="Exp"),
            _v("ACTARM", "Description of Actual Arm", core="Exp"),
            _v("COUNTRY", "Country", core="Req"),
        ],
    )
    dm_rows = [
        dict(USUBJID=S1, SUBJID="001", RFSTDTC="2023-01-20", RFENDTC="2023-12-20", RFXSTDTC="2023-01-20",
             RFXENDTC="2023-02-03", RFICDTC="2023-01-05", DTHDTC="", DTHFL="", BRTHDTC="2012-06-15", AGE=10, SEX="M", ARMCD="DL1",
             ARM="Dose Level 1"),
        dict(USUBJID=S2, SUBJID="002", RFSTDTC="2023-02-15T10:30", RFENDTC="2023-08-01",
             RFXSTDTC="2023-02-15T10:30", RFXENDTC="2023-02-15T11:00", RFICDTC="2023-02-01",
             DTHDTC="2023-08-01", DTHFL="Y", BRTHDTC="2008-09", AGE=14, SEX="F", ARMCD="DL2", ARM="Dose Level 2"),
        dict(USUBJID=S3, SUBJID="003", RFSTDTC="2023-03-10", RFENDTC="2024-03-01", RFXSTDTC="2023-03-10",
             RFXENDTC="2023-03-10", RFICDTC="2023-03-01", DTHDTC="", DTHFL="", BRTHDTC="2015-11-02", AGE=7, SEX="F", ARMCD="DL3",
             ARM="Dose Level 3"),
    ]
    for r in dm_rows:
        r.update(STUDYID=STUDY, DOMAIN="DM", SITEID="01", AGEU="YEARS", ACTARMCD=r["ARMCD"],
                 ACTARM=r["ARM"], COUNTRY="CHN")
    data["DM"] = _frame(dm_rows, metas["DM"])

    # ---------------------------------------------------------------- AE
    metas["AE"] = DatasetMeta(
        name="AE", label="Adverse Events", class_="EVENTS",
        keys=["STUDYID", "USUBJID", "AEDECOD", "AESTDTC"],
        variables=_ident() + [
            _v("AESEQ", "Sequence Number", type="Num", core="Req"),
            _v("AETERM", "Reported Term for the Adverse Event", core="Req"),
            _v("AEDECOD", "Dictionary-Derived Term", core="Req"),
            _v("AESEV", "Severity/Intensity", core="Perm", codelist="AESEV"),
            _v("AESER", "Serious Event", core="Exp", codelist="NY"),
            _v("AESTDTC", "Start Date/Time of Adverse Event", core="Exp"),
            _v("AEENDTC", "End Date/Time of Adverse Event", core="Exp"),
            _v("AESTDY", "Study Day of Start of Adverse Event", type="Num", core="Perm"),
            _v("AEENDY", "Study Day of End of Adverse Event", type="Num", core="Perm"),
        ],
    )
    ae_rows = [
        dict(USUBJID=S1, AESEQ=1, AETERM="FEVER", AEDECOD="Pyrexia", AESEV="MILD", AESER="N",
             AESTDTC="2023-01-21", AEENDTC="2023-01-25", AESTDY=2, AEENDY=6),
        dict(USUBJID=S1, AESEQ=2, AETERM="HEADACHE", AEDECOD="Headache", AESEV="MILD", AESER="N",
             AESTDTC="2023-01-18", AEENDTC="2023-01-19", AESTDY=-2, AEENDY=-1),
        dict(USUBJID=S2, AESEQ=1, AETERM="CRS", AEDECOD="Cytokine release syndrome", AESEV="MODERATE",
             AESER="Y", AESTDTC="2023-02-16T08:00", AEENDTC="2023-02", AESTDY=2, AEENDY=None),
        dict(USUBJID=S3, AESEQ=1, AETERM="NEUTROPENIA", AEDECOD="Neutropenia", AESEV="SEVERE", AESER="N",
             AESTDTC="2023-03-15", AEENDTC="", AESTDY=6, AEENDY=None),
    ]
    for r in ae_rows:
        r.update(STUDYID=STUDY, DOMAIN="AE")
    data["AE"] = _frame(ae_rows, metas["AE"])

    # ---------------------------------------------------------------- SUPPAE
    metas["SUPPAE"] = DatasetMeta(
        name="SUPPAE", label="Supplemental Qualifiers for AE", class_="RELATIONSHIP",
        keys=["STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"],
        variables=[
            _v("STUDYID", "Study Identifier", core="Req", length=9),
            _v("RDOMAIN", "Related Domain Abbreviation", core="Req"),
            _v("USUBJID", "Unique Subject Identifier", core="Req", length=13),
            _v("IDVAR", "Identifying Variable", core="Exp"),
            _v("IDVARVAL", "Identifying Variable Value", core="Exp"),
            _v("QNAM", "Qualifier Variable Name", core="Req"),
            _v("QLABEL", "Qualifier Variable Label", core="Req"),
            _v("QVAL", "Data Value", core="Req"),
            _v("QORIG", "Origin", core="Req"),
        ],
    )
    supp_rows = [
        dict(USUBJID=S2, IDVARVAL="1", QNAM="AECRSGR", QLABEL="ASTCT CRS Grade", QVAL="2"),
        dict(USUBJID=S1, IDVARVAL="2", QNAM="AEDLT", QLABEL="Dose-Limiting Toxicity", QVAL="N"),
    ]
    for r in supp_rows:
        r.update(STUDYID=STUDY, RDOMAIN="AE", IDVAR="AESEQ", QORIG="CRF")
    data["SUPPAE"] = _frame(supp_rows, metas["SUPPAE"])

    # ---------------------------------------------------------------- EX
    metas["EX"] = DatasetMeta(
        name="EX", label="Exposure", class_="INTERVENTIONS",
        keys=["STUDYID", "USUBJID", "EXTRT", "EXSTDTC"],
        variables=_ident() + [
            _v("EXSEQ", "Sequence Number", type="Num", core="Req"),
            _v("EXTRT", "Name of Treatment", core="Req"),
            _v("EXDOSE", "Dose", type="Num", core="Exp"),
            _v("EXDOSU", "Dose Units", core="Exp"),
            _v("EXROUTE", "Route of Administration", core="Perm", codelist="ROUTE"),
            _v("EXSTDTC", "Start Date/Time of Treatment", core="Exp"),
            _v("EXENDTC", "End Date/Time of Treatment", core="Exp"),
            _v("EXSTDY", "Study Day of Start of Treatment", type="Num", core="Perm"),
            _v("EXENDY", "Study Day of End of Treatment", type="Num", core="Perm"),
        ],
    )
    ex_rows = [
        dict(USUBJID=S1, EXSEQ=1, EXDOSE=1e7, EXSTDTC="2023-01-20", EXENDTC="2023-01-20", EXSTDY=1, EXENDY=1),
        dict(USUBJID=S1, EXSEQ=2, EXDOSE=1e7, EXSTDTC="2023-02-03", EXENDTC="2023-02-03", EXSTDY=15, EXENDY=15),
        dict(USUBJID=S2, EXSEQ=1, EXDOSE=3e7, EXSTDTC="2023-02-15T10:30", EXENDTC="2023-02-15T11:00",
             EXSTDY=1, EXENDY=1),
        dict(USUBJID=S3, EXSEQ=1, EXDOSE=1e8, EXSTDTC="2023-03-10", EXENDTC="2023-03-10", EXSTDY=1, EXENDY=1),
    ]
    for r in ex_rows:
        r.update(STUDYID=STUDY, DOMAIN="EX", EXTRT="CD7 CAR-NK", EXDOSU="CELLS", EXROUTE="INTRAVENOUS")
    data["EX"] = _frame(ex_rows, metas["EX"])

    # ---------------------------------------------------------------- TS
    metas["TS"] = DatasetMeta(
        name="TS", label="Trial Summary", class_="TRIAL DESIGN", keys=["STUDYID", "TSPARMCD", "TSSEQ"],
        variables=[
            _v("STUDYID", "Study Identifier", core="Req", length=9),
            _v("DOMAIN", "Domain Abbreviation", core="Req", length=2),
            _v("TSSEQ", "Sequence Number", type="Num", core="Req"),
            _v("TSPARMCD", "Trial Summary Parameter Short Name", core="Req"),
            _v("TSPARM", "Trial Summary Parameter", core="Req"),
            _v("TSVAL", "Parameter Value", core="Exp"),
            _v("TSVALNF", "Parameter Null Flavor", core="Perm"),
        ],
    )
    ts_values = {"SSTDTC": "2022-12-01", "SDTIGVER": "3.4", "SDTMVER": "2.0", "TITLE": "CD7 CAR-NK in T-ALL",
                 "ADDON": "", "REGID": ""}
    ts_rows = [
        dict(STUDYID=STUDY, DOMAIN="TS", TSSEQ=1, TSPARMCD=p, TSPARM=p.title(),
             TSVAL=ts_values.get(p, "X"), TSVALNF="NA" if ts_values.get(p) == "" else "")
        for p in TS_PARAMS
    ]
    data["TS"] = _frame(ts_rows, metas["TS"])

    # ---------------------------------------------------------------- ADSL
    adam_id = [_v("STUDYID", "Study Identifier", core="Req", length=9),
               _v("USUBJID", "Unique Subject Identifier", core="Req", length=13)]
    metas["ADSL"] = DatasetMeta(
        name="ADSL", label="Subject-Level Analysis Dataset", standard="ADaM",
        class_="SUBJECT LEVEL ANALYSIS DATASET", keys=["STUDYID", "USUBJID"],
        variables=adam_id + [
            _v("SUBJID", "Subject Identifier for the Study", core="Req"),
            _v("SITEID", "Study Site Identifier", core="Req"),
            _v("AGE", "Age", type="Num", core="Req"),
            _v("AGEU", "Age Units", core="Req", codelist="AGEU"),
            _v("SEX", "Sex", core="Req", codelist="SEX"),
            _v("ARM", "Description of Planned Arm", core="Req"),
            _v("ARMCD", "Planned Arm Code", core="Perm"),
            _v("TRT01P", "Planned Treatment for Period 01", core="Req"),
            _v("TRT01A", "Actual Treatment for Period 01", core="Cond"),
            _v("TRTSDT", "Date of First Exposure to Treatment", type="Num", core="Cond", fmt="DATE9."),
            _v("TRTEDT", "Date of Last Exposure to Treatment", type="Num", core="Cond", fmt="DATE9."),
            _v("DTHFL", "Subject Death Flag", core="Perm", codelist="NY"),
            _v("DTHDT", "Date of Death", type="Num", core="Perm", fmt="DATE9."),
            _v("SAFFL", "Safety Population Flag", core="Cond", codelist="NY"),
        ],
    )
    dm = data["DM"]
    adsl = pd.DataFrame({
        "STUDYID": STUDY, "USUBJID": dm["USUBJID"], "SUBJID": dm["SUBJID"], "SITEID": dm["SITEID"],
        "AGE": dm["AGE"], "AGEU": dm["AGEU"], "SEX": dm["SEX"], "ARM": dm["ARM"], "ARMCD": dm["ARMCD"],
        "TRT01P": dm["ARM"], "TRT01A": dm["ACTARM"],
        "TRTSDT": [sas_date("2023-01-20"), sas_date("2023-02-15"), sas_date("2023-03-10")],
        "TRTEDT": [sas_date("2023-02-03"), sas_date("2023-02-15"), sas_date("2023-03-10")],
        "DTHFL": dm["DTHFL"], "DTHDT": [np.nan, sas_date("2023-08-01"), np.nan], "SAFFL": "Y",
    })
    data["ADSL"] = _frame(adsl.to_dict("records"), metas["ADSL"])

    # ---------------------------------------------------------------- ADAE
    metas["ADAE"] = DatasetMeta(
        name="ADAE", label="Adverse Events Analysis Dataset", standard="ADaM",
        class_="OCCURRENCE DATA STRUCTURE", keys=["STUDYID", "USUBJID", "AESEQ"],
        variables=adam_id + [
            _v("AESEQ", "Sequence Number", type="Num", core="Req"),
            _v("AETERM", "Reported Term for the Adverse Event", core="Req"),
            _v("AEDECOD", "Dictionary-Derived Term", core="Req"),
            _v("AESER", "Serious Event", core="Perm", codelist="NY"),
            _v("AESTDTC", "Start Date/Time of Adverse Event", core="Perm"),
            _v("AEENDTC", "End Date/Time of Adverse Event", core="Perm"),
            _v("ASTDT", "Analysis Start Date", type="Num", core="Cond", fmt="DATE9."),
            _v("ASTDY", "Analysis Start Relative Day", type="Num", core="Perm"),
            _v("AENDT", "Analysis End Date", type="Num", core="Cond", fmt="DATE9."),
            _v("TRTSDT", "Date of First Exposure to Treatment", type="Num", core="Cond", fmt="DATE9."),
            _v("TRTEMFL", "Treatment Emergent Analysis Flag", core="Cond", codelist="NY"),
        ],
    )
    ae = data["AE"]
    adae = pd.DataFrame({
        "STUDYID": STUDY, "USUBJID": ae["USUBJID"], "AESEQ": ae["AESEQ"], "AETERM": ae["AETERM"],
        "AEDECOD": ae["AEDECOD"], "AESER": ae["AESER"], "AESTDTC": ae["AESTDTC"], "AEENDTC": ae["AEENDTC"],
        "ASTDT": [sas_date(d) for d in ae["AESTDTC"]],
        # Partial end dates are not imputed: AENDT only from complete dates.
        "AENDT": [sas_date(d) if len(d) >= 10 else np.nan for d in ae["AEENDTC"]],
        "TRTSDT": [sas_date("2023-01-20"), sas_date("2023-01-20"), sas_date("2023-02-15"), sas_date("2023-03-10")],
        # 001's HEADACHE starts 2023-01-18, before the first dose: not treatment-emergent.
        "TRTEMFL": ["Y", "", "Y", "Y"],
    })
    # ASTDY = ASTDT - TRTSDT (+1 on or after): 2023-01-21 -> 2; 2023-01-18 -> -2; 2023-02-16 -> 2;
    # 2023-03-15 -> 6
    adae["ASTDY"] = adae["ASTDT"] - adae["TRTSDT"] + (adae["ASTDT"] >= adae["TRTSDT"]).astype(float)
    data["ADAE"] = _frame(adae.to_dict("records"), metas["ADAE"])

    # ---------------------------------------------------------------- ADTTE
    bds = [_v("PARAMCD", "Parameter Code", core="Req"), _v("PARAM", "Parameter", core="Req")]
    metas["ADTTE"] = DatasetMeta(
        name="ADTTE", label="Time-to-Event Analysis Dataset", standard="ADaM",
        class_="BASIC DATA STRUCTURE", keys=["STUDYID", "USUBJID", "PARAMCD"],
        variables=adam_id + bds + [
            _v("AVAL", "Analysis Value", type="Num", core="Cond"),
            _v("STARTDT", "Time-to-Event Origin Date for Subject", type="Num", core="Cond", fmt="DATE9."),
            _v("ADT", "Analysis Date", type="Num", core="Cond", fmt="DATE9."),
            _v("CNSR", "Censor", type="Num", core="Cond"),
            _v("EVNTDESC", "Event or Censoring Description", core="Perm"),
            _v("CNSDTDSC", "Censor Date Description", core="Perm"),
        ],
    )
    start = [sas_date("2023-01-20"), sas_date("2023-02-15"), sas_date("2023-03-10")]
    adt = [sas_date("2023-12-20"), sas_date("2023-08-01"), sas_date("2024-03-01")]
    data["ADTTE"] = _frame([
        dict(STUDYID=STUDY, USUBJID=u, PARAMCD="OS", PARAM="Overall Survival (days)", AVAL=a - s + 1,
             STARTDT=s, ADT=a, CNSR=c, EVNTDESC=e, CNSDTDSC=d)
        for u, s, a, c, e, d in zip(
            [S1, S2, S3], start, adt, [1, 0, 1], ["", "DEATH", ""],
            ["LAST KNOWN ALIVE DATE", "", "LAST KNOWN ALIVE DATE"])
    ], metas["ADTTE"])

    # ---------------------------------------------------------------- ADRS
    metas["ADRS"] = DatasetMeta(
        name="ADRS", label="Response Analysis Dataset", standard="ADaM",
        class_="BASIC DATA STRUCTURE", keys=["STUDYID", "USUBJID", "PARAMCD", "ADT"],
        variables=adam_id + [_v("ASEQ", "Analysis Sequence Number", type="Num", core="Perm")] + bds + [
            _v("AVAL", "Analysis Value", type="Num", core="Cond"),
            _v("AVALC", "Analysis Value (C)", core="Cond"),
            _v("ADT", "Analysis Date", type="Num", core="Cond", fmt="DATE9."),
        ],
    )
    rs = [
        (S1, 1, "OVR", "CR", "2023-02-17"), (S1, 2, "OVR", "CR", "2023-04-20"), (S1, 3, "BOR", "CR", "2023-02-17"),
        (S2, 1, "OVR", "PR", "2023-03-15"), (S2, 2, "BOR", "PR", "2023-03-15"),
        (S3, 1, "OVR", "PD", "2023-04-07"), (S3, 2, "BOR", "PD", "2023-04-07"),
    ]
    data["ADRS"] = _frame([
        dict(STUDYID=STUDY, USUBJID=u, ASEQ=q, PARAMCD=p,
             PARAM={"OVR": "Overall Response by Investigator", "BOR": "Best Overall Response"}[p],
             AVAL={"CR": 1.0, "PR": 2.0, "PD": 4.0}[v], AVALC=v, ADT=sas_date(d))
        for u, q, p, v, d in rs
    ], metas["ADRS"])

    return data, metas, sample_ct()
