"""SDTM PP (Pharmacokinetic Parameters) computed by the toolkit's own NCA from SDTM PC.

SDTMIG 3.4 §6.3.10 (PP): one record per PK parameter per time-concentration profile;
PPRFTDTC is the reference time of the profile (the PCRFTDTC of its PC records), which is
how PP links to PC. The NCA settings (analyte, BLQ rule, AUC interval) are data in
``specs/pp.yaml``; the algorithm is ``adam.nca.nca_parameters`` (linear-up/log-down).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from cdisc.ct import Terminology
from cdisc.errors import DataError, Problem
from cdisc.metadata import DatasetMeta, VariableMeta
from cdisc.specio import load_model

from .functions import sequence


class PPSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    analyte: str                          # PCTESTCD of the profile analysed
    blq_values: list[str] = Field(default_factory=lambda: ["BLQ", "<LLOQ"])  # PCSTRESC of BLQ samples
    blq_rule: dict[str, str] = Field(default_factory=dict)   # adam.nca.BLQRule fields
    auc_start_hours: float = 0.0
    auc_end_hours: float = 672.0
    time_unit: str = "h"
    specimen: str | None = None


PP_VARIABLES = [
    ("STUDYID", "Study Identifier", "Char"), ("DOMAIN", "Domain Abbreviation", "Char"),
    ("USUBJID", "Unique Subject Identifier", "Char"), ("PPSEQ", "Sequence Number", "Num"),
    ("PPGRPID", "Group ID", "Char"), ("PPTESTCD", "Parameter Short Name", "Char"),
    ("PPTEST", "Parameter Name", "Char"), ("PPCAT", "Parameter Category", "Char"),
    ("PPORRES", "Result or Finding in Original Units", "Char"), ("PPORRESU", "Original Units", "Char"),
    ("PPSTRESC", "Character Result/Finding in Std Format", "Char"),
    ("PPSTRESN", "Numeric Result/Finding in Standard Units", "Num"), ("PPSTRESU", "Standard Units", "Char"),
    ("PPSTAT", "Completion Status", "Char"), ("PPREASND", "Reason Parameter Not Calculated", "Char"),
    ("PPSPEC", "Specimen Material Type", "Char"), ("PPTPTREF", "Time Point Reference", "Char"),
    ("PPRFTDTC", "Date/Time of Reference Point", "Char"),
    ("PPSTINT", "Planned Start of Assessment Interval", "Char"),
    ("PPENINT", "Planned End of Assessment Interval", "Char"),
]
PP_KEYS = ["STUDYID", "USUBJID", "PPCAT", "PPTESTCD", "PPRFTDTC"]


def pp_meta() -> DatasetMeta:
    codelists = {"PPTESTCD": "PKPARMCD", "PPTEST": "PKPARM", "PPSTAT": "ND", "PPSPEC": "SPECTYPE",
                 "PPORRESU": "PKUNIT", "PPSTRESU": "PKUNIT"}
    return DatasetMeta(
        name="PP", label="Pharmacokinetics Parameters", keys=PP_KEYS, standard="SDTM",
        structure="One record per PK parameter per time-concentration profile per subject",
        **{"class": "FINDINGS"},
        variables=[VariableMeta(name=n, label=lab, type=t, origin="Derived" if n not in ("STUDYID", "DOMAIN", "USUBJID") else None,
                                codelist=codelists.get(n),
                                method=("Non-compartmental analysis of PC (linear-up/log-down trapezoids, "
                                        "actual times from PCRFTDTC); see specs/pp.yaml") if n in ("PPSTRESN", "PPORRES") else None,
                                key_sequence=(PP_KEYS.index(n) + 1) if n in PP_KEYS else None)
                   for n, lab, t in PP_VARIABLES])


def load_pp_settings(specs_dir: Path) -> PPSettings | None:
    path = Path(specs_dir) / "pp.yaml"
    return load_model(PPSettings, path, display="specs/pp.yaml") if path.is_file() else None


def _hours(dtc: pd.Series, ref: pd.Series) -> pd.Series:
    fmt = "%Y-%m-%dT%H:%M"
    a = pd.to_datetime(dtc.astype("str").str.slice(0, 16), format=fmt, errors="coerce")
    b = pd.to_datetime(ref.astype("str").str.slice(0, 16), format=fmt, errors="coerce")
    return (a - b).dt.total_seconds() / 3600.0


def build_pp(pc: pd.DataFrame, settings: PPSettings, ct: Terminology) -> pd.DataFrame:
    """PP records from PC: one per subject, reference time and NCA parameter.

    1. PC records of ``settings.analyte``; actual time = PCDTC - PCRFTDTC in hours (both
       must be complete date-times, or the record is reported, never guessed);
    2. BLQ samples are those whose PCSTRESC is one of ``blq_values`` (PCSTRESN missing);
    3. ``adam.nca.nca_parameters`` per USUBJID and PCRFTDTC with the spec's BLQ rule and
       AUC interval; a parameter that cannot be computed gets PPSTAT = NOT DONE and its
       reason in PPREASND (SDTMIG 3.4 PP assumptions);
    4. PPTEST is the CDISC decode of PPTESTCD (PKPARMCD/PKPARM).
    """
    from cdisc.adam.nca import BLQRule, nca_parameters

    conc = pc[pc["PCTESTCD"] == settings.analyte].copy()
    if conc.empty:
        return pd.DataFrame(columns=[v[0] for v in PP_VARIABLES])
    # PPCAT is the analyte's name (PCTEST), the category the parameters belong to (SDTMIG 3.4 PP)
    analyte_name = str(conc["PCTEST"].iloc[0]) if "PCTEST" in conc else settings.analyte
    conc["__T"] = _hours(conc["PCDTC"], conc["PCRFTDTC"])
    bad = conc["__T"].isna()
    if bad.any():
        raise DataError([Problem(f"PC record has no complete date/time or reference time for NCA "
                                 f"(PCDTC={d!r}, PCRFTDTC={r!r})", file="PC", row=None, column="PCDTC")
                         for d, r in zip(conc.loc[bad, "PCDTC"], conc.loc[bad, "PCRFTDTC"])])
    # PPTPTREF names the reference PPRFTDTC is the date/time of: the profile's PCTPTREF (CG0090)
    tptref = (conc.drop_duplicates(["USUBJID", "PCRFTDTC"]).set_index(["USUBJID", "PCRFTDTC"])["PCTPTREF"]
              if "PCTPTREF" in conc.columns else None)
    conc["__BLQ"] = conc["PCSTRESC"].astype("str").str.strip().str.upper().isin([b.upper() for b in settings.blq_values])
    unit = sorted(set(conc.loc[conc["PCSTRESU"].astype("str").ne(""), "PCSTRESU"]))
    conc_unit = unit[0] if len(unit) == 1 else "/".join(unit)
    res = nca_parameters(conc, by=["STUDYID", "USUBJID", "PCRFTDTC"], time="__T", value="PCSTRESN",
                         blq_flag="__BLQ", auc_start=settings.auc_start_hours, auc_end=settings.auc_end_hours,
                         blq_rule=BLQRule(**settings.blq_rule), conc_unit=conc_unit)
    decode = ct["PKPARMCD"].decode_of() if "PKPARMCD" in ct else {}
    done = res["AVAL"].notna()
    # The reported result: 6 significant digits; PPSTRESN is that same number, so the
    # character and numeric results agree (SDTMIG 3.4 §4.5.1 --STRESC/--STRESN).
    text = res["AVAL"].astype("float64").map(lambda x: "" if np.isnan(x) else format(float(x), ".6g"))
    num = pd.to_numeric(text.where(text.ne("")), errors="coerce").astype("float64")
    spec = settings.specimen or (conc["PCSPEC"].iloc[0] if "PCSPEC" in conc else "")
    pp = pd.DataFrame({
        "STUDYID": res["STUDYID"], "DOMAIN": "PP", "USUBJID": res["USUBJID"], "PPSEQ": np.nan,
        "PPGRPID": settings.analyte, "PPTESTCD": res["PARAMCD"],
        "PPTEST": res["PARAMCD"].map(decode).fillna(res["PARAM"]), "PPCAT": analyte_name,
        "PPORRES": text, "PPORRESU": res["AVALU"].where(done, ""), "PPSTRESC": text,
        "PPSTRESN": num, "PPSTRESU": res["AVALU"].where(done, ""),
        "PPSTAT": np.where(done, "", "NOT DONE"), "PPREASND": res["REASON"].fillna("").where(~done, ""),
        "PPSPEC": spec,
        "PPTPTREF": (pd.MultiIndex.from_arrays([res["USUBJID"], res["PCRFTDTC"]]).map(tptref)
                     if tptref is not None else ""),
        "PPRFTDTC": res["PCRFTDTC"],
        "PPSTINT": res["PPSTINT"].fillna(""), "PPENINT": res["PPENINT"].fillna(""),
    })
    pp["PPSEQ"] = sequence(pp, by="USUBJID", order=["PPRFTDTC"])
    return pp.reset_index(drop=True)
