"""Command line: `cdisc build`, `cdisc validate`, `cdisc package`.

Exit codes: 0 success; 1 the data has errors; 2 bad usage, bad spec or unreadable input.
Errors print as one readable message (file, row, column, what and how to fix); --debug
adds the traceback.
"""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import click

from .errors import CdiscError


def _default(name: str) -> Path:
    from .build import DEFAULT_RAW, DEFAULT_SPECS

    return {"specs": DEFAULT_SPECS, "raw": DEFAULT_RAW}[name]


class _Abort(Exception):
    def __init__(self, code: int):
        self.code = code


def _run(debug: bool, func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except CdiscError as exc:
        kind = type(exc).__name__.replace("Error", " error").lower()
        n = len(exc.problems)
        click.echo(f"cdisc: {kind}{'s' if n > 1 else ''} ({n}):", err=True)
        click.echo(exc.render(limit=100 if not debug else 10_000), err=True)
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
    .csv, .xlsx, .sas7bdat or .xpt). Without options, every command works on the
    VGO-Cs01p study shipped in this repository.

    Exit codes: 0 success, 1 the data has errors, 2 bad usage, bad spec or unreadable input.
    """


@main.command()
@click.option("--specs", "specs_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Study spec folder (study.yaml, sdtm/, adam/, ct/). Default: the shipped study's specs/.")
@click.option("--raw", "raw_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with the raw CRF exports, one file per form. Default: the shipped raw/.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build"),
              show_default=True, help="Output folder: sdtm/*.xpt, adam/*.xpt, manifest.json, validation/.")
@click.option("--format", "formats", default="xpt", show_default=True,
              help="Comma-separated output formats: xpt, and json (CDISC Dataset-JSON v1.1 next to each XPT).")
@fail_on_option
@engine_option
@click.option("--no-validate", is_flag=True, help="Skip the validation step (not for a data cut or lock).")
@debug_option
def build(specs_dir: Path | None, raw_dir: Path | None, out_dir: Path, formats: str, fail_on: str,
          no_validate: bool, debug: bool, engine: str = "native") -> None:
    """Build SDTM and ADaM datasets from the raw exports, write them as XPT v5, validate them.

    Prints, per dataset, its records and variables, and the reconciliation of raw rows:
    read, mapped, and excluded by which spec rule. Then validates what it wrote (as
    `cdisc validate` does) into OUT/validation/report.html. An error leaves an earlier
    build in --out untouched.
    """
    specs_dir = specs_dir or _default("specs")
    raw_dir = raw_dir or _default("raw")
    fmts = {f.strip().lower() for f in formats.split(",") if f.strip()}
    try:
        if not fmts <= {"xpt", "json"} or "xpt" not in fmts:
            click.echo(f"cdisc: usage error: --format takes xpt or xpt,json (XPT is always written), "
                       f"not {formats!r}", err=True)
            raise _Abort(2)
        for p, what in ((specs_dir, "--specs"), (raw_dir, "--raw")):
            if not Path(p).is_dir():
                click.echo(f"cdisc: usage error: {what} folder {p} does not exist", err=True)
                raise _Abort(2)
        code = _run(debug, _build, specs_dir, raw_dir, out_dir, fmts, fail_on, no_validate, engine)
        if code:
            raise _Abort(code)
    except _Abort as a:
        sys.exit(a.code)


def _protected(specs_dir: Path, raw_dir: Path | None, build_dir: Path | None = None) -> dict[str, Path]:
    """Folders an output must stay out of: the study's specs, raw exports, their study folder."""
    import os

    folders = {"specs folder": Path(specs_dir)}
    if raw_dir is not None:
        folders["raw folder"] = Path(raw_dir)
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


