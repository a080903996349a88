"""Command line: `cdisc init`, `cdisc build`, `cdisc validate`, `cdisc package`, `cdisc diff`,
`cdisc findings`, `cdisc spec`.

Exit codes: 0 success; 1 the data has errors; 2 bad usage, bad spec or unreadable input.
Errors print as one readable message (file, row, column, what and how to fix); --debug
adds the traceback.
"""
from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import click

from .errors import CdiscError


class _Abort(Exception):
    def __init__(self, code: int):
        self.code = code


#: the spec folder of the command being run: errors locate spec files as specs/..., shown as the real path
_SPECS_SHOWN: dict[str, Path] = {}


def _run(debug: bool, func, *args, **kwargs):
    from .gcpause import gc_paused

    try:
        with gc_paused():          # a one-shot command: see cdisc/gcpause.py
            return func(*args, **kwargs)
    except CdiscError as exc:
        kind = type(exc).__name__.replace("Error", " error").lower()
        n = len(exc.problems)
        click.echo(f"cdisc: {kind}{'s' if n > 1 else ''} ({n}):", err=True)
        click.echo(exc.render(limit=100 if not debug else 10_000, specs_dir=_SPECS_SHOWN.get("dir")), err=True)
        if debug:
            traceback.print_exc()
        raise _Abort(exc.exit_code) from None
    except Exception as exc:  # a bug, not a user error
        click.echo(f"cdisc: internal error: {type(exc).__name__}: {exc}", err=True)
        click.echo("This is a bug in cdisc; rerun with --debug and report the traceback.", err=True)
        if debug:
            traceback.print_exc()
        raise _Abort(2) from None


debug_option = click.option("--debug", is_flag=True, help="Show a traceback with errors.")
engine_option = click.option(
    "--engine", type=click.Choice(["native", "ge"]), default="native", show_default=True,
    help="How the expectation suites run: natively (vectorised, the same findings in a fraction of the "
         "time) or through Great Expectations itself.")
fail_on_option = click.option("--fail-on", type=click.Choice(["error", "warning"]), default="error",
                              show_default=True,
                              help="Validation findings of this severity (or worse) make the exit code 1.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cdisc")
def main() -> None:
    """cdisc: raw CRF exports -> CDISC SDTM and ADaM datasets, validated and packaged.

    The study lives in its specs (specs/study.yaml, specs/sdtm/*.yaml, specs/adam/*.yaml,
    specs/ct/*.yaml); the raw EDC exports live in one folder (one file per CRF form:
    .csv, .xlsx, .sas7bdat or .xpt). Commands work on the study in the current folder (or
    --study DIR: a cdisc.yaml, or specs/study.yaml with raw/ or sdtm/); `cdisc init DIR`
    starts one; `cdisc build --example` builds the VGO-Cs01p example of the source repository.

    Exit codes: 0 success, 1 the data has errors, 2 bad usage, bad spec or unreadable input.
    """
    from .runtime import keep_freed_memory, use_python_strings

    keep_freed_memory()
    ctx = click.get_current_context()
    if ctx.invoked_subcommand != "build":       # build sets it after its "nothing changed" check
        use_python_strings()                    # (importing pandas alone takes 0.6 s)
    _SPECS_SHOWN.clear()


STUDY_HELP = ("The study folder (cdisc.yaml, or specs/study.yaml with raw/ or sdtm/, or study.yaml). "
              "Default: the current folder.")


