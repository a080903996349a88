"""A study's YAML specs as one workbook and back, losslessly.

Sheets (a column header is the YAML key it holds, so the workbook reads like the specs):

- **Study**: file, key, value: every top-level key of ``study.yaml``, ``trial_design.yaml``,
  ``pp.yaml`` and ``validation.yaml`` but the tables below (structured values as YAML text);
- **Datasets**: one row per SDTM/ADaM spec: standard, dataset, label, class, structure,
  keys, sort, the SDTM sources and the ADaM source, ...;
- **one sheet per dataset** (AE, ADSL, ...): one row per variable: name, label, type,
  length, core, codelist, origin, and for SDTM the mapping ``rule`` with its ``rule
  value`` (``map`` / ``AESEV``, ``iso8601`` / ``{date: AESTDAT, time: AESTTIM}``), ``when``,
  ...; SDTM rows say in ``section`` whether they are variables, supplemental (SUPP--)
  qualifiers or helpers; ADaM rows carry source and method;
- **Steps**: the ADaM derivation steps in order (dataset, derivation, args as YAML, append, comment);
- **Parameters**: the value-level metadata of BDS datasets (PARAMCD, PARAM, method, AVALC values);
- **Codelists** and **Synonyms**: ``ct/study-ct.yaml`` (sponsor codelists and extensions of
  CDISC codelists, one row per term; raw spellings);
- **Arms**, **Visits**, **Elements** (study.yaml), **Trial Summary** (trial_design.yaml),
  **Waivers** (waivers.yaml).

Export checks its own round trip: the workbook is read back and every spec must load
into a model equal to the one it came from, else export fails naming the spec. YAML
comments are not carried (a cell has no place for them); every value is.
"""
from __future__ import annotations

import datetime as dt
import io
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from openpyxl import Workbook, load_workbook
from pydantic import BaseModel

from cdisc.errors import Problem, SpecError
from cdisc.specio import load_model, load_yaml, validate_model

from . import xlsxio
from .codec import _Dumper, decode, encode, to_yaml

STUDY_FILES = ("study.yaml", "trial_design.yaml", "pp.yaml", "validation.yaml")
CT_FILE = "ct/study-ct.yaml"
WAIVERS_FILE = "waivers.yaml"
# study.yaml / trial_design.yaml lists that get their own sheet: (file, key, sheet)
TABLES = (("study.yaml", "arms", "Arms"), ("study.yaml", "visits", "Visits"),
          ("study.yaml", "elements", "Elements"), ("trial_design.yaml", "trial_summary", "Trial Summary"))
PLAIN_MODELS = {CT_FILE: lambda: _schema_model("StudyCt"), "validation.yaml": lambda: _schema_model("ValidationParams")}
FIXED_SHEETS = ("Study", "Datasets", "Steps", "Parameters", "Codelists", "Synonyms", "Waivers") + \
    tuple(t[2] for t in TABLES)
SDTM_VAR_ORDER = ("name", "label", "type", "length", "format", "core", "codelist", "origin", "rule",
                  "rule value", "when", "case", "ascii", "source", "method", "comment", "significant_digits",
                  "range", "qorig", "qeval")
SDTM_ALWAYS = ("name", "label", "type", "length", "codelist", "origin", "rule", "rule value")
ADAM_ALWAYS = ("name", "label", "type", "length", "codelist", "origin", "source", "method")
SECTIONS = {"variables": "variable", "supplemental": "supplemental", "helpers": "helper"}


def _schema_model(name: str):
    from . import schemas

    return getattr(schemas, name)


def _models():
    from cdisc.adam.spec import AdamSpec
    from cdisc.sdtm.pp import PPSettings
    from cdisc.sdtm.spec import DomainSpec
    from cdisc.sdtm.trial_design import TrialDesign

    from cdisc.study import Study

    return {"study.yaml": Study, "trial_design.yaml": TrialDesign, "pp.yaml": PPSettings,
            "SDTM": DomainSpec, "ADaM": AdamSpec}


