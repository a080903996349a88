#!/usr/bin/env python
"""Generate the synthetic EDC export of study VGO-Cs01p and its per-subject truth table.

VGO-Cs01p: off-the-shelf CD7 CAR-NK cells derived from human embryonic stem cells in
children with CD7+ relapsed/refractory T-ALL; single arm, open label, 3+3 dose
escalation (DL1 1x10^6, DL2 3x10^6, DL3 1x10^7 CAR-NK cells/kg), 9 subjects at 3 sites,
fludarabine/cyclophosphamide lymphodepletion on days -5 to -3, first infusion on Day 1,
follow-up 12 months after the first infusion, data cut 2026-02-28.

The TRUTH DEFINITION (the tables right below the constants) is written first and is the
contract: every form is generated from it, the per-subject truth (``truth.csv``) is
computed from it, and before anything is written the truth is re-derived a second time
from the *raw form text* (parsing dates, mapping synonyms, the way a mapping spec
would) and the two must agree field by field.

Determinism: one master ``numpy.random.default_rng(20250301)`` spawns one child stream
per generation step, rows are sorted by fixed keys, every value is formatted to text
before writing (fixed decimals), files are UTF-8 with ``\\n`` line ends. Running

    python raw/generate.py [--out DIR]

rewrites the same bytes every time (default DIR: the folder of this script).

Study-day convention (SDTMIG 3.4 section 4.4.4): Day 1 is the date of the first
CAR-NK infusion, the day before it is Day -1, there is no Day 0.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20250301
PROJECT = "VGO-Cs01p"
DATA_CUT = pd.Timestamp("2026-02-28")
FIRST_CONSENT_MIN = pd.Timestamp("2024-03-01")
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
HEADER = ["PROJECT", "SITENUMBER", "SITE", "SUBJECT", "FOLDER", "FOLDERNAME", "FORM",
          "RECORDPOSITION", "RECSTATUS"]
PK_LLOQ = 0.5  # cells/uL, lower limit of quantification of the CAR-NK flow assay

# =====================================================================================
# TRUTH DEFINITION
# =====================================================================================

# Sites and the way each site types things (the "mess" is per site, as in real EDC data).
SITES = pd.DataFrame(
    [
        # SITENUMBER, SITE, COUNTRY, AGEU, FLU, CY, LDDOSU, LDROUTE, EXDOSU, YES, NO, BLQ, CD7U
        ("101", "East China Children's Medical Center", "CHN", "Years", "Fludarabine",
         "Cyclophosphamide", "mg/m2", "Intravenous", "x10^6 cells/kg", "Yes", "No", "BLQ",
         "cells/µL"),
        ("102", "Hôpital Universitaire Sainte-Élisabeth de Montréal", "CAN", "years",
         "fludarabine phosphate", "CYCLOPHOSPHAMIDE", "mg/m^2", "IV", "10^6 cells/kg", "Yes",
         "No", "BLQ", "cells/uL"),
        ("103", "Lakeside Children's Research Hospital", "USA", "Years", "Fludarabine",
         "Cyclophosphamide", "mg/m2", "Intravenous", "x10^6 cells/kg", "Y", "N", "<LLOQ",
         "cells/uL"),
    ],
    columns=["SITENUMBER", "SITE", "COUNTRY", "AGEU", "FLU", "CY", "LDDOSU", "LDROUTE",
             "EXDOSU", "YES", "NO", "BLQ", "CD7U"],
)

DOSE_LEVELS = pd.DataFrame(
    # DOSELVL, EXDOSE (x10^6 cells/kg), product concentration (x10^6 cells/mL)
    [("DL1", 1.0, 2.0), ("DL2", 3.0, 5.0), ("DL3", 10.0, 10.0)],
    columns=["DOSELVL", "DOSE", "CONC"],
)

# One dict per subject. Upper-case values are the truth (CDISC style); *_RAW are what the
# site typed. Days are study days (Day 1 = first infusion). LAST_VISIT is the last
# scheduled folder the subject attended (or missed); EOS_DAY None = the Month 12 visit.
SUBJECTS = [
    dict(SUBJECT="101-001", DOSELVL="DL1", CONSENT_DATE="2024-03-06", FIRST_INF_DATE="2024-03-27",
         INF_DAYS=(1, 15), WEIGHT_KG=32.4, BRTHDAT="14-AUG-2013", AGE=10,
         SEX="M", SEX_RAW="Male", RACE="ASIAN", RACE_RAW="Asian",
         ETHNIC="NOT HISPANIC OR LATINO", ETHNIC_RAW="Not Hispanic or Latino", CD7_BASE=2450.0,
         LAST_VISIT="M2", DEATH_DAY=84, DEATH_CAUSE="DISEASE PROGRESSION",
         DTHCAUS="Disease progression", DTHCAUSSP="Refractory T-ALL, progressive disease",
         AUTOPSY="No", EOS_STATUS="DISCONTINUED", EOS_REASON="DEATH", EOS_DAY=84, LSTCON_DAY=84,
         D28_RESPONSE="NR", BEST_RESPONSE="NR", MRD_D28="POSITIVE", DEATH_IN_REMISSION="N",
         ADA_STATUS="NEGATIVE", DLT="N", MAX_CRS_GRADE=1, MAX_ICANS_GRADE=0),
    dict(SUBJECT="102-001", DOSELVL="DL1", CONSENT_DATE="2024-04-10", FIRST_INF_DATE="2024-05-02",
         INF_DAYS=(1, 8), WEIGHT_KG=52.0, BRTHDAT="22-NOV-2009", AGE=14,
         SEX="M", SEX_RAW="male", RACE="WHITE", RACE_RAW="White",
         ETHNIC="NOT HISPANIC OR LATINO", ETHNIC_RAW="Not Hispanic or Latino", CD7_BASE=980.0,
         LAST_VISIT="M6", DEATH_DAY=None, DEATH_CAUSE="", DTHCAUS="", DTHCAUSSP="", AUTOPSY="",
         EOS_STATUS="DISCONTINUED", EOS_REASON="WITHDRAWAL BY PARENT/GUARDIAN", EOS_DAY=203,
         LSTCON_DAY=203, D28_RESPONSE="PR", BEST_RESPONSE="CR", MRD_D28="POSITIVE",
         DEATH_IN_REMISSION="", ADA_STATUS="TREATMENT-EMERGENT", DLT="N", MAX_CRS_GRADE=2,
         MAX_ICANS_GRADE=0),
    dict(SUBJECT="103-001", DOSELVL="DL1", CONSENT_DATE="2024-05-14", FIRST_INF_DATE="2024-06-04",
         INF_DAYS=(1,), WEIGHT_KG=12.3, BRTHDAT="30-SEP-2021", AGE=2,
         SEX="F", SEX_RAW="F", RACE="WHITE", RACE_RAW="White",
         ETHNIC="HISPANIC OR LATINO", ETHNIC_RAW="Hispanic or Latino", CD7_BASE=620.0,
         LAST_VISIT="M6", DEATH_DAY=None, DEATH_CAUSE="", DTHCAUS="", DTHCAUSSP="", AUTOPSY="",
         EOS_STATUS="DISCONTINUED", EOS_REASON="LOST TO FOLLOW-UP", EOS_DAY=292, LSTCON_DAY=118,
         D28_RESPONSE="CRi", BEST_RESPONSE="CRi", MRD_D28="POSITIVE", DEATH_IN_REMISSION="",
         ADA_STATUS="NEGATIVE", DLT="N", MAX_CRS_GRADE=1, MAX_ICANS_GRADE=0),
    dict(SUBJECT="101-002", DOSELVL="DL2", CONSENT_DATE="2024-07-08", FIRST_INF_DATE="2024-07-30",
         INF_DAYS=(1,), WEIGHT_KG=41.0, BRTHDAT="UN-JUN-2012", AGE=12,
         SEX="F", SEX_RAW="Female", RACE="ASIAN", RACE_RAW="asian",
         ETHNIC="NOT HISPANIC OR LATINO", ETHNIC_RAW="Not Hispanic or Latino", CD7_BASE=3120.0,
         LAST_VISIT="M12", DEATH_DAY=None, DEATH_CAUSE="", DTHCAUS="", DTHCAUSSP="", AUTOPSY="",
         EOS_STATUS="COMPLETED", EOS_REASON="COMPLETED", EOS_DAY=None, LSTCON_DAY=None,
         D28_RESPONSE="CR", BEST_RESPONSE="CR", MRD_D28="NEGATIVE", DEATH_IN_REMISSION="",
         ADA_STATUS="BOOSTED", DLT="N", MAX_CRS_GRADE=2, MAX_ICANS_GRADE=0),
    dict(SUBJECT="102-002", DOSELVL="DL2", CONSENT_DATE="2024-08-12", FIRST_INF_DATE="2024-09-03",
         INF_DAYS=(1,), WEIGHT_KG=26.2, BRTHDAT="09-JAN-2016", AGE=8,
         SEX="F", SEX_RAW="Female", RACE="BLACK OR AFRICAN AMERICAN",
         RACE_RAW="Black or African American", ETHNIC="NOT HISPANIC OR LATINO",
         ETHNIC_RAW="Not Hispanic or Latino", CD7_BASE=1350.0,
         LAST_VISIT="M12", DEATH_DAY=None, DEATH_CAUSE="", DTHCAUS="", DTHCAUSSP="", AUTOPSY="",
         EOS_STATUS="COMPLETED", EOS_REASON="COMPLETED", EOS_DAY=None, LSTCON_DAY=None,
         D28_RESPONSE="CRh", BEST_RESPONSE="CRh", MRD_D28="NEGATIVE", DEATH_IN_REMISSION="",
         ADA_STATUS="PRE-EXISTING", DLT="N", MAX_CRS_GRADE=1, MAX_ICANS_GRADE=1),
    dict(SUBJECT="103-002", DOSELVL="DL2", CONSENT_DATE="2024-09-09", FIRST_INF_DATE="2024-10-01",
         INF_DAYS=(1, 8), WEIGHT_KG=47.5, BRTHDAT="17-APR-2011", AGE=13,
         SEX="M", SEX_RAW="Male", RACE="BLACK OR AFRICAN AMERICAN",
         RACE_RAW="Black or African American", ETHNIC="NOT HISPANIC OR LATINO",
         ETHNIC_RAW="Not Hispanic or Latino", CD7_BASE=760.0,
         LAST_VISIT="M6", DEATH_DAY=228, DEATH_CAUSE="DISEASE PROGRESSION",
         DTHCAUS="Disease progression", DTHCAUSSP="Relapsed T-ALL after CR", AUTOPSY="No",
         EOS_STATUS="DISCONTINUED", EOS_REASON="DEATH", EOS_DAY=228, LSTCON_DAY=228,
         D28_RESPONSE="CR", BEST_RESPONSE="CR", MRD_D28="POSITIVE", DEATH_IN_REMISSION="N",
         ADA_STATUS="NEGATIVE", DLT="N", MAX_CRS_GRADE=2, MAX_ICANS_GRADE=0),
    dict(SUBJECT="101-003", DOSELVL="DL3", CONSENT_DATE="2024-10-21", FIRST_INF_DATE="2024-11-12",
         INF_DAYS=(1,), WEIGHT_KG=16.5, BRTHDAT="03-FEB-2020", AGE=4,
         SEX="M", SEX_RAW="Male", RACE="ASIAN", RACE_RAW="Asian",
         ETHNIC="NOT HISPANIC OR LATINO", ETHNIC_RAW="Not Hispanic or Latino", CD7_BASE=1890.0,
         LAST_VISIT="M2", DEATH_DAY=79, DEATH_CAUSE="INFECTION", DTHCAUS="Infection",
         DTHCAUSSP="Pseudomonas aeruginosa sepsis while in MRD-negative CR", AUTOPSY="Yes",
         EOS_STATUS="DISCONTINUED", EOS_REASON="DEATH", EOS_DAY=79, LSTCON_DAY=79,
         D28_RESPONSE="CR", BEST_RESPONSE="CR", MRD_D28="NEGATIVE", DEATH_IN_REMISSION="Y",
         ADA_STATUS="NEGATIVE", DLT="N", MAX_CRS_GRADE=2, MAX_ICANS_GRADE=2),
    dict(SUBJECT="102-003", DOSELVL="DL3", CONSENT_DATE="2024-11-25", FIRST_INF_DATE="2024-12-17",
         INF_DAYS=(1,), WEIGHT_KG=63.0, BRTHDAT="UN-UNK-2007", AGE=17,
         SEX="M", SEX_RAW="Male", RACE="WHITE", RACE_RAW="White",
         ETHNIC="NOT HISPANIC OR LATINO", ETHNIC_RAW="Not Hispanic or Latino", CD7_BASE=4210.0,
         LAST_VISIT="M12", DEATH_DAY=None, DEATH_CAUSE="", DTHCAUS="", DTHCAUSSP="", AUTOPSY="",
         EOS_STATUS="COMPLETED", EOS_REASON="COMPLETED", EOS_DAY=None, LSTCON_DAY=None,
         D28_RESPONSE="CR", BEST_RESPONSE="CR", MRD_D28="NEGATIVE", DEATH_IN_REMISSION="",
         ADA_STATUS="NEGATIVE", DLT="N", MAX_CRS_GRADE=2, MAX_ICANS_GRADE=0),
    dict(SUBJECT="103-003", DOSELVL="DL3", CONSENT_DATE="2024-12-19", FIRST_INF_DATE="2025-01-14",
         INF_DAYS=(1, 8, 15), WEIGHT_KG=23.1, BRTHDAT="05-DEC-2017", AGE=7,
         SEX="F", SEX_RAW="Female", RACE="WHITE", RACE_RAW="White",
         ETHNIC="HISPANIC OR LATINO", ETHNIC_RAW="Hispanic or Latino", CD7_BASE=1140.0,
         LAST_VISIT="M12", DEATH_DAY=None, DEATH_CAUSE="", DTHCAUS="", DTHCAUSSP="", AUTOPSY="",
         EOS_STATUS="COMPLETED", EOS_REASON="COMPLETED", EOS_DAY=None, LSTCON_DAY=None,
         D28_RESPONSE="CR", BEST_RESPONSE="CR", MRD_D28="NEGATIVE", DEATH_IN_REMISSION="",
         ADA_STATUS="TREATMENT-EMERGENT", DLT="Y", MAX_CRS_GRADE=3, MAX_ICANS_GRADE=1),
]

# Scheduled folders: nominal study day and the +/- window the actual day is drawn from.
FOLDERS = pd.DataFrame(
    [
        ("SCR", "Screening", np.nan, 0),      # on the consent date
        ("LD", "Lymphodepletion", -5, 0),
        ("D1", "Day 1", 1, 0),
        ("D8", "Day 8", 8, 0),
        ("D15", "Day 15", 15, 0),
        ("D28", "Day 28", 28, 2),
        ("M2", "Month 2", 60, 5),
        ("M3", "Month 3", 90, 5),
        ("M6", "Month 6", 180, 10),
        ("M9", "Month 9", 270, 10),
        ("M12", "Month 12", 365, 10),
    ],
    columns=["FOLDER", "FOLDERNAME", "NOMDAY", "WINDOW"],
)
FOLDERNAMES = {**dict(zip(FOLDERS.FOLDER, FOLDERS.FOLDERNAME)),
               "UNS1": "Unscheduled 1", "UNS2": "Unscheduled 2",
               "LOG": "Logs", "EOS": "End of Study"}

# Unscheduled visits: (SUBJECT, FOLDER, study day, reason for the visit as typed). A
# "CRS work-up" visit on a CRS day draws hematology, chemistry, cytokines and flow.
UNSCHEDULED = [
    ("101-001", "UNS1", 3, "CRS work-up"),
    ("101-002", "UNS1", 3, "CRS work-up"),
    ("101-003", "UNS1", 4, "CRS work-up"),
    ("102-001", "UNS1", 4, "CRS work-up"),
    ("102-002", "UNS1", 3, "CRS work-up"),
    ("102-003", "UNS1", 3, "CRS work-up"),
    ("102-003", "UNS2", 45, "Suspected relapse: rising peripheral lymphocytes"),
    ("103-001", "UNS1", 3, "CRS work-up"),
    ("103-002", "UNS1", 3, "CRS work-up"),
    ("103-002", "UNS2", 150, "Rising peripheral blasts"),
    ("103-003", "UNS1", 3, "CRS work-up"),
    ("103-003", "UNS2", 17, "CRS grade 3 work-up"),
]

# Scheduled visits that did not happen: (SUBJECT, FOLDER, reason as typed).
MISSED = [
    ("102-002", "M9", "Family travelling abroad; visit not rescheduled"),
    ("103-001", "M6", "Subject did not attend; family could not be reached"),
]

# Disease assessments (acute-leukaemia criteria). OVRLRESP is the text as typed; the SCR
# row is the baseline marrow (no response). ANC/PLT are count-recovery categories:
# H >= 1.0 / >= 100, M 0.5 to < 1.0 / 50 to < 100, L < 0.5 / < 50 (x10^9/L).
RESPONSES = pd.DataFrame(
    [
        # SUBJECT, FOLDER, OVRLRESP, BMBLAST, PBBLAST, EMD, ANC, PLT
        ("101-001", "SCR", "", 68.0, 21.0, "Absent", "M", "L"),
        ("101-001", "D28", "No response", 55.0, 12.0, "Not evaluated", "M", "L"),
        ("101-001", "M2", "PD", 82.0, 35.0, "Present", "L", "L"),
        ("102-001", "SCR", "", 45.0, 8.0, "Absent", "M", "L"),
        ("102-001", "D28", "PR", 12.0, 0.0, "Absent", "M", "M"),
        ("102-001", "M2", "Complete remission", 2.1, 0.0, "Absent", "H", "H"),
        ("102-001", "M3", "Complete remission", 1.0, 0.0, "Absent", "H", "H"),
        ("102-001", "M6", "Complete remission", 0.8, 0.0, "Absent", "H", "H"),
        ("103-001", "SCR", "", 32.0, 4.0, "Absent", "M", "L"),
        ("103-001", "D28", "CRi", 3.5, 0.0, "Absent", "M", "L"),
        ("103-001", "M2", "CRi", 2.0, 0.0, "Absent", "H", "L"),
        ("103-001", "M3", "CRi", 1.5, 0.0, "Absent", "H", "L"),
        ("101-002", "SCR", "", 78.0, 30.0, "Absent", "L", "L"),
        ("101-002", "D28", "CR", 0.8, 0.0, "Absent", "H", "H"),
        ("101-002", "M2", "CR", 1.2, 0.0, "Absent", "H", "H"),
        ("101-002", "M3", "CR", 0.6, 0.0, "Absent", "H", "H"),
        ("101-002", "M6", "CR", 0.9, 0.0, "Absent", "H", "H"),
        ("101-002", "M9", "cr", 1.1, 0.0, "Absent", "H", "H"),
        ("101-002", "M12", "CR", 0.7, 0.0, "Absent", "H", "H"),
        ("102-002", "SCR", "", 55.0, 15.0, "Absent", "M", "L"),
        ("102-002", "D28", "CRh", 1.6, 0.0, "Absent", "H", "M"),
        ("102-002", "M2", "CRh", 1.2, 0.0, "Absent", "H", "M"),
        ("102-002", "M3", "CRh", 0.9, 0.0, "Absent", "H", "M"),
        ("102-002", "M6", "CRh", 1.4, 0.0, "Absent", "H", "M"),
        ("102-002", "M12", "CRh", 1.0, 0.0, "Absent", "H", "M"),
        ("103-002", "SCR", "", 40.0, 9.0, "Absent", "M", "L"),
        ("103-002", "D28", "CR", 2.5, 0.0, "Absent", "H", "H"),
        ("103-002", "M2", "CR", 1.8, 0.0, "Absent", "H", "H"),
        ("103-002", "M3", "CR", 3.0, 0.0, "Absent", "H", "H"),
        ("103-002", "UNS2", "Relapse", 18.0, 3.0, "Absent", "M", "M"),
        ("103-002", "M6", "PD", 64.0, 22.0, "Absent", "L", "L"),
        ("101-003", "SCR", "", 62.0, 18.0, "Absent", "L", "L"),
        ("101-003", "D28", "CR", 1.1, 0.0, "Absent", "H", "H"),
        ("101-003", "M2", "CR", 0.9, 0.0, "Absent", "H", "H"),
        ("102-003", "SCR", "", 85.0, 40.0, "Present", "L", "L"),
        ("102-003", "D28", "Complete remission", 0.4, 0.0, "Absent", "H", "H"),
        ("102-003", "UNS2", "Complete remission", 0.7, 0.0, "Absent", "H", "H"),
        ("102-003", "M2", "Complete remission", 0.5, 0.0, "Absent", "H", "H"),
        ("102-003", "M3", "Complete remission", 0.6, 0.0, "Absent", "H", "H"),
        ("102-003", "M6", "Complete remission", 0.8, 0.0, "Absent", "H", "H"),
        ("102-003", "M9", "Complete remission", 0.5, 0.0, "Absent", "H", "H"),
        ("102-003", "M12", "Complete remission", 0.9, 0.0, "Absent", "H", "H"),
        ("103-003", "SCR", "", 50.0, 11.0, "Absent", "M", "L"),
        ("103-003", "D28", "CR", 1.5, 0.0, "Absent", "H", "H"),
        ("103-003", "M2", "CR", 1.0, 0.0, "Absent", "H", "H"),
        ("103-003", "M3", "CR", 0.8, 0.0, "Absent", "H", "H"),
        ("103-003", "M6", "CR", 1.1, 0.0, "Absent", "H", "H"),
        ("103-003", "M9", "CR", 0.7, 0.0, "Absent", "H", "H"),
        ("103-003", "M12", "CR", 0.6, 0.0, "Absent", "H", "H"),
    ],
    columns=["SUBJECT", "FOLDER", "OVRLRESP", "BMBLAST", "PBBLAST", "EMD", "ANC", "PLT"],
)
# Raw OVRLRESP spelling -> CDISC-style code ("RELAPSE" = relapse after remission).
RESPONSE_CODES = {"CR": "CR", "cr": "CR", "Complete remission": "CR", "CRh": "CRh",
                  "CRi": "CRi", "PR": "PR", "NR": "NR", "No response": "NR", "PD": "PD",
                  "Relapse": "RELAPSE"}
RESPONSE_RANK = {"CR": 1, "CRh": 2, "CRi": 3, "PR": 4, "NR": 5, "PD": 6}  # best = lowest
REMISSION = ("CR", "CRh", "CRi")
ANC_TEXT = {"H": "ANC >= 1.0 x10^9/L", "M": "ANC 0.5 to < 1.0 x10^9/L", "L": "ANC < 0.5 x10^9/L"}
PLT_TEXT = {"H": "PLT >= 100 x10^9/L", "M": "PLT 50 to < 100 x10^9/L", "L": "PLT < 50 x10^9/L"}

# MRD by flow on the marrow aspirate of the response visit: (SUBJECT, FOLDER, MRDRES, MRDSTAT).
MRD = pd.DataFrame(
    [
        ("101-001", "D28", "38.5", "Positive"),
        ("102-001", "D28", "1.2", "Positive"),
        ("102-001", "M2", "<0.01", "Negative"),
        ("102-001", "M3", "<0.01", "Negative"),
        ("102-001", "M6", "<0.01", "Negative"),
        ("103-001", "D28", "0.08", "Positive"),
        ("103-001", "M3", "0.05", "Positive"),
        ("101-002", "D28", "<0.01", "Negative"),
        ("101-002", "M3", "<0.01", "Negative"),
        ("101-002", "M6", "<0.01", "Negative"),
        ("101-002", "M12", "<0.01", "Negative"),
        ("102-002", "D28", "0.003", "Negative"),   # below the 0.01 % sensitivity, typed as number
        ("102-002", "M3", "<0.01", "Negative"),
        ("102-002", "M6", "<0.01", "Negative"),
        ("102-002", "M12", "<0.01", "Negative"),
        ("103-002", "D28", "0.05", "Positive"),
        ("103-002", "M3", "0.4", "Positive"),
        ("101-003", "D28", "<0.01", "Negative"),
        ("102-003", "D28", "<0.01", "Negative"),
        ("102-003", "UNS2", "<0.01", "Negative"),
        ("102-003", "M3", "<0.01", "Negative"),
        ("102-003", "M6", "<0.01", "Negative"),
        ("102-003", "M12", "<0.01", "Negative"),
        ("103-003", "D28", "<0.01", "Negative"),
        ("103-003", "M3", "<0.01", "Negative"),
        ("103-003", "M6", "<0.01", "Negative"),
        ("103-003", "M12", "<0.01", "Negative"),
    ],
    columns=["SUBJECT", "FOLDER", "MRDRES", "MRDSTAT"],
)

# Anti-drug antibodies. Every ADA folder a subject attended has a sample; samples not
# listed here are screen-negative. (SUBJECT, FOLDER, ADASCR, ADACONF, ADATITER as typed)
ADA_FOLDERS = {"D1": "Pre-dose", "D28": "Day 28", "M3": "Month 3", "M6": "Month 6",
               "M12": "Month 12"}
ADA_POSITIVE = pd.DataFrame(
    [
        ("102-001", "M3", "Positive", "Positive", "1:40"),
        ("102-001", "M6", "Positive", "Positive", "80"),      # titre typed without "1:"
        ("101-002", "D1", "Positive", "Positive", "1:20"),
        ("101-002", "D28", "Positive", "Positive", "1:40"),
        ("101-002", "M3", "Positive", "Positive", "1:160"),
        ("101-002", "M6", "Positive", "Positive", "1:80"),
        ("101-002", "M12", "Positive", "Positive", "1:40"),
        ("102-002", "D1", "Positive", "Positive", "1:40"),
        ("102-002", "D28", "Positive", "Positive", "1:40"),
        ("102-002", "M3", "Positive", "Positive", "1:80"),
        ("102-002", "M6", "Positive", "Negative", ""),
        ("103-002", "D28", "Positive", "Negative", ""),
        ("103-003", "D28", "Positive", "Positive", "1:20"),
        ("103-003", "M3", "Positive", "Positive", "1:80"),
        ("103-003", "M6", "Positive", "Positive", "1:40"),
        ("103-003", "M12", "Positive", "Negative", ""),
    ],
    columns=["SUBJECT", "FOLDER", "ADASCR", "ADACONF", "ADATITER"],
)

# CAR-NK kinetics (cells/uL): concentration 1 h after the start of infusion 1, expansion
# peak, nominal time of the peak and the contraction half-life in days.
PK_PROFILE = pd.DataFrame(
    [
        ("101-001", 2.8, 4.1, 216, 5.0),
        ("102-001", 3.2, 12.5, 312, 6.0),
        ("103-001", 3.0, 9.2, 216, 6.0),
        ("101-002", 8.9, 48.0, 216, 6.0),
        ("102-002", 9.6, 35.0, 144, 6.0),
        ("103-002", 8.1, 28.4, 312, 5.5),
        ("101-003", 27.0, 121.0, 216, 6.0),
        ("102-003", 31.0, 166.0, 144, 6.0),
        ("103-003", 26.0, 142.0, 312, 8.0),
    ],
    columns=["SUBJECT", "C1H", "PEAK", "TPEAK_H", "HALFLIFE_D"],
)
# Nominal PK time points: PKTPTNUM is hours after the start of infusion 1; Day N = (N-1)*24.
PK_TIMES = pd.DataFrame(
    [("Pre-dose", 0, None), ("1 h", 1, None), ("4 h", 4, None), ("Day 2", 24, None),
     ("Day 4", 72, None), ("Day 7", 144, None), ("Day 10", 216, None), ("Day 14", 312, None),
     ("Day 21", 480, None), ("Day 28", 648, "D28"), ("Month 2", 1416, "M2"),
     ("Month 3", 2136, "M3")],
    columns=["PKTPT", "PKTPTNUM", "VISIT"],
)

# MedDRA (as coded by the sponsor's coder): key -> LLT, LLT code, PT, PT code, HLT, HLT
# code, HLGT, HLGT code, SOC, SOC code.
_SOC_BLOOD = ("Blood and lymphatic system disorders", 10005329)
_SOC_IMMUNE = ("Immune system disorders", 10021428)
_SOC_NERV = ("Nervous system disorders", 10029205)
_SOC_GEN = ("General disorders and administration site conditions", 10018065)
_SOC_VASC = ("Vascular disorders", 10047065)
_SOC_INF = ("Infections and infestations", 10021881)
_SOC_GI = ("Gastrointestinal disorders", 10017947)
_SOC_INV = ("Investigations", 10022891)
_SOC_MET = ("Metabolism and nutrition disorders", 10027433)
_SOC_INJ = ("Injury, poisoning and procedural complications", 10022117)
_SOC_NEO = ("Neoplasms benign, malignant and unspecified (incl cysts and polyps)", 10029104)
_HAEM_INV = ("Haematology investigations (incl blood groups)", 10018851)
_HEP_INV = ("Hepatobiliary investigations", 10019805)
_INF_NOS = ("Infections - pathogen unspecified", 10021879)
_GI_SIGNS = ("Gastrointestinal signs and symptoms", 10018012)
_GEN_NEC = ("General system disorders NEC", 10018073)
MEDDRA = {
    "CRS": (("Cytokine release syndrome", 10011693), ("Cytokine release syndrome", 10011693),
            ("Immune and associated conditions NEC", 10027665),
            ("Immune disorders NEC", 10021430), _SOC_IMMUNE),
    "ICANS": (("Immune effector cell-associated neurotoxicity syndrome", 10077945),
              ("Immune effector cell-associated neurotoxicity syndrome", 10077945),
              ("Neurotoxicity syndromes NEC", 10077946),
              ("Neurological disorders NEC", 10029305), _SOC_NERV),
    "HEAD": (("Headache", 10019211), ("Headache", 10019211), ("Headaches NEC", 10019233),
             ("Headaches", 10019231), _SOC_NERV),
    "FN": (("Febrile neutropenia", 10016288), ("Febrile neutropenia", 10016288),
           ("Neutropenias", 10029363), ("White blood cell disorders", 10047954), _SOC_BLOOD),
    "ANAEM": (("Anaemia", 10002034), ("Anaemia", 10002034), ("Anaemias NEC", 10002086),
              ("Anaemias nonhaemolytic and marrow depression", 10002042), _SOC_BLOOD),
    "NEUTDEC": (("Neutrophil count decreased", 10029366), ("Neutrophil count decreased", 10029366),
                ("White blood cell analyses", 10047943), _HAEM_INV, _SOC_INV),
    "PLTDEC": (("Platelet count decreased", 10035528), ("Platelet count decreased", 10035528),
               ("Platelet analyses", 10035526), _HAEM_INV, _SOC_INV),
    "ALTINC": (("ALT increased", 10001560), ("Alanine aminotransferase increased", 10001551),
               ("Liver function analyses", 10024690), _HEP_INV, _SOC_INV),
    "ASTINC": (("AST increased", 10003482), ("Aspartate aminotransferase increased", 10003481),
               ("Liver function analyses", 10024690), _HEP_INV, _SOC_INV),
    "PYREX": (("Fever", 10016558), ("Pyrexia", 10037660), ("Febrile disorders", 10016286),
              ("Body temperature conditions", 10005908), _SOC_GEN),
    "FATIG": (("Fatigue", 10016256), ("Fatigue", 10016256), ("Asthenic conditions", 10003550),
              _GEN_NEC, _SOC_GEN),
    "DISPROG": (("Disease progression", 10061818), ("Disease progression", 10061818),
                ("Disease progression NEC", 10061819), _GEN_NEC, _SOC_GEN),
    "RELAPSE": (("Leukaemia recurrent", 10024318), ("Leukaemia recurrent", 10024318),
                ("Leukaemias NEC", 10024291), ("Leukaemias", 10024324), _SOC_NEO),
    "HYPOT": (("Hypotension", 10021097), ("Hypotension", 10021097),
              ("Vascular hypotensive disorders", 10047236),
              ("Decreased and nonspecific blood pressure disorders and shock", 10011954),
              _SOC_VASC),
    "SEPSIS": (("Sepsis", 10040047), ("Sepsis", 10040047),
               ("Sepsis, bacteraemia, viraemia and fungaemia NEC", 10040048), _INF_NOS, _SOC_INF),
    "PNEUM": (("Pneumonia", 10035664), ("Pneumonia", 10035664),
              ("Lower respiratory tract and lung infections", 10024970), _INF_NOS, _SOC_INF),
    "URTI": (("URTI", 10046312), ("Upper respiratory tract infection", 10046306),
             ("Upper respiratory tract infections", 10046309), _INF_NOS, _SOC_INF),
    "NAUS": (("Nausea", 10028813), ("Nausea", 10028813),
             ("Nausea and vomiting symptoms", 10028817), _GI_SIGNS, _SOC_GI),
    "VOMIT": (("Vomiting", 10047700), ("Vomiting", 10047700),
              ("Nausea and vomiting symptoms", 10028817), _GI_SIGNS, _SOC_GI),
    "DIARR": (("Diarrhea", 10012727), ("Diarrhoea", 10012735),
              ("Diarrhoea (excl infective)", 10012736),
              ("Gastrointestinal motility and defaecation conditions", 10017977), _SOC_GI),
    "HYPOK": (("Potassium low", 10036450), ("Hypokalaemia", 10021015),
              ("Potassium imbalance", 10036452),
              ("Electrolyte and fluid balance conditions", 10014418), _SOC_MET),
    "IRR": (("Infusion related reaction", 10051792), ("Infusion related reaction", 10051792),
            ("Non-site specific procedural complications", 10068780),
            ("Procedural related injuries and complications NEC", 10069888), _SOC_INJ),
}


def _ae(subject, key, term, start, end, grade, rel, *, stime="", etime="", serious=(),
        acn="", out="", dlt=False, comm="", pstart="", pend="", grade_txt="",
        status="Active"):
    """One AE line of the truth definition (study days; END None = ongoing).

    ``serious`` lists the seriousness criteria met (DTH, LIFE, HOSP, DISAB, CONG, MIE);
    empty = not serious. ``pstart``/``pend`` = "MON" or "UNK" make the typed date partial.
    ``acn``/``out`` empty = the rule in :func:`make_ae`.
    """
    return dict(SUBJECT=subject, KEY=key, AETERM=term, START=start, END=end, GRADE=grade,
                AEREL=rel, STIME=stime, ETIME=etime, SERIOUS=serious, ACN=acn, OUT=out,
                DLT=dlt, AECOMM=comm, PSTART=pstart, PEND=pend, GRADE_TXT=grade_txt,
                RECSTATUS=status)


# AE log, in the order the sites entered the lines (= RECORDPOSITION).
AES = [
    _ae("101-001", "NEUTDEC", "Neutrophil count decreased", -2, 35, 4, "Unlikely related"),
    _ae("101-001", "CRS", "cytokine release syndrome", 2, 4, 1, "Related", stime="21:30",
        etime="08:00", comm="Fever 38.6 °C; paracetamol only"),
    _ae("101-001", "ANAEM", "Anaemia", -1, 40, 3, "Not related"),
    _ae("101-001", "CRS", "CRS after 2nd infusion", 16, 17, 1, "Related", stime="03:15"),
    _ae("101-001", "FN", "Febrile neutropenia", 20, 26, 3, "Unlikely related",
        serious=("HOSP",), grade_txt="Grade 3"),
    _ae("101-001", "DISPROG", "Progressive T-ALL", 55, 84, 5, "Not related", serious=("DTH",)),

    _ae("102-001", "CRS", "Cytokine release syndrome", 3, 6, 2, "Related", stime="14:10",
        comm="Résolu après tocilizumab x1"),
    _ae("102-001", "HEAD", "headache", 3, 4, 1, "Possibly related"),
    _ae("102-001", "NAUS", "nausea", 5, 12, 1, "Possibly related", pstart="MON"),
    _ae("102-001", "PLTDEC", "Platelet count decreased", -1, 42, 4, "Unlikely related"),
    _ae("102-001", "ALTINC", "ALT elevated", 8, 22, 2, "Possibly related"),
    _ae("102-001", "CRS", "CRS", 9, 10, 1, "Related", stime="22:40"),

    _ae("103-001", "NEUTDEC", "Neutrophil count decreased", -1, 50, 4, "Unlikely related"),
    _ae("103-001", "CRS", "CRS", 2, 3, 1, "Related", stime="06:45"),
    _ae("103-001", "FN", "febrile neutropenia", 6, 12, 3, "Unlikely related",
        serious=("HOSP",)),
    _ae("103-001", "HYPOK", "low potassium", 9, 14, 2, "Not related", pstart="MON"),
    _ae("103-001", "PLTDEC", "Platelet count decreased", 1, None, 3, "Possibly related",
        out="recovering/resolving"),

    _ae("101-002", "NEUTDEC", "Neutrophil count decreased", -2, 24, 4, "Unlikely related"),
    _ae("101-002", "ANAEM", "Anaemia", 1, 30, 2, "Unlikely related"),
    _ae("101-002", "CRS", "CRS", 2, 5, 2, "Related", stime="19:20", etime="18:00"),
    # Hypotension that is part of a graded CRS is not a separate AE (ASTCT 2019: the CRS grade
    # carries it; FA holds the component). Sites entered two such lines; data management
    # queried them and they were deleted in the EDC, so the export still has them (excluded).
    _ae("101-002", "HYPOT", "Hypotension", 3, 4, 2, "Related", stime="02:10",
        comm="CRS-associated; fluid bolus", status="Deleted"),
    _ae("101-002", "HEAD", "Headache", 3, 3, 1, "Possibly related"),
    _ae("101-002", "HEAD", "Headache", 3, 3, 1, "Possibly related",
        comm="Duplicate of line 5 - entered in error", status="Deleted"),
    _ae("101-002", "FATIG", "Fatigue", 40, 70, 1, "Possibly related", pstart="MON",
        pend="MON"),
    _ae("101-002", "URTI", "URTI", 150, 160, 2, "Not related"),

    _ae("102-002", "CRS", "Cytokine release syndrome", 2, 4, 1, "Related", stime="16:00",
        comm="Fièvre 38,9 °C"),
    _ae("102-002", "NAUS", "Nausea", 2, 3, 1, "Possibly related"),
    _ae("102-002", "VOMIT", "vomiting", 2, 2, 1, "Possibly related"),
    _ae("102-002", "ICANS", "ICANS", 5, 6, 1, "Related", stime="09:30", comm="ICE score 8/10"),
    _ae("102-002", "NEUTDEC", "Neutrophil count decreased", 1, 25, 4, "Unlikely related"),
    _ae("102-002", "PLTDEC", "Platelet count decreased", 1, None, 3, "Possibly related"),
    _ae("102-002", "PNEUM", "Pneumonia", 95, 108, 3, "Unlikely related", serious=("HOSP",),
        out="Recovered/Resolved with sequelae"),

    _ae("103-002", "NEUTDEC", "Neutrophil count decreased", -2, 25, 4, "Unlikely related"),
    _ae("103-002", "CRS", "CRS", 2, 5, 2, "Related", stime="20:05"),
    _ae("103-002", "ASTINC", "AST increased", 8, 15, 1, "Possibly related"),
    _ae("103-002", "CRS", "CRS", 9, 10, 1, "Related", stime="11:50"),
    _ae("103-002", "RELAPSE", "T-ALL relapse", 150, 228, 5, "Not related", serious=("DTH",)),

    _ae("101-003", "NEUTDEC", "Neutrophil count decreased", -2, 25, 4, "Unlikely related"),
    _ae("101-003", "PLTDEC", "Platelet count decreased", -1, 25, 4, "Unlikely related"),
    _ae("101-003", "CRS", "CRS", 2, 6, 2, "Related", stime="13:40"),
    _ae("101-003", "ICANS", "immune effector cell-associated neurotoxicity syndrome", 4, 7, 2,
        "Related", stime="23:15", serious=("HOSP",), comm="ICE score 5/10; dexamethasone"),
    _ae("101-003", "FN", "Febrile neutropenia", 7, 13, 3, "Unlikely related",
        serious=("HOSP",)),
    _ae("101-003", "SEPSIS", "Sepsis", 72, 79, 5, "Unlikely related",
        serious=("DTH", "LIFE", "HOSP"),
        comm="Pseudomonas aeruginosa bacteraemia; in MRD-negative CR"),
    _ae("101-003", "HYPOT", "Hypotension", 73, 75, 3, "Unlikely related",
        comm="Septic shock; norepinephrine"),

    _ae("102-003", "NEUTDEC", "Neutrophil count decreased", -2, 21, 4, "Unlikely related"),
    _ae("102-003", "ANAEM", "Anaemia", -1, 28, 3, "Not related"),
    _ae("102-003", "CRS", "CRS", 2, 5, 2, "Related", stime="10:25",
        comm="Tocilizumab 8 mg/kg ×1"),
    _ae("102-003", "HEAD", "Headache", 4, 5, 2, "Possibly related"),
    _ae("102-003", "DIARR", "diarrhea", 46, 49, 1, "Not related"),
    _ae("102-003", "ALTINC", "ALT increased", 84, 100, 1, "Unlikely related"),

    _ae("103-003", "NEUTDEC", "Neutrophil count decreased", -2, 25, 4, "Unlikely related"),
    _ae("103-003", "PLTDEC", "Platelet count decreased", 1, 25, 3, "Unlikely related"),
    _ae("103-003", "CRS", "CRS", 2, 3, 1, "Related", stime="18:30"),
    _ae("103-003", "IRR", "Infusion related reaction", 8, 8, 2, "Related", stime="10:18",
        etime="11:40", acn="Drug interrupted", comm="Chills and flushing during infusion 2"),
    _ae("103-003", "CRS", "CRS", 9, 11, 2, "Related", stime="04:20"),
    _ae("103-003", "CRS", "Cytokine release syndrome", 16, 20, 3, "Related", stime="01:30",
        serious=("HOSP", "MIE"), dlt=True, grade_txt="Grade 3",
        comm="ICU transfer; tocilizumab ×2 + dexamethasone"),
    _ae("103-003", "NAUS", "Nausea", 16, 17, 1, "Possibly related"),
    _ae("103-003", "ICANS", "ICANS", 17, 18, 1, "Related", stime="08:00"),
    _ae("103-003", "HYPOT", "Hypotension", 17, 19, 3, "Related", stime="03:00",
        comm="CRS-related; single vasopressor", status="Deleted"),
    _ae("103-003", "PYREX", "fever", 120, 121, 1, "Not related", comm="Viral illness in sibling"),
]
AEREL_STD = {"Related": "RELATED", "Possibly related": "POSSIBLY RELATED",
             "Unlikely related": "UNLIKELY RELATED", "Not related": "NOT RELATED"}
AEACN_STD = {"Dose not changed": "DOSE NOT CHANGED", "Not applicable": "NOT APPLICABLE",
             "Drug interrupted": "DRUG INTERRUPTED", "Drug withdrawn": "DRUG WITHDRAWN"}
SERIOUS_CRITERIA = {"DTH": "AESDTH", "LIFE": "AESLIFE", "HOSP": "AESHOSP", "DISAB": "AESDISAB",
                    "CONG": "AESCONG", "MIE": "AESMIE"}

# Infusion 2 of 103-003 was interrupted for an infusion-related reaction (see AES).
EX_OVERRIDES = pd.DataFrame(
    [("103-003", 2, "10:05", "10:58", "Yes",
      "Interrupted 25 min for infusion-related reaction; full dose given")],
    columns=["SUBJECT", "EXNUM", "EXSTTIM_FIX", "EXENTIM_FIX", "EXINT_FIX", "EXADJ_FIX"],
)

# ---- Issue 12: disease history, vital signs, medications, procedures, ICU stays -----
# Disease history at study entry and what happened after VGO-Cs01p (one row per subject):
# DIAG_DATE T-ALL diagnosis (DIAG_PARTIAL "MON": the site typed only month and year);
# STATUS disease status at entry as typed (relapsed = relapse after a remission; refractory
# = no remission with the last line); CNS status at diagnosis (CNS1/2/3); LINES prior lines
# of anti-leukaemia therapy; PRIOR_HSCT date of an earlier allogeneic HSCT ("" = none);
# POST_HSCT_DAY study day of a consolidating allogeneic HSCT after VGO-Cs01p (None = none);
# HEIGHT_CM at screening.
HISTORY = pd.DataFrame(
    [
        ("101-001", "2022-05-16", "", "Refractory", "CNS1", 2, "", None, 138.0),
        ("102-001", "2021-09-03", "", "Relapsed", "CNS1", 3, "2022-06-10", None, 163.0),
        ("103-001", "2023-08-21", "", "Refractory", "CNS2", 2, "", None, 87.0),
        ("101-002", "2022-11-07", "MON", "Relapsed", "CNS1", 2, "", 112, 150.0),
        ("102-002", "2021-04-19", "", "relapsed", "CNS1", 3, "2022-01-14", None, 127.0),
        ("103-002", "2023-02-06", "", "Refractory", "CNS1", 2, "", None, 158.0),
        ("101-003", "2023-10-30", "", "Refractory", "CNS1", 2, "", None, 103.0),
        ("102-003", "2020-07-22", "MON", "Relapsed", "CNS3", 4, "2021-05-11", 98, 174.0),
        ("103-003", "2023-03-13", "", "Relapsed", "CNS1", 3, "", None, 121.0),
    ],
    columns=["SUBJECT", "DIAG_DATE", "DIAG_PARTIAL", "STATUS", "CNS", "LINES", "PRIOR_HSCT",
             "POST_HSCT_DAY", "HEIGHT_CM"],
)
# Prior lines of anti-leukaemia therapy (pt.csv): line -> regimen as typed, drug code.
PRIOR_LINES = pd.DataFrame(
    [(1, "AIEOP-BFM induction/consolidation", "CHEMO"), (2, "Nelarabine-based reinduction", "NELA"),
     (3, "Bortezomib + reinduction chemotherapy", "BORT"), (4, "Venetoclax + navitoclax", "VENE")],
    columns=["LINE", "PTREG", "DRUG"],
)
# Synthetic WHODrug-like coding (coder output exported with the CM form): drug key ->
# CMDECOD (preferred name), ATC code and ATC text of the level coded.
DRUGS = {
    "TOCI": ("TOCILIZUMAB", "L04AC", "INTERLEUKIN INHIBITORS"),
    "DEXA": ("DEXAMETHASONE", "H02AB", "GLUCOCORTICOIDS"),
    "NOREPI": ("NOREPINEPHRINE", "C01CA", "ADRENERGIC AND DOPAMINERGIC AGENTS"),
    "ACYC": ("ACICLOVIR", "J05AB", "NUCLEOSIDES AND NUCLEOTIDES EXCL REVERSE TRANSCRIPTASE INHIBITORS"),
    "SMXTMP": ("SULFAMETHOXAZOLE;TRIMETHOPRIM", "J01EE", "COMBINATIONS OF SULFONAMIDES AND TRIMETHOPRIM"),
    "FLUC": ("FLUCONAZOLE", "J02AC", "TRIAZOLE DERIVATIVES"),
    "IVIG": ("IMMUNOGLOBULIN HUMAN NORMAL", "J06BA", "IMMUNOGLOBULINS, NORMAL HUMAN"),
    "PLT": ("PLATELETS, HUMAN", "B05AX", "OTHER BLOOD PRODUCTS"),
    "RBC": ("RED BLOOD CELLS, HUMAN", "B05AX", "OTHER BLOOD PRODUCTS"),
    "MERO": ("MEROPENEM", "J01DH", "CARBAPENEMS"),
    "CHEMO": ("ANTINEOPLASTIC AGENTS", "L01", "ANTINEOPLASTIC AGENTS"),
    "NELA": ("NELARABINE", "L01BB", "PURINE ANALOGUES"),
    "BORT": ("BORTEZOMIB", "L01XG", "PROTEASOME INHIBITORS"),
    "VENE": ("VENETOCLAX", "L01XX", "OTHER ANTINEOPLASTIC AGENTS"),
}
STEROIDS = ("DEXA",)
# Concomitant medications (conmed.csv log) not derived from a rule: (SUBJECT, DRUG, CMTRT as
# typed, dose, unit, route, frequency, start day, end day (None = ongoing), indication as
# typed). Tocilizumab and dexamethasone follow the AE comments; norepinephrine is the
# vasopressor of the grade 3 CRS (103-003) and of the septic shock (101-003).
CONMEDS = [
    ("102-001", "TOCI", "Tocilizumab", "8", "mg/kg", "Intravenous", "Once", 4, 4, "CRS"),
    ("102-003", "TOCI", "Tocilizumab", "8", "mg/kg", "IV", "Once", 3, 3,
     "Cytokine release syndrome"),
    ("103-003", "TOCI", "Tocilizumab", "12", "mg/kg", "Intravenous", "Once", 16, 16,
     "CRS grade 3"),
    ("103-003", "TOCI", "tocilizumab", "12", "mg/kg", "Intravenous", "Once", 17, 17,
     "CRS grade 3"),
    ("103-003", "DEXA", "Dexamethasone", "0.15", "mg/kg", "Intravenous", "Q6H", 16, 18,
     "CRS grade 3"),
    ("103-003", "NOREPI", "Norepinephrine", "0.05", "ug/kg/min", "Intravenous", "Continuous", 17,
     18, "CRS grade 3 - hypotension"),
    ("101-003", "DEXA", "Dexamethasone", "0.5", "mg/kg", "Intravenous", "Q6H", 5, 7, "ICANS"),
    ("101-003", "NOREPI", "Norepinephrine", "0.1", "ug/kg/min", "Intravenous", "Continuous", 73,
     75, "Septic shock"),
    ("101-003", "MERO", "Meropenem", "20", "mg/kg", "Intravenous", "Q8H", 72, 79, "Sepsis"),
    ("101-003", "MERO", "Meropenem", "20", "mg/kg", "Intravenous", "Q8H", 7, 13,
     "Febrile neutropenia"),
    ("101-001", "MERO", "Meropenem", "20", "mg/kg", "Intravenous", "Q8H", 20, 26,
     "Febrile neutropenia"),
    ("103-001", "MERO", "Meropenem", "20", "mg/kg", "Intravenous", "Q8H", 6, 12,
     "Febrile neutropenia"),
    ("102-002", "IVIG", "IVIG", "400", "mg/kg", "Intravenous", "Once", 30, 30,
     "Hypogammaglobulinaemia"),
    ("103-003", "IVIG", "Immunoglobulin (IVIG)", "400", "mg/kg", "Intravenous", "Once", 35, 35,
     "Hypogammaglobulinaemia"),
    ("102-001", "PLT", "Platelet transfusion", "10", "mL/kg", "Intravenous", "Once", 3, 3,
     "Thrombocytopenia"),
    ("101-003", "PLT", "Platelet transfusion", "10", "mL/kg", "Intravenous", "Once", 2, 2,
     "Thrombocytopenia"),
    ("101-001", "RBC", "PRBC transfusion", "15", "mL/kg", "Intravenous", "Once", 5, 5,
     "Anaemia"),
    ("102-003", "RBC", "Packed red cells", "15", "mL/kg", "Intravenous", "Once", 3, 3,
     "Anaemia"),
]
# Anti-infective prophylaxis every subject receives from the start of lymphodepletion:
# (DRUG, CMTRT per site 101/102/103, dose, unit, route, frequency, last study day).
PROPHYLAXIS = [
    ("ACYC", ("Acyclovir", "Aciclovir", "Acyclovir"), "10", "mg/kg", "Oral", "BID", 90),
    ("SMXTMP", ("Co-trimoxazole", "Cotrimoxazole", "Bactrim"), "5", "mg/kg", "Oral",
     "BID", 180),
    ("FLUC", ("Fluconazole", "Fluconazole", "Fluconazole"), "6", "mg/kg", "Oral", "QD", 28),
]
# Intensive care stays (icu.csv): (SUBJECT, admission day, discharge day, reason as typed).
ICU_STAYS = [
    ("103-003", 16, 19, "CRS grade 3 requiring vasopressor"),
    ("101-003", 73, 76, "Septic shock"),
]
# Vital signs: the way each site records units (site 103 in the US: Fahrenheit, pounds,
# inches; the degree sign is non-ASCII as in the EDC).
VS_UNITS = pd.DataFrame(
    [("101", "°C", "kg", "cm", "bpm", "m2"), ("102", "C", "kg", "cm", "beats/min", "m^2"),
     ("103", "°F", "lb", "in", "bpm", "m2")],
    columns=["SITENUMBER", "TEMPU", "WEIGHTU", "HEIGHTU", "HRU", "BSAU"],
)
# Dates of the disease history forms, all before consent (check_design).
HISTORY_DATES = {("pt", "PTSTDAT"), ("pt", "PTENDAT"), ("dh", "DIAGDAT"), ("dh", "PRHSCTDAT")}
WEIGHT_FOLDERS = ("SCR", "LD", "D28", "M3", "M6", "M12")
# A vital-signs line entered twice and deleted by the site: (SUBJECT, FOLDER).
VS_DELETED = ("102-002", "D28")

# Off-the-shelf VGO-Cs01p product lots (issue 12): an infusion uses the lot released before its
# date (lot number, first infusion date it was used for). Viable CAR-NK cells infused (10^6,
# from the thawed bag's viable count) = nominal dose x weight x a post-thaw factor 0.90-1.05.
PRODUCT_LOTS = pd.DataFrame(
    [("VGOCS-2402A", "2024-03-01"), ("VGOCS-2407B", "2024-07-01"), ("VGOCS-2411C", "2024-11-01")],
    columns=["EXLOT", "FROM"],
)

EOS_TEXT = {"COMPLETED": ("Completed", "Completed 12-month follow-up"),
            "DEATH": ("Discontinued", "Death"),
            "WITHDRAWAL BY PARENT/GUARDIAN": ("Discontinued", "Withdrawal by parent/guardian"),
            "LOST TO FOLLOW-UP": ("Discontinued", "Lost to follow-up")}

# Local labs. Generic test rows, then what each site does differently.
LAB_TESTS = pd.DataFrame(
    [
        # KEY, LBCAT, LBTEST, LBORRESU, LBORNRLO, LBORNRHI, LBSPEC, FACTOR, DECIMALS
        ("WBC", "Hematology", "WBC", "10^9/L", "4.0", "12.0", "Blood", 1.0, 2),
        ("ANC", "Hematology", "ANC", "10^9/L", "1.5", "7.5", "Blood", 1.0, 2),
        ("HGB", "Hematology", "Hemoglobin", "g/L", "110", "150", "Blood", 1.0, 0),
        ("PLT", "Hematology", "Platelets", "10^9/L", "150", "450", "Blood", 1.0, 0),
        ("BLAST", "Hematology", "Blasts", "%", "", "", "Blood", 1.0, 1),
        ("ALT", "Chemistry", "ALT", "U/L", "0", "40", "Serum", 1.0, 0),
        ("AST", "Chemistry", "AST", "U/L", "0", "40", "Serum", 1.0, 0),
        ("CREAT", "Chemistry", "Creatinine", "µmol/L", "27", "62", "Serum", 1.0, 0),
        ("CRP", "Chemistry", "CRP", "mg/L", "0", "5", "Serum", 1.0, 1),
        ("FERR", "Chemistry", "Ferritin", "ng/mL", "15", "150", "Serum", 1.0, 0),
        ("IL6", "Cytokines", "IL-6", "pg/mL", "0", "7", "Serum", 1.0, 1),
        ("IFNG", "Cytokines", "IFN-gamma", "pg/mL", "0", "15", "Serum", 1.0, 1),
    ],
    columns=["KEY", "LBCAT", "LBTEST", "LBORRESU", "LBORNRLO", "LBORNRHI", "LBSPEC", "FACTOR",
             "DECIMALS"],
)
LAB_SITE_OVERRIDES = {
    ("102", "WBC"): dict(LBORRESU="x10^9/L", LBORNRLO="4.5", LBORNRHI="13.5"),
    ("102", "ANC"): dict(LBTEST="Neutrophils", LBORRESU="x10^9/L", LBORNRHI="8.0"),
    ("102", "PLT"): dict(LBORRESU="x10^9/L", LBORNRHI="400"),
    ("102", "CREAT"): dict(LBORNRLO="30", LBORNRHI="70"),
    ("102", "FERR"): dict(LBORRESU="µg/L", LBORNRLO="20", LBORNRHI="200"),
    ("103", "HGB"): dict(LBORRESU="g/dL", LBORNRLO="11.5", LBORNRHI="15.5", FACTOR=0.1,
                         DECIMALS=1),
    ("103", "CREAT"): dict(LBORRESU="mg/dL", LBORNRLO="0.3", LBORNRHI="0.7",
                           FACTOR=1 / 88.42, DECIMALS=2),
    ("103", "ALT"): dict(LBORNRLO="7", LBORNRHI="35"),
}
CYTOKINE_FOLDERS = ("D1", "D8", "D15")        # plus every unscheduled CRS work-up
# Lab values fixed so that they agree with the AE log (internal units).
LAB_FIXED = pd.DataFrame(
    [("102-001", "D8", "ALT", 148.0), ("102-001", "D15", "ALT", 86.0),
     ("103-002", "D8", "AST", 62.0), ("103-002", "D15", "AST", 44.0),
     ("102-003", "M3", "ALT", 71.0)],
    columns=["SUBJECT", "FOLDER", "KEY", "FIXED"],
)
LAB_NOT_DONE = pd.DataFrame(
    [("101-003", "D15", "FERR", "Sample haemolysed"),
     ("102-001", "D15", "IL6", "Insufficient sample")],
    columns=["SUBJECT", "FOLDER", "KEY", "NDRSN"],
)

# Time courses by study day (log-linear between knots, flat outside): CD7+ cells relative
# to baseline (responders / non-responders), CD7-negative lymphocytes (cells/uL), and
# peripheral blasts relative to baseline before the Day 28 assessment. Used for fc.csv and
# for WBC and blasts in lb.csv.
CD7_KNOTS = pd.DataFrame(
    [(-6, 1.0, 1.0, 250), (1, 0.22, 0.30, 60), (4, 0.06, 0.20, 30), (8, 0.015, 0.30, 60),
     (15, 0.008, 0.40, 120), (28, 0.006, 0.55, 250), (60, 0.01, 1.25, 400),
     (90, 0.02, 1.25, 500), (180, 0.08, 1.25, 600), (270, 0.12, 1.25, 700),
     (365, 0.18, 1.25, 800)],
    columns=["DAY", "FRAC_RESP", "FRAC_NR", "CD7NEG"],
)
CD7_BY_RESPONSE = {"RELAPSE": 0.35, "PD": 1.1}
PB_KNOTS = pd.DataFrame([(1, 0.5, 0.9), (4, 0.2, 0.8), (8, 0.05, 0.75), (15, 0.0, 0.7)],
                        columns=["DAY", "FRAC_RESP", "FRAC_NR"])

# =====================================================================================
# Formatting and parsing helpers
# =====================================================================================


def fmt_date(ts: pd.Series) -> pd.Series:
    """Format timestamps as the sites type them, ``DD-MON-YYYY``; NaT -> ""."""
    ok = ts.notna()
    out = pd.Series("", index=ts.index, dtype=object)
    t = ts[ok]
    mon = pd.Series(np.array(MONTHS)[t.dt.month.astype(int).to_numpy() - 1], index=t.index)
    out[ok] = (t.dt.day.astype(int).astype(str).str.zfill(2) + "-" + mon + "-"
               + t.dt.year.astype(int).astype(str))
    return out


def fmt_partial(ts: pd.Series, kind: pd.Series) -> pd.Series:
    """Format dates, blanking the day ("MON": ``UN-MAR-2025``) or day and month ("UNK")."""
    out = fmt_date(ts)
    mon = kind.eq("MON") & ts.notna()
    unk = kind.eq("UNK") & ts.notna()
    out[mon] = "UN-" + out[mon].str[3:]
    out[unk] = "UN-UNK-" + out[unk].str[7:]
    return out


def fmt_iso(ts: pd.Series) -> pd.Series:
    """ISO 8601 date (``YYYY-MM-DD``) for truth.csv; NaT -> ""."""
    ok = ts.notna()
    out = pd.Series("", index=ts.index, dtype=object)
    out[ok] = ts[ok].dt.strftime("%Y-%m-%d")
    return out


def fmt_time(minutes: pd.Series) -> pd.Series:
    """Minutes after midnight -> ``HH:MM`` (24 h)."""
    m = minutes.astype(int)
    return (m // 60).astype(str).str.zfill(2) + ":" + (m % 60).astype(str).str.zfill(2)


def fmt_num(values, decimals) -> pd.Series:
    """Fixed-decimal text; ``decimals`` is one int or one per value."""
    v = np.asarray(values, dtype=float)
    d = np.broadcast_to(np.asarray(decimals, dtype=int), v.shape)
    out = np.empty(v.shape, dtype=object)
    for k in np.unique(d):                       # loop over distinct formats, not rows
        sel = d == k
        out[sel] = np.char.mod(f"%.{k}f", v[sel])
    index = values.index if isinstance(values, pd.Series) else None
    return pd.Series(out, index=index, dtype=object)


def parse_date(text: pd.Series) -> pd.Series:
    """Parse complete ``DD-MON-YYYY`` text to Timestamp; partial or empty -> NaT."""
    full = text.fillna("").str.fullmatch(r"\d{2}-[A-Z]{3}-\d{4}")
    parts = text.where(full, "01-JAN-1900").str.split("-", expand=True)
    month = parts[1].map({m: i + 1 for i, m in enumerate(MONTHS)})
    ts = pd.to_datetime(pd.DataFrame({"year": parts[2].astype(int), "month": month,
                                      "day": parts[0].astype(int)}))
    return ts.where(full)


def parse_minutes(text: pd.Series) -> pd.Series:
    """``HH:MM`` -> minutes after midnight (float, NaN when empty)."""
    hm = text.where(text.fillna("").str.fullmatch(r"\d{2}:\d{2}"), "nan:nan")
    parts = hm.str.split(":", expand=True)
    return pd.to_numeric(parts[0], errors="coerce") * 60 + pd.to_numeric(parts[1],
                                                                            errors="coerce")


def day_to_date(first_inf: pd.Series, day: pd.Series) -> pd.Series:
    """Study day -> date (Day 1 = first infusion, no Day 0; SDTMIG 3.4 section 4.4.4)."""
    d = pd.to_numeric(day, errors="coerce").to_numpy(dtype=float)
    offset = np.where(d > 0, d - 1, d)
    return first_inf.reset_index(drop=True).add(
        pd.to_timedelta(offset, unit="D")).set_axis(day.index)


def finalize(df: pd.DataFrame, form: str, fields: list[str]) -> pd.DataFrame:
    """Add the EDC header columns, sort the rows and turn every value into text.

    Args:
        df: one row per record with SUBJECT, FOLDER, RECORDPOSITION, SEQ (folder order
            within the subject) and the form's ``fields``; RECSTATUS optional.
        form: form OID written to FORM.
        fields: the form's own columns, in file order.

    Algorithm:
        1. SITENUMBER is the subject prefix; SITE from the site table; FOLDERNAME from
           the folder OID.
        2. Rows sorted by SUBJECT, SEQ, RECORDPOSITION (a stable, documented order).
        3. Missing -> "", everything as ``str``; a float column here means a value was
           not formatted, which would make the bytes platform-dependent, so it raises.
    """
    out = df.drop(columns=["SITE", "SITENUMBER"], errors="ignore")
    out["PROJECT"] = PROJECT
    out["SITENUMBER"] = out["SUBJECT"].str[:3]
    out = out.merge(SITES[["SITENUMBER", "SITE"]], on="SITENUMBER", how="left")
    out["FOLDERNAME"] = out["FOLDER"].map(FOLDERNAMES)
    out["FORM"] = form.upper()
    if "RECSTATUS" not in out:
        out["RECSTATUS"] = "Active"
    out = out.sort_values(["SUBJECT", "SEQ", "RECORDPOSITION"], kind="stable")
    out = out[HEADER + fields].reset_index(drop=True)
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            raise TypeError(f"{form}.{col} holds unformatted floats")
        out[col] = out[col].where(out[col].notna(), "").astype(str)
    assert out["FOLDERNAME"].ne("").all(), f"{form}: unknown folder"
    return out


# =====================================================================================
# Design tables derived from the truth definition
# =====================================================================================


def subjects_frame() -> pd.DataFrame:
    """The SUBJECTS definition as a frame with parsed dates and site columns."""
    s = pd.DataFrame(SUBJECTS)
    s["SITENUMBER"] = s["SUBJECT"].str[:3]
    s = s.merge(SITES, on="SITENUMBER", how="left")
    s["CONSENT"] = pd.to_datetime(s["CONSENT_DATE"])
    s["FIRST_INF"] = pd.to_datetime(s["FIRST_INF_DATE"])
    s["CONSENT_DAY"] = (s["CONSENT"] - s["FIRST_INF"]).dt.days   # negative: before Day 1
    return s


def build_schedule(subj: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Derive every subject's visits: folder, actual study day, date, not-done flag.

    Args:
        subj: output of :func:`subjects_frame`.
        rng: the schedule's random stream.

    Algorithm:
        1. Cross the subjects with the scheduled folders and keep folders up to the
           subject's LAST_VISIT.
        2. Actual day = nominal day + a uniform integer jitter within the folder window;
           Screening is the consent day.
        3. Add the UNSCHEDULED visits; flag the MISSED ones (they keep their nominal day
           for ordering but get no date).
        4. SEQ orders the folders of a subject by actual day (LOG 900, EOS 999).
    """
    order = {f: i for i, f in enumerate(FOLDERS.FOLDER)}
    grid = subj[["SUBJECT", "FIRST_INF", "CONSENT_DAY", "LAST_VISIT"]].merge(FOLDERS,
                                                                               how="cross")
    grid = grid[grid.FOLDER.map(order) <= grid.LAST_VISIT.map(order)].reset_index(drop=True)
    jitter = rng.integers(-grid.WINDOW.to_numpy(), grid.WINDOW.to_numpy() + 1)
    grid["DAY"] = np.where(grid.FOLDER.eq("SCR"), grid.CONSENT_DAY,
                           grid.NOMDAY.fillna(0) + jitter).astype(int)
    uns = pd.DataFrame(UNSCHEDULED, columns=["SUBJECT", "FOLDER", "DAY", "VISREAS"])
    uns = uns.merge(subj[["SUBJECT", "FIRST_INF"]], on="SUBJECT")
    vis = pd.concat([grid[["SUBJECT", "FIRST_INF", "FOLDER", "DAY"]], uns], ignore_index=True)
    missed = pd.DataFrame(MISSED, columns=["SUBJECT", "FOLDER", "VISNDRS"])
    vis = vis.merge(missed, on=["SUBJECT", "FOLDER"], how="left")
    vis["NOTDONE"] = vis["VISNDRS"].notna()
    vis["DATE"] = day_to_date(vis["FIRST_INF"], vis["DAY"]).where(~vis["NOTDONE"])
    vis = vis.sort_values(["SUBJECT", "DAY", "FOLDER"]).reset_index(drop=True)
    vis["SEQ"] = vis.groupby("SUBJECT").cumcount() + 1
    return vis.drop(columns="FIRST_INF")


