"""Which variables the standard defines for a dataset, as CORE computes it
(cdisc_rules_engine/utilities/sdtm_utilities.py): the IG domain's variables, merged into the
SDTM model's identifier + class + timing variables for the general-observation classes;
SUPP-- datasets use SUPPQUAL; a domain the IG does not define (custom) gets its class from
its topic variable (--TERM Events, --TRT Interventions, QNAM Relationship, --TESTCD Findings).
"""
from __future__ import annotations

import copy

from .library import Library, ct_class
from .model import DatasetInfo

FINDINGS, FINDINGS_ABOUT = "FINDINGS", "FINDINGS ABOUT"
EVENTS, INTERVENTIONS, RELATIONSHIP = "EVENTS", "INTERVENTIONS", "RELATIONSHIP"
DETECTABLE = {FINDINGS, INTERVENTIONS, EVENTS, FINDINGS_ABOUT}
GENERAL_OBSERVATIONS = "GENERAL OBSERVATIONS"


class MetadataError(Exception):
    """The library lacks metadata CORE needs here (CORE: an execution error)."""


def custom_class(columns, info: DatasetInfo, parent_class=None) -> str | None:
    """CORE handle_custom_domains: the class of a dataset from its variable names."""
    names = set(columns)

    def topic(var):
        if "DOMAIN" not in names and "RDOMAIN" not in names:
            return False
        if "DOMAIN" in names:
            return (info.domain or "").upper() + var in names
        return var in names

    if topic("TERM"):
        return EVENTS
    if topic("TRT"):
        return INTERVENTIONS
    if topic("QNAM"):
        return RELATIONSHIP
    if topic("TESTCD"):
        return FINDINGS_ABOUT if topic("OBJ") else FINDINGS
    if info.is_ap and parent_class is not None:
        return parent_class()
    return None


def dataset_class(library: Library, info: DatasetInfo, columns, parent_class=None) -> str | None:
    """CORE get_dataset_class: the library class of the (unsplit) domain, else detected."""
    if getattr(library, "available", True):
        name = library.domain_class(info.unsplit_name)
        if name:
            return ct_class(name)
    return custom_class(columns, info, parent_class)


def _norm(vars_: list[dict]) -> list[dict]:
    out = []
    for v in vars_:
        v = dict(v)
        if not v.get("core"):
            v.pop("core", None)
        out.append(v)
    return out


def _sorted(vars_):
    return sorted(vars_, key=lambda v: int(v.get("ordinal") or 0))


def _model_class(library: Library, class_name: str) -> list[dict]:
    try:
        return _norm(library.model_class_variables(class_name))
    except KeyError:
        raise MetadataError(f"Class metadata is not found in CDISC Library. class={class_name}")


def _allowed_class_variables(library: Library, class_name: str):
    """(identifiers, class variables, timing) of a class (CORE get_allowed_class_variables)."""
    class_vars = _sorted(_model_class(library, class_name))
    if class_name == FINDINGS_ABOUT:
        findings = _sorted(_model_class(library, FINDINGS))
        for i, v in enumerate(findings):
            if v["name"] == "--TEST":
                class_vars = findings[: i + 1] + class_vars + findings[i + 1:]
                break
    if class_name in DETECTABLE:
        gen = _model_class(library, GENERAL_OBSERVATIONS)
        ident = _sorted([v for v in gen if v.get("role") == "Identifier"])
        timing = _sorted([v for v in gen if v.get("role") == "Timing"])
        return ident, class_vars, timing
    return [], class_vars, []


def _replace(vars_, domain, out):
    for v in vars_:
        v = copy.deepcopy(v)
        v["name"] = v["name"].replace("--", domain or "")
        out.append(v)


def _default_core(vars_):
    for v in vars_:
        v.setdefault("core", "Perm")


def _domain_parts(info: DatasetInfo):
    domain = info.unsplit_name
    original = domain
    add_ap = False
    if domain and domain.upper().startswith(("SUPP", "SQ")) and len(domain) > 2:
        if domain.upper().startswith("SQ") and domain[2:].upper().startswith("AP"):
            add_ap = True
        domain = "SUPPQUAL"
    elif domain and domain.upper().startswith("AP"):
        domain = domain[2:]
        original = domain
        add_ap = True
    return domain, original, add_ap


_MEMO: dict = {}


def _memo(fn):
    """Results per (library, dataset, columns): the standard does not change during a run."""
    def wrapper(library, info, columns):
        key = (fn.__name__, id(library), info.name, info.unsplit_name, info.domain, tuple(columns))
        hit = _MEMO.get(key)
        if hit is None or hit[0] is not library:
            if len(_MEMO) > 10_000:
                _MEMO.clear()
            try:
                value = fn(library, info, columns)
            except MetadataError as exc:
                value = exc
            hit = (library, value)
            _MEMO[key] = hit
        if isinstance(hit[1], MetadataError):
            raise hit[1]
        return list(hit[1]) if hit[1] is not None else None  # callers never modify the dicts
    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@_memo
