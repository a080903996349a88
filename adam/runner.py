"""Runs the ADaM specs: resolves inputs, calls the derivations in order, shapes the output.

Build order follows the datasets each spec reads (ADSL before anything that merges it).
Every error is re-raised with the spec file and step (``specs/adam/adae.yaml,
steps[3] derive_vars_dt``) so the user knows where to look.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cdisc.distinct import on_distinct

from cdisc.errors import CdiscError, Problem, SpecError
from cdisc.expr import evaluate_filter, parse
from cdisc.specio import load_spec_folder

from .spec import DATASET_ARGS, AdamSpec, Step


#: the arguments each built-in step requires
BUILTIN_ARGS = {"filter": ("where",), "stack": ("datasets",), "drop": ("vars",), "merge_supp": ("supp", "qnams"),
                "case": ("new_var", "cases"), "map_values": ("new_var", "source_var", "values"),
                "row_max": ("new_var", "vars"), "row_min": ("new_var", "vars")}


def load_adam_specs(specs_dir: Path) -> dict[str, tuple[AdamSpec, str]]:
    return load_spec_folder(specs_dir, "adam", AdamSpec, "dataset")


def build_order(specs: dict[str, tuple[AdamSpec, str]], available: set[str]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise SpecError(f"ADaM datasets read each other in a cycle: {' -> '.join(chain + [name])}")
        state[name] = 1
        spec, display = specs[name]
        for dep in sorted(spec.dependencies()):
            if dep in specs:
                visit(dep, chain + [name])
            elif dep not in available:
                raise SpecError(f"reads dataset {dep}, which is neither built SDTM nor an ADaM spec",
                                file=display)
        state[name] = 2
        order.append(name)

    for name in sorted(specs, key=lambda n: (n != "ADSL", n)):
        visit(name, [])
    return order


class _Runner:
    def __init__(self, spec: AdamSpec, display: str, frames: dict[str, pd.DataFrame]):
        self.spec = spec
        self.display = display
        self.frames = frames

    def frame(self, name: str, key: str) -> pd.DataFrame:
        if name not in self.frames:
            raise SpecError(f"dataset {name} is not available (built: {', '.join(sorted(self.frames))})",
                            file=self.display, key=key)
        return self.frames[name]

    def run(self) -> pd.DataFrame:
        src = self.spec.source
        data = self.frame(src.dataset, "source.dataset").copy(deep=False)
        if src.filter:
            data = data[evaluate_filter(src.filter, data, where=f"{self.display}: source.filter")]
        if src.empty:
            data = data.iloc[0:0]
        data = data.reset_index(drop=True)
        for i, step in enumerate(self.spec.steps):
            key = f"steps[{i}] {step.derivation}"
            try:
                data = self.step(step, data, key)
            except CdiscError as exc:
                raise type(exc)([_locate(p, self.display, key) for p in exc.problems]) from None
        return self.shape(data)

    def step(self, step: Step, data: pd.DataFrame, key: str) -> pd.DataFrame:
        from .derive import DERIVATIONS

        args = dict(step.args)
        name = step.derivation
        needs = BUILTIN_ARGS.get(name, ())
        lacking = [a for a in needs if a not in args]
        if lacking:
            raise SpecError(f"step {name} needs argument {', '.join(lacking)}", file=self.display, key=key,
                            hint=f"e.g. {{derivation: {name}, args: {{{needs[0]}: ...}}}}")
        if name == "filter":
            return data[evaluate_filter(args["where"], data, where=key)].reset_index(drop=True)
        if name == "assign":
            out = data.copy(deep=False)
            for var, text in args.items():
                val = parse(str(text), where=f"{key}.{var}").evaluate(out)
                out[var] = val if isinstance(val, pd.Series) else pd.Series(val, index=out.index)
            return out
        if name == "case":
            return _case(data, key=key, **args)
        if name == "map_values":
            return _map_values(data, key=key, **args)
        if name == "stack":
            parts = []
            for j, s in enumerate(args["datasets"]):
                s = {"dataset": s} if isinstance(s, str) else s
                f = self.frame(s["dataset"], f"{key}.datasets[{j}]")
                if s.get("filter"):
                    f = f[evaluate_filter(s["filter"], f, where=f"{key}.datasets[{j}].filter")]
                parts.append(f.assign(**(s.get("set") or {})))
            new = pd.concat(parts, ignore_index=True, sort=False)
            return pd.concat([data, new], ignore_index=True, sort=False) if step.append else new
        if name == "drop":
            gone = [v for v in args["vars"] if v not in data.columns]
            if gone:
                raise SpecError(f"cannot drop {gone}: not columns", file=self.display, key=key)
            return data.drop(columns=list(args["vars"]))
        if name == "row_max" or name == "row_min":
            return _row_extreme(data, key=key, how=name[4:], **args)
        if name == "merge_supp":
            supp = self.frame(args["supp"], f"{key}.args.supp")
            return merge_supp(data, supp, qnams=args["qnams"], key=key)
        if name == "nca":
            from .nca import BLQRule, LambdaZRule, nca_lambda_z_flags, nca_parameters

            if "blq_rule" in args:
                args["blq_rule"] = BLQRule(**args["blq_rule"])
            if "lambda_z" in args:
                args["lambda_z"] = LambdaZRule(**args["lambda_z"])
            # `lambda_z_flag: VAR` keeps the records and adds VAR = "Y" on the samples of
            # the lambda z fit (an ADPC flag), instead of returning the parameters
            flag_var = args.pop("lambda_z_flag", None)
            if flag_var:
                return data.assign(**{flag_var: nca_lambda_z_flags(data, **args)})
            new = nca_parameters(data, **args)
            return new
        if name not in DERIVATIONS:
            raise SpecError(f"unknown derivation {name!r}", file=self.display, key=key,
                            hint=f"one of: {', '.join(sorted(DERIVATIONS))}, or a built-in step "
                                 "(filter, assign, case, map_values, stack, merge_supp, row_max, row_min, drop, nca)")
        # `SELF` names the records built so far (e.g. ADRS as dataset_add of a responder
        # parameter whose reference `dataset` is ADSL).
        first = data
        if isinstance(args.get("dataset"), str):
            first = data if args["dataset"] == "SELF" else self.frame(args["dataset"], f"{key}.args.dataset")
            del args["dataset"]
        for k in DATASET_ARGS:
            if isinstance(args.get(k), str):
                args[k] = data if args[k] == "SELF" else self.frame(args[k], f"{key}.args.{k}")
        if isinstance(args.get("source_datasets"), dict):
            args["source_datasets"] = {alias: self.frame(ds, f"{key}.args.source_datasets.{alias}")
                                       for alias, ds in args["source_datasets"].items()}
        fn = DERIVATIONS[name]
        try:
            if name == "derive_param_tte":
                adsl = args.pop("dataset_adsl")
                new = fn(adsl, **args)
            else:
                new = fn(first, **args)
        except TypeError as exc:
            raise SpecError(f"bad arguments for {name}: {exc}", file=self.display, key=key) from None
        if step.append or name == "derive_param_tte":
            # new records: appended to those built so far (derive_param_tte returns only its own)
            return pd.concat([data, new], ignore_index=True, sort=False) if len(data) else new
        return new

    def shape(self, data: pd.DataFrame) -> pd.DataFrame:
        if not self.spec.output and not self.spec.variables:     # an intermediate: every column
            return data.reset_index(drop=True)
        missing = [v.name for v in self.spec.variables if v.name not in data.columns]
        if missing:
            raise SpecError(f"variables {missing} were not derived by any step",
                            file=self.display, key="variables",
                            hint=f"columns available: {', '.join(c for c in data.columns if not c.startswith('__'))}")
        out = pd.DataFrame(index=data.index)
        for v in self.spec.variables:
            col = data[v.name]
            if v.type == "Char":
                out[v.name] = on_distinct(col, _char_values)
            elif pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
                out[v.name] = col
            else:
                out[v.name] = pd.to_numeric(col, errors="raise").astype("float64")
        order = self.spec.sort or self.spec.keys
        out = out.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
        check_parameters(self.spec, out, self.display)
        dup = out.duplicated(self.spec.keys, keep=False)
        if dup.any():
            rows = out[dup].head(10)
            raise SpecError([Problem(f"{self.spec.dataset} keys {'/'.join(self.spec.keys)} are not unique: "
                                     f"{' / '.join(map(str, r))}", file=self.display, key="keys")
                             for r in rows[self.spec.keys].itertuples(index=False)])
        return out


def check_parameters(spec: AdamSpec, data: pd.DataFrame, display: str) -> None:
    """The built PARAMCD/PARAM pairs are exactly the spec's ``parameters:`` (the define.xml
    MethodDefs and value-level metadata are written from that list).

    1. A BDS dataset (class BASIC DATA STRUCTURE) must list its parameters; a dataset with
       ``parameters:`` must have PARAMCD and PARAM.
    2. Every PARAMCD in the data is listed (extra -> error) and every listed PARAMCD occurs
       (missing -> error); each PARAMCD has exactly the listed PARAM text.
    3. Where a parameter lists ``avalc``, its non-blank AVALC values are among them; where it
       gives ``aval_unit`` and the data has AVALU, AVALU is that unit.
    """
    params = spec.parameters
    is_bds = spec.class_.upper() == "BASIC DATA STRUCTURE"
    if not params:
        if is_bds:
            raise SpecError(f"{spec.dataset} is a BDS dataset but its spec lists no parameters",
                            file=display, key="parameters",
                            hint="list every PARAMCD with its PARAM and method (adam.spec.Parameter)")
        return
    if "PARAMCD" not in data.columns or "PARAM" not in data.columns:
        raise SpecError(f"{spec.dataset}: parameters are listed but the dataset has no PARAMCD/PARAM",
                        file=display, key="parameters")
    problems: list[Problem] = []
    listed = {p.paramcd: p for p in params}
    pairs = data[["PARAMCD", "PARAM"]].drop_duplicates()
    built = pairs.groupby("PARAMCD", sort=True)["PARAM"].agg(lambda s: sorted(set(s)))
    for code in sorted(set(built.index) - set(listed)):
        problems.append(Problem(f"{spec.dataset}: PARAMCD {code} ({' / '.join(built[code])}) is in the data "
                                "but not listed in parameters", file=display, key="parameters"))
    for code in [p.paramcd for p in params if p.paramcd not in built.index]:
        problems.append(Problem(f"{spec.dataset}: parameter {code} is listed in parameters but no record has it",
                                file=display, key="parameters"))
    for code in sorted(set(built.index) & set(listed)):
        if built[code] != [listed[code].param]:
            problems.append(Problem(f"{spec.dataset}: PARAMCD {code} has PARAM {built[code]} in the data, "
                                    f"parameters says {listed[code].param!r}", file=display, key="parameters"))
    # the distinct (PARAMCD, AVALC) and (PARAMCD, AVALU) pairs, not a scan of the records per parameter
    avalc = (data[["PARAMCD", "AVALC"]].drop_duplicates() if "AVALC" in data.columns
             and any(p.avalc is not None for p in params) else None)
    avalu = (data[["PARAMCD", "AVALU"]].drop_duplicates() if "AVALU" in data.columns
             and any(p.aval_unit is not None for p in params) else None)
    for code, p in listed.items():
        if p.avalc is not None and avalc is not None:
            vals = set(avalc.loc[avalc["PARAMCD"] == code, "AVALC"].astype("str")) - {""}
            bad = sorted(vals - set(p.avalc))
            if bad:
                problems.append(Problem(f"{spec.dataset}: PARAMCD {code} has AVALC {bad} not among its listed "
                                        f"values {p.avalc}", file=display, key="parameters"))
        if p.aval_unit is not None and avalu is not None:
            units = sorted(set(avalu.loc[avalu["PARAMCD"] == code, "AVALU"].astype("str")))
            if units and units != [p.aval_unit]:
                problems.append(Problem(f"{spec.dataset}: PARAMCD {code} has AVALU {units}, parameters says "
                                        f"{p.aval_unit!r}", file=display, key="parameters"))
    if problems:
        raise SpecError(problems)


def merge_supp(data: pd.DataFrame, supp: pd.DataFrame, *, qnams: dict[str, str] | list[str],
               key: str) -> pd.DataFrame:
    """Bring SUPP-- qualifiers back onto their parent records (SDTMIG 3.4 §8.4; admiral combine_supp).

    1. keep SUPP-- records of the requested QNAMs;
    2. match on USUBJID and IDVAR/IDVARVAL: IDVARVAL is text, so it is compared with the
       parent's IDVAR value as a number when the parent variable is numeric (--SEQ);
       blank IDVAR (subject-level, SUPPDM) matches on USUBJID alone;
    3. one column per QNAM (or the new name given as {QNAM: NEWVAR}); QVAL stays text;
    4. more than one value for a parent record and QNAM is a data error (SDTMIG keys).
    """
    from cdisc.errors import DataError

    names = qnams if isinstance(qnams, dict) else {q: q for q in qnams}
    sub = supp[supp["QNAM"].isin(list(names))]
    out = data.copy(deep=False)
    for qnam, new in names.items():
        part = sub[sub["QNAM"] == qnam]
        idvars = sorted(set(part["IDVAR"].astype("str").str.strip()) - {""})
        if len(idvars) > 1:
            raise SpecError(f"SUPP QNAM {qnam} uses several IDVARs {idvars}", key=key)
        if idvars:
            idvar = idvars[0]
            if idvar not in out.columns:
                raise SpecError(f"SUPP IDVAR {idvar} is not a variable of the parent dataset", key=key)
            if pd.api.types.is_numeric_dtype(out[idvar]):
                right_key = pd.to_numeric(part["IDVARVAL"], errors="coerce")
            else:
                right_key = part["IDVARVAL"].astype("str").str.strip()
            right = pd.DataFrame({"USUBJID": part["USUBJID"].to_numpy(), "__k": right_key.to_numpy(),
                                  new: part["QVAL"].to_numpy()})
            left_key = out[idvar]
        else:
            right = pd.DataFrame({"USUBJID": part["USUBJID"].to_numpy(), "__k": 0, new: part["QVAL"].to_numpy()})
            left_key = pd.Series(0, index=out.index)
        dup = right.duplicated(["USUBJID", "__k"], keep=False)
        if dup.any():
            raise DataError(f"SUPP QNAM {qnam} has more than one value for a parent record: "
                            f"{right[dup].head(3).to_dict('records')}")
        merged = pd.DataFrame({"USUBJID": out["USUBJID"].to_numpy(), "__k": left_key.to_numpy()}).merge(
            right, on=["USUBJID", "__k"], how="left")
        out[new] = merged[new].to_numpy()
    return out


def _num_text(x: Any) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    if isinstance(x, (int, np.integer)) or (isinstance(x, float) and float(x).is_integer()):
        return str(int(x))
    return repr(float(x))


def _case(data: pd.DataFrame, *, key: str, new_var: str, cases: list[dict], default: Any = None) -> pd.DataFrame:
    """``new_var`` = the value of the first case whose ``when`` holds (SAS select/when)."""
    out = data.copy(deep=False)
    res = pd.Series(default, index=data.index, dtype=object)
    decided = pd.Series(False, index=data.index)
    for j, c in enumerate(cases):
        hit = evaluate_filter(c["when"], data, where=f"{key}.cases[{j}].when") & ~decided
        if "value_from" in c:
            vals = parse(c["value_from"], where=f"{key}.cases[{j}].value_from").evaluate(data)
            res = res.where(~hit, vals)
        else:
            res = res.where(~hit, c.get("value"))
        decided |= hit
    out[new_var] = _tidy(res)
    return out


def _map_values(data: pd.DataFrame, *, key: str, new_var: str, source_var: str, values: dict,
                default: Any = None, strict: bool = True) -> pd.DataFrame:
    """``new_var`` = ``values[source_var]``; with ``strict`` an unmapped non-missing value is an error."""
    if source_var not in data.columns:
        raise SpecError(f"column {source_var} does not exist", key=key)
    src = data[source_var]
    res = on_distinct(src, lambda u: u.map(values))
    unmapped = res.isna() & on_distinct(src, lambda u: u.notna() & u.astype("str").str.strip().ne(""))
    if strict and unmapped.any():
        raise SpecError(f"{source_var} values {sorted(src[unmapped].astype('str').unique())} have no entry in values",
                        key=key)
    out = data.copy(deep=False)
    out[new_var] = _tidy(res.where(~unmapped, default))
    return out


def _row_extreme(data: pd.DataFrame, *, key: str, how: str, new_var: str, vars: list[str]) -> pd.DataFrame:
    """``new_var`` = the latest (row_max) or earliest (row_min) non-missing value of ``vars``.

    Dates given as ISO 8601 text are compared as dates (partial dates are ignored: a
    last-known-alive date must be a known day); date columns as they are.
    """
    missing = [v for v in vars if v not in data.columns]
    if missing:
        raise SpecError(f"columns {missing} do not exist", key=key)
    cols = []
    for v in vars:
        c = data[v]
        if not pd.api.types.is_datetime64_any_dtype(c) and not pd.api.types.is_numeric_dtype(c):
            text = c.astype("str").where(c.notna(), "").str.slice(0, 10)
            c = pd.to_datetime(text.where(text.str.fullmatch(r"\d{4}-\d{2}-\d{2}")), errors="coerce")
        if pd.api.types.is_datetime64_any_dtype(c):
            c = c.astype("datetime64[s]")
        cols.append(c.rename(v))
    frame = pd.concat(cols, axis=1)
    out = data.copy(deep=False)
    out[new_var] = frame.max(axis=1) if how == "max" else frame.min(axis=1)
    return out


def _tidy(s: pd.Series) -> pd.Series:
    """Values that are all numbers (no bool) become float64; anything else stays as it is."""
    non_null = s.dropna()
    if len(non_null) and pd.api.types.infer_dtype(non_null, skipna=True) in ("integer", "floating",
                                                                             "mixed-integer-float"):
        return pd.to_numeric(s, errors="coerce").astype("float64")
    return s


def _char_values(col: pd.Series) -> pd.Series:
    """A Char variable's values as text: dates as YYYY-MM-DD, numbers as _num_text, missing as ""."""
    if pd.api.types.is_datetime64_any_dtype(col):
        col = col.dt.strftime("%Y-%m-%d")
    col = col.astype("object").where(col.notna(), "")
    return col.map(lambda x: x if isinstance(x, str) else _num_text(x)).astype("str")