def visit_keys(vis: pd.DataFrame) -> pd.DataFrame:
    """Attended visits with SEQ/DAY/DATE plus the LOG and EOS pseudo-folders."""
    att = vis.loc[~vis.NOTDONE, ["SUBJECT", "FOLDER", "SEQ", "DAY", "DATE"]]
    subs = vis["SUBJECT"].drop_duplicates()
    extra = pd.concat([pd.DataFrame({"SUBJECT": subs, "FOLDER": "LOG", "SEQ": 900}),
                       pd.DataFrame({"SUBJECT": subs, "FOLDER": "EOS", "SEQ": 999})])
    return pd.concat([att, extra], ignore_index=True)


def end_days(subj: pd.DataFrame, vis: pd.DataFrame) -> pd.DataFrame:
    """EOS day and last-contact day per subject (None in SUBJECTS = the Month 12 visit)."""
    m12 = vis.loc[vis.FOLDER.eq("M12") & ~vis.NOTDONE, ["SUBJECT", "DAY"]].rename(
        columns={"DAY": "M12_DAY"})
    e = subj[["SUBJECT", "FIRST_INF", "EOS_DAY", "LSTCON_DAY", "DEATH_DAY"]].merge(
        m12, on="SUBJECT", how="left")
    e["EOS_DAY"] = e["EOS_DAY"].fillna(e["M12_DAY"])
    e["LSTCON_DAY"] = e["LSTCON_DAY"].fillna(e["EOS_DAY"])
    e["EOS_DATE"] = day_to_date(e["FIRST_INF"], e["EOS_DAY"])
    e["LSTCON_DATE"] = day_to_date(e["FIRST_INF"], e["LSTCON_DAY"])
    e["DEATH_DATE"] = day_to_date(e["FIRST_INF"], e["DEATH_DAY"])
    return e


