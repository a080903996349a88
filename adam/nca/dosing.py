"""Multiple dose: time since the most recent dose, and accumulation ratios."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdisc.errors import InputError, Problem, SpecError

__all__ = ["accumulation_ratios", "time_since_dose"]


def time_since_dose(conc: pd.DataFrame, doses: pd.DataFrame, *, by: list[str], time: str,
                    dose_time: str, dose_amount: str | None = None,
                    new_time: str = "ARRLT", new_dose_number: str = "DOSENUM",
                    new_dose: str | None = "DOSEA", predose_window: float = 0.0) -> pd.DataFrame:
    """Add, to every sample, the time since the most recent dose at or before it.

    Arguments: ``conc`` samples and ``doses`` (one row per dose) share the ``by`` columns
    (e.g. USUBJID) and give times on one clock (``time``, ``dose_time``: hours from any
    common origin, e.g. the first dose). Returns ``conc`` with ``new_time`` (hours since
    the most recent dose; pre-first-dose samples: time to the first dose, negative),
    ``new_dose_number`` (1, 2, ... per ``by``; 1 for pre-dose samples) and, with
    ``dose_amount``, ``new_dose`` (the dose amount of that dose). The NCA profile of a
    dosing interval is then ``by + [new_dose_number]`` with time ``new_time`` (PKNCA
    intervals of one dose each). ``predose_window`` (hours, default 0 = off): a sample
    taken at most this long before dose k+1 (k >= 1) is ALSO its pre-dose sample: the row
    is repeated with dose number k+1 and a negative ``new_time`` (the NCA places the last
    pre-dose sample at t = 0, PKNCA's "start_predose" imputation); the copies come last.

    Algorithm (admiral ``derive_vars_joined`` with ``join_type = "all"``, last dose at or
    before the sample; PKNCA's ``time_calc``):
        1. Number the doses per ``by`` in time order.
        2. For every sample, the last dose with dose time <= sample time (``merge_asof``);
           a sample before the first dose takes the first dose.
        3. ``new_time`` = sample time - that dose time (rounded to 1e-9 h).
        4. With ``predose_window``: samples within the window before the next dose are
           repeated as pre-dose samples of that dose.
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
    s = conc.copy(deep=False)
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
    out = conc.copy(deep=False)
    rows = np.arange(len(conc))
    # rounded to 1e-9 h so that 23.9 - 12 is 11.9 (a tau end is then found exactly)
    out[new_time] = np.round((m["__T"] - m["__DT"]).reindex(rows).to_numpy(dtype=float), 9)
    out[new_dose_number] = m["__DN"].reindex(rows).astype("Int64").to_numpy()
    if dose_amount and new_dose:
        out[new_dose] = m["__DA"].reindex(rows).to_numpy()
    if predose_window and predose_window > 0:
        nxt = d[list(by) + ["__DN", "__DT"] + ([dose_amount] if dose_amount else [])].copy()
        nxt["__DN"] = nxt["__DN"] - 1          # key: the dose before it
        nxt = nxt.rename(columns={"__DT": "__NDT", **({dose_amount: "__NDA"} if dose_amount else {})})
        j = m.reset_index().merge(nxt, on=list(by) + ["__DN"], how="left").set_index("__ROW")
        gap = j["__NDT"] - j["__T"]
        near = (gap > 0) & (gap <= predose_window) & (j["__T"] >= j["__DT"])
        pos = np.sort(j.index[near.fillna(False).to_numpy()].to_numpy())
        if len(pos):
            jj = j.loc[pos]
            extra = conc.iloc[pos].copy()
            extra[new_time] = np.round((jj["__T"] - jj["__NDT"]).to_numpy(dtype=float), 9)
            extra[new_dose_number] = (jj["__DN"] + 1).astype("Int64").to_numpy()
            if dose_amount and new_dose:
                extra[new_dose] = jj["__NDA"].to_numpy()
            out = pd.concat([out, extra], ignore_index=True)
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
