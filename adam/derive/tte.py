"""Time-to-event parameters (ADTTE): overall survival, event-free survival, duration of
response, time to CRS, ...

A parameter is defined by event sources (``CNSR = 0``) and censoring sources
(``CNSR >= 1``), each naming a dataset, an optional filter, the date variable and
constants describing the record (EVNTDESC, CNSDTDSC, SRCDOM, SRCVAR) plus source
variables to copy (``copy_vars``, e.g. ``{"SRCSEQ": "AESEQ"}``). Sources are plain
pydantic models, so a YAML spec maps onto them one to one.
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cdisc.errors import DataError, Problem, SpecError

from .flags import (_as_list, _condition_mask, _extreme_positions, _key_text,
                    _require_columns, _require_dates)
from .params import _check_new_param

__all__ = ["TTESource", "EventSource", "CensorSource", "derive_param_tte",
           "MissingStartWarning"]


class MissingStartWarning(UserWarning):
    """Subjects left out of a time-to-event parameter for lack of a start date
    (``derive_param_tte(on_missing_start="drop")``)."""

_CONSTANT = (str, int, float, bool, type(None))
_OUTPUT_TEXT = ("EVNTDESC", "CNSDTDSC", "SRCDOM", "SRCVAR")


class TTESource(BaseModel):
    """One source of events or censorings for :func:`derive_param_tte`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset_name: str = Field(description="key of the frame in source_datasets, e.g. 'adsl'")
    filter: str | None = Field(None, description="condition selecting the source records")
    date: str = Field(description="date or datetime column giving ADT")
    censor: int = Field(0, description="CNSR value: 0 event, >= 1 censoring reason")
    set_values_to: dict[str, Any] = Field(default_factory=dict,
                                          description="constants: EVNTDESC, CNSDTDSC, "
                                                      "SRCDOM, SRCVAR, ...")
    copy_vars: dict[str, str] = Field(default_factory=dict,
                                      description="{output variable: source column}, "
                                                  "e.g. {'SRCSEQ': 'AESEQ'}")
    order: list[Any] = Field(default_factory=list,
                             description="tie-breakers after the date, e.g. ['AESEQ']")

    @field_validator("set_values_to")
    @classmethod
    def _constants_only(cls, value: dict[str, Any]) -> dict[str, Any]:
        for k, v in value.items():
            if not isinstance(v, _CONSTANT):
                raise ValueError(f"set_values_to.{k} must be a constant")
        return value


class EventSource(TTESource):
    """An event (``CNSR = 0``), e.g. death from ADSL ``DTHDT`` where ``DTHFL == 'Y'``."""

    censor: int = Field(0, ge=0, le=0)


class CensorSource(TTESource):
    """A censoring (``CNSR >= 1``), e.g. last known alive date ``LSTALVDT``."""

    censor: int = Field(1, ge=1)


def _coerce_sources(sources: Sequence[Any], cls: type[TTESource], *, arg: str,
                    func: str) -> list[TTESource]:
    out = []
    for i, s in enumerate(_as_list(sources) if not isinstance(sources, dict) else [sources]):
        if isinstance(s, cls):
            out.append(s)
            continue
        try:
            data = s.model_dump() if isinstance(s, BaseModel) else s
            out.append(cls.model_validate(data))
        except ValidationError as exc:
            problems = [Problem(f"{func}: {e['msg']}",
                                key=f"{arg}[{i}]." + ".".join(str(x) for x in e["loc"]))
                        for e in exc.errors()]
            raise SpecError(problems) from None
    return out