def infusions(subj: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """One row per CAR-NK infusion with date and start/end minutes.

    Algorithm:
        1. Explode INF_DAYS; EXNUM numbers the infusions 1.. in day order.
        2. Start 09:00-11:30 in 5-minute steps, duration 15-35 min (drawn).
        3. EX_OVERRIDES fix the times of the interrupted infusion to match the AE log.
    """
    ex = subj[["SUBJECT", "FIRST_INF", "DOSELVL", "WEIGHT_KG", "SITENUMBER", "EXDOSU"]].assign(
        INF_DAY=subj["INF_DAYS"]).explode("INF_DAY").reset_index(drop=True)
    ex["INF_DAY"] = ex["INF_DAY"].astype(int)
    ex["EXNUM"] = ex.groupby("SUBJECT").cumcount() + 1
    ex["DATE"] = day_to_date(ex["FIRST_INF"], ex["INF_DAY"])
    ex["START"] = 540 + 5 * rng.integers(0, 31, len(ex))
    ex["END"] = ex["START"] + rng.integers(15, 36, len(ex))
    ex["EXINT"] = "No"
    ex["EXADJ"] = ""
    ex = ex.merge(EX_OVERRIDES, on=["SUBJECT", "EXNUM"], how="left")
    fix = ex["EXSTTIM_FIX"].notna()
    ex.loc[fix, "START"] = parse_minutes(ex.loc[fix, "EXSTTIM_FIX"])
    ex.loc[fix, "END"] = parse_minutes(ex.loc[fix, "EXENTIM_FIX"])
    ex.loc[fix, "EXINT"] = ex.loc[fix, "EXINT_FIX"]
    ex.loc[fix, "EXADJ"] = ex.loc[fix, "EXADJ_FIX"]
    ex["FOLDER"] = "D" + ex["INF_DAY"].astype(str)
    return ex


def ae_frame(subj: pd.DataFrame) -> pd.DataFrame:
    """The AES definition as a frame with RECORDPOSITION and dates (ongoing -> NaT)."""
    ae = pd.DataFrame(AES)
    ae["RECORDPOSITION"] = ae.groupby("SUBJECT").cumcount() + 1
    ae = ae.merge(subj[["SUBJECT", "FIRST_INF"]], on="SUBJECT")
    ae["END"] = pd.to_numeric(ae["END"])
    ae["START_DATE"] = day_to_date(ae["FIRST_INF"], ae["START"])
    ae["END_DATE"] = day_to_date(ae["FIRST_INF"], ae["END"])
    return ae


# =====================================================================================
# Forms
# =====================================================================================


def make_dm(subj: pd.DataFrame) -> pd.DataFrame:
    """Demographics (FOLDER SCR): birth date, age at consent as the site computed it, sex,
    race, ethnicity and country, all as typed."""
    dm = subj.assign(FOLDER="SCR", SEQ=1, RECORDPOSITION=0, BRTHDAT=subj["BRTHDAT"],
                     AGE=subj["AGE"].astype(str), SEX=subj["SEX_RAW"], RACE=subj["RACE_RAW"],
                     ETHNIC=subj["ETHNIC_RAW"])
    return finalize(dm, "DM", ["BRTHDAT", "AGE", "AGEU", "SEX", "RACE", "ETHNIC", "COUNTRY"])


def make_ic(subj: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Informed consent (FOLDER SCR). Assent is obtained from children aged 7 or more."""
    ic = subj.assign(FOLDER="SCR", SEQ=1, RECORDPOSITION=0, ICDAT=fmt_date(subj["CONSENT"]),
                     ICTIM=fmt_time(pd.Series(480 + 5 * rng.integers(0, 18, len(subj)))),
                     ICVER="v2.0", ASSENT=np.where(subj["AGE"] >= 7, "Yes", "No"),
                     ICTYPE="Parental consent")
    return finalize(ic, "IC", ["ICDAT", "ICTIM", "ICVER", "ASSENT", "ICTYPE"])


def make_ld(subj: pd.DataFrame, vis: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Lymphodepletion log (FOLDER LD): line 1 fludarabine 30 mg/m2/day, line 2
    cyclophosphamide 300 mg/m2/day, each on days -5 to -3 (3 days)."""
    agents = pd.DataFrame({"RECORDPOSITION": [1, 2], "DOSE": ["30", "300"],
                           "T0": [510, 600]})
    ld = subj.merge(agents, how="cross")
    ld["LDAGENT"] = np.where(ld["RECORDPOSITION"].eq(1), ld["FLU"], ld["CY"])
    ld["LDSTDAT"] = fmt_date(day_to_date(ld["FIRST_INF"], pd.Series(-5, index=ld.index)))
    ld["LDENDAT"] = fmt_date(day_to_date(ld["FIRST_INF"], pd.Series(-3, index=ld.index)))
    ld["LDSTTIM"] = fmt_time(ld["T0"] + 5 * pd.Series(rng.integers(0, 13, len(ld))))
    ld = ld.assign(FOLDER="LD", LDDOSE=ld["DOSE"], LDDOSU=ld["LDDOSU"], LDROUTE=ld["LDROUTE"],
                   LDDAYS="3")
    ld = ld.merge(visit_keys(vis)[["SUBJECT", "FOLDER", "SEQ"]], on=["SUBJECT", "FOLDER"])
    return finalize(ld, "LD", ["LDAGENT", "LDDOSE", "LDDOSU", "LDROUTE", "LDSTDAT", "LDSTTIM",
                               "LDENDAT", "LDDAYS"])


def product(ex: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Per infusion (SUBJECT, EXNUM): the product lot in use on the infusion date
    (PRODUCT_LOTS) and the viable CAR-NK cells infused (10^6, 1 decimal text): nominal dose
    x weight x a post-thaw factor 0.90-1.05."""
    e = ex.merge(DOSE_LEVELS, on="DOSELVL").sort_values(["SUBJECT", "EXNUM"]).reset_index(drop=True)
    lot_idx = np.searchsorted(pd.to_datetime(PRODUCT_LOTS["FROM"]).to_numpy(), e["DATE"].to_numpy(),
                              side="right") - 1
    e["EXLOT"] = PRODUCT_LOTS["EXLOT"].to_numpy()[lot_idx]
    e["EXVIAB"] = fmt_num(e["DOSE"] * e["WEIGHT_KG"] * (0.90 + 0.15 * rng.random(len(e))), 1)
    return e[["SUBJECT", "EXNUM", "EXLOT", "EXVIAB"]]


def make_ex(ex: pd.DataFrame, vis: pd.DataFrame, prod: pd.DataFrame) -> pd.DataFrame:
    """CAR-NK infusion log: one line per infusion in its visit folder (D1/D8/D15).

    EXVOL = dose (x10^6/kg) x weight / product concentration (x10^6/mL), 1 decimal;
    EXLOT / EXVIAB (viable cells infused, 10^6) from :func:`product`.
    """
    e = ex.merge(DOSE_LEVELS, on="DOSELVL").merge(prod, on=["SUBJECT", "EXNUM"])
    e = e.assign(RECORDPOSITION=1, EXNUM=e["EXNUM"].astype(str), EXDAT=fmt_date(e["DATE"]),
                 EXSTTIM=fmt_time(e["START"]), EXENTIM=fmt_time(e["END"]),
                 EXDOSE=fmt_num(e["DOSE"], 1),
                 EXVOL=fmt_num(e["DOSE"] * e["WEIGHT_KG"] / e["CONC"], 1),
                 EXROUTE="Intravenous", EXWT=fmt_num(e["WEIGHT_KG"], 1))
    e = e.merge(visit_keys(vis)[["SUBJECT", "FOLDER", "SEQ"]], on=["SUBJECT", "FOLDER"])
    return finalize(e, "EX", ["EXNUM", "EXDAT", "EXSTTIM", "EXENTIM", "DOSELVL", "EXDOSE",
                              "EXDOSU", "EXVOL", "EXROUTE", "EXADJ", "EXINT", "EXWT", "EXLOT",
                              "EXVIAB"])


def make_ae(ae: pd.DataFrame, subj: pd.DataFrame) -> pd.DataFrame:
    """Adverse event log (FOLDER LOG), MedDRA-coded, CTCAE grade, ASTCT CRS/ICANS grade.

    Algorithm:
        1. MedDRA hierarchy from MEDDRA by key.
        2. AEACN (when not given): "Dose not changed" if the AE starts on or before the
           last infusion day, else "Not applicable" (no more CAR-NK was planned).
        3. AEOUT (when not given): grade 5 -> "Fatal", no end -> "Not recovered/Not
           resolved", else "Recovered/Resolved"; AEONGO = "Yes" when no end date.
        4. Seriousness: AESER in the site's Yes/No spelling; each criterion "Yes"/"No"
           when serious, blank when not.
        5. CRS/ICANS flags and grades from the key; partial dates blank day (and month).
    """
    yes_no = subj[["SUBJECT", "YES", "NO", "INF_DAYS"]].assign(
        LAST_INF=subj["INF_DAYS"].map(max))
    a = ae.merge(yes_no, on="SUBJECT")
    med = pd.DataFrame(
        [(k, *(x for pair in v for x in pair)) for k, v in MEDDRA.items()],
        columns=["KEY", "AELLT", "AELLTCD", "AEDECOD", "AEPTCD", "AEHLT", "AEHLTCD", "AEHLGT",
                 "AEHLGTCD", "AESOC", "AESOCCD"])
    a = a.merge(med, on="KEY", how="left")
    a["AESTDAT"] = fmt_partial(a["START_DATE"], a["PSTART"])
    a["AEENDAT"] = fmt_partial(a["END_DATE"], a["PEND"])
    a["AEONGO"] = np.where(a["END"].isna(), "Yes", "No")
    a["AETOXGR"] = a["GRADE_TXT"].where(a["GRADE_TXT"].ne(""), a["GRADE"].astype(str))
    is_ser = a["SERIOUS"].map(len) > 0
    a["AESER"] = np.where(is_ser, a["YES"], a["NO"])
    for crit, col in SERIOUS_CRITERIA.items():            # loop over the 6 criteria
        met = a["SERIOUS"].map(lambda s, c=crit: c in s)
        a[col] = np.where(is_ser, np.where(met, "Yes", "No"), "")
    rule_acn = np.where(a["START"] <= a["LAST_INF"], "Dose not changed", "Not applicable")
    a["AEACN"] = a["ACN"].where(a["ACN"].ne(""), rule_acn)
    rule_out = np.select([a["GRADE"].eq(5), a["END"].isna()],
                         ["Fatal", "Not recovered/Not resolved"], "Recovered/Resolved")
    a["AEOUT"] = a["OUT"].where(a["OUT"].ne(""), rule_out)
    a["AEREL_STD"] = a["AEREL"].map(AEREL_STD)
    a["AEACN_STD"] = a["AEACN"].map(AEACN_STD)
    a["AECRS"] = np.where(a["KEY"].eq("CRS"), "Yes", "No")
    a["AECRSGR"] = np.where(a["KEY"].eq("CRS"), a["GRADE"].astype(str), "")
    a["AEICANS"] = np.where(a["KEY"].eq("ICANS"), "Yes", "No")
    a["AEICANSGR"] = np.where(a["KEY"].eq("ICANS"), a["GRADE"].astype(str), "")
    a["AEDLT"] = np.where(a["DLT"], "Yes", "No")
    for col in ["AELLTCD", "AEPTCD", "AEHLTCD", "AEHLGTCD", "AESOCCD"]:
        a[col] = a[col].astype(int).astype(str)
    a = a.assign(FOLDER="LOG", SEQ=900, AESTTIM=a["STIME"], AEENTIM=a["ETIME"])
    return finalize(a, "AE", [
        "AETERM", "AELLT", "AELLTCD", "AEDECOD", "AEPTCD", "AEHLT", "AEHLTCD", "AEHLGT",
        "AEHLGTCD", "AESOC", "AESOCCD", "AESTDAT", "AESTTIM", "AEENDAT", "AEENTIM", "AEONGO",
        "AETOXGR", "AESER", "AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE",
        "AEREL", "AEREL_STD", "AEACN", "AEACN_STD", "AEOUT", "AECRS", "AECRSGR", "AEICANS",
        "AEICANSGR", "AEDLT", "AECOMM"])


def make_dth(subj: pd.DataFrame, ends: pd.DataFrame) -> pd.DataFrame:
    """Death form (FOLDER EOS), one record per subject who died."""
    d = subj.merge(ends[["SUBJECT", "DEATH_DATE"]], on="SUBJECT")
    d = d[d["DEATH_DATE"].notna()]
    d = d.assign(FOLDER="EOS", SEQ=999, RECORDPOSITION=0, DTHDAT=fmt_date(d["DEATH_DATE"]))
    return finalize(d, "DTH", ["DTHDAT", "DTHCAUS", "DTHCAUSSP", "AUTOPSY"])


def make_eos(subj: pd.DataFrame, ends: pd.DataFrame) -> pd.DataFrame:
    """End of study (FOLDER EOS): status and reason as selected, with their codes."""
    e = subj.merge(ends[["SUBJECT", "EOS_DATE", "LSTCON_DATE"]], on="SUBJECT")
    e = e.assign(FOLDER="EOS", SEQ=999, RECORDPOSITION=0, EOSDAT=fmt_date(e["EOS_DATE"]),
                 EOSSTAT=e["EOS_REASON"].map({k: v[0] for k, v in EOS_TEXT.items()}),
                 EOSSTAT_STD=e["EOS_STATUS"],
                 EOSREAS=e["EOS_REASON"].map({k: v[1] for k, v in EOS_TEXT.items()}),
                 EOSREAS_STD=e["EOS_REASON"], LSTCONDAT=fmt_date(e["LSTCON_DATE"]))
    return finalize(e, "EOS", ["EOSDAT", "EOSSTAT", "EOSSTAT_STD", "EOSREAS", "EOSREAS_STD",
                               "LSTCONDAT"])


def make_sv(vis: pd.DataFrame) -> pd.DataFrame:
    """Subject visits: one record per subject per visit folder, missed ones "Not done"."""
    v = vis.assign(RECORDPOSITION=0, VISDAT=fmt_date(vis["DATE"]),
                   VISND=np.where(vis["NOTDONE"], "Not done", ""))
    return finalize(v, "SV", ["VISDAT", "VISND", "VISNDRS", "VISREAS"])


def make_rs(vis: pd.DataFrame) -> pd.DataFrame:
    """Disease (response) assessment per visit; SCR is the baseline marrow."""
    r = RESPONSES.merge(visit_keys(vis), on=["SUBJECT", "FOLDER"], how="left")
    assert r["DATE"].notna().all(), "response planned at a visit that did not happen"
    r = r.assign(RECORDPOSITION=0, RSDAT=fmt_date(r["DATE"]), BMBLAST=fmt_num(r["BMBLAST"], 1),
                 PBBLAST=fmt_num(r["PBBLAST"], 1), ANCCAT=r["ANC"].map(ANC_TEXT),
                 PLTCAT=r["PLT"].map(PLT_TEXT), ASSESSOR="Investigator")
    return finalize(r, "RS", ["RSDAT", "BMBLAST", "PBBLAST", "EMD", "ANCCAT", "PLTCAT",
                              "OVRLRESP", "ASSESSOR"])


def make_mrd(vis: pd.DataFrame) -> pd.DataFrame:
    """Flow MRD on the response-visit marrow (sensitivity 0.01 % of leukocytes)."""
    m = MRD.merge(visit_keys(vis), on=["SUBJECT", "FOLDER"], how="left")
    assert m["DATE"].notna().all(), "MRD planned at a visit that did not happen"
    m = m.assign(RECORDPOSITION=0, MRDDAT=fmt_date(m["DATE"]), MRDSPEC="Bone marrow",
                 MRDMETH="Flow cytometry", MRDSENS="0.01")
    return finalize(m, "MRD", ["MRDDAT", "MRDSPEC", "MRDMETH", "MRDRES", "MRDSENS", "MRDSTAT"])


def lab_state(subj: pd.DataFrame, vis: pd.DataFrame, ae: pd.DataFrame, ex: pd.DataFrame,
              rng: np.random.Generator) -> pd.DataFrame:
    """Derive one row per subject and lab visit with every lab and flow quantity.

    Args:
        subj, vis, ae, ex: design frames; rng: the labs' random stream.

    Algorithm:
        1. Lab visits = attended visits except LD. Draw time: on an infusion day 90-150
           min before the infusion starts, at Screening 10:00-12:00 (after the 08:00-09:25
           consent), other visits 07:30-11:00.
        2. ANC/PLT drawn uniformly inside the count-recovery category of the response
           assessment at that visit (so labs agree with CR/CRh/CRi), otherwise "L"
           (aplasia after lymphodepletion). Hgb follows the platelet category.
        3. CD7+ count = baseline x CD7_KNOTS fraction at the study day (responder or
           non-responder curve; relapse/PD visits override) x lognormal noise; CD7-
           lymphocytes from the same knots. WBC = ANC + lymphocytes (CD7+ and CD7-) +
           0.05-0.4 monocytes.
        4. CRP, ferritin, IL-6, IFN-gamma scale with the grade of a CRS episode active
           at the visit day (start <= day <= end + 2, from the AE log).
        5. Peripheral blasts: response visits from RESPONSES, other visits a PB_KNOTS
           fraction of the baseline at the study day (faster fall in responders).
    """
    lv = vis.loc[~vis.NOTDONE & vis.FOLDER.ne("LD"),
                 ["SUBJECT", "FOLDER", "SEQ", "DAY", "DATE", "VISREAS"]].reset_index(drop=True)
    n = len(lv)
    u = pd.DataFrame(rng.random((n, 12)), columns=[f"u{i}" for i in range(12)])
    z = pd.DataFrame(rng.normal(0.0, 1.0, (n, 2)), columns=["z0", "z1"])
    s = pd.concat([lv, u, z], axis=1)
    s = s.merge(subj[["SUBJECT", "SITENUMBER", "CD7_BASE", "D28_RESPONSE"]], on="SUBJECT")
    s = s.merge(ex[["SUBJECT", "FOLDER", "START"]], on=["SUBJECT", "FOLDER"], how="left")
    s["MIN"] = np.select(
        [s["START"].notna(), s.FOLDER.eq("SCR")],
        [s["START"] - 90 - 12 * np.floor(s.u0 * 6), 600 + 5 * np.floor(s.u0 * 25)],
        450 + 5 * np.floor(s.u0 * 43)).astype(int)
    rs = RESPONSES.assign(CODE=RESPONSES["OVRLRESP"].map(RESPONSE_CODES))
    s = s.merge(rs[["SUBJECT", "FOLDER", "PBBLAST", "ANC", "PLT", "CODE"]],
                on=["SUBJECT", "FOLDER"], how="left")
    s["ANC"] = s["ANC"].fillna("L")
    s["PLT"] = s["PLT"].fillna("L")
    anc_lo = s["ANC"].map({"H": 1.2, "M": 0.55, "L": 0.05})
    anc_hi = s["ANC"].map({"H": 3.6, "M": 0.95, "L": 0.45})
    plt_lo = s["PLT"].map({"H": 110, "M": 55, "L": 12})
    plt_hi = s["PLT"].map({"H": 290, "M": 95, "L": 45})
    s["V_ANC"] = anc_lo + (anc_hi - anc_lo) * s.u1
    s["V_PLT"] = np.round(plt_lo + (plt_hi - plt_lo) * s.u2)
    s["V_HGB"] = np.where(s["PLT"].eq("H"), 105 + 27 * s.u3, 72 + 30 * s.u3)
    # CD7+ (flow) and lymphocytes
    def curve(knots: pd.DataFrame, col: str) -> np.ndarray:
        return np.exp(np.interp(s.DAY, knots.DAY, np.log(knots[col].clip(lower=1e-9))))

    responder = ~s["D28_RESPONSE"].isin(["NR", "PD"])
    f = np.where(responder, curve(CD7_KNOTS, "FRAC_RESP"), curve(CD7_KNOTS, "FRAC_NR"))
    f = np.where(s["CODE"].isin(list(CD7_BY_RESPONSE)), s["CODE"].map(CD7_BY_RESPONSE), f)
    s["V_CD7"] = s["CD7_BASE"] * f * np.exp(0.15 * s.z0)
    s["V_CD7NEG"] = curve(CD7_KNOTS, "CD7NEG") * np.exp(0.15 * s.z1)
    s["V_CD7PCT"] = 100 * s["V_CD7"] / (s["V_CD7"] + s["V_CD7NEG"])
    s["V_WBC"] = s["V_ANC"] + (s["V_CD7"] + s["V_CD7NEG"]) / 1000 + 0.05 + 0.35 * s.u4
    # peripheral blasts
    base_pb = s["SUBJECT"].map(RESPONSES[RESPONSES.FOLDER.eq("SCR")].set_index(
        "SUBJECT")["PBBLAST"])
    pb_frac = np.where(responder, np.interp(s.DAY, PB_KNOTS.DAY, PB_KNOTS.FRAC_RESP),
                       np.interp(s.DAY, PB_KNOTS.DAY, PB_KNOTS.FRAC_NR))
    pb_early = pd.Series(np.where(s.DAY < 1, np.nan, base_pb * pb_frac), index=s.index)
    s["V_BLAST"] = s["PBBLAST"].fillna(pb_early)
    # chemistry
    s["V_ALT"] = np.round(12 + 26 * s.u5)
    s["V_AST"] = np.round(15 + 25 * s.u6)
    s["V_CREAT"] = np.round(22 + 33 * s.u7)
    crs = ae.loc[ae.KEY.eq("CRS") & ae.RECSTATUS.eq("Active"), ["SUBJECT", "START", "END",
                                                               "GRADE"]]
    act = s[["SUBJECT", "FOLDER", "DAY"]].merge(crs, on="SUBJECT")
    act = act[(act.START <= act.DAY) & (act.DAY <= act.END + 2)]
    g = act.groupby(["SUBJECT", "FOLDER"])["GRADE"].max().rename("CRSG").reset_index()
    s = s.merge(g, on=["SUBJECT", "FOLDER"], how="left")
    s["CRSG"] = s["CRSG"].fillna(0).astype(int)
    lo = s.FOLDER.map({"SCR": 3, "D1": 2, "D8": 5, "D15": 2}).fillna(0.5)
    hi = s.FOLDER.map({"SCR": 22, "D1": 13, "D8": 25, "D15": 13}).fillna(8.5)
    crp_g = pd.DataFrame({"lo": [0, 30, 80, 160], "hi": [0, 80, 160, 260]})
    glo = s.CRSG.map(crp_g.lo)
    ghi = s.CRSG.map(crp_g.hi)
    s["V_CRP"] = np.where(s.CRSG > 0, glo + (ghi - glo) * s.u8, lo + (hi - lo) * s.u8)
    ferr_mult = s.CRSG.map({0: 1.0, 1: 2.0, 2: 3.5, 3: 8.0})
    late = s.DAY.ge(26)                                   # from the Day 28 visit on
    s["V_FERR"] = np.round(np.where(late, 120 + 330 * s.u9, (300 + 600 * s.u9) * ferr_mult))
    il6 = pd.DataFrame({"lo": [2, 25, 80, 800], "hi": [12, 80, 350, 2200]})
    s["V_IL6"] = s.CRSG.map(il6.lo) + (s.CRSG.map(il6.hi) - s.CRSG.map(il6.lo)) * s.u10
    ifn = pd.DataFrame({"lo": [1, 15, 60, 300], "hi": [8, 60, 180, 900]})
    s["V_IFNG"] = s.CRSG.map(ifn.lo) + (s.CRSG.map(ifn.hi) - s.CRSG.map(ifn.lo)) * s.u11
    return s


def make_lb(state: pd.DataFrame) -> pd.DataFrame:
    """Local labs, long format: one line per test per visit folder.

    Algorithm:
        1. Cross each lab visit with the site's test list (LAB_TESTS + site overrides);
           cytokines only on Day 1, 8, 15 and the unscheduled CRS work-ups.
        2. Value = internal value x site unit factor, fixed decimals per test; fixed
           values from LAB_FIXED; CRP below 5 mg/L is reported as "<5".
        3. Tests in LAB_NOT_DONE get an empty result and LBNDRSN.
    """
    tests = SITES[["SITENUMBER"]].merge(LAB_TESTS, how="cross")
    for (site, key), change in LAB_SITE_OVERRIDES.items():     # loop over spec entries
        sel = tests.SITENUMBER.eq(site) & tests.KEY.eq(key)
        for col, val in change.items():
            tests.loc[sel, col] = val
    tests["ORDER"] = tests.groupby("SITENUMBER").cumcount()
    lb = state.merge(tests, on="SITENUMBER")
    cyto = lb.FOLDER.isin(CYTOKINE_FOLDERS) | lb.VISREAS.fillna("").str.contains("CRS")
    lb = lb[lb.LBCAT.ne("Cytokines") | cyto].copy()
    value_col = "V_" + lb["KEY"]
    vals = state.melt(id_vars=["SUBJECT", "FOLDER"],
                      value_vars=[c for c in state.columns if c.startswith("V_")],
                      var_name="VCOL", value_name="VALUE")
    lb = lb.assign(VCOL=value_col).merge(vals, on=["SUBJECT", "FOLDER", "VCOL"], how="left")
    lb = lb.merge(LAB_FIXED, on=["SUBJECT", "FOLDER", "KEY"], how="left")
    lb["VALUE"] = lb["FIXED"].fillna(lb["VALUE"])
    lb["LBORRES"] = fmt_num(lb["VALUE"] * lb["FACTOR"], lb["DECIMALS"].astype(int))
    lb.loc[lb.KEY.eq("CRP") & lb.VALUE.lt(5), "LBORRES"] = "<5"
    lb = lb.merge(LAB_NOT_DONE, on=["SUBJECT", "FOLDER", "KEY"], how="left")
    lb["LBNDRSN"] = lb["NDRSN"].fillna("")
    lb.loc[lb.LBNDRSN.ne(""), "LBORRES"] = ""
    lb = lb.sort_values(["SUBJECT", "SEQ", "ORDER"])
    lb["RECORDPOSITION"] = lb.groupby(["SUBJECT", "FOLDER"]).cumcount() + 1
    lb = lb.assign(LBDAT=fmt_date(lb["DATE"]), LBTIM=fmt_time(lb["MIN"]))
    return finalize(lb, "LB", ["LBDAT", "LBTIM", "LBCAT", "LBTEST", "LBORRES", "LBORRESU",
                               "LBORNRLO", "LBORNRHI", "LBSPEC", "LBNDRSN"])


def make_fc(state: pd.DataFrame, subj: pd.DataFrame) -> pd.DataFrame:
    """Flow cytometry (PD): CD7+ absolute count (line 1) and % of lymphocytes (line 2),
    drawn with the labs of the same visit."""
    s = state.merge(subj[["SUBJECT", "CD7U"]], on="SUBJECT")
    absn = s.assign(RECORDPOSITION=1, FCTEST="CD7+ cells absolute count",
                    FCRES=fmt_num(s["V_CD7"], 1), FCRESU=s["CD7U"])
    pct = s.assign(RECORDPOSITION=2, FCTEST="CD7+ cells % of lymphocytes",
                   FCRES=fmt_num(s["V_CD7PCT"], 1), FCRESU="%")
    fc = pd.concat([absn, pct], ignore_index=True)
    fc = fc.assign(FCDAT=fmt_date(fc["DATE"]), FCTIM=fmt_time(fc["MIN"]))
    return finalize(fc, "FC", ["FCDAT", "FCTIM", "FCTEST", "FCRES", "FCRESU"])


def pk_samples(subj: pd.DataFrame, vis: pd.DataFrame, ex: pd.DataFrame,
               rng: np.random.Generator) -> pd.DataFrame:
    """Derive the CAR-NK concentration samples (actual time and value).

    Algorithm:
        1. Cross subjects with PK_TIMES; Day 28 / Month 2 / Month 3 samples are drawn at
           those visits and dropped when the visit did not happen.
        2. Actual time: pre-dose 15-60 min before the start of infusion 1, 1 h and 4 h
           after it (-5..+10 / -10..+20 min), Day N on study day N at 07:00-10:30,
           visit samples at 08:00-11:30. Hours = actual - start of infusion 1.
        3. log-concentration is piecewise linear in time through 1 h (C1H), 4 h
           (0.55 C1H), 24 h (0.30 C1H) and the peak (PEAK at TPEAK_H), then falls with
           HALFLIFE_D; x lognormal noise (sd 0.08). Pre-dose and < LLOQ are BLQ.
    """
    p = subj[["SUBJECT", "FIRST_INF", "BLQ"]].merge(PK_TIMES, how="cross")
    p = p.merge(PK_PROFILE, on="SUBJECT")
    vk = visit_keys(vis)[["SUBJECT", "FOLDER", "DATE", "SEQ"]].rename(columns={"FOLDER": "VISIT"})
    p = p.merge(vk, on=["SUBJECT", "VISIT"], how="left")
    p = p[p.VISIT.isna() | p.DATE.notna()].reset_index(drop=True)
    p = p.merge(ex.loc[ex.EXNUM.eq(1), ["SUBJECT", "START"]], on="SUBJECT")
    n = len(p)
    u = rng.random(n)
    z = rng.normal(0.0, 1.0, n)
    nominal_day = np.floor(p.PKTPTNUM / 24) + 1
    day_date = day_to_date(p["FIRST_INF"], pd.Series(nominal_day, index=p.index))
    p["DATE"] = p["DATE"].fillna(day_date)
    start = p["FIRST_INF"] + pd.to_timedelta(p["START"], unit="min")
    off = np.select(
        [p.PKTPT.eq("Pre-dose"), p.PKTPT.eq("1 h"), p.PKTPT.eq("4 h"), p.VISIT.notna()],
        [p.START - 15 - np.floor(45 * u), p.START + 55 + np.floor(16 * u),
         p.START + 230 + np.floor(31 * u), 480 + 5 * np.floor(42 * u)],
        420 + 5 * np.floor(42 * u))
    p["ACTUAL"] = p["DATE"].dt.normalize() + pd.to_timedelta(off, unit="min")
    h = (p["ACTUAL"] - start).dt.total_seconds().to_numpy() / 3600
    p["HOURS"] = h
    lc1 = np.log(p.C1H)
    knots_t = [np.ones(n), np.full(n, 4.0), np.full(n, 24.0), p.TPEAK_H.to_numpy(float)]
    knots_c = [lc1, lc1 + np.log(0.55), lc1 + np.log(0.30), np.log(p.PEAK)]
    logc = np.full(n, np.nan)
    for (t0, c0), (t1, c1) in zip(zip(knots_t, knots_c), zip(knots_t[1:], knots_c[1:])):
        seg = (h >= t0) & (h < t1)                    # loop over the 3 curve segments
        logc = np.where(seg, c0 + (c1 - c0) * (h - t0) / (t1 - t0), logc)
    decay = np.log(p.PEAK) - np.log(2) * (h - p.TPEAK_H) / (24 * p.HALFLIFE_D)
    logc = np.where(h >= p.TPEAK_H, decay, logc)
    logc = np.where(h < 1, lc1, logc)                 # 1 h sample drawn a little early
    conc = np.exp(logc + 0.08 * z)
    conc = np.round(conc, 2)
    p["CONC"] = np.where(p.PKTPT.eq("Pre-dose") | (conc < PK_LLOQ), np.nan, conc)
    p["PKRES"] = fmt_num(p["CONC"].fillna(0.0), 2).where(p["CONC"].notna(), p["BLQ"])
    p = p.sort_values(["SUBJECT", "PKTPTNUM"]).reset_index(drop=True)
    p["RECORDPOSITION"] = p.groupby("SUBJECT").cumcount() + 1
    return p


def make_pk(pk: pd.DataFrame) -> pd.DataFrame:
    """CAR-NK cell concentration log (FOLDER LOG), nominal time after infusion 1."""
    p = pk.assign(FOLDER="LOG", SEQ=900, PKTPTNUM=pk["PKTPTNUM"].astype(str),
                  PKDAT=fmt_date(pk["ACTUAL"]),
                  PKTIM=fmt_time(pk["ACTUAL"].dt.hour * 60 + pk["ACTUAL"].dt.minute),
                  PKRESU="cells/µL", PKLLOQ=str(PK_LLOQ))
    return finalize(p, "PK", ["PKTPT", "PKTPTNUM", "PKDAT", "PKTIM", "PKRES", "PKRESU",
                              "PKLLOQ"])


def make_ada(subj: pd.DataFrame, vis: pd.DataFrame) -> pd.DataFrame:
    """Anti-VGO-Cs01p antibodies at every attended ADA folder (pre-dose sample on Day 1).

    ADACONF only when the screen is positive, ADATITER only when confirmed.
    """
    vk = visit_keys(vis)
    a = vk[vk.FOLDER.isin(list(ADA_FOLDERS)) & vk.DATE.notna()]
    a = a.merge(ADA_POSITIVE, on=["SUBJECT", "FOLDER"], how="left")
    a["ADASCR"] = a["ADASCR"].fillna("Negative")
    a = a.assign(RECORDPOSITION=0, ADADAT=fmt_date(a["DATE"]),
                 ADATPT=a["FOLDER"].map(ADA_FOLDERS))
    return finalize(a, "ADA", ["ADADAT", "ADATPT", "ADASCR", "ADACONF", "ADATITER"])


# =====================================================================================
# Issue 12 forms: vital signs, medications, disease history, transplants, ICU stays
# =====================================================================================


def history_frame(subj: pd.DataFrame) -> pd.DataFrame:
    """HISTORY with parsed dates and the post-infusion HSCT date."""
    h = HISTORY.merge(subj[["SUBJECT", "FIRST_INF", "CONSENT", "SITENUMBER", "YES", "NO"]],
                      on="SUBJECT")
    h["DIAG"] = pd.to_datetime(h["DIAG_DATE"])
    h["PRIOR_HSCT_TS"] = pd.to_datetime(h["PRIOR_HSCT"].replace("", None))
    h["POST_HSCT"] = day_to_date(h["FIRST_INF"], pd.to_numeric(h["POST_HSCT_DAY"]))
    return h


def crs_episodes(ae: pd.DataFrame) -> pd.DataFrame:
    """Active CRS lines with the ASTCT component that set a grade >= 2 (fever alone is 1).

    Grade 2: hypotension without vasopressor when the subject's log has a CRS-associated
    hypotension line, else hypoxia with low-flow oxygen; grade 3: both, with a vasopressor.
    """
    crs = ae[ae.KEY.eq("CRS") & ae.RECSTATUS.eq("Active")].copy()
    hyp = ae[ae.KEY.eq("HYPOT") & ae.AECOMM.str.contains("CRS")][["SUBJECT", "START"]]
    crs = crs.merge(hyp.rename(columns={"START": "HSTART"}), on="SUBJECT", how="left")
    crs["HYPOTENSION"] = crs.GRADE.ge(3) | (crs.GRADE.eq(2) & crs.HSTART.between(crs.START,
                                                                                 crs.END))
    crs["HYPOXIA"] = crs.GRADE.ge(3) | (crs.GRADE.eq(2) & ~crs["HYPOTENSION"])
    return crs.drop(columns="HSTART")


def vs_state(subj: pd.DataFrame, vis: pd.DataFrame, ex: pd.DataFrame, ae: pd.DataFrame,
             rng: np.random.Generator) -> pd.DataFrame:
    """One row per vital-signs time point with internal values (C, kg, cm).

    Algorithm:
        1. Visit rows: every attended visit; on an infusion day a pre-infusion row (30-55
           min before the start) and a 1 h post-infusion row; Screening 09:30-09:55 (after
           consent), Lymphodepletion 07:30-07:55 (before the first agent), others
           08:00-10:25.
        2. CRS monitoring rows (FOLDER LOG): one per day of each CRS line, the first at
           the CRS start time (the fever that started it), later days at 06:00.
        3. Temperature: 36.4-37.4 C; on a CRS onset day 38.2-39.0 (+0.4 per grade above
           1); later CRS days before the last 38.0-38.8; on a visit inside a CRS episode
           38.1-38.8. Heart rate, BP by age (SBP 90 + 1.5 x age + 0..14); the worst CRS day
           (day 2 of a grade >= 2 episode) gets the component that set its grade: SBP 5-15
           mmHg below the PALS hypotension limit min(70 + 2 x age, 90) (hypotension) and/or
           SpO2 88-91 % (hypoxia).
        4. Weight: the dosing weight (WEIGHT_KG) at Lymphodepletion, +0.1..0.6 kg at
           Screening, later weights drift; height at Screening; BSA (Mosteller,
           2 decimals) at Screening and Lymphodepletion.
    """
    att = vis.loc[~vis.NOTDONE, ["SUBJECT", "FOLDER", "SEQ", "DAY", "DATE"]]
    inf = ex[["SUBJECT", "FOLDER", "START", "END"]]
    v = att.merge(inf, on=["SUBJECT", "FOLDER"], how="left")
    post = v[v.START.notna()].assign(TPT="1 h post-infusion", POS=2)
    v = pd.concat([v.assign(TPT=np.where(v.START.notna(), "Pre-infusion", ""), POS=1), post],
                  ignore_index=True)
    n = len(v)
    u = rng.random((n, 2))
    v["MIN"] = np.select(
        [v.TPT.eq("Pre-infusion"), v.TPT.eq("1 h post-infusion"), v.FOLDER.eq("SCR"),
         v.FOLDER.eq("LD")],
        [v.START - 30 - 5 * np.floor(u[:, 0] * 6), v.END + 60, 570 + 5 * np.floor(u[:, 0] * 6),
         450 + 5 * np.floor(u[:, 0] * 6)], 480 + 5 * np.floor(u[:, 0] * 30)).astype(int)
    crs = crs_episodes(ae)
    days = crs.assign(D=[list(range(int(a), int(b) + 1)) for a, b in zip(crs.START, crs.END)])
    days = days.explode("D").reset_index(drop=True)
    days["D"] = days["D"].astype(int)
    days["ONSET"] = days.D.eq(days.START)
    days["LAST"] = days.D.eq(days.END)
    days["WORST"] = days.GRADE.ge(2) & days.D.eq(np.minimum(days.START + 1, days.END - 1))
    days["MIN"] = np.where(days.ONSET, parse_minutes(days.STIME), 360).astype(int)
    days["DATE"] = day_to_date(days["FIRST_INF"], days["D"])
    days = days.assign(FOLDER="LOG", SEQ=900, DAY=days["D"], TPT="", POS=days["D"])
    cols = ["SUBJECT", "FOLDER", "SEQ", "DAY", "DATE", "MIN", "TPT", "POS"]
    s = pd.concat([v[cols].assign(ROW="VISIT"),
                   days[cols + ["GRADE", "ONSET", "LAST", "WORST", "HYPOTENSION",
                                "HYPOXIA"]].assign(ROW="CRS")], ignore_index=True)
    s = s.merge(subj[["SUBJECT", "AGE", "WEIGHT_KG", "SITENUMBER"]], on="SUBJECT")
    s = s.merge(HISTORY[["SUBJECT", "HEIGHT_CM"]], on="SUBJECT")
    s = s.sort_values(["SUBJECT", "SEQ", "POS"]).reset_index(drop=True)
    n = len(s)
    u = pd.DataFrame(rng.random((n, 7)), columns=[f"u{i}" for i in range(7)])
    s = pd.concat([s, u], axis=1)
    # inside a CRS episode (not its last day) on a visit row
    ep = s[["SUBJECT", "DAY"]].reset_index().merge(crs[["SUBJECT", "START", "END"]],
                                                   on="SUBJECT")
    inside = ep[(ep.START <= ep.DAY) & (ep.DAY < ep.END)]["index"].unique()
    febrile_visit = s.index.isin(inside) & s.ROW.eq("VISIT")
    for col in ["GRADE"]:
        s[col] = s[col].fillna(0)
    flags = ["ONSET", "LAST", "WORST", "HYPOTENSION", "HYPOXIA"]
    s[flags] = s[flags].fillna(False).astype(bool)
    temp = np.select(
        [s.ROW.eq("CRS") & s.ONSET, s.ROW.eq("CRS") & ~s.LAST, s.ROW.eq("CRS") & s.LAST,
         febrile_visit],
        [38.2 + 0.8 * s.u0 + 0.4 * (s.GRADE - 1), 38.0 + 0.8 * s.u0, 36.8 + 0.8 * s.u0,
         38.1 + 0.7 * s.u0], 36.4 + 1.0 * s.u0)
    s["V_TEMP"] = np.round(temp, 1)
    sbp_norm = 90 + 1.5 * s.AGE + 14 * s.u1
    pals = np.minimum(70 + 2 * s.AGE, 90)         # PALS hypotension: SBP < 70 + 2 x age, < 90 from 10 y
    s["V_SYSBP"] = np.round(np.where(s.WORST & s.HYPOTENSION, pals - 5 - 10 * s.u1, sbp_norm))
    s["V_DIABP"] = np.round(np.where(s.WORST & s.HYPOTENSION, 35 + 6 * s.u2,
                                     52 + 0.8 * s.AGE + 10 * s.u2))
    fever = s.V_TEMP.ge(38.0)
    s["V_HR"] = np.round(135 - 3.5 * s.AGE + 15 * s.u3 + np.where(fever, 20, 0))
    s["V_SPO2"] = np.minimum(np.round(np.where(s.WORST & s.HYPOXIA, 88 + 3 * s.u4, 96 + 4 * s.u4)),
                             100)
    wt = np.select([s.FOLDER.eq("LD"), s.FOLDER.eq("SCR")],
                   [s.WEIGHT_KG, s.WEIGHT_KG + 0.1 + 0.5 * s.u5],
                   s.WEIGHT_KG * (0.94 + 0.08 * s.u5))
    s["V_WEIGHT"] = np.where(s.FOLDER.isin(WEIGHT_FOLDERS) & s.TPT.ne("1 h post-infusion"),
                             np.round(wt, 1), np.nan)
    s["V_HEIGHT"] = np.where(s.FOLDER.eq("SCR"), s.HEIGHT_CM, np.nan)
    bsa = np.sqrt(s.HEIGHT_CM * s.V_WEIGHT / 3600)
    s["V_BSA"] = np.where(s.FOLDER.isin(["SCR", "LD"]), np.round(bsa, 2), np.nan)
    return s


def make_vs(state: pd.DataFrame) -> pd.DataFrame:
    """Vital signs (FORM VS): one line per time point, in the visit folder or, for the daily
    CRS monitoring, in the LOG folder; units as each site records them (site 103 F/lb/in).
    One line (VS_DELETED) is entered twice and the duplicate deleted."""
    s = state.merge(VS_UNITS, on="SITENUMBER")
    us = s.SITENUMBER.eq("103")
    s["TEMP"] = fmt_num(np.where(us, s.V_TEMP * 9 / 5 + 32, s.V_TEMP), 1)
    s["SYSBP"] = fmt_num(s.V_SYSBP, 0)
    s["DIABP"] = fmt_num(s.V_DIABP, 0)
    s["HR"] = fmt_num(s.V_HR, 0)
    s["SPO2"] = fmt_num(s.V_SPO2, 0)
    w = pd.Series(np.where(us, s.V_WEIGHT / 0.45359237, s.V_WEIGHT), index=s.index)
    h = pd.Series(np.where(us, s.V_HEIGHT / 2.54, s.V_HEIGHT), index=s.index)
    s["WEIGHT"] = fmt_num(w.fillna(0), 1).where(w.notna(), "")
    s["HEIGHT"] = fmt_num(h.fillna(0), 1).where(h.notna(), "")
    s["BSA"] = fmt_num(s.V_BSA.fillna(0), 2).where(s.V_BSA.notna(), "")
    for col in ["WEIGHTU", "HEIGHTU", "BSAU"]:
        s[col] = s[col].where(s[col.removesuffix("U")].ne(""), "")
    s = s.assign(VSDAT=fmt_date(s["DATE"]), VSTIM=fmt_time(s["MIN"]), VSTPT=s["TPT"],
                 BPU="mmHg")
    s = s.sort_values(["SUBJECT", "SEQ", "POS"])
    s["RECORDPOSITION"] = s.groupby(["SUBJECT", "FOLDER"]).cumcount() + 1
    dup = s[s.SUBJECT.eq(VS_DELETED[0]) & s.FOLDER.eq(VS_DELETED[1])].assign(
        RECSTATUS="Deleted", RECORDPOSITION=2)
    s = pd.concat([s.assign(RECSTATUS="Active"), dup], ignore_index=True)
    return finalize(s, "VS", ["VSDAT", "VSTIM", "VSTPT", "TEMP", "TEMPU", "SYSBP", "DIABP",
                              "BPU", "HR", "HRU", "SPO2", "WEIGHT", "WEIGHTU", "HEIGHT",
                              "HEIGHTU", "BSA", "BSAU"])


def cm_frame(subj: pd.DataFrame, ends: pd.DataFrame) -> pd.DataFrame:
    """Concomitant medications: CONMEDS plus every subject's prophylaxis; days -> dates;
    past the end of participation: stopped on the death day, else ongoing (no end date,
    CMONGO Yes)."""
    rows = pd.DataFrame(CONMEDS, columns=["SUBJECT", "DRUG", "CMTRT", "CMDOSE", "CMDOSU",
                                          "CMROUTE", "CMDOSFRQ", "START", "END", "CMINDC"])
    pro = []
    for drug, names, dose, unit, route, frq, last in PROPHYLAXIS:   # 3 drugs x 3 sites
        for i, site in enumerate(("101", "102", "103")):
            pro.append((site, drug, names[i], dose, unit, route, frq, -5, last, "Prophylaxis"))
    pro = pd.DataFrame(pro, columns=["SITENUMBER"] + list(rows.columns[1:]))
    pro = subj[["SUBJECT", "SITENUMBER"]].merge(pro, on="SITENUMBER").drop(columns="SITENUMBER")
    cm = pd.concat([pro, rows], ignore_index=True)
    cm = cm.merge(subj[["SUBJECT", "FIRST_INF"]], on="SUBJECT")
    cm = cm.merge(ends[["SUBJECT", "LSTCON_DAY", "DEATH_DAY"]], on="SUBJECT")
    stop = cm.DEATH_DAY.fillna(cm.LSTCON_DAY)
    end = pd.to_numeric(cm["END"])
    # past the end of participation: stopped at death, else unknown (ongoing, no end date)
    cm["END"] = end.where(end <= stop, cm["DEATH_DAY"])
    cm["START_DATE"] = day_to_date(cm["FIRST_INF"], cm["START"])
    cm["END_DATE"] = day_to_date(cm["FIRST_INF"], cm["END"])
    return cm


def syndrome_line(df: pd.DataFrame, ae: pd.DataFrame, day: str, key: pd.Series) -> pd.Series:
    """AE line (RECORDPOSITION, text) of the subject's active CRS or ICANS line (``key``) that
    covers study day ``day`` of each row of ``df``; "" when none."""
    lines = ae.loc[ae.KEY.isin(["CRS", "ICANS"]) & ae.RECSTATUS.eq("Active"),
                   ["SUBJECT", "KEY", "START", "END", "RECORDPOSITION"]]
    d = df[["SUBJECT"]].assign(D=df[day], KEY=key).reset_index()
    m = d.merge(lines, on=["SUBJECT", "KEY"])
    m = m[(m.START <= m.D) & (m.D <= m.END)].drop_duplicates("index")
    out = pd.Series("", index=df.index, dtype=object)
    out[m["index"].to_numpy()] = m["RECORDPOSITION"].astype(str).to_numpy()
    return out


def make_cm(cm: pd.DataFrame, ae: pd.DataFrame) -> pd.DataFrame:
    """Concomitant medication log (FORM CONMED, FOLDER LOG), coded with the synthetic drug
    dictionary. CMAELINE: the AE line of the CRS or ICANS event a CRS/ICANS treatment
    (tocilizumab, dexamethasone, vasopressor) was given for; empty for other lines."""
    c = cm.sort_values(["SUBJECT", "START", "DRUG"], kind="stable").copy()
    treats = c.DRUG.isin(["TOCI", "DEXA", "NOREPI"]) & c.CMINDC.str.contains("CRS|ICANS|ytokine")
    key = pd.Series(np.where(c.CMINDC.str.contains("ICANS"), "ICANS", "CRS"), index=c.index)
    c["CMAELINE"] = syndrome_line(c, ae, "START", key).where(treats, "")
    c["RECORDPOSITION"] = c.groupby("SUBJECT").cumcount() + 1
    c["CMDECOD"] = c.DRUG.map({k: v[0] for k, v in DRUGS.items()})
    c["CMCLASCD"] = c.DRUG.map({k: v[1] for k, v in DRUGS.items()})
    c["CMCLAS"] = c.DRUG.map({k: v[2] for k, v in DRUGS.items()})
    c = c.assign(FOLDER="LOG", SEQ=900, CMSTDAT=fmt_date(c["START_DATE"]),
                 CMENDAT=fmt_date(c["END_DATE"]),
                 CMONGO=np.where(c["END"].isna(), "Yes", "No"))
    assert c.loc[treats, "CMAELINE"].ne("").all(), "a CRS/ICANS treatment outside its event"
    return finalize(c, "CONMED", ["CMTRT", "CMDECOD", "CMCLAS", "CMCLASCD", "CMINDC", "CMDOSE",
                                  "CMDOSU", "CMROUTE", "CMDOSFRQ", "CMSTDAT", "CMENDAT", "CMONGO",
                                  "CMAELINE"])


def pt_frame(hist: pd.DataFrame) -> pd.DataFrame:
    """Prior anti-leukaemia lines between diagnosis and 5 weeks before consent: line k of
    n starts at diagnosis + 7 days + (k-1) x span/n and lasts 60 % of its segment."""
    p = hist.merge(PRIOR_LINES, how="cross")
    p = p[p.LINE <= p.LINES].reset_index(drop=True)
    span = (p.CONSENT - pd.Timedelta(days=35) - p.DIAG).dt.days / p.LINES
    p["START_DATE"] = p.DIAG + pd.to_timedelta(7 + np.floor((p.LINE - 1) * span), unit="D")
    p["END_DATE"] = p.START_DATE + pd.to_timedelta(np.floor(0.6 * span), unit="D")
    return p


def make_pt(p: pd.DataFrame) -> pd.DataFrame:
    """Prior anti-leukaemia therapy (FORM PT, FOLDER SCR, one line per prior line)."""
    p = p.assign(FOLDER="SCR", SEQ=1, RECORDPOSITION=p["LINE"], PTLINE=p["LINE"].astype(str),
                 PTDECOD=p.DRUG.map({k: v[0] for k, v in DRUGS.items()}),
                 PTCLASCD=p.DRUG.map({k: v[1] for k, v in DRUGS.items()}),
                 PTCLAS=p.DRUG.map({k: v[2] for k, v in DRUGS.items()}),
                 PTSTDAT=fmt_partial(p["START_DATE"], pd.Series(np.where(p.LINE.eq(1),
                                                                         p.DIAG_PARTIAL, ""))),
                 PTENDAT=fmt_date(p["END_DATE"]))
    return finalize(p, "PT", ["PTLINE", "PTREG", "PTDECOD", "PTCLAS", "PTCLASCD", "PTSTDAT",
                              "PTENDAT"])


def make_dh(hist: pd.DataFrame) -> pd.DataFrame:
    """Disease history (FORM DH, FOLDER SCR): T-ALL diagnosis date (partial for two
    subjects), status at entry, CNS status, number of prior lines, prior HSCT and its date."""
    h = hist.assign(FOLDER="SCR", SEQ=1, RECORDPOSITION=0,
                    DIAGDAT=fmt_partial(hist["DIAG"], hist["DIAG_PARTIAL"]),
                    DISSTAT=hist["STATUS"], CNSSTAT=hist["CNS"],
                    PRLINES=hist["LINES"].astype(str),
                    PRHSCT=np.where(hist.PRIOR_HSCT.ne(""), hist.YES, hist.NO),
                    PRHSCTDAT=fmt_date(hist["PRIOR_HSCT_TS"]))
    return finalize(h, "DH", ["DIAGDAT", "DISSTAT", "CNSSTAT", "PRLINES", "PRHSCT",
                              "PRHSCTDAT"])


def make_sct(hist: pd.DataFrame) -> pd.DataFrame:
    """Transplant after VGO-Cs01p (FORM SCT, FOLDER LOG): consolidating allogeneic HSCT."""
    h = hist[hist.POST_HSCT.notna()]
    h = h.assign(FOLDER="LOG", SEQ=900, RECORDPOSITION=1, SCTDAT=fmt_date(h["POST_HSCT"]),
                 SCTTYPE=np.where(h.SITENUMBER.eq("102"), "Allo-HSCT", "Allogeneic HSCT"),
                 SCTDONOR=np.where(h.SITENUMBER.eq("102"), "Haploidentical", "Matched unrelated"),
                 SCTREAS="Consolidation in remission")
    return finalize(h, "SCT", ["SCTDAT", "SCTTYPE", "SCTDONOR", "SCTREAS"])


def crsa_frame(ae: pd.DataFrame, subj: pd.DataFrame, vstate: pd.DataFrame,
               rng: np.random.Generator) -> pd.DataFrame:
    """One ASTCT grading assessment per active CRS or ICANS line (crsa.csv).

    CRS: maximum temperature over the episode (the CRS monitoring vital signs), hypotension
    and the number of vasopressors (grade 3: one; grade <= 2: none), hypoxia and the oxygen
    flow (grade 2 hypoxia: low-flow 1-2 L/min; grade 3: 4-6 L/min), assessed on the worst
    day (the day the vital signs show the component). ICANS: the encephalopathy score ASTCT
    requires for the age: ICE (0-10) from age 12, CAPD (0-32) under 12; grade 1-2 ICANS have
    ICE 3-9 / CAPD 1-8 (a CAPD >= 9 would be grade 3).
    """
    crs = crs_episodes(ae)
    crs["WDAY"] = np.where(crs.GRADE.ge(2), np.minimum(crs.START + 1, crs.END - 1), crs.START)
    v = vstate[vstate.ROW.eq("CRS")][["SUBJECT", "DAY", "V_TEMP"]]
    m = crs[["SUBJECT", "RECORDPOSITION", "START", "END"]].merge(v, on="SUBJECT")
    m = m[(m.DAY >= m.START) & (m.DAY <= m.END)]
    tmax = m.groupby(["SUBJECT", "RECORDPOSITION"])["V_TEMP"].max().rename("MAXTEMP")
    crs = crs.merge(tmax.reset_index(), on=["SUBJECT", "RECORDPOSITION"])
    u = rng.random(len(crs))
    crs = crs.assign(KIND="CRS", HYPOT=np.where(crs.HYPOTENSION, "Yes", "No"),
                     VASOP=np.where(crs.GRADE.ge(3), "1", "0"),
                     HYPOX=np.where(crs.HYPOXIA, "Yes", "No"),
                     O2FLOW=np.where(crs.GRADE.ge(3), 4 + np.floor(3 * u),
                                     np.where(crs.HYPOXIA, 1 + np.floor(2 * u), 0)))
    icans = ae[ae.KEY.eq("ICANS") & ae.RECSTATUS.eq("Active")].copy()
    icans = icans.merge(subj[["SUBJECT", "AGE"]], on="SUBJECT")
    w = rng.random(len(icans))
    icans = icans.assign(KIND="ICANS", WDAY=icans.START,
                         ICE=np.where(icans.AGE >= 12, 9 - np.floor(3 * w) - 2 * (icans.GRADE - 1),
                                      np.nan),
                         CAPD=np.where(icans.AGE < 12, 3 + np.floor(3 * w) + 2 * (icans.GRADE - 1),
                                       np.nan))
    a = pd.concat([crs, icans], ignore_index=True)
    a["WDATE"] = day_to_date(a["FIRST_INF"], a["WDAY"])
    return a.sort_values(["SUBJECT", "RECORDPOSITION"]).reset_index(drop=True)


def make_crsa(a: pd.DataFrame) -> pd.DataFrame:
    """CRS/ICANS grading assessment (FORM CRSA, FOLDER LOG): one line per CRS or ICANS line of
    the AE log, AELINE = that line's RECORDPOSITION; fields of the other syndrome blank."""
    c = a.assign(FOLDER="LOG", SEQ=900, AELINE=a["RECORDPOSITION"].astype(str),
                 CRSADAT=fmt_date(a["WDATE"]), SYNDROME=a["KIND"],
                 MAXTEMP=fmt_num(a["MAXTEMP"].fillna(0), 1).where(a["MAXTEMP"].notna(), ""),
                 TEMPU=np.where(a["MAXTEMP"].notna(), "C", ""),
                 O2FLOW=fmt_num(a["O2FLOW"].fillna(0), 0).where(a["O2FLOW"].notna(), ""),
                 O2FLOWU=np.where(a["O2FLOW"].notna(), "L/min", ""),
                 ICE=fmt_num(a["ICE"].fillna(0), 0).where(a["ICE"].notna(), ""),
                 CAPD=fmt_num(a["CAPD"].fillna(0), 0).where(a["CAPD"].notna(), ""))
    c["RECORDPOSITION"] = c.groupby("SUBJECT").cumcount() + 1
    return finalize(c, "CRSA", ["AELINE", "SYNDROME", "CRSADAT", "MAXTEMP", "TEMPU", "HYPOT",
                                "VASOP", "HYPOX", "O2FLOW", "O2FLOWU", "ICE", "CAPD"])


def make_icu(subj: pd.DataFrame, ae: pd.DataFrame) -> pd.DataFrame:
    """Intensive care unit stays (FORM ICU, FOLDER LOG), admission and discharge dates;
    ICUAELINE the AE line of the CRS/ICANS event that led to the stay (empty otherwise)."""
    i = pd.DataFrame(ICU_STAYS, columns=["SUBJECT", "ADMDAY", "DISDAY", "ICUREAS"])
    i = i.merge(subj[["SUBJECT", "FIRST_INF"]], on="SUBJECT")
    key = pd.Series("CRS", index=i.index)
    i["ICUAELINE"] = syndrome_line(i, ae, "ADMDAY", key).where(i.ICUREAS.str.contains("CRS"), "")
    i = i.assign(FOLDER="LOG", SEQ=900, RECORDPOSITION=1,
                 ICUADMDAT=fmt_date(day_to_date(i["FIRST_INF"], i["ADMDAY"])),
                 ICUDISDAT=fmt_date(day_to_date(i["FIRST_INF"], i["DISDAY"])))
    return finalize(i, "ICU", ["ICUADMDAT", "ICUDISDAT", "ICUREAS", "ICUAELINE"])


# =====================================================================================
# Truth: from the definition, and again from the forms
# =====================================================================================

TRUTH_COLUMNS = [
    "SUBJECT", "SITENUMBER", "COUNTRY", "DOSELVL", "N_INFUSIONS", "FIRST_INF_DATE",
    "LAST_INF_DATE", "CONSENT_DATE", "AGE", "SEX", "RACE", "ETHNIC", "D28_RESPONSE",
    "BEST_RESPONSE", "FIRST_CR_DATE", "RELAPSE_DATE", "DEATH_DATE", "DEATH_CAUSE",
    "DEATH_IN_REMISSION", "LAST_ALIVE_DATE", "LAST_DISEASE_ASSESSMENT_DATE", "EOS_DATE",
    "EOS_STATUS", "EOS_REASON", "MRD_D28", "MRD_D28_VALUE", "FIRST_CD7_COUNT",
    "FIRST_CD7_UNIT", "ADA_STATUS", "ADA_MAX_TITER", "CMAX", "CMAX_UNIT", "TMAX_H", "DLT",
    "MAX_CRS_GRADE", "MAX_ICANS_GRADE"]

ISSUE12_TRUTH = ["DIAGNOSIS_DATE", "DISEASE_STATUS", "CNS_STATUS", "PRIOR_LINES",
                 "PRIOR_HSCT", "PRIOR_HSCT_DATE", "POST_HSCT", "POST_HSCT_DATE",
                 "TOCILIZUMAB", "STEROID", "VASOPRESSOR", "ICU", "BASE_WEIGHT_KG",
                 "BASE_HEIGHT_CM", "BASE_BSA_M2", "TOTAL_VIABLE_CELLS"]


def _std_units(value: pd.Series, site: pd.Series, factor: float) -> pd.Series:
    """The standard-unit value SDTM recovers: site 103's converted raw value (1 decimal)."""
    raw = np.round(value / factor, 1)
    return pd.Series(np.where(site.eq("103"), np.round(raw * factor, 1), value),
                     index=value.index)


def truth_issue12(subj: pd.DataFrame, hist: pd.DataFrame, cm: pd.DataFrame,
                  vstate: pd.DataFrame, prod: pd.DataFrame) -> pd.DataFrame:
    """The issue-12 truth columns from the definition (index SUBJECT).

    DIAGNOSIS_DATE ISO (YYYY-MM when typed partial); PRIOR_*/POST_HSCT from HISTORY;
    TOCILIZUMAB/STEROID/VASOPRESSOR Y when a CM line of that drug exists; ICU Y with an
    ICU stay; BASE_* the last values before lymphodepletion (weight and BSA of the
    Lymphodepletion visit, height of Screening) in kg / cm / m2.
    """
    h = hist.set_index("SUBJECT")
    out = pd.DataFrame(index=subj["SUBJECT"].sort_values())
    iso = fmt_iso(h["DIAG"])
    out["DIAGNOSIS_DATE"] = iso.where(h["DIAG_PARTIAL"].ne("MON"), iso.str[:7])
    out["DISEASE_STATUS"] = h["STATUS"].str.upper()
    out["CNS_STATUS"] = h["CNS"]
    out["PRIOR_LINES"] = h["LINES"].astype(str)
    out["PRIOR_HSCT"] = np.where(h["PRIOR_HSCT"].reindex(out.index).ne(""), "Y", "N")
    out["PRIOR_HSCT_DATE"] = h["PRIOR_HSCT"]
    out["POST_HSCT"] = np.where(h["POST_HSCT"].reindex(out.index).notna(), "Y", "N")
    out["POST_HSCT_DATE"] = fmt_iso(h["POST_HSCT"])
    for col, drugs in [("TOCILIZUMAB", ["TOCI"]), ("STEROID", list(STEROIDS)),
                       ("VASOPRESSOR", ["NOREPI"])]:
        out[col] = np.where(out.index.isin(cm.loc[cm.DRUG.isin(drugs), "SUBJECT"]), "Y", "N")
    icu = {s for s, *_ in ICU_STAYS}
    out["ICU"] = np.where(out.index.isin(list(icu)), "Y", "N")
    v = vstate.set_index("SUBJECT")
    ld = v[v.FOLDER.eq("LD")]
    scr = v[v.FOLDER.eq("SCR")]
    out["BASE_WEIGHT_KG"] = fmt_num(_std_units(ld["V_WEIGHT"], ld["SITENUMBER"], 0.45359237)
                                    .reindex(out.index), 1)
    out["BASE_HEIGHT_CM"] = fmt_num(_std_units(scr["V_HEIGHT"], scr["SITENUMBER"], 2.54)
                                    .reindex(out.index), 1)
    out["BASE_BSA_M2"] = fmt_num(ld["V_BSA"].reindex(out.index), 2)
    tot = prod.assign(V=prod["EXVIAB"].astype(float)).groupby("SUBJECT")["V"].sum()
    out["TOTAL_VIABLE_CELLS"] = fmt_num(tot.reindex(out.index), 1)
    return out


def truth_issue12_from_forms(f: dict[str, pd.DataFrame], index: pd.Index) -> pd.DataFrame:
    """The issue-12 truth columns again, from the form text (Active rows only)."""
    out = pd.DataFrame(index=index)
    dh = f["dh"].set_index("SUBJECT").reindex(index)
    full = parse_date(dh["DIAGDAT"])
    part = dh["DIAGDAT"].str.fullmatch(r"UN-[A-Z]{3}-\d{4}")
    mon = dh["DIAGDAT"].str[3:6].map({m: f"{i + 1:02d}" for i, m in enumerate(MONTHS)})
    out["DIAGNOSIS_DATE"] = fmt_iso(full).where(~part, dh["DIAGDAT"].str[7:] + "-" + mon)
    out["DISEASE_STATUS"] = dh["DISSTAT"].str.upper()
    out["CNS_STATUS"] = dh["CNSSTAT"]
    out["PRIOR_LINES"] = f["pt"].groupby("SUBJECT").size().reindex(index).astype(str)
    assert (out["PRIOR_LINES"] == dh["PRLINES"]).all(), "PT lines disagree with DH PRLINES"
    out["PRIOR_HSCT"] = np.where(dh["PRHSCT"].isin(["Yes", "Y"]), "Y", "N")
    out["PRIOR_HSCT_DATE"] = fmt_iso(parse_date(dh["PRHSCTDAT"]))
    sct = f["sct"].set_index("SUBJECT")
    out["POST_HSCT"] = np.where(index.isin(sct.index), "Y", "N")
    out["POST_HSCT_DATE"] = fmt_iso(parse_date(sct["SCTDAT"]).reindex(index))
    cm = f["conmed"]
    for col, decods in [("TOCILIZUMAB", ["TOCILIZUMAB"]), ("STEROID", ["DEXAMETHASONE"]),
                        ("VASOPRESSOR", ["NOREPINEPHRINE"])]:
        out[col] = np.where(index.isin(cm.loc[cm.CMDECOD.isin(decods), "SUBJECT"]), "Y", "N")
    out["ICU"] = np.where(index.isin(f["icu"]["SUBJECT"]), "Y", "N")
    vs = f["vs"]
    ld = vs[vs.FOLDER.eq("LD")].set_index("SUBJECT").reindex(index)
    scr = vs[vs.FOLDER.eq("SCR")].set_index("SUBJECT").reindex(index)
    w = pd.to_numeric(ld["WEIGHT"])
    out["BASE_WEIGHT_KG"] = fmt_num(np.round(np.where(ld["WEIGHTU"].eq("lb"), w * 0.45359237, w),
                                             1), 1).set_axis(index)
    ht = pd.to_numeric(scr["HEIGHT"])
    out["BASE_HEIGHT_CM"] = fmt_num(np.round(np.where(scr["HEIGHTU"].eq("in"), ht * 2.54, ht),
                                             1), 1).set_axis(index)
    out["BASE_BSA_M2"] = ld["BSA"]
    exf = f["ex"].assign(V=pd.to_numeric(f["ex"]["EXVIAB"]))
    out["TOTAL_VIABLE_CELLS"] = fmt_num(exf.groupby("SUBJECT")["V"].sum().reindex(index), 1)
    return out

TRUTH_COLUMNS = TRUTH_COLUMNS + ISSUE12_TRUTH


def build_truth(subj, vis, ends, state, pk, extra: pd.DataFrame) -> pd.DataFrame:
    """Derive truth.csv from the truth definition (not from the form text).

    Args:
        subj, vis, ends: design frames; state: lab/flow state; pk: PK samples.

    Algorithm:
        1. Declared fields come straight from SUBJECTS.
        2. Dates: infusion days, response-visit dates (FIRST_CR_DATE = first CR/CRh/CRi,
           RELAPSE_DATE = first "Relapse", LAST_DISEASE_ASSESSMENT_DATE = last visit with
           a response), death, EOS; LAST_ALIVE_DATE = death date if dead, else last
           contact.
        3. MRD_D28_VALUE from the MRD table; FIRST_CD7_COUNT = Screening CD7+ count;
           ADA_MAX_TITER = highest confirmed titre (reciprocal); CMAX = highest
           quantifiable concentration, TMAX_H its actual hours after the start of
           infusion 1 (first occurrence), 2 decimals.
    """
    t = subj.set_index("SUBJECT")
    out = pd.DataFrame(index=t.index)
    for col in ["SITENUMBER", "COUNTRY", "DOSELVL", "CONSENT_DATE", "FIRST_INF_DATE", "SEX",
                "RACE", "ETHNIC", "D28_RESPONSE", "BEST_RESPONSE", "DEATH_CAUSE",
                "DEATH_IN_REMISSION", "EOS_STATUS", "EOS_REASON", "MRD_D28", "ADA_STATUS",
                "DLT"]:
        out[col] = t[col]
    out["AGE"] = t["AGE"].astype(str)
    out["N_INFUSIONS"] = t["INF_DAYS"].map(len).astype(str)
    last_day = t["INF_DAYS"].map(max)
    out["LAST_INF_DATE"] = fmt_iso(day_to_date(t["FIRST_INF"], last_day))
    rs = RESPONSES.assign(CODE=RESPONSES["OVRLRESP"].map(RESPONSE_CODES)).merge(
        visit_keys(vis), on=["SUBJECT", "FOLDER"])
    out["FIRST_CR_DATE"] = fmt_iso(rs[rs.CODE.isin(REMISSION)].groupby("SUBJECT")["DATE"].min()
                                   .reindex(out.index))
    out["RELAPSE_DATE"] = fmt_iso(rs[rs.CODE.eq("RELAPSE")].groupby("SUBJECT")["DATE"].min()
                                  .reindex(out.index))
    out["LAST_DISEASE_ASSESSMENT_DATE"] = fmt_iso(
        rs[rs.CODE.notna()].groupby("SUBJECT")["DATE"].max().reindex(out.index))
    e = ends.set_index("SUBJECT")
    out["DEATH_DATE"] = fmt_iso(e["DEATH_DATE"])
    out["EOS_DATE"] = fmt_iso(e["EOS_DATE"])
    out["LAST_ALIVE_DATE"] = fmt_iso(e["DEATH_DATE"].fillna(e["LSTCON_DATE"]))
    d28 = MRD[MRD.FOLDER.eq("D28")].set_index("SUBJECT")["MRDRES"]
    out["MRD_D28_VALUE"] = d28.reindex(out.index).fillna("")
    scr = state[state.FOLDER.eq("SCR")].set_index("SUBJECT")["V_CD7"]
    out["FIRST_CD7_COUNT"] = fmt_num(scr.reindex(out.index), 1)
    out["FIRST_CD7_UNIT"] = "cells/uL"
    titre = pd.to_numeric(ADA_POSITIVE["ADATITER"].str.replace("1:", "", regex=False),
                          errors="coerce")
    mx = ADA_POSITIVE.assign(T=titre).groupby("SUBJECT")["T"].max().reindex(out.index)
    out["ADA_MAX_TITER"] = mx.map(lambda v: "" if pd.isna(v) else str(int(v)))
    q = pk[pk.CONC.notna()].sort_values(["SUBJECT", "CONC", "HOURS"],
                                        ascending=[True, False, True])
    top = q.groupby("SUBJECT").head(1).set_index("SUBJECT").reindex(out.index)
    out["CMAX"] = fmt_num(top["CONC"], 2)
    out["CMAX_UNIT"] = "cells/uL"
    out["TMAX_H"] = fmt_num(top["HOURS"], 2)
    out["MAX_CRS_GRADE"] = t["MAX_CRS_GRADE"].astype(str)
    out["MAX_ICANS_GRADE"] = t["MAX_ICANS_GRADE"].astype(str)
    out = out.join(extra)                                  # issue-12 columns
    out = out.reset_index().sort_values("SUBJECT").reset_index(drop=True)
    return out[TRUTH_COLUMNS].fillna("").astype(str)


def truth_from_forms(forms: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Derive the per-subject truth a second time, from the raw form text only.

    Args:
        forms: form OID (lower case) -> the text frame as written to CSV.

    Algorithm:
        1. Deleted rows are dropped (RECSTATUS = "Deleted").
        2. Synonyms mapped the way a spec would: SEX (Male/male/M/F/Female/...),
           RACE/ETHNIC upper-cased, OVRLRESP via RESPONSE_CODES, titres "1:N" or "N".
        3. Each truth field from its form: EX (infusions), IC (consent), RS (responses:
           D28, best through Day 365 with CR > CRh > CRi > PR > NR > PD, first remission,
           relapse, last assessment), DTH, EOS (last contact), MRD (Day 28), FC (first
           CD7+ absolute count by date/time), ADA (status rules below), PK with EX (Cmax,
           Tmax), AE (DLT, max CRS/ICANS grade, deleted lines ignored).
        4. ADA status: baseline confirmed positive -> BOOSTED if a later titre is >= 4 x
           the baseline titre, else PRE-EXISTING; baseline negative -> TREATMENT-EMERGENT
           if any later sample is confirmed positive, else NEGATIVE.
    """
    f = {k: v[v.RECSTATUS.eq("Active")].copy() for k, v in forms.items()}
    dm = f["dm"].set_index("SUBJECT")
    out = pd.DataFrame(index=dm.index)
    out["SITENUMBER"] = dm["SITENUMBER"]
    out["COUNTRY"] = dm["COUNTRY"]
    out["AGE"] = dm["AGE"]
    out["SEX"] = dm["SEX"].str.upper().str[0]
    out["RACE"] = dm["RACE"].str.upper()
    out["ETHNIC"] = dm["ETHNIC"].str.upper()
    ex = f["ex"].assign(D=parse_date(f["ex"]["EXDAT"]), N=f["ex"]["EXNUM"].astype(int))
    g = ex.groupby("SUBJECT")
    out["DOSELVL"] = g["DOSELVL"].first()
    out["N_INFUSIONS"] = g.size().astype(str)
    out["FIRST_INF_DATE"] = fmt_iso(g["D"].min())
    out["LAST_INF_DATE"] = fmt_iso(g["D"].max())
    out["CONSENT_DATE"] = fmt_iso(parse_date(f["ic"].set_index("SUBJECT")["ICDAT"]))
    first_inf = g["D"].min()
    rs = f["rs"].assign(D=parse_date(f["rs"]["RSDAT"]),
                        CODE=f["rs"]["OVRLRESP"].map(RESPONSE_CODES))
    assert rs.loc[rs.OVRLRESP.ne(""), "CODE"].notna().all(), "unknown OVRLRESP spelling"
    rs = rs[rs.CODE.notna()]
    out["D28_RESPONSE"] = rs[rs.FOLDER.eq("D28")].set_index("SUBJECT")["CODE"]
    win = rs[rs.D <= rs.SUBJECT.map(first_inf) + pd.Timedelta(days=364)]
    rank = win.assign(R=win.CODE.map(RESPONSE_RANK)).dropna(subset=["R"])
    best = rank.sort_values(["SUBJECT", "R"]).groupby("SUBJECT")["CODE"].first()
    out["BEST_RESPONSE"] = best
    out["FIRST_CR_DATE"] = fmt_iso(rs[rs.CODE.isin(REMISSION)].groupby("SUBJECT")["D"].min()
                                   .reindex(out.index))
    out["RELAPSE_DATE"] = fmt_iso(rs[rs.CODE.eq("RELAPSE")].groupby("SUBJECT")["D"].min()
                                  .reindex(out.index))
    last_rs = rs.sort_values(["SUBJECT", "D"]).groupby("SUBJECT").tail(1).set_index("SUBJECT")
    out["LAST_DISEASE_ASSESSMENT_DATE"] = fmt_iso(last_rs["D"].reindex(out.index))
    dth = f["dth"].set_index("SUBJECT")
    death = parse_date(dth["DTHDAT"]).reindex(out.index)
    out["DEATH_DATE"] = fmt_iso(death)
    out["DEATH_CAUSE"] = dth["DTHCAUS"].str.upper().reindex(out.index).fillna("")
    in_rem = last_rs["CODE"].reindex(out.index).isin(REMISSION)
    out["DEATH_IN_REMISSION"] = np.where(death.notna(), np.where(in_rem, "Y", "N"), "")
    eos = f["eos"].set_index("SUBJECT")
    out["EOS_DATE"] = fmt_iso(parse_date(eos["EOSDAT"]))
    out["EOS_STATUS"] = eos["EOSSTAT"].str.upper()
    out["EOS_REASON"] = eos["EOSREAS_STD"]
    out["LAST_ALIVE_DATE"] = fmt_iso(death.fillna(parse_date(eos["LSTCONDAT"])))
    mrd = f["mrd"][f["mrd"].FOLDER.eq("D28")].set_index("SUBJECT")
    out["MRD_D28"] = mrd["MRDSTAT"].str.upper().reindex(out.index).fillna("")
    out["MRD_D28_VALUE"] = mrd["MRDRES"].reindex(out.index).fillna("")
    fc = f["fc"][f["fc"].FCTEST.eq("CD7+ cells absolute count")]
    fc = fc.assign(D=parse_date(fc["FCDAT"]), M=parse_minutes(fc["FCTIM"]))
    first_fc = fc.sort_values(["SUBJECT", "D", "M"]).groupby("SUBJECT").head(1)
    first_fc = first_fc.set_index("SUBJECT")
    assert first_fc["FCRESU"].isin(["cells/µL", "cells/uL"]).all()
    out["FIRST_CD7_COUNT"] = first_fc["FCRES"]
    out["FIRST_CD7_UNIT"] = "cells/uL"
    ada = f["ada"].assign(T=pd.to_numeric(f["ada"]["ADATITER"].str.replace("1:", "",
                                                                          regex=False),
                                          errors="coerce"))
    ada["POS"] = ada["ADACONF"].eq("Positive")
    base = ada[ada.FOLDER.eq("D1")].set_index("SUBJECT")
    post = ada[ada.FOLDER.ne("D1")]
    post_max = post.groupby("SUBJECT")["T"].max().reindex(out.index)
    post_pos = post.groupby("SUBJECT")["POS"].any().reindex(out.index).fillna(False)
    b_pos = base["POS"].reindex(out.index).fillna(False)
    b_t = base["T"].reindex(out.index)
    out["ADA_STATUS"] = np.select(
        [b_pos & (post_max >= 4 * b_t), b_pos, post_pos],
        ["BOOSTED", "PRE-EXISTING", "TREATMENT-EMERGENT"], "NEGATIVE")
    mx = ada.groupby("SUBJECT")["T"].max().reindex(out.index)
    out["ADA_MAX_TITER"] = mx.map(lambda v: "" if pd.isna(v) else str(int(v)))
    pk = f["pk"].assign(C=pd.to_numeric(f["pk"]["PKRES"], errors="coerce"),
                        D=parse_date(f["pk"]["PKDAT"]), M=parse_minutes(f["pk"]["PKTIM"]))
    ex1 = ex[ex.N.eq(1)].assign(M=parse_minutes(ex[ex.N.eq(1)]["EXSTTIM"])).set_index(
        "SUBJECT")
    start = ex1["D"] + pd.to_timedelta(ex1["M"], unit="min")
    pk["H"] = ((pk["D"] + pd.to_timedelta(pk["M"], unit="min") - pk.SUBJECT.map(start))
               .dt.total_seconds() / 3600)
    q = pk[pk.C.notna()].sort_values(["SUBJECT", "C", "H"], ascending=[True, False, True])
    top = q.groupby("SUBJECT").head(1).set_index("SUBJECT").reindex(out.index)
    out["CMAX"] = top["PKRES"]
    out["CMAX_UNIT"] = "cells/uL"
    out["TMAX_H"] = fmt_num(top["H"], 2).set_axis(top.index)
    ae = f["ae"]
    dlt = set(ae.loc[ae.AEDLT.eq("Yes"), "SUBJECT"])
    out["DLT"] = np.where(out.index.isin(list(dlt)), "Y", "N")
    crs = pd.to_numeric(ae["AECRSGR"], errors="coerce").groupby(ae["SUBJECT"]).max()
    icans = pd.to_numeric(ae["AEICANSGR"], errors="coerce").groupby(ae["SUBJECT"]).max()
    out["MAX_CRS_GRADE"] = crs.reindex(out.index).fillna(0).astype(int).astype(str)
    out["MAX_ICANS_GRADE"] = icans.reindex(out.index).fillna(0).astype(int).astype(str)
    out = out.join(truth_issue12_from_forms(f, out.index))
    out = out.reset_index()
    return out[TRUTH_COLUMNS].fillna("").astype(str)


def check_agreement(truth: pd.DataFrame, forms: dict[str, pd.DataFrame]) -> None:
    """Raise AssertionError listing every truth field the forms do not reproduce."""
    derived = truth_from_forms(forms)
    a = truth.sort_values("SUBJECT").reset_index(drop=True)
    b = derived.sort_values("SUBJECT").reset_index(drop=True)
    assert list(a.SUBJECT) == list(b.SUBJECT), "truth and forms have different subjects"
    rows, cols = np.nonzero((a != b).to_numpy())
    if len(rows):
        lines = [f"{a.SUBJECT[i]} {a.columns[j]}: truth={a.iat[i, j]!r} forms={b.iat[i, j]!r}"
                 for i, j in zip(rows, cols)]
        raise AssertionError("truth and forms disagree:\n" + "\n".join(lines))


def check_design(truth: pd.DataFrame, forms: dict[str, pd.DataFrame]) -> None:
    """Assert the study-design facts the brief fixes (raises AssertionError)."""
    t = truth
    assert len(t) == 9 and t.DOSELVL.value_counts().eq(3).all()
    assert t.AGE.astype(int).between(2, 17).all()
    assert (t.N_INFUSIONS.astype(int) > 1).sum() >= 3 and t.N_INFUSIONS.eq("3").any()
    assert t.DEATH_DATE.ne("").sum() >= 3
    assert set(t.EOS_REASON) == {"COMPLETED", "DEATH", "WITHDRAWAL BY PARENT/GUARDIAN",
                                 "LOST TO FOLLOW-UP"}
    assert {"CR", "CRh", "CRi", "PR", "NR"} <= set(t.D28_RESPONSE)
    assert t.DEATH_IN_REMISSION.eq("Y").any() and t.RELAPSE_DATE.ne("").any()
    resp = t[t.D28_RESPONSE.isin(["CR", "CRh", "CRi", "PR"])]
    assert {"NEGATIVE", "POSITIVE"} <= set(resp.MRD_D28)
    assert set(t.ADA_STATUS) == {"NEGATIVE", "TREATMENT-EMERGENT", "BOOSTED", "PRE-EXISTING"}
    first = pd.to_datetime(t.FIRST_INF_DATE)
    assert pd.to_datetime(t.CONSENT_DATE).min() >= FIRST_CONSENT_MIN
    assert (first + pd.Timedelta(days=364 + 10)).max() < DATA_CUT
    # every typed date is valid text, within consent .. data cut, and before last contact
    eos = forms["eos"].set_index("SUBJECT")
    last = pd.concat([parse_date(eos["LSTCONDAT"]), parse_date(eos["EOSDAT"])],
                     axis=1).max(axis=1)
    consent = pd.to_datetime(t.set_index("SUBJECT")["CONSENT_DATE"])
    for name, df in forms.items():                       # loop over forms and date columns
        for col in [c for c in df.columns if c.endswith("DAT") and c != "BRTHDAT"]:
            txt = df[col]
            ok = txt.eq("") | txt.str.fullmatch(r"(\d{2}|UN)-([A-Z]{3}|UNK)-\d{4}")
            assert ok.all(), f"{name}.{col}: malformed date"
            d = parse_date(txt)
            assert (d.isna() | (d <= DATA_CUT)).all(), f"{name}.{col} after data cut"
            if (name, col) in HISTORY_DATES:              # disease history: before consent
                assert (d.isna() | (d < df.SUBJECT.map(consent))).all(), f"{name}.{col}"
                continue
            assert (d.isna() | (d >= df.SUBJECT.map(consent))).all(), f"{name}.{col} < consent"
            assert (d.isna() | (d <= df.SUBJECT.map(last))).all(), f"{name}.{col} > last contact"
        for col in [c for c in df.columns if c.endswith("TIM")]:
            assert (df[col].eq("") | df[col].str.fullmatch(r"([01]\d|2[0-3]):[0-5]\d")).all()
    lb_scr = forms["lb"][forms["lb"].FOLDER.eq("SCR")]
    ic_tim = forms["ic"].set_index("SUBJECT")["ICTIM"]
    assert (lb_scr.LBTIM > lb_scr.SUBJECT.map(ic_tim)).all(), "screening labs before consent"
    lb_ex = forms["lb"].merge(forms["ex"][["SUBJECT", "EXDAT", "EXSTTIM"]],
                              left_on=["SUBJECT", "LBDAT"], right_on=["SUBJECT", "EXDAT"])
    assert (lb_ex.LBTIM < lb_ex.EXSTTIM).all(), "infusion-day labs after the infusion"
    pk = forms["pk"]
    assert pk.loc[pk.PKTPT.eq("Pre-dose"), "PKRES"].isin(["BLQ", "<LLOQ"]).all()
    peak = pk.merge(t[["SUBJECT", "CMAX"]], left_on=["SUBJECT", "PKRES"],
                    right_on=["SUBJECT", "CMAX"])
    assert peak.PKTPT.isin(["Day 7", "Day 10", "Day 14"]).all(), "expansion peak not Day 7-14"
    assert forms["ae"].RECSTATUS.eq("Deleted").sum() == 3
    n_ae = forms["ae"][forms["ae"].RECSTATUS.eq("Active")].groupby("SUBJECT").size()
    assert n_ae.between(3, 12).all() and len(n_ae) == 9
    # one code per MedDRA name and one name per code, at every level
    ae = forms["ae"]
    for name, code in [("AELLT", "AELLTCD"), ("AEDECOD", "AEPTCD"), ("AEHLT", "AEHLTCD"),
                       ("AEHLGT", "AEHLGTCD"), ("AESOC", "AESOCCD")]:
        pairs = ae[[name, code]].drop_duplicates()
        assert pairs[name].is_unique and pairs[code].is_unique, name
    # DM age agrees with complete birth dates
    dm = forms["dm"].set_index("SUBJECT")
    bd = parse_date(dm["BRTHDAT"])
    ic = parse_date(forms["ic"].set_index("SUBJECT")["ICDAT"])
    years = ic.dt.year - bd.dt.year - ((ic.dt.month * 100 + ic.dt.day)
                                       < (bd.dt.month * 100 + bd.dt.day)).astype(int)
    assert (bd.isna() | (years == dm["AGE"].astype(int))).all()


# =====================================================================================
# Driver
# =====================================================================================


def generate() -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Build the truth table and every form from the truth definition.

    Returns:
        (truth, forms) where forms maps the lower-case form OID to its text frame.
    """
    master = np.random.default_rng(SEED)
    streams = dict(zip(["schedule", "ic", "ld", "ex", "labs", "pk", "vs", "crsa", "exlot"],
                       master.spawn(9)))
    subj = subjects_frame()
    vis = build_schedule(subj, streams["schedule"])
    ends = end_days(subj, vis)
    ex = infusions(subj, streams["ex"])
    ae = ae_frame(subj)
    state = lab_state(subj, vis, ae, ex, streams["labs"])
    pk = pk_samples(subj, vis, ex, streams["pk"])
    hist = history_frame(subj)
    vstate = vs_state(subj, vis, ex, ae, streams["vs"])
    cm = cm_frame(subj, ends)
    prod = product(ex, streams["exlot"])
    forms = {
        "dm": make_dm(subj),
        "ic": make_ic(subj, streams["ic"]),
        "ld": make_ld(subj, vis, streams["ld"]),
        "ex": make_ex(ex, vis, prod),
        "ae": make_ae(ae, subj),
        "dth": make_dth(subj, ends),
        "eos": make_eos(subj, ends),
        "sv": make_sv(vis),
        "rs": make_rs(vis),
        "mrd": make_mrd(vis),
        "lb": make_lb(state),
        "fc": make_fc(state, subj),
        "pk": make_pk(pk),
        "ada": make_ada(subj, vis),
        "vs": make_vs(vstate),
        "conmed": make_cm(cm, ae),
        "pt": make_pt(pt_frame(hist)),
        "dh": make_dh(hist),
        "sct": make_sct(hist),
        "icu": make_icu(subj, ae),
        "crsa": make_crsa(crsa_frame(ae, subj, vstate, streams["crsa"])),
    }
    truth = build_truth(subj, vis, ends, state, pk, truth_issue12(subj, hist, cm, vstate, prod))
    check_agreement(truth, forms)
    check_design(truth, forms)
    return truth, forms


def write(truth: pd.DataFrame, forms: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    """Write ``<form>.csv`` and ``truth.csv`` (UTF-8, ``\\n``, minimal quoting)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in {**forms, "truth": truth}.items():
        path = out / f"{name}.csv"
        df.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="directory to write the CSV files to (default: raw/)")
    args = parser.parse_args(argv)
    truth, forms = generate()
    paths = write(truth, forms, args.out)
    print(f"wrote {len(paths)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