def _build(specs_dir: Path, raw_dir: Path, out_dir: Path, fmts: set[str], fail_on: str,
           no_validate: bool, engine: str = "native") -> int:
    """Build, write into a staging folder beside --out, validate there, then decide where it goes.

    1. the output folder is checked first (cdisc.outdir): never raw/, specs/, the study
       folder or a folder with files cdisc did not write;
    2. mapping and derivation errors stop here: nothing is written, --out is untouched;
    3. datasets (and Dataset-JSON) are written and validated in the staging folder;
    4. validation passed (or --no-validate): the staging folder replaces --out; it failed:
       it goes to OUT.failed and the earlier build in --out stays as it was.
    """
    from adam.build import add_adam

    from .build import build_sdtm, write_outputs
    from .outdir import OutputFolder

    t0 = time.perf_counter()
    staged = OutputFolder(out_dir, kind="build", protected=_protected(specs_dir, raw_dir))
    _check_links(specs_dir, raw_dir)
    result = build_sdtm(specs_dir, raw_dir)
    add_adam(result, specs_dir)
    with staged:
        manifest = write_outputs(result, staged.path, specs_dir=specs_dir, raw_dir=raw_dir)
        _print_summary(manifest, out_dir, time.perf_counter() - t0)
        if "json" in fmts:
            from .package import write_json_datasets

            written = write_json_datasets(staged.path, specs_dir)
            click.echo(f"Wrote {len(written)} Dataset-JSON v1.1 files next to the XPT files")
        code = 0
        if not no_validate:
            code = _validate(staged.path, specs_dir, fail_on, staged=True, engine=engine)
        if code == 0:
            staged.commit()
            if not no_validate:
                click.echo(f"Report: {Path(out_dir) / 'validation' / 'report.html'}")
            if staged.removed_failed is not None:
                click.echo(f"Removed the failed build of an earlier run ({staged.removed_failed})")
        else:
            earlier = Path(out_dir).exists()
            failed = staged.commit_failed()
            click.echo(f"Report: {failed / 'validation' / 'report.html'}")
            click.echo(f"cdisc: the build failed validation, so it was written to {failed}; {out_dir} "
                       f"{'still holds the earlier build' if earlier else 'was not created'}", err=True)
        return code


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build"),
              show_default=True, help="The build folder to validate (as written by `cdisc build --out`).")
@click.option("--specs", "specs_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Study spec folder (for CT and specs/waivers.yaml). Default: the shipped study's specs/.")
@fail_on_option
@engine_option
@debug_option
def validate(out_dir: Path, specs_dir: Path | None, fail_on: str, debug: bool, engine: str = "native") -> None:
    """Validate a build folder as it is on disk: GE suites, cross-dataset rules, report.

    Reads OUT/sdtm/*.xpt and OUT/adam/*.xpt (so a dataset edited or replaced after the
    build is validated as it now stands) against the metadata the build recorded, and
    writes OUT/validation/results.json, report.html and the GE suites. Waivers come from
    specs/waivers.yaml. Exit 1 when an error (or, with --fail-on warning, a warning) remains.
    """
    specs_dir = specs_dir or _default("specs")
    try:
        if not Path(out_dir).is_dir():
            click.echo(f"cdisc: usage error: --out folder {out_dir} does not exist; run `cdisc build` first",
                       err=True)
            raise _Abort(2)
        code = _run(debug, _validate, out_dir, specs_dir, fail_on, engine=engine)
        if code:
            raise _Abort(code)
    except _Abort as a:
        sys.exit(a.code)


@main.command()
@click.option("--build", "build_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build"),
              show_default=True, help="Build folder to package; built (and validated) first when missing.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Package folder: m5/datasets/<studyid>/tabulations/sdtm, .../analysis/adam/datasets, manifest.json.")
@click.option("--specs", "specs_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Study spec folder. Default: the shipped study's specs/.")
@click.option("--raw", "raw_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Raw exports, used only when the build has to be made first. Default: the shipped raw/.")
@click.option("--allow-errors", is_flag=True,
              help="Package even when validation found errors (recorded in manifest.json).")
@click.option("--split-limit", type=int, default=5 * 1024 ** 3, show_default=True,
              help="Bytes above which a dataset is split (FDA TCG file-size rule).")
@debug_option
def package(build_dir: Path, out_dir: Path, specs_dir: Path | None, raw_dir: Path | None, allow_errors: bool,
            split_limit: int, debug: bool) -> None:
    """Package a build as the datasets folder of an eCTD module 5 submission.

    Copies the SDTM and ADaM XPT files (and Dataset-JSON when built with --format
    xpt,json), writes define.xml 2.1 for SDTM and ADaM with the Define-XML stylesheet,
    the validation report, and manifest.json with the SHA-256 and size of every file.
    Refuses when validation found errors, unless --allow-errors. Packaging the same
    build twice gives identical bytes; `cdisc verify --out DIR` re-checks the checksums.
    """
    specs_dir = specs_dir or _default("specs")
    try:
        from .outdir import check_output

        protected = _protected(specs_dir, raw_dir or _default("raw"), build_dir)
        _run(debug, check_output, out_dir, kind="package", protected=protected)
        _run(debug, _check_links, specs_dir)
        if not Path(build_dir).is_dir():
            click.echo(f"Build folder {build_dir} is missing: building it first")
            ctx = click.get_current_context()
            try:
                ctx.invoke(build, specs_dir=specs_dir, raw_dir=raw_dir, out_dir=build_dir, formats="xpt",
                           fail_on="error", no_validate=False, debug=debug)
            except SystemExit as exc:
                if exc.code and not allow_errors:
                    raise _Abort(int(exc.code)) from None
                failed = Path(str(build_dir) + ".failed")
                if exc.code and not Path(build_dir).is_dir() and failed.is_dir():
                    build_dir = failed
        from .package import package as make_package

        manifest = _run(debug, make_package, build_dir, out_dir, specs_dir, allow_errors=allow_errors,
                        split_limit_bytes=split_limit, protected=protected)
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


