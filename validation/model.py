"""Findings, rules and the validation result (no Great Expectations import here)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["error", "warning", "notice"]
SEVERITIES: tuple[str, ...] = ("error", "warning", "notice")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
FAIL_ON = ("error", "warning", "never")


class RuleScope(BaseModel):
    """Which datasets a rule looks at; empty lists mean "no restriction"."""

    model_config = ConfigDict(extra="forbid")

    datasets: list[str] = Field(default_factory=list)
    standards: list[Literal["SDTM", "ADaM"]] = Field(default_factory=list)
    classes: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    def covers(self, name: str, standard: str, class_: str | None) -> bool:
        """Whether a dataset (name, SDTM/ADaM, class from its metadata) is in scope."""
        if self.datasets and name not in self.datasets:
            return False
        if name in self.exclude:
            return False
        if self.standards and standard not in self.standards:
            return False
        if self.classes and (class_ or "").upper() not in {c.upper() for c in self.classes}:
            return False
        return True


class Rule(BaseModel):
    """One entry of ``validation/rules.yaml``."""

    model_config = ConfigDict(extra="forbid")

    id: str
    engine: Literal["ge", "python", "core", "define"]
    check: str
    severity: Severity
    message: str
    standard: str
    core_id: str | None = None
    cg_id: str | None = None              # SDTMIG conformance rule (CGnnnn)
    fda_id: str | None = None
    scope: RuleScope = Field(default_factory=RuleScope)
    params: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One failed check on one record (row set) or one dataset/variable (row None).

    ``row`` is the 1-based record number in the dataset as written; ``seq`` the record's
    --SEQ (or ASEQ) when the dataset has one.
    """

    rule: str
    severity: str
    dataset: str
    variable: str | None
    usubjid: str | None
    seq: int | float | None
    row: int | None
    value: str | None
    message: str

    def sort_key(self) -> tuple:
        return (
            self.rule,
            self.dataset,
            -1 if self.row is None else self.row,
            self.variable or "",
            self.usubjid or "",
            self.value or "",
            self.message,
        )

    def to_dict(self) -> dict:
        # every field is a scalar: what asdict gives, without its recursive copy (results.json
        # of a study with 100,000 waived findings spent seconds in it)
        seq = self.seq
        return {"rule": self.rule, "severity": self.severity, "dataset": self.dataset, "variable": self.variable,
                "usubjid": self.usubjid, "seq": None if isinstance(seq, float) and math.isnan(seq) else seq,
                "row": self.row, "value": self.value, "message": self.message}


@dataclass
class RuleStatus:
    """What happened to one rule in one run: applied, not applicable, or crashed."""

    id: str
    severity: str
    status: Literal["passed", "failed", "not applicable", "check error"]
    findings: int = 0
    waived: int = 0
    datasets: list[str] = field(default_factory=list)
    reason: str | None = None


@dataclass
class DatasetSummary:
    name: str
    standard: str
    records: int
    checks: int
    errors: int = 0
    warnings: int = 0
    notices: int = 0
    waived: int = 0


@dataclass
class ValidationResult:
    """Everything a validation run produced.

    ``findings`` are the active (unwaived) findings; ``waived`` pairs each waived finding
    with the waiver that covers it; ``unused_waivers`` lists waivers that matched nothing.
    """

    findings: list[Finding]
    waived: list[tuple[Finding, Any]]
    rules: list[RuleStatus]
    datasets: list[DatasetSummary]
    catalogue: list[Rule]
    unused_waivers: list[Any] = field(default_factory=list)
    fail_on: str = "error"
    timings: dict[str, float] = field(default_factory=dict)   # seconds; never written to results.json
    files: dict[str, str] = field(default_factory=dict)
    build: dict | None = None      # the build's manifest.json (reconciliation shown in the report)
    source: dict | None = None     # what was validated (folder, files, CT, specs); see validate_folder

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def notices(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "notice"]

    def exit_code(self, fail_on: str | None = None) -> int:
        """1 when any error (or, with ``fail_on='warning'``, any warning); else 0.

        ``fail_on='never'`` always gives 0 (report only).
        """
        mode = fail_on or self.fail_on
        if mode not in FAIL_ON:
            raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {mode!r}")
        if mode == "never":
            return 0
        if self.errors:
            return 1
        if mode == "warning" and self.warnings:
            return 1
        return 0

    @property
    def verdict(self) -> str:
        n = len(self.errors)
        if n == 0:
            return "Ready for lock: no errors"
        return f"NOT ready: {n} error{'s' if n != 1 else ''}"

    def counts(self) -> dict:
        """Counts by severity and by rule (active findings only), deterministic order."""
        by_sev = {s: 0 for s in SEVERITIES}
        by_rule: dict[str, dict[str, int]] = {}
        for f in self.findings:
            by_sev[f.severity] += 1
            r = by_rule.setdefault(f.rule, {"severity": f.severity, "findings": 0})
            r["findings"] += 1
        return {
            "by_severity": by_sev,
            "by_rule": {k: by_rule[k] for k in sorted(by_rule)},
            "waived": len(self.waived),
        }

    def _waived_dicts(self) -> list[dict]:
        dumped: dict[int, dict] = {}          # one waiver covers many findings: dumped once
        return [{**f.to_dict(), "waiver": dumped.get(id(w)) or dumped.setdefault(id(w), w.model_dump(exclude_none=True))}
                for f, w in self.waived]

    def to_dict(self) -> dict:
        """The content of results.json: sorted, no timestamps, no timings."""
        return {
            "verdict": self.verdict,
            "ready_for_lock": not self.errors,
            "counts": self.counts(),
            "datasets": [asdict(d) for d in self.datasets],
            "rules": [asdict(r) for r in self.rules],
            "findings": [f.to_dict() for f in self.findings],
            "waived": self._waived_dicts(),
            "unused_waivers": [w.model_dump(exclude_none=True) for w in self.unused_waivers],
        }