# ------------------------------------------------------------------------------ loading
@dataclass
class SpecSet:
    """A study's spec files as loaded: {relative path: model (or plain data for the files
    without a model: validation.yaml, waivers.yaml, ct/study-ct.yaml)}."""

    files: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)     # files in the folder not carried

    def comparable(self) -> dict[str, Any]:
        return {k: _comparable(k, v) for k, v in self.files.items()}


def _drop_empty(x):
    """Plain data with None values and empty containers left out (the loaders read a
    missing key, ``null`` and ``[]``/``{}`` alike)."""
    if isinstance(x, dict):
        out = {k: _drop_empty(v) for k, v in x.items()}
        return {k: v for k, v in out.items() if v is not None and v != [] and v != {}}
    if isinstance(x, list):
        return [_drop_empty(v) for v in x]
    return x


def _comparable(rel: str, obj):
    if rel == WAIVERS_FILE:
        from cdisc.sdtm.integrity import integrity_waivers
        from cdisc.validation.waivers import waivers_from

        return (waivers_from(obj, file=rel), integrity_waivers(obj if isinstance(obj, dict) else {}, file=rel))
    if isinstance(obj, BaseModel):
        return obj
    return _drop_empty(obj)


def load_specs(specs_dir: Path, *, tolerant: bool = False) -> SpecSet:
    """Every spec file of a study folder, validated (a bad spec is the usual SpecError).

    ``tolerant``: a file that does not load is left out instead (import --force compares
    the folder's files with the workbook's, and rewrites one that does not load).
    """
    specs_dir = Path(specs_dir)
    if not specs_dir.is_dir():
        raise SpecError("spec folder not found", file=str(specs_dir))
    models = _models()
    out = SpecSet()

    def add(rel: str, load) -> None:
        try:
            out.files[rel] = load()
        except SpecError:
            if not tolerant:
                raise

    for name in STUDY_FILES:
        p = specs_dir / name
        if p.is_file():
            add(name, (lambda p=p, name=name: load_model(models[name], p, display=f"specs/{name}")) if name in models
                else (lambda p=p, name=name: load_yaml(p, display=f"specs/{name}")))
    for sub, std in (("sdtm", "SDTM"), ("adam", "ADaM")):
        for p in sorted((specs_dir / sub).glob("*.yaml")):
            add(f"{sub}/{p.name}", lambda p=p, sub=sub, std=std: load_model(models[std], p, display=f"specs/{sub}/{p.name}"))
    for rel in (CT_FILE, WAIVERS_FILE):
        p = specs_dir / rel

        def plain(p=p, rel=rel):
            data = load_yaml(p, display=f"specs/{rel}")
            if rel == WAIVERS_FILE:
                _comparable(rel, data)        # validates the waivers
            return data

        if p.is_file():
            add(rel, plain)
    files = {p.relative_to(specs_dir).as_posix() for p in specs_dir.rglob("*") if p.is_file()}
    out.skipped = sorted(files - set(out.files))
    return out


# ------------------------------------------------------------------------------ helpers
def _field(model: type[BaseModel], key: str):
    for name, f in model.model_fields.items():
        if key in (name, f.alias):
            return f
    return None


def _ann(model: type[BaseModel] | None, key: str):
    f = _field(model, key) if model is not None else None
    return f.annotation if f is not None else Any


