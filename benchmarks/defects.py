"""Copies of the shipped study's build folder with exactly one defect injected each.

Each defect is a function registered with ``@defect``: it receives a fresh copy of a
``cdisc build`` folder (``sdtm/*.xpt``, ``adam/``, ``metadata.json``, ``manifest.json``) and
changes one or two datasets so that exactly one thing is wrong, then returns what it did
(dataset, 1-based records, variable, before -> after). Targets are chosen by a condition
(e.g. "the first AE record after the first dose with a full start date"), not by a fixed
row, so that the copies still make sense when the shipped study changes a little.

Changed datasets are read with pyreadstat and written back with the project's writer
``cdisc.xpt.write_xpt`` using the build's ``metadata.json`` (``cdisc.pipeline.load_build_metadata``),
which is updated too (a dropped or added variable, a new label), so each copy is still a
consistent build folder. Unchanged files are copied byte for byte.

The one exception is ``label_over_40``: an XPT v5 NAMESTR holds 40 label bytes and our writer
refuses more (FDA TCG §4.1.5), so that copy holds AE as CDISC Dataset-JSON v1.1
(``sdtm/ae.json``, written by ``cdisc.datasetjson.write_dataset_json``) and every other
dataset as XPT. CORE reads Dataset-JSON; our validator must read a mixed folder.

    .venv/bin/python benchmarks/defects.py BUILD OUT [--only NAME ...]   # writes OUT/<name>/
    .venv/bin/python benchmarks/defects.py --list
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import pyreadstat  # noqa: E402

from cdisc.pipeline import load_build_metadata  # noqa: E402
from cdisc.metadata import DatasetMeta, VariableMeta  # noqa: E402
from cdisc.xpt import write_xpt  # noqa: E402

CREATED = datetime.datetime(2026, 1, 1)
LONG_LABEL = "Start Date/Time of Adverse Event as Reported"   # 44 characters; see label_over_40


@dataclass
class Defect:
    name: str
    what: str                     # the one thing that is wrong, in words
    fn: Callable[["Copy"], dict]
    control: bool = False         # no defect: isolates a side effect of another copy
    baseline: str | None = None   # compare with this copy instead of the unchanged study


DEFECTS: dict[str, Defect] = {}


def defect(name: str, what: str, control: bool = False, baseline: str | None = None):
    def register(fn):
        DEFECTS[name] = Defect(name, what, fn, control, baseline)
        return fn
    return register


class Copy:
    """A build folder copy: read a dataset, change it, write it back (XPT v5 + metadata.json)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.sdtm = folder / "sdtm"
        self.meta = load_build_metadata(folder)

    def read(self, name: str) -> tuple[pd.DataFrame, DatasetMeta]:
        df, _ = pyreadstat.read_xport(str(self.sdtm / f"{name.lower()}.xpt"))
        return df, self.meta[name.upper()].model_copy(deep=True)

    def write(self, df: pd.DataFrame, meta: DatasetMeta) -> None:
        df = df[meta.names].reset_index(drop=True)
        write_xpt(self.sdtm / f"{meta.name.lower()}.xpt", df, meta, CREATED)
        self._save_meta(meta)

    def write_json(self, df: pd.DataFrame, meta: DatasetMeta) -> None:
        from cdisc.datasetjson import write_dataset_json
        df = df[meta.names].reset_index(drop=True)
        write_dataset_json(self.sdtm / f"{meta.name.lower()}.json", df, meta, study_oid=str(df["STUDYID"].iloc[0]),
                           metadata_version_oid="MDV.1", created=CREATED, originator="cdisc benchmarks/defects.py")
        (self.sdtm / f"{meta.name.lower()}.xpt").unlink()
        self._save_meta(meta)

    def _save_meta(self, meta: DatasetMeta) -> None:
        self.meta[meta.name] = meta
        data = {n: m.model_dump(mode="json", by_alias=True, exclude_none=True) for n, m in self.meta.items()}
        (self.folder / "metadata.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _rec(i) -> int:
    return int(i) + 1                 # DataFrame position -> 1-based record number


def _py(v):
    """numpy scalars -> Python (for defect.json and printing); 2.0 -> 2."""
    v = v.item() if hasattr(v, "item") else v
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _change(ds, idx, var, before, after, **extra) -> dict:
    return {"dataset": ds, "records": [_rec(i) for i in (idx if isinstance(idx, list) else [idx])],
            "variable": var, "before": _py(before), "after": _py(after),
            **{k: _py(v) for k, v in extra.items()}}


def _full_date(s: pd.Series) -> pd.Series:
    return s.astype(str).str.match(r"^\d{4}-\d{2}-\d{2}")


# ----------------------------------------------------------------------------- the defects

@defect("orphan_subject", "an AE record (and its SUPPAE rows) belongs to a USUBJID that is not in DM")
def orphan_subject(c: Copy) -> dict:
    ae, m = c.read("AE")
    supp, sm = c.read("SUPPAE")
    i = ae.index[-1]
    old = ae.at[i, "USUBJID"]
    new = f"{ae.at[i, 'STUDYID']}-999-999"
    seq = f"{ae.at[i, 'AESEQ']:g}"
    j = supp.index[(supp.USUBJID == old) & (supp.IDVAR == "AESEQ") & (supp.IDVARVAL.str.strip() == seq)]
    ae.at[i, "USUBJID"] = new
    supp.loc[j, "USUBJID"] = new          # the SUPPAE rows follow their parent: SUPPAE stays consistent
    c.write(ae, m)
    c.write(supp, sm)
    return _change("AE", i, "USUBJID", old, new, also={"SUPPAE": [_rec(x) for x in j]})


@defect("duplicate_seq", "two LB records of one subject have the same LBSEQ")
def duplicate_seq(c: Copy) -> dict:
    lb, m = c.read("LB")
    subj = lb.USUBJID.iloc[0]
    i0, i1 = lb.index[lb.USUBJID == subj][:2]
    before = lb.at[i1, "LBSEQ"]
    lb.at[i1, "LBSEQ"] = lb.at[i0, "LBSEQ"]
    c.write(lb, m)
    return _change("LB", i1, "LBSEQ", before, lb.at[i0, "LBSEQ"])


@defect("bad_iso8601", "an AESTDTC is not ISO 8601 (a blank instead of T between date and time)")
def bad_iso8601(c: Copy) -> dict:
    ae, m = c.read("AE")
    i = ae.index[ae.AESTDTC.str.contains("T")][0]
    before = ae.at[i, "AESTDTC"]
    ae.at[i, "AESTDTC"] = before.replace("T", " ")
    c.write(ae, m)
    return _change("AE", i, "AESTDTC", before, ae.at[i, "AESTDTC"])


@defect("dy_off_by_one", "an AESTDY is one more than the study day of AESTDTC")
def dy_off_by_one(c: Copy) -> dict:
    ae, m = c.read("AE")
    i = ae.index[(ae.AESTDY >= 2) & _full_date(ae.AESTDTC)][0]
    before = ae.at[i, "AESTDY"]
    ae.at[i, "AESTDY"] = before + 1
    c.write(ae, m)
    return _change("AE", i, "AESTDY", before, before + 1)


@defect("codelist_nonextensible", "DM.SEX has a value outside the non-extensible SEX codelist (C66731)")
def codelist_nonextensible(c: Copy) -> dict:
    dm, m = c.read("DM")
    i = dm.index[dm.SEX == "M"][0]
    dm.at[i, "SEX"] = "MALE"
    c.write(dm, m)
    return _change("DM", i, "SEX", "M", "MALE")


@defect("req_variable_missing", "AE has no AEDECOD column (Req in SDTMIG 3.4)")
def req_variable_missing(c: Copy) -> dict:
    ae, m = c.read("AE")
    m.variables = [v for v in m.variables if v.name != "AEDECOD"]
    m.keys = [k for k in m.keys if k != "AEDECOD"]
    c.write(ae, m)
    return {"dataset": "AE", "records": [], "variable": "AEDECOD", "before": "present", "after": "absent"}


@defect("control_ae_json", "no defect: AE written as Dataset-JSON v1.1 (the control for label_over_40)", control=True)
def control_ae_json(c: Copy) -> dict:
    ae, m = c.read("AE")
    c.write_json(ae, m)
    return {"dataset": "AE", "records": [], "variable": None, "before": "sdtm/ae.xpt", "after": "sdtm/ae.json"}


@defect("label_over_40", "the AESTDTC label has 44 characters (> 40); AE is written as Dataset-JSON v1.1",
        baseline="control_ae_json")
def label_over_40(c: Copy) -> dict:
    ae, m = c.read("AE")
    v = m.variable("AESTDTC")
    before = v.label
    v.label = LONG_LABEL
    c.write_json(ae, m)
    return {"dataset": "AE", "records": [], "variable": "AESTDTC", "before": before, "after": LONG_LABEL,
            "file": "sdtm/ae.json"}


@defect("epoch_blank_post_dose", "EPOCH is blank on an AE record that starts after the first dose (full date)")
def epoch_blank_post_dose(c: Copy) -> dict:
    ae, m = c.read("AE")
    i = ae.index[(ae.AESTDY >= 1) & _full_date(ae.AESTDTC) & (ae.EPOCH == "TREATMENT")][0]
    before = ae.at[i, "EPOCH"]
    ae.at[i, "EPOCH"] = ""
    c.write(ae, m)
    return _change("AE", i, "EPOCH", before, "")


@defect("endtc_before_stdtc", "an AEENDTC is one day before its AESTDTC (AEENDY consistent with it)")
def endtc_before_stdtc(c: Copy) -> dict:
    ae, m = c.read("AE")
    ok = (ae.AESTDY >= 2) & _full_date(ae.AESTDTC) & _full_date(ae.AEENDTC)
    i = ae.index[ok][0]
    before = ae.at[i, "AEENDTC"]
    day = datetime.date.fromisoformat(ae.at[i, "AESTDTC"][:10]) - datetime.timedelta(days=1)
    ae.at[i, "AEENDTC"] = day.isoformat()
    ae.at[i, "AEENDY"] = ae.at[i, "AESTDY"] - 1
    c.write(ae, m)
    return _change("AE", i, "AEENDTC", before, day.isoformat())


@defect("armcd_not_in_ta", "a subject's planned ARMCD/ARM (DL4) is not an arm of TA")
def armcd_not_in_ta(c: Copy) -> dict:
    dm, m = c.read("DM")
    i = dm.index[0]
    before = dm.at[i, "ARMCD"]
    dm.at[i, "ARMCD"] = "DL4"
    dm.at[i, "ARM"] = dm.at[i, "ARM"].rsplit(" ", 2)[0] + " 3x10^7 cells/kg"
    c.write(dm, m)
    return _change("DM", i, "ARMCD", before, "DL4", arm=dm.at[i, "ARM"])


@defect("duplicate_key", "two LB records have the same natural key (a copy of the last record, new LBSEQ)")
def duplicate_key(c: Copy) -> dict:
    lb, m = c.read("LB")
    last = lb.iloc[[-1]].copy()
    last["LBSEQ"] = lb.loc[lb.USUBJID == last.USUBJID.iloc[0], "LBSEQ"].max() + 1
    lb = pd.concat([lb, last], ignore_index=True)
    c.write(lb, m)
    return _change("LB", [len(lb) - 2, len(lb) - 1], "LBSEQ", None, last.LBSEQ.iloc[0], keys=m.keys)


@defect("supp_orphan_parent", "a SUPPAE record points to an AESEQ its subject does not have")
def supp_orphan_parent(c: Copy) -> dict:
    supp, m = c.read("SUPPAE")
    ae, _ = c.read("AE")
    row = supp.iloc[[-1]].copy()
    subj = row.USUBJID.iloc[0]
    seq = int(ae.loc[ae.USUBJID == subj, "AESEQ"].max()) + 1
    row["IDVARVAL"] = str(seq)
    supp = pd.concat([supp, row], ignore_index=True)
    c.write(supp, m)
    return _change("SUPPAE", len(supp) - 1, "IDVARVAL", None, str(seq), qnam=row.QNAM.iloc[0])


@defect("rfstdtc_not_first_exposure", "DM.RFSTDTC is 85 minutes after the subject's first study-treatment EXSTDTC")
def rfstdtc_not_first_exposure(c: Copy) -> dict:
    dm, m = c.read("DM")
    i = dm.index[dm.RFSTDTC.str.len() == 16][0]
    before = dm.at[i, "RFSTDTC"]
    after = (datetime.datetime.fromisoformat(before) + datetime.timedelta(minutes=85)).strftime("%Y-%m-%dT%H:%M")
    assert after[:10] == before[:10], "same day, so that no --DY changes"
    dm.at[i, "RFSTDTC"] = after
    c.write(dm, m)
    return _change("DM", i, "RFSTDTC", before, after)


@defect("dthfl_without_dthdtc", "DTHFL = Y with DTHDTC blank")
def dthfl_without_dthdtc(c: Copy) -> dict:
    dm, m = c.read("DM")
    i = dm.index[dm.DTHFL == "Y"][0]
    before = dm.at[i, "DTHDTC"]
    dm.at[i, "DTHDTC"] = ""
    c.write(dm, m)
    return _change("DM", i, "DTHDTC", before, "")


@defect("ts_missing_sstdtc", "TS has no SSTDTC (study start date) record, a parameter FDA requires")
def ts_missing_sstdtc(c: Copy) -> dict:
    ts, m = c.read("TS")
    i = ts.index[ts.TSPARMCD == "SSTDTC"]
    ts = ts.drop(index=i)
    c.write(ts, m)
    return {"dataset": "TS", "records": [], "variable": "TSPARMCD", "before": "SSTDTC", "after": "absent",
            "removed_records": [_rec(x) for x in i]}


@defect("req_value_null", "LBTESTCD (Req) is blank on one LB record")
def req_value_null(c: Copy) -> dict:
    lb, m = c.read("LB")
    i = lb.index[len(lb) // 2]
    before = lb.at[i, "LBTESTCD"]
    lb.at[i, "LBTESTCD"] = ""
    c.write(lb, m)
    return _change("LB", i, "LBTESTCD", before, "")


@defect("domain_value_wrong", "DOMAIN is 'EA' on one AE record")
def domain_value_wrong(c: Copy) -> dict:
    ae, m = c.read("AE")
    i = ae.index[len(ae) // 2]
    ae.at[i, "DOMAIN"] = "EA"
    c.write(ae, m)
    return _change("AE", i, "DOMAIN", "AE", "EA")


@defect("variable_not_allowed", "AE carries AETRTEM (a SUPPAE qualifier in SDTMIG, not an AE variable)")
def variable_not_allowed(c: Copy) -> dict:
    ae, m = c.read("AE")
    ae["AETRTEM"] = ae.AESTDY.map(lambda d: "Y" if d >= 1 else "N" if d <= -1 else "")
    m.variables.append(VariableMeta(name="AETRTEM", label="Treatment Emergent Flag", type="Char"))
    c.write(ae, m)
    return {"dataset": "AE", "records": [], "variable": "AETRTEM", "before": "absent", "after": "present"}


@defect("dm_duplicate_subject", "DM has two records for one subject (a copy of the last record)")
def dm_duplicate_subject(c: Copy) -> dict:
    dm, m = c.read("DM")
    dm = pd.concat([dm, dm.iloc[[-1]]], ignore_index=True)
    c.write(dm, m)
    return _change("DM", [len(dm) - 2, len(dm) - 1], "USUBJID", None, dm.USUBJID.iloc[-1])


@defect("ageu_missing", "AGEU is blank on a DM record with AGE")
def ageu_missing(c: Copy) -> dict:
    dm, m = c.read("DM")
    i = dm.index[dm.AGE.notna()][0]
    before = dm.at[i, "AGEU"]
    dm.at[i, "AGEU"] = ""
    c.write(dm, m)
    return _change("DM", i, "AGEU", before, "")


@defect("stresn_not_stresc", "LBSTRESN differs from the numeric LBSTRESC on one record")
def stresn_not_stresc(c: Copy) -> dict:
    lb, m = c.read("LB")
    num = pd.to_numeric(lb.LBSTRESC, errors="coerce")
    i = lb.index[num.notna() & (num == lb.LBSTRESN) & (num > 1)][0]
    before = lb.at[i, "LBSTRESN"]
    lb.at[i, "LBSTRESN"] = before + 1
    c.write(lb, m)
    return _change("LB", i, "LBSTRESN", before, before + 1, stresc=lb.at[i, "LBSTRESC"])


# ----------------------------------------------------------------------------- driver

def make(build: Path, out: Path, name: str) -> dict:
    """Copy ``build`` to ``out/name`` (replaced if it exists) and inject defect ``name``."""
    target = out / name
    if target.exists():
        if not (target / "defect.json").exists():
            raise SystemExit(f"{target} exists and was not written by defects.py; not touching it")
        shutil.rmtree(target)
    shutil.copytree(build, target, ignore=shutil.ignore_patterns("validation", "*.failed"))
    d = DEFECTS[name]
    info = {"defect": name, "what": d.what, **d.fn(Copy(target))}
    (target / "defect.json").write_text(json.dumps(info, indent=1, default=str) + "\n", encoding="utf-8")
    return info


def make_all(build: Path, out: Path, only=None) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    return [make(build, out, n) for n in DEFECTS if not only or n in only]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", type=Path, nargs="?", help="a cdisc build folder (the shipped study)")
    ap.add_argument("out", type=Path, nargs="?", help="where the copies go (OUT/<defect>/)")
    ap.add_argument("--only", nargs="*", help="defect names")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list or not args.out:
        for d in DEFECTS.values():
            print(f"{d.name:<28} {d.what}")
        return 0
    for info in make_all(args.build, args.out, args.only):
        recs = ",".join(map(str, info["records"])) or "-"
        print(f"{info['defect']:<28} {info['dataset']:<7} rec {recs:<9} {info['variable']}: "
              f"{info['before']!r} -> {info['after']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
