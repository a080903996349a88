"""Flags from records related through RELREC (SDTMIG 3.4 §8.2: record-level relationships).

E.g. on a CRS adverse event: was tocilizumab given for it (a CM record linked to the AE in
RELREC), was the subject transferred to the ICU for it (an HO record linked to the AE)?
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from cdisc.errors import SpecError

from .flags import _condition_mask, _require_columns


def _text(s: pd.Series) -> pd.Series:
    """Key values as text: 3.0 -> '3', ' 3 ' -> '3' (RELREC IDVARVAL is text)."""
    num = pd.to_numeric(s, errors="coerce")
    as_int = num.dropna().astype("int64").astype("str")
    out = s.astype("str").str.strip()
    out.loc[as_int.index] = as_int
    return out.where(s.notna(), "")


def derive_var_relrec_exist_flag(dataset: pd.DataFrame, *, dataset_relrec: pd.DataFrame,
                                 dataset_add: pd.DataFrame, rdomain: str, idvar: str,
                                 rdomain_add: str, idvar_add: str, new_var: str,
                                 condition: Any = None, true_value: Any = "Y",
                                 false_value: Any = "N") -> pd.DataFrame:
    """Flag each record of ``dataset`` that RELREC relates to a ``dataset_add`` record meeting
    ``condition``.

    Arguments:
        dataset_relrec: the RELREC dataset (RDOMAIN, USUBJID, IDVAR, IDVARVAL, RELID).
        rdomain / idvar: the domain of ``dataset``'s records in RELREC and the key variable
            RELREC names for them (e.g. ``AE`` / ``AESPID``); ``idvar`` must be a column of
            ``dataset``.
        rdomain_add / idvar_add: the same for the related records (e.g. ``CM`` / ``CMSPID``).
        condition: which related records count (e.g. ``CMDECOD == 'TOCILIZUMAB'``).

    Algorithm:
        1. RELREC rows of ``rdomain`` with IDVAR ``idvar`` and rows of ``rdomain_add`` with
           IDVAR ``idvar_add`` are paired on USUBJID and RELID (one-to-one or many-to-many
           relationships alike);
        2. the pairs are kept where the related ``dataset_add`` record (USUBJID and
           ``idvar_add``, compared as text) meets ``condition``;
        3. a ``dataset`` record (USUBJID and ``idvar`` as text) in a kept pair gets
           ``true_value``, every other record ``false_value``.

    Rule: SDTMIG 3.4 §8.2 (RELREC); ADaMIG 1.3 (flags Y/N).
    """
    func = "derive_var_relrec_exist_flag"
    _require_columns(dataset_relrec, ["USUBJID", "RDOMAIN", "IDVAR", "IDVARVAL", "RELID"], func=func,
                     arg="dataset_relrec", label="dataset_relrec")
    _require_columns(dataset, ["USUBJID", idvar], func=func, arg="idvar")
    _require_columns(dataset_add, ["USUBJID", idvar_add], func=func, arg="idvar_add", label="dataset_add")
    if new_var in dataset.columns:
        raise SpecError(f"{func}: variable {new_var} already exists in dataset")
    rel = dataset_relrec
    side = rel[(rel["RDOMAIN"] == rdomain) & (rel["IDVAR"] == idvar)]
    other = rel[(rel["RDOMAIN"] == rdomain_add) & (rel["IDVAR"] == idvar_add)]
    pairs = pd.DataFrame({"USUBJID": side["USUBJID"].to_numpy(), "RELID": side["RELID"].to_numpy(),
                          "__k": _text(side["IDVARVAL"]).to_numpy()}).merge(
        pd.DataFrame({"USUBJID": other["USUBJID"].to_numpy(), "RELID": other["RELID"].to_numpy(),
                      "__ka": _text(other["IDVARVAL"]).to_numpy()}), on=["USUBJID", "RELID"])
    add = dataset_add[_condition_mask(dataset_add, condition, func=func, arg="condition")]
    hits = pairs.merge(pd.DataFrame({"USUBJID": add["USUBJID"].to_numpy(),
                                     "__ka": _text(add[idvar_add]).to_numpy()}).drop_duplicates(),
                       on=["USUBJID", "__ka"])
    keys = set(zip(hits["USUBJID"], hits["__k"]))
    mine = pd.Series(list(zip(dataset["USUBJID"], _text(dataset[idvar]))), index=dataset.index)
    out = dataset.copy(deep=False)
    out[new_var] = mine.map(lambda k: k in keys).map({True: true_value, False: false_value})
    return out
