"""The tasks of a build that run on a worker (``cdisc.executor``): one SDTM domain, one ADaM
dataset, one XPT file.

Each is a module-level function of picklable arguments that returns picklable results, so
it runs the same in this process, a spawned process or on a Dask worker. A worker reads the
study's specs and raw forms itself, from the paths the build gives (the same paths must
reach the same files there); what the serial build keeps in shared state (which forms were
read, their problems and columns) comes back with the result for the caller to merge in the
serial build's order.
"""
from __future__ import annotations

import hashlib
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

_LOADED: dict = {}      # (specs folder, token) -> (study, ct, specs): loaded once per worker
_WARNINGS = threading.Lock()     # warnings.catch_warnings is per process, not per thread


def specs_token(specs_dir: Path) -> str:
    """A fingerprint of the spec files (path, size, modification time): a long-lived worker
    loads a study's specs again when they changed since it last loaded them."""
    h = hashlib.sha256()
    for p in sorted(Path(specs_dir).rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _study(specs_dir: str, token: str):
    """The study, its CT (13 MB pickled: cheaper to load than to send) and domain specs."""
    from .ct import load_terminology
    from .pipeline import load_domain_specs
    from .study import load_study

    key = (specs_dir, token)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = (load_study(Path(specs_dir)), load_terminology(Path(specs_dir)),
                        load_domain_specs(Path(specs_dir)))
    return _LOADED[key]


def domain_forms(specs: dict, domains: list[str], raw_dir: Path) -> tuple[dict[str, int], dict[str, set[str]]]:
    """Per domain, the bytes of the raw files its spec names (``form:``) and those forms."""
    sizes = {p.stem.lower(): p.stat().st_size for p in Path(raw_dir).iterdir() if p.is_file()}

    def forms(node) -> set[str]:
        if isinstance(node, dict):
            found = {str(node["form"]).lower()} if isinstance(node.get("form"), str) else set()
            return found.union(*(forms(v) for v in node.values()))
        if isinstance(node, (list, tuple)):
            return set().union(*(forms(v) for v in node))
        return set()

    named = {d: forms(specs[d][0].model_dump()) for d in domains}
    return {d: sum(sizes.get(f, 0) for f in named[d]) for d in domains}, named


def largest_first(specs: dict, domains: list[str], raw_dir: Path) -> list[str]:
    """``domains`` in the order to hand them out: largest first (the longest tasks start first,
    so two workers do not end with one mapping LB alone after the rest), a domain's size being
    the bytes of the raw files its spec names (``form:``); ties in name order."""
    cost = domain_forms(specs, domains, raw_dir)[0]
    return sorted(domains, key=lambda d: (-cost[d], d))


@dataclass
class DomainTask:
    """What mapping one domain on a worker gives back besides the domain itself."""

    result: object                      # sdtm.engine.DomainResult
    seconds: float
    reads: set[str]                     # every form the domain asked for (its build graph node's files)
    forms: dict[str, tuple] = field(default_factory=dict)   # form -> (file name, problems, columns as a 0-row frame)
    columns_read: dict[str, set[str]] = field(default_factory=dict)


def map_domain_task(specs_dir: str, raw_dir: str, token: str, domain: str, dm: pd.DataFrame,
                    se: pd.DataFrame | None) -> DomainTask:
    """Map one SDTM domain (after DM and SE) as ``build_sdtm`` does, in a fresh ``Context``.

    Per form first read here: its file name, the problems reading it found (raw
    ``allowed_values``) and its columns, so the caller records a form (and its problems) once,
    for the first domain in name order that reads it, as the serial build does.
    """
    return map_loaded_domain(*_study(specs_dir, token), raw_dir, domain, dm, se)


def map_loaded_domain(study, ct, specs: dict, raw_dir: str | Path, domain: str, dm: pd.DataFrame,
                      se: pd.DataFrame | None) -> DomainTask:
    """``map_domain_task`` with the study, CT and domain specs already loaded (a forked child
    has them: cdisc.sdtm_fork)."""
    from cdisc.sdtm.engine import Context, map_domain

    spec, display = specs[domain]
    ctx = Context(study=study, ct=ct, raw_dir=Path(raw_dir), dm=dm, se=se)
    task = DomainTask(None, 0.0, set())
    read_form = ctx.form

    def tracked_form(name: str):
        task.reads.add(name)
        if name in ctx.forms_read:
            return read_form(name)
        before = len(ctx.problems)
        frame = read_form(name)
        task.forms[name] = (ctx.forms_read[name], ctx.problems[before:], frame.iloc[:0])
        return frame

    ctx.form = tracked_form
    t = time.perf_counter()
    task.result = map_domain(spec, ctx, spec_file=display)
    task.seconds = time.perf_counter() - t
    task.columns_read = ctx.columns_read
    return task


def adam_task(spec, display: str, frames: dict[str, pd.DataFrame]):
    """Derive one ADaM dataset from the frames it reads; returns (frame, seconds, warnings).

    The warnings (``derive_param_tte`` leaving records out, ...) come back as instances for the
    caller to warn again, in build order, where ``add_adam`` records them as notes. Catching
    warnings is process-wide, so on a worker with several threads (a Dask worker's default)
    its ADaM tasks take turns: another task's warning must not become this dataset's note.
    """
    from cdisc.adam.runner import _Runner

    t = time.perf_counter()
    with _WARNINGS, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = _Runner(spec, display, frames).run()
    return frame, time.perf_counter() - t, [w.message for w in caught]


def write_xpt_task(data: pd.DataFrame, meta, created) -> tuple[list, dict | None, bytes | None]:
    """One dataset's XPT checks (``cdisc.xpt.check_xpt``) and, when it passes, its file's bytes
    (``write_xpt`` into a private temporary folder) with the writer's info: (problems, info,
    bytes). The caller writes the bytes, so the output folder need not be reachable from the
    worker, and nothing is written before every dataset passed."""
    import tempfile

    from .xpt import check_xpt, write_xpt

    problems = check_xpt(data, meta)
    if problems:
        return problems, None, None
    with tempfile.TemporaryDirectory(prefix="cdisc-xpt-") as tmp:
        path = Path(tmp) / f"{meta.name.lower()}.xpt"
        info = write_xpt(path, data, meta, created)
        return [], info, path.read_bytes()
