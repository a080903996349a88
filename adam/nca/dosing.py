"""Multiple dose: time since the most recent dose, and accumulation ratios."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdisc.errors import InputError, Problem, SpecError

__all__ = ["accumulation_ratios", "time_since_dose"]


def time_since_dose(conc: pd.DataFrame, doses: pd.DataFrame, *, by: list[str], time: str,
                    dose_time: str, dose_amount: str | None = None,
                    new_time: str = "ARRLT", new_dose_number: str = "DOSENUM",
                    new_dose: str | None = "DOSEA") -> pd.DataFrame:
    """Add, to every sample, the time since the most recent dose at or before it.

    Arguments: ``conc`` samples and ``doses`` (one row per dose) share the ``by`` columns
    (e.g. USUBJID) and give times on one clock (``time``, ``dose_time``: hours from any
    common origin, e.g. the first dose). Returns ``conc`` with ``new_time`` (hours since
    the most recent dose; pre-first-dose samples: time to the first dose, negative),
    ``new_dose_number`` (1, 2, ... per ``by``; 1 for pre-dose samples) and, with
    ``dose_amount``, ``new_dose`` (the dose amount of that dose). The NCA profile of a
    dosing interval is then ``by + [new_dose_number]`` with time ``new_time`` (PKNCA
    intervals of one dose each; the pre-dose sample of dose k+1 is also the sample at tau
    of dose k: duplicate it into both profiles if CTROUGH/AUCTAU of dose k need it).

    Algorithm (admiral ``derive_vars_joined`` with ``join_type = "all"``, last dose at or
    before the sample; PKNCA's ``time_calc``):
        1. Number the doses per ``by`` in time order.
        2. For every sample, the last dose with dose time <= sample time (``merge_asof``);
           a sample before the first dose takes the first dose.
        3. ``new_time`` = sample time - that dose time.
    """
    for frame, cols, name in ((conc, list(by) + [time], "concentration"),
                              (doses, list(by) + [dose_time] + ([dose_amount] if dose_amount else []),
                               "dose")):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise InputError([Problem(f"column needed is missing from the {name} data",
                                      column=c) for c in missing])
    if not by:
        raise SpecError("time_since_dose needs 'by' columns", key="by")
    d = doses[list(by) + [dose_time] + ([dose_amount] if dose_amount else [])].copy()
    d = d[d[dose_time].notna()].sort_values(list(by) + [dose_time], kind="stable")
    d["__DN"] = d.groupby(list(by), sort=False).cumcount() + 1
    d["__DT"] = d[dose_time].astype(float)
    s = conc.copy()
    s["__ROW"] = np.arange(len(s))
    s["__T"] = s[time].astype(float)
    s = s.sort_values("__T", kind="stable")
    d = d.sort_values("__DT", kind="stable")
    known = s["__T"].notna()
    m = pd.merge_asof(s[known], d[list(by) + ["__DT", "__DN"] + ([dose_amount] if dose_amount else [])]
                      .rename(columns={dose_amount: "__DA"} if dose_amount else {}),
                      left_on="__T", right_on="__DT", by=list(by), direction="backward")
    first = d.drop_duplicates(list(by))[list(by) + ["__DT", "__DN"] + ([dose_amount] if dose_amount else [])]
    first = first.rename(columns={"__DT": "__DT1", "__DN": "__DN1", **({dose_amount: "__DA1"} if dose_amount else {})})
    m = m.merge(first, on=list(by), how="left")
    before = m["__DN"].isna()
    m["__DT"] = m["__DT"].where(~before, m["__DT1"])
    m["__DN"] = m["__DN"].where(~before, m["__DN1"])
    if dose_amount:
        m["__DA"] = m["__DA"].where(~before, m["__DA1"])
    m = m.set_index("__ROW")
    out = conc.copy()
    rows = np.arange(len(conc))
    out[new_time] = (m["__T"] - m["__DT"]).reindex(rows).to_numpy()
    out[new_dose_number] = m["__DN"].reindex(rows).astype("Int64").to_numpy()
    if dose_amount and new_dose:
        out[new_dose] = m["__DA"].reindex(rows).to_numpy()
    return out


def accumulation_ratios(params: pd.DataFrame, *, by: list[str], profile: str, reference,
                        parameters=(("AUCTAU", "ARAUC"), ("CMAX", "ARCMAX"))) -> pd.DataFrame:
    """Accumulation ratios: parameter of each profile / the same parameter of the
    reference profile (e.g. the first dose) of the same ``by`` group.

    ``params`` is ``nca_parameters`` output (PARAMCD/AVAL); ``profile`` the column that
    tells the profiles apart (e.g. DOSENUM), ``reference`` its value for the reference.
    Returns rows ``by + [profile]``, PARAMCD (ARAUC = AUCTAU ratio, ARCMAX = Cmax ratio,
    CDISC PKPARMCD), AVAL, for every non-reference profile; AVAL missing when either
    value is missing or the reference is 0.
    """
    parts = []
    for src, code in parameters:
        p = params[params["PARAMCD"] == src]
        ref = p[p[profile] == reference][list(by) + ["AVAL"]].rename(columns={"AVAL": "__REF"})
        cur = p[p[profile] != reference].merge(ref, on=list(by), how="left")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(cur["__REF"].to_numpy(dtype=float) > 0,
                             cur["AVAL"].to_numpy(dtype=float) / cur["__REF"].to_numpy(dtype=float),
                             np.nan)
        parts.append(cur[list(by) + [profile]].assign(PARAMCD=code, AVAL=ratio))
    return pd.concat(parts, ignore_index=True).sort_values(list(by) + [profile, "PARAMCD"],
                                                           kind="stable").reset_index(drop=True)
