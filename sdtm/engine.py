"""Applies a DomainSpec to raw forms: exclusions, melting, variable rules, --SEQ, SUPP--.

The engine is generic: it knows rule kinds, never a domain or a study. It collects every
data problem (bad date, unknown term, duplicate key, subject missing from DM, ...) with
file, row and column rather than stopping at the first one.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cdisc.ct import Terminology, unknown_term_problems
from cdisc.errors import InputError, Problem, SpecError
from cdisc.expr import evaluate_filter
from cdisc.rawio import FILE_COL, ROW_COL, find_form, read_raw, require_columns
from cdisc.study import Study

from . import functions as fn
from .spec import DomainSpec, IsoDate, Variable

TRACE = [FILE_COL, ROW_COL]


@dataclass
class Context:
    """What a domain mapping can see besides its own raw forms."""

    study: Study
    ct: Terminology
    raw_dir: Path
    dm: pd.DataFrame | None = None          # built DM (for --DY, subject checks)
    se: pd.DataFrame | None = None          # built SE (for EPOCH)
    _raw: dict[str, pd.DataFrame] = field(default_factory=dict)
    forms_read: dict[str, str] = field(default_factory=dict)   # form -> file name

    def form(self, name: str) -> pd.DataFrame:
        if name not in self._raw:
            path = find_form(self.raw_dir, name)
            self._raw[name] = read_raw(path)
            self.forms_read[name] = path.name
        return self._raw[name]


@dataclass
class Reconciliation:
    """Raw rows in, records out, and every row not taken with the rule that excluded it."""

    domain: str
    form: str
    file: str
    rows_read: int
    excluded: dict[str, int]
    rows_mapped: int
    records: int                             # records produced (melted forms give several per row)


@dataclass
class DomainResult:
    spec: DomainSpec
    data: pd.DataFrame                       # output variables + __file/__row trace columns
    supp: pd.DataFrame | None
    reconciliation: list[Reconciliation]
    problems: list[Problem]


class _Mapper:
    def __init__(self, spec: DomainSpec, ctx: Context, spec_file: str):
        self.spec = spec
        self.ctx = ctx
        self.file = spec_file
        self.problems: list[Problem] = []

    # -- sources -------------------------------------------------------------------
    def stacked_sources(self) -> tuple[pd.DataFrame, list[Reconciliation]]:
        frames, recon = [], []
        for i, src in enumerate(self.spec.sources):
            raw = self.ctx.form(src.form)
            fname = self.ctx.forms_read[src.form]
            keep = pd.Series(True, index=raw.index)
            excluded: dict[str, int] = {}
            for j, rule in enumerate(src.exclude):
                where = f"sources[{i}].exclude[{j}].where"
                hit = evaluate_filter(rule.where, raw, where=f"{self.file}: {where}") & keep
                excluded[rule.reason] = excluded.get(rule.reason, 0) + int(hit.sum())
                keep &= ~hit
            taken = raw[keep]
            if src.columns:
                require_columns(taken, set(src.columns.values()), file=fname, key=f"{self.file}: sources[{i}].columns")
                taken = taken.assign(**{new: taken[old] for new, old in src.columns.items()})
            if src.set:
                taken = taken.assign(**{k: str(v) for k, v in src.set.items()})
            if src.melt:
                require_columns(taken, {m.column for m in src.melt} | {m.unit for m in src.melt if m.unit},
                                file=fname, key=f"{self.file}: sources[{i}].melt")
                parts = []
                for m in src.melt:
                    part = taken.assign(__RESULT=taken[m.column],
                                        __UNIT=taken[m.unit] if m.unit else "",
                                        __MELTCOL=m.column,
                                        **{f"__{k}": v for k, v in m.set.items()})
                    parts.append(part)
                melted = pd.concat(parts, ignore_index=True) if parts else taken.iloc[0:0]
                blank = melted["__RESULT"].astype("str").str.strip().eq("")
                n_blank = int(blank.sum())
                if n_blank:
                    excluded[src.melt_drop_blank_reason] = n_blank
                taken_out = melted[~blank]
            else:
                taken_out = taken
            recon.append(Reconciliation(self.spec.domain, src.form, fname, len(raw), excluded,
                                        int(keep.sum()), len(taken_out)))
            frames.append(taken_out)
        data = pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()
        # columns a form lacks but another has are blank text, not NaN floats
        for c in data.columns:
            if data[c].dtype == object or str(data[c].dtype) == "str":
                data[c] = data[c].fillna("")
        return data, recon

    # -- resolution ----------------------------------------------------------------
    def resolver(self, raw: pd.DataFrame, out: pd.DataFrame, key: str):
        def resolve(name: str) -> pd.Series:
            if name in out.columns:
                return out[name]
            if name in raw.columns:
                return raw[name]
            if f"__{name}" in raw.columns:            # a constant set by a melt entry
                return raw[f"__{name}"]
            have = [c for c in list(out.columns) + list(raw.columns) if not c.startswith("__")]
            close = difflib.get_close_matches(name, have, n=3)
            files = sorted(set(raw[FILE_COL])) if FILE_COL in raw and len(raw) else []
            raise InputError(Problem(
                f"column {name} is neither a raw column of {', '.join(files) or 'the source'} nor an earlier variable",
                file=self.file, key=key, column=name,
                hint=f"did you mean {', '.join(close)}?" if close else "check the spec and the raw file header"))
        return resolve

    def flag(self, raw: pd.DataFrame, bad: pd.Series, column: str, message: str, hint: str | None = None):
        rows = raw.loc[bad.to_numpy()] if len(bad) else raw.iloc[0:0]
        vals = rows[column].tolist() if column in rows else [None] * len(rows)
        for v, f, r in zip(vals, rows[FILE_COL].tolist(), rows[ROW_COL].tolist()):
            self.problems.append(Problem(message.format(value=v), file=f, row=int(r), column=column, hint=hint))

    # -- rules -----------------------------------------------------------------------
    def apply(self, var: Variable, raw: pd.DataFrame, out: pd.DataFrame, key: str) -> pd.Series:
        resolve = self.resolver(raw, out, key)
        rule = var.rule
        study = self.ctx.study
        if rule == "assign":
            col = resolve(var.assign)
            res = col.astype("str").where(col.notna(), "").str.strip() if var.type == "Char" else col
        elif rule == "value":
            res = pd.Series(var.value, index=raw.index)
        elif rule == "study":
            res = pd.Series(str(getattr(study, var.study) or ""), index=raw.index, dtype="str")
        elif rule == "template":
            try:
                res = fn.template(var.template, resolve)
            except ValueError as exc:
                raise SpecError(str(exc), file=self.file, key=key) from None
        elif rule == "number":
            res, bad = fn.to_number(resolve(var.number))
            self.flag(raw, bad, var.number, "value {value!r} is not a number", "correct the CRF value")
        elif rule == "map":
            src = var.map if isinstance(var.map, str) else var.map.from_
            cl_name = (None if isinstance(var.map, str) else var.map.codelist) or var.codelist
            if not cl_name or cl_name not in self.ctx.ct:
                raise SpecError(f"codelist {cl_name!r} is not in specs/ct", file=self.file, key=key)
            res, unknown = self.ctx.ct.map_values(resolve(src), cl_name)
            if unknown.any():
                tmp = raw.assign(**{src: resolve(src)}) if src not in raw else raw
                self.problems.extend(unknown_term_problems(tmp, src, unknown, self.ctx.ct[cl_name]))
        elif rule == "lookup":
            lk = var.lookup
            try:
                table = study.table(lk.table)
            except KeyError:
                raise SpecError(f"lookup table {lk.table!r} is not defined in study.yaml", file=self.file,
                                key=key) from None
            res, bad = fn.lookup(resolve(lk.from_), table, key=lk.key, field=lk.field)
            if bad.any():
                tmp = raw.assign(**{lk.from_: resolve(lk.from_)})
                self.flag(tmp, bad, lk.from_, f"value {{value!r}} is not a {lk.key} of table {lk.table} in study.yaml",
                          f"add it to {lk.table} in specs/study.yaml or correct the CRF")
        elif rule == "iso8601":
            res = self.iso(var.iso8601, raw, resolve)
        elif rule == "study_day":
            ref = self._dm_column("RFSTDTC", resolve("USUBJID"), key)
            res = fn.study_day(resolve(var.study_day), ref)
        elif rule == "epoch":
            if self.ctx.se is None:
                raise SpecError("EPOCH needs SE; define elements in study.yaml", file=self.file, key=key)
            res = fn.epoch(resolve(var.epoch), resolve("USUBJID"), self.ctx.se)
        elif rule == "aggregate":
            res = self.aggregate(var, raw, resolve, key)
        elif rule == "visit":
            res = self.visit(var, raw, resolve, key)
        elif rule == "result":
            res = self.result(var, raw, resolve, key)
        else:  # sequence is applied after all other variables
            raise AssertionError(rule)
        if var.when is not None:
            frame = raw.assign(**{c: out[c] for c in out.columns})
            cond = evaluate_filter(var.when, frame, where=f"{self.file}: {key}.when")
            res = res.where(cond)
        if var.type == "Char" and var.case != "asis":
            res = res.str.upper() if var.case == "upper" else res.str.lower()
        return res

    def iso(self, spec: IsoDate, raw: pd.DataFrame, resolve) -> pd.Series:
        date = resolve(spec.date)
        time = resolve(spec.time) if spec.time else None
        res, bad = fn.iso8601_dtc(date, time, unknown_tokens=self.ctx.study.raw.unknown_tokens)
        if bad.any():
            tmp = raw.assign(__DT=date.astype("str") + ((" " + time.astype("str")) if time is not None else ""))
            self.flag(tmp, bad, spec.date if spec.date in raw else "__DT",
                      "date/time {value!r} is not a valid date in DD-MON-YYYY (or ISO 8601), time HH:MM",
                      "use e.g. 12-MAR-2025 or UN-MAR-2025 for an unknown day")
        return res

    def _dm_column(self, column: str, usubjid: pd.Series, key: str) -> pd.Series:
        if self.ctx.dm is None:
            raise SpecError(f"{column} needs DM, which is built first", file=self.file, key=key)
        m = self.ctx.dm.drop_duplicates("USUBJID").set_index("USUBJID")[column]
        return usubjid.map(m)

    def aggregate(self, var: Variable, raw: pd.DataFrame, resolve, key: str) -> pd.Series:
        pick = aggregate_by_subject(self.ctx, var.aggregate, where=f"{self.file}: {key}.aggregate",
                                    problems=self.problems)
        subj = resolve(self.ctx.study.raw.subject).astype("str").str.strip()
        return subj.map(pick)

    def visit(self, var: Variable, raw: pd.DataFrame, resolve, key: str) -> pd.Series:
        """VISITNUM/VISIT/VISITDY from the EDC folder through the schedule in study.yaml.

        Unscheduled folders (OID starting with the study's unscheduled prefix, e.g. UNS2)
        get VISIT 'UNSCHEDULED 2' and VISITNUM = the VISITNUM of the last scheduled visit
        whose planned day is on or before the record's study day, plus 0.01 x the ordinal
        (SDTMIG 3.4 §4.4.5 leaves unscheduled numbering to the sponsor; this keeps
        VISITNUM in time order). VISITDY stays missing for unscheduled visits.
        """
        rule = var.visit if not isinstance(var.visit, str) else None
        part = var.visit if isinstance(var.visit, str) else var.visit.part
        study = self.ctx.study
        folder = resolve(study.raw.folder).astype("str").str.strip()
        sched = {v.folder.casefold(): v for v in study.visits}
        f_norm = folder.str.casefold()
        known = f_norm.isin(list(sched))
        prefix = study.raw.unscheduled_prefix
        unsched = ~known & folder.str.upper().str.startswith(prefix.upper()) & folder.ne("")
        bad = ~known & ~unsched & folder.ne("")
        if bad.any():
            self.flag(raw.assign(**{study.raw.folder: folder}), bad, study.raw.folder,
                      "folder {value!r} is not in the visit schedule (study.yaml visits)",
                      "add the folder to visits in specs/study.yaml or correct the export")
        if part == "visit":
            vals = f_norm.map({k: v.visit for k, v in sched.items()})
            return vals.where(~unsched, "UNSCHEDULED " + folder.str.upper().str.slice(len(prefix)))
        if part == "visitdy":
            return f_norm.map({k: v.day for k, v in sched.items()}).astype("float64")
        vals = f_norm.map({k: v.visitnum for k, v in sched.items()}).astype("float64")
        if unsched.any():
            if rule is None or rule.date is None:
                raise SpecError("VISITNUM of unscheduled visits needs the record date: "
                                "write visit: {part: visitnum, date: --DTC}", file=self.file, key=key)
            dy = fn.study_day(resolve(rule.date), self._dm_column("RFSTDTC", resolve("USUBJID"), key))
            planned = sorted((v.day, v.visitnum) for v in study.visits if v.day is not None)
            days = np.array([d for d, _ in planned], dtype="float64")
            nums = np.array([n for _, n in planned], dtype="float64")
            pos = np.searchsorted(days, dy.to_numpy(), side="right") - 1
            prev = np.where((pos >= 0) & ~np.isnan(dy.to_numpy()), nums[np.clip(pos, 0, None)], np.nan)
            ordinal = pd.to_numeric(folder.str.upper().str.slice(len(prefix)), errors="coerce").fillna(1)
            vals = vals.where(~unsched, pd.Series(prev, index=vals.index) + ordinal / 100.0)
            undated = unsched & vals.isna()
            if undated.any():
                self.flag(raw.assign(**{study.raw.folder: folder}), undated, study.raw.folder,
                          "unscheduled visit {value!r} has no complete date, so it cannot be numbered")
        return vals

    def result(self, var: Variable, raw: pd.DataFrame, resolve, key: str) -> pd.Series:
        from .results import standardise

        r = var.result
        res, problems = standardise(resolve(r.orres), resolve(r.orresu) if r.orresu else None,
                                    resolve(r.testcd) if r.testcd else None, raw, part=r.part,
                                    conversions=self.ctx.study.lookups.get("unit_conversions", []),
                                    where=f"{self.file}: {key}")
        self.problems.extend(problems)
        return res

    # -- the whole domain ----------------------------------------------------------------
    def run(self) -> DomainResult:
        raw, recon = self.stacked_sources()
        out = pd.DataFrame(index=raw.index)
        seq_vars = []
        everything = list(self.spec.variables) + list(self.spec.supplemental)
        keys = {var.name: (f"supplemental[{i - len(self.spec.variables)}]" if i >= len(self.spec.variables)
                           else f"variables[{i}]") for i, var in enumerate(everything)}
        for var in _evaluation_order(everything):
            key = keys[var.name]
            if var.rule == "sequence":
                seq_vars.append((var, key))
                continue
            out[var.name] = self.apply(var, raw, out, key)
        for var in everything:           # output column order is the spec's
            if var.name not in out.columns:
                out[var.name] = np.nan
        out = out[[v.name for v in everything]]
        for var, key in seq_vars:
            missing = [c for c in var.sequence if c not in out.columns]
            if missing:
                raise SpecError(f"sequence order names unknown variables {missing}", file=self.file, key=key)
            out[var.name] = fn.sequence(out, by="USUBJID", order=var.sequence)
        out[FILE_COL] = raw[FILE_COL] if FILE_COL in raw else ""
        out[ROW_COL] = raw[ROW_COL] if ROW_COL in raw else 0
        self.check_records(out)
        order = ["USUBJID"] + [k for k in (self.spec.sort or self.spec.keys) if k != "USUBJID"] \
            if "USUBJID" in out.columns else (self.spec.sort or self.spec.keys)
        out = out.sort_values(order + [FILE_COL, ROW_COL], kind="stable", na_position="last").reset_index(drop=True)
        supp = self.split_supplemental(out)
        data = out[[v.name for v in self.spec.variables] + TRACE]
        return DomainResult(self.spec, data, supp, recon, self.problems)

    def check_records(self, out: pd.DataFrame) -> None:
        """Required values present, natural keys unique, every subject in DM."""
        for v in self.spec.variables:
            if v.core == "Req":
                col = out[v.name]
                missing = col.isna() | (col.astype("str").str.strip().eq("") if v.type == "Char" else False)
                if missing.any():
                    self.flag(out.assign(**{v.name: col}), missing, v.name,
                              f"required variable {self.spec.domain}.{v.name} is missing",
                              "the CRF value it comes from is blank")
        keys = self.spec.keys
        dup = out.duplicated(keys, keep=False)
        if dup.any():
            rows = out[dup]
            for f, r, vals in zip(rows[FILE_COL], rows[ROW_COL], rows[keys].astype("str").agg(" / ".join, axis=1)):
                self.problems.append(Problem(
                    f"duplicate key in {self.spec.domain}: {'/'.join(keys)} = {vals}", file=f, row=int(r),
                    hint="remove the duplicate CRF record or mark it deleted"))
        if self.ctx.dm is not None and "USUBJID" in out.columns and not self.spec.subject_level:
            orphan = ~out["USUBJID"].isin(set(self.ctx.dm["USUBJID"])) & out["USUBJID"].notna()
            self.flag(out, orphan, "USUBJID", f"subject {{value!r}} in {self.spec.domain} is not in DM",
                      "every subject must have a demographics record")

    def split_supplemental(self, out: pd.DataFrame) -> pd.DataFrame | None:
        """SUPP--: one record per parent record and non-blank QNAM value (SDTMIG 3.4 §8.4.1)."""
        if not self.spec.supplemental:
            return None
        dom = self.spec.domain
        seq = f"{dom}SEQ"
        parts = []
        for s in self.spec.supplemental:
            val = out[s.name]
            if s.type == "Num":
                qval = val.map(_num_text)
            else:
                qval = val.astype("str").where(val.notna(), "").str.strip()
            keep = qval.ne("") & val.notna()
            sub = out.loc[keep]
            idvar = "" if self.spec.subject_level else seq
            parts.append(pd.DataFrame({
                "STUDYID": sub["STUDYID"], "RDOMAIN": dom, "USUBJID": sub["USUBJID"],
                "IDVAR": idvar,
                "IDVARVAL": "" if self.spec.subject_level else sub[seq].map(_num_text),
                "QNAM": s.name, "QLABEL": s.label, "QVAL": qval[keep],
                "QORIG": s.qorig or s.meta().origin or "", "QEVAL": s.qeval or "",
                FILE_COL: sub[FILE_COL], ROW_COL: sub[ROW_COL]}))
        supp = pd.concat(parts, ignore_index=True)
        supp["__ord"] = pd.to_numeric(supp["IDVARVAL"], errors="coerce")
        supp = supp.sort_values(["USUBJID", "__ord", "QNAM"], kind="stable").drop(columns="__ord")
        return supp.reset_index(drop=True)


def aggregate_by_subject(ctx: Context, agg, *, where: str, problems: list[Problem]) -> pd.Series:
    """One value per raw subject from one or more forms (min/max of values, or first/last by an order).

    1. read each source form, keep the rows its ``where`` selects;
    2. take the value column, or convert date (+ time) to ISO 8601 (bad dates are reported);
    3. min/max compare ISO 8601 text, which orders complete dates correctly; first/last
       order by ``order`` (numeric) then by source position.
    Returns a Series indexed by the raw subject identifier.
    """
    subj_col = ctx.study.raw.subject
    parts = []
    for i, src in enumerate(agg.sources):
        form = ctx.form(src.form)
        fname = ctx.forms_read[src.form]
        cols = {subj_col} | ({src.value} if isinstance(src.value, str) else
                             {src.value.date} | ({src.value.time} if src.value.time else set()))
        if agg.order:
            cols.add(agg.order)
        require_columns(form, cols, file=fname, key=f"{where}.sources[{i}]")
        if src.where:
            form = form[evaluate_filter(src.where, form, where=f"{where}.sources[{i}].where")]
        if isinstance(src.value, str):
            val = form[src.value].astype("str").str.strip()
            val = val.where(val.ne(""))
        else:
            date = form[src.value.date]
            time = form[src.value.time] if src.value.time else None
            val, bad = fn.iso8601_dtc(date, time, unknown_tokens=ctx.study.raw.unknown_tokens)
            for v, f, r in zip(date[bad].tolist(), form.loc[bad, FILE_COL].tolist(), form.loc[bad, ROW_COL].tolist()):
                problems.append(Problem(f"date {v!r} is not a valid date", file=f, row=int(r), column=src.value.date))
        order = (pd.to_numeric(form[agg.order], errors="coerce") if agg.order
                 else pd.Series(0.0, index=form.index))
        parts.append(pd.DataFrame({"subj": form[subj_col].astype("str").str.strip(), "val": val,
                                   "ord": order, "src": i}))
    allp = pd.concat(parts, ignore_index=True)
    allp = allp[allp["val"].notna()]
    if agg.how in ("min", "max"):
        allp = allp.sort_values(["subj", "val"], kind="stable")
    else:
        allp = allp.sort_values(["subj", "ord", "src"], kind="stable", na_position="last")
    g = allp.groupby("subj", sort=True)["val"]
    return g.first() if agg.how in ("min", "first") else g.last()


def references(var: Variable) -> set[str]:
    """Names a variable's rule (and its ``when``) reads: raw columns or other variables."""
    from cdisc.expr import parse

    names: set[str] = set()
    r = var.rule
    if r == "assign":
        names.add(var.assign)
    elif r == "template":
        import string

        names |= {f for _, f, _, _ in string.Formatter().parse(var.template) if f}
    elif r == "map":
        names.add(var.map if isinstance(var.map, str) else var.map.from_)
    elif r == "lookup":
        names.add(var.lookup.from_)
    elif r == "number":
        names.add(var.number)
    elif r in ("study_day", "epoch"):
        names |= {getattr(var, r), "USUBJID"}
    elif r == "visit" and not isinstance(var.visit, str) and var.visit.date:
        names |= {var.visit.date, "USUBJID"}
    elif r == "result":
        names |= {x for x in (var.result.orres, var.result.orresu, var.result.testcd) if x}
    elif r == "sequence":
        names |= set(var.sequence) | {"USUBJID"}
    if var.when:
        names |= parse(var.when).names
    return names


def _evaluation_order(variables: list[Variable]) -> list[Variable]:
    """Spec order, except that a variable is evaluated after the variables it reads.

    SDTM puts EPOCH and --DY before the --DTC they come from; the spec keeps the
    submission order and the engine sorts out the dependencies (a cycle is a spec error).
    """
    by_name = {v.name: v for v in variables}
    done: list[Variable] = []
    state: dict[str, int] = {}

    def visit(v: Variable, chain: list[str]) -> None:
        if state.get(v.name) == 2:
            return
        if state.get(v.name) == 1:
            raise SpecError(f"variables depend on each other in a cycle: {' -> '.join(chain + [v.name])}")
        state[v.name] = 1
        for n in sorted(references(v)):
            if n in by_name and n != v.name:
                visit(by_name[n], chain + [v.name])
        state[v.name] = 2
        done.append(v)

    for v in variables:
        visit(v, [])
    return done


def _num_text(x) -> str:
    """A number as SUPP--.QVAL text: integers without '.0', others with repr precision."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    f = float(x)
    return str(int(f)) if f.is_integer() else repr(f)


def map_domain(spec: DomainSpec, ctx: Context, *, spec_file: str) -> DomainResult:
    return _Mapper(spec, ctx, spec_file).run()
