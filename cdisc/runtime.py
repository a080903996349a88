"""Process settings for a cdisc run (the CLI sets them; a Python caller may).

``use_python_strings()``: pandas 3 stores its default ``str`` dtype in pyarrow when pyarrow is
installed (it is, for Parquet input). On this workload (many small string operations on
object-like columns, CORE rule evaluation, XPT text) that storage is measured slower: validating
the shipped study 9.9-11.9 s with Python storage vs 12.1-15.2 s with pyarrow, the CDISC pilot
47.7 s vs 68.5 s (one process, 2-core machine, `benchmarks/README.md`). Outputs are identical
either way (tests run with this setting and compare bytes). The CLI therefore uses Python
storage; Parquet files are still read by pyarrow and converted.
"""
from __future__ import annotations


def can_fork() -> bool:
    """Whether a forked child can run beside this process (the CORE rules of validation, half of
    a build's XPT files): a POSIX fork, more than one core for this process, not switched off
    (``CDISC_JOBS=1``), and not inside a daemonic process (a Dask worker, a pool worker: they
    may not have children)."""
    import multiprocessing as mp
    import os

    if not hasattr(os, "fork") or os.environ.get("CDISC_JOBS", "").strip() == "1" or mp.current_process().daemon:
        return False
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:                          # macOS: no affinity API
        return (os.cpu_count() or 1) > 1


def use_python_strings() -> None:
    import pandas as pd

    pd.set_option("mode.string_storage", "python")