def _keys_in_order(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _dump(m: BaseModel) -> dict:
    return m.model_dump(by_alias=True, exclude_unset=True)


def _item_model(model: type[BaseModel], key: str) -> type[BaseModel]:
    """The model of the items of a list field (``arms: list[Arm]`` -> Arm)."""
    return typing.get_args(_ann(model, key))[0]


def _columns(model, records: list[dict], lead: tuple = (), always: tuple = (), order: tuple = ()) -> list[str]:
    present = {k for r in records for k in r}
    keys = list(order) + [k for k in _keys_in_order(model) if k not in order]
    return list(lead) + [k for k in keys if k in present or k in always]


def _choices(model: type[BaseModel] | None, header: list[str]) -> dict[str, list[str]]:
    """Columns whose field is a Literal of strings (type, core, origin, ...) -> its values."""
    from .codec import _strip_none

    out = {}
    for h in header:
        f = _field(model, h) if model is not None else None
        tp = _strip_none(f.annotation) if f is not None else None
        if tp is not None and typing.get_origin(tp) is typing.Literal and all(isinstance(a, str) for a in typing.get_args(tp)):
            out[h] = list(typing.get_args(tp))
    return out


def _records_sheet(wb: Workbook, title: str, header: list[str], rows: list[list], model=None,
                   choices: dict[str, list[str]] | None = None) -> None:
    try:
        _table(wb, title, header, rows, {**_choices(model, header), **(choices or {})})
    except ValueError as exc:           # a control character in a spec value
        raise SpecError(str(exc), hint=f"sheet {title}: remove the character from the spec") from None


def _table(wb: Workbook, title: str, header: list[str], rows: list[list], choices: dict) -> None:
    xlsxio.table(wb, title, header, rows, escape=False, choices=choices,
                 widths={h: (80 if title == "Study" else 40) for h in header
                         if h in ("sources", "args", "method", "comment", "rule value", "value", "reason", "start")},
                 wrap=tuple(h for h in header if h in ("sources", "args", "method", "comment", "rule value",
                                                       "value", "reason", "start")))


# ------------------------------------------------------------------------------- export
def _sdtm_rows(spec) -> tuple[list[str], list[list]]:
    from cdisc.sdtm.spec import RULE_KEYS, Variable

    recs = []
    for section in ("variables", "supplemental", "helpers"):
        for v in getattr(spec, section):
            d = _dump(v)
            if section == "supplemental":
                d = {("name" if k == "qnam" else "label" if k == "qlabel" else k): x for k, x in d.items()}
            rule = next(k for k in RULE_KEYS if k in d)
            d["rule value"] = encode(_ann(Variable, rule), d.pop(rule))
            d["rule"] = rule
            recs.append((SECTIONS[section], d))
    present = {k for _, d in recs for k in d}
    header = ["section"] + [k for k in SDTM_VAR_ORDER if k in present or k in SDTM_ALWAYS]
    extra = sorted(present - set(header))
    if extra:      # a field this layout does not know: refuse rather than drop it
        raise SpecError(f"variable fields {extra} have no column in the workbook layout",
                        file=f"specs/sdtm/{spec.domain.lower()}.yaml")
    from cdisc.sdtm.spec import Supplemental

    rows = []
    for section, d in recs:
        model = Supplemental if section == "supplemental" else Variable
        row = [section]
        for h in header[1:]:
            if h in ("rule", "rule value"):
                row.append(d.get(h))
            else:
                row.append(encode(_ann(model, "qnam" if (h == "name" and model is Supplemental) else
                                       "qlabel" if (h == "label" and model is Supplemental) else h), d.get(h)))
        rows.append(row)
    return header, rows


def _adam_rows(spec) -> tuple[list[str], list[list]]:
    from cdisc.adam.spec import AdamVariable

    recs = [_dump(v) for v in spec.variables]
    header = _columns(AdamVariable, recs, always=ADAM_ALWAYS,
                      order=("name", "label", "type", "length", "format", "core", "codelist", "origin"))
    return header, [[encode(_ann(AdamVariable, h), r.get(h)) for h in header] for r in recs]


def build_workbook(specs: SpecSet) -> Workbook:
    models = _models()
    wb = Workbook(write_only=True)
    study_rows = []
    tables: dict[str, tuple[str, list[dict]]] = {}
    for name in STUDY_FILES:
        if name not in specs.files:
            continue
        obj = specs.files[name]
        model = models.get(name)
        data = _dump(obj) if isinstance(obj, BaseModel) else (obj or {})
        if not isinstance(data, dict):
            raise SpecError("expected a mapping of keys", file=f"specs/{name}")
        for key, value in data.items():
            tab = next((t for t in TABLES if t[0] == name and t[1] == key), None)
            if tab is not None:
                tables[tab[2]] = (key, value)
                continue
            study_rows.append([name, key, encode(_ann(model, key), value)])
    _records_sheet(wb, "Study", ["file", "key", "value"], study_rows)

    datasets = {rel: m for rel, m in specs.files.items() if rel.startswith(("sdtm/", "adam/"))}
    ds_rows, ds_recs = [], []
    for rel, spec in datasets.items():
        std = "SDTM" if rel.startswith("sdtm/") else "ADaM"
        d = _dump(spec)
        d.pop("domain" if std == "SDTM" else "dataset", None)
        for k in ("variables", "supplemental", "helpers", "steps", "parameters"):
            d.pop(k, None)
        ds_recs.append((std, spec, d))
    ordered: list[str] = []
    for std in ("SDTM", "ADaM"):
        for k in _keys_in_order(models[std]):
            if k not in ordered and k not in ("domain", "dataset", "variables", "supplemental", "helpers",
                                              "steps", "parameters"):
                ordered.append(k)
    present = {k for _, _, d in ds_recs for k in d}
    ds_header = ["standard", "dataset"] + [k for k in ordered if k in present or k in ("label", "class", "structure", "keys")]
    for std, spec, d in ds_recs:
        name = spec.domain if std == "SDTM" else spec.dataset
        ds_rows.append([std, name] + [encode(_ann(models[std], h), d.get(h)) for h in ds_header[2:]])
    _records_sheet(wb, "Datasets", ds_header, ds_rows, choices={"standard": ["SDTM", "ADaM"]})

    fixed = {s.upper() for s in FIXED_SHEETS}
    names = [(spec.domain if rel.startswith("sdtm/") else spec.dataset).upper() for rel, spec in datasets.items()]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpecError(f"datasets {', '.join(twice)} are specified twice (SDTM and ADaM); a workbook has one "
                        "sheet per dataset name", file="specs/sdtm, specs/adam")
    steps_rows, param_rows = [], []
    from cdisc.adam.spec import Parameter, Step

    for rel, spec in datasets.items():
        std = "SDTM" if rel.startswith("sdtm/") else "ADaM"
        name = spec.domain if std == "SDTM" else spec.dataset
        if name.upper() in fixed:
            raise SpecError(f"dataset {name} has the name of a workbook sheet ({', '.join(FIXED_SHEETS)})",
                            file=f"specs/{rel}")
        header, rows = _sdtm_rows(spec) if std == "SDTM" else _adam_rows(spec)
        if std == "SDTM" or spec.variables:
            from cdisc.adam.spec import AdamVariable
            from cdisc.sdtm.spec import RULE_KEYS, Variable

            if std == "SDTM":
                _records_sheet(wb, name, header, rows, Variable,
                               {"section": list(SECTIONS.values()), "rule": list(RULE_KEYS)})
            else:
                _records_sheet(wb, name, header, rows, AdamVariable)
        if std == "ADaM":
            for st in spec.steps:
                d = _dump(st)
                steps_rows.append([name] + [encode(_ann(Step, k), d.get(k)) for k in _keys_in_order(Step)])
            for p in spec.parameters:
                d = _dump(p)
                param_rows.append([name] + [encode(_ann(Parameter, k), d.get(k)) for k in _keys_in_order(Parameter)])
    if any(rel.startswith("adam/") for rel in datasets):
        _records_sheet(wb, "Steps", ["dataset"] + _keys_in_order(Step), steps_rows, Step)
        _records_sheet(wb, "Parameters", ["dataset"] + _keys_in_order(Parameter), param_rows, Parameter)

    if CT_FILE in specs.files:
        _ct_sheets(wb, specs.files[CT_FILE] or {})

    for name, key, title in TABLES:
        if title in tables:
            item = _item_model(models[name], key)
            recs = [_dump(item.model_validate(r)) if not isinstance(r, BaseModel) else _dump(r)
                    for r in getattr(specs.files[name], key)]
            header = _columns(item, recs)
            _records_sheet(wb, title, header, [[encode(_ann(item, h), r.get(h)) for h in header] for r in recs], item)

    if WAIVERS_FILE in specs.files:
        from cdisc.sdtm.integrity import IntegrityWaiver
        from cdisc.validation.waivers import Waiver

        data = specs.files[WAIVERS_FILE]
        lists = {"waivers": data if isinstance(data, list) else (data or {}).get("waivers") or [],
                 "integrity": (data or {}).get("integrity") or [] if isinstance(data, dict) else []}
        header = ["section"] + _keys_in_order(Waiver)
        rows = []
        for section, model in (("waivers", Waiver), ("integrity", IntegrityWaiver)):
            for w in lists[section]:
                rows.append([section] + [encode(_ann(model, k), w.get(k)) for k in header[1:]])
        _records_sheet(wb, "Waivers", header, rows, choices={"section": ["waivers", "integrity"]})
    return wb


CT_HEADER = ["section", "codelist", "name", "codelist code", "extensible", "value", "code", "decode", "synonyms"]


def _ct_sheets(wb: Workbook, data: dict) -> None:
    rows = []
    for cl, body in (data.get("codelists") or {}).items():
        body = body or {}
        extra = set(body) - {"name", "code", "extensible", "terms"}
        if extra:
            raise SpecError(f"codelist keys {sorted(extra)} have no column in the workbook", file=f"specs/{CT_FILE}",
                            key=f"codelists.{cl}")
        head = [body.get("name"), body.get("code"), body.get("extensible")]
        terms = body.get("terms") or []
        for t in terms or [{}]:
            rows.append(["codelist", cl] + head + _term(t, f"codelists.{cl}"))
    for cl, terms in (data.get("extensions") or {}).items():
        for t in terms or []:
            rows.append(["extension", cl, None, None, None] + _term(t, f"extensions.{cl}"))
    _records_sheet(wb, "Codelists", CT_HEADER, rows, choices={"section": ["codelist", "extension"]})
    syn = [[cl, spelling, value] for cl, m in (data.get("synonyms") or {}).items() for spelling, value in (m or {}).items()]
    _records_sheet(wb, "Synonyms", ["codelist", "spelling", "value"], syn)


def _term(t: dict, key: str) -> list:
    extra = set(t) - {"value", "code", "decode", "synonyms"}
    if extra:
        raise SpecError(f"term keys {sorted(extra)} have no column in the workbook", file=f"specs/{CT_FILE}", key=key)
    syn = t.get("synonyms")
    return [t.get("value"), t.get("code"), t.get("decode"), None if syn is None else to_yaml(syn)]


# ------------------------------------------------------------------------------- import
def _cell_rows(wb, title: str) -> tuple[list[str], list[dict]]:
    if title not in wb.sheetnames:
        return [], []
    return xlsxio.read_table(wb[title])


def _where(src: str, sheet: str, row: int, col: str) -> str:
    return f"{src} sheet {sheet!r} row {row} column {col!r}"


def _rec(model, row: dict, header: list[str], *, src: str, sheet: str, skip: tuple = ()) -> dict:
    out = {}
    for h in header:
        if not h or h in skip or h == "__row":
            continue
        if _field(model, h) is None:
            if row.get(h) is not None:
                raise SpecError(f"column {h!r} is not a key of {model.__name__}", file=_where(src, sheet, row["__row"], h))
            continue
        v = decode(_ann(model, h), row.get(h), where=_where(src, sheet, row["__row"], h))
        if v is not None:
            out[h] = v
    return out


def read_workbook(wb, *, src: str) -> dict[str, Any]:
    """{relative path: plain data} of every spec file a workbook holds (not yet validated)."""
    from cdisc.adam.spec import AdamVariable, Parameter, Step
    from cdisc.sdtm.integrity import IntegrityWaiver
    from cdisc.sdtm.spec import Supplemental, Variable
    from cdisc.validation.waivers import Waiver

    models = _models()
    files: dict[str, Any] = {}
    header, rows = _cell_rows(wb, "Study")
    for r in rows:
        name, key = r.get("file"), r.get("key")
        if name not in STUDY_FILES:
            raise SpecError(f"file must be one of {', '.join(STUDY_FILES)}, not {name!r}",
                            file=_where(src, "Study", r["__row"], "file"))
        v = decode(_ann(models.get(name), key), r.get("value"), where=_where(src, "Study", r["__row"], "value"))
        files.setdefault(name, {})[key] = v
    for name, key, title in TABLES:
        header, rows = _cell_rows(wb, title)
        if title in wb.sheetnames:
            item = _item_model(models[name], key)
            files.setdefault(name, {})[key] = [_rec(item, r, header, src=src, sheet=title) for r in rows]

    header, rows = _cell_rows(wb, "Datasets")
    steps_h, steps = _cell_rows(wb, "Steps")
    params_h, params = _cell_rows(wb, "Parameters")
    for r in rows:
        std, name = r.get("standard"), r.get("dataset")
        if std not in ("SDTM", "ADaM") or not isinstance(name, str) or not name.strip():
            raise SpecError("each row needs standard (SDTM or ADaM) and dataset",
                            file=_where(src, "Datasets", r["__row"], "standard"))
        model = models[std]
        d = {("domain" if std == "SDTM" else "dataset"): name}
        d.update(_rec(model, r, header, src=src, sheet="Datasets", skip=("standard", "dataset")))
        vh, vrows = _cell_rows(wb, name)
        if std == "SDTM":
            for sec in SECTIONS:
                d.setdefault(sec, [])
            for v in vrows:
                section = v.get("section")
                sec = next((k for k, s in SECTIONS.items() if s == section), None)
                if sec is None:
                    raise SpecError(f"section must be one of {', '.join(SECTIONS.values())}",
                                    file=_where(src, name, v["__row"], "section"))
                vm = Supplemental if sec == "supplemental" else Variable
                rec = _rec(vm, v, vh, src=src, sheet=name, skip=("section", "rule", "rule value"))
                rule = v.get("rule")
                if rule is not None:
                    if _field(Variable, rule) is None:
                        raise SpecError(f"unknown rule {rule!r}", file=_where(src, name, v["__row"], "rule"))
                    rec[rule] = decode(_ann(Variable, rule), v.get("rule value"),
                                       where=_where(src, name, v["__row"], "rule value"))
                if vm is Supplemental:
                    rec = {("qnam" if k == "name" else "qlabel" if k == "label" else k): x for k, x in rec.items()}
                d[sec].append(rec)
            if not d["helpers"]:
                d.pop("helpers")
            if not d["supplemental"]:
                d.pop("supplemental")
        else:
            if vrows:
                d["variables"] = [_rec(AdamVariable, v, vh, src=src, sheet=name) for v in vrows]
            st = [_rec(Step, s, steps_h, src=src, sheet="Steps", skip=("dataset",)) for s in steps if s.get("dataset") == name]
            if st:
                d["steps"] = st
            ps = [_rec(Parameter, p, params_h, src=src, sheet="Parameters", skip=("dataset",))
                  for p in params if p.get("dataset") == name]
            if ps:
                d["parameters"] = ps
        files[f"{'sdtm' if std == 'SDTM' else 'adam'}/{name.lower()}.yaml"] = d

    if "Codelists" in wb.sheetnames or "Synonyms" in wb.sheetnames:
        files[CT_FILE] = _read_ct(wb, src)
    if "Waivers" in wb.sheetnames:
        header, rows = _cell_rows(wb, "Waivers")
        data: dict[str, list] = {"waivers": []}
        for r in rows:
            sec = r.get("section")
            if sec not in ("waivers", "integrity"):
                raise SpecError("section must be waivers or integrity", file=_where(src, "Waivers", r["__row"], "section"))
            model = Waiver if sec == "waivers" else IntegrityWaiver
            data.setdefault(sec, []).append(_rec(model, r, header, src=src, sheet="Waivers", skip=("section",)))
        files[WAIVERS_FILE] = data
    return files


def _read_ct(wb, src: str) -> dict:
    header, rows = _cell_rows(wb, "Codelists")
    codelists: dict[str, dict] = {}
    extensions: dict[str, list] = {}
    for r in rows:
        where = _where(src, "Codelists", r["__row"], "synonyms")
        term = {"value": r.get("value"), "code": r.get("code"), "decode": r.get("decode"),
                "synonyms": decode(list, r.get("synonyms"), where=where)}
        term = {k: v for k, v in term.items() if v is not None}
        cl = r.get("codelist")
        if not isinstance(cl, str) or not cl.strip():
            raise SpecError("each row needs its codelist", file=_where(src, "Codelists", r["__row"], "codelist"))
        if r.get("section") == "codelist":
            body = codelists.get(cl)
            if body is None:
                body = {k: v for k, v in (("name", r.get("name")), ("code", r.get("codelist code")),
                                          ("extensible", r.get("extensible"))) if v is not None}
                body["terms"] = []
                codelists[cl] = body
            if term:
                body["terms"].append(term)
        elif r.get("section") == "extension":
            extensions.setdefault(cl, []).append(term)
        else:
            raise SpecError("section must be codelist or extension", file=_where(src, "Codelists", r["__row"], "section"))
    synonyms: dict[str, dict] = {}
    _, srows = _cell_rows(wb, "Synonyms")
    for r in srows:
        synonyms.setdefault(r.get("codelist"), {})[r.get("spelling")] = r.get("value")
    out = {}
    if codelists:
        out["codelists"] = codelists
    if extensions:
        out["extensions"] = extensions
    if synonyms:
        out["synonyms"] = synonyms
    return out


def validate_files(files: dict[str, Any], *, src: str) -> SpecSet:
    """Plain data of each file -> the models (or plain data) ``load_specs`` gives."""
    models = _models()
    out = SpecSet()
    problems: list[Problem] = []
    for rel, data in files.items():
        model = models.get(rel) or (models["SDTM"] if rel.startswith("sdtm/") else
                                    models["ADaM"] if rel.startswith("adam/") else None)
        try:
            out.files[rel] = validate_model(model, data, file=f"{src} ({rel})") if model is not None else data
            if rel == WAIVERS_FILE:
                _comparable(rel, data)
            elif rel in PLAIN_MODELS:            # read as plain data; the schema model checks its shape
                validate_model(PLAIN_MODELS[rel](), data or {}, file=f"{src} ({rel})")
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)
    return out


