#!/usr/bin/env python
"""Extract the study's versioned subset of CDISC Controlled Terminology (maintenance script).

The toolkit never reads the shared CT packages at run time: this script is run by a
maintainer, reads the packages from the path it is given, and writes the subset the
study's specs use as plain data under ``specs/ct/``:

- ``sdtm-ct.yaml``: SDTM CT, version claimed 2024-03-29;
- ``adam-ct.yaml``: ADaM CT 2026-03-27;
- ``README.md``: what was kept, where every value came from, terms without a C-code.

Usage (from the project root)::

    python tools/extract_ct.py --shared ../shared --out specs/ct

The input of the script is the ``SUBSET_YAML`` block below (which codelists, which terms,
what each is for, and the findings about things CDISC CT does not have). Change it and
run the script again; never edit the YAML files by hand.

How SDTM values are taken (the two SDTM packages we have are complementary):

1. ``sdtmct-2024-03-29.json`` is the version we claim. It only gives, per codelist
   C-code, ``extensible`` and a flat ``allowed_terms`` list in which every term appears
   as *preferred term, submission value, synonyms...*. It decides which terms exist,
   ``extensible`` and the decode check.
2. ``sdtmct-2015-12-18.json`` has the full structure. It gives codelist short names and
   names, term C-codes (NCI C-codes of terms are stable across versions) and synonyms
   (a synonym is kept only if it is still listed under the codelist in 2024).
3. A term requested that exists only in 2024 is kept with ``code: null`` (we never
   invent a C-code); a term that is in 2015 but no longer in 2024, or in neither, is an
   error.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import yaml

try:
    from cdisc.errors import CdiscError, InputError, Problem, SpecError
except ImportError:  # run from a checkout where the package is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from cdisc.errors import CdiscError, InputError, Problem, SpecError


SDTM_2015 = "sdtmct-2015-12-18.json"
SDTM_2024 = "sdtmct-2024-03-29.json"
ADAM_2026 = "adamct-2026-03-27.json"

# ---------------------------------------------------------------------------------------
# Input: which codelists and terms the study uses.
#
# Per codelist (key = codelist submission value, the short name specs refer to):
#   use:      what the codelist is for (SDTM/ADaM variables), shown in README.md
#   terms:    "all" (every 2015 term still in 2024) or a list of submission values
#   plus:     with terms: all, extra terms that exist only in 2024
#   names:    on a --TESTCD codelist, the paired --TEST codelist (decode = test name)
#   codes:    on a --TEST codelist, the paired --TESTCD codelist (terms follow it)
#   code/name + new_in_2024: true for a codelist our 2015 file does not have; its short
#             name and name are not in our data (see README) and all its terms get null.
#   decodes:  {value: decode} where the 2015 preferred term no longer precedes the value
#             in 2024 or the term is only in 2024 (read off the 2024 list by a human and
#             checked by the script); on a --TESTCD codelist, {value: test name} overrides
#   notes:    findings for README.md
# ---------------------------------------------------------------------------------------
SUBSET_YAML = r"""
sdtm:
  package: SDTM CT 2024-03-29
  codelists:
    ACN:
      use: AE.AEACN (action taken with study treatment)
      terms: all
      plus: [DOSE RATE REDUCED]
      decodes: {DOSE RATE REDUCED: Dose Rate Reduced}
    AESEV:
      use: AE.AESEV
      terms: all
    AGEU:
      use: DM.AGEU
      terms: all
    ARMNULRS:
      use: DM.ARMNRS (reason ARM/ACTARM is null, SDTMIG 3.4 DM)
      code: C142179
      name: Arm Null Reason
      new_in_2024: true
      terms: ["ASSIGNED, NOT TREATED", NOT ASSIGNED, SCREEN FAILURE, UNPLANNED TREATMENT]
      decodes:
        "ASSIGNED, NOT TREATED": Subject Assigned to Arm But Not Treated
        NOT ASSIGNED: Subject Not Assigned to Arm
        SCREEN FAILURE: Trial Screen Failure
        UNPLANNED TREATMENT: Subject Received Unplanned Treatment
    DICTNAM:
      use: TS.TSVCDREF / define.xml external dictionaries (MedDRA, WHODrug, CTCAE)
      terms: [CDISC CT, CTCAE, D-U-N-S NUMBER, LOINC, MED-RT, MedDRA, SNOMED, UNII, WHODD]
      decodes: {CTCAE: Common Terminology Criteria for Adverse Events,
                "CDISC CT": Clinical Data Interchange Standards Consortium Controlled Terminology,
                D-U-N-S NUMBER: Data Universal Numbering System, MED-RT: Medication Reference Terminology,
                UNII: Substance Registration System-Unique Ingredient Identifier}
    DOMAIN:
      use: --DOMAIN, RDOMAIN (SUPP--, CO, RELREC)
      terms: [AE, CM, CO, CP, DD, DM, DS, EC, EX, FA, IE, IS, LB, MH, PC, PP, PR, RS, SE, SV,
              TA, TE, TI, TS, TV, VS]
      decodes:
        CP: Cell Phenotype Findings Domain
        EC: Exposure as Collected Domain
        IE: Inclusion Exclusion Criteria Not Met Domain
    DSCAT:
      use: DS.DSCAT
      terms: all
      decodes: {OTHER EVENT: Non-Protocol Disposition Event}
    EPOCH:
      use: EPOCH in every domain; TA.EPOCH; SE/SV
      terms: all
      decodes:
        FOLLOW-UP: Follow-Up Epoch
        LONG-TERM FOLLOW-UP: Long-term Follow-up Epoch
        SCREENING: Screening Epoch
    ETHNIC:
      use: DM.ETHNIC
      terms: all
      decodes: {NOT REPORTED: Not Reported}
    EVAL:
      use: RS.RSEVAL, IS/LB --EVAL
      terms: [ADJUDICATION COMMITTEE, INDEPENDENT ASSESSOR, INVESTIGATOR, VENDOR]
    FREQ:
      use: EX.EXDOSFRQ, CM.CMDOSFRQ, TS DOSFRQ
      terms: [BID, CONTINUOUS, EVERY 2 WEEKS, EVERY WEEK, ONCE, PRN, Q12H, Q6H, Q8H, QD,
              QID, QOD, TID, UNKNOWN]
      decodes: {PRN: As Needed}
    FRM:
      use: EX.EXDOSFRM, CM.CMDOSFRM, TS DOSFRM
      terms: [CAPSULE, INJECTION, "INJECTION, POWDER, LYOPHILIZED, FOR SOLUTION",
              "INJECTION, SOLUTION", "INJECTION, SUSPENSION", SOLUTION, SUSPENSION, TABLET]
    IECAT:
      use: IE.IECAT, TI.IECAT
      terms: all
    INTMODEL:
      use: TS INTMODEL (TSVAL)
      terms: all
    INTTYPE:
      use: TS INTTYPE (TSVAL)
      terms: all
    ISTESTCD:
      use: IS.ISTESTCD (anti-drug antibodies against the CAR-NK product)
      names: ISTEST
      terms: [ADA_BAB, ADA_NAB]
    ISTEST:
      use: IS.ISTEST
      codes: ISTESTCD
    LBSTRESC:
      use: LB.LBSTRESC for qualitative results (e.g. MRD positive/negative)
      terms: all
      plus: [DETECTED, NOT DETECTED]
      decodes: {DETECTED: Detected Finding, NOT DETECTED: Not Detected}
    LBTESTCD:
      use: LB.LBTESTCD (haematology, chemistry, coagulation, CRS/HLH markers incl. IL-6 and IFN-gamma, leukaemic cells)
      names: LBTEST
      terms: [ALT, APTT, AST, BILI, BLAST, BLASTLE, BLSTLY, BLSTLYLE, CREAT, CRP, DDIMER,
              FERRITIN, FIBRINO, HGB, IFNG, INR, INTLK6, LDH, LEUKCE, LYM, LYMLE, NEUT, NEUTLE,
              NKCE, PLAT, PT, TRIG, WBC]
    LBTEST:
      use: LB.LBTEST
      codes: LBTESTCD
    LOC:
      use: --LOC (bone marrow aspiration site, extramedullary disease sites, infusion site)
      terms: [ARM, BONE MARROW, CENTRAL NERVOUS SYSTEM, ILIAC CREST, MEDIASTINUM, STERNUM,
              TESTIS]
    METHOD:
      use: LB.LBMETHOD, IS.ISMETHOD, PC.PCMETHOD (flow cytometry, PCR, NGS for MRD)
      terms: [DIGITAL PCR ARRAY, ELECTROCHEMILUMINESCENCE IMMUNOASSAY, ELISA, FLOW CYTOMETRY,
              IMMUNOASSAY, LIGHT MICROSCOPY, MICROSCOPY, NEXT GENERATION SEQUENCING,
              POLYMERASE CHAIN REACTION, REAL-TIME POLYMERASE CHAIN REACTION ASSAY]
      decodes: {NEXT GENERATION SEQUENCING: Next Generation Sequencing}
    NCOMPLT:
      use: DS.DSDECOD for disposition events (completion / reason for non-completion)
      terms: all
      plus: [NEVER DOSED, WITHDRAWAL OF ASSENT, WITHDRAWAL OF CONSENT]
      decodes:
        DEATH: Dead
        LOST TO FOLLOW-UP: Lost To Follow-Up
        NEVER DOSED: Never Dosed
        PREGNANCY: Pregnant Subject
        PROTOCOL DEVIATION: Protocol Deviation
        WITHDRAWAL OF ASSENT: Withdrawal of Assent
        WITHDRAWAL OF CONSENT: Study Consent Withdrawn
    ND:
      use: --STAT
      terms: all
    NRIND:
      use: LB.LBNRIND, IS.ISNRIND
      terms: all
    NY:
      use: Y/N variables (AESER, AESDTH, ..., IE flags), TS indicator parameters
      terms: all
    ONCRSCAT:
      use: RS.RSCAT (response criteria used)
      terms: [NCCN ALL MRD 2014, PONTE-DI-LEGNO CONSORTIUM 2022, PROTOCOL DEFINED RESPONSE CRITERIA]
      decodes:
        NCCN ALL MRD 2014: NCCN ALL MRD 2014 Oncology Response Criteria
        PONTE-DI-LEGNO CONSORTIUM 2022: Ponte-di-Legno Consortium 2022
        PROTOCOL DEFINED RESPONSE CRITERIA: Protocol Defined Response Criteria
    ONCRSR:
      use: RS.RSORRES/RSSTRESC (leukaemia response, marrow and CNS status, MRD)
      terms: [CNS1, CNS2, CNS3, CR, CRi, IMMUNOPHENOTYPIC CR, M1, M2, M3, MOLECULAR CR,
              MORPHOLOGIC CR, MORPHOLOGIC CRi, MORPHOLOGIC LEUKEMIA-FREE STATE, MRD RELAPSE,
              NE, NEGATIVE, NON-QUANTIFIABLE MRD POSITIVITY, NR, PD, POSITIVE, PR,
              QUANTIFIABLE MRD POSITIVITY, RELAPSED DISEASE, RELAPSED DISEASE FROM CR, SD,
              TREATMENT FAILURE]
      decodes:
        CNS1: CNS 1
        CNS2: CNS 2
        CNS3: CNS 3
        M1: M1 Marrow
        M2: M2 Marrow
        M3: M3 Marrow
        MRD RELAPSE: Measurable Residual Disease Relapse
        NEGATIVE: Negative Finding
        NON-QUANTIFIABLE MRD POSITIVITY: Non-Quantifiable Measurable Residual Disease Positivity
        POSITIVE: Positive Finding
        QUANTIFIABLE MRD POSITIVITY: Quantifiable Measurable Residual Disease Positivity
    ONCRTSCD:
      use: RS.RSTESTCD
      names: ONCRTS
      terms: [BESTRESP, BMIVLIND, BMRSTAT, CLINRESP, CNSSTAT, DRCRIND, EMDRESP, HEMARESP,
              MRDIND, MRDRESP, MRPHRESP, OVRLRESP, PBLTIND]
    ONCRTS:
      use: RS.RSTEST
      codes: ONCRTSCD
    OTHEVENT:
      use: DS.DSDECOD for other (non-protocol) disposition events
      code: C150811
      name: Other Disposition Event Response
      new_in_2024: true
      terms: [SITE TRANSFER, SUBJECT ENTERED ADDITIONAL RESEARCH STUDY, TREATMENT UNBLINDED,
              WITHDRAWAL OF CONSENT FROM PROTOCOL-SPECIFIED ACTIVITY]
      decodes:
        SITE TRANSFER: Study Site Transfer
        SUBJECT ENTERED ADDITIONAL RESEARCH STUDY: Subject Entered Additional Research Study
        TREATMENT UNBLINDED: Unblinding
        WITHDRAWAL OF CONSENT FROM PROTOCOL-SPECIFIED ACTIVITY: Withdrawal of Consent From Protocol-Specified Activity
    OUT:
      use: AE.AEOUT
      terms: all
      decodes:
        NOT RECOVERED/NOT RESOLVED: Not Recovered from Adverse Event
        RECOVERED/RESOLVED: Recovered from Adverse Event
        RECOVERED/RESOLVED WITH SEQUELAE: Recovered from Adverse Event with Sequelae
    PKPARMCD:
      use: PP.PPTESTCD (cellular kinetics of the CAR-NK cells)
      names: PKPARM
      terms: [AUCINT, AUCLST, CLST, CMAX, TLST, TMAX]
    PKPARM:
      use: PP.PPTEST
      codes: PKPARMCD
    PKUNIT:
      use: PP.PPORRESU/PPSTRESU (transgene copies by qPCR, time)
      terms: ["%", DNA copies/ug, copies/ug, day, "day*ng/mL", h, "h*DNA copies/ug",
              "h*ng/mL", ng/mL]
      decodes:
        DNA copies/ug: DNA Copies Per Microgram
        copies/ug: Copies per Microgram
        "h*DNA copies/ug": Hours Times DNA Copies Per Microgram
    PROTMLST:
      use: DS.DSDECOD for protocol milestones
      terms: all
      plus: [ELIGIBILITY CRITERIA MET, ELIGIBILITY CRITERIA NOT MET, ENTERED INTO TRIAL,
             INFORMED ASSENT OBTAINED]
      decodes:
        ELIGIBILITY CRITERIA MET: Eligibility Criteria Met By Subject
        ELIGIBILITY CRITERIA NOT MET: Did Not Meet Eligibility Criteria
        ENTERED INTO TRIAL: Subject Entered Into Trial
        INFORMED ASSENT OBTAINED: Informed Assent
    RACE:
      use: DM.RACE
      terms: all
      plus: [NOT REPORTED, OTHER, UNKNOWN]
      decodes:
        BLACK OR AFRICAN AMERICAN: Black or African American
        NOT REPORTED: Not Reported
        OTHER: Other
        UNKNOWN: Unknown
    RELTYPE:
      use: RELREC.RELTYPE
      terms: all
      decodes: {MANY: Many Relationship Type}
    ROUTE:
      use: EX.EXROUTE, CM.CMROUTE, TS ROUTE
      terms: [INTRAMUSCULAR, INTRATHECAL, INTRAVENOUS, INTRAVENOUS BOLUS, INTRAVENOUS DRIP,
              ORAL, SUBCUTANEOUS]
    SEX:
      use: DM.SEX
      terms: all
      plus: [INTERSEX]
      decodes: {INTERSEX: Intersex}
    SEXPOP:
      use: TS SEXPOP (TSVAL)
      terms: all
    SPECTYPE:
      use: LB.LBSPEC, IS.ISSPEC, PC.PCSPEC
      terms: [BLOOD, BONE MARROW, CEREBROSPINAL FLUID, PERIPHERAL BLOOD MONONUCLEAR CELL,
              PLASMA, SERUM, URINE, VENOUS BLOOD]
    STENRF:
      use: --STRF, --ENRF, --STRTPT/--ENRTPT
      terms: all
    STYPE:
      use: TS STYPE (TSVAL)
      terms: all
    TBLIND:
      use: TS TBLIND (TSVAL)
      terms: all
    TCNTRL:
      use: TS TCNTRL (TSVAL)
      terms: all
    TINDTP:
      use: TS TINDTP (TSVAL)
      terms: all
    TPHASE:
      use: TS TPHASE (TSVAL)
      terms: all
      plus: [PHASE IA TRIAL, PHASE IB TRIAL]
      decodes: {PHASE IA TRIAL: Phase Ia Trial, PHASE IB TRIAL: Phase Ib Trial}
    TSPARMCD:
      use: TS.TSPARMCD (every parameter CDISC defines)
      names: TSPARM
      terms: all
      plus: [APPLCNT, BIOSPRET, CITNSTDY, CMSPSTAT, CONEMAIL, CONMAIL, CONNAME, CONPHONE,
             CONROLE, CSRARDTC, CTAUG, DGFCRIT, DMCIND, DOSFRM, DOSRGM, EMAILXML, EMPIPDCN,
             EPDISIND, EPIDEMIC, EURSBIND, EVSNDID, EVSNDORG, EXPARECN, EXPASTAT, EXTTIND,
             FDATCHSP, KEYWORD, MSEUTIND, NCOHORT, NUMSEUST, OBJEXP, OBSMODEL, OBSTIMP,
             OBSTPOPD, OBSTSMM, OBSTSMMD, ONGOSIND, OUTMSADD, PASSIND, PIPIND, PLNTRDUR,
             PROTRSK, PTRTDUR, PUBMEDID, RDIND, RESUBLTR, RTSPCDES, RXMLCIND, SDTIGVER,
             SDTMDVER, SDTMVER, SDXMLIND, SPREFID, SREVIND, SRNCAIND, SSEUTIND, SSTDYDTL,
             SSTDYIND, THERAREA, TIGVER, TRGFUDUR, URLSTDY, URLSTDYD]
    TSPARM:
      use: TS.TSPARM
      codes: TSPARMCD
    TTYPE:
      use: TS TTYPE (TSVAL)
      terms: all
      plus: [DOSE FINDING]
      decodes: {DOSE FINDING: Dose Finding Study}
    UNIT:
      use: --ORRESU/--STRESU, EX.EXDOSU, durations
      terms: ["%", "10^12/L", "10^6 Therapeutic Cells", "10^6/L", "10^6/kg", "10^9/L", C,
              DAYS, HOURS, L, MONTHS, U/L, WEEKS, YEARS, cm, copies/mL, copies/ug, g, g/L,
              g/dL, kg, kg/m2, m2, mL, mL/min, mL/min/1.73 m2, mg, mg/L, mg/dL, mg/kg, mg/m2,
              min, mmol/L, ng/L, s, titer, ug, ug/L, umol/L]
      decodes:
        "10^6 Therapeutic Cells": Million Therapeutic Cells Dosing Unit
        "10^6/kg": Million per Kilogram
        copies/ug: Copies per Microgram
        mL/min/1.73 m2: Milliliter per Minute per 1.73 m2 of Body Surface Area
        s: Second
  absent_codelists:
    COUNTRY:
      code: C66786
      note: >-
        DM.COUNTRY takes ISO 3166-1 alpha-3 codes, an external dictionary (SDTMIG 3.4 DM).
        SDTM CT 2015-12-18 still carried it as codelist COUNTRY (C66786); SDTM CT
        2024-03-29 does not. Sponsor note: declare DM.COUNTRY (and TS FCNTRY) in
        define.xml against the external dictionary "ISO 3166-1 alpha-3" with its version;
        validate codes against the ISO list, not against this file.
    TOXGRV4:
      code: C87162
      note: >-
        No CTCAE grade codelist in SDTM CT 2024-03-29 (2015 had TOXGRV4, C87162, CTCAE
        v4.0 grades 1-5). AE.AETOXGR takes the CTCAE grade as text "1"-"5" and the
        grading scale is an external dictionary: DICTNAM CTCAE (kept here, code null) with
        the CTCAE version in define.xml and TS. ASTCT CRS and ICANS grades are
        sponsor-defined (SUPPAE), not CDISC CT.
    TDIGRP:
      code: C66787
      note: >-
        Codelist TDIGRP (Diagnosis Group, C66787) is gone in 2024; the TS parameter
        TDIGRP still exists and takes a SNOMED CT code or free text (SDTMIG 3.4 TS).
  absent_terms:
    - codelists: [LBTESTCD, LBTEST]
      pattern: '\bCD7\b'
      note: >-
        No CD7 test in LBTESTCD/LBTEST (2015 or 2024). Flow-cytometry markers have moved
        from LB to the CP (Cell Phenotype) domain (the 2015 CD3/CD4/CD8/CD19/CD56 tests are
        no longer in LBTESTCD 2024); the 2024 CP test codelists (C181173/C181174, short
        names not in our data) have no CD7 either. CD7+ cell count and percentage need a
        sponsor-defined test code (LBTESTCD and the CP codelists are extensible) documented
        in define.xml.
    - codelists: [LBTESTCD, LBTEST]
      pattern: '(?i)minimal residual|measurable residual|\bMRD\b'
      note: >-
        No MRD laboratory test in LBTESTCD/LBTEST; the closest is LEUKCE "Leukemic Cells"
        (2015 synonym "Residual Leukemic Cells", kept). MRD as a response lives in RS:
        ONCRTSCD MRDIND/MRDRESP with ONCRSR results (kept). ONCRSR "COMPLETE MRD RESPONSE"
        and "MRD NEGATIVITY" (2015) are not in 2024; 2024 uses NEGATIVE/POSITIVE and
        (NON-)QUANTIFIABLE MRD POSITIVITY.
    - codelists: [ONCRSR]
      pattern: '^CRh$|(?i:partial hematologic recovery)'
      note: >-
        No CRh (CR with partial haematological recovery) in ONCRSR 2024-03-29; use a
        sponsor-defined value if the protocol grades CRh. "No response" is NR.
  notes:
    - >-
      UNIT names asked for that are not submission values in 2024 (each is listed among
      the synonyms of the term named here): h -> HOURS;
      ng/mL -> ug/L; pg/mL -> ng/L; ug/mL -> mg/L; mg/mL -> g/L; 10^3/uL -> 10^9/L;
      10^6/uL -> 10^12/L; cells per microliter "/uL" (and 1/uL, /mm3) -> 10^6/L (the 2015
      term "/uL", C67254, is a synonym in 2024); sec -> s; mL/min/1.73m2 -> mL/min/1.73 m2.
      There is no "cells/kg": CDISC doses cells per kg as 10^6/kg (Million per Kilogram) and
      absolute cell doses as "10^6 Therapeutic Cells" (both 2024-only, kept). Titres use
      "titer". PKUNIT (for PP) has its own spellings: h, day, ng/mL.
    - >-
      No AGESPAN, ADAPT or DTHDX codelist exists in either SDTM file; TS parameters
      ADAPT/AGEMIN/AGEMAX take NY or ISO 8601 durations, and death details use the DD
      domain (DDTESTCD, not kept). TOXGR, COUNTRY and TDIGRP: see above. Vital signs
      (VSTESTCD) are not in the brief's domain list and are not kept.
