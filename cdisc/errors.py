"""Errors a user can act on.

Every error the toolkit raises on purpose is a ``CdiscError``: it names where the
problem is (file, row, column or spec key path) and what to do about it. The CLI
prints these as one readable message and maps them to exit codes; anything else is
a bug and only shows a traceback with ``--debug``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Problem:
    """One located problem in an input file, a spec or the data."""

    message: str
    file: str | None = None
    row: int | None = None          # 1-based line number in the file (header is line 1)
    column: str | None = None
    key: str | None = None          # key path inside a spec file, e.g. variables[3].rule
    hint: str | None = None

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        if self.key:
            where.append(f"key {self.key}")
        text = (", ".join(where) + ": " if where else "") + self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


def in_specs(p: Problem, specs_dir) -> Problem:
    """``p`` with a ``specs/...`` file named by the real spec folder: relative to the current
    folder when inside it, else relative to the study folder (the one the command's first line
    names), e.g. ``mapping/sdtm/ae.yaml`` when the specs folder is called ``mapping``."""
    import os
    from dataclasses import replace
    from pathlib import Path

    if specs_dir is None or not p.file or not (p.file == "specs" or p.file.startswith("specs/")):
        return p
    real = Path(os.path.abspath(specs_dir)) / p.file[len("specs/"):] if p.file != "specs" else \
        Path(os.path.abspath(specs_dir))
    try:
        shown = real.relative_to(Path.cwd()).as_posix()
    except ValueError:
        shown = real.relative_to(Path(os.path.abspath(specs_dir)).parent).as_posix()
    return replace(p, file=shown)


class CdiscError(Exception):
    """Base class; ``exit_code`` is what the CLI returns."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str, **where):
        if isinstance(problems, str):
            problems = [Problem(problems, **where)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.render())

    def render(self, limit: int = 50, specs_dir=None) -> str:
        """The problems, one per line; ``specs_dir``: the real spec folder, so a problem the
        code locates as ``specs/sdtm/ae.yaml`` names the file where it is."""
        lines = [str(in_specs(p, specs_dir)) for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more")
        return "\n".join(lines)


class SpecError(CdiscError):
    """A spec file is missing, unreadable or invalid (exit 2)."""

    exit_code = 2


class InputError(CdiscError):
    """A raw input file is missing, unreadable or lacks a column the spec needs (exit 2)."""

    exit_code = 2


class DataError(CdiscError):
    """The data itself is wrong: bad date, term outside CT, duplicate key, ... (exit 1)."""

    exit_code = 1


class ConformanceError(CdiscError):
    """A dataset breaks a submission limit (XPT v5 / FDA TCG) and cannot be written (exit 1)."""

    exit_code = 1


@dataclass
class ProblemLog:
    """Collects problems so a build reports all of them at once, not just the first."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, message: str, **where) -> None:
        self.problems.append(Problem(message, **where))

    def extend(self, problems: list[Problem]) -> None:
        self.problems.extend(problems)

    def raise_if_any(self, cls: type[CdiscError] = DataError) -> None:
        """Raise every problem collected, each once (two domains reading one raw form may both see it)."""
        if self.problems:
            seen, unique = set(), []
            for p in self.problems:
                k = (p.message, p.file, p.row, p.column, p.key)
                if k not in seen:
                    seen.add(k)
                    unique.append(p)
            raise cls(unique)