def _locate(p: Problem, display: str, key: str) -> Problem:
    return Problem(p.message, file=p.file or display, row=p.row, column=p.column,
                   key=f"{key}" + (f" ({p.key})" if p.key else ""), hint=p.hint)


def run_adam(specs: dict[str, tuple[AdamSpec, str]], sdtm: dict[str, pd.DataFrame], *,
             on_built=None, executor=None) -> dict[str, pd.DataFrame]:
    """Build every ADaM dataset; returns {name: frame} with exactly the spec's variables.

    ``on_built(name, frame, seconds)`` hears of each dataset as it is built (progress).
    ``executor`` (default ``cdisc.executor.current()``, serial): a parallel one derives the
    datasets level by level of their dependency graph (ADSL, then what reads only SDTM and
    ADSL, ...), each dataset of a level a task given just the frames it reads
    (``cdisc.tasks.adam_task``). ``on_built`` (and the warnings a derivation gives, warned
    again just before it) still comes in build order, so progress and notes are those of the
    serial build; the first failing dataset in build order raises its error.
    """
    import time

    from cdisc.executor import current

    executor = executor or current()
    order = build_order(specs, set(sdtm))
    frames = dict(sdtm)
    built = {}
    if executor.parallel:
        return _run_adam_levels(specs, order, frames, on_built, executor)
    for name in order:
        spec, display = specs[name]
        t = time.perf_counter()
        built[name] = _Runner(spec, display, frames).run()
        frames[name] = built[name]
        if on_built is not None:
            on_built(name, built[name], time.perf_counter() - t)
    return built