def _source_records(sources: list[TTESource], source_datasets: Mapping[str, pd.DataFrame],
                    keys: list[str], mode: str, *, arg: str, func: str) -> pd.DataFrame:
    """First (events) / last (censorings) dated record per subject over all sources.

    Per source: filter, drop missing dates, take the first/last record per subject
    by (date, order...). Then over sources: the first/last by date, ties going to
    the source listed first (events) or last (censorings), as in admiral.
    """
    frames = []
    for i, src in enumerate(sources):
        where = f"{arg}[{i}] ({src.dataset_name})"
        if src.dataset_name not in source_datasets:
            raise SpecError(f"{func}: {where}: no dataset {src.dataset_name!r} in "
                            f"source_datasets (have {', '.join(source_datasets)})")
        data = source_datasets[src.dataset_name]
        _require_columns(data, keys, func=func, arg="subject_keys", label=where)
        _require_dates(data, [src.date], func=func, arg=f"{arg}[{i}].date", label=where)
        _require_columns(data, list(src.copy_vars.values()), func=func,
                         arg=f"{arg}[{i}].copy_vars", label=where)
        mask = _condition_mask(data, src.filter, func=func, arg=f"{arg}[{i}].filter")
        mask = mask & data[src.date].notna().to_numpy()
        pos = _extreme_positions(data, by_vars=keys, order=[src.date] + list(src.order),
                                 mode=mode, mask=mask, func=func)
        sel = data.iloc[pos]
        rec = sel[keys].reset_index(drop=True)
        rec["ADT"] = sel[src.date].dt.normalize().astype("datetime64[s]").to_numpy()
        dtf = src.date[:-2] + "DTF" if src.date.endswith("DT") else None
        if dtf and dtf in data.columns:
            rec["ADTF"] = pd.Series(sel[dtf].to_numpy(), dtype="str")
        rec["CNSR"] = src.censor
        for k, v in src.set_values_to.items():
            rec[k] = v
        for k, col in src.copy_vars.items():
            rec[k] = sel[col].to_numpy()
        rec["_source_nr_"] = i
        frames.append(rec)
    if not frames:
        return pd.DataFrame(columns=keys + ["ADT", "CNSR", "_source_nr_"])
    combined = pd.concat(frames, ignore_index=True, sort=False)
    pos = _extreme_positions(combined, by_vars=keys, order=["ADT", "_source_nr_"],
                             mode=mode, func=func)
    return combined.iloc[pos].reset_index(drop=True)


