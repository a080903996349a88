"""`cdisc build-all STUDY...`: build several study folders, each a task on the executor.

Each study is built as `cdisc build --study STUDY` builds it (into its own build/ folder, by
``cdisc.api.build``), serially inside its task; the studies run side by side on the executor
(``--executor processes --jobs N`` or ``--executor dask --scheduler ADDRESS``: one study per
worker at a time). A study that fails is reported with its name and what failed, the others
still build; the exit code is the worst of theirs (0 all ready, 1 a validation failed, 2 a
build error).
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import click

_ONE_BUILD = threading.Lock()     # a build sets process-wide state (stdout capture, gc, warnings)


@click.command("build-all")
@click.argument("studies", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--executor", "executor", type=click.Choice(["local", "processes", "dask"]), default=None,
              help="Where the studies are built: local (one after another, the default), processes (--jobs "
                   "at a time) or dask (--scheduler ADDRESS, or a local Dask cluster).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Studies built at a time (processes, local Dask cluster; default: every core).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="A running Dask scheduler, e.g. tcp://host:8786; its workers need this cdisc version and "
                   "the study folders at the same paths.")
@click.option("--no-validate", is_flag=True, help="Skip the validation step (not for a data cut or lock).")
@click.option("--no-report", is_flag=True, help="Skip the review report with its plots.")
@click.option("--debug", is_flag=True, help="Show a traceback with errors.")
def build_all(studies: tuple[Path, ...], executor: str | None, jobs: int | None, scheduler: str | None,
              no_validate: bool, no_report: bool, debug: bool) -> None:
    """Build every STUDY folder as `cdisc build --study STUDY` would, studies as parallel tasks.

    Prints one line per study (in the order given): ready, failed validation, or the error
    that stopped it, then how many failed. Exit code: 0 when every study is ready, else the
    worst of the studies' codes (1 validation errors, 2 a build error).
    """
    from .cli import _Abort, _run
    from .executor import make_executor

    try:
        chosen = _run(debug, make_executor, executor, jobs, scheduler)
    except _Abort as a:
        sys.exit(a.code)
    click.echo(f"Building {len(studies)} studies on {chosen.describe()}")
    with chosen:             # absolute paths: a worker's current folder is its own
        outcomes = chosen.map(build_study_task, [(os.path.abspath(s), not no_validate, not no_report) for s in studies])
        results = [o.value if o.error is None else _crashed(str(s), o.error) for s, o in zip(studies, outcomes)]
    codes = []
    for study, res in zip(studies, results):
        res = {**res, "study": str(study)}         # named as the user gave it
        codes.append(res["code"])
        click.echo(_line(res), err=res["code"] != 0)
    failed = sum(c != 0 for c in codes)
    click.echo(f"{len(studies) - failed} of {len(studies)} studies built" + (f"; {failed} failed" if failed else ""))
    sys.exit(max(codes, default=0))


def build_study_task(study: str, validate: bool, report: bool) -> dict:
    """One study's build on a worker; never raises: what stopped it comes back as text.

    Returns {study, code, folder, verdict, error}: code 0 ready, 1 validation errors, the
    error's exit code (2) for a build error, with its first problems. On a worker with several
    threads (a Dask worker's default) its study builds take turns: a build captures stdout and
    warnings process-wide.
    """
    from . import api
    from .cli import _recorded_verdict
    from .errors import CdiscError

    try:
        with _ONE_BUILD:
            out = api.build(study, validate=validate, report=report, quiet=True)
    except CdiscError as exc:
        kind = type(exc).__name__.replace("Error", " error").lower()
        return {"study": study, "code": exc.exit_code, "folder": None, "verdict": None,
                "error": f"{kind}: {exc.render(limit=5)}"}
    except Exception as exc:  # a bug: the other studies still build
        return _crashed(study, exc)
    verdict = _recorded_verdict(out.folder) if validate else "not validated"
    return {"study": study, "code": out.exit_code, "folder": str(out.folder), "verdict": verdict, "error": None}


def _crashed(study: str, exc: BaseException) -> dict:
    return {"study": study, "code": 2, "folder": None, "verdict": None,
            "error": f"internal error: {type(exc).__name__}: {exc} (a bug in cdisc; rerun "
                     f"`cdisc build --study {study} --debug` for the traceback)"}


def _line(res: dict) -> str:
    if res["error"] is not None:
        first, *rest = res["error"].splitlines()
        return f"{res['study']}: FAILED: {first}" + "".join(f"\n    {r}" for r in rest)
    state = "ready" if res["code"] == 0 else "FAILED validation"
    return f"{res['study']}: {state} -> {res['folder']}" + (f" ({res['verdict']})" if res["verdict"] else "")