def variables_from_standard(library: Library, info: DatasetInfo, columns) -> list[dict]:
    """CORE get_variables_metadata_from_standard (IG over model), names with ``--`` replaced."""
    domain, original, add_ap = _domain_parts(info)
    custom = not library.is_standard_domain(domain)
    if not custom:
        class_name = ct_class(library.domain_class(domain))
        ig_vars = _norm(library.ig_variables(domain) or [])
    else:
        class_name = custom_class(columns, info)
        ig_vars = []
    if class_name is None:
        raise MetadataError(f"Class metadata is not found in CDISC Library. class={class_name}")
    _model_class(library, class_name)  # CORE looks the class up (and fails) even when unused
    model_vars: list[dict] = []
    ident = timing = []
    if custom or class_name in DETECTABLE:
        ident, class_vars, timing = _allowed_class_variables(library, class_name)
        if add_ap:
            ap = _model_class(library, "ASSOCIATED PERSONS")
            ident = _sorted([v for v in ident + ap if v.get("name") != "USUBJID"])
        for lst in (ident, class_vars, timing):
            _replace(lst, original, model_vars)
    if custom:
        result = model_vars
    else:
        ig_vars = _sorted(ig_vars)
        if class_name in DETECTABLE:
            result = list(model_vars)
            pos = {v["name"]: i for i, v in enumerate(result)}
            for ig in ig_vars:
                if "--" in ig["name"]:
                    ig = copy.deepcopy(ig)
                    ig["name"] = ig["name"].replace("--", original)
                if ig["name"] in pos:
                    result[pos[ig["name"]]] = ig
                else:
                    role = ig.get("role")
                    if role == "Identifier":
                        at = len(ident)
                    elif role == "Timing":
                        at = len(result)
                    else:
                        at = len(result) - len(timing)
                    result.insert(at, ig)
                    pos = {v["name"]: i for i, v in enumerate(result)}
        else:
            if add_ap:
                ap = _model_class(library, "ASSOCIATED PERSONS")
                merged = _sorted([v for v in ig_vars + ap if v.get("name") != "USUBJID"])
                result = []
                _replace(merged, original, result)
            else:
                result = ig_vars
    _default_core(result)
    return result


@_memo
def variables_from_standard_model(library: Library, info: DatasetInfo, columns) -> list[dict] | None:
    """CORE get_variables_metadata_from_standard_model: the model's variables for the class."""
    domain, original, add_ap = _domain_parts(info)
    custom = not library.is_standard_domain(domain)
    ig_vars = None
    if not custom:
        class_name = ct_class(library.domain_class(domain))
        ig_vars = library.ig_variables(domain)
    else:
        class_name = custom_class(columns, info)
    if class_name in DETECTABLE:
        ident, class_vars, timing = _allowed_class_variables(library, class_name)
        if add_ap:
            ap = _model_class(library, "ASSOCIATED PERSONS")
            ident = _sorted([v for v in ident + ap if v.get("name") != "USUBJID"])
        out: list[dict] = []
        for lst in (ident, class_vars, timing):
            _replace(lst, original, out)
            _default_core(out)
        return out
    if class_name is None:
        raise MetadataError("Class metadata is not found in CDISC Library. class=None")
    class_vars = _model_class(library, class_name)
    if class_vars:
        if add_ap:
            ap = _model_class(library, "ASSOCIATED PERSONS")
            class_vars = class_vars + [v for v in ap if v.get("name") != "USUBJID"]
        out = []
        _replace(_sorted(class_vars), original, out)
        _default_core(out)
        return out
    ds_vars = library.model_dataset_variables(domain)
    if ds_vars:
        ds_vars = _sorted(_norm(ds_vars))
        if add_ap:
            ap = _model_class(library, "ASSOCIATED PERSONS")
            ds_vars = [v for v in ds_vars + ap if v.get("name") != "USUBJID"]
        out = []
        _replace(ds_vars, original, out)
        out = _sorted(out)
        _default_core(out)
        return out
    if ig_vars:
        ig_vars = _sorted(_norm(ig_vars))
        if add_ap:
            ap = _model_class(library, "ASSOCIATED PERSONS")
            ig_vars = [v for v in ig_vars + ap if v.get("name") != "USUBJID"]
        out = []
        _replace(ig_vars, original, out)
        _default_core(out)
        return out
    return None
