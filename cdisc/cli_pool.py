"""`cdisc pool OUT STUDY_BUILD... [--spec pool.yaml]`: the integrated database of several built
studies (cdisc.pooling has the rules). Registered on the `cdisc` group at the end of cdisc/cli.py."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli import _Abort, _run, debug_option, fail_on_option


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.argument("builds", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="pool.yaml: the study build folders (relative to it) and harmonisation rules "
                   "(ct, recodes, shared_subjects, labels, characters, poolid).")
@click.option("--no-validate", is_flag=True, help="Skip validating the pooled datasets.")
@fail_on_option
@debug_option
def pool(out: Path, builds: tuple[Path, ...], spec_path: Path | None, no_validate: bool, fail_on: str,
         debug: bool) -> None:
    """Pool the SDTM and ADaM of built studies (folders of `cdisc build`) into OUT: STUDYID kept,
    USUBJID checked unique across studies, variables joined, CT and units harmonised, records
    counted in and out (manifest.json), then validated as a build (OUT/validation/).

    Exit codes: 0 pooled and ready, 1 data errors (type conflicts, USUBJID collisions,
    validation errors: written to OUT.failed), 2 bad input or usage."""
    from .pool_run import run_pool

    try:
        res = _run(debug, run_pool, out, list(builds), spec_path, validate=not no_validate, fail_on=fail_on,
                   echo=click.echo)
        if res.exit_code:
            click.echo(f"cdisc: the pooled data failed validation, so it was written to {res.folder}", err=True)
        sys.exit(res.exit_code)
    except _Abort as a:
        sys.exit(a.code)
