"""Cross-dataset and metadata rule checks, registered by the ``check`` name in rules.yaml.

Each check is ``fn(ctx, rule) -> pd.DataFrame`` of raw findings with the columns of
``RAW_COLUMNS`` (``row`` is the 1-based record number, or NA for dataset-level
findings; ``usubjid`` may be NA and is then looked up from the row by the engine). A
check raises ``NotApplicable`` when the datasets it needs are not in the build. Checks
are vectorised: they loop over datasets, variables, parameters or spec entries, never
over records.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from pydantic import ValidationError

from cdisc.distinct import on_distinct
from cdisc.errors import Problem, SpecError
from cdisc.metadata import DatasetMeta
from cdisc.specio import parse_yaml

from .dates import (
    TRUNCATED,
    blank,
    compare_iso,
    iso8601_valid,
    iso_date,
    sas_days,
    sas_kind,
    sas_to_datetime,
)
from .model import Rule, RuleScope

RAW_COLUMNS = ["dataset", "variable", "row", "usubjid", "value", "detail"]


class NotApplicable(Exception):
    """The rule cannot apply to this build (a dataset or variable it needs is absent)."""


# ----------------------------------------------------------------------------- loading
def load_rules(path: Path | str | None = None) -> list[Rule]:
    """Load and validate the rule catalogue (default: the packaged ``rules.yaml``).

    Raises:
        SpecError: invalid YAML, an invalid entry (key path ``rules[i].field``), a
            duplicate ID, or a python rule whose ``check`` is not registered.
    """
    if path is None:
        text = resources.files("cdisc.validation").joinpath("rules.yaml").read_text(encoding="utf-8")
        where = "validation/rules.yaml"
    else:
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    data = parse_yaml(text, file=where) or {}
    entries = data.get("rules", []) if isinstance(data, dict) else data
    rules, problems, seen = [], [], set()
    for i, entry in enumerate(entries or []):
        try:
            rule = Rule.model_validate(entry)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(x) for x in err["loc"])
                problems.append(Problem(err["msg"], file=where, key=f"rules[{i}].{loc}"))
            continue
        if rule.id in seen:
            problems.append(Problem(f"duplicate rule id {rule.id}", file=where, key=f"rules[{i}].id"))
        seen.add(rule.id)
        if rule.engine == "python" and rule.check not in CHECKS:
            problems.append(
                Problem(
                    f"unknown check {rule.check!r}",
                    file=where,
                    key=f"rules[{i}].check",
                    hint=f"known checks: {', '.join(sorted(CHECKS))}",
                )
            )
        rules.append(rule)
    if problems:
        raise SpecError(problems)
    return rules


def apply_study_params(rules: list[Rule], overrides: dict | None, *, data_cut: str | None = None,
                       file: str = "specs/validation.yaml") -> list[Rule]:
    """Study values for rule parameters (``specs/validation.yaml: rules``, e.g. the study drug's
    EXTRT for XD-004), and the data cut for rules with a ``data_cut`` parameter (XD-018).

    Only ``params`` of existing rules may be set; an unknown rule or parameter is a SpecError
    naming ``file`` and the key."""
    if data_cut:
        rules = [r.model_copy(update={"params": {**r.params, "data_cut": data_cut}})
                 if "data_cut" in r.params and not r.params["data_cut"] else r for r in rules]
    by_id = {r.id: r for r in rules}
    for rid, body in (overrides or {}).items():
        if rid not in by_id:
            raise SpecError(f"unknown rule {rid}", file=file, key=f"rules.{rid}")
        extra = set(body or {}) - {"params"}
        if extra:
            raise SpecError(f"only params can be set, not {sorted(extra)}", file=file, key=f"rules.{rid}")
        unknown = set((body or {}).get("params") or {}) - set(by_id[rid].params)
        if unknown:
            raise SpecError(f"rule {rid} has no parameters {sorted(unknown)}", file=file, key=f"rules.{rid}.params")
        by_id[rid] = by_id[rid].model_copy(update={"params": {**by_id[rid].params, **body["params"]}})
    return [by_id[r.id] for r in rules]


# ----------------------------------------------------------------------------- context
@dataclass
class RuleContext:
    """The build as the checks see it: frames indexed 1..n, metadata, CT."""

    datasets: dict[str, pd.DataFrame]
    metas: dict[str, DatasetMeta]
    ct: dict
    touched: set[str] = field(default_factory=set)

    def standard(self, name: str) -> str:
        if name in self.metas:
            return self.metas[name].standard
        return "ADaM" if name.startswith("AD") else "SDTM"

    def need(self, name: str, columns: Iterable[str] = ()) -> pd.DataFrame:
        """The dataset, or NotApplicable when it (or one of ``columns``) is absent."""
        df = self.datasets.get(name)
        if df is None:
            raise NotApplicable(f"{name} is not in the build")
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise NotApplicable(f"{name} has no {', '.join(missing)}")
        self.touched.add(name)
        return df

    def select(self, scope: RuleScope, need: Iterable[str] = (), prefix: str | None = None) -> list[str]:
        """Datasets in scope that have every column in ``need`` (sorted by name)."""
        need = list(need)
        out = []
        for name in sorted(self.datasets):
            df = self.datasets[name]
            cls = self.metas[name].class_ if name in self.metas else None
            if not scope.covers(name, self.standard(name), cls):
                continue
            if prefix and not name.startswith(prefix):
                continue
            if any(c not in df.columns for c in need):
                continue
            out.append(name)
        self.touched.update(out)
        return out

    def fmt(self, dataset: str, var: str) -> str | None:
        meta = self.metas.get(dataset)
        if meta is None:
            return None
        try:
            return meta.variable(var).format
        except KeyError:
            return None

    def subject_map(self, name: str, var: str, columns: Iterable[str] = ()) -> pd.Series:
        """``var`` of dataset ``name`` keyed by USUBJID (first record per subject)."""
        df = self.need(name, ["USUBJID", var, *columns])
        return df.drop_duplicates("USUBJID").set_index("USUBJID")[var]


CheckFn = Callable[[RuleContext, Rule], pd.DataFrame]
CHECKS: dict[str, CheckFn] = {}


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under the name used by ``check:`` in rules.yaml."""

    def deco(fn: CheckFn) -> CheckFn:
        CHECKS[name] = fn
        return fn

    return deco


