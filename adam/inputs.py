"""The SDTM an ADaM spec reads, from a delivered SDTM folder: split datasets as one domain,
every SUPP-- merged into its parent (admiral ``combine_supp``), RELREC as it is.

``adam_inputs(datasets)`` returns the frames a spec can name:

* every delivered dataset under its own name (``LBCH``, ``SUPPAE``, ``RELREC``, ``TS``);
* each parent with its SUPP-- qualifiers as columns (``AE`` has ``AETRTEM`` from SUPPAE),
  the split parts too (``LBCH`` has the QNAMs of ``SUPPLBCH``);
* each split domain once more as one frame under the domain's name (SDTMIG 3.4 §4.1.7:
  ``LBCH`` + ``LBHE`` + ``LBUR`` = ``LB``), so an ADLB spec reads ``LB`` whether the CRO
  split it or not.

Orphan supplemental records (no parent record for their IDVAR/IDVARVAL) are not merged
anywhere; they are counted in the notes returned (validation of the delivered SDTM reports
each one), never dropped without a word.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdisc.errors import DataError, Problem

__all__ = ["adam_inputs", "combine_supp"]

SUPP_KEYS = ["STUDYID", "USUBJID"]


def _as_text(values: pd.Series) -> pd.Series:
    """IDVAR values as IDVARVAL holds them: numbers without a trailing ``.0`` (AESEQ 3.0 -> "3")."""
    if values.dtype.kind in "fiu":
        v = values.to_numpy(dtype=float)
        whole = np.isfinite(v) & (v == np.round(v))
        out = np.where(whole, np.char.mod("%d", np.where(whole, v, 0).astype(np.int64)), values.astype(str))
        out = np.where(np.isnan(v), "", out)
        return pd.Series(out, index=values.index, dtype=object)
    return values.astype(str).str.strip()


def combine_supp(dataset: pd.DataFrame, dataset_supp: pd.DataFrame, *, name: str = "",
                 supp_name: str = "") -> tuple[pd.DataFrame, list[Problem]]:
    """Merge the supplemental qualifiers of ``dataset_supp`` into ``dataset`` as columns.

    admiral: ``combine_supp(dataset, dataset_supp)`` (metatools ``combine_supp``).

    Algorithm:
        1. The SUPP-- records are grouped by IDVAR. Records with a blank IDVAR qualify the
           subject (merged by STUDYID, USUBJID); others qualify the parent record whose
           IDVAR value, as text (AESEQ 3 -> "3"), equals IDVARVAL.
        2. Per group, QNAM values are pivoted to columns named QNAM holding QVAL (text).
           Two QVALs for one parent record and QNAM are a DataError naming them.
        3. A QNAM that is already a parent variable is a DataError (the qualifier would
           overwrite it); an IDVAR that is not a parent variable likewise.
        4. Left join onto the parent: every parent record is kept, in its order; a parent
           record without a qualifier gets "" (XPT's blank). SUPP-- records that match no
           parent record are returned as a note (not merged, not dropped silently).

    Returns the merged parent and the notes (Problem objects; orphans, not errors).
    """
    supp = dataset_supp
    need = {"USUBJID", "IDVAR", "IDVARVAL", "QNAM", "QVAL"}
    missing = sorted(need - set(supp.columns))
    if missing:
        raise DataError(f"{supp_name or 'SUPP--'}: lacks {', '.join(missing)}; cannot merge it into {name}",
                        file=supp_name)
    out = dataset.copy(deep=False)
    notes: list[Problem] = []
    errors: list[Problem] = []
    qnams = sorted(supp["QNAM"].astype(str).str.strip().unique())
    clash = [q for q in qnams if q in dataset.columns]
    if clash:
        raise DataError(f"{supp_name}: QNAM {', '.join(clash)} is already a variable of {name}; "
                        "the qualifier cannot become a column", file=supp_name, column="QNAM")
    for q in qnams:
        out[q] = ""
    idvars = supp["IDVAR"].astype(str).str.strip()
    for idvar in sorted(idvars.unique()):
        part = supp[idvars == idvar]
        keys = [k for k in SUPP_KEYS if k in part.columns and k in dataset.columns]
        if idvar:
            if idvar not in dataset.columns:
                errors.append(Problem(f"{supp_name}: IDVAR {idvar} is not a variable of {name}",
                                      file=supp_name, column="IDVAR"))
                continue
            left = out[keys].astype(str).assign(__IDVARVAL=_as_text(dataset[idvar]))
        else:
            left = out[keys].astype(str).assign(__IDVARVAL="")
        right = part[keys].astype(str).assign(__IDVARVAL=part["IDVARVAL"].astype(str).str.strip() if idvar else "",
                                              __QNAM=part["QNAM"].astype(str).str.strip(),
                                              __QVAL=part["QVAL"].astype(str))
        dup = right.duplicated(keys + ["__IDVARVAL", "__QNAM"], keep=False)
        if dup.any():
            first = right[dup].iloc[0]
            errors.append(Problem(f"{supp_name}: {int(dup.sum())} records give QNAM {first['__QNAM']} twice for one "
                                  f"{name} record (USUBJID {first.get('USUBJID', '')}, {idvar or 'subject'} "
                                  f"{first['__IDVARVAL']})", file=supp_name, column="QNAM"))
            continue
        wide = right.pivot(index=keys + ["__IDVARVAL"], columns="__QNAM", values="__QVAL")
        merged = left.merge(wide, how="left", left_on=keys + ["__IDVARVAL"], right_index=True, sort=False)
        for q in wide.columns:
            got = merged[q].to_numpy()
            has = ~pd.isna(got)
            col = out[q].to_numpy(dtype=object).copy()
            col[has] = got[has]
            out[q] = col
        matched = right.merge(left.drop_duplicates(), how="left", on=keys + ["__IDVARVAL"], indicator=True)
        orphans = int((matched["_merge"] == "left_only").sum())
        if orphans:
            notes.append(Problem(f"{supp_name}: {orphans} record(s) with IDVAR {idvar or '(blank)'} match no {name} "
                                 "record and are not merged", file=supp_name))
    if errors:
        raise DataError(errors)
    return out, notes


def adam_inputs(datasets: dict[str, pd.DataFrame], split_of: dict[str, str] | None = None
                ) -> tuple[dict[str, pd.DataFrame], list[Problem]]:
    """The frames ADaM specs read from a delivered SDTM folder (see the module docstring).

    ``split_of``: dataset name -> domain for split datasets (``LBCH`` -> ``LB``); default:
    a dataset whose name is longer than 2 letters and whose DOMAIN value is its first two
    letters (SDTMIG §4.1.7 naming), SUPP-- and AD-- excluded.
    """
    frames = dict(datasets)
    notes: list[Problem] = []
    for name in sorted(datasets):
        if not name.startswith("SUPP") or len(name) <= 4:
            continue
        parent = name[4:]
        if parent not in datasets:
            notes.append(Problem(f"{name}: its parent dataset {parent} is not in the delivery; not merged",
                                 file=name))
            continue
        frames[parent], got = combine_supp(frames[parent], datasets[name], name=parent, supp_name=name)
        notes.extend(got)
    if split_of is None:
        split_of = {}
        for name, df in datasets.items():
            if len(name) > 2 and not name.startswith(("SUPP", "AD", "RELREC")) and "DOMAIN" in df.columns and len(df):
                dom = str(df["DOMAIN"].iloc[0]).strip()
                if len(dom) == 2 and name.startswith(dom) and dom not in datasets:
                    split_of[name] = dom
    by_domain: dict[str, list[str]] = {}
    for name, dom in sorted(split_of.items()):
        by_domain.setdefault(dom, []).append(name)
    for dom, names in by_domain.items():
        frames[dom] = pd.concat([frames[n] for n in names], ignore_index=True, sort=False)
        for c in frames[dom].columns:                # a text variable only some splits have: blank elsewhere
            if frames[dom][c].dtype.kind not in "fiub":
                frames[dom][c] = frames[dom][c].astype(object).where(frames[dom][c].notna(), "")
    return frames, notes
