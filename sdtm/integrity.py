"""Cross-domain integrity of a built SDTM study, checked by the build (``cdisc build``).

Each check is vectorised over whole datasets and returns ``Problem``s that name the
dataset, the subject, the record number and, where the record came from a raw row, the raw
file and row (so a data manager can query the site). The build reports them as data errors
(exit 1) with every other problem of the build.

Checks (SDTMIG 3.4 and FDA Study Data Technical Conformance Guide):

- ``subjects_in_dm``: every USUBJID of every subject-level dataset is in DM (SDTMIG 3.4 DM:
  DM holds one record per subject; TCG: no orphan records).
- ``seq_unique``: --SEQ is unique within USUBJID in each domain (SDTMIG 3.4 §4.1.5).
- ``dates_after_consent``: every --DTC is on or after DM.RFICDTC (nothing is collected before
  consent), compared at the precision both dates have; a domain whose spec sets
  ``dates_before_consent_allowed`` is exempt, and so are MH and CM (histories) always.
- ``study_days``: every --DY (and --STDY/--ENDY) equals the study day of its --DTC against
  DM.RFSTDTC, no day 0 (SDTMIG 3.4 §4.4.4).
- ``rfstdtc_is_first_dose``: DM.RFSTDTC equals the subject's first EXSTDTC of study treatment
  (the EXTRT values in study.yaml ``lookups.study_treatments``; SDTMIG 3.4 DM: RFSTDTC is
  the sponsor-defined reference start, here the first investigational-product dose).
- ``death_consistency``: DTHFL = Y exactly when DTHDTC is present, and exactly those subjects
  have a DS record with DSDECOD DEATH, on the same date (SDTMIG 3.4 DM/DS); a DS without
  DSSTDTC has no date to compare.

Waivers: a finding the study accepts is waived with a reason, like a validation finding: an
entry of ``integrity:`` in ``specs/waivers.yaml`` names the check (``rule``), the dataset and
optionally the subject and variable. Waived findings do not fail the build; the manifest
lists each with its reason (``integrity_waived``).
"""
from __future__ import annotations

import pandas as pd

from cdisc.distinct import clean_text, on_distinct_rows

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from cdisc.errors import Problem, SpecError
from cdisc.rawio import FILE_COL, ROW_COL

from .functions import blank, study_day

TRIAL_DESIGN = {"TA", "TE", "TV", "TI", "TS", "TD", "TM"}
CHECKS = ("subjects_in_dm", "seq_unique", "dates_after_consent", "study_days", "rfstdtc_is_first_dose",
          "death_consistency")


@dataclass
class IntegrityProblem(Problem):
    """An integrity finding: a Problem that also names its check, dataset and subject (for waivers)."""

    rule: str | None = None
    dataset: str | None = None
    usubjid: str | None = None


class IntegrityWaiver(BaseModel):
    """One entry of ``integrity:`` in specs/waivers.yaml."""

    model_config = ConfigDict(extra="forbid")

    rule: str                      # a check name, e.g. death_consistency
    dataset: str
    usubjid: str | None = None
    variable: str | None = None
    reason: str
    approved_by: str | None = None

    @field_validator("rule")
    @classmethod
    def _rule(cls, v: str) -> str:
        if v.strip() not in CHECKS:
            raise ValueError(f"unknown integrity check {v!r}; one of: {', '.join(CHECKS)}")
        return v.strip()

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("reason must say why the finding is acceptable")
        return v.strip()

    def matches(self, p: "IntegrityProblem") -> bool:
        return (self.rule == p.rule and self.dataset.upper() == (p.dataset or "").upper()
                and (self.usubjid is None or self.usubjid == p.usubjid)
                and (self.variable is None or self.variable.upper() == (p.column or "").upper()))


def integrity_waivers(data, *, file: str = "specs/waivers.yaml") -> list[IntegrityWaiver]:
    """The ``integrity:`` entries of parsed specs/waivers.yaml; errors name file and key."""
    entries = data.get("integrity") if isinstance(data, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise SpecError("integrity: expected a list of waivers", file=file, key="integrity")
    out, problems = [], []
    for i, e in enumerate(entries):
        try:
            out.append(IntegrityWaiver.model_validate(e))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(x) for x in err["loc"])
                problems.append(Problem(err["msg"], file=file, key=f"integrity[{i}]" + (f".{loc}" if loc else ""),
                                        hint="each integrity waiver needs rule, dataset and reason"))
    if problems:
        raise SpecError(problems)
    return out