# ----------------------------------------------------------------------------- helpers
def as_text(s: pd.Series) -> pd.Series:
    """Values as display text: integral floats without '.0', missing as ''."""
    if s.dtype.kind in "fiu":
        return on_distinct(s, _number_text)     # study days, results: few distinct numbers
    return s.astype("string").fillna("").astype(object)


def _number_text(s: pd.Series) -> pd.Series:
    num = pd.to_numeric(s, errors="coerce")
    integral = num.notna() & np.isfinite(num) & (num % 1 == 0)
    out = num.astype(str)
    out[integral] = num[integral].astype("int64").astype(str)
    out[num.isna()] = ""
    return out.astype(object)


def shown(ctx: "RuleContext", name: str, df: pd.DataFrame, var: str) -> pd.Series:
    """Display text of a variable: SAS dates/datetimes of ADaM as ISO 8601, else ``as_text``."""
    s = df[var]
    fmt = ctx.fmt(name, var)
    kind = sas_kind(fmt)
    if s.dtype.kind in "fiu" and kind:
        dt = sas_to_datetime(s, fmt)
        text = dt.dt.strftime("%Y-%m-%d" if kind == "date" else "%Y-%m-%dT%H:%M:%S")
        return text.astype(object).where(dt.notna(), "")
    return as_text(s)


_EMPTY = pd.DataFrame({c: pd.Series(dtype=object) for c in RAW_COLUMNS})


def _empty() -> pd.DataFrame:
    return _EMPTY.copy()


def found(
    dataset: str,
    df: pd.DataFrame,
    mask: pd.Series,
    variable: str | None,
    value: pd.Series | str | None = None,
    detail: pd.Series | str | None = None,
) -> pd.DataFrame:
    """Raw findings for the records of ``df`` selected by ``mask`` (index = 1-based row)."""
    mask = mask.fillna(False).astype(bool)
    if not mask.any():
        return _empty()
    idx = df.index[mask.to_numpy()]
    out = pd.DataFrame(index=idx)
    out["dataset"] = dataset
    out["variable"] = variable
    out["row"] = idx.astype("int64")
    out["usubjid"] = df.loc[idx, "USUBJID"].astype(object) if "USUBJID" in df.columns else None
    if value is None and variable is not None and variable in df.columns:
        value = as_text(df.loc[idx, variable])
    out["value"] = value[mask] if isinstance(value, pd.Series) else value
    out["detail"] = detail[mask] if isinstance(detail, pd.Series) else detail
    return out.reset_index(drop=True)[RAW_COLUMNS]


def dataset_level(dataset: str, variable: str | None, value: str | None, detail: str | None,
                  usubjid: str | None = None) -> pd.DataFrame:
    """One raw finding about a dataset or variable as a whole (no record)."""
    return pd.DataFrame([{"dataset": dataset, "variable": variable, "row": None,
                          "usubjid": usubjid, "value": value, "detail": detail}])[RAW_COLUMNS]


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return _empty()
    return pd.concat(frames, ignore_index=True)[RAW_COLUMNS]


def _norm_text(s: pd.Series) -> pd.Series:
    return as_text(s).astype("string").str.strip().fillna("")


def norm_text(s: pd.Series) -> pd.Series:
    """Text for comparing values across datasets: numbers as text, strings stripped.

    Element-wise, so done once per distinct value (cdisc.distinct.on_distinct): keys such as
    USUBJID, --TESTCD and visit names repeat over every record."""

    out = on_distinct(s, _norm_text)
    out.name = s.name
    return out