# ------------------------------------------------------------------------- YAML writing
def _flow(v) -> str:
    return to_yaml(v) if not isinstance(v, str) else yaml.dump(v, Dumper=_Dumper, width=10_000).rstrip("\n").removesuffix("\n...")


def render_yaml(data: dict, header: str = "") -> str:
    """A spec file as YAML text laid out like the hand-written ones: scalars and short lists on
    one line, list items (variables, steps) one per line in flow style when short."""
    out = [header] if header else []
    for key, value in data.items():
        k = yaml.dump(key, Dumper=_Dumper).rstrip("\n").removesuffix("\n...")
        flow = to_yaml(value) if isinstance(value, (list, dict)) else _flow(value)
        if not isinstance(value, (list, dict)) or (len(flow) <= 100 and "\n" not in flow):
            out.append(f"{k}: {flow}")
            continue
        out.append(f"{k}:")
        if isinstance(value, list):
            for item in value:
                one = yaml.dump(item, Dumper=_Dumper, default_flow_style=True, sort_keys=False, allow_unicode=True,
                                width=10_000).rstrip("\n").removesuffix("\n...")
                if len(one) <= 140 or not isinstance(item, (dict, list)):
                    out.append(f"  - {one}")
                else:
                    block = yaml.dump(item, Dumper=_Dumper, default_flow_style=None, sort_keys=False,
                                      allow_unicode=True, width=110).rstrip("\n")
                    lines = block.splitlines()
                    out.append("  - " + lines[0])
                    out += ["    " + ln for ln in lines[1:]]
        else:
            block = yaml.dump(value, Dumper=_Dumper, default_flow_style=None, sort_keys=False, allow_unicode=True,
                              width=110).rstrip("\n")
            out += ["  " + ln for ln in block.splitlines()]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------ commands