def apply_integrity_waivers(problems: list[Problem], waivers: list[IntegrityWaiver]
                            ) -> tuple[list[Problem], list[dict]]:
    """Split integrity problems into active ones and waived ones (manifest entries with the reason)."""
    active, waived = [], []
    for p in problems:                      # findings x waivers: both short lists
        w = next((w for w in waivers if isinstance(p, IntegrityProblem) and w.matches(p)), None)
        if w is None:
            active.append(p)
        else:
            waived.append({"rule": p.rule, "dataset": p.dataset, "usubjid": p.usubjid, "variable": p.column,
                           "message": p.message, "reason": w.reason, "approved_by": w.approved_by})
    return active, waived


def _text(s: pd.Series) -> pd.Series:
    return clean_text(s)


def _problems(name: str, df: pd.DataFrame, mask: pd.Series, message: pd.Series | str, column: str | None,
              trace: pd.DataFrame | None, hint: str | None = None) -> list[Problem]:
    """One Problem per flagged record: dataset, record number (1-based), subject, raw file/row."""
    mask = mask.fillna(False).astype(bool)
    if not mask.any():
        return []
    pos = pd.Series(range(1, len(df) + 1), index=df.index)[mask]
    subj = _text(df["USUBJID"])[mask] if "USUBJID" in df.columns else pd.Series("", index=pos.index)
    msg = (message[mask] if isinstance(message, pd.Series) else pd.Series(message, index=pos.index))
    if trace is not None and len(trace) == len(df):
        tr = trace.set_axis(df.index)
        files, rows = tr.loc[mask, FILE_COL].tolist(), tr.loc[mask, ROW_COL].tolist()
    else:
        files, rows = [None] * len(pos), [None] * len(pos)
    out = []
    for p, u, m, f, r in zip(pos.tolist(), subj.tolist(), msg.tolist(), files, rows):
        raw_row = int(r) if f and r is not None and int(r) > 0 and str(f).endswith(
            (".csv", ".xlsx", ".sas7bdat", ".xpt")) else None
        where = f"{name} record {p}" + (f", USUBJID {u}" if u else "")
        out.append(IntegrityProblem(f"{where}: {m}", file=f if raw_row is not None else name, row=raw_row,
                                    column=column, hint=hint, dataset=name, usubjid=u or None))
    return out


def subjects_in_dm(datasets: dict[str, pd.DataFrame], traces: dict) -> list[Problem]:
    dm_ids = set(_text(datasets["DM"]["USUBJID"]))
    out = []
    for name, df in sorted(datasets.items()):
        if name == "DM" or name in TRIAL_DESIGN or "USUBJID" not in df.columns:
            continue
        u = _text(df["USUBJID"])
        bad = u.ne("") & ~u.isin(dm_ids)
        out += _problems(name, df, bad, "subject is not in DM", "USUBJID", traces.get(name),
                         "every subject must have a demographics record")
    return out


def seq_unique(datasets: dict[str, pd.DataFrame], traces: dict) -> list[Problem]:
    out = []
    for name, df in sorted(datasets.items()):
        seq = f"{name}SEQ"
        if seq not in df.columns or "USUBJID" not in df.columns:
            continue
        dup = df.duplicated(["USUBJID", seq], keep=False) & df[seq].notna()
        if not dup.any():          # messages are built for the flagged records only
            continue
        out += _problems(name, df, dup, f"{seq} = " + df[seq].astype("str") + " is not unique for the subject",
                         seq, traces.get(name), "--SEQ must be unique within USUBJID (SDTMIG 3.4 §4.1.5)")
    return out


def _cmp_common_precision(a: pd.Series, b: pd.Series) -> pd.Series:
    """a >= b for ISO 8601 texts compared at the precision both have (missing where either is blank).

    "2024-05" vs "2024-04-10" compares months; a date vs a datetime compares dates; a date
    with an unknown month ("2024---12") counts as its year.
    """
    frame = pd.DataFrame({"a": a, "b": b})
    return on_distinct_rows(frame, lambda f: _cmp_values(f["a"], f["b"]))


