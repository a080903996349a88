"""``cdisc init DIR``: a minimal study that builds, to start from.

Writes a study folder with ``specs/study.yaml``, a DM mapping spec, an (empty) sponsor CT file,
an empty waiver list, one example raw form (``raw/dm.csv``, three subjects) and a README that
says what to do next. ``cdisc build --study DIR`` builds it and validates it ready for lock.
DIR must not exist or be empty: init never overwrites anything.
"""
from __future__ import annotations

from pathlib import Path

from .errors import InputError

STUDY_YAML = """\
# The study definition: identity, data cut, CT versions, raw export conventions, arms, visits.
studyid: {studyid}
title: {studyid}, a new study
sponsor: The sponsor
# Header timestamps of every written file come from the data cut: rebuilds are byte-identical.
data_cut: 2025-12-31
raw:
  subject: SUBJECT          # the raw column with the subject number
  site: SITENUMBER
  folder: FOLDER            # the EDC folder (visit) of each record
  date_formats: [DD-MON-YYYY, YYYY-MM-DD]
arms:
  - {{armcd: A, arm: Treatment A}}
visits:
  - {{folder: SCR, visitnum: 1, visit: SCREENING, day: -14}}
# EDC bookkeeping columns of every form that no SDTM variable needs, with the reason.
columns_not_mapped:
  "*":
    FOLDER: the EDC folder (visit); DM is one record per subject
"""

DM_YAML = """\
# DM - Demographics (SDTMIG 3.4 section 5.2): one record per subject, from the raw DM form.
domain: DM
label: Demographics
class: SPECIAL PURPOSE
structure: One record per subject
keys: [STUDYID, USUBJID]
subject_level: true
sources:
  - form: dm
variables:
  - {name: STUDYID, label: Study Identifier, core: Req, study: studyid}
  - {name: DOMAIN, label: Domain Abbreviation, core: Req, value: DM}
  - {name: USUBJID, label: Unique Subject Identifier, core: Req, template: "{STUDYID}-{SUBJECT}",
     method: "Concatenation of STUDYID, '-' and the EDC subject number"}
  - {name: SUBJID, label: Subject Identifier for the Study, core: Req, assign: SUBJECT}
  - name: RFICDTC
    label: Date/Time of Informed Consent
    core: Exp
    iso8601: {date: ICDAT}
  - {name: SITEID, label: Study Site Identifier, core: Req, assign: SITENUMBER}
  - {name: AGE, label: Age, type: Num, core: Exp, number: AGE}
  - {name: AGEU, label: Age Units, core: Exp, codelist: AGEU, value: YEARS}
  - {name: SEX, label: Sex, core: Req, codelist: SEX, map: SEX}
  - {name: RACE, label: Race, core: Exp, codelist: RACE, map: RACE}
  - {name: ARMCD, label: Planned Arm Code, core: Exp, assign: ARMCD}
  - {name: ARM, label: Description of Planned Arm, core: Exp, lookup: {from: ARMCD, table: arms, key: armcd, field: arm}}
  - {name: ACTARMCD, label: Actual Arm Code, core: Exp, assign: ARMCD}
  - {name: ACTARM, label: Description of Actual Arm, core: Exp, lookup: {from: ACTARMCD, table: arms, key: armcd, field: arm}}
  - {name: ARMNRS, label: Reason Arm and/or Actual Arm is Null, core: Exp, codelist: ARMNULRS, value: ""}
  - {name: ACTARMUD, label: Description of Unplanned Actual Arm, core: Exp, value: ""}
  - {name: COUNTRY, label: Country, core: Req, assign: COUNTRY, comment: ISO 3166-1 alpha-3 as collected}
"""

DM_CSV = """\
SUBJECT,SITENUMBER,FOLDER,ICDAT,AGE,SEX,RACE,ARMCD,COUNTRY
01-001,01,SCR,05-JAN-2025,34,Female,White,A,USA
01-002,01,SCR,12-JAN-2025,51,Male,Asian,A,USA
02-001,02,SCR,03-FEB-2025,47,Female,Black or African American,A,USA
"""

WAIVERS = """\
# Accepted validation findings: rule, dataset, (usubjid, variable), reason, approved_by.
# The two below exist only because the new study has no EX and TS yet: delete them when
# specs/sdtm/ex.yaml and specs/trial_design.yaml are written.
waivers:
  - rule: CDISC-XD-017
    dataset: TS
    reason: new study from cdisc init; the trial design (specs/trial_design.yaml) is not written yet
    approved_by: study programmer
  - rule: CORE-000739
    dataset: STUDY
    reason: new study from cdisc init; the exposure spec (specs/sdtm/ex.yaml) is not written yet
    approved_by: study programmer
"""

README = """\
# {studyid}

Made by `cdisc init`. Build it (from this folder, or with `--study {name}` from its parent):

    cdisc build

- `specs/study.yaml`: the study (data cut, CT versions, arms, visits, raw export conventions).
- `specs/sdtm/dm.yaml`: how the raw DM form becomes SDTM DM. Add one spec per domain
  (`specs/sdtm/ae.yaml`, ...) and its raw form under `raw/`.
- `specs/ct/study-ct.yaml`: the sponsor's codelists, extensions and raw spellings (synonyms).
- `specs/waivers.yaml`: accepted validation findings, each with its reason.
- `raw/`: the EDC exports, one file per form (.csv, .xlsx, .sas7bdat or .xpt).
- `build/`: what `cdisc build` writes (SDTM, ADaM, manifest.json, validation/report.html).

Every raw column is mapped by a spec or listed in `study.yaml: columns_not_mapped` with a
reason; the build says which ones are not.
"""

FILES = {
    "specs/study.yaml": STUDY_YAML,
    "specs/sdtm/dm.yaml": DM_YAML,
    "specs/ct/study-ct.yaml": "# Sponsor codelists, extensions of extensible CDISC codelists and raw spellings.\n"
                              "codelists: []\nextensions: []\nsynonyms: []\n",
    "specs/waivers.yaml": WAIVERS,
    "raw/dm.csv": DM_CSV,
    "README.md": README,
    ".gitignore": "build/\nbuild.failed/\n",
}


def init_study(folder: Path, studyid: str | None = None) -> list[Path]:
    """Write the skeleton into ``folder`` (missing or empty); returns the files written."""
    import re

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder} exists and is not empty: cdisc init writes only into a new or empty folder",
                         hint="give a new folder name")
    sid = studyid or re.sub(r"[^A-Za-z0-9-]", "-", folder.resolve().name).upper()[:20] or "STUDY"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,19}", sid):
        raise InputError(f"study id {sid!r}: 1-20 letters, digits, - or _", hint="give --studyid")
    written = []
    for rel, text in FILES.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(studyid=sid, name=folder.name) if rel.endswith((".yaml", ".md")) and
                        "{" in text and rel in ("specs/study.yaml", "README.md") else text, encoding="utf-8")
        written.append(path)
    return written
