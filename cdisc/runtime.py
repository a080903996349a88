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


def use_python_strings() -> None:
    import pandas as pd

    pd.set_option("mode.string_storage", "python")
