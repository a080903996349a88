"""SDTM variable roles and method texts generated from SDTM spec rules (for define.xml).

Split out of :mod:`cdisc.define.from_build`: the role of a variable by its name pattern
(SDTM v2.0) and the MethodDef text of a Derived variable whose spec has no ``method:``.
"""
from __future__ import annotations

from cdisc.metadata import DatasetMeta, VariableMeta


# --------------------------------------------------------------------------------------
# SDTM roles (SDTM v2.0 variable roles by name pattern)
# --------------------------------------------------------------------------------------
_ROLE_EXACT = {
    "STUDYID": "Identifier", "DOMAIN": "Identifier", "USUBJID": "Identifier",
    "POOLID": "Identifier", "SPDEVID": "Identifier", "RDOMAIN": "Identifier",
    "IDVAR": "Identifier", "IDVARVAL": "Identifier", "RELID": "Identifier",
    "QNAM": "Topic", "QLABEL": "Synonym Qualifier", "QVAL": "Result Qualifier",
    "QORIG": "Record Qualifier", "QEVAL": "Record Qualifier",
    "VISITNUM": "Timing", "VISIT": "Timing", "VISITDY": "Timing", "TAETORD": "Timing",
    "EPOCH": "Timing", "SUBJID": "Topic", "ARM": "Synonym Qualifier",
    "ACTARM": "Synonym Qualifier", "ELEMENT": "Synonym Qualifier", "AGEU": "Variable Qualifier",
    "TSPARMCD": "Topic", "TSPARM": "Synonym Qualifier", "TSVAL": "Result Qualifier",
    "IETESTCD": "Topic", "IETEST": "Synonym Qualifier", "IECAT": "Grouping Qualifier",
}
_ROLE_SUFFIX = [
    (("SEQ", "GRPID", "REFID", "SPID", "LNKID", "LNKGRP"), "Identifier"),
    (("DTC", "STDTC", "ENDTC", "DY", "STDY", "ENDY", "DUR", "TPT", "TPTNUM", "ELTM",
      "TPTREF", "RFTDTC", "STRF", "ENRF", "EVLINT", "EVINTX", "STRTPT", "STTPT", "ENRTPT",
      "ENTPT", "STINT", "ENINT", "NOMDY", "NOMLBL"), "Timing"),
    (("CAT", "SCAT"), "Grouping Qualifier"),
    (("DECOD", "TEST", "MODIFY"), "Synonym Qualifier"),
    (("ORRES", "STRESC", "STRESN"), "Result Qualifier"),
    (("ORRESU", "STRESU", "ORNRLO", "ORNRHI", "STNRLO", "STNRHI", "STNRC", "DOSU", "LLT",
      "LLTCD", "PTCD", "HLT", "HLTCD", "HLGT", "HLGTCD", "BDSYCD", "SOC", "SOCCD", "DOSTXT"),
     "Variable Qualifier"),
]
_TOPIC_SUFFIX = {"EVENTS": "TERM", "INTERVENTIONS": "TRT", "FINDINGS": "TESTCD",
                 "FINDINGS ABOUT": "TESTCD"}


def sdtm_role(meta: DatasetMeta, var: str) -> str:
    """The SDTM v2.0 role of ``var`` in ``meta`` (SDTMIG 3.4 domain tables, column Role).

    Steps: 1. names shared by all domains (STUDYID, USUBJID, VISITNUM, EPOCH, QNAM, ...);
    2. the topic variable of the class (--TERM for Events, --TRT for Interventions,
    --TESTCD for Findings; ETCD in SE/TE/TA); 3. the --suffix after the two-letter domain
    prefix (--SEQ Identifier, --DTC/--DY Timing, --CAT Grouping, --DECOD/--TEST Synonym,
    --ORRES/--STRESC/--STRESN Result, units/ranges/dictionary codes Variable Qualifier);
    4. anything else is a Record Qualifier.
    """
    if var in _ROLE_EXACT:
        return _ROLE_EXACT[var]
    cls = (meta.class_ or "").upper()
    if var == "ETCD":
        return "Topic"
    prefix = meta.name[:2]
    suffix = var[len(prefix):] if var.startswith(prefix) else None
    if suffix is not None and _TOPIC_SUFFIX.get(cls) == suffix:
        return "Topic"
    if suffix is not None:
        for suffixes, role in _ROLE_SUFFIX:
            if suffix in suffixes:
                return role
    return "Record Qualifier"