adam:
  package: ADaM CT 2026-03-27
  codelists:
    DATEFL:
      use: ADaM --DTF date imputation flags (ADaMIG 1.3 section 3.1.3)
      terms: all
    DTYPE:
      use: ADaM BDS DTYPE (derivation type of a derived record)
      terms: all
    PARAMTYP:
      use: ADaM BDS PARAMTYP (parameter derived from other parameters)
      terms: all
    POOLINT:
      use: ADaM pooled-integration flag values
      terms: all
    SBJTSTAT:
      use: ADSL.EOSSTT / EOTSTT (end of study/treatment status)
      terms: all
    TIMEFL:
      use: ADaM --TMF time imputation flags (ADaMIG 1.3 section 3.1.3)
      terms: all
  notes:
    - >-
      ADaM CT 2026-03-27 has 25 codelists; none for AGEGR1, CNSR, SRCDOM, SRCVAR, PARCAT or
      analysis flags: these are sponsor-defined (ADaMIG 1.3) and belong in the ADaM specs.
      Questionnaire parameter codelists (CHSF, GAD02, GDS02, HAMD1, NEWS1, PCL01, APCH1)
      and the tobacco codelists (STRATA, INPRM, TPCATRS, TPUSRS, TBUTRS) do not apply.
"""

SUBSET = yaml.safe_load(SUBSET_YAML)

_CCODE = re.compile(r"^C\d+$")


def term_sort_key(value: str) -> tuple[str, str]:
    """Sort key of a term inside a codelist: case-insensitive, then exact (deterministic)."""
    return (value.casefold(), value)


# ---------------------------------------------------------------------------------------
# Reading the packages
# ---------------------------------------------------------------------------------------
def load_packages(shared: Path) -> dict:
    """Read the three CT packages from ``<shared>/ct``.

    Args:
        shared: the shared data folder (``../shared`` from the project root).

    Steps: 1. check that each file exists and is JSON; 2. return them keyed
    ``sdtm2015``, ``sdtm2024``, ``adam`` plus the SHA-256 of each file for the record.

    Raises:
        InputError: a file is missing or is not valid JSON.
    """
    out, problems = {"sha256": {}}, []
    for key, name in (("sdtm2015", SDTM_2015), ("sdtm2024", SDTM_2024), ("adam", ADAM_2026)):
        path = shared / "ct" / name
        try:
            raw = path.read_bytes()
            out[key] = json.loads(raw)
            out["sha256"][name] = hashlib.sha256(raw).hexdigest()
        except FileNotFoundError:
            problems.append(Problem("CT package not found", file=str(path),
                                    hint="pass the shared folder with --shared"))
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"not valid JSON: {exc}", file=str(path)))
    if problems:
        raise InputError(problems)
    return out


class List2024:
    """The flat 2024 ``allowed_terms`` list of one codelist, with adjacency look-ups.

    In the 2024 file each term is written as *preferred term, submission value,
    synonyms...*, so the string just before a submission value is its preferred term.
    """

    def __init__(self, strings: list[str]):
        self.strings = list(strings)
        self.members = set(strings)
        self._first: dict[str, int] = {}
        for i, s in enumerate(self.strings):
            self._first.setdefault(s, i)

    def __contains__(self, value: str) -> bool:
        return value in self.members

    def preceding(self, value: str, exclude: set[str] = frozenset()) -> list[str]:
        """Strings found just before ``value`` (first-seen order), minus ``exclude``."""
        found = [self.strings[i - 1] for i, s in enumerate(self.strings) if s == value and i > 0]
        return list(dict.fromkeys(f for f in found if f not in exclude))

    def after_first(self, first: str) -> str | None:
        """The string just after the first occurrence of ``first`` (None if absent or last).

        Used on a --TEST list with a preferred term: its first occurrence is the term's
        own preferred term, so the next string is the test name. Checked on all 168
        --TESTCD/--TEST pairs of the 2015 file with their 2015 preferred terms: 4739 of
        4756 terms give the 2015 name; the other 17 are names or preferred terms that
        changed since 2015.
        """
        i = self._first.get(first)
        return self.strings[i + 1] if i is not None and i + 1 < len(self.strings) else None


# ---------------------------------------------------------------------------------------
# SDTM
# ---------------------------------------------------------------------------------------
def _demoted_into(lst: List2024, value: str, syn_owners: dict[str, set[str]]) -> str | None:
    """The other term whose synonyms now surround ``value`` in 2024, if any.

    A 2015 term can be retired into another term's synonyms (UNIT "/uL" is listed in
    2024 as "10^6/L", "/mm3", "/uL", "1/mm3", ...): the string just after ``value`` is
    then a 2015 synonym of that other term and not of ``value`` itself.

    Args:
        lst: the codelist's 2024 list.
        value: the submission value.
        syn_owners: 2015 non-preferred synonym -> the submission values listing it.
    """
    for i, s in enumerate(lst.strings[:-1]):
        if s == value:
            owners = syn_owners.get(lst.strings[i + 1], set())
            if owners and value not in owners:
                return sorted(owners)[0]
    return None


def _resolve_decode(lst: List2024, value: str, *, wanted: str | None, pref2015: str | None,
                    exclude: set[str], syn_owners: dict[str, set[str]], key: str,
                    problems: list[Problem]) -> str | None:
    """Choose the 2024 preferred term (decode) of ``value`` and check it in the 2024 list.

    Args:
        lst: the codelist's 2024 list.
        value: the submission value.
        wanted: the decode given in the input (``decodes``), if any.
        pref2015: the 2015 preferred term (None for a term only in 2024).
        exclude: the other submission values of the codelist (2015 and requested).
        syn_owners: 2015 non-preferred synonym -> the submission values listing it.
        key, problems: where to report.

    Steps: 1. candidates = strings just before ``value`` in the 2024 list, minus
    ``exclude`` (a string just after a submission value is one of its synonyms, e.g.
    UNIT "h" after "HOURS"); 2. the 2015 preferred term, if it is a candidate, is the
    decode; 3. else the input must give the decode (a human has read the 2024 list): it
    must be a candidate, and ``value`` must not sit among another term's synonyms (see
    ``_demoted_into``); 4. anything else is a problem that shows the candidates.
    """
    candidates = lst.preceding(value, exclude)
    if wanted is None and pref2015 is not None and pref2015 in candidates:
        return pref2015
    if wanted is None:
        why = (f"the 2015 preferred term {pref2015!r} does not precede {value!r} in 2024"
               if pref2015 is not None else f"{value!r} is only in 2024")
        problems.append(Problem(f"{why}: give the 2024 decode", key=key,
                                hint=f"add decodes: {{{value!r}: ...}}; candidates: {candidates}"))
        return None
    if wanted not in candidates:
        problems.append(Problem(f"decode {wanted!r} does not precede {value!r} in the 2024 list",
                                key=key, hint=f"candidates: {candidates}"))
        return None
    owner = _demoted_into(lst, value, syn_owners)
    if owner is not None:
        problems.append(Problem(f"{value!r} sits among the synonyms of {owner!r} in 2024: it is "
                                f"a synonym there, not a term", key=key, hint=f"use {owner!r}"))
        return None
    return wanted


def _pair_test_name(lst: List2024, test_lst: List2024, value: str, *, wanted: str | None,
                    pref2015: str | None, exclude: set[str], syn_owners: dict[str, set[str]],
                    names_cl: str, key: str, problems: list[Problem]) -> tuple[str, str] | None:
    """Find the --TEST name paired with a --TESTCD value, from the two 2024 lists.

    A CDISC test code and its test name are one NCI concept with one preferred term, so
    in 2024 the code follows that preferred term in the --TESTCD list and the name
    follows it in the --TEST list.

    Args:
        lst, test_lst: the 2024 lists of the --TESTCD and --TEST codelists.
        value: the test code.
        wanted: a test name given in the input (``decodes``), if any.
        pref2015: the 2015 preferred term of the code, used to break ties.
        exclude, syn_owners: as for ``_resolve_decode``.
        names_cl, key, problems: where to report.

    Returns:
        ``(preferred term, test name)`` or None after adding a problem.

    Steps: 1. preferred-term candidates = strings just before ``value`` in the --TESTCD
    list (minus other codes); 2. for each, the test name is the string after its first
    occurrence in the --TEST list; 3. keep the pair whose name is ``wanted`` if given;
    4. if several pairs remain, keep the one with the 2015 preferred term; 5. exactly one
    pair must remain, and ``value`` must not sit among another code's synonyms.
    """
    owner = _demoted_into(lst, value, syn_owners)
    if owner is not None:
        problems.append(Problem(f"{value!r} sits among the synonyms of {owner!r} in 2024: it is "
                                f"a synonym there, not a term", key=key, hint=f"use {owner!r}"))
        return None
    prefs = lst.preceding(value, exclude)
    matches = [(p, test_lst.after_first(p)) for p in prefs if test_lst.after_first(p) is not None]
    if wanted is not None:
        matches = [m for m in matches if m[1] == wanted]
    if len(matches) > 1 and pref2015 is not None:
        matches = [m for m in matches if m[0] == pref2015] or matches
    if len(matches) != 1:
        problems.append(Problem(
            f"cannot pair {value!r} with one {names_cl} name in the 2024 lists", key=key,
            hint=f"preferred-term candidates {prefs}; matches {matches}; "
                 f"or add decodes: {{{value!r}: <test name>}}"))
        return None
    return matches[0]


def _codelist_meta(name: str, spec: dict, by_name: dict, sdtm2024: dict, key: str,
                   problems: list[Problem]) -> dict | None:
    """Codelist C-code, name and 2015 record (None for a codelist new in 2024)."""
    if spec.get("new_in_2024"):
        code = spec.get("code")
        if not (isinstance(code, str) and _CCODE.match(code)) or not spec.get("name"):
            problems.append(Problem("a codelist new in 2024 needs code (C-code) and name", key=key))
            return None
        if code not in sdtm2024:
            problems.append(Problem(f"codelist {code} is not in {SDTM_2024}", key=key))
            return None
        if any(c["conceptId"] == code for c in by_name.values()):
            problems.append(Problem(f"codelist {code} is in {SDTM_2015}; drop new_in_2024",
                                    key=key))
            return None
        return {"code": code, "name": spec["name"], "cl2015": None}
    cl = by_name.get(name)
    if cl is None:
        problems.append(Problem(f"no codelist with submission value {name!r} in {SDTM_2015}",
                                key=key, hint="for a codelist only in 2024 set new_in_2024"))
        return None
    if cl["conceptId"] not in sdtm2024:
        problems.append(Problem(f"codelist {name} ({cl['conceptId']}) is not in {SDTM_2024}",
                                key=key, hint="list it under absent_codelists with a note"))
        return None
    return {"code": cl["conceptId"], "name": cl["name"], "cl2015": cl}


def _requested(spec: dict, cl2015: dict | None, lst: List2024, key: str,
               problems: list[Problem], report: dict, name: str) -> list[dict]:
    """Expand ``terms`` (+ ``plus``) and ``decodes`` to the list of requested items.

    Steps: 1. ``terms: all`` = every 2015 term whose value is still in the 2024 list (the
    others are reported as dropped) followed by ``plus``; a list = those values;
    2. each item gets its decode from ``decodes`` (None if not given); 3. a value asked
    twice, a non-string value or a ``decodes`` key that is not asked for is a problem.
    """
    terms = spec.get("terms")
    values: list = []
    if terms == "all":
        if cl2015 is None:
            problems.append(Problem("terms: all needs a codelist from the 2015 file", key=key))
            return []
        for t in cl2015["terms"]:
            if t["submissionValue"] in lst:
                values.append(t["submissionValue"])
            else:
                report["dropped"].append((name, t["submissionValue"], t["conceptId"]))
        values += spec.get("plus") or []
    elif isinstance(terms, list):
        values = list(terms)
        if spec.get("plus"):
            problems.append(Problem("plus only goes with terms: all", key=f"{key}.plus"))
    else:
        problems.append(Problem("terms must be 'all' or a list of submission values", key=key))
        return []
    decodes = spec.get("decodes") or {}
    for value in values:
        if not isinstance(value, str):
            problems.append(Problem(f"a term must be a submission value (text), got {value!r}",
                                    key=f"{key}.terms"))
    values = [v for v in values if isinstance(v, str)]
    for dup in sorted({v for v in values if values.count(v) > 1}):
        problems.append(Problem(f"term {dup!r} requested twice", key=key))
    for extra in sorted(set(decodes) - set(values)):
        problems.append(Problem(f"decode given for {extra!r}, which is not requested",
                                key=f"{key}.decodes"))
    return [{"value": v, "decode": decodes.get(v)} for v in values]


def _null_code_hint(value: str, decode: str | None, ct2015: list[dict]) -> str:
    """Where 2015 had the same submission value and preferred term (README hint only)."""
    seen = sorted({(c["submissionValue"], t["conceptId"]) for c in ct2015 for t in c["terms"]
                   if t["submissionValue"] == value and t["preferredTerm"] == decode})
    if seen:
        return "same value and preferred term in 2015: " + ", ".join(f"{c} {cc}" for c, cc in seen)
    same_pref = sorted({(c["submissionValue"], t["submissionValue"], t["conceptId"])
                        for c in ct2015 for t in c["terms"] if t["preferredTerm"] == decode})
    if same_pref and len(same_pref) <= 3:
        return "same preferred term in 2015: " + ", ".join(
            f"{c} {v!r} {cc}" for c, v, cc in same_pref)
    return ""


def extract_sdtm(ct2015: dict, ct2024: dict, subset: dict) -> tuple[dict, dict]:
    """Build the SDTM CT subset document from the 2015 and 2024 packages.

    Args:
        ct2015: parsed ``sdtmct-2015-12-18.json`` (``codelists[]`` full structure).
        ct2024: parsed ``sdtmct-2024-03-29.json`` (``{C-code: {allowed_terms, extensible}}``).
        subset: the ``sdtm`` block of ``SUBSET``.

    Returns:
        ``(document, report)``: the YAML document and what README.md reports
        (null codes, changed decodes, dropped terms, absent codelists and terms).

    Steps, per requested codelist (--TEST codelists after their --TESTCD):
    1. find its C-code and name by short name in 2015 (or take them from the input for a
       codelist new in 2024) and check the C-code is in 2024; ``extensible`` from 2024;
    2. expand the requested terms; each must be in the 2024 list (else: in 2015 only, or
       in neither, is an error); ``code`` is the 2015 term C-code, or null if the term is
       not a 2015 submission value of the codelist; a value that 2015 lists as a synonym of
       another term is refused (it is not a term);
    3. decode: for ordinary codelists the 2024 preferred term (checked by adjacency, see
       ``_resolve_decode``); for --TESTCD the paired test name: the --TESTCD value and the
       --TEST name must follow the same preferred term in their two 2024 lists (paired
       terms share one NCI concept); the --TEST codelist gets the same terms with the
       preferred term as decode;
    4. synonyms: the 2015 synonyms still listed in 2024, null for a 2024-only term;
    5. check the absent codelists are absent from 2024 and the absent-term patterns match
       nothing in 2015 or 2024 (so the README findings stay true);
    6. sort codelists by key and terms by ``term_sort_key``.

    Raises:
        SpecError: any problem in the input or between the input and the packages, all
        reported at once.
    """
    problems: list[Problem] = []
    report = {"null_codes": [], "decode_changed": [], "dropped": [], "new_codelists": [],
              "absent_codelists": [], "absent_terms": [], "use": {},
              "notes": list(subset.get("notes") or [])}
    sdtm2024 = {k: v for k, v in ct2024.items() if k != "package"}
    by_name = {c["submissionValue"]: c for c in ct2015["codelists"]}
    specs = subset["codelists"]
    pairs: dict[str, list[dict]] = {}          # TEST codelist -> its terms
    codelists: dict[str, dict] = {}

    order = sorted(specs, key=lambda n: (bool(specs[n].get("codes")), n))
    for name in order:
        spec, key = specs[name], f"sdtm.codelists.{name}"
        report["use"][name] = spec.get("use", "")
        meta = _codelist_meta(name, spec, by_name, sdtm2024, key, problems)
        if meta is None:
            continue
        if meta["cl2015"] is None:
            report["new_codelists"].append((name, meta["code"], meta["name"]))
        lst = List2024(sdtm2024[meta["code"]]["allowed_terms"])
        entry = {"code": meta["code"], "name": meta["name"],
                 "extensible": bool(sdtm2024[meta["code"]]["extensible"]), "terms": []}
        codelists[name] = entry

        if spec.get("codes"):                   # a --TEST codelist: terms come from --TESTCD
            if specs.get(spec["codes"], {}).get("names") != name:
                problems.append(Problem(f"{spec['codes']} must say names: {name}", key=key))
            entry["terms"] = pairs.get(name, [])
            continue

        t2015 = {t["submissionValue"]: t for t in (meta["cl2015"] or {"terms": []})["terms"]}
        syn2015 = {s: t["submissionValue"] for t in t2015.values() for s in t["synonyms"]
                   if s not in t2015}
        syn_owners: dict[str, set[str]] = {}
        for t in t2015.values():
            for syn in t["synonyms"]:
                if syn != t["preferredTerm"]:
                    syn_owners.setdefault(syn, set()).add(t["submissionValue"])
        items = _requested(spec, meta["cl2015"], lst, key, problems, report, name)
        exclude_base = set(t2015) | {it["value"] for it in items}
        names_cl = spec.get("names")
        if names_cl:
            test_meta = _codelist_meta(names_cl, specs.get(names_cl, {}), by_name, sdtm2024,
                                       f"sdtm.codelists.{names_cl}", problems)
            if test_meta is None:
                continue
            test_lst = List2024(sdtm2024[test_meta["code"]]["allowed_terms"])
            test2015 = {t["conceptId"]: t for t in (test_meta["cl2015"] or {"terms": []})["terms"]}
            pairs[names_cl] = []

        for i, item in enumerate(items):
            value, ikey = item["value"], f"{key}.terms[{i}]"
            old = t2015.get(value)
            if value not in lst:
                where = f"in {SDTM_2015} only" if old else f"in neither {SDTM_2015} nor {SDTM_2024}"
                problems.append(Problem(f"term {value!r} is {where}", key=ikey))
                continue
            if old is None and value in syn2015:
                problems.append(Problem(f"{value!r} is a synonym of {syn2015[value]!r}, not a term",
                                        key=ikey, hint=f"request {syn2015[value]!r}"))
                continue
            code = old["conceptId"] if old else None
            exclude = exclude_base - {value}
            if not names_cl:
                decode = _resolve_decode(lst, value, wanted=item["decode"],
                                         pref2015=old and old["preferredTerm"],
                                         exclude=exclude, syn_owners=syn_owners, key=ikey,
                                         problems=problems)
                if decode is None:
                    continue
                if old and decode != old["preferredTerm"]:
                    report["decode_changed"].append((name, value, old["preferredTerm"], decode))
            else:
                pair = _pair_test_name(lst, test_lst, value, wanted=item["decode"],
                                       pref2015=old and old["preferredTerm"], exclude=exclude,
                                       syn_owners=syn_owners, names_cl=names_cl, key=ikey,
                                       problems=problems)
                if pair is None:
                    continue
                pref, decode = pair
                old_test = test2015.get(code) if code else None
                changed = report["decode_changed"]
                if old_test and decode != old_test["submissionValue"]:
                    changed.append((name, value, old_test["submissionValue"], decode))
                if old_test and pref != old_test["preferredTerm"]:
                    changed.append((names_cl, decode, old_test["preferredTerm"], pref))
                test_syn = [s for s in old_test["synonyms"] if s in test_lst] if old_test else None
                pairs[names_cl].append({"value": decode, "code": code, "decode": pref,
                                        "synonyms": test_syn})
                if code is None:
                    hint = _null_code_hint(decode, pref, ct2015["codelists"])
                    report["null_codes"].append((names_cl, decode, pref, hint))
            synonyms = [s for s in old["synonyms"] if s in lst] if old else None
            entry["terms"].append({"value": value, "code": code, "decode": decode,
                                   "synonyms": synonyms})
            if code is None:
                report["null_codes"].append((name, value, decode,
                                             _null_code_hint(value, decode, ct2015["codelists"])))

    _check_absent(subset, by_name, sdtm2024, report, problems)
    if problems:
        raise SpecError(problems)
    for entry in codelists.values():
        entry["terms"].sort(key=lambda t: term_sort_key(t["value"]))
    report["null_codes"].sort(key=lambda r: (r[0], term_sort_key(r[1])))
    report["decode_changed"].sort(key=lambda r: (r[0], term_sort_key(r[1])))
    report["dropped"].sort(key=lambda r: (r[0], term_sort_key(r[1])))
    doc = {"package": subset["package"],
           "sources": [
               {"file": SDTM_2024, "package": ct2024.get("package"),
                "used_for": "which terms exist (version claimed), extensible, decode check: "
                            "the 2024 preferred term precedes the submission value"},
               {"file": SDTM_2015, "package": ct2015.get("package"),
                "used_for": "codelist names and C-codes, term C-codes (stable across "
                            "versions), synonyms still listed in 2024; code null = term "
                            "only in 2024"}],
           "codelists": {k: codelists[k] for k in sorted(codelists)}}
    return doc, report


def _check_absent(subset: dict, by_name: dict, sdtm2024: dict, report: dict,
                  problems: list[Problem]) -> None:
    """Check the README findings about absent codelists and terms still hold."""
    for name, info in (subset.get("absent_codelists") or {}).items():
        key = f"sdtm.absent_codelists.{name}"
        cl = by_name.get(name)
        if cl is None or cl["conceptId"] != info.get("code"):
            problems.append(Problem(f"{name} {info.get('code')} is not a 2015 codelist", key=key))
        elif info["code"] in sdtm2024:
            problems.append(Problem(f"{name} ({info['code']}) is in {SDTM_2024} after all",
                                    key=key, hint="move it to codelists"))
        else:
            report["absent_codelists"].append((name, info["code"], cl["name"], info["note"]))
    for i, rule in enumerate(subset.get("absent_terms") or []):
        key, pattern = f"sdtm.absent_terms[{i}]", re.compile(rule["pattern"])
        for name in rule["codelists"]:
            cl = by_name.get(name)
            if cl is None:
                problems.append(Problem(f"no codelist {name!r} in {SDTM_2015}", key=key))
                continue
            strings = [s for t in cl["terms"] for s in (t["submissionValue"], t["preferredTerm"],
                                                         *t["synonyms"])]
            strings += sdtm2024.get(cl["conceptId"], {}).get("allowed_terms", [])
            hits = sorted({s for s in strings if pattern.search(s)})
            if hits:
                problems.append(Problem(f"pattern {rule['pattern']!r} matches {hits[:5]} in {name}",
                                        key=key, hint="the finding no longer holds; update it"))
        report["absent_terms"].append((rule["codelists"], rule["pattern"], rule["note"]))


# ---------------------------------------------------------------------------------------
# ADaM
# ---------------------------------------------------------------------------------------
def extract_adam(adamct: dict, subset: dict) -> tuple[dict, dict]:
    """Build the ADaM CT subset document from ``adamct-2026-03-27.json``.

    Steps: 1. find each requested codelist by short name; 2. keep all its terms or the
    listed ones (a missing term is an error); code, decode (preferred term), synonyms and
    ``extensible`` come from the same, current, package; 3. sort as for SDTM.

    Raises:
        SpecError: a codelist or term is not in the package.
    """
    problems: list[Problem] = []
    by_name = {c["submissionValue"]: c for c in adamct["codelists"]}
    codelists, use = {}, {}
    for name, spec in subset["codelists"].items():
        key = f"adam.codelists.{name}"
        use[name] = spec.get("use", "")
        cl = by_name.get(name)
        if cl is None:
            problems.append(Problem(f"no codelist {name!r} in {ADAM_2026}", key=key))
            continue
        terms = {t["submissionValue"]: t for t in cl["terms"]}
        wanted = list(terms) if spec.get("terms") == "all" else spec.get("terms") or []
        kept = []
        for i, value in enumerate(wanted):
            t = terms.get(value)
            if t is None:
                problems.append(Problem(f"term {value!r} not in {name}", key=f"{key}.terms[{i}]"))
                continue
            kept.append({"value": value, "code": t["conceptId"], "decode": t["preferredTerm"],
                         "synonyms": list(t["synonyms"])})
        kept.sort(key=lambda t: term_sort_key(t["value"]))
        codelists[name] = {"code": cl["conceptId"], "name": cl["name"],
                           "extensible": bool(cl["extensible"]), "terms": kept}
    if problems:
        raise SpecError(problems)
    doc = {"package": subset["package"],
           "sources": [{"file": ADAM_2026, "package": adamct.get("package"),
                        "used_for": "everything: codes, names, decodes, synonyms, extensible"}],
           "codelists": {k: codelists[k] for k in sorted(codelists)}}
    report = {"use": use, "notes": list(subset.get("notes") or []),
              "all_codelists": sorted((c["submissionValue"], c["conceptId"], c["name"])
                                      for c in adamct["codelists"])}
    return doc, report


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------
def dump_yaml(doc: dict) -> str:
    """Serialise a CT document the one deterministic way (safe, ASCII, input order)."""
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=False)


def _md(text) -> str:
    return str(text).replace("|", "\\|")


def render_readme(sdtm: dict, sdtm_rep: dict, adam: dict, adam_rep: dict,
                  sha256: dict) -> str:
    """Write README.md: version, sources, regeneration, codelists, null codes, findings."""
    lines = [
        "# CDISC Controlled Terminology used by the study (generated)",
        "",
        "Generated by `tools/extract_ct.py`; do not edit by hand. To change which codelists",
        "or terms are kept, edit the `SUBSET_YAML` block at the top of the script and run,",
        "from the project root:",
        "",
        "```",
        "python tools/extract_ct.py --shared ../shared --out specs/ct",
        "```",
        "",
        "The toolkit reads only these files at run time, never `../shared`.",
        "",
        "## Version claimed",
        "",
        f"- `sdtm-ct.yaml`: **{sdtm['package']}**.",
        f"- `adam-ct.yaml`: **{adam['package']}**.",
        "",
        "## Sources",
        "",
        "| File | SHA-256 | Used for |",
        "|---|---|---|",
    ]
    for src in sdtm["sources"] + adam["sources"]:
        lines.append(f"| `{src['file']}` | `{sha256.get(src['file'], '')[:16]}...` | "
                     f"{_md(src['used_for'])} |")
    lines += [
        "",
        "How an SDTM term is built: `value` = submission value; it must be listed under the",
        "codelist in the 2024 file. `code` = its C-code in the 2015 file (term C-codes are",
        "stable), or null when the term only exists in 2024. `decode` = the 2024 preferred",
        "term (the 2024 file lists each term as preferred term, submission value, synonyms;",
        "the script checks the decode sits just before the value), and for a --TESTCD",
        "codelist the paired --TEST name. A --TEST term has the C-code of its --TESTCD",
        "term (a CDISC code/name pair is one NCI concept), also where the name changed.",
        "Where 2024 changed a preferred term, or for a 2024-only term (outside --TESTCD",
        "pairs, which the script pairs itself), the decode was read off the 2024 list by",
        "hand into the script input (`decodes:`), and the script checks it.",
        "`synonyms` = the 2015 synonyms still listed in",
        "2024; null for a 2024-only term, whose synonyms our 2024 file cannot separate.",
        "Codelist names come from 2015, `extensible` from 2024.",
        "",
        "## SDTM codelists",
        "",
        "| Key | C-code | Name | Extensible | Terms | Used for |",
        "|---|---|---|---|---|---|",
    ]
    for key, cl in sdtm["codelists"].items():
        lines.append(f"| {key} | {cl['code']} | {_md(cl['name'])} | "
                     f"{'yes' if cl['extensible'] else 'no'} | {len(cl['terms'])} | "
                     f"{_md(sdtm_rep['use'][key])} |")
    lines += ["", "## ADaM codelists", "",
              "| Key | C-code | Name | Extensible | Terms | Used for |",
              "|---|---|---|---|---|---|"]
    for key, cl in adam["codelists"].items():
        lines.append(f"| {key} | {cl['code']} | {_md(cl['name'])} | "
                     f"{'yes' if cl['extensible'] else 'no'} | {len(cl['terms'])} | "
                     f"{_md(adam_rep['use'][key])} |")
    non_ext = [f"{k} ({v['code']})" for k, v in sdtm["codelists"].items() if not v["extensible"]]
    non_ext_adam = [f"{k} ({v['code']})" for k, v in adam["codelists"].items()
                    if not v["extensible"]]
    lines += ["", "## Non-extensible codelists", "",
              "A value outside these codelists is an error, never a sponsor extension.", "",
              "- SDTM: " + ", ".join(non_ext) + ".",
              "- ADaM: " + ", ".join(non_ext_adam) + ".", ""]
    lines += ["## Terms with no C-code (`code: null`)", "",
              "These terms exist in SDTM CT 2024-03-29 but not (as terms of that codelist) in",
              "our 2015 file, so their NCI C-code is unknown here. The hint column is only a",
              "lead for looking the code up in NCI EVS; it is not used.", "",
              "| Codelist | Value | Decode | Hint (not used) |", "|---|---|---|---|"]
    for cl, value, decode, hint in sdtm_rep["null_codes"]:
        lines.append(f"| {cl} | {_md(value)} | {_md(decode)} | {_md(hint)} |")
    if sdtm_rep["new_codelists"]:
        lines += ["", "## Codelists new since 2015", "",
                  "Their C-code and terms are checked against the 2024 file; their short name",
                  "and name are not in our files and were taken from the published CDISC CT",
                  "(and are used by public SDTMIG 3.4 metadata). Verify before a submission.", ""]
        for name, code, cname in sdtm_rep["new_codelists"]:
            lines.append(f"- {name} ({code}): {cname}.")
    lines += ["", "## Decodes that differ from the 2015 preferred term / test name", "",
              "| Codelist | Value | 2015 | 2024 (kept) |", "|---|---|---|---|"]
    for cl, value, old, new in sdtm_rep["decode_changed"]:
        lines.append(f"| {cl} | {_md(value)} | {_md(old)} | {_md(new)} |")
    lines += ["", "## 2015 terms no longer in 2024 (not kept)", "",
              "Only for codelists kept whole (`terms: all`).", ""]
    for cl, value, code in sdtm_rep["dropped"]:
        lines.append(f"- {cl}: {value} ({code})")
    lines += ["", "## Findings and sponsor notes (what CDISC CT does not have)", ""]
    for name, code, cname, note in sdtm_rep["absent_codelists"]:
        lines.append(f"- **{name}** ({code}, {cname}): {note}")
    for codelists, pattern, note in sdtm_rep["absent_terms"]:
        lines.append(f"- **{', '.join(codelists)}** (no match for `{pattern}` in 2015 or 2024): "
                     f"{note}")
    for note in sdtm_rep["notes"]:
        lines.append(f"- {note}")
    for note in adam_rep["notes"]:
        lines.append(f"- **ADaM**: {note}")
    lines += ["", "All ADaM CT 2026-03-27 codelists: " +
              ", ".join(f"{n} ({c})" for n, c, _ in adam_rep["all_codelists"]) + ".", ""]
    return "\n".join(lines)


def build(shared: Path) -> dict[str, str]:
    """Read the packages and return ``{file name: text}`` for the output folder."""
    pk = load_packages(shared)
    sdtm, sdtm_rep = extract_sdtm(pk["sdtm2015"], pk["sdtm2024"], SUBSET["sdtm"])
    adam, adam_rep = extract_adam(pk["adam"], SUBSET["adam"])
    return {"sdtm-ct.yaml": dump_yaml(sdtm), "adam-ct.yaml": dump_yaml(adam),
            "README.md": render_readme(sdtm, sdtm_rep, adam, adam_rep, pk["sha256"])}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--shared`` folder in, ``--out`` folder out; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", required=True, type=Path,
                        help="shared data folder holding ct/*.json (e.g. ../shared)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (specs/ct)")
    args = parser.parse_args(argv)
    try:
        files = build(args.shared)
    except CdiscError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {', '.join(sorted(files))} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