@main.command()
@click.option("--study", "study_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=STUDY_HELP)
@click.option("--example", is_flag=True, help="Build the VGO-Cs01p example shipped in the source repository.")
@click.option("--specs", "specs_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Study spec folder (study.yaml, sdtm/, adam/, ct/). Default: the study folder's specs/.")
@click.option("--raw", "raw_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with the raw CRF exports, one file per form. Default: raw/ beside the specs.")
@click.option("--sdtm", "sdtm_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build from delivered SDTM instead of raw forms: the folder of SDTM datasets (XPT, "
                   "Dataset-JSON, sas7bdat or parquet), read and validated as they are, copied into the "
                   "build byte for byte; the ADaM is derived from --specs adam/ (the spec folder needs "
                   "only study.yaml and adam/).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder: sdtm/*.xpt, adam/*.xpt, manifest.json, validation/. Default: build/ in "
                   "the study folder (cdisc.yaml may name another).")
@click.option("--format", "formats", default="xpt", show_default=True,
              help="Comma-separated output formats: xpt, and json (CDISC Dataset-JSON v1.1 next to each XPT).")
@fail_on_option
@engine_option
@click.option("--no-validate", is_flag=True, help="Skip the validation step (not for a data cut or lock).")
@click.option("--no-report", is_flag=True,
              help="Skip the review report with its plots (OUT/report.html; about 3 s) for a quick iteration.")
@click.option("--full", is_flag=True, help="Rebuild everything, also what did not change since the build in OUT.")
@click.option("--select", "select", default=None, metavar="NODES",
              help="Build only these datasets, like `dbt build --select`: `ADSL+` is ADSL and everything that "
                   "reads it, `+ADAE` ADAE and everything it reads, `ae` just AE (with SUPPAE); several "
                   "separated by commas. The rest is kept from the build in OUT, whose upstream of the "
                   "selection must be unchanged (else the build refuses and says what to add).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the verdict line (errors still go to stderr).")
@click.option("--json", "as_json", is_flag=True,
              help="Print a machine summary on stdout instead of the text: datasets, records, timings, what "
                   "was rebuilt or kept, verdict and exit code.")
@click.option("--executor", "executor", type=click.Choice(["local", "processes", "dask"]), default=None,
              help="Where the independent tasks (SDTM domains after DM, ADaM datasets of one dependency level, "
                   "XPT files) run: local (serial, the default), processes (a pool of --jobs processes) or dask "
                   "(--scheduler ADDRESS, or a local Dask cluster). The files are the same either way.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes for --executor processes or a local Dask cluster (default: every core); "
                   "alone it means --executor processes.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="A running Dask scheduler, e.g. tcp://host:8786 (implies --executor dask); its workers need "
                   "this cdisc version and the study folder at the same path.")
@debug_option
def build(study_dir: Path | None, example: bool, specs_dir: Path | None, raw_dir: Path | None,
          sdtm_dir: Path | None, out_dir: Path | None, formats: str, fail_on: str, no_validate: bool, debug: bool,
          engine: str = "native", full: bool = False, select: str | None = None, quiet: bool = False,
          as_json: bool = False, no_report: bool = False, executor: str | None = None, jobs: int | None = None,
          scheduler: str | None = None) -> None:
    """Build SDTM and ADaM datasets from the raw exports, write them as XPT v5, validate them.

    Prints one line per dataset as it is built (records, seconds), then per dataset its
    records and variables, and the reconciliation of raw rows: read, mapped, and excluded
    by which spec rule. Then validates what it wrote (as `cdisc validate` does) into
    OUT/validation/report.html. An error leaves an earlier build in --out untouched.

    Incremental: OUT/manifest.json records what each dataset came from (spec, raw forms,
    CT, tool). With nothing changed the build says so and touches nothing; a changed raw
    form rebuilds its domain and the datasets that read it, keeps the rest, and validates
    the whole folder again. --full rebuilds everything.
    """
    from .executor import make_executor, use_executor

    try:
        chosen = _run(debug, make_executor, executor, jobs, scheduler)
    except _Abort as a:
        sys.exit(a.code)
    with use_executor(chosen):
        _build_with(study_dir, example, specs_dir, raw_dir, sdtm_dir, out_dir, formats, fail_on, no_validate, debug,
                    engine, full, select, quiet, as_json, no_report)


def _build_with(study_dir, example, specs_dir, raw_dir, sdtm_dir, out_dir, formats, fail_on, no_validate, debug,
                engine, full, select, quiet, as_json, no_report) -> None:
    """`cdisc build` with its executor set (cdisc.executor.use_executor)."""
    if quiet or as_json:
        import contextlib
        import io

        summary: dict = {}
        code = 0
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                _build_command(study_dir, example, specs_dir, raw_dir, sdtm_dir, out_dir, formats, fail_on,
                               no_validate, debug, engine, full, select, summary, no_report)
            except SystemExit as exc:
                code = int(exc.code or 0)
        summary["exit_code"] = code
        if as_json:
            import json

            click.echo(json.dumps(summary, indent=1, default=str))
        elif summary.get("verdict"):
            click.echo(summary["verdict"])
        sys.exit(code)
    _build_command(study_dir, example, specs_dir, raw_dir, sdtm_dir, out_dir, formats, fail_on, no_validate,
                   debug, engine, full, select, None, no_report)


def _build_command(study_dir, example, specs_dir, raw_dir, sdtm_dir, out_dir, formats, fail_on, no_validate,
                   debug, engine, full, select, summary, no_report=False) -> None:
    from .project import resolve_study

    if full and select:
        click.echo("cdisc: usage error: give --full or --select, not both", err=True)
        sys.exit(2)
    if sdtm_dir is not None and raw_dir is not None:
        click.echo("cdisc: usage error: give --raw (raw CRF exports) or --sdtm (delivered SDTM), not both", err=True)
        sys.exit(2)
    fmts = {f.strip().lower() for f in formats.split(",") if f.strip()}
    try:
        for p, what in ((specs_dir, "--specs"), (raw_dir, "--raw"), (sdtm_dir, "--sdtm"), (study_dir, "--study")):
            if p is not None and not Path(p).is_dir():
                click.echo(f"cdisc: usage error: {what} folder {p} does not exist", err=True)
                raise _Abort(2)
        paths = _run(debug, resolve_study, study_dir, specs=specs_dir, raw=raw_dir, sdtm=sdtm_dir, out=out_dir,
                     example=example)
        click.echo(paths.describe())
        _SPECS_SHOWN["dir"] = paths.specs
        specs_dir, out_dir, sdtm_dir = paths.specs, paths.out, paths.sdtm
        raw_dir = paths.inputs
        if not fmts <= {"xpt", "json"} or "xpt" not in fmts:
            click.echo(f"cdisc: usage error: --format takes xpt or xpt,json (XPT is always written), "
                       f"not {formats!r}", err=True)
            raise _Abort(2)
        for p, what in ((specs_dir, "--specs"), (raw_dir, "--sdtm" if sdtm_dir is not None else "--raw")):
            if not Path(p).is_dir():
                click.echo(f"cdisc: usage error: {what} folder {p} does not exist", err=True)
                raise _Abort(2)
        if summary is not None:
            summary.update(study=str(paths.root.resolve()), specs=str(specs_dir), inputs=str(raw_dir),
                           out=str(out_dir))
        code = _run(debug, _build_or_report, specs_dir, raw_dir, out_dir, fmts, fail_on, no_validate, engine,
                    delivered=sdtm_dir is not None, full=full, select=select, summary=summary,
                    review_report=not no_report)
        if code:
            raise _Abort(code)
    except _Abort as a:
        sys.exit(a.code)


def _protected(specs_dir: Path, raw_dir: Path | None, build_dir: Path | None = None,
               delivered: bool = False) -> dict[str, Path]:
    """Folders an output must stay out of: the study's specs, raw exports (or delivered SDTM),
    their study folder."""
    import os

    folders = {"specs folder": Path(specs_dir)}
    if raw_dir is not None:
        folders["sdtm folder" if delivered else "raw folder"] = Path(raw_dir)
    if build_dir is not None:
        folders["build folder"] = Path(build_dir)
    parts = [os.path.realpath(p) for p in folders.values()]
    study = Path(os.path.commonpath(parts)) if len(parts) > 1 else Path(parts[0]).parent
    return {"study folder": study, **folders}


def _check_links(specs_dir: Path, raw_dir: Path | None = None) -> None:
    """Every file the build reads stays inside the study's specs and raw folders (no link out)."""
    from .errors import InputError
    from .specio import links_outside

    problems = links_outside(specs_dir, what="specs")
    if raw_dir is not None:
        problems += links_outside(raw_dir, what="raw")
    if problems:
        raise InputError(problems)


def _build_or_report(specs_dir: Path, raw_dir: Path, out_dir: Path, *args, delivered: bool = False, **kwargs) -> int:
    """`_build`; when it stops with errors (mapping, derivation, XPT limits) OUT.failed/ gets
    report.html and errors.json (cdisc.review), then the errors print as before. OUT and the
    inputs are not touched; an OUT.failed that holds the user's files only gets a note."""
    from .outdir import OutputError, OutputFolder

    try:
        return _build(specs_dir, raw_dir, out_dir, *args, delivered=delivered, **kwargs)
    except CdiscError as exc:
        if isinstance(exc, OutputError):
            raise
        from .review import write_failed_report

        try:
            staged = OutputFolder(out_dir, kind="build", protected=_protected(specs_dir, raw_dir, delivered=delivered))
            with staged:
                write_failed_report(staged.path, exc, specs_dir=specs_dir, raw_dir=raw_dir)
                failed = staged.commit_failed()
            click.echo(f"Report of the failed build: {failed / 'report.html'}")
        except OutputError as problem:
            click.echo(f"note: no report of the failed build was written: {problem.problems[0].message}")
        raise


def _build(*args, **kwargs) -> int:
    """``_build_steps``; whatever it started beside itself (``_early_core``) stops with it."""
    from contextlib import ExitStack

    with ExitStack() as cleanup:
        return _build_steps(*args, cleanup=cleanup, **kwargs)


def _early_core(wanted: bool):
    """For a full build from raw forms that is validated, with the default serial executor: a
    child forked now (this process is still small) that evaluates the CORE rules on the SDTM
    files as soon as they are written, beside the ADaM derivation and what follows it
    (``CoreEvaluation.waiting``); None otherwise."""
    from .executor import current

    if not wanted or current().parallel:
        return None
    from cdisc.validation.core_bridge import CoreEvaluation

    return CoreEvaluation.waiting()


def _build_steps(specs_dir: Path, raw_dir: Path, out_dir: Path, fmts: set[str], fail_on: str,
                 no_validate: bool, engine: str = "native", delivered: bool = False, *, full: bool = False,
                 select: str | None = None, summary: dict | None = None, review_report: bool = True,
                 cleanup=None) -> int:
    """Build, write into a staging folder beside --out, validate there, then decide where it goes.

    1. the output folder is checked first (cdisc.outdir): never raw/, specs/, the study
       folder or a folder with files cdisc did not write;
    2. the inputs are hashed and compared with the build graph OUT/manifest.json records
       (cdisc.graph.plan_build): nothing changed -> say so, touch nothing, exit 0; some nodes
       changed -> rebuild those and their dependants (``--select``: the selection), keep the
       other datasets (copied byte for byte from OUT into the staging folder);
    3. mapping and derivation errors stop here: nothing is written, --out is untouched;
    4. datasets (and Dataset-JSON) are written and validated in the staging folder;
    5. validation passed (or --no-validate): the staging folder replaces --out; it failed:
       it goes to OUT.failed and the earlier build in --out stays as it was.
    """
    from .errors import InputError
    from .graph import ancestors, input_hashes, make_record, node_of_dataset, parse_select, plan_build
    from .outdir import OutputFolder
    from .progress import Progress

    t0 = time.perf_counter()
    summary = {} if summary is None else summary
    progress = Progress()
    staged = OutputFolder(out_dir, kind="build", protected=_protected(specs_dir, raw_dir, delivered=delivered))
    _check_links(specs_dir, raw_dir)
    raw_label = "sdtm" if delivered else "raw"
    options = {"formats": sorted(fmts), "validate": not no_validate, "review_report": review_report,
               "fail_on": fail_on, "engine": engine,
               "source": raw_label}
    hashes = input_hashes(specs_dir, raw_dir, raw_label)
    plan = plan_build(staged.real, hashes, options, full=full)
    summary.update(mode=plan.mode, reason=plan.reason, changed=plan.changed)
    rebuild: set[str] | None = None          # None: every node
    stale: set[str] = set()                  # --select: changed nodes kept out of date
    if select:
        if plan.previous is None or plan.mode == "full" or delivered:
            why = "a build from delivered SDTM is always built whole" if delivered else plan.reason
            raise InputError(f"--select {select}: needs an earlier build in {out_dir} whose inputs outside the "
                             f"selection are unchanged, but {why}",
                             hint="run `cdisc build` without --select (it rebuilds only what changed)")
        try:
            rebuild = parse_select(select, plan.nodes)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        upstream = (ancestors(plan.nodes, rebuild) - rebuild) & plan.dirty
        if upstream:
            names = ", ".join(sorted(upstream))
            roots = sorted(n for n in upstream if not set(plan.nodes[n].upstream) & plan.dirty)
            raise InputError(f"--select {select}: {names} changed since the build in {out_dir} "
                             f"({', '.join(plan.changed[:5]) or plan.reason}) "
                             f"and {'is' if len(upstream) == 1 else 'are'} read by the selection",
                             hint=f"select {'it' if len(upstream) == 1 else 'them'} too (e.g. --select "
                                  f"{','.join(r + '+' for r in roots)}) or run `cdisc build`")
        stale = plan.dirty - rebuild
        plan_line = f"Selected build: {', '.join(sorted(rebuild))}; the other datasets are kept from {out_dir}"
    elif plan.mode == "up_to_date":
        n = len(plan.previous.get("outputs", []))
        verdict = _recorded_verdict(staged.real) if not no_validate else "Not validated (--no-validate)"
        click.echo(_header(plan.previous))
        click.echo(f"Nothing changed since the build in {out_dir} (manifest {Path(out_dir) / 'manifest.json'}, "
                   f"{n} datasets, {len(hashes)} input files): up to date ({time.perf_counter() - t0:.2f} s)")
        if verdict:
            click.echo(verdict)
        summary.update(verdict=verdict or "up to date", rebuilt=[], kept=sorted(plan.nodes),
                       datasets=[{"dataset": o["dataset"], "standard": o["standard"], "records": o["records"],
                                  "variables": o["variables"], "status": "kept"} for o in plan.previous["outputs"]],
                       timings={"total": round(time.perf_counter() - t0, 3)})
        return 0
    elif plan.mode == "incremental":
        rebuild = set(plan.dirty)
        plan_line = (f"Incremental build: {plan.reason}; rebuilding "
                     f"{', '.join(sorted(rebuild)) or 'no dataset'} ({len(rebuild)} of {len(plan.nodes)}), "
                     "keeping the rest" + ("; validating the whole folder" if not no_validate else ""))
    else:
        plan_line = f"Full build ({plan.reason})"

    def started(res) -> None:            # the header, then what this build does, then progress
        click.echo(_header({"studyid": res.study.studyid, "data_cut": res.study.data_cut.isoformat(),
                            "ct_package": res.ct.package}))
        click.echo(plan_line)

    from cdisc.adam.build import add_adam

    from .pipeline import GraphMismatch, build_from_sdtm, build_sdtm, write_outputs, write_sdtm_first
    from .review import write_review_report, write_trace
    from .runtime import use_python_strings

    use_python_strings()
    old_graph = plan.nodes

    def report(stage, name, records, seconds):
        node = node_of_dataset(name, old_graph)
        if rebuild is not None and records is not None and node not in rebuild:
            progress.kept(stage, name, records)
        else:
            progress(stage, name, records, seconds)

    early_core = _early_core(rebuild is None and not delivered and not no_validate and cleanup is not None)
    if early_core is not None:
        cleanup.callback(early_core.cancel)
    result = (build_from_sdtm(specs_dir, raw_dir, on_start=started) if delivered else
              build_sdtm(specs_dir, raw_dir, progress=report, on_start=started))
    progress.stage("sdtm", result.timings.get("sdtm_total", 0.0),
                   f"{sum(ds.standard == 'SDTM' for ds in result.datasets.values())} SDTM datasets")
    mismatch = None
    with staged:
        sdtm_files = None                    # the SDTM files, written before ADaM for the CORE child
        if early_core is not None:
            sdtm_files = write_sdtm_first(result, staged.path)
            if sdtm_files is not None and not sdtm_files.broken and early_core.worth_it(sdtm_files.outputs):
                early_core.go(staged.path, sdtm_files.files)
            else:                                # validation starts its CORE child as for any folder
                early_core.cancel()
                early_core = None
        t = time.perf_counter()
        only = None if rebuild is None else {n for n in rebuild if n in old_graph and old_graph[n].kind == "adam"}
        previous_notes = ({n: v.get("notes", []) for n, v in plan.previous["build"]["nodes"].items()}
                          if rebuild is not None else None)
        add_adam(result, specs_dir, only=only, progress=report, previous_notes=previous_notes)
        adam_seconds = time.perf_counter() - t
        keep_fps: dict[str, str] = {}
        if rebuild is not None:
            previous = {o["dataset"]: o for o in plan.previous.get("outputs", [])}
            for name, ds in result.datasets.items():
                if node_of_dataset(name, old_graph) in rebuild:
                    continue
                entry = previous.get(name)
                if ds.standard == "SDTM" and (entry is None or entry["records"] != len(ds.data)):
                    continue                      # mapped again just now: written from memory
                if entry is None:
                    raise InputError(f"{name} is not in the build in {out_dir} and was not rebuilt",
                                     hint="run `cdisc build --full`")
                ds.kept = entry
                if ds.standard == "ADaM":
                    progress.kept("adam", name, entry["records"])
            recorded = plan.previous["build"]["nodes"]
            keep_fps = {n: recorded[n]["fingerprint"] for n in stale if n in recorded}
        if result.timings.get("adam_total") is not None:
            adam = [ds for ds in result.datasets.values() if ds.standard == "ADaM"]
            progress.stage("adam", adam_seconds, f"{sum(ds.kept is None for ds in adam)} ADaM datasets derived"
                                                  + (f", {sum(ds.kept is not None for ds in adam)} kept" if rebuild is not None else ""))
        record = make_record(result.nodes, hashes, set(result.unmapped_forms), options, raw_label, keep=keep_fps,
                             notes=result.node_notes)
        for note in result.notes:
            click.echo(f"note: {note}")
        rebuilt = sorted(result.nodes if rebuild is None else rebuild)
        summary.update(rebuilt=rebuilt, kept=sorted(set(result.nodes) - set(rebuilt)), out_of_date=sorted(stale))
        t = time.perf_counter() - (sdtm_files.seconds if sdtm_files is not None else 0.0)
        try:
            manifest = write_outputs(result, staged.path, specs_dir=specs_dir, raw_dir=raw_dir,
                                     previous_dir=staged.real, record=record, hashes=hashes, written=sdtm_files)
        except GraphMismatch as exc:
            mismatch = exc.dataset
        if mismatch is None:
            write_trace(result, staged.path)
            kept = sum(ds.kept is not None for ds in result.datasets.values())
            progress.stage("write", time.perf_counter() - t, f"{len(manifest['outputs']) - kept} datasets written, "
                                                            f"{kept} kept")
            progress.finish()
            _print_summary(manifest, out_dir, time.perf_counter() - t0, header=False)
            if "json" in fmts:
                from .package import write_json_datasets

                written = write_json_datasets(staged.path, specs_dir)
                click.echo(f"Wrote {len(written)} Dataset-JSON v1.1 files next to the XPT files")
            code = 0
            if stale:
                click.echo(f"Out of date (changed, not selected, kept as they were): {', '.join(sorted(stale))}; "
                           "a plain `cdisc build` rebuilds them")
            t = time.perf_counter()
            _release_frames(result)
            if not no_validate:
                code = _validate(staged.path, specs_dir, fail_on, staged=True, engine=engine, early_core=early_core)
            if review_report:
                write_review_report(staged.path)
            t_validate = time.perf_counter() - t
            verdict = _recorded_verdict(staged.path) if not no_validate else "Not validated (--no-validate)"
            summary.update(verdict=verdict, datasets=_dataset_rows(manifest, progress.rows, result),
                           timings={**{k: round(v, 3) for k, v in result.timings.items()},
                                    "validation": round(t_validate, 3), "total": round(time.perf_counter() - t0, 3)})
            if code == 0:
                staged.commit()
                if review_report:
                    click.echo(f"Review report: {Path(out_dir) / 'report.html'}")
                if not no_validate:
                    click.echo(f"Report: {Path(out_dir) / 'validation' / 'report.html'}")
                if staged.removed_failed is not None:
                    click.echo(f"Removed the failed build of an earlier run ({staged.removed_failed})")
            else:
                earlier = Path(out_dir).exists()
                failed = staged.commit_failed()
                summary["failed_build"] = str(failed)
                if review_report:
                    click.echo(f"Review report: {failed / 'report.html'}")
                click.echo(f"Report: {failed / 'validation' / 'report.html'}")
                click.echo(f"cdisc: the build failed validation, so it was written to {failed}; {out_dir} "
                           f"{'still holds the earlier build' if earlier else 'was not created'}", err=True)
            return code
    # conservative: a kept dataset that is not what OUT holds means an input the graph does not know;
    # the staging folder is gone, OUT untouched; everything is built again
    click.echo(f"note: {mismatch} differs from the build in {out_dir} although none of its recorded inputs "
               "changed; building everything")
    return _build(specs_dir, raw_dir, out_dir, fmts, fail_on, no_validate, engine, delivered, full=True,
                  summary=summary, review_report=review_report)


def _recorded_verdict(folder: Path) -> str | None:
    """The verdict line validation wrote into ``folder``/validation/results.json, if any."""
    import json

    try:
        return json.loads((Path(folder) / "validation" / "results.json").read_text(encoding="utf-8")).get("verdict")
    except (OSError, ValueError):
        return None


def _release_frames(result) -> None:
    """The datasets are written: validation and the review report read them back from the files
    (what is submitted is what is checked), so the build's frames and traces are let go before
    them. Collected now: the command runs with the cyclic collector paused (cdisc/gcpause.py),
    and at 10,000 subjects the frames are gigabytes the validation would otherwise sit beside."""
    import gc

    from .runtime import give_back_freed_memory

    for ds in result.datasets.values():
        ds.data, ds.trace = None, None
    gc.collect()
    give_back_freed_memory()


def _dataset_rows(manifest: dict, rows: list[dict], result) -> list[dict]:
    """--json: per output dataset its records, variables, built or kept, and seconds."""
    seconds = {r["dataset"]: r["seconds"] for r in rows if r["dataset"]}
    return [{"dataset": o["dataset"], "standard": o["standard"], "file": o["file"], "records": o["records"],
             "variables": o["variables"],
             "status": "kept" if result.datasets[o["dataset"]].kept is not None else "built",
             "seconds": seconds.get(o["dataset"])} for o in manifest["outputs"]]


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--studyid", default=None, help="STUDYID of the new study (default: the folder's name, upper case).")
@debug_option
def init(folder: Path, studyid: str | None, debug: bool) -> None:
    """Start a study: write a minimal study folder that builds (study.yaml, a DM spec, a sponsor
    CT file, an empty waiver list, an example raw DM form, a README). FOLDER must be new or empty."""
    from .init import init_study

    try:
        written = _run(debug, init_study, folder, studyid)
    except _Abort as a:
        sys.exit(a.code)
    for p in written:
        click.echo(f"wrote {p}")
    click.echo(f"Next: cdisc build --study {folder}")


@main.command()
@click.argument("path", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The folder to validate (another way to give PATH; default: build).")
@click.option("--specs", "specs_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Study spec folder: its CT, rule parameters and waivers (specs/waivers.yaml). Default: "
                   "for a cdisc build the study context it recorded (study.json); for any other folder "
                   "none, so it is checked against the standard alone.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where results.json, report.html and the suites go. Default: PATH/validation for a "
                   "cdisc build, PATH.validation beside any other folder (never inside it).")
@fail_on_option
@engine_option
@debug_option
def validate(path: Path | None, out_dir: Path | None, specs_dir: Path | None, report_dir: Path | None, fail_on: str,
             debug: bool, engine: str = "native") -> None:
    """Validate a folder of SDTM/ADaM datasets as it is on disk: a cdisc build or any delivery.

    PATH is a cdisc build folder (its sdtm/ and adam/ XPT files, checked against the
    metadata the build recorded and the standard) or any folder of XPT or Dataset-JSON files
    (a CRO delivery, the CDISC pilot: checked against SDTMIG 3.4 / ADaMIG 1.3 and the newest
    CDISC CT; split datasets such as LBCH/LBHE are one domain). Writes results.json,
    report.html and the expectation suites. Exit 1 when an error (or, with --fail-on warning,
    a warning) remains; 2 for an unreadable folder.
    """
    target = path or out_dir
    if target is None:          # the build of the study in the current folder (cdisc.yaml may name it)
        from .errors import InputError
        from .project import resolve_study

        try:
            target = resolve_study(None, inputs_required=False).out
        except InputError:
            target = Path("build")
    try:
        if not Path(target).is_dir():
            click.echo(f"cdisc: usage error: folder {target} does not exist"
                       + ("; run `cdisc build` first" if path is None else ""), err=True)
            raise _Abort(2)
        code = _run(debug, _validate_any, Path(target), specs_dir, report_dir, fail_on, engine)
        if code:
            raise _Abort(code)
    except _Abort as a:
        sys.exit(a.code)


def _validate_any(folder: Path, specs_dir: Path | None, report_dir: Path | None, fail_on: str, engine: str) -> int:
    """`cdisc validate`: a build of ours reports into its validation/ folder; any other folder
    into a report folder beside it (cdisc never writes into a delivery it did not make)."""
    from .outdir import OutputFolder, add_to_marker, read_marker
    from .specio import links_outside

    ours = read_marker(folder) is not None and (folder / "metadata.json").is_file()
    if specs_dir is not None:
        problems = links_outside(specs_dir, what="specs")
        if problems:
            from .errors import InputError

            raise InputError(problems)
    if ours and report_dir is None:
        result = _run_validation(folder, specs_dir, folder / "validation", fail_on, engine)
        add_to_marker(folder, "validation/")
        if (folder / "manifest.json").is_file():     # the review report follows the new findings
            from .review import write_review_report

            write_review_report(folder)
            add_to_marker(folder, "report.html")
        _print_validation(result, fail_on, folder / "validation" / "report.html")
        return result.exit_code(fail_on)
    report = Path(report_dir) if report_dir is not None else folder.with_name(folder.name + ".validation")
    staged = OutputFolder(report, kind="validation", protected={"validated folder": folder}, option="--report")
    with staged:
        result = _run_validation(folder, specs_dir, staged.path, fail_on, engine)
        staged.commit()
    _print_validation(result, fail_on, report / "report.html")
    return result.exit_code(fail_on)


@main.command()
@click.option("--study", "study_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=STUDY_HELP)
@click.option("--build", "build_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build folder to package; built (and validated) first when missing. Default: the study's build/.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Package folder: m5/datasets/<studyid>/tabulations/sdtm, .../analysis/adam/datasets, manifest.json.")
@click.option("--specs", "specs_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Study spec folder. Default: the study folder's specs/.")
@click.option("--raw", "raw_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Raw exports, used only when the build has to be made first. Default: raw/ beside the specs.")
@click.option("--allow-errors", is_flag=True,
              help="Package even when validation found errors (recorded in manifest.json).")
@click.option("--agency", default=None, metavar="NAME",
              help="Target agency of specs/study.yaml submission.agencies (its split limit and split "
                   "variables). Default: submission.agency (FDA: 5 GB, TCG §3.3.2).")
@click.option("--split-limit", default=None, metavar="SIZE",
              help="Size above which a dataset is also split (e.g. 5 GB, 100 MB or bytes); overrides "
                   "the agency's.")
@debug_option
def package(study_dir: Path | None, build_dir: Path | None, out_dir: Path, specs_dir: Path | None,
            raw_dir: Path | None, allow_errors: bool, split_limit: str | None, debug: bool,
            agency: str | None = None) -> None:
    """Package a build as the datasets folder of an eCTD module 5 submission.

    Copies the SDTM and ADaM XPT files (and Dataset-JSON when built with --format
    xpt,json), writes define.xml 2.1 for SDTM and ADaM with the Define-XML stylesheet,
    the validation report, and manifest.json with the SHA-256 and size of every file.
    Refuses when validation found errors, unless --allow-errors. Packaging the same
    build twice gives identical bytes; `cdisc verify --out DIR` re-checks the checksums.
    """
    from .project import resolve_study
    from .study import parse_size

    try:
        limit = parse_size(split_limit) if split_limit is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--split-limit") from None
    try:
        paths = _run(debug, resolve_study, study_dir, specs=specs_dir, raw=raw_dir, out=build_dir,
                     inputs_required=False)
        click.echo(paths.describe().replace(", output ", ", build "))
        _SPECS_SHOWN["dir"] = paths.specs
        specs_dir, build_dir = paths.specs, paths.out
        raw_dir = paths.raw
        from .outdir import check_output

        protected = _protected(specs_dir, paths.inputs, build_dir, delivered=paths.sdtm is not None)
        _run(debug, check_output, out_dir, kind="package", protected=protected)
        _run(debug, _check_links, specs_dir)
        if not Path(build_dir).is_dir():
            click.echo(f"Build folder {build_dir} is missing: building it first")
            ctx = click.get_current_context()
            try:
                ctx.invoke(build, study_dir=None, example=False, specs_dir=specs_dir, raw_dir=raw_dir,
                           sdtm_dir=paths.sdtm, out_dir=build_dir, formats="xpt", fail_on="error",
                           no_validate=False, debug=debug)
            except SystemExit as exc:
                if exc.code and not allow_errors:
                    raise _Abort(int(exc.code)) from None
                failed = Path(str(build_dir) + ".failed")
                if exc.code and not Path(build_dir).is_dir() and failed.is_dir():
                    build_dir = failed
        from .package import package as make_package

        manifest = _run(debug, make_package, build_dir, out_dir, specs_dir, allow_errors=allow_errors,
                        split_limit_bytes=limit, agency=agency, protected=protected)
        files = manifest.get("files", [])
        click.echo(f"Packaged {len(files)} files into {out_dir} (manifest: {Path(out_dir) / 'manifest.json'})")
    except _Abort as a:
        sys.exit(a.code)


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A package folder written by `cdisc package`.")
@debug_option
def verify(out_dir: Path, debug: bool) -> None:
    """Re-hash every file of a package against its manifest.json (changed, missing or extra files)."""
    try:
        from .package import verify_package

        problems = _run(debug, verify_package, out_dir)
        if problems:
            click.echo(f"cdisc: package does not match its manifest ({len(problems)}):", err=True)
            for p in problems:
                click.echo(str(p), err=True)
            raise _Abort(1)
        click.echo(f"{out_dir}: every file matches manifest.json")
    except _Abort as a:
        sys.exit(a.code)


@main.command()
@click.argument("old", type=click.Path(file_okay=False, path_type=Path))
@click.argument("new", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dataset", "datasets", multiple=True,
              help="Compare only this dataset (repeat, or comma-separated: --dataset AE,ADAE). Default: all.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the differences as one self-contained HTML page (never inside OLD or NEW).")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON (for scripts) instead of text.")
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True,
              help="Changed, added and removed records listed per dataset in the terminal.")
@click.option("--html-limit", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Rows per table in the HTML page (--json always holds all).")
@click.option("--fail-on-change", is_flag=True, help="Exit 1 when anything differs (default: 0 either way).")
@debug_option
def diff(old: Path, new: Path, datasets: tuple[str, ...], html_file: Path | None, as_json: bool, limit: int,
         html_limit: int, fail_on_change: bool, debug: bool) -> None:
    """Compare two builds (two data cuts): what was added, removed and changed, dataset by dataset.

    OLD and NEW are `cdisc build` folders (records matched by the keys in their
    metadata.json) or any folders of XPT / Dataset-JSON / sas7bdat / parquet datasets.
    Prints one line per dataset (records added, removed, changed; variables added,
    removed or changed), then up to --limit records per dataset with the changed values.
    Reads OLD and NEW only. Exit 0 (also when they differ; --fail-on-change: 1), 2 for an
    unreadable folder.
    """
    import json as _json

    from . import diff as _diff

    try:
        for p, what in ((old, "OLD"), (new, "NEW")):
            if not Path(p).is_dir():
                click.echo(f"cdisc: usage error: {what} folder {p} does not exist", err=True)
                raise _Abort(2)
        names = [n for d in datasets for n in d.split(",") if n.strip()]
        if html_file is not None:
            _run(debug, _diff.check_html_target, html_file, old, new)
        result = _run(debug, _diff.diff_folders, old, new, names or None)
        if html_file is not None:
            _run(debug, _diff.write_html, result, html_file, html_limit)
        if as_json:
            click.echo(_json.dumps(_diff.to_json(result), indent=1, ensure_ascii=False))
        else:
            click.echo(_diff.render_text(result, limit), nl=False)
            if html_file is not None:
                click.echo(f"\nReport: {html_file}")
        if fail_on_change and result.has_changes:
            raise _Abort(1)
    except _Abort as a:
        sys.exit(a.code)


def _study_rules(rules: list, path: Path) -> list:
    """Apply specs/validation.yaml (and study.yaml's data cut) to the rule catalogue."""
    from cdisc.validation.rules import apply_study_params

    from .specio import load_yaml
    from .study import load_study

    cut = load_study(path.parent).data_cut.isoformat() if (path.parent / "study.yaml").is_file() else None
    data = (load_yaml(path) or {}) if path.is_file() else {}
    return apply_study_params(rules, data.get("rules"), data_cut=cut)


def _run_validation(folder: Path, specs_dir: Path | None, report_dir: Path, fail_on: str, engine: str,
                    early_core=None):
    from cdisc.validation import validate_folder

    t0 = time.perf_counter()
    result = validate_folder(folder, specs_dir=specs_dir, report_dir=report_dir, fail_on=fail_on, engine=engine,
                             early_core=early_core)
    result.timings["wall"] = time.perf_counter() - t0
    return result


def _print_validation(result, fail_on: str, report: Path | None) -> None:
    src = result.source or {}
    click.echo("")
    if src and not src.get("build"):
        click.echo(f"Validated {len(src.get('files', {}))} datasets of {src.get('folder')} against SDTMIG 3.4 / "
                   f"ADaMIG 1.3 and {src.get('ct')}" + (f" with the specs in {src['specs']}" if src.get("specs") else ""))
    click.echo(f"Validation: {len(result.errors)} errors, {len(result.warnings)} warnings, "
               f"{len(result.notices)} notices, {len(result.waived)} waived "
               f"({result.timings.get('wall', 0.0):.1f} s)")
    by_rule: dict[tuple[str, str], int] = {}
    for f in result.findings:
        by_rule[(f.severity, f.rule)] = by_rule.get((f.severity, f.rule), 0) + 1
    for (sev, rule), n in sorted(by_rule.items()):
        click.echo(f"  {sev:<8} {rule:<14} {n:>6}")
    click.echo(f"{result.verdict}")
    if report is not None:
        click.echo(f"Report: {report}")


def _validate(out_dir: Path, specs_dir: Path, fail_on: str, staged: bool = False, engine: str = "native",
              early_core=None) -> int:
    """Validate a build in its (staging) folder with its specs; the caller prints the report path.
    ``early_core``: the CORE rules the build started on its SDTM files (``_early_core``)."""
    from .outdir import add_to_marker

    result = _run_validation(out_dir, specs_dir, Path(out_dir) / "validation", fail_on, engine,
                             early_core=early_core)
    add_to_marker(out_dir, "validation/")
    _print_validation(result, fail_on, None if staged else Path(out_dir) / "validation" / "report.html")
    return result.exit_code(fail_on)


def _header(manifest: dict) -> str:
    return f"Study {manifest['studyid']} (data cut {manifest['data_cut']}), CT: {manifest['ct_package']}"


def _print_summary(manifest: dict, out_dir: Path, seconds: float, header: bool = True) -> None:
    """The datasets table and the reconciliation of raw rows and columns (after the progress lines;
    ``header``: the study line too, when the caller has not printed it before them)."""
    if header:
        click.echo(_header(manifest))
    click.echo("")
    click.echo(f"{'dataset':<10}{'records':>9}{'vars':>6}  file")
    delivered = manifest.get("sdtm_source") == "delivered"
    for o in manifest["outputs"]:
        if not (delivered and o["standard"] == "SDTM"):
            click.echo(f"{o['dataset']:<10}{o['records']:>9}{o['variables']:>6}  {out_dir / o['file']}")
    click.echo("")
    if delivered:
        click.echo("Delivered SDTM, read as it is and copied byte for byte (checked by validation):")
        click.echo(f"{'dataset':<10}{'file':<22}{'records':>9}{'vars':>6}")
        for r in manifest["reconciliation"]:
            click.echo(f"{r['dataset']:<10}{r['file']:<22}{r['records']:>9}{r['variables']:>6}")
        click.echo("")
        click.echo(f"Wrote {len(manifest['outputs'])} datasets to {out_dir} in {seconds:.1f} s")
        return
    click.echo("Reconciliation of raw rows (read = mapped + excluded):")
    click.echo(f"{'domain':<8}{'file':<14}{'read':>6}{'mapped':>8}{'records':>9}  excluded")
    for r in manifest["reconciliation"]:
        excl = "; ".join(f"{n} by '{reason}'" for reason, n in r["excluded"].items() if n) or "-"
        click.echo(f"{r['domain']:<8}{r['file']:<14}{r['rows_read']:>6}{r['rows_mapped']:>8}{r['records']:>9}  {excl}")
    for f, reason in manifest["unmapped_forms"].items():
        click.echo(f"not mapped: {f} ({reason})")
    if manifest.get("columns"):
        click.echo("")
        click.echo("Reconciliation of raw columns (columns = read + not mapped, reasons in study.yaml):")
        click.echo(f"{'file':<14}{'columns':>8}{'read':>6}{'not mapped':>12}")
        for c in manifest["columns"]:
            click.echo(f"{c['file']:<14}{c['columns']:>8}{len(c['read']):>6}{len(c['not_mapped']):>12}")
    click.echo("")
    click.echo(f"Wrote {len(manifest['outputs'])} datasets to {out_dir} in {seconds:.1f} s")


class _DefaultGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, goes to ``default``:
    ``cdisc findings build --xlsx f.xlsx`` is ``cdisc findings export build --xlsx f.xlsx``."""

    default = "export"

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@main.group(cls=_DefaultGroup)
def findings() -> None:
    """Validation findings as an Excel workbook (Pinnacle 21 shape) and back as waivers.

    `cdisc findings PATH --xlsx FILE` writes the workbook; `cdisc findings import FILE
    --waivers specs/waivers.yaml` turns the explained Details rows into waivers.
    """


@findings.command("export")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--xlsx", "xlsx", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The workbook to write (Dataset Summary, Issue Summary, Details, Waived).")
@debug_option
def findings_export(path: Path, xlsx: Path, debug: bool) -> None:
    """Write the findings of PATH (a build folder or a results.json) as a workbook.

    Details has one row per finding and an empty Explanation column: fill it in for the
    findings that are acceptable and read them back with `cdisc findings import`. The same
    results give the same bytes (timestamps are the build's data cut).
    """
    from .excel.findings import write_findings

    try:
        t0 = time.perf_counter()
        info = _run(debug, write_findings, path, xlsx)
        click.echo(f"Wrote {xlsx}: {info['findings']} findings, {info['waived']} waived, from {info['results']} "
                   f"({info['bytes']:,} bytes, {time.perf_counter() - t0:.2f} s)")
    except _Abort as a:
        sys.exit(a.code)


@findings.command("import")
@click.argument("xlsx", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--waivers", "waivers_file", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("specs/waivers.yaml"), show_default=True, help="The waivers file to add to.")
@click.option("--write", is_flag=True, help="Append the new waivers to the file (default: only show them).")
@debug_option
def findings_import(xlsx: Path, waivers_file: Path, write: bool, debug: bool) -> None:
    """Turn every Details row with an Explanation into a waiver (rule, dataset, subject,
    variable, reason = the explanation, approved_by = the "Approved by" column).

    A dry run by default: prints the YAML it would append. With --write the entries are
    appended to the file as text (its comments stay); a waiver for the same rule, dataset,
    subject and variable as one already there is refused.
    """
    from .excel.findings import append_waivers, plan_waivers, render_waivers, waivers_from_workbook

    try:
        new = _run(debug, waivers_from_workbook, xlsx)
        add, skipped = _run(debug, plan_waivers, new, waivers_file)
        for w, why in skipped:
            click.echo(f"skipped: {w['rule']} {w['dataset']} {w.get('usubjid') or ''} {w.get('variable') or ''}"
                       f" ({why})".replace("  ", " "))
        if not add:
            click.echo(f"No new waivers ({len(new)} explained rows in {xlsx})")
            return
        click.echo(f"{'Adding' if write else 'Would add'} {len(add)} waiver{'s' if len(add) != 1 else ''} "
                   f"to {waivers_file}:")
        click.echo(render_waivers(add, 2).rstrip("\n"))
        if write:
            _run(debug, append_waivers, waivers_file, add)
            click.echo(f"Wrote {waivers_file}")
        else:
            click.echo("(dry run: add --write to append them)")
    except _Abort as a:
        sys.exit(a.code)


@main.group()
def spec() -> None:
    """A study's YAML specs as an Excel workbook and back; JSON Schemas for editors."""


@spec.command("export")
@click.option("--specs", "specs_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Study spec folder. Default: the shipped study's specs/.")
@click.option("--xlsx", "xlsx", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The workbook to write.")
@debug_option
def spec_export(specs_dir: Path | None, xlsx: Path, debug: bool) -> None:
    """Write every spec of a study (study.yaml, sdtm/, adam/, ct/study-ct.yaml, trial_design.yaml,
    pp.yaml, validation.yaml, waivers.yaml) into one workbook: a sheet per dataset with a row
    per variable, Datasets, Steps, Parameters, Codelists, Synonyms, Study, Arms, Visits, ...

    The workbook is read back before it is written: every spec must load into a model equal
    to the one it came from (YAML comments are not carried).
    """
    from .excel.specs import export_specs
    from .project import resolve_study

    try:
        if specs_dir is None:
            specs_dir = _run(debug, resolve_study, None, inputs_required=False).specs
        t0 = time.perf_counter()
        info = _run(debug, export_specs, specs_dir, xlsx)
        click.echo(f"Wrote {xlsx}: {len(info['files'])} spec files of {specs_dir} in {info['sheets']} sheets "
                   f"({info['bytes']:,} bytes, {time.perf_counter() - t0:.2f} s)")
        for rel in info["skipped"]:
            click.echo(f"not a spec file, not in the workbook: {rel}")
    except _Abort as a:
        sys.exit(a.code)


@spec.command("import")
@click.argument("xlsx", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--specs", "specs_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The spec folder to write (new or empty, unless --force).")
@click.option("--force", is_flag=True, help="Write into a spec folder that already has files: the specs that "
                                            "changed are rewritten, the others and other files stay as they are.")
@debug_option
def spec_import(xlsx: Path, specs_dir: Path, force: bool, debug: bool) -> None:
    """Write the YAML specs a workbook holds (as made by `cdisc spec export`, then edited).

    Every spec is validated before anything is written; the YAML written is checked to load
    back to the same models. Writes only inside --specs.
    """
    from .excel.specs import import_specs

    try:
        t0 = time.perf_counter()
        info = _run(debug, import_specs, xlsx, specs_dir, force=force)
        click.echo(f"Wrote {len(info['written'])} spec files into {specs_dir}"
                   + (f"; {len(info['unchanged'])} unchanged, left as they were" if info["unchanged"] else "")
                   + f" ({time.perf_counter() - t0:.2f} s)")
        for rel in info["written"]:
            click.echo(f"  wrote {rel}")
        for rel in info["kept"]:
            click.echo(f"  not in the workbook, kept as it is: {rel}")
    except _Abort as a:
        sys.exit(a.code)


@spec.command("schemas")
@click.option("--specs", "specs_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Study spec folder whose files get the schema line.")
@debug_option
def spec_schemas(specs_dir: Path, debug: bool) -> None:
    """Point every spec file of a folder at its JSON Schema (shipped with cdisc): make its first
    line `# yaml-language-server: $schema=<relative path>`, so editors validate and complete it.
    Nothing else in the files changes."""
    from .excel.schemas import add_modeline, kind_of

    try:
        if not specs_dir.is_dir():
            click.echo(f"cdisc: usage error: folder {specs_dir} does not exist", err=True)
            raise _Abort(2)
        n = 0
        for p in sorted(specs_dir.rglob("*.yaml")):
            if kind_of(p.relative_to(specs_dir).as_posix()) and _run(debug, add_modeline, p, specs_dir):
                n += 1
        click.echo(f"{n} spec files of {specs_dir} now name their schema")
    except _Abort as a:
        sys.exit(a.code)


# Commands kept in their own modules, which import this one: registered on the group of the
# module cdisc.cli (`python -m cdisc.cli` runs that module's group, below).
if __name__ != "__main__":
    from .cli_build_all import build_all as _build_all  # noqa: E402
    from .cli_pool import pool as _pool  # noqa: E402

    main.add_command(_build_all)
    main.add_command(_pool)

if __name__ == "__main__":  # pragma: no cover
    from cdisc.cli import main as _main

    _main()
