"""Our expression evaluator (cdisc.expr) against DuckDB SQL on the same frame (issue 13).

    pip install duckdb   # only for this benchmark; not a dependency of cdisc
    python benchmarks/expr_engines.py [--rows 1000000] [--repeat 5]

Four typical spec expressions, each as our language and as the SQL a user would write,
on one pandas frame of ``--rows`` records (text, numbers, ISO 8601 dates with partial
values and blanks). DuckDB scans the pandas frame in place (replacement scan) and the
result is fetched back as a pandas Series, which is what the SDTM engine would need.
The results are compared row by row (after normalising missing values), so a faster
engine that computes something else shows up as a mismatch, not a win.

Prints the median wall seconds of each engine and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdisc.expr import evaluate_filter, evaluate_value  # noqa: E402

CASES = [
    ("condition filter",
     "RECSTATUS != 'Deleted' and AESER == 'Y' and AETOXGR in ('3', '4')",
     "SELECT coalesce(RECSTATUS <> 'Deleted', true) AND coalesce(AESER = 'Y', false) "
     "AND coalesce(AETOXGR IN ('3', '4'), false) AS v FROM df", "filter"),
    ("substring + concat",
     "concat(substr(PATNO, 1, 3), '-', upper(strip(AETERM)))",
     "SELECT nullif(concat(substr(PATNO, 1, 3), '-', upper(trim(AETERM))), '') AS v FROM df", "value"),
    ("coalesce",
     "coalesce(AEENDTC, AESTDTC, 'ONGOING')",
     "SELECT coalesce(nullif(trim(AEENDTC), ''), nullif(trim(AESTDTC), ''), 'ONGOING') AS v FROM df", "value"),
    ("date difference",
     "days_between(RFSTDTC, AESTDTC)",
     "SELECT date_diff('day', try_strptime(RFSTDTC, '%Y-%m-%d'), try_strptime(AESTDTC, '%Y-%m-%d')) AS v "
     "FROM df", "value"),
]


def frame(n: int, seed: int = 13) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = np.datetime64("2024-01-01") + rng.integers(0, 365, n).astype("timedelta64[D]")
    start = pd.Series(np.datetime_as_string(base, unit="D"), dtype="str")
    part = rng.random(n)
    start = start.where(part > 0.05, start.str.slice(0, 7)).where(part > 0.02, "")   # partial and blank dates
    end = pd.Series(np.datetime_as_string(base + rng.integers(0, 30, n).astype("timedelta64[D]"), unit="D"),
                    dtype="str").where(rng.random(n) > 0.3, "")
    return pd.DataFrame({
        "RECSTATUS": pd.Series(rng.choice(["Active", "Deleted", ""], n, p=[0.9, 0.05, 0.05]), dtype="str"),
        "AESER": pd.Series(rng.choice(["Y", "N"], n), dtype="str"),
        "AETOXGR": pd.Series(rng.choice(["1", "2", "3", "4", "5"], n), dtype="str"),
        "PATNO": pd.Series([f"{s}-{i:04d}" for s, i in zip(rng.integers(101, 130, n), rng.integers(1, 9999, n))],
                           dtype="str"),
        "AETERM": pd.Series(rng.choice([" headache", "Rash ", "nausea", "Fatigue"], n), dtype="str"),
        "AESTDTC": start,
        "AEENDTC": end,
        "RFSTDTC": pd.Series(["2024-01-01"] * n, dtype="str"),
    })


def ours(df, text, kind):
    return (evaluate_filter if kind == "filter" else evaluate_value)(text, df)


def duck(con, df, sql):
    con.register("df", df)
    return con.execute(sql).df()["v"]


def norm(s: pd.Series) -> list:
    out = s.astype("object").where(s.notna(), None).tolist()
    return [None if v is None else (float(v) if isinstance(v, (int, float, np.integer, np.floating))
                                    and not isinstance(v, bool) else v) for v in out]


def timed(fn, repeat):
    times, res = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import duckdb

    df = frame(args.rows)
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    print(f"{args.rows:,} rows, median of {args.repeat}; duckdb {duckdb.__version__}, pandas {pd.__version__}")
    print(f"{'expression':22} {'cdisc.expr s':>12} {'duckdb s':>10} {'ratio':>7}  same result")
    for name, text, sql, kind in CASES:
        t_ours, r_ours = timed(lambda: ours(df, text, kind), args.repeat)
        t_duck, r_duck = timed(lambda: duck(con, df, sql), args.repeat)
        same = norm(r_ours) == norm(r_duck)
        print(f"{name:22} {t_ours:12.3f} {t_duck:10.3f} {t_ours / t_duck:7.1f}  {same}")


if __name__ == "__main__":
    main()
