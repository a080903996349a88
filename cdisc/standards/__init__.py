"""The CDISC standards' own metadata and Controlled Terminology, shipped as versioned data.

    from cdisc.standards import load_standard, load_ct, available_ct

    ig = load_standard("sdtmig", "3.4")
    ig.domains["AE"].get("AETERM").core           # 'Req'
    ig.domain_for("LBCH").name                    # 'LB' (split dataset, SDTMIG 3.4 section 4.1.7)
    ig.variable("LB", "LBSEQ")                    # IG variable; None when not allowed in LB
    ig.allowed_variables("XX", "Findings")        # a custom Findings domain, --SEQ -> XXSEQ ...
    load_standard("adamig", "1.3").variable("ADSL", "TRT01P").core   # 'Req' (TRTxxP)

    ct = load_ct("sdtm", "2025-03-28")
    ct["NY"].extensible, ct["C66742"].values       # False, ['N', 'NA', 'U', 'Y']

Data files and their provenance: ``cdisc/standards/data/PROVENANCE.md``; they are produced by
``tools/extract_standards.py``. Nothing here reads anything outside the package.
"""
from __future__ import annotations

from .model import DomainDef, Standard, VariableDef, available_standards, load_standard
from .terminology import CtCodelist, CtPackage, CtTerm, available_ct, latest_ct, load_ct

__all__ = [
    "CtCodelist", "CtPackage", "CtTerm", "DomainDef", "Standard", "VariableDef",
    "available_ct", "available_standards", "latest_ct", "load_ct", "load_standard",
]