# ----------------------------------------------------------------------------- SDTM rules
@check("subject_in_dm")
def subject_in_dm(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """Every USUBJID in every dataset is a DM subject (FDA SD0064).

    Algorithm:
        1. Collect the DM USUBJIDs.
        2. In every other dataset with USUBJID, flag non-blank USUBJIDs not in DM (a blank
           USUBJID is the Req/not-null rule's finding, not this one's).
    """
    dm = ctx.need("DM", ["USUBJID"])
    subjects = pd.Index(dm["USUBJID"].dropna().unique())
    out = []
    for name in ctx.select(rule.scope, need=["USUBJID"]):
        df = ctx.datasets[name]
        bad = ~df["USUBJID"].isin(subjects) & ~blank(df["USUBJID"])
        out.append(found(name, df, bad, "USUBJID"))
    return concat(out)


@check("adsl_one_per_subject")
def adsl_one_per_subject(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """ADSL has exactly one record per DM subject (ADaMIG 1.3 §2.3.1).

    Algorithm:
        1. DM subjects, minus those with ARMNRS in ``params.exclude_armnrs`` (SDTMIG 3.4) or
           ARMCD in ``params.exclude_armcd`` (SDTMIG 3.1.2/3.2 screen failures, ARMCD SCRNFAIL;
           compared ignoring case, as deliveries spell it ``Scrnfail``).
        2. Count ADSL records per USUBJID.
        3. A DM subject with no ADSL record: one finding without a row. A subject with
           more than one ADSL record: one finding per ADSL record of that subject.
    """
    dm = ctx.need("DM", ["USUBJID"])
    adsl = ctx.need("ADSL", ["USUBJID"])
    keep = pd.Series(True, index=dm.index)
    excl = rule.params.get("exclude_armnrs") or []
    if "ARMNRS" in dm.columns and excl:
        keep = ~dm["ARMNRS"].isin(excl)
    excl_cd = {str(x).upper() for x in rule.params.get("exclude_armcd") or []}
    if "ARMCD" in dm.columns and excl_cd:
        keep &= ~dm["ARMCD"].astype(str).str.upper().isin(excl_cd)
    dm_subj = dm.loc[keep, "USUBJID"]
    counts = adsl["USUBJID"].value_counts()
    missing = dm_subj[~dm_subj.isin(counts.index)]
    out = [
        dataset_level("ADSL", "USUBJID", u, "DM subject has no ADSL record", usubjid=u)
        for u in sorted(missing.unique())
    ]
    n = adsl["USUBJID"].map(counts)
    out.append(found("ADSL", adsl, n > 1, "USUBJID",
                     detail="subject has " + n.astype("Int64").astype(str) + " ADSL records"))
    return concat(out)


def _date_pairs(columns: Iterable[str]) -> list[tuple[str, str]]:
    cols = set(columns)
    return sorted((c, c[:-5] + "ENDTC") for c in cols if c.endswith("STDTC") and c[:-5] + "ENDTC" in cols)


@check("start_before_end")
def start_before_end(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """Start <= end for every --STDTC/--ENDTC pair and ADaM start/end date pairs (SD0013).

    Algorithm:
        1. SDTM: pair every xxSTDTC with xxENDTC in the same dataset (also RFSTDTC/RFENDTC,
           RFXSTDTC/RFXENDTC); compare at the precision both share (``compare_iso``),
           so 2023-05 vs 2023-05-10 is not a finding; flag start > end.
        2. ADaM: for the ``params.adam_pairs`` present, compare numeric SAS values (same
           kind) or whole days (date vs datetime); flag start > end.
    """
    out = []
    for name in ctx.select(rule.scope):
        df = ctx.datasets[name]
        for st, en in _date_pairs(df.columns):
            if df[st].dtype.kind in "fiu":
                continue
            cmp = compare_iso(df[st], df[en])
            out.append(found(name, df, cmp > 0, st,
                             value=as_text(df[st]) + " > " + as_text(df[en]),
                             detail=f"{st} after {en}"))
        for st, en in rule.params.get("adam_pairs") or []:
            if st not in df.columns or en not in df.columns or df[st].dtype.kind not in "fiu":
                continue
            fs, fe = ctx.fmt(name, st), ctx.fmt(name, en)
            if sas_kind(fs) == sas_kind(fe):
                a, b = pd.to_numeric(df[st], errors="coerce"), pd.to_numeric(df[en], errors="coerce")
            else:
                a, b = sas_days(df[st], fs), sas_days(df[en], fe)
            out.append(found(name, df, a > b, st,
                             value=shown(ctx, name, df, st) + " > " + shown(ctx, name, df, en),
                             detail=f"{st} after {en}"))
    return concat(out)


@check("rfstdtc_first_exposure")
def rfstdtc_first_exposure(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """DM.RFSTDTC equals the subject's first EXSTDTC of the study drug.

    Algorithm (SDTMIG 3.4 §5.2: RFSTDTC is the sponsor-defined reference start, here
    the first dose of the study drug, ``params.extrt`` = its EXTRT values or null = all):
        1. First EXSTDTC per subject over EX records of the study drug with a valid
           right-truncated date (text minimum of ISO values is the earliest).
        2. Subjects with exposure: RFSTDTC must be present and equal the first EXSTDTC
           at the precision both share.
        3. Subjects with RFSTDTC but no exposure record of the study drug are flagged.
    """
    dm = ctx.need("DM", ["USUBJID", "RFSTDTC"])
    ex = ctx.need("EX", ["USUBJID", "EXSTDTC"])
    sel = ex["EXSTDTC"].astype("string").str.match(TRUNCATED).fillna(False).astype(bool)
    sel &= iso8601_valid(ex["EXSTDTC"]) & ~blank(ex["EXSTDTC"])
    extrt = rule.params.get("extrt")
    if extrt:
        if "EXTRT" not in ex.columns:
            raise NotApplicable("EX has no EXTRT")
        sel &= ex["EXTRT"].isin(list(extrt))
    first = ex.loc[sel].groupby("USUBJID")["EXSTDTC"].min()
    fx = dm["USUBJID"].map(first)
    has_ex = fx.notna()
    rf = dm["RFSTDTC"]
    rf_blank = blank(rf)
    cmp = compare_iso(rf.where(has_ex), fx.astype(object))
    return concat([
        found("DM", dm, has_ex & rf_blank, "RFSTDTC",
              detail="RFSTDTC is blank but first EXSTDTC is " + fx.astype("string").fillna("")),
        found("DM", dm, has_ex & ~rf_blank & (cmp != 0) & cmp.notna(), "RFSTDTC",
              detail="first EXSTDTC is " + fx.astype("string").fillna("")),
        found("DM", dm, ~has_ex & ~rf_blank, "RFSTDTC",
              detail="no EX record of the study drug"),
    ])


def _dy_pairs(df: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(
        (c, c[:-2] + "DTC") for c in df.columns
        if c.endswith("DY") and c[:-2] + "DTC" in df.columns and df[c].dtype.kind in "fiu"
    )


@check("dy_not_zero")
def dy_not_zero(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """No study day variable equals 0 (SDTMIG 3.4 §4.4.4; FDA SD0038).

    Algorithm: in every dataset in scope, every numeric column named ``*DY`` equal to 0.
    """
    out = []
    for name in ctx.select(rule.scope):
        df = ctx.datasets[name]
        for c in sorted(c for c in df.columns if c.endswith("DY") and df[c].dtype.kind in "fiu"):
            out.append(found(name, df, df[c] == 0, c))
    return concat(out)


@check("dy_consistent")
def dy_consistent(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """--DY agrees with --DTC and DM.RFSTDTC (SDTMIG 3.4 §4.4.4).

    Algorithm:
        1. For every xxDY with a matching xxDTC, take the complete dates of xxDTC and of
           the subject's RFSTDTC (date part).
        2. Expected = date - RFSTDTC + 1 when date >= RFSTDTC, else date - RFSTDTC.
        3. Flag: DY differs from expected; DY populated while a date is incomplete or
           RFSTDTC missing; DY missing while both dates are complete. DY = 0 is left to
           the day-0 rule so one defect gives one finding.
    """
    rf = ctx.subject_map("DM", "RFSTDTC")
    out = []
    for name in ctx.select(rule.scope, need=["USUBJID"]):
        if name == "DM":
            continue
        df = ctx.datasets[name]
        pairs = _dy_pairs(df)
        if not pairs:
            continue
        rf_text = df["USUBJID"].map(rf)
        rfd = iso_date(rf_text)
        # Orphan subjects and invalid dates are other rules' findings: do not repeat them.
        judged_rf = df["USUBJID"].isin(rf.index) & iso8601_valid(rf_text.astype(object))
        for dy_col, dtc in pairs:
            d = iso_date(df[dtc])
            delta = (d - rfd).dt.days
            expected = delta + (delta >= 0).astype("float64")
            dy = pd.to_numeric(df[dy_col], errors="coerce")
            both = d.notna() & rfd.notna()
            wrong = both & dy.notna() & (dy != 0) & (dy != expected)
            unfounded = ~both & judged_rf & iso8601_valid(df[dtc]) & dy.notna() & (dy != 0)
            absent = both & dy.isna()
            exp_txt = as_text(expected)
            out += [
                found(name, df, wrong, dy_col, detail="expected " + exp_txt + f" from {dtc} and RFSTDTC"),
                found(name, df, unfounded, dy_col,
                      detail=f"{dtc} or RFSTDTC is not a complete date, so {dy_col} should be blank"),
                found(name, df, absent, dy_col, detail="missing; expected " + exp_txt),
            ]
    return concat(out)


@check("supp_parent_exists")
def supp_parent_exists(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """Each SUPP-- record points to an existing parent record (SDTMIG 3.4 §8.4; SD0077).

    Algorithm:
        1. Group SUPP records by (RDOMAIN, IDVAR) - a loop over groups, not records.
        2. Parent dataset absent: every record of the group is a finding.
        3. IDVAR blank (subject-level): USUBJID must be in the parent.
           IDVAR not a parent variable: every record is a finding.
           Otherwise (USUBJID, IDVARVAL) must equal (USUBJID, parent[IDVAR]) for some
           parent record, numbers compared as text without '.0' (IDVARVAL is Char).
    """
    names = ctx.select(rule.scope, need=["RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL"], prefix="SUPP")
    if not names:
        raise NotApplicable("no SUPP-- dataset in the build")
    out = []
    for name in names:
        df = ctx.datasets[name]
        rdomain = df["RDOMAIN"].astype("string").str.strip().fillna("")
        idvar = df["IDVAR"].astype("string").str.strip().fillna("")
        groups = pd.DataFrame({"r": rdomain, "i": idvar}).drop_duplicates().sort_values(["r", "i"])
        for r, i in groups.itertuples(index=False):
            in_group = (rdomain == r) & (idvar == i)
            parent = ctx.datasets.get(r)
            if parent is None:
                out.append(found(name, df, in_group, "RDOMAIN", detail=f"parent dataset {r or '(blank)'} is not in the build"))
                continue
            ctx.touched.add(r)
            if i == "":
                ok = df["USUBJID"].isin(parent["USUBJID"])
                out.append(found(name, df, in_group & ~ok, "USUBJID", detail=f"subject not in {r}"))
                continue
            if i not in parent.columns:
                out.append(found(name, df, in_group, "IDVAR", detail=f"{i} is not a variable of {r}"))
                continue
            keys = pd.Index(parent["USUBJID"].astype("string") + "\x1f" + norm_text(parent[i]))
            mine = df["USUBJID"].astype("string") + "\x1f" + norm_text(df["IDVARVAL"])
            ok = mine.isin(keys)
            out.append(found(name, df, in_group & ~ok, "IDVARVAL",
                             detail=f"no {r} record with this USUBJID and {i} = IDVARVAL"))
    return concat(out)


@check("ts_parameters")
def ts_parameters(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """TS has a record for every parameter in ``params.required`` (FDA TCG; SD2232).

    Algorithm: a parameter counts as present when a TS record has that TSPARMCD and a
    non-blank TSVAL or TSVALNF (a null flavor documents an inapplicable parameter).
    """
    ts = ctx.need("TS", ["TSPARMCD"])
    populated = pd.Series(False, index=ts.index)
    for c in ("TSVAL", "TSVALNF"):
        if c in ts.columns:
            populated |= ~blank(ts[c])
    present = set(ts.loc[populated, "TSPARMCD"].astype(str))
    missing = [p for p in rule.params.get("required", []) if p not in present]
    return concat([dataset_level("TS", "TSPARMCD", p, f"no TS record for {p}") for p in missing])


@check("after_informed_consent")
def after_informed_consent(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """Subject dates are not before DM.RFICDTC (compared at the shared precision).

    Algorithm: for every dataset in scope and every *DTC variable except *ENDTC (an end
    is after its start, checked by the start/end rule), compare with the subject's
    RFICDTC and flag dates before it.
    """
    rfic = ctx.subject_map("DM", "RFICDTC")
    out = []
    for name in ctx.select(rule.scope, need=["USUBJID"]):
        if name.startswith("SUPP"):
            continue
        df = ctx.datasets[name]
        cols = sorted(c for c in df.columns if c.endswith("DTC") and not c.endswith("ENDTC")
                      and df[c].dtype.kind not in "fiu")
        if not cols:
            continue
        ric = df["USUBJID"].map(rfic).astype(object)
        for c in cols:
            cmp = compare_iso(df[c], ric)
            out.append(found(name, df, cmp < 0, c,
                             detail="RFICDTC is " + ric.astype("string").fillna("")))
    return concat(out)


def _subject_dates(ctx: RuleContext, rule: Rule, *, ends: bool = True):
    """(dataset, frame, --DTC column) of every subject-level date in scope (SUPP-- and DM's
    own reference variables excluded by the rules' scope)."""
    for name in ctx.select(rule.scope, need=["USUBJID"]):
        if name.startswith("SUPP"):
            continue
        df = ctx.datasets[name]
        for c in sorted(c for c in df.columns if c.endswith("DTC") and df[c].dtype.kind not in "fiu"):
            if ends or not c.endswith("ENDTC"):
                yield name, df, c


@check("after_data_cut")
def after_data_cut(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """Dates after the data cut-off (study.yaml ``data_cut``): no event of a data cut can be later.

    Algorithm: every *DTC of every dataset in scope is compared with ``params.data_cut`` at
    the precision both share (a partial date is after the cut only when even its earliest
    reading is: 2026-03 is after 2026-02-28, 2026-02 is not)."""
    cut = rule.params.get("data_cut")
    if not cut:
        raise NotApplicable("no data cut given")
    out = []
    for name, df, c in _subject_dates(ctx, rule):
        cmp = compare_iso(df[c], pd.Series(str(cut), index=df.index, dtype=object))
        out.append(found(name, df, cmp > 0, c, detail=f"the data cut is {cut}"))
    return concat(out)


@check("before_birth")
def before_birth(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """Subject dates before the subject's birth (DM.BRTHDTC), compared at the shared precision."""
    birth = ctx.subject_map("DM", "BRTHDTC")
    out = []
    for name, df, c in _subject_dates(ctx, rule):
        if name == "DM" and c == "BRTHDTC":
            continue
        b = df["USUBJID"].map(birth).astype(object)
        cmp = compare_iso(df[c], b)
        out.append(found(name, df, cmp < 0, c, detail="BRTHDTC is " + b.astype("string").fillna("")))
    return concat(out)


@check("dose_positive")
def dose_positive(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """A dose that is zero or negative (EX/EC --DOSE, --DOSTOT).

    Algorithm: for every dataset in scope and every dose variable it has, flag values below
    zero, and zero unless the record's --TRT is one of ``params.zero_dose_treatments`` (a
    placebo given as dose 0, SDTMIG 3.4 EX assumption)."""
    allowed = {str(t).upper() for t in rule.params.get("zero_dose_treatments") or []}
    out = []
    for name in ctx.select(rule.scope):
        df = ctx.datasets[name]
        dom = name[:2]
        trt = df[f"{dom}TRT"].astype("string").str.upper() if f"{dom}TRT" in df.columns else None
        for c in (f"{dom}DOSE", f"{dom}DOSTOT"):
            if c not in df.columns or df[c].dtype.kind not in "fiu":
                continue
            v = pd.to_numeric(df[c], errors="coerce")
            zero_ok = trt.isin(allowed).fillna(False).astype(bool) if trt is not None else False
            out.append(found(name, df, (v < 0) | ((v == 0) & ~zero_ok), c,
                             detail="a dose is more than zero (placebo: list it under zero_dose_treatments)"))
    return concat(out)


@check("required_datasets")
def required_datasets(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """Datasets a submission must have, per standard present in the build."""
    out = []
    standards = {ctx.standard(n) for n in ctx.datasets}
    for std, names in sorted((rule.params.get("required") or {}).items()):
        if std not in standards:
            continue
        for n in names:
            if n not in ctx.datasets:
                out.append(dataset_level(n, None, n, f"{std} build has no {n}"))
    return concat(out)


# ----------------------------------------------------------------------------- ADaM rules
@check("adam_matches_sdtm")
def adam_matches_sdtm(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """ADaM variables copied from SDTM agree with the source (ADaMIG 1.3 traceability).

    Algorithm, per configured pair (``adam``, ``sdtm``, ``by`` keys, ``vars`` map):
        1. Skip pairs whose datasets or keys are absent, and variables absent on either side.
        2. Left-join the SDTM values onto the ADaM records by the keys (first SDTM record
           per key) and compare as normalised text (numbers without '.0', stripped).
        3. Flag ADaM records whose value differs; records without an SDTM match are left
           to the subject rule.
    """
    out, applied = [], False
    for pair in rule.params.get("pairs") or []:
        a_name, s_name, by = pair["adam"], pair["sdtm"], list(pair["by"])
        a, s = ctx.datasets.get(a_name), ctx.datasets.get(s_name)
        if a is None or s is None or any(k not in a.columns or k not in s.columns for k in by):
            continue
        applied = True
        ctx.touched.update({a_name, s_name})
        key_a = _key(a, by)
        s_first = s.assign(_k=_key(s, by)).drop_duplicates("_k").set_index("_k")
        matched = key_a.isin(s_first.index)
        for av, sv in sorted(pair["vars"].items()):
            if av not in a.columns or sv not in s.columns:
                continue
            src = key_a.map(norm_text(s_first[sv]))
            mine = norm_text(a[av])
            bad = matched & (mine != src.fillna(""))
            out.append(found(a_name, a, bad, av,
                             value=mine.astype(object) + " vs " + src.astype("string").fillna("").astype(object),
                             detail=f"{a_name}.{av} differs from {s_name}.{sv}"))
    if not applied:
        raise NotApplicable("no configured ADaM/SDTM pair is in the build")
    return concat(out)


def _key(df: pd.DataFrame, by: list[str]) -> pd.Series:
    k = norm_text(df[by[0]])
    for c in by[1:]:
        k = k + "\x1f" + norm_text(df[c])
    return k


def _adam_days(ctx: RuleContext, name: str, df: pd.DataFrame, var: str) -> pd.Series:
    if df[var].dtype.kind in "fiu":
        fmt = ctx.fmt(name, var) or "DATE9."
        return sas_days(df[var], fmt)
    # An ISO text date (e.g. a date not yet converted): use its calendar day.
    d = iso_date(df[var])
    return (d - pd.Timestamp("1960-01-01")).dt.days.astype("float64")


@check("trtemfl_dates")
def trtemfl_dates(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """TRTEMFL = Y only for events starting on/after treatment start (ADaM OCCDS).

    Algorithm:
        1. TRTSDT from the dataset, or from ADSL by USUBJID when the dataset lacks it.
        2. Flag TRTEMFL = Y records with ASTDT < TRTSDT (whole days), or with no TRTSDT.
        3. With ``params.window_days`` set, also flag ASTDT > TRTEDT + window.
        Records with a missing ASTDT are not flagged (imputation is the SAP's call).
    """
    p = rule.params
    flag, start, trtsdt, trtedt = p.get("flag", "TRTEMFL"), p.get("start", "ASTDT"), p.get("trtsdt", "TRTSDT"), p.get("trtedt", "TRTEDT")
    names = ctx.select(rule.scope, need=["USUBJID", flag, start])
    out, applied = [], False
    for name in names:
        df = ctx.datasets[name]
        trt = _subject_days(ctx, name, df, trtsdt)
        if trt is None:
            continue
        applied = True
        ast = _adam_days(ctx, name, df, start)
        is_y = df[flag].astype("string").str.strip() == "Y"
        out.append(found(name, df, is_y & ast.notna() & trt.notna() & (ast < trt), flag,
                         value="Y (" + start + " " + shown(ctx, name, df, start) + ")",
                         detail=f"{start} before {trtsdt}"))
        out.append(found(name, df, is_y & trt.isna(), flag, value="Y", detail=f"no {trtsdt} for the subject"))
        window = p.get("window_days")
        end = _subject_days(ctx, name, df, trtedt) if window is not None else None
        if end is not None:
            out.append(found(name, df, is_y & ast.notna() & end.notna() & (ast > end + float(window)), flag,
                             value="Y", detail=f"{start} more than {window} days after {trtedt}"))
    if not applied:
        raise NotApplicable(f"no dataset with {flag}, {start} and {trtsdt} (own or from ADSL)")
    return concat(out)


def _subject_days(ctx: RuleContext, name: str, df: pd.DataFrame, var: str) -> pd.Series | None:
    """Whole days of ``var`` per record: own column, else ADSL's by USUBJID, else None."""
    if var in df.columns:
        return _adam_days(ctx, name, df, var)
    adsl = ctx.datasets.get("ADSL")
    if adsl is None or var not in adsl.columns:
        return None
    ctx.touched.add("ADSL")
    days = _adam_days(ctx, "ADSL", adsl, var)
    per_subject = pd.Series(days.to_numpy(), index=adsl["USUBJID"].to_numpy())
    per_subject = per_subject[~per_subject.index.duplicated()]
    return df["USUBJID"].map(per_subject).astype("float64")


@check("cnsr_values")
def cnsr_values(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """CNSR takes only the allowed values (ADaM BDS-TTE: 0 = event, 1 = censored)."""
    names = ctx.select(rule.scope, need=["CNSR"])
    if not names:
        raise NotApplicable("no dataset with CNSR")
    allowed = [float(v) for v in rule.params.get("allowed", [0, 1])]
    out = []
    for name in names:
        df = ctx.datasets[name]
        v = pd.to_numeric(df["CNSR"], errors="coerce")
        bad = ~blank(df["CNSR"]) & ~v.isin(allowed)
        out.append(found(name, df, bad, "CNSR"))
    return concat(out)


@check("tte_descriptions")
def tte_descriptions(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """EVNTDESC is populated for events, CNSDTDSC for censored records (ADaM BDS-TTE).

    A missing column counts as blank on every record that needs it.
    """
    names = ctx.select(rule.scope, need=["CNSR"])
    if not names:
        raise NotApplicable("no dataset with CNSR")
    event = float(rule.params.get("event", 0))
    censored = [float(c) for c in rule.params.get("censored", [1])]
    out = []
    for name in names:
        df = ctx.datasets[name]
        v = pd.to_numeric(df["CNSR"], errors="coerce")
        for var, need in (("EVNTDESC", v == event), ("CNSDTDSC", v.isin(censored))):
            empty = blank(df[var]) if var in df.columns else pd.Series(True, index=df.index)
            out.append(found(name, df, need & empty, var, value="",
                             detail="blank while CNSR = " + as_text(df["CNSR"])))
    return concat(out)


@check("one_record_per_subject_param")
def one_record_per_subject_param(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """At most one record per subject for each subject-level parameter (e.g. BOR).

    Algorithm: keep records whose PARAMCD is in ``params.paramcd`` (and that meet
    ``params.where``, e.g. {ANL01FL: Y}); every record of a (USUBJID, PARAMCD) with more
    than one record is a finding.
    """
    names = ctx.select(rule.scope, need=["USUBJID", "PARAMCD"])
    if not names:
        raise NotApplicable("no dataset with PARAMCD in scope")
    out = []
    for name in names:
        df = ctx.datasets[name]
        sel = df["PARAMCD"].isin(rule.params.get("paramcd") or [])
        for var, val in sorted((rule.params.get("where") or {}).items()):
            sel &= (df[var].astype("string") == str(val)) if var in df.columns else False
        n = df.loc[sel].groupby(["USUBJID", "PARAMCD"])["PARAMCD"].transform("size")
        dup = pd.Series(False, index=df.index)
        dup.loc[n.index] = n > 1
        out.append(found(name, df, dup, "PARAMCD",
                         detail="subject has " + n.reindex(df.index).astype("Int64").astype("string").fillna("") + " records"))
    return concat(out)


def _one_to_one(df: pd.DataFrame, a: str, b: str, within: list[str]) -> pd.Series:
    """Records whose ``a`` value maps to more than one ``b`` (or the reverse), within groups."""
    both = df[[*within, a, b]].copy()
    both[a] = norm_text(df[a])
    both[b] = norm_text(df[b])
    both = both[(both[a] != "") & (both[b] != "")]
    bad = pd.Series(False, index=df.index)
    for x, y in ((a, b), (b, a)):
        n = both.groupby([*within, x])[y].transform("nunique")
        bad.loc[n.index[n > 1]] = True
    return bad


@check("paramcd_param_one_to_one")
def paramcd_param_one_to_one(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """BDS: PARAMCD and PARAM are one-to-one across the dataset (ADaMIG 1.3 §3.3.4).

    Algorithm: every record whose PARAMCD has two PARAM values, or whose PARAM has two
    PARAMCD values, is a finding (blank values are Req-variable findings, not this rule's)."""
    names = ctx.select(rule.scope, need=["PARAMCD", "PARAM"])
    if not names:
        raise NotApplicable("no dataset with PARAMCD and PARAM")
    return concat([found(n, ctx.datasets[n], _one_to_one(ctx.datasets[n], "PARAMCD", "PARAM", []), "PARAMCD",
                         value=as_text(ctx.datasets[n]["PARAMCD"]) + " / " + as_text(ctx.datasets[n]["PARAM"]),
                         detail="PARAMCD and PARAM are not one-to-one")
                   for n in names])


@check("aval_avalc_one_to_one")
def aval_avalc_one_to_one(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """BDS: within a parameter, AVAL and AVALC are one-to-one where both are populated
    (ADaMIG 1.3 §3.3.4: AVALC, when present with AVAL, maps one-to-one to it)."""
    names = ctx.select(rule.scope, need=["PARAMCD", "AVAL", "AVALC"])
    if not names:
        raise NotApplicable("no dataset with PARAMCD, AVAL and AVALC")
    out = []
    for n in names:
        df = ctx.datasets[n]
        both = df["AVAL"].notna() & ~blank(df["AVALC"])
        bad = _one_to_one(df[both], "AVAL", "AVALC", ["PARAMCD"]).reindex(df.index, fill_value=False)
        out.append(found(n, df, bad, "AVALC", value=as_text(df["AVAL"]) + " / " + as_text(df["AVALC"]),
                         detail="AVAL and AVALC are not one-to-one within PARAMCD " + as_text(df["PARAMCD"])))
    return concat(out)


@check("flag_values")
def flag_values(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """ADaM flags: *FL is Y, N or null; ADSL population flags (``params.population``) are Y or N,
    never null (ADaMIG 1.3 §3.1.4 and §3.2.6 population flags)."""
    population = set(rule.params.get("population") or [])
    out = []
    for n in ctx.select(rule.scope):
        df = ctx.datasets[n]
        for c in [c for c in df.columns if c.endswith("FL") and df[c].dtype.kind not in "fiu"]:
            text = on_distinct(df[c], lambda x: x.astype("string").str.strip().fillna(""))
            allowed = {"Y", "N"} if (n == "ADSL" and c in population) else {"Y", "N", ""}
            bad = ~text.isin(allowed)
            out.append(found(n, df, bad, c, detail=("a population flag is Y or N" if "" not in allowed
                                                    else "a flag is Y, N or null")))
    return concat(out)


@check("ady_consistent")
def ady_consistent(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """ADaM *DY equals its *DT from TRTSDT: DT - TRTSDT + 1 on or after, DT - TRTSDT before
    (ADaMIG 1.3 §3.1.4 *DY; no day 0). Pairs: ADY/ADT, ASTDY/ASTDT, AENDY/AENDT; TRTSDT from
    the dataset, else ADSL."""
    pairs = [("ADY", "ADT"), ("ASTDY", "ASTDT"), ("AENDY", "AENDT")]
    out = []
    for n in ctx.select(rule.scope, need=["USUBJID"]):
        df = ctx.datasets[n]
        ref = None
        for dy, dt in pairs:
            if dy not in df.columns or dt not in df.columns or df[dy].dtype.kind not in "fiu":
                continue
            if ref is None:
                ref = _subject_days(ctx, n, df, "TRTSDT")
                if ref is None:
                    break
            days = _adam_days(ctx, n, df, dt)
            expected = days - ref + (days >= ref).astype("float64")
            have = df[dy].notna() & expected.notna()
            bad = have & (pd.to_numeric(df[dy], errors="coerce") != expected)
            out.append(found(n, df, bad, dy, detail="expected " + as_text(expected) + f" from {dt} and TRTSDT"))
    return concat(out)


@check("death_flag_date")
def death_flag_date(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """DTHFL = Y if and only if the death date is present (DM: DTHDTC; ADSL: DTHDT)."""
    out, applied = [], False
    for pair in rule.params.get("pairs") or []:
        name, flag, date = pair["dataset"], pair["flag"], pair["date"]
        df = ctx.datasets.get(name)
        if df is None or flag not in df.columns or date not in df.columns:
            continue
        applied = True
        ctx.touched.add(name)
        is_y = df[flag].astype("string").str.strip() == "Y"
        has_date = ~blank(df[date])
        out.append(found(name, df, is_y & ~has_date, date, detail=f"{flag} = Y but {date} is blank"))
        out.append(found(name, df, ~is_y.fillna(False) & has_date, flag,
                         detail=f"{date} = " + shown(ctx, name, df, date) + f" but {flag} is not Y"))
    if not applied:
        raise NotApplicable("no dataset with a configured death flag and date")
    return concat(out)


# ----------------------------------------------------------------------------- metadata rules
@check("codelist_known")
def codelist_known(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """Every codelist named in the metadata of a dataset in the build is in the CT subset."""
    out = []
    for name in ctx.select(rule.scope):
        meta = ctx.metas.get(name)
        if meta is None:
            continue
        for v in meta.variables:
            if v.codelist and v.codelist not in ctx.ct and v.name in ctx.datasets[name].columns:
                out.append(dataset_level(name, v.name, v.codelist, f"codelist {v.codelist} not in the CT subset"))
    return concat(out)


def _metadata_table(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    rows = []
    for name in ctx.select(rule.scope):
        meta = ctx.metas.get(name)
        if meta is None:
            continue
        rows += [(name, v.name, v.label, v.type, v.length) for v in meta.variables]
    return pd.DataFrame(rows, columns=["dataset", "variable", "label", "type", "length"])


def _inconsistent(table: pd.DataFrame, attr: str, ignore: list[str], what: str) -> pd.DataFrame:
    """Datasets whose ``attr`` of a shared variable differs from the most common value.

    Ties are broken by the value that sorts first, so the result does not depend on
    dataset order.
    """
    t = table[~table["variable"].isin(ignore)].dropna(subset=[attr])
    t = t.assign(_v=t[attr].astype(str))
    n_values = t.groupby("variable")["_v"].transform("nunique")
    t = t[n_values > 1]
    if t.empty:
        return _empty()
    freq = t.groupby(["variable", "_v"]).size().rename("n").reset_index()
    freq = freq.sort_values(["variable", "n", "_v"], ascending=[True, False, True])
    usual = freq.drop_duplicates("variable").set_index("variable")["_v"]
    where = t.groupby(["variable", "_v"])["dataset"].apply(lambda s: ", ".join(sorted(s)))
    t = t.assign(_usual=t["variable"].map(usual))
    odd = t[t["_v"] != t["_usual"]].sort_values(["dataset", "variable"])
    usual_where = [where[(v, u)] for v, u in zip(odd["variable"], odd["_usual"])]
    return pd.DataFrame({
        "dataset": odd["dataset"].to_numpy(),
        "variable": odd["variable"].to_numpy(),
        "row": None,
        "usubjid": None,
        "value": odd["_v"].to_numpy(),
        "detail": [f"{what} is {u!r} in {w}" for u, w in zip(odd["_usual"], usual_where)],
    })[RAW_COLUMNS]


@check("label_consistent")
def label_consistent(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """Same-named variables carry the same label in every dataset (define.xml ItemDef)."""
    return _inconsistent(_metadata_table(ctx, rule), "label", rule.params.get("ignore") or [], "label")


@check("length_consistent")
def length_consistent(ctx: RuleContext, rule: Rule) -> pd.DataFrame:
    """Same-named Char variables with a declared length declare the same length."""
    t = _metadata_table(ctx, rule)
    t = t[t["type"] == "Char"]
    t = t.assign(length=t["length"].astype("Int64").astype("string").where(t["length"].notna()))
    return _inconsistent(t, "length", rule.params.get("ignore") or [], "declared length")