# --------------------------------------------------------------------------------------
# Methods for Derived variables whose spec has no method text
# --------------------------------------------------------------------------------------
_SE_METHODS = {
    "STUDYID": "Study identifier from specs/study.yaml (studyid).",
    "DOMAIN": "Set to SE.",
    "USUBJID": "DM.USUBJID of the subject.",
    "SESEQ": "Sequence number of the element within USUBJID, in order of SESTDTC.",
    "ETCD": "Code of each trial element (specs/study.yaml elements) the subject entered.",
    "ELEMENT": "Description of the element (TE.ELEMENT).",
    "TAETORD": "Planned order of the element within the subject's arm (TA.TAETORD).",
    "EPOCH": "Epoch of the element (TA.EPOCH).",
    "SESTDTC": "Start of the element: the subject's date named by the element's start rule "
               "in specs/study.yaml (e.g. RFICDTC for screening, RFXSTDTC for the infusion), "
               "shifted by start_offset_days.",
    "SEENDTC": "End of the element: start of the subject's next element; for the last "
               "element the subject's end of participation (DM.RFPENDTC).",
}


def _rule_method(var) -> str | None:
    """Method text from an SDTM spec variable's mapping rule (sdtm/spec.py rules)."""
    rule = var.rule
    arg = getattr(var, rule)
    if rule == "template":
        text = f"Built from the template {arg} (raw fields and variables in braces)."
    elif rule == "sequence":
        text = (f"Sequence number of the record within USUBJID, records ordered by "
                f"{', '.join(arg)}.")
    elif rule == "study_day":
        text = (f"Study day of {arg} relative to DM.RFSTDTC: date - RFSTDTC + 1 on or after "
                f"RFSTDTC, date - RFSTDTC before it; no day 0 (SDTMIG 3.4 §4.4.4).")
    elif rule == "epoch":
        text = f"EPOCH of the subject's SE element during which {arg} falls."
    elif rule == "visit":
        part = arg if isinstance(arg, str) else arg.part
        text = (f"{part.upper()} from the EDC folder through the visit schedule in "
                "specs/study.yaml; unscheduled visits numbered in time order.")
    elif rule == "lookup":
        text = (f"{arg.from_} looked up in the {arg.table} table of specs/study.yaml "
                f"({arg.key} -> {arg.field}).")
    elif rule == "aggregate":
        forms = ", ".join(s.form for s in arg.sources)
        text = f"Per subject, the {arg.how} value from the form(s) {forms}."
    elif rule == "result":
        text = (f"{arg.part.upper()} standardised from {arg.orres}"
                + (f" and {arg.orresu}" if arg.orresu else "")
                + " (SDTMIG 3.4 §4.5.1).")
    elif rule == "value":
        text = f"Set to {arg}."
    elif rule == "study":
        text = f"The study's {arg} from specs/study.yaml."
    elif rule == "map":
        col = arg if isinstance(arg, str) else arg.from_
        text = f"Raw {col} mapped to controlled terminology."
    elif rule == "assign":
        text = f"Raw {arg}."
    elif rule == "number":
        text = f"Raw {arg} as a number."
    elif rule == "iso8601":
        text = f"Raw {arg.date}" + (f" and {arg.time}" if arg.time else "") + " as ISO 8601."
    else:  # pragma: no cover - every rule of RULE_KEYS is handled above
        return None
    if var.when:
        text += f" Only where {var.when}."
    return text


def _is_derived(var: VariableMeta) -> bool:
    return (var.origin or "").strip().lower() == "derived"


def _with_methods(meta: DatasetMeta, spec_vars: dict) -> DatasetMeta:
    """A copy of ``meta`` where every Derived variable has method text (spec rule, SE
    table or a pointer to the build) so that each gets a MethodDef (Define-XML 2.1
    §5.3.5: MethodOID is required on an ItemRef whose origin is Derived)."""
    changed = []
    for v in meta.variables:
        if _is_derived(v) and not v.method:
            text = None
            if v.name in spec_vars:
                text = _rule_method(spec_vars[v.name])
            elif meta.name == "SE":
                text = _SE_METHODS.get(v.name)
            text = text or f"Derived by the cdisc build of {meta.name} (see the reviewer's guide)."
            v = v.model_copy(update={"method": text})
        changed.append(v)
    return meta.model_copy(update={"variables": changed})