def _study_rules(rules: list, path: Path) -> list:
    """Apply specs/validation.yaml: study values for rule parameters (e.g. the study drug's EXTRT).

    Parameters that study.yaml already states are filled from it: ``data_cut``."""
    from .errors import SpecError
    from .specio import load_yaml
    from .study import load_study

    if (path.parent / "study.yaml").is_file():
        cut = load_study(path.parent).data_cut.isoformat()
        rules = [r.model_copy(update={"params": {**r.params, "data_cut": cut}})
                 if "data_cut" in r.params and not r.params["data_cut"] else r for r in rules]

    if not path.is_file():
        return rules
    data = load_yaml(path) or {}
    overrides = data.get("rules") or {}
    by_id = {r.id: r for r in rules}
    for rid, body in overrides.items():
        if rid not in by_id:
            raise SpecError(f"unknown rule {rid}", file="specs/validation.yaml", key=f"rules.{rid}")
        extra = set(body or {}) - {"params"}
        if extra:
            raise SpecError(f"only params can be set, not {sorted(extra)}", file="specs/validation.yaml",
                            key=f"rules.{rid}")
        unknown = set((body or {}).get("params") or {}) - set(by_id[rid].params)
        if unknown:
            raise SpecError(f"rule {rid} has no parameters {sorted(unknown)}", file="specs/validation.yaml",
                            key=f"rules.{rid}.params")
        by_id[rid] = by_id[rid].model_copy(update={"params": {**by_id[rid].params, **body["params"]}})
    return [by_id[r.id] for r in rules]


def _validate(out_dir: Path, specs_dir: Path, fail_on: str, staged: bool = False, engine: str = "native") -> int:
    """Validate the build in ``out_dir``; ``staged``: a staging folder, whose report path the caller prints."""
    from validation import load_rules, load_waivers, read_xpt_dir, validate_datasets

    from .build import load_build_metadata
    from .ct import load_terminology

    from cdisc.standards import load_standard
    from validation.standard import merge_with_standard

    t0 = time.perf_counter()
    metas = load_build_metadata(out_dir)
    ct = load_terminology(specs_dir).as_dict()
    ig, adamig = load_standard("sdtmig", "3.4"), load_standard("adamig", "1.3")
    dirs = [d for d in (Path(out_dir) / "sdtm", Path(out_dir) / "adam") if d.is_dir()]
    rules = _study_rules(load_rules(), Path(specs_dir) / "validation.yaml")
    datasets = read_xpt_dir(*dirs)
    metas = {n: merge_with_standard(n, m, datasets[n].columns if n in datasets else [v.name for v in m.variables],
                                    ct, ig, adamig) for n, m in metas.items()}
    manifest_path = Path(out_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else None
    result = validate_datasets(datasets, metas, ct, rules=rules, build=manifest,
                               waivers=load_waivers(Path(specs_dir) / "waivers.yaml"),
                               out_dir=out_dir, fail_on=fail_on, engine=engine)
    click.echo("")
    click.echo(f"Validation: {len(result.errors)} errors, {len(result.warnings)} warnings, "
               f"{len(result.notices)} notices, {len(result.waived)} waived "
               f"({time.perf_counter() - t0:.1f} s)")
    by_rule: dict[tuple[str, str], int] = {}
    for f in result.findings:
        by_rule[(f.severity, f.rule)] = by_rule.get((f.severity, f.rule), 0) + 1
    for (sev, rule), n in sorted(by_rule.items()):
        click.echo(f"  {sev:<8} {rule:<14} {n:>6}")
    click.echo(f"{result.verdict}")
    from .outdir import add_to_marker

    add_to_marker(out_dir, "validation/")
    if not staged:
        click.echo(f"Report: {Path(out_dir) / 'validation' / 'report.html'}")
    return result.exit_code(fail_on)


def _print_summary(manifest: dict, out_dir: Path, seconds: float) -> None:
    click.echo(f"Study {manifest['studyid']} (data cut {manifest['data_cut']}), CT: {manifest['ct_package']}")
    click.echo("")
    click.echo(f"{'dataset':<10}{'records':>9}{'vars':>6}  file")
    for o in manifest["outputs"]:
        click.echo(f"{o['dataset']:<10}{o['records']:>9}{o['variables']:>6}  {out_dir / o['file']}")
    click.echo("")
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


if __name__ == "__main__":  # pragma: no cover
    main()