def derive_param_tte(dataset_adsl: pd.DataFrame, *,
                     source_datasets: Mapping[str, pd.DataFrame], start_date: str,
                     event_conditions: Sequence[EventSource | Mapping[str, Any]],
                     censor_conditions: Sequence[CensorSource | Mapping[str, Any]],
                     set_values_to: Mapping[str, Any],
                     subject_keys: Sequence[str] = ("STUDYID", "USUBJID"),
                     filter_adsl: Any = None, before_start: str = "clamp",
                     on_missing_start: str = "error",
                     dataset: pd.DataFrame | None = None) -> pd.DataFrame:
    """Derive a time-to-event parameter: one record per subject with ADT, AVAL, CNSR.

    Arguments:
        dataset_adsl: ADSL (subjects and the origin date).
        source_datasets: ``{name: frame}`` referred to by the sources' ``dataset_name``.
        start_date: ADSL date column of the time origin (``TRTSDT``, first infusion).
        event_conditions: :class:`EventSource` objects (or mappings of their fields).
        censor_conditions: :class:`CensorSource` objects (or mappings). At least one
            should exist for every subject (e.g. last known alive date).
        set_values_to: constants of the parameter, at least ``PARAMCD`` and ``PARAM``.
        subject_keys: subject identifiers (``STUDYID``, ``USUBJID``).
        filter_adsl: restricts the subjects (e.g. responders for duration of response).
        before_start: an event/censoring date before the origin: ``"clamp"`` sets ADT
            to STARTDT (admiral's rule), ``"error"`` raises a DataError naming them.
        on_missing_start: a subject (after ``filter_adsl``) without ``start_date``:
            ``"error"`` (default) stops with a DataError naming the subjects;
            ``"drop"`` leaves them out of the parameter, as admiral does, and emits a
            :class:`MissingStartWarning` giving their number and keys.
        dataset: optional frame the records are appended to (a PARAMCD already in it
            is a DataError); None returns only the new records.

    Difference from admiral (deliberate default): admiral silently drops a subject
    without a start date. Here the default stops, because a subject silently missing
    from a time-to-event analysis of a population is a finding; say which subjects are
    analysed with ``filter_adsl`` (e.g. ``present(TRTSDT)``), or choose
    ``on_missing_start: drop`` to get admiral's behaviour with a warning.

    Algorithm:
        1. Subjects = ``dataset_adsl`` records meeting ``filter_adsl``; STARTDT = the
           date part of ``start_date``; a missing STARTDT: see ``on_missing_start``.
        2. Events: per event source, the source records meeting its filter with a
           non-missing date; per subject the earliest (then by the source's
           ``order``). Over all event sources, the earliest date per subject wins; on
           equal dates the source listed first wins. CNSR = 0.
        3. Censorings: likewise but the **latest** record per source and over sources;
           on equal dates the source listed last wins. CNSR = the source's value.
        4. Per subject: the event if there is one (so an event and a censoring on the
           same date -> the event), otherwise the censoring. Subjects of the sources
           not among the subjects of step 1 are ignored.
        5. A subject of step 1 with neither an event nor a censoring is a DataError
           naming the subjects (add a censoring source that always exists, such as
           the last known alive date, rather than guessing a date here).
        6. ADT before STARTDT: see ``before_start``.
        7. AVAL = ADT - STARTDT + 1 in days (admiral ``derive_vars_duration`` with
           ``add_one = TRUE``: an event on the day of the first infusion is day 1).
        8. Output, in the order of ``dataset_adsl``: subject keys, ``set_values_to``
           (PARAMCD, PARAM, ...), STARTDT (and STARTDTF if ADSL has
           ``<start>DTF``), ADT (and ADTF if a source date has a ``*DTF`` companion),
           AVAL, CNSR, EVNTDESC, CNSDTDSC, SRCDOM, SRCVAR, SRCSEQ (missing where a
           source does not set them) and any other source-set variables.

    Rule: ADaM Basic Data Structure for Time-to-Event Analyses v1.0 (CNSR: 0 event,
    positive integers censoring; STARTDT, ADT, CNSDTDSC, EVNTDESC, SRCDOM/SRCVAR/
    SRCSEQ traceability) and ADaMIG 1.3 BDS.
    """
    func = "derive_param_tte"
    keys = list(subject_keys)
    if on_missing_start not in ("error", "drop"):
        raise SpecError(f"{func}: on_missing_start must be 'error' or 'drop', "
                        f"not {on_missing_start!r}")
    if before_start not in ("clamp", "error"):
        raise SpecError(f"{func}: before_start must be 'clamp' or 'error', "
                        f"not {before_start!r}")
    values = dict(set_values_to or {})
    for k in ("PARAMCD", "PARAM"):
        if k not in values:
            raise SpecError(f"{func}: set_values_to must set {k}")
    events = _coerce_sources(event_conditions, EventSource, arg="event_conditions",
                             func=func)
    censors = _coerce_sources(censor_conditions, CensorSource, arg="censor_conditions",
                              func=func)
    if not events:
        raise SpecError(f"{func}: event_conditions must list at least one event source")
    _require_columns(dataset_adsl, keys, func=func, arg="subject_keys", label="dataset_adsl")
    _require_dates(dataset_adsl, [start_date], func=func, arg="start_date",
                   label="dataset_adsl")
    _check_new_param(dataset, values, "PARAMCD", func=func)

    # 1. subjects and origin
    adsl = dataset_adsl[_condition_mask(dataset_adsl, filter_adsl, func=func,
                                        arg="filter_adsl")]
    subjects = adsl[keys].reset_index(drop=True)
    subjects["STARTDT"] = adsl[start_date].dt.normalize().astype("datetime64[s]").to_numpy()
    start_dtf = start_date[:-2] + "DTF" if start_date.endswith("DT") else None
    if start_dtf and start_dtf in adsl.columns:
        subjects["STARTDTF"] = pd.Series(adsl[start_dtf].to_numpy(), dtype="str")
    no_start = np.flatnonzero(subjects["STARTDT"].isna().to_numpy())
    if len(no_start):
        text = (f"{func} {values['PARAMCD']}: {len(no_start)} subject(s) have no "
                f"{start_date}: {_key_text(subjects, keys, no_start)}")
        if on_missing_start == "error":
            raise DataError(Problem(text, column=start_date,
                                    hint="exclude them with filter_adsl, or set "
                                         "on_missing_start: drop"))
        warnings.warn(MissingStartWarning(text + " -- left out of the parameter "
                                                 "(on_missing_start: drop)"), stacklevel=2)
        subjects = subjects.drop(index=no_start).reset_index(drop=True)

    # 2-4. events, censorings, event wins
    ev = _source_records(events, source_datasets, keys, "first", arg="event_conditions",
                         func=func)
    cn = _source_records(censors, source_datasets, keys, "last", arg="censor_conditions",
                         func=func)
    ev["_is_event_"] = 1
    cn["_is_event_"] = 0
    both = pd.concat([ev, cn], ignore_index=True, sort=False)
    pos = _extreme_positions(both, by_vars=keys, order=["_is_event_"], mode="last",
                             func=func)
    chosen = both.iloc[pos].drop(columns=["_is_event_", "_source_nr_"])
    out = subjects.merge(chosen, how="left", on=keys, sort=False, indicator=True)

    # 5. nobody may fall through
    none = np.flatnonzero((out["_merge"] == "left_only").to_numpy())
    if len(none):
        raise DataError(Problem(
            f"{func} {values['PARAMCD']}: {len(none)} subject(s) have neither an event "
            f"nor a censoring date: {_key_text(out, keys, none)}",
            hint="add a censoring source every subject has (e.g. last known alive date "
                 "or STARTDT itself)"))
    out = out.drop(columns=["_merge"])

    # 6. dates before the origin
    early = (out["ADT"] < out["STARTDT"]).to_numpy()
    if early.any():
        if before_start == "error":
            rows = np.flatnonzero(early)
            raise DataError(Problem(
                f"{func} {values['PARAMCD']}: {len(rows)} subject(s) have an event or "
                f"censoring date before {start_date}: {_key_text(out, keys, rows)}",
                hint="check the source dates or restrict the sources with filter"))
        out.loc[early, "ADT"] = out.loc[early, "STARTDT"]

    # 7. AVAL in days, day of origin = 1
    days = (out["ADT"] - out["STARTDT"]).dt.days.to_numpy(dtype=float)
    out["AVAL"] = days + 1.0
    out["CNSR"] = out["CNSR"].astype(np.int64)

    # 8. layout
    for k, v in values.items():
        out[k] = v
    for col in _OUTPUT_TEXT:
        if col not in out.columns:
            out[col] = pd.Series([np.nan] * len(out), dtype="str")
        elif not pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].astype("str")
    if "SRCSEQ" not in out.columns:
        out["SRCSEQ"] = np.nan
    out["SRCSEQ"] = pd.to_numeric(out["SRCSEQ"], errors="coerce").astype(float)
    lead = keys + list(values) + ["STARTDT"]
    lead += ["STARTDTF"] if "STARTDTF" in out.columns else []
    lead += ["ADT"] + (["ADTF"] if "ADTF" in out.columns else [])
    lead += ["AVAL", "CNSR", "EVNTDESC", "CNSDTDSC", "SRCDOM", "SRCVAR", "SRCSEQ"]
    lead = list(dict.fromkeys(lead))
    out = out[lead + [c for c in out.columns if c not in lead]]
    if dataset is None:
        return out
    return pd.concat([dataset, out], ignore_index=True, sort=False)