def _cut(specs: SpecSet) -> dt.datetime | None:
    study = specs.files.get("study.yaml")
    return study.created if study is not None else None


def _diff(a: SpecSet, b: SpecSet) -> list[str]:
    ca, cb = a.comparable(), b.comparable()
    return sorted(k for k in set(ca) | set(cb) if ca.get(k) != cb.get(k))


def export_specs(specs_dir: Path, xlsx: Path) -> dict:
    """Write the workbook of a study's specs, after checking it reads back to equal models."""
    specs = load_specs(specs_dir)
    wb = build_workbook(specs)
    data = xlsxio.to_bytes(wb, _cut(specs))
    back = validate_files(read_workbook(load_workbook(io.BytesIO(data)), src=str(xlsx)), src=str(xlsx))
    bad = _diff(specs, back)
    if bad:
        raise SpecError(f"the workbook would not give back these specs unchanged: {', '.join(bad)}",
                        file=str(specs_dir), hint="this is a bug in cdisc spec export; please report it")
    size = xlsxio.write(xlsx, data)
    return {"files": list(specs.files), "skipped": specs.skipped, "sheets": len(wb.sheetnames), "bytes": size}


def import_specs(xlsx: Path, specs_dir: Path, *, force: bool = False) -> dict:
    """Write the spec files a workbook holds into ``specs_dir`` (a new or empty folder, or any
    with ``force``).

    Steps: 1. every spec of the workbook is validated (nothing is written when one fails);
    2. each is rendered as YAML, which must load back to the same model; 3. with ``force``,
    a file already in the folder that loads to the same model is left as it is (its
    comments and layout stay: importing an edited workbook over the study rewrites only the
    specs that changed, and a rewritten file keeps its schema line); 4. files are written
    only inside ``specs_dir``. Spec files of the folder the workbook does not hold are kept
    and listed (``kept``).
    """
    from cdisc.specio import inside, parse_yaml

    specs_dir = Path(specs_dir)
    if specs_dir.exists() and not specs_dir.is_dir():
        raise SpecError("not a folder", file=str(specs_dir))
    if specs_dir.is_dir() and any(specs_dir.iterdir()) and not force:
        raise SpecError("the spec folder exists and is not empty; nothing written", file=str(specs_dir),
                        hint="import into a new folder, or give --force to overwrite the spec files in it")
    try:
        wb = load_workbook(xlsx, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise SpecError(f"cannot read the workbook: {exc}", file=str(xlsx)) from None
    specs = validate_files(read_workbook(wb, src=str(xlsx)), src=str(xlsx))
    existing = load_specs(specs_dir, tolerant=True) if specs_dir.is_dir() and any(specs_dir.iterdir()) else SpecSet()
    old, new = existing.comparable(), specs.comparable()
    texts = {}
    for rel, obj in specs.files.items():
        if rel in old and old[rel] == new[rel]:
            continue
        texts[rel] = render_yaml(_plain(obj, rel), header=_header(specs_dir / rel))
    # the text written must load back to the same models (checked before anything is written)
    back = validate_files({rel: parse_yaml(t, file=rel) for rel, t in texts.items()}, src="written YAML")
    bad = sorted(rel for rel in texts if back.comparable()[rel] != new[rel])
    if bad:
        raise SpecError(f"the YAML written would not load back unchanged: {', '.join(bad)}", file=str(xlsx),
                        hint="this is a bug in cdisc spec import; please report it")
    paths = {rel: inside(specs_dir, rel, file=str(xlsx), key=rel) for rel in texts}
    specs_dir.mkdir(parents=True, exist_ok=True)
    for rel, text in texts.items():
        paths[rel].parent.mkdir(parents=True, exist_ok=True)
        tmp = paths[rel].with_name(paths[rel].name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(paths[rel])
    return {"files": list(specs.files), "written": list(texts),
            "unchanged": [rel for rel in specs.files if rel not in texts],
            "kept": sorted(rel for rel in existing.files if rel not in specs.files)}


def _plain(obj, rel: str) -> dict:
    if isinstance(obj, BaseModel):
        return _dump(obj)
    return obj or {}


def _header(path: Path) -> str:
    """The schema line of the file being replaced, if it had one (the YAML itself has none)."""
    from .schemas import MODELINE

    try:
        first = Path(path).read_text(encoding="utf-8").split("\n", 1)[0]
    except OSError:
        return ""
    return first if first.startswith(MODELINE) else ""