def _cmp_values(a: pd.Series, b: pd.Series) -> pd.Series:
    a = _text(a).str.replace(r"^(\d{4})---\d{2}.*$", r"\1", regex=True)
    b = _text(b).str.replace(r"^(\d{4})---\d{2}.*$", r"\1", regex=True)
    n = pd.concat([a.str.len(), b.str.len()], axis=1).min(axis=1)
    res = pd.Series(pd.NA, index=a.index, dtype="boolean")
    for k in sorted(set(n[(a.ne("")) & (b.ne(""))].tolist())):     # a loop over precisions
        m = n.eq(k) & a.ne("") & b.ne("")
        res[m] = (a[m].str.slice(0, k) >= b[m].str.slice(0, k)).to_numpy()
    return res


# Domains whose records are histories by definition and start before the study: exempt from
# the consent check in every study, as validation rule CDISC-XD-016 exempts them (SDTMIG 3.4
# MH; CM holds prior medications). A spec can exempt other domains with a reason.
HISTORY_DOMAINS = {"MH": "medical history precedes the study",
                   "CM": "prior medications (e.g. prior therapy lines) precede the study"}


def dates_after_consent(datasets: dict[str, pd.DataFrame], traces: dict,
                        allowed: dict[str, str] | None = None) -> list[Problem]:
    allowed = {**HISTORY_DOMAINS, **(allowed or {})}
    dm = datasets["DM"]
    if "RFICDTC" not in dm.columns:
        return []
    consent = dm.drop_duplicates("USUBJID").set_index("USUBJID")["RFICDTC"]
    out = []
    for name, df in sorted(datasets.items()):
        if name == "DM" or name in TRIAL_DESIGN or name in allowed or "USUBJID" not in df.columns:
            continue
        ref = df["USUBJID"].map(consent)
        for col in [c for c in df.columns if c.endswith("DTC")]:
            ok = _cmp_common_precision(df[col], ref)
            bad = ok.eq(False)
            if not bad.any():
                continue
            out += _problems(name, df, bad, f"{col} " + _text(df[col]) + " is before informed consent (RFICDTC "
                             + _text(ref) + ")", col, traces.get(name),
                             "correct the date, or set dates_before_consent_allowed with a reason in the domain spec")
    return out


def study_days(datasets: dict[str, pd.DataFrame], traces: dict,
               references: dict[tuple[str, str], str] | None = None) -> list[Problem]:
    """``references``: (dataset, --DY) -> the reference date its spec names (default RFSTDTC); a
    DM variable is checked against it, any other reference (a raw column) is not checked."""
    references = references or {}
    dm = datasets["DM"]
    subjects = dm.drop_duplicates("USUBJID").set_index("USUBJID")
    out = []
    for name, df in sorted(datasets.items()):
        if name in TRIAL_DESIGN or "USUBJID" not in df.columns:
            continue
        for dy in [c for c in df.columns if c.endswith("DY") and f"{c[:-2]}DTC" in df.columns]:
            dtc = f"{dy[:-2]}DTC"
            ref_name = references.get((name, dy), "RFSTDTC")
            if ref_name not in subjects.columns:
                continue
            expect = study_day(df[dtc], df["USUBJID"].map(subjects[ref_name]))
            have = pd.to_numeric(df[dy], errors="coerce")
            # a subject missing from DM is reported once, by subjects_in_dm
            bad = df["USUBJID"].isin(subjects.index) & ~((expect.isna() & have.isna()) | (expect == have))
            if not bad.any():
                continue
            out += _problems(name, df, bad, f"{dy} = " + have.astype("str") + f" but {dtc} " + _text(df[dtc])
                             + " is study day " + expect.astype("str") + f" from {ref_name}", dy, traces.get(name),
                             "--DY = --DTC - RFSTDTC + 1 on or after RFSTDTC, --DTC - RFSTDTC before (no day 0)")
    return out


def rfstdtc_is_first_dose(datasets: dict[str, pd.DataFrame], traces: dict,
                          treatments: list[str] | None) -> list[Problem]:
    if not treatments or "EX" not in datasets or "RFSTDTC" not in datasets["DM"].columns:
        return []     # a DM without RFSTDTC (Exp) is a validation finding, not a crash here
    dm, ex = datasets["DM"], datasets["EX"]
    trt = {t.strip().upper() for t in treatments}
    ip = ex[_text(ex["EXTRT"]).str.upper().isin(trt) & ~blank(ex["EXSTDTC"])]
    first = ip.groupby("USUBJID")["EXSTDTC"].min()
    exp = dm["USUBJID"].map(first)
    have = dm["RFSTDTC"]
    bad = ~((blank(exp) & blank(have)) | (_text(exp) == _text(have)))
    return _problems("DM", dm, bad, "RFSTDTC " + _text(have) + " is not the first study-treatment EXSTDTC "
                     + _text(exp).where(_text(exp).ne(""), "(none in EX)") + f" ({', '.join(sorted(trt))})",
                     "RFSTDTC", traces.get("DM"), "RFSTDTC is the start of the first dose of study treatment")


