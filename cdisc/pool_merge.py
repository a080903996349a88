"""Pooling, the per-dataset steps (cdisc.pooling has the why): one metadata for the studies'
variables, recodes and CT harmonisation of each study's frame, stacking, sort keys, and the
USUBJID checks across studies."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataError, Problem
from .metadata import DatasetMeta

#: unit variables whose values come from the UNIT codelist even when the spec names none
#: (SDTMIG 3.4: --ORRESU, --STRESU, --DOSU; ADaMIG 1.3: AVALU)
UNIT_SUFFIXES = ("ORRESU", "STRESU", "DOSU", "ORNRU")
UNIT_NAMES = {"AVALU"}


def merge_metadata(name: str, items: list[tuple[str, DatasetMeta]], spec, report: dict,
                   problems: list[Problem]) -> DatasetMeta | None:
    """One DatasetMeta for ``name`` over the studies (``items``: (STUDYID, meta) in study order).

    Union of variables in first-seen order; one type per variable (a conflict is a Problem naming
    dataset, variable and studies); the first study's label unless pool.yaml ``labels`` gives one
    (others reported); the longest declared length, or None (= the longest used, FDA TCG §4.1.5.4)
    when a study declares none; the first codelist named (others reported)."""
    order: list[str] = []
    by_var: dict[str, list] = {}
    for sid, meta in items:
        for v in meta.variables:
            if v.name not in by_var:
                order.append(v.name)
                by_var[v.name] = []
            by_var[v.name].append((sid, v))
    studies = [sid for sid, _ in items]
    variables, ok = [], True
    for var in order:
        got = by_var[var]
        types = {}
        for sid, v in got:
            types.setdefault(v.type, []).append(sid)
        if len(types) > 1:
            ok = False
            problems.append(Problem(
                f"{name}.{var} is " + " but ".join(f"{t} in {', '.join(s)}" for t, s in sorted(types.items())),
                file=name, column=var, hint="a variable must have one type across pooled studies; "
                "make the studies agree (e.g. rebuild one with the other's type) before pooling"))
            continue
        first = got[0][1]
        label = spec.labels.get(f"{name}.{var}") or first.label
        labels = {sid: v.label for sid, v in got}
        if len(set(labels.values()) | {label}) > 1:
            report["labels"][f"{name}.{var}"] = {**labels, "pooled": label}
        codelists = {sid: v.codelist for sid, v in got if v.codelist}
        if len(set(codelists.values())) > 1:
            report["codelists"][f"{name}.{var}"] = codelists
        lengths = [v.length for _, v in got]
        length = max(lengths) if first.type == "Char" and None not in lengths else None
        if first.type == "Char" and len(set(lengths)) > 1:
            report["lengths"][f"{name}.{var}"] = {sid: v.length for sid, v in got}
        absent = [s for s in studies if s not in labels]
        if absent:
            report["absent"].setdefault(name, {})[var] = absent
        variables.append(first.model_copy(update={"label": label, "length": length,
                                                  "codelist": first.codelist or next(iter(codelists.values()), None)}))
    if not ok:
        return None
    return items[0][1].model_copy(update={"variables": variables})


def _norm(text) -> str:
    """As cdisc.ct matches spellings: trimmed, single-spaced, case-folded."""
    return " ".join(str(text).split()).casefold()


def codelist_of(var) -> str | None:
    """The codelist a pooled variable's values come from: its own, or UNIT for a unit variable."""
    if var.codelist:
        return var.codelist
    if var.name in UNIT_NAMES or (len(var.name) > 6 and var.name.endswith(UNIT_SUFFIXES)):
        return "UNIT"
    return None


def harmonise(study, name: str, df: pd.DataFrame, meta: DatasetMeta, spec, ct, report: dict) -> pd.DataFrame:
    """One study's frame with the pooled columns (absent ones blank / missing), the pool.yaml
    recodes applied, then every value of a codelist variable as its CDISC submission value."""
    df = df.copy()
    for v in meta.variables:
        if v.name not in df.columns:
            df[v.name] = "" if v.type == "Char" else np.nan
    df = df[meta.names]
    file = f"{study.shown}/{study.files[name].relative_to(study.folder).as_posix()}"
    for ch, to in spec.characters.items():
        for v in meta.variables:
            if v.type != "Char":
                continue
            hit = df[v.name].str.contains(ch, regex=False, na=False)
            if hit.any():
                df.loc[hit, v.name] = df.loc[hit, v.name].str.replace(ch, to, regex=False)
                report["characters"].append({"study": study.studyid, "dataset": name, "variable": v.name,
                                             "from": ch, "to": to, "records": int(hit.sum())})
    for r in spec.recodes:
        if r.variable not in df.columns or (r.dataset and r.dataset.upper() != name) or \
                (r.study and r.study != study.studyid) or meta.variable(r.variable).type != "Char":
            continue
        hit = df[r.variable].eq(r.from_)
        df.loc[hit, r.variable] = r.to
        report["recodes"].append({"study": study.studyid, "dataset": name, "variable": r.variable, "from": r.from_,
                                  "to": r.to, "records": int(hit.sum()), **({"reason": r.reason} if r.reason else {})})
    for v in meta.variables:
        cl_name = codelist_of(v)
        if v.type != "Char" or cl_name is None or cl_name not in ct:
            continue
        df[v.name] = _map_terms(df[v.name], ct[cl_name], dict(study=study.studyid, file=file, dataset=name,
                                                              variable=v.name, codelist=cl_name), report)
    return df


