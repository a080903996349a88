"""Conformance layer: GE suites from metadata, a cross-dataset rule catalogue, an HTML report.

Public interface (Great Expectations is imported only when suites actually run)::

    from cdisc.validation import validate_folder, validate_datasets, load_waivers
    result = validate_folder("build")             # a cdisc build, or any SDTM/ADaM folder
    result = validate_datasets(datasets, metas, ct, waivers=load_waivers(path), out_dir=OUT)
    result.errors, result.warnings, result.exit_code("error")
"""
from __future__ import annotations

from .engine import read_xpt_dir, validate_build, validate_datasets
from .folder import read_folder, validate_folder
from .model import Finding, Rule, RuleStatus, ValidationResult
from .rules import load_rules
from .waivers import Waiver, apply_waivers, load_waivers

__all__ = [
    "Finding",
    "Rule",
    "RuleStatus",
    "ValidationResult",
    "Waiver",
    "apply_waivers",
    "load_rules",
    "load_waivers",
    "read_xpt_dir",
    "validate_build",
    "validate_datasets",
    "validate_folder",
    "read_folder",
]
