"""Great Expectations suites generated from dataset metadata, run on the build's frames.

The suite for a dataset is derived from its ``DatasetMeta`` and the CT subset (no hand
written expectations): required/expected variables, not-null for Req, codelists,
ISO 8601 for *DTC, key uniqueness, Char ASCII <= 200 bytes, --SEQ positive integers and
unique within USUBJID, column types. Which checks exist, their rule IDs and severities
come from the ``engine: ge`` entries of ``rules.yaml``.

Great Expectations is imported only inside ``run_suites`` (the import takes seconds);
building the plain expectation specs (``suite_specs``) does not need it.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cdisc.metadata import DatasetMeta

from .dates import blank
from .model import Rule
from .rules import RAW_COLUMNS, as_text

GE_SEVERITY = {"error": "critical", "warning": "warning", "notice": "info"}
NUM_TYPES = ["float64", "float32", "int64", "int32", "int16", "int8", "Float64", "Int64", "float", "int"]
CHAR_TYPES = ["str"]
PREPROCESSING = (
    "Before validation: Char columns are converted to object dtype and blank strings "
    "(empty or spaces only) to null; the row index is the 1-based record number. "
    "Custom expectations: import validation.expectations."
)


@dataclass(frozen=True)
class ExpSpec:
    """One expectation as plain data: GE class name, kwargs, and our rule/variable."""

    rule: str
    severity: str
    kind: str
    kwargs: dict
    variable: str | None = None


@dataclass
class SuiteRun:
    """Raw findings from all suites, expectations run per dataset, and timings (s)."""

    findings: pd.DataFrame
    checks: dict[str, int] = field(default_factory=dict)
    suites: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def seq_columns(name: str, df_columns) -> tuple[list[str], str | None]:
    """(every sequence-number column, the dataset's own one) of a dataset.

    SDTM: ``--SEQ`` named <2 letters>SEQ (own: <DOMAIN>SEQ); ADaM: ASEQ (own) and
    copied --SEQ.
    """
    cols = [c for c in df_columns if (len(c) == 5 and c.endswith("SEQ") and c[:2].isalpha()) or c == "ASEQ"]
    own = None
    if "ASEQ" in cols:
        own = "ASEQ"
    elif f"{name[:2]}SEQ" in cols and not name.startswith("SUPP"):
        own = f"{name[:2]}SEQ"
    return cols, own


def report_seq(name: str, df_columns) -> str | None:
    """The sequence column shown with a finding: the dataset's own, else a single copied --SEQ."""
    cols, own = seq_columns(name, df_columns)
    if own:
        return own
    return cols[0] if len(cols) == 1 else None


def suite_specs(name: str, df: pd.DataFrame, meta: DatasetMeta, ct: dict,
                ge_rules: dict[str, Rule]) -> list[ExpSpec]:
    """Derive the expectations of one dataset from its metadata.

    Args:
        name: dataset name.
        df: the dataset (only its columns and dtypes are used).
        meta: its metadata.
        ct: CT subset ``{codelist: {"extensible": bool, "terms": [{"value": ...}]}}``.
        ge_rules: the ``engine: ge`` rules keyed by check name; a check missing here, or
            whose scope does not cover the dataset, is not generated.

    Algorithm (one pass over the metadata variables, then dataset-level checks):
        1. Absent variable: Req -> ExpectColumnToExist (error), Exp -> same (warning).
           Absent variables get no other expectation (they would only raise).
        2. Present variable: Req -> not null; codelist in CT (Char) -> in set of the
           submission values (non-extensible: error rule, extensible: warning rule);
           Char *DTC -> ISO 8601; Char -> ASCII <= 200 bytes and str type; Num -> numeric
           type; sequence numbers -> positive integers.
        3. Keys from metadata all present -> compound uniqueness (one key: unique).
        4. The dataset's own --SEQ/ASEQ with USUBJID -> unique per USUBJID.
    """
    specs: list[ExpSpec] = []

    def add(check: str, kind: str, variable: str | None, **kwargs) -> None:
        rule = ge_rules.get(check)
        if rule is None or not rule.scope.covers(name, meta.standard, meta.class_):
            return
        kw = dict(kwargs)
        for k, v in rule.params.items():
            if k in ("allow_interval", "max_bytes"):
                kw[k] = v
        specs.append(ExpSpec(rule.id, rule.severity, kind, kw, variable))

    cols = set(df.columns)
    all_seq, own_seq = seq_columns(name, df.columns)
    for v in meta.variables:
        if v.name not in cols:
            if v.core == "Req":
                add("required_present", "ExpectColumnToExist", v.name, column=v.name)
            elif v.core == "Exp":
                add("expected_present", "ExpectColumnToExist", v.name, column=v.name)
            continue
        if v.core == "Req":
            add("required_not_null", "ExpectColumnValuesToNotBeNull", v.name, column=v.name)
        if v.type == "Char":
            if v.codelist and v.codelist in ct:
                cl = ct[v.codelist]
                values = sorted({str(t["value"]) for t in cl.get("terms", [])})
                check = "codelist_extensible" if cl.get("extensible") else "codelist_nonextensible"
                add(check, "ExpectColumnValuesToBeInSet", v.name, column=v.name, value_set=values)
            if v.name.endswith("DTC"):
                add("iso8601", "ExpectColumnValuesToBeIso8601", v.name, column=v.name)
            add("char_ascii_200", "ExpectColumnValuesToBeAsciiMax200Bytes", v.name, column=v.name)
            add("variable_type", "ExpectColumnValuesToBeInTypeList", v.name, column=v.name, type_list=CHAR_TYPES)
        else:
            add("variable_type", "ExpectColumnValuesToBeInTypeList", v.name, column=v.name, type_list=NUM_TYPES)
            if v.name in all_seq:
                add("seq_positive_integer", "ExpectColumnValuesToBePositiveIntegers", v.name, column=v.name)
            if v.range is not None and any(b is not None for b in v.range):
                add("numeric_range", "ExpectColumnValuesToBeBetween", v.name, column=v.name,
                    min_value=v.range[0], max_value=v.range[1])
    if "DOMAIN" in cols and meta.standard == "SDTM" and not name.startswith(("SUPP", "SQ", "RELREC")):
        code = name[:4] if name.startswith("AP") else name[:2]      # AP-- datasets: APxx
        add("domain_value", "ExpectColumnValuesToBeInSet", "DOMAIN", column="DOMAIN", value_set=[code])
    keys = [k for k in meta.keys]
    if keys and all(k in cols for k in keys):
        if len(keys) == 1:
            add("key_unique", "ExpectColumnValuesToBeUnique", keys[0], column=keys[0])
        else:
            add("key_unique", "ExpectCompoundColumnsToBeUnique", ",".join(keys), column_list=keys)
    if own_seq and "USUBJID" in cols and own_seq in meta.names:
        add("seq_unique", "ExpectCompoundColumnsToBeUnique", own_seq, column_list=["USUBJID", own_seq])
    return specs


def ge_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The frame GE validates: Char as object with blanks as None, index 1..n.

    Object dtype because GE's type expectations do not recognise pandas' ``str`` dtype;
    blanks as None so GE's null handling treats an XPT blank as missing.
    """
    out = {}
    for c in df.columns:
        s = df[c]
        if s.dtype.kind in "fiub":
            out[c] = s.to_numpy()
        else:
            o = s.astype(object)
            out[c] = o.where(~blank(s), None).to_numpy(dtype=object)
    g = pd.DataFrame(out, columns=list(df.columns))
    for c in g.columns:
        if df[c].dtype.kind not in "fiub":
            g[c] = g[c].astype(object)
    g.index = pd.RangeIndex(1, len(g) + 1)
    return g


def _import_gx():
    """Import GE quietly: analytics and progress bars off (import takes several seconds)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from . import expectations as custom

    return gx, gxe, ProgressBarsConfig, custom


def build_suite(gx, gxe, custom, name: str, meta: DatasetMeta, specs: list[ExpSpec]):
    """A GE ExpectationSuite from the specs (each expectation's meta names its rule)."""
    suite = gx.ExpectationSuite(
        name=name,
        meta={
            "dataset": name,
            "standard": meta.standard,
            "generated_by": "cdisc validation.suites from dataset metadata",
            "preprocessing": PREPROCESSING,
        },
    )
    for s in specs:
        cls = custom.CUSTOM.get(s.kind) or getattr(gxe, s.kind)
        suite.add_expectation(
            cls(**s.kwargs, severity=GE_SEVERITY[s.severity],
                meta={"rule": s.rule, "severity": s.severity, "variable": s.variable})
        )
    return suite


def suite_json(suite) -> str:
    """Deterministic JSON of a suite (sorted keys, indent 2, trailing newline)."""
    return json.dumps(suite.to_json_dict(), sort_keys=True, indent=2, default=str) + "\n"


def run_suites(
    datasets: dict[str, pd.DataFrame],
    metas: dict[str, DatasetMeta],
    ct: dict,
    rules: list[Rule],
    suites_dir: Path | None = None,
    engine: str = "native",
) -> SuiteRun:
    """Generate, save and run one suite per dataset that has metadata.

    Args:
        datasets: name -> frame (any index; GE sees a copy indexed 1..n).
        metas: name -> metadata; datasets without metadata get no suite.
        ct: CT subset.
        rules: the rule catalogue (only ``engine: ge`` entries are used).
        suites_dir: where to write ``<dataset>.json``; None = do not write.
        engine: "native" evaluates the expectations in ``validation.expect`` (fast, the
            default); "ge" runs them through Great Expectations (same findings, seconds
            per dataset).

    Returns:
        SuiteRun with raw findings (``RAW_COLUMNS`` + rule, severity), expectation
        counts per dataset, suite dicts and timings.

    Algorithm:
        1. Plain specs from metadata (``suite_specs``); nothing to run -> no GE import.
        2. One ephemeral GE context, a pandas data source, one whole-dataframe batch
           definition per dataset; validate with result_format COMPLETE.
        3. Every failed expectation becomes findings: one per unexpected row (from
           ``unexpected_index_list``, the 1-based record number), or one dataset-level
           finding when GE gives no rows (missing column, column type).
    """
    ge_rules = {r.check: r for r in rules if r.engine == "ge"}
    exc_rule = ge_rules.get("expectation_error")
    specs = {
        n: suite_specs(n, datasets[n], metas[n], ct, ge_rules)
        for n in sorted(datasets) if n in metas
    }
    run = SuiteRun(findings=pd.DataFrame(columns=RAW_COLUMNS + ["rule", "severity"]))
    run.checks = {n: len(s) for n, s in specs.items()}
    if not any(specs.values()):
        return run
    if engine == "native":
        return _run_native(datasets, metas, specs, run, suites_dir)
    if engine != "ge":
        raise ValueError(f"engine must be native or ge, not {engine!r}")

    t0 = time.perf_counter()
    gx, gxe, ProgressBarsConfig, custom = _import_gx()
    run.timings["ge_import"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("cdisc")
    run.timings["ge_context"] = time.perf_counter() - t0

    frames = []
    t_all = time.perf_counter()
    for name, sp in specs.items():
        if not sp:
            continue
        suite = build_suite(gx, gxe, custom, name, metas[name], sp)
        run.suites[name] = suite.to_json_dict()
        if suites_dir is not None:
            suites_dir.mkdir(parents=True, exist_ok=True)
            (suites_dir / f"{name}.json").write_text(suite_json(suite), encoding="utf-8")
        t0 = time.perf_counter()
        g = ge_frame(datasets[name])
        batch_def = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        batch = batch_def.get_batch(batch_parameters={"dataframe": g})
        result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
        run.timings[f"validate:{name}"] = time.perf_counter() - t0
        frames.append(_findings_from_result(name, datasets[name], g, result, exc_rule))
    run.timings["ge_validate_total"] = time.perf_counter() - t_all
    frames = [f for f in frames if len(f)]
    if frames:
        run.findings = pd.concat(frames, ignore_index=True)
    return run


def _ge_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("great_expectations")
    except PackageNotFoundError:  # pragma: no cover - GE is a dependency
        return "unknown"


def _run_native(datasets, metas, specs, run: SuiteRun, suites_dir: Path | None) -> SuiteRun:
    """Evaluate every suite with ``validation.expect`` and write the GE suite JSON."""
    from .expect import evaluate, suite_dict

    ge_version = _ge_version()
    frames = []
    t_all = time.perf_counter()
    for name, sp in specs.items():
        if not sp:
            continue
        suite = suite_dict(name, metas[name], sp, ge_version)
        run.suites[name] = suite
        if suites_dir is not None:
            suites_dir.mkdir(parents=True, exist_ok=True)
            (suites_dir / f"{name}.json").write_text(
                json.dumps(suite, sort_keys=True, indent=2, default=str) + "\n", encoding="utf-8")
        frames.append(evaluate(name, datasets[name], sp))
    run.timings["suites_native_total"] = time.perf_counter() - t_all
    frames = [f for f in frames if len(f)]
    if frames:
        run.findings = pd.concat(frames, ignore_index=True)
    return run


def _findings_from_result(name: str, df: pd.DataFrame, g: pd.DataFrame, result, exc_rule: Rule | None) -> pd.DataFrame:
    rows = []
    for r in result.results:
        cfg = r.expectation_config
        meta = cfg.meta or {}
        rule, severity, variable = meta.get("rule"), meta.get("severity"), meta.get("variable")
        info = r.exception_info or {}
        if info.get("raised_exception"):
            if exc_rule is not None:
                rows.append(pd.DataFrame([{
                    "dataset": name, "variable": variable, "row": None, "usubjid": None,
                    "value": str(info.get("exception_message") or "")[:200],
                    "detail": f"{cfg.type} for {rule}", "rule": exc_rule.id, "severity": exc_rule.severity,
                }]))
            continue
        if r.success:
            continue
        res = r.result or {}
        idx = res.get("unexpected_index_list") or []
        if idx and not isinstance(idx[0], dict):
            rows_idx = pd.Index(sorted(int(i) for i in idx))
            part = pd.DataFrame(index=rows_idx)
            part["dataset"] = name
            part["variable"] = variable
            part["row"] = rows_idx.to_numpy()
            cols = cfg.kwargs.get("column_list") or [cfg.kwargs.get("column")]
            # Values from the original frame (row n = positional n-1), not GE's copy.
            pos = rows_idx.to_numpy() - 1
            if len(cols) == 1:
                part["value"] = as_text(df[cols[0]].iloc[pos]).to_numpy()
            else:
                txt = None
                for c in cols:
                    piece = c + "=" + as_text(df[c].iloc[pos]).astype(str)
                    txt = piece if txt is None else txt + ", " + piece
                part["value"] = txt.to_numpy()
            part["usubjid"] = df["USUBJID"].iloc[pos].to_numpy() if "USUBJID" in df.columns else None
            part["detail"] = _detail(cfg)
            part["rule"], part["severity"] = rule, severity
            rows.append(part.reset_index(drop=True))
        else:
            observed = res.get("observed_value")
            rows.append(pd.DataFrame([{
                "dataset": name, "variable": variable, "row": None, "usubjid": None,
                "value": None if observed is None else str(observed),
                "detail": _detail(cfg, observed), "rule": rule, "severity": severity,
            }]))
    if not rows:
        return pd.DataFrame(columns=RAW_COLUMNS + ["rule", "severity"])
    return pd.concat(rows, ignore_index=True)


def _detail(cfg, observed=None) -> str | None:
    return _detail_for(cfg.type, cfg.kwargs, observed)


def _detail_for(t: str, kw: dict, observed=None) -> str | None:
    """The finding detail of a failed expectation of type ``t`` (both engines)."""
    if t == "expect_column_values_to_be_in_set":
        vs = kw.get("value_set") or []
        shown = ", ".join(map(str, vs[:12])) + (", ..." if len(vs) > 12 else "")
        return f"allowed: {shown}"
    if t == "expect_column_values_to_be_in_type_list":
        return f"column type is {observed}" if observed is not None else "value of another type"
    if t == "expect_column_to_exist":
        return "variable not in dataset"
    if t == "expect_compound_columns_to_be_unique":
        return "duplicate " + " + ".join(kw.get("column_list") or [])
    return None