def _map_terms(col: pd.Series, cl, where: dict, report: dict) -> pd.Series:
    """Submission values for the spellings of ``col``; unknown values kept and reported."""
    counts = col.value_counts(sort=False)
    mapping = {}
    for value, n in sorted(counts.items(), key=lambda kv: str(kv[0])):
        if value is None or not str(value).strip():
            continue
        to = cl.lookup.get(_norm(value))
        if to is None:
            report["ct_unknown"].append({**where, "value": value, "records": int(n)})
        elif to != value:
            mapping[value] = to
            report["ct_harmonised"].append({**where, "from": value, "to": to, "records": int(n)})
    return col.map(lambda x: mapping.get(x, x)) if mapping else col


def stack(frames: list[pd.DataFrame], meta: DatasetMeta) -> pd.DataFrame:
    """The studies' frames one below the other, in study order (every record kept)."""
    pooled = pd.concat(frames, ignore_index=True, sort=False)[meta.names] if len(frames) > 1 else frames[0]
    for v in meta.variables:
        if v.type == "Char":
            pooled[v.name] = pooled[v.name].fillna("")
    return pooled


def sort_keys(meta: DatasetMeta, df: pd.DataFrame) -> list[str]:
    """The dataset's keys with STUDYID first (FDA TCG: integrated data sorted by study); without
    declared keys USUBJID and the sequence number (--SEQ / ASEQ)."""
    keys = [k for k in meta.keys if k in df.columns]
    if not keys:
        seq = f"{meta.name[:2]}SEQ" if meta.standard == "SDTM" else "ASEQ"
        keys = [k for k in ("USUBJID", seq) if k in df.columns]
    if "STUDYID" in df.columns:
        keys = ["STUDYID"] + [k for k in keys if k != "STUDYID"]
    return keys


def check_subjects(studies, frames: dict[str, pd.DataFrame], spec) -> dict:
    """USUBJID across studies (SDTMIG 3.4 DM.USUBJID: unique across all studies of a submission).

    A USUBJID under two STUDYIDs is an error naming both and their datasets, unless pool.yaml
    ``shared_subjects`` (true, or the list of USUBJIDs) says it is one person in two studies
    (an extension study): then it is reported, the records stay apart under their STUDYIDs."""
    where: dict[str, dict[str, list[str]]] = {}
    for name, df in frames.items():
        if "USUBJID" not in df.columns or "STUDYID" not in df.columns:
            continue
        pairs = df[["USUBJID", "STUDYID"]].drop_duplicates()
        for u, sid in zip(pairs["USUBJID"].tolist(), pairs["STUDYID"].tolist()):
            if str(u).strip():
                where.setdefault(u, {}).setdefault(sid, []).append(name)
    allowed = spec.shared_subjects
    shared, problems = [], []
    for u in sorted(where):
        if len(where[u]) < 2:
            continue
        entry = {"usubjid": u, "studies": {sid: sorted(ds) for sid, ds in sorted(where[u].items())}}
        if allowed is True or (isinstance(allowed, list) and u in allowed):
            shared.append(entry)
            continue
        problems.append(Problem(
            f"USUBJID {u} is in " + " and in ".join(f"study {sid} ({', '.join(sorted(ds)[:4])})"
                                                    for sid, ds in sorted(where[u].items())),
            column="USUBJID", hint="USUBJID must be unique across pooled studies; if it is one person in two "
            "studies (an extension study), list it under shared_subjects in pool.yaml"))
    if problems:
        raise DataError(problems)
    subjects = {}
    for s in studies:
        ids = {u for u, by in where.items() if s.studyid in by}
        subjects[s.studyid] = {"subjects": len(ids),
                               "usubjid_without_studyid": sum(s.studyid not in u for u in ids)}
    return {"by_study": subjects, "shared": shared}
