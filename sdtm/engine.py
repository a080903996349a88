"""Applies a DomainSpec to raw forms: exclusions, melting, variable rules, duplicates, --SEQ, SUPP--.

The engine is generic: it knows rule kinds, never a domain or a study. It collects every
data problem (bad date, unknown term, duplicate key, subject missing from DM, ...) with
file, row and column rather than stopping at the first one. The column a message names is
always the raw column the value came from: a spec that renames columns (``columns:``) or
melts CRF fields (``melt:``) still gets messages about ``FCRES`` or ``OVRLRESP``, not about
the spec's own names.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from cdisc.distinct import clean_text, distinct_rows, on_distinct

from cdisc.ct import Terminology, cl_values_preview
from cdisc.errors import InputError, Problem, SpecError
from cdisc.expr import evaluate_filter
from cdisc.rawio import FILE_COL, ROW_COL, find_form, read_raw, require_columns
from cdisc.study import Study

from . import functions as fn
from .spec import DomainSpec, IsoDate, Variable

TRACE = [FILE_COL, ROW_COL]
SRC_IDX = "__srcidx"        # which entry of ``sources`` a record came from
MELT_IDX = "__melt"         # which ``melt`` entry (-1: the form is not melted)
FORM_COL = "__form"         # the form name of the record's source
SRC_PREFIX = "__SRC_"       # __SRC_<NAME>: the raw column a renamed/melted column holds
BOOKKEEPING = [FILE_COL, ROW_COL, SRC_IDX, MELT_IDX, FORM_COL]


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
    columns_read: dict[str, set[str]] = field(default_factory=dict)   # form -> raw columns a rule read
    problems: list[Problem] = field(default_factory=list)              # found while reading forms
    # aggregate_by_subject: the stacked source values per sources definition (RFXSTDTC and
    # RFXENDTC read the same EX dates), with the problems found reading them
    aggregated: dict[str, tuple[pd.DataFrame, list[Problem]]] = field(default_factory=dict)

    def form(self, name: str) -> pd.DataFrame:
        if name not in self._raw:
            path = find_form(self.raw_dir, name)
            self._raw[name] = read_raw(path)
            self.forms_read[name] = path.name
            self.problems.extend(disallowed_values(self._raw[name], self.study.raw.allowed_values))
        return self._raw[name]

    def note_read(self, form: str, columns) -> None:
        """Raw columns of ``form`` that a rule, condition, rename or melt read (column reconciliation)."""
        have = self._raw[form].columns if form in self._raw else ()
        self.columns_read.setdefault(form, set()).update(c for c in columns if c in have)

    def raw_columns(self, form: str) -> list[str]:
        """The data columns of a form as read (without the bookkeeping columns)."""
        return [c for c in self._raw[form].columns if not str(c).startswith("__")]


def disallowed_values(raw: pd.DataFrame, allowed: dict[str, list[str]]) -> list[Problem]:
    """Values of EDC-controlled columns (study.yaml ``raw.allowed_values``) outside their list."""
    problems = []
    for col, values in allowed.items():
        col = col.strip().upper()
        if col not in raw.columns:
            continue
        bad = ~raw[col].isin([str(v) for v in values])
        for v, f, r in zip(raw.loc[bad, col].tolist(), raw.loc[bad, FILE_COL].tolist(), raw.loc[bad, ROW_COL].tolist()):
            problems.append(Problem(f"value {v!r} is not one of the values study.yaml allows for {col} "
                                    f"({', '.join(repr(str(x)) for x in values)})", file=f, row=int(r), column=col,
                                    hint=f"correct it in the EDC, or add it to raw.allowed_values.{col} in specs/study.yaml"))
    return problems


@dataclass
class Reconciliation:
    """Raw rows in, records out, and every row not taken with the rule that excluded it.

    ``rows_read = rows_mapped + sum(excluded)`` always holds. A melted form has one entry
    per melted CRF field (``file`` is then ``form.csv:FIELD``): a row whose field is blank
    makes no record for that field and is counted under the blank reason.
    """

    domain: str
    form: str
    file: str
    rows_read: int
    excluded: dict[str, int]
    rows_mapped: int
    records: int                             # records produced
    column: str | None = None                # the melted CRF field, if any


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
        self.provenance: dict[str, str] = {}          # variable -> raw column it was read from
        self.recon_index: dict[tuple[int, int], Reconciliation] = {}
        # spec name -> (form, raw column) it holds, for renamed (columns:) and melted fields
        self.renamed: dict[str, set[tuple[str, str]]] = {}
        self.domain_forms = [src.form for src in spec.sources]
        self._standardised: dict[tuple, tuple[pd.Index, pd.DataFrame]] = {}   # Variable.result memo

    def note_raw(self, names) -> None:
        """The domain read raw names (a rule or condition used them): record the raw columns.

        A spec name is the raw column itself in every source form that has it, and the raw
        column it was renamed or melted from (``columns:``, ``melt:``)."""
        for name in names:
            for form, col in self.renamed.get(name, ()):
                self.ctx.note_read(form, [col])
            for form in self.domain_forms:
                self.ctx.note_read(form, [name])

    def note_condition(self, text: str, out_columns, where: str) -> None:
        from cdisc.expr import parse

        self.note_raw(n for n in parse(text, where=where).names if n not in out_columns)

    def condition(self, text: str, frame: pd.DataFrame, key: str, out_columns=(), form: str | None = None) -> pd.Series:
        """A spec condition as a mask; its errors name this spec file and the key path.

        The raw columns it names count as read: of ``form`` only when given (an exclude rule
        belongs to one source form), else of every source form of the domain."""
        try:
            from cdisc.expr import near_misses, parse

            expr = parse(text, where=key)
            if form is not None:
                self.ctx.note_read(form, expr.names)
            else:
                self.note_condition(text, out_columns, key)
            for col, mask, lit in near_misses(expr, frame):
                self.report(frame, mask, frame[col], col,
                            f"value {{value!r}} differs from {lit!r} in the condition [{text}] ({self.file} {key}) only in "
                            "letter case or blanks, so the condition does not hold for it",
                            f"correct the value to {lit!r} in the EDC, or write the condition for both spellings")
            return evaluate_filter(expr, frame, where=key)
        except SpecError as exc:
            raise SpecError([replace(p, file=p.file or self.file) for p in exc.problems]) from None

    # -- sources -------------------------------------------------------------------
    def stacked_sources(self) -> tuple[pd.DataFrame, list[Reconciliation]]:
        """Read, exclude, rename, set and melt every source form, then stack them.

        1. rows matching an ``exclude`` rule are dropped and counted under its reason;
        2. ``columns`` copies raw columns under the spec's names (remembering the raw name
           for messages), ``set`` adds constants;
        3. each ``melt`` entry turns one CRF field into one record per row: ``RESULT`` holds
           the field, ``UNIT`` its unit column, ``set`` the test's constants; blank fields
           make no record (counted under the entry's blank reason);
        4. the forms are stacked; text columns one form lacks are blank, not NaN.
        """
        frames, recon = [], []
        dom = self.spec.domain
        for i, src in enumerate(self.spec.sources):
            raw = read_form(self.ctx, src.form, where=f"{self.file}: sources[{i}].form", file=self.file,
                            key=f"sources[{i}].form")
            fname = self.ctx.forms_read[src.form]
            self.ctx.note_read(src.form, src.columns.values() if src.columns else ())
            for m in src.melt or ():
                self.ctx.note_read(src.form, [m.column] + ([m.unit] if m.unit else []))
            for new, old in (src.columns or {}).items():
                self.renamed.setdefault(new, set()).add((src.form, old))
            for m in src.melt or ():
                self.renamed.setdefault("RESULT", set()).add((src.form, m.column))
                if m.unit:
                    self.renamed.setdefault("UNIT", set()).add((src.form, m.unit))
            keep = pd.Series(True, index=raw.index)
            excluded: dict[str, int] = {}
            for j, rule in enumerate(src.exclude):
                where = f"sources[{i}].exclude[{j}].where"
                hit = self.condition(rule.where, raw, where, form=src.form) & keep
                excluded[rule.reason] = excluded.get(rule.reason, 0) + int(hit.sum())
                keep &= ~hit
            taken = raw[keep]
            if src.columns:
                require_columns(taken, set(src.columns.values()), file=fname, key=f"{self.file}: sources[{i}].columns")
                taken = taken.assign(**{new: taken[old] for new, old in src.columns.items()},
                                     **{f"{SRC_PREFIX}{new}": old for new, old in src.columns.items()})
            if src.visit:
                fcol = self.ctx.study.raw.folder
                require_columns(taken, {src.visit}, file=fname, key=f"{self.file}: sources[{i}].visit")
                self.ctx.note_read(src.form, [src.visit])
                self.renamed.setdefault(fcol, set()).add((src.form, src.visit))
                taken = taken.assign(**{fcol: taken[src.visit], f"{SRC_PREFIX}{fcol}": src.visit})
            if src.set:
                taken = taken.assign(**{k: str(v) for k, v in src.set.items()},
                                     **{f"{SRC_PREFIX}{k}": "" for k in src.set})
            if src.melt:
                require_columns(taken, {m.column for m in src.melt} | {m.unit for m in src.melt if m.unit},
                                file=fname, key=f"{self.file}: sources[{i}].melt")
                for j, m in enumerate(src.melt):
                    part = taken.assign(RESULT=taken[m.column], **{f"{SRC_PREFIX}RESULT": m.column})
                    if m.unit:
                        part = part.assign(UNIT=taken[m.unit], **{f"{SRC_PREFIX}UNIT": m.unit})
                    if m.set:
                        part = part.assign(**{k: str(v) for k, v in m.set.items()},
                                           **{f"{SRC_PREFIX}{k}": "" for k in m.set})
                    blank = fn.blank(part["RESULT"])
                    exc = dict(excluded)
                    if blank.any():
                        reason = m.blank_reason or src.melt_drop_blank_reason
                        exc[reason] = exc.get(reason, 0) + int(blank.sum())
                    part = part[~blank].assign(**{SRC_IDX: i, MELT_IDX: j, FORM_COL: src.form})
                    r = Reconciliation(dom, src.form, f"{fname}:{m.column}", len(raw), exc, len(part), len(part),
                                       column=m.column)
                    recon.append(r)
                    self.recon_index[(i, j)] = r
                    frames.append(part)
            else:
                taken = taken.assign(**{SRC_IDX: i, MELT_IDX: -1, FORM_COL: src.form})
                r = Reconciliation(dom, src.form, fname, len(raw), excluded, int(keep.sum()), len(taken))
                recon.append(r)
                self.recon_index[(i, -1)] = r
                frames.append(taken)
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
                self.note_raw([name])
                return raw[name]
            have = [c for c in list(out.columns) + list(raw.columns) if not c.startswith("__")]
            close = difflib.get_close_matches(name, have, n=3)
            files = sorted(set(raw[FILE_COL])) if FILE_COL in raw and len(raw) else []
            raise InputError(Problem(
                f"column {name} is neither a raw column of {', '.join(files) or 'the source'} nor an earlier variable",
                file=self.file, key=key, column=name,
                hint=f"did you mean {', '.join(close)}?" if close else "check the spec and the raw file header"))
        return resolve

    def source_columns(self, raw: pd.DataFrame, name: str) -> pd.Series:
        """Per record, the raw column a value named ``name`` (a variable or column) came from.

        Follows variables back to the column their rule read (LBORRES <- RESULT <- FCRES),
        so messages name what the data manager sees in the raw file.
        """
        seen = set()
        while name in self.provenance and name not in seen:
            seen.add(name)
            name = self.provenance[name]
        base = pd.Series(name, index=raw.index, dtype="str")
        col = f"{SRC_PREFIX}{name}"
        if col in raw.columns:
            return on_distinct(raw[col], lambda c: _source_or(c, name))
        return base

    def report(self, raw: pd.DataFrame, bad: pd.Series, values: pd.Series, name: str, message: str,
               hint: str | None = None) -> None:
        """One Problem per bad record: raw file, row, the raw column of ``name``, the value."""
        if not bool(bad.any()):
            return
        mask = bad.to_numpy(dtype=bool)
        cols = self.source_columns(raw, name)[mask]
        vals = values[mask] if values is not None else pd.Series([None] * int(mask.sum()))
        for v, c, f, r in zip(vals.tolist(), cols.tolist(), raw.loc[mask, FILE_COL].tolist(),
                              raw.loc[mask, ROW_COL].tolist()):
            self.problems.append(Problem(message.format(value=v, column=c), file=f, row=int(r), column=c, hint=hint))

    def value_expr(self, text: str, frame: pd.DataFrame, key: str) -> pd.Series:
        """A value expression (cdisc.expr) on ``frame``; its errors name this spec file and key."""
        from cdisc.expr import evaluate_value

        try:
            return evaluate_value(text, frame, where=key)
        except SpecError as exc:
            raise SpecError([replace(p, file=p.file or self.file) for p in exc.problems]) from None

    def expr_frame(self, raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
        """Raw columns and the variables computed so far, for ``when``/``cases`` conditions."""
        return raw.assign(**{c: out[c] for c in out.columns})

    # -- rules -----------------------------------------------------------------------
    def apply(self, var: Variable, raw: pd.DataFrame, out: pd.DataFrame, key: str) -> pd.Series:
        """One variable: its rule on the records where ``when`` holds, missing elsewhere.

        The condition is evaluated first and the rule sees only those records, so a value
        outside the condition is never reported as an error (e.g. a CT map limited to the
        records whose result was evaluated).
        """
        if var.when is not None:
            cond = self.condition(var.when, self.expr_frame(raw, out), f"{key}.when", out.columns)
            if bool(cond.all()):
                res = self.rule(var, raw, out, key)
            else:
                res = self.rule(var, raw[cond], out[cond], key).reindex(raw.index)
        else:
            res = self.rule(var, raw, out, key)
        if var.type == "Num":
            res = pd.to_numeric(res, errors="coerce").astype("float64")
        else:
            if var.ascii == "transliterate":
                res = on_distinct(res, fn.ascii_transliterate)
            if var.case != "asis":
                res = on_distinct(res, _upper if var.case == "upper" else _lower)
        return res

    def rule(self, var: Variable, raw: pd.DataFrame, out: pd.DataFrame, key: str) -> pd.Series:
        resolve = self.resolver(raw, out, key)
        rule = var.rule
        study = self.ctx.study
        if rule == "assign":
            col = resolve(var.assign)
            self.provenance[var.name] = var.assign
            res = clean_text(col) if var.type == "Char" else col
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
            self.provenance[var.name] = var.number
            col = resolve(var.number)
            res, bad = fn.to_number(col)
            self.report(raw, bad, col, var.number, "value {value!r} is not a number", "correct the CRF value")
        elif rule == "map":
            res = self.map(var, raw, out, resolve, key)
        elif rule == "decode":
            res = self.decode(var, raw, resolve, key)
        elif rule == "lookup":
            lk = var.lookup
            self.provenance[var.name] = lk.from_
            try:
                table = study.table(lk.table)
            except KeyError:
                raise SpecError(f"lookup table {lk.table!r} is not defined in study.yaml", file=self.file,
                                key=key) from None
            col = resolve(lk.from_)
            res, bad = fn.lookup(col, table, key=lk.key, field=lk.field)
            self.report(raw, bad, col, lk.from_, f"value {{value!r}} is not a {lk.key} of table {lk.table} in study.yaml",
                        f"add it to {lk.table} in specs/study.yaml or correct the CRF")
        elif rule == "iso8601":
            self.provenance[var.name] = var.iso8601.date
            res = self.iso(var.iso8601, raw, resolve)
        elif rule == "study_day":
            sd = var.study_day
            date_name, ref_name = (sd, "RFSTDTC") if isinstance(sd, str) else (sd.date, sd.reference)
            if not isinstance(sd, str) and (ref_name in out.columns or ref_name in raw.columns):
                ref = resolve(ref_name)          # a reference of the same records (DMDY from RFSTDTC in DM)
            else:
                ref = self._dm_column(ref_name, resolve("USUBJID"), key)
            res = fn.study_day(resolve(date_name), ref)
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
        elif rule == "nrind":
            r = var.nrind
            res = fn.nrind(resolve(r.result), resolve(r.low), resolve(r.high),
                           resolve(r.text) if r.text else None)
        elif rule == "baseline_flag":
            b = var.baseline_flag
            ref = self._dm_column(b.reference, resolve("USUBJID"), key)
            res = fn.baseline_flag(pd.DataFrame({c: resolve(c) for c in b.by}), resolve(b.date),
                                   resolve(b.result), ref)
        elif rule == "cases":
            frame = self.expr_frame(raw, out)
            conds, values = [], []
            for j, case in enumerate(var.cases):
                if case.when is None:
                    conds.append(pd.Series(True, index=raw.index))
                else:
                    conds.append(self.condition(case.when, frame, f"{key}.cases[{j}].when", out.columns))
                values.append(case.value)
            res = fn.cases(conds, values, raw.index)
        elif rule == "expr":
            frame = self.expr_frame(raw, out)
            try:
                from cdisc.expr import evaluate_value, parse

                expr = parse(var.expr, where=f"{key}.expr")
                self.note_raw(n for n in expr.names if n not in out.columns)
                res = evaluate_value(expr, frame)
            except SpecError as exc:
                raise SpecError([replace(p, file=p.file or self.file) for p in exc.problems]) from None
            if var.type == "Char" and (res.dtype == object or str(res.dtype) == "str"):
                res = res.astype("str").where(res.notna()).str.strip()
                res = res.where(res.ne(""))
            elif var.type == "Char":
                from cdisc.expr import _num_text

                res = _num_text(res)
        elif rule == "dm":
            # a subject-level value from DM, e.g. PCRFTDTC = RFXSTDTC (SDTMIG 3.4 PC: the date/time
            # of the reference time point, here the first infusion)
            res = self._dm_column(var.dm, resolve("USUBJID"), key)
        else:  # sequence is applied after all other variables
            raise AssertionError(rule)
        return res

    def map(self, var: Variable, raw: pd.DataFrame, out: pd.DataFrame, resolve, key: str) -> pd.Series:
        """Raw spellings -> CT submission values; per-record codelists when ``by`` is given.

        1. pick the codelist of each record: ``codelists[value of by]``, else the rule's or
           the variable's codelist (a record with none is a spec error for that value);
        2. map each codelist's records (CDISC values, decodes, synonyms, sponsor synonyms);
        3. a non-blank spelling no codelist term matches is an error naming file, row,
           raw column and the allowed values (extensible codelists too: new terms are added
           to study-ct.yaml on purpose, never invented by the build).
        """
        m = var.map
        src = m if isinstance(m, str) else m.from_
        default = (None if isinstance(m, str) else m.codelist) or var.codelist
        self.provenance[var.name] = src
        values = resolve(src)
        groups: dict[str, pd.Series] = {}
        if not isinstance(m, str) and m.by:
            bv = resolve(m.by).astype("str").where(resolve(m.by).notna(), "").str.strip()
            listed = pd.Series(False, index=raw.index)
            for val, cl in m.codelists.items():
                hit = bv.eq(str(val))
                groups[cl] = groups.get(cl, pd.Series(False, index=raw.index)) | hit
                listed |= hit
            rest = ~listed
            if default:
                groups[default] = groups.get(default, pd.Series(False, index=raw.index)) | rest
            else:
                orphan = rest & ~fn.blank(values)
                self.report(raw.assign(__BY=bv), orphan, bv, m.by,
                            f"no codelist for {m.by} = {{value!r}} in {self.file} {key}.map.codelists",
                            "add the value under map.codelists or give map.codelist as the default")
        else:
            groups[default] = pd.Series(True, index=raw.index)
        res = pd.Series(np.nan, index=raw.index, dtype="object")
        for cl_name, mask in groups.items():
            if not cl_name or cl_name not in self.ctx.ct:
                raise SpecError(f"codelist {cl_name!r} is not in specs/ct", file=self.file, key=key)
            if not mask.any():
                continue
            mapped, unknown = self.ctx.ct.map_values(values[mask], cl_name)
            res[mask] = mapped
            cl = self.ctx.ct[cl_name]
            kind = "extensible" if cl.extensible else "non-extensible"
            self.report(raw[mask], unknown, values[mask], src,
                        f"value {{value!r}} is not in the {kind} codelist {cl.name} ({cl.code or 'sponsor'})",
                        f"use one of: {', '.join(cl_values_preview(cl))}, or add the spelling under "
                        f"synonyms.{cl.name} in specs/ct/study-ct.yaml")
        return res

    def decode(self, var: Variable, raw: pd.DataFrame, resolve, key: str) -> pd.Series:
        """The decode of a submission value: --TEST from --TESTCD (CDISC CT pairs each code
        with its test name; SDTMIG 3.4 §4.5.1), any unknown value reported."""
        d = var.decode
        if d.codelist not in self.ctx.ct:
            raise SpecError(f"codelist {d.codelist!r} is not in specs/ct", file=self.file, key=key)
        self.provenance[var.name] = d.from_
        cl = self.ctx.ct[d.codelist]
        values = resolve(d.from_)
        text = clean_text(values)
        res = text.map(cl.decode_of())
        bad = res.isna() & text.ne("")
        self.report(raw, bad, text, d.from_, f"value {{value!r}} is not a term of codelist {cl.name}, so it has no decode")
        return res.where(text.ne(""))

    def iso(self, spec: IsoDate, raw: pd.DataFrame, resolve) -> pd.Series:
        date = resolve(spec.date)
        time = resolve(spec.time) if spec.time else None
        forms = raw[FORM_COL] if FORM_COL in raw.columns else pd.Series("", index=raw.index)
        res, bad_date, bad_time, tried = convert_dates(self.ctx.study, date, time, forms, spec.date, spec.formats)
        legacy = tried.eq("")
        self.report(raw, bad_date & legacy, date, spec.date,
                    "date {value!r} is not a valid date in DD-MON-YYYY (or ISO 8601)",
                    "use e.g. 12-MAR-2025 or UN-MAR-2025 for an unknown day")
        for layouts in sorted(set(tried[bad_date & ~legacy])):     # a loop over layout lists
            self.report(raw, bad_date & tried.eq(layouts), date, spec.date,
                        "date {value!r} is not a valid date in any of the layouts tried: " + layouts,
                        "correct the date in the EDC, or add its layout to raw.date_formats in specs/study.yaml")
        if time is not None:
            self.report(raw, bad_time & ~bad_date, time, spec.time, "time {value!r} is not a valid time HH:MM (00:00-23:59)",
                        "use e.g. 14:05, or UN:UN for an unknown time")
        return res

    def _dm_column(self, column: str, usubjid: pd.Series, key: str) -> pd.Series:
        if self.ctx.dm is None:
            raise SpecError(f"{column} needs DM, which is built first", file=self.file, key=key)
        if column not in self.ctx.dm.columns:
            raise SpecError(f"{column} is not a DM variable", file=self.file, key=key)
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
        get VISITNUM = the VISITNUM of the last scheduled visit whose planned day is on or
        before the record's study day, plus 0.01 x the ordinal (SDTMIG 3.4 §4.4.5 leaves
        unscheduled numbering to the sponsor; this keeps VISITNUM in time order), and VISIT
        'UNSCHEDULED 6.02' named by that number, so a VISIT value always has one VISITNUM.
        VISITDY stays missing for unscheduled visits.
        """
        rule = var.visit if not isinstance(var.visit, str) else None
        part = var.visit if isinstance(var.visit, str) else var.visit.part
        study = self.ctx.study
        fcol = study.raw.folder
        folder = on_distinct(resolve(fcol), lambda u: u.astype("str").str.strip())
        sched = {v.folder.casefold(): v for v in study.visits}
        f_norm = on_distinct(folder, lambda u: u.str.casefold())
        known = f_norm.isin(list(sched))
        prefix = study.raw.unscheduled_prefix
        unsched = ~known & on_distinct(folder, lambda u: u.str.upper().str.startswith(prefix.upper())) & folder.ne("")
        bad = ~known & ~unsched & folder.ne("")
        self.report(raw, bad, folder, fcol, "folder {value!r} is not in the visit schedule (study.yaml visits)",
                    "add the folder to visits in specs/study.yaml or correct the export")
        if part == "visitdy":
            return f_norm.map({k: v.day for k, v in sched.items()}).astype("float64")
        nums = f_norm.map({k: v.visitnum for k, v in sched.items()}).astype("float64")
        if unsched.any():
            if rule is None or rule.date is None:
                raise SpecError(f"{part.upper()} of unscheduled visits needs the record date: "
                                f"write visit: {{part: {part}, date: --DTC}}", file=self.file, key=key)
            dy = fn.study_day(resolve(rule.date), self._dm_column("RFSTDTC", resolve("USUBJID"), key))
            planned = sorted((v.day, v.visitnum) for v in study.visits if v.day is not None)
            days = np.array([d for d, _ in planned], dtype="float64")
            plan_nums = np.array([n for _, n in planned], dtype="float64")
            pos = np.searchsorted(days, dy.to_numpy(), side="right") - 1
            prev = np.where((pos >= 0) & ~np.isnan(dy.to_numpy()), plan_nums[np.clip(pos, 0, None)], np.nan)
            ordinal = _ordinal(folder, prefix)
            if rule.unscheduled:
                env = pd.DataFrame({"PREV_VISITNUM": prev, "UNS_ORDINAL": ordinal.to_numpy(dtype="float64"),
                                    "STUDY_DAY": dy.to_numpy(dtype="float64")}, index=nums.index)
                own = self.value_expr(rule.unscheduled, env, f"{key}.visit.unscheduled")
                nums = nums.where(~unsched, pd.to_numeric(own, errors="coerce"))
            else:
                nums = nums.where(~unsched, pd.Series(prev, index=nums.index) + ordinal / 100.0)
            undated = unsched & nums.isna()
            if part == "visitnum":
                self.report(raw, undated, folder, fcol,
                            "unscheduled visit {value!r} has no complete date, so it cannot be numbered")
        if part == "visitnum":
            return nums
        # VISIT of an unscheduled visit carries its number, so one VISIT has one VISITNUM
        # across the study (FDA validator SD0052).
        names = f_norm.map({k: v.visit for k, v in sched.items()})
        if rule is not None and rule.unscheduled_name and unsched.any():
            env = pd.DataFrame({"VISITNUM": nums, "UNS_ORDINAL": _ordinal(folder, prefix)}, index=nums.index)
            own = self.value_expr(rule.unscheduled_name, env, f"{key}.visit.unscheduled_name")
            return names.where(~unsched, own.where(nums.notna()))
        unsched_name = "UNSCHEDULED " + on_distinct(nums, lambda u: u.map(lambda x: "" if np.isnan(x) else f"{x:.2f}"))
        return names.where(~unsched, unsched_name.where(nums.notna()))

    def result(self, var: Variable, raw: pd.DataFrame, resolve, key: str) -> pd.Series:
        """--STRESC/--STRESN/--STRESU (sdtm.results); the three parts of the same records are
        derived together once and kept for the other two (same inputs, same problems)."""
        from .results import standardise_all

        r = var.result
        self.provenance[var.name] = r.orres
        if r.codelist and r.codelist not in self.ctx.ct:
            raise SpecError(f"codelist {r.codelist!r} is not in specs/ct", file=self.file, key=key)
        memo = (r.orres, r.orresu, r.testcd, r.lloq, tuple(r.below_lloq), r.blq, r.codelist)
        seen = self._standardised.get(memo)
        if seen is not None and seen[0].equals(raw.index):
            return seen[1][r.part]
        names = {"orres": self.source_columns(raw, r.orres)}
        if r.orresu:
            names["orresu"] = self.source_columns(raw, r.orresu)
        parts, problems = standardise_all(resolve(r.orres), resolve(r.orresu) if r.orresu else None,
                                          resolve(r.testcd) if r.testcd else None, raw,
                                          conversions=self.ctx.study.lookups.get("unit_conversions", []),
                                          where=f"{self.file}: {key}", names=names,
                                          lloq=resolve(r.lloq) if r.lloq else None, below_lloq=r.below_lloq,
                                          blq=r.blq, codelist=self.ctx.ct[r.codelist] if r.codelist else None)
        self._standardised[memo] = (raw.index, parts)
        self.problems.extend(problems)
        return parts[r.part]

    # -- the whole domain ----------------------------------------------------------------
    def run(self) -> DomainResult:
        raw, recon = self.stacked_sources()
        out = pd.DataFrame(index=raw.index)
        seq_vars = []
        everything = list(self.spec.variables) + list(self.spec.supplemental)
        keys = {var.name: (f"supplemental[{i - len(self.spec.variables)}]" if i >= len(self.spec.variables)
                           else f"variables[{i}]") for i, var in enumerate(everything)}
        # helper variables are evaluated like the others and dropped from the output at the end
        everything += list(self.spec.helpers)
        keys.update({h.name: f"helpers[{i}]" for i, h in enumerate(self.spec.helpers)})
        for var in _evaluation_order(everything, file=self.file, keys=keys):
            key = keys[var.name]
            if var.rule == "sequence":
                seq_vars.append((var, key))
                continue
            out[var.name] = self.apply(var, raw, out, key)
        for var in everything:           # output column order is the spec's
            if var.name not in out.columns:
                out[var.name] = np.nan
        out = out[[v.name for v in everything]]
        for c in BOOKKEEPING:
            out[c] = raw[c] if c in raw else ("" if c in (FILE_COL, FORM_COL) else 0)
        if self.spec.duplicates:
            keep = self.drop_duplicates(out, raw)
            out, raw = out[keep], raw[keep]
        for var, key in seq_vars:
            missing = [c for c in var.sequence if c not in out.columns and c not in raw.columns]
            if missing:
                raise SpecError(f"sequence order names unknown variables {missing}", file=self.file, key=key,
                                hint="order by output variables, helpers or raw columns")
            from_raw = [c for c in var.sequence if c not in out.columns]
            self.note_raw(from_raw)
            frame = out.assign(**{c: raw[c] for c in from_raw}) if from_raw else out
            out[var.name] = fn.sequence(frame, by="USUBJID", order=var.sequence)
        self.check_records(out, raw)
        order = ["USUBJID"] + [k for k in (self.spec.sort or self.spec.keys) if k != "USUBJID"] \
            if "USUBJID" in out.columns else (self.spec.sort or self.spec.keys)
        out = out.sort_values(order + [FILE_COL, ROW_COL], kind="stable", na_position="last").reset_index(drop=True)
        supp = self.split_supplemental(out)
        data = out[[v.name for v in self.spec.variables] + TRACE]
        return DomainResult(self.spec, data, supp, recon, _unique_problems(self.problems))

    def drop_duplicates(self, out: pd.DataFrame, raw: pd.DataFrame) -> pd.Series:
        """The same measurement collected on two forms: keep the ``keep`` form's record.

        For each ``duplicates`` rule:
        1. records of the ``keep`` form are the reference; a record of another form with the
           same ``by`` values (all present) duplicates it;
        2. every ``compare`` variable must agree (numbers within 1e-9 relative, text exactly,
           both missing agrees), else a data error names both raw rows: a transcription that
           disagrees with its source is a query for the site, not something to resolve silently;
        3. the duplicate is dropped and counted in its form's reconciliation under ``reason``.
        Returns the mask of records kept.
        """
        keep_mask = pd.Series(True, index=out.index)
        forms = {s.form for s in self.spec.sources}
        for k, d in enumerate(self.spec.duplicates):
            where = f"duplicates[{k}]"
            unknown = [c for c in d.by + d.compare if c not in out.columns]
            if unknown:
                raise SpecError(f"duplicates names unknown variables {unknown}", file=self.file, key=where)
            if d.keep not in forms:
                raise SpecError(f"duplicates.keep {d.keep!r} is not a source form of the domain ({sorted(forms)})",
                                file=self.file, key=f"{where}.keep")
            present = pd.Series(True, index=out.index)
            for c in d.by:
                present &= ~fn.blank(out[c])
            # one integer per distinct key (records with a blank key part are not compared)
            keyed = pd.Series(distinct_rows(out[list(d.by)])[0], index=out.index)
            ref = keep_mask & present & out[FORM_COL].eq(d.keep)
            cand = keep_mask & present & ~out[FORM_COL].eq(d.keep)
            ref_idx = pd.Series(out.index[ref], index=keyed[ref].to_numpy())
            ref_idx = ref_idx[~ref_idx.index.duplicated()]
            partner = keyed[cand].map(ref_idx).dropna().astype(int)
            if partner.empty:
                continue
            dup_idx, ref_rows = partner.index, partner.to_numpy()
            for c in d.compare:
                a, b = out.loc[dup_idx, c], out.loc[ref_rows, c]
                differ = ~fn.same_values(a.reset_index(drop=True), b.reset_index(drop=True)).to_numpy()
                for ia, ib in zip(dup_idx[differ], ref_rows[differ]):
                    self.problems.append(Problem(
                        f"{self.spec.domain}.{c} = {out.at[ia, c]!r} here but {out.at[ib, c]!r} in "
                        f"{out.at[ib, FILE_COL]} row {out.at[ib, ROW_COL]} for the same "
                        f"{'/'.join(d.by)} ({d.reason})", file=out.at[ia, FILE_COL], row=int(out.at[ia, ROW_COL]),
                        column=self.source_columns(raw.loc[[ia]], c).iloc[0],
                        hint="correct the transcription on one of the two forms"))
            keep_mask[dup_idx] = False
            counts = out.loc[dup_idx].groupby([SRC_IDX, MELT_IDX]).size()
            for (i, j), n in counts.items():
                r = self.recon_index[(int(i), int(j))]
                r.excluded[d.reason] = r.excluded.get(d.reason, 0) + int(n)
                r.rows_mapped -= int(n)
                r.records -= int(n)
        return keep_mask

    def check_records(self, out: pd.DataFrame, raw: pd.DataFrame) -> None:
        """Required values present, natural keys unique, every subject in DM.

        A record already reported (an unknown term, a bad date) gets no follow-on message
        (its required variable is missing, its key is incomplete) for the same cause.
        """
        trace = raw.assign(**{c: out[c] for c in TRACE})
        reported = {(p.file, p.row) for p in self.problems}
        fresh = pd.Series(True, index=out.index)
        if reported:
            here = pd.MultiIndex.from_arrays([out[FILE_COL].astype("str"), pd.to_numeric(out[ROW_COL]).astype("int64")])
            fresh = pd.Series(~here.isin([(str(f), int(r)) for f, r in reported if r is not None]), index=out.index)
        for v in self.spec.variables:
            if v.core == "Req":
                col = out[v.name]
                missing = (fn.blank(col) if v.type == "Char" else col.isna()) & fresh
                self.report(trace, missing, col, v.name, f"required variable {self.spec.domain}.{v.name} is missing",
                            "the CRF value it comes from is blank")
        keys = self.spec.keys
        dup = out.duplicated(keys, keep=False) & fresh
        if dup.any():
            rows = out[dup]
            shown = pd.Series("", index=rows.index, dtype="str")
            for c in keys:                          # a loop over key variables, not records
                shown = shown + ("" if c == keys[0] else " / ") + rows[c].astype("str").where(rows[c].notna(), "")
            for f, r, vals in zip(rows[FILE_COL], rows[ROW_COL], shown):
                self.problems.append(Problem(
                    f"duplicate key in {self.spec.domain}: {'/'.join(keys)} = {vals}", file=f, row=int(r),
                    hint="remove the duplicate CRF record or mark it deleted"))
        if self.ctx.dm is not None and "USUBJID" in out.columns and not self.spec.subject_level:
            orphan = ~out["USUBJID"].isin(set(self.ctx.dm["USUBJID"])) & out["USUBJID"].notna()
            self.report(out, orphan, out["USUBJID"], "USUBJID", f"subject {{value!r}} in {self.spec.domain} is not in DM",
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
                qval = clean_text(val)
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


def convert_dates(study: Study, date: pd.Series, time: pd.Series | None, forms: pd.Series, column: str,
                  override: list[str] | None = None) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """Raw dates (and times) -> ISO 8601 text with the layouts of each record's form.

    The layouts come from the rule (``iso8601.formats``), else study.yaml ``raw.date_formats``
    (``form.COLUMN``, then ``form``, then ``*``). The default layouts (DD-MON-YYYY and ISO 8601)
    are read by :func:`sdtm.functions.iso8601_dtc`; any other list by
    :func:`sdtm.functions.dates_by_format`. A loop over forms, not records.
    Returns (dtc, bad date, bad time, the layouts tried per record: "" for the default ones).
    """
    tokens = study.raw.unknown_tokens
    parts = []
    bad_d = pd.Series(False, index=date.index)
    bad_t = pd.Series(False, index=date.index)
    tried = pd.Series("", index=date.index, dtype="object")
    form_text = forms.astype("str").where(forms.notna(), "")
    for form in pd.unique(form_text):
        m = form_text.eq(form)
        fmts = list(override) if override else study.raw.formats_for(form or None, column)
        d = date[m]
        t = time[m] if time is not None else None
        if tuple(fmts) == fn.DEFAULT_DATE_FORMATS:
            res, bad = fn.iso8601_dtc(d, t, unknown_tokens=tokens)
            bd = fn.iso8601_dtc(d, unknown_tokens=tokens)[1] if t is not None else bad
            bt = bad & ~bd
        else:
            res, bd, bt = fn.dates_by_format(d, t, formats=fmts, unknown_tokens=tokens)
            tried[m] = ", ".join(fmts)
        parts.append(res)
        bad_d[m] = bd
        bad_t[m] = bt
    if len(parts) == 1:
        return parts[0], bad_d, bad_t, tried
    dtc = pd.concat(parts).reindex(date.index) if parts else pd.Series([], index=date.index, dtype="str")
    return dtc, bad_d, bad_t, tried


def read_form(ctx: Context, form: str, *, where: str, file: str | None = None, key: str | None = None) -> pd.DataFrame:
    """The raw frame of a form; a missing or unsafe form name is reported at the spec key naming it
    (a problem inside a raw file that exists keeps that file's name and row)."""
    try:
        return ctx.form(form)
    except InputError as exc:
        raise InputError([p if p.file else Problem(p.message, file=file, row=p.row, column=p.column,
                                                   key=key or where, hint=p.hint)
                          for p in exc.problems]) from None


def aggregate_by_subject(ctx: Context, agg, *, where: str, problems: list[Problem]) -> pd.Series:
    """One value per raw subject from one or more forms (min/max of values, or first/last by an order).

    1. read each source form, keep the rows its ``where`` selects;
    2. take the value column, or convert date (+ time) to ISO 8601 (bad dates are reported);
    3. min/max compare ISO 8601 text, which orders complete dates correctly; first/last
       order by ``order`` (numeric) then by source position.
    Returns a Series indexed by the raw subject identifier.
    """
    import json

    memo = json.dumps([agg.order, [src.model_dump(mode="json") for src in agg.sources]], sort_keys=True)
    if memo not in ctx.aggregated:
        found: list[Problem] = []
        ctx.aggregated[memo] = (_aggregate_values(ctx, agg, where, found), found)
    else:
        for i, src in enumerate(agg.sources):      # a read all the same: the build graph records it
            read_form(ctx, src.form, where=where, key=f"{where}.sources[{i}].form")
    allp, found = ctx.aggregated[memo]
    problems.extend(found)
    if agg.how in ("min", "max"):
        allp = allp.sort_values(["subj", "val"], kind="stable")
    else:
        allp = allp.sort_values(["subj", "ord", "src"], kind="stable", na_position="last")
    g = allp.groupby("subj", sort=True)["val"]
    return g.first() if agg.how in ("min", "first") else g.last()


def _aggregate_values(ctx: Context, agg, where: str, problems: list[Problem]) -> pd.DataFrame:
    """The (subject, value, order, source) rows of an aggregate's sources, values present."""
    subj_col = ctx.study.raw.subject
    parts = []
    for i, src in enumerate(agg.sources):
        form = read_form(ctx, src.form, where=where, key=f"{where}.sources[{i}].form")
        fname = ctx.forms_read[src.form]
        cols = {subj_col} | ({src.value} if isinstance(src.value, str) else
                             {src.value.date} | ({src.value.time} if src.value.time else set()))
        if agg.order:
            cols.add(agg.order)
        require_columns(form, cols, file=fname, key=f"{where}.sources[{i}]")
        ctx.note_read(src.form, cols)
        if src.where:
            from cdisc.expr import parse

            ctx.note_read(src.form, parse(src.where, where=f"{where}.sources[{i}].where").names)
            form = form[evaluate_filter(src.where, form, where=f"{where}.sources[{i}].where")]
        if isinstance(src.value, str):
            val = form[src.value].astype("str").str.strip()
            val = val.where(val.ne(""))
        else:
            date = form[src.value.date]
            time = form[src.value.time] if src.value.time else None
            val, bad, bad_t, tried = convert_dates(ctx.study, date, time, pd.Series(src.form, index=form.index),
                                                   src.value.date, src.value.formats)
            bad = bad | bad_t
            layouts = f" in any of the layouts tried: {tried.iloc[0]}" if len(tried) and tried.iloc[0] else ""
            for v, f, r in zip(date[bad].tolist(), form.loc[bad, FILE_COL].tolist(), form.loc[bad, ROW_COL].tolist()):
                problems.append(Problem(f"date {v!r} is not a valid date{layouts}", file=f, row=int(r),
                                        column=src.value.date))
        order = (pd.to_numeric(form[agg.order], errors="coerce") if agg.order
                 else pd.Series(0.0, index=form.index))
        parts.append(pd.DataFrame({"subj": form[subj_col].astype("str").str.strip(), "val": val,
                                   "ord": order, "src": i}))
    allp = pd.concat(parts, ignore_index=True)
    return allp[allp["val"].notna()]


def references(var: Variable, where: str | None = None) -> set[str]:
    """Names a variable's rule (and its ``when``) reads: raw columns or other variables.

    ``where`` (spec file and key of the variable) locates an unparsable condition.
    """
    from cdisc.expr import parse

    names: set[str] = set()
    r = var.rule
    if r == "assign":
        names.add(var.assign)
    elif r == "template":
        import string

        names |= {f for _, f, _, _ in string.Formatter().parse(var.template) if f}
    elif r == "map":
        if isinstance(var.map, str):
            names.add(var.map)
        else:
            names.add(var.map.from_)
            if var.map.by:
                names.add(var.map.by)
    elif r == "decode":
        names.add(var.decode.from_)
    elif r == "lookup":
        names.add(var.lookup.from_)
    elif r == "number":
        names.add(var.number)
    elif r == "study_day" and not isinstance(var.study_day, str):
        names |= {var.study_day.date, var.study_day.reference, "USUBJID"}
    elif r in ("study_day", "epoch"):
        names |= {getattr(var, r), "USUBJID"}
    elif r == "visit" and not isinstance(var.visit, str) and var.visit.date:
        names |= {var.visit.date, "USUBJID"}
    elif r == "result":
        names |= {x for x in (var.result.orres, var.result.orresu, var.result.testcd, var.result.lloq) if x}
    elif r == "nrind":
        names |= {x for x in (var.nrind.result, var.nrind.low, var.nrind.high, var.nrind.text) if x}
    elif r == "baseline_flag":
        names |= set(var.baseline_flag.by) | {var.baseline_flag.date, var.baseline_flag.result, "USUBJID"}
    elif r == "cases":
        for j, c in enumerate(var.cases):
            if c.when:
                names |= parse(c.when, where=f"{where}.cases[{j}].when" if where else None).names
    elif r == "dm":
        names.add("USUBJID")
    elif r == "expr":
        names |= parse(var.expr, where=f"{where}.expr" if where else None).names
    elif r == "sequence":
        names |= set(var.sequence) | {"USUBJID"}
    if var.when:
        names |= parse(var.when, where=f"{where}.when" if where else None).names
    return names


def _evaluation_order(variables: list[Variable], *, file: str | None = None,
                      keys: dict[str, str] | None = None) -> list[Variable]:
    """Spec order, except that a variable is evaluated after the variables it reads.

    SDTM puts EPOCH and --DY before the --DTC they come from; the spec keeps the
    submission order and the engine sorts out the dependencies (a cycle is a spec error
    naming the spec file and the key of the variable where it closes).
    """
    keys = keys or {}
    by_name = {v.name: v for v in variables}
    done: list[Variable] = []
    state: dict[str, int] = {}

    def visit(v: Variable, chain: list[str]) -> None:
        if state.get(v.name) == 2:
            return
        if state.get(v.name) == 1:
            raise SpecError(f"variables depend on each other in a cycle: {' -> '.join(chain + [v.name])}",
                            file=file, key=keys.get(v.name))
        state[v.name] = 1
        where = f"{file}: {keys[v.name]}" if file and v.name in keys else None
        for n in sorted(references(v, where)):
            if n in by_name and n != v.name:
                visit(by_name[n], chain + [v.name])
        state[v.name] = 2
        done.append(v)

    for v in variables:
        visit(v, [])
    return done


def _ordinal(folder: pd.Series, prefix: str) -> pd.Series:
    """The number after the unscheduled prefix of a folder (UNS2 -> 2), 1 when there is none."""
    return on_distinct(folder, lambda u: pd.to_numeric(u.str.upper().str.slice(len(prefix)),
                                                       errors="coerce").fillna(1))


def _source_or(col: pd.Series, name: str) -> pd.Series:
    s = col.astype("str").where(col.notna(), "")
    return s.where(s.str.strip().ne(""), pd.Series(name, index=col.index, dtype="str"))


def _upper(s: pd.Series) -> pd.Series:
    return s.str.upper()


def _lower(s: pd.Series) -> pd.Series:
    return s.str.lower()


def _num_text(x) -> str:
    """A number as SUPP--.QVAL text: integers without '.0', others with repr precision."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    f = float(x)
    return str(int(f)) if f.is_integer() else repr(f)


def _unique_problems(problems: list[Problem]) -> list[Problem]:
    """Drop repeats (e.g. the same unit problem seen by --STRESC, --STRESN and --STRESU)."""
    seen, out = set(), []
    for p in problems:
        k = (p.message, p.file, p.row, p.column, p.key)
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out


def map_domain(spec: DomainSpec, ctx: Context, *, spec_file: str) -> DomainResult:
    return _Mapper(spec, ctx, spec_file).run()