def _run_adam_levels(specs, order: list[str], frames: dict[str, pd.DataFrame], on_built, executor):
    """``run_adam`` on a parallel executor: one ``executor.map`` per dependency level."""
    import warnings

    from cdisc.tasks import adam_task

    level: dict[str, int] = {}
    for name in order:                    # build order: a dataset's ADaM inputs come before it
        level[name] = 1 + max((level[d] for d in specs[name][0].dependencies() if d in level), default=-1)
    built: dict[str, pd.DataFrame] = {}
    done: dict[str, tuple] = {}
    told = 0
    for lv in range(max(level.values(), default=-1) + 1):
        names = [n for n in order if level[n] == lv]
        tasks = [(specs[n][0], specs[n][1], {d: frames[d] for d in sorted(specs[n][0].dependencies()) if d in frames})
                 for n in names]
        for name, outcome in zip(names, executor.map(adam_task, tasks)):
            done[name] = outcome
            if outcome.error is None:
                frames[name] = outcome.value[0]               # the next levels read it
        while told < len(order) and order[told] in done and done[order[told]].error is None:
            name = order[told]                                # told in build order, as far as derived
            frame, seconds, caught = done[name].value
            built[name] = frame
            for w in caught:
                warnings.warn(w, stacklevel=1)
            if on_built is not None:
                on_built(name, frame, seconds)
            told += 1
        failed = [n for n in names if done[n].error is not None]
        if failed:
            done[failed[0]].get()                             # the first in build order raises
    return built