def death_consistency(datasets: dict[str, pd.DataFrame], traces: dict) -> list[Problem]:
    dm = datasets["DM"]
    out = []
    flag = _text(dm["DTHFL"]).eq("Y") if "DTHFL" in dm.columns else pd.Series(False, index=dm.index)
    dtc = ~blank(dm["DTHDTC"]) if "DTHDTC" in dm.columns else pd.Series(False, index=dm.index)
    out += _problems("DM", dm, flag & ~dtc, "DTHFL is Y but DTHDTC is missing", "DTHDTC", traces.get("DM"))
    out += _problems("DM", dm, dtc & ~flag, "DTHDTC is present but DTHFL is not Y", "DTHFL", traces.get("DM"))
    died = flag | dtc
    if "DS" not in datasets:
        return out
    ds = datasets["DS"]
    if "DSDECOD" not in ds.columns or "USUBJID" not in ds.columns:
        return out
    death = ds[_text(ds["DSDECOD"]).eq("DEATH")]
    has_ds = dm["USUBJID"].isin(set(death["USUBJID"]))
    out += _problems("DM", dm, died & ~has_ds, "the subject died (DTHFL/DTHDTC) but DS has no record with "
                     "DSDECOD DEATH", "DTHDTC", traces.get("DM"))
    alive = set(dm.loc[~died, "USUBJID"])
    ds_bad = _text(ds["DSDECOD"]).eq("DEATH") & ds["USUBJID"].isin(alive)
    out += _problems("DS", ds, ds_bad, "DSDECOD is DEATH but DM has no DTHFL/DTHDTC for the subject", "DSDECOD",
                     traces.get("DS"))
    if "DTHDTC" in dm.columns and "DSSTDTC" in ds.columns:
        ds_date = death.groupby("USUBJID")["DSSTDTC"].first()
        same = _cmp_common_precision(dm["USUBJID"].map(ds_date), dm["DTHDTC"])
        back = _cmp_common_precision(dm["DTHDTC"], dm["USUBJID"].map(ds_date))
        differ = died & has_ds & (same.eq(False) | back.eq(False))
        out += _problems("DM", dm, differ, "DTHDTC " + _text(dm["DTHDTC"]) + " differs from the DS death date "
                         + _text(dm["USUBJID"].map(ds_date)), "DTHDTC", traces.get("DM"))
    return out


def check_integrity(datasets: dict[str, pd.DataFrame], traces: dict[str, pd.DataFrame] | None = None, *,
                    dates_before_consent_allowed: dict[str, str] | None = None,
                    study_treatments: list[str] | None = None,
                    study_day_references: dict[tuple[str, str], str] | None = None) -> list[Problem]:
    """Run every integrity check on the built SDTM datasets.

    Arguments: ``datasets`` name -> data (DM required), ``traces`` name -> the __file/__row
    of each record (for messages), ``dates_before_consent_allowed`` domain -> reason for the
    domains exempt from the consent check, ``study_treatments`` the EXTRT values of study
    treatment, ``study_day_references`` (dataset, --DY) -> the reference date a spec names for it
    (``study_day: {date, reference}``; default RFSTDTC). Returns the problems (empty when the
    study is consistent).
    """
    if "DM" not in datasets:
        return [Problem("no DM dataset: integrity checks need the subjects and their reference dates")]
    traces = traces or {}
    found = {"subjects_in_dm": subjects_in_dm(datasets, traces), "seq_unique": seq_unique(datasets, traces),
             "dates_after_consent": dates_after_consent(datasets, traces, dates_before_consent_allowed),
             "study_days": study_days(datasets, traces, study_day_references),
             "rfstdtc_is_first_dose": rfstdtc_is_first_dose(datasets, traces, study_treatments),
             "death_consistency": death_consistency(datasets, traces)}
    out = []
    for rule in CHECKS:
        for p in found[rule]:
            if isinstance(p, IntegrityProblem):
                p.rule = rule
            out.append(p)
    return out
