"""SE (Subject Elements) from the trial elements in study.yaml and each subject's dates.

SDTMIG 3.4 §5.3: one record per subject per element actually entered, in time order;
SEENDTC of an element is the SESTDTC of the next; the last element ends at RFPENDTC.
EPOCH everywhere else is looked up from SE (sdtm.functions.epoch).
"""
from __future__ import annotations

import pandas as pd

from cdisc.errors import Problem

from .engine import Context, aggregate_by_subject
from .functions import dtc_to_date, sequence, study_day


def build_se(ctx: Context, dm: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    study = ctx.study
    subj = dm["SUBJID"].astype("str").str.strip()
    frames = []
    for order, el in enumerate(study.elements, start=1):
        if isinstance(el.start, str):
            start = dm[el.start]
        else:
            pick = aggregate_by_subject(ctx, el.start, where=f"specs/study.yaml: elements[{order - 1}].start",
                                        problems=problems)
            start = subj.map(pick)
        if el.start_offset_days:
            d = dtc_to_date(start) + pd.Timedelta(days=el.start_offset_days)
            start = d.dt.strftime("%Y-%m-%d").where(d.notna())
        frames.append(pd.DataFrame({
            "STUDYID": dm["STUDYID"], "DOMAIN": "SE", "USUBJID": dm["USUBJID"],
            "ETCD": el.etcd, "ELEMENT": el.element, "TAETORD": float(order), "EPOCH": el.epoch,
            "SESTDTC": start, "__end": dm["RFPENDTC"], "__file": "specs/study.yaml", "__row": 0}))
    se = pd.concat(frames, ignore_index=True)
    se = se[se["SESTDTC"].notna()]
    # An element starting after the subject's end of participation never happened.
    late = dtc_to_date(se["SESTDTC"]) > dtc_to_date(se["__end"])
    se = se[~late.fillna(False)]
    se = se.sort_values(["USUBJID", "TAETORD"], kind="stable").reset_index(drop=True)
    nxt = se.groupby("USUBJID")["SESTDTC"].shift(-1)
    se["SEENDTC"] = nxt.where(nxt.notna(), se["__end"])
    se["SESEQ"] = sequence(se, by="USUBJID", order=["TAETORD"])
    # study days of the element's start and end from DM.RFSTDTC (SDTMIG 3.4 SE; CG0221 / CORE-000328)
    ref = se["USUBJID"].map(dm.drop_duplicates("USUBJID").set_index("USUBJID")["RFSTDTC"])
    se["SESTDY"] = study_day(se["SESTDTC"], ref)
    se["SEENDY"] = study_day(se["SEENDTC"], ref)
    cols = ["STUDYID", "DOMAIN", "USUBJID", "SESEQ", "ETCD", "ELEMENT", "TAETORD", "EPOCH",
            "SESTDTC", "SEENDTC", "SESTDY", "SEENDY", "__file", "__row"]
    return se[cols]
