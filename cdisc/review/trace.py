"""trace.json: for each SDTM record of a build, the raw file and row it came from, with the
subject's site and the record's visit, so a finding on a dataset record becomes a site query.

Format (deterministic: datasets sorted, records in dataset order, 1-based record numbers
implied by the position)::

    {"format": "cdisc trace 1",
     "datasets": {"AE": {"files": ["ae.csv"], "file": [0, 0, ...], "row": [2, 5, ...],
                         "site": ["101", ...], "visit": ["", ...]}}}

``file`` indexes ``files`` (-1: no raw row, e.g. a derived record); ``row`` is the line in
the raw file (header = line 1), null when unknown.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

TRACE_FILE = "trace.json"


def trace_entries(result) -> dict:
    """The trace of every SDTM dataset of a ``BuildResult`` that has one (raw-form builds)."""
    from cdisc.rawio import FILE_COL, ROW_COL

    dm = result.datasets.get("DM")
    sites = dict(zip(dm.data["USUBJID"], dm.data["SITEID"])) if dm is not None and "SITEID" in dm.data else {}
    out = {}
    for name in sorted(result.datasets):
        ds = result.datasets[name]
        if ds.standard != "SDTM" or ds.trace is None or len(ds.trace) != len(ds.data):
            continue
        files = ds.trace[FILE_COL].astype("string").fillna("")
        names = sorted(f for f in files.unique() if f)
        idx = files.map({f: i for i, f in enumerate(names)}).fillna(-1).astype(int)
        rows = pd.to_numeric(ds.trace[ROW_COL], errors="coerce").to_numpy(dtype=float)
        known = ~np.isnan(rows)
        row = np.where(known, rows, 0).astype(np.int64).astype(object)   # Python ints; None unknown
        row[~known] = None
        subj = ds.data["USUBJID"] if "USUBJID" in ds.data else pd.Series("", index=ds.data.index)
        visit = ds.data["VISIT"] if "VISIT" in ds.data else pd.Series("", index=ds.data.index)
        out[name] = {"files": names, "file": idx.tolist(),
                     "row": row.tolist(),
                     "site": subj.map(sites).fillna("").astype(str).tolist(),
                     "visit": visit.fillna("").astype(str).tolist()}
    return out


def write_trace(result, folder: Path) -> Path:
    """Write ``trace.json`` into a (staging) build folder."""
    path = Path(folder) / TRACE_FILE
    path.write_text(json.dumps({"format": "cdisc trace 1", "datasets": trace_entries(result)},
                               separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_trace(folder: Path) -> dict:
    """The datasets part of a build's trace.json ({} when the build has none)."""
    path = Path(folder) / TRACE_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("datasets") or {}
    except ValueError:
        return {}


def locate(trace: dict, dataset: str, row: int | None) -> dict:
    """Raw file, row, site and visit of record ``row`` (1-based) of ``dataset``; {} when unknown."""
    t = trace.get(str(dataset).upper())
    if t is None or row is None or not 1 <= int(row) <= len(t["file"]):
        return {}
    i = int(row) - 1
    f = t["file"][i]
    return {"file": t["files"][f] if f >= 0 else "", "raw_row": t["row"][i], "site": t["site"][i],
            "visit": t["visit"][i]}
