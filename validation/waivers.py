"""Waivers: approved exceptions that move a finding out of the verdict into its own list.

A waiver names the rule and dataset and may narrow itself to a subject, a variable or a
record; the reason is mandatory so every waived finding in the report says why.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from cdisc.errors import Problem, SpecError
from cdisc.specio import load_yaml

from .model import Finding


class Waiver(BaseModel):
    """One entry of ``specs/waivers.yaml``."""

    model_config = ConfigDict(extra="forbid")

    rule: str
    dataset: str
    usubjid: str | None = None
    variable: str | None = None
    row: int | None = None
    reason: str
    approved_by: str | None = None

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, v: str) -> str:
        if not v or not v.strip():
            raise ValueError("reason must say why the finding is acceptable")
        return v.strip()

    @field_validator("dataset", "rule")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.strip().upper()

    def matches(self, f: Finding) -> bool:
        """True when every field the waiver sets equals the finding's."""
        return (
            self.rule == f.rule.upper()
            and self.dataset == f.dataset.upper()
            and (self.usubjid is None or self.usubjid == f.usubjid)
            and (self.variable is None or self.variable.upper() == (f.variable or "").upper())
            and (self.row is None or self.row == f.row)
        )


def load_waivers(path: Path | str | None) -> list[Waiver]:
    """Read waivers from YAML: a list of waivers, or ``{waivers: [...]}``.

    Args:
        path: the waivers file; None or a missing file gives no waivers.

    Raises:
        SpecError: the file is not valid YAML or an entry is invalid (names the entry's
            key path, e.g. ``waivers[2].reason``).
    """
    if path is None:
        return []
    path = Path(path)
    if not path.exists():
        return []
    data = load_yaml(path, display=str(path))
    if data is None:
        return []
    return waivers_from(data, file=str(path))


def waivers_from(data, *, file: str) -> list[Waiver]:
    """Waivers from parsed YAML/JSON (a list, or ``{waivers: [...]}``); errors name ``file``."""
    if data is None:
        return []
    if isinstance(data, dict):
        data = data.get("waivers", [])
    if not isinstance(data, list):
        raise SpecError("expected a list of waivers", file=file, key="waivers")
    waivers, problems = [], []
    for i, entry in enumerate(data):
        try:
            waivers.append(Waiver.model_validate(entry))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(x) for x in err["loc"])
                problems.append(
                    Problem(
                        err["msg"],
                        file=file,
                        key=f"waivers[{i}]" + (f".{loc}" if loc else ""),
                        hint="each waiver needs rule, dataset and reason",
                    )
                )
    if problems:
        raise SpecError(problems)
    return waivers


def apply_waivers(
    findings: list[Finding], waivers: list[Waiver] | tuple = ()
) -> tuple[list[Finding], list[tuple[Finding, Waiver]], list[Waiver]]:
    """Split findings into active and waived.

    Returns:
        (active findings, [(waived finding, first matching waiver)], unused waivers).
        Waivers are looked up by (rule, dataset), so a delivery with 100,000 findings and 50
        waivers is 100,000 short lookups, not 5 million comparisons; the first matching
        waiver in file order wins, as before.
    """
    active, waived = [], []
    used: set[int] = set()
    by_key: dict[tuple[str, str], list[int]] = {}
    for i, w in enumerate(waivers):
        by_key.setdefault((w.rule, w.dataset), []).append(i)
    for f in findings:
        cands = by_key.get((f.rule.upper(), f.dataset.upper()), ())
        hit = next((i for i in cands if waivers[i].matches(f)), None)
        if hit is None:
            active.append(f)
        else:
            waived.append((f, waivers[hit]))
            used.add(hit)
    unused = [w for i, w in enumerate(waivers) if i not in used]
    return active, waived, unused
