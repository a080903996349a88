"""The CORE rule catalogue (``rules/sdtmig-3-4.jsonl``) as rule objects with their identity."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

from .operators import NOT_SUPPORTED, OPERATORS

CATALOGUE = "sdtmig-3-4.jsonl"


@dataclass
class CoreRule:
    """One CORE rule as data: its identity, citations and logic (rule.yml vocabulary)."""

    id: str
    rule: dict
    source: str = ""
    open_rules_head: dict = field(default_factory=dict)

    # identity ----------------------------------------------------------------------
    @property
    def description(self) -> str:
        return self.rule.get("Description") or ""

    @property
    def message(self) -> str:
        return (self.rule.get("Outcome") or {}).get("Message") or ""

    @property
    def output_variables(self) -> list[str] | None:
        return (self.rule.get("Outcome") or {}).get("Output Variables")

    @property
    def rule_type(self) -> str:
        return self.rule.get("Rule Type") or ""

    @property
    def sensitivity(self) -> str | None:
        return self.rule.get("Sensitivity")

    @property
    def executability(self) -> str:
        return self.rule.get("Executability") or ""

    @property
    def citations(self) -> list[dict]:
        """Flat list of (organization, standard, version, rule id, document, section, item, guidance)."""
        out = []
        for auth in self.rule.get("Authorities") or []:
            for std in auth.get("Standards") or []:
                for ref in std.get("References") or []:
                    rid = (ref.get("Rule Identifier") or {}).get("Id")
                    for cit in ref.get("Citations") or [{}]:
                        out.append({
                            "organization": auth.get("Organization"),
                            "standard": std.get("Name"),
                            "standard_version": std.get("Version"),
                            "origin": ref.get("Origin"),
                            "id": rid,
                            "document": cit.get("Document"),
                            "section": cit.get("Section"),
                            "item": cit.get("Item"),
                            "cited_guidance": cit.get("Cited Guidance"),
                        })
        return out

    @property
    def cdisc_ids(self) -> list[str]:
        return sorted({c["id"] for c in self.citations if c["organization"] == "CDISC" and c["id"]
                       and c["origin"] and c["origin"].startswith("SDTM")})

    @property
    def fda_ids(self) -> list[str]:
        return sorted({c["id"] for c in self.citations if c["organization"] == "FDA" and c["id"]})

    # logic ---------------------------------------------------------------------------
    @property
    def check(self):
        return self.rule.get("Check")

    @property
    def operations(self) -> list[dict]:
        return self.rule.get("Operations") or []

    @property
    def match_datasets(self) -> list[dict]:
        return self.rule.get("Match Datasets") or []

    @property
    def scope(self) -> dict:
        return self.rule.get("Scope") or {}

    @property
    def classes(self) -> dict:
        return self.scope.get("Classes") or {}

    @property
    def domains(self) -> dict:
        return self.scope.get("Domains") or {}

    @property
    def include_split(self) -> bool:
        return bool(self.domains.get("include_split_datasets", False))

    @property
    def grouping_variables(self) -> list[str]:
        return self.rule.get("Grouping Variables") or []

    @cached_property
    def text(self) -> str:
        return json.dumps(self.rule, sort_keys=True)

    def leaves(self) -> list[dict]:
        return self._leaves

    @cached_property
    def _leaves(self) -> list[dict]:
        out = []

        def walk(c):
            if isinstance(c, dict):
                if "operator" in c:
                    out.append(c)
                else:
                    for v in c.values():
                        walk(v)
            elif isinstance(c, list):
                for x in c:
                    walk(x)
        walk(self.check)
        return out

    @cached_property
    def referenced_names(self) -> list:
        """Targets and comparators of the Check (CORE extract_referenced_variables_from_rule)."""
        out = []
        for leaf in self.leaves():
            if leaf.get("name"):
                out.append(leaf["name"])
            if leaf.get("value") is not None:
                out.append(leaf["value"])
        return out

    def unsupported(self) -> str | None:
        """Why this rule cannot be executed by our evaluator (None: it can)."""
        from .builders import BUILDERS, NEEDS_DEFINE
        from .operations import OPERATIONS

        if isinstance(self.check, str):
            return f"rule type {self.rule_type} (JSONata) is not supported"
        if self.rule_type in NEEDS_DEFINE:
            return f"rule type {self.rule_type!r} needs define.xml"
        if self.rule_type not in BUILDERS:
            return f"rule type {self.rule_type!r} is not implemented"
        for leaf in self.leaves():
            op = leaf.get("operator")
            if op in NOT_SUPPORTED:
                return NOT_SUPPORTED[op]
            if op not in OPERATORS:
                return f"operator {op} is not implemented"
            if "name" not in leaf:
                return "a Check leaf without a variable name (CORE repeats it for every column) is not implemented"
        for op in self.operations:
            if op.get("operator") not in OPERATIONS:
                return f"operation {op.get('operator')} is not implemented"
        if self.sensitivity == "Group" and not self.grouping_variables:
            return "Group sensitivity without Grouping Variables"
        return None

    def with_open_rules_head(self) -> CoreRule:
        """The rule as the open-rules repository has it (its test baselines were made from it)."""
        if not self.open_rules_head:
            return self
        rule = copy.deepcopy(self.rule)
        for path, value in self.open_rules_head.items():
            parts = path.split(".")
            cur = rule
            for p in parts[:-1]:
                cur = cur.setdefault(p, {})
            if value is None:
                cur.pop(parts[-1], None)
            else:
                cur[parts[-1]] = value
        return CoreRule(self.id, rule, self.source, {})


def _read(text: str) -> list[CoreRule]:
    out = []
    for line in text.splitlines():
        if line.strip():
            rec = json.loads(line)
            out.append(CoreRule(rec["id"], rec["rule"], rec.get("source", ""), rec.get("open_rules_head") or {}))
    return out


@lru_cache(maxsize=4)
def _packaged(name: str) -> tuple[CoreRule, ...]:
    text = resources.files("cdisc.validation.core").joinpath("rules", name).read_text(encoding="utf-8")
    return tuple(_read(text))


def load_rules(path: str | Path | None = None) -> list[CoreRule]:
    """The catalogue (default: the packaged SDTMIG 3.4 rules), sorted by Core id."""
    if path is None:
        return [copy.copy(r) for r in _packaged(CATALOGUE)]
    return _read(Path(path).read_text(encoding="utf-8"))
