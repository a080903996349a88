"""The Python API: ``cdisc.build``, ``cdisc.validate``, ``cdisc.read``.

The same code paths as the command line (``cdisc build`` / ``cdisc validate``), so a build from
Python writes the same bytes; errors are raised (``cdisc.errors.CdiscError`` subclasses, with
the file, row and column of each problem) instead of printed with an exit code.

    import cdisc
    b = cdisc.build("studies/cdiscpilot01", out="/tmp/pilot", quiet=True)
    b.ready                      # True: validated, no unwaived error
    adsl = b["ADSL"]             # a pandas DataFrame (as the XPT file holds it)
    r = cdisc.validate("/tmp/pilot")
    r.errors, r.warnings         # findings
    ds = cdisc.read("/tmp/pilot")        # any folder of XPT / Dataset-JSON / sas7bdat / parquet
    sorted(ds)                   # ['ADAE', 'ADLBC', ..., 'VS']
    p = cdisc.pool("/tmp/iss", ["build", "/tmp/pilot"], quiet=True)   # integrated database
    p.manifest["records"]        # {'in': n, 'out': n}
"""
from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Datasets", "BuildOutput", "build", "validate", "read", "pool"]


class Datasets(Mapping):
    """The datasets of a folder by name (``AE``, ``ADSL``), each read when first asked for."""

    def __init__(self, files: dict[str, Path]):
        self.files = dict(sorted(files.items()))
        self._frames: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        from .delivered import read_delivered

        key = name.upper()
        if key not in self.files:
            raise KeyError(f"{name}: no such dataset (have: {', '.join(self.files)})")
        if key not in self._frames:
            self._frames[key] = read_delivered(self.files[key]).frame
        return self._frames[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"Datasets({', '.join(self.files)})"


def _dataset_files(folder: Path) -> dict[str, Path]:
    from .delivered import FORMATS

    folder = Path(folder)
    if (folder / "manifest.json").is_file() and (folder / "metadata.json").is_file():
        outputs = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("outputs", [])
        return {o["dataset"]: folder / o["file"] for o in outputs}
    files: dict[str, Path] = {}
    for p in sorted(folder.rglob("*"), key=lambda p: (FORMATS.index(p.suffix.lower()) if p.suffix.lower() in FORMATS
                                                      else 99, p.as_posix())):
        if p.is_file() and p.suffix.lower() in FORMATS and not {"validation", "suites", "split"} & set(p.parts):
            name = p.name.split(".")[0].upper()
            if name in files:
                continue
            if p.suffix.lower() == ".json" and b"datasetJSONVersion" not in p.read_bytes()[:4096]:
                continue
            files[name] = p
    return files


def read(path: str | Path) -> Datasets:
    """Every dataset of a folder: a ``cdisc build`` folder (its manifest's outputs), a package,
    or any folder of XPT, Dataset-JSON, sas7bdat or parquet files (searched below it)."""
    from .errors import InputError

    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path} is not a folder", hint="give a build, package or delivery folder")
    return Datasets(_dataset_files(path))


@dataclass
class BuildOutput:
    """What ``cdisc.build`` made: where, whether it is ready for lock, the manifest and the data."""

    folder: Path                       # OUT, or OUT.failed when validation found errors
    exit_code: int                     # as the command line: 0 ready, 1 validation errors
    manifest: dict = field(repr=False)
    output: str = field(default="", repr=False)      # what the command printed (quiet=True)

    @property
    def ready(self) -> bool:
        return self.exit_code == 0

    @property
    def datasets(self) -> Datasets:
        return read(self.folder)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return self.datasets[name]

    @property
    def findings(self) -> list[dict]:
        p = self.folder / "validation" / "results.json"
        return json.loads(p.read_text(encoding="utf-8"))["findings"] if p.is_file() else []


def build(study: str | Path | None = None, *, specs: str | Path | None = None, raw: str | Path | None = None,
          sdtm: str | Path | None = None, out: str | Path | None = None, validate: bool = True,
          example: bool = False, quiet: bool = False, report: bool = True, executor=None, jobs: int | None = None,
          scheduler: str | None = None) -> BuildOutput:
    """Build a study as ``cdisc build`` does (the study folder rules of ``cdisc.project``).

    ``report=False`` skips the review report's plots (``cdisc build --no-report``).
    ``executor`` ("local", "processes", "dask", or a ``cdisc.executor.Executor`` the caller
    made and closes), ``jobs`` and ``scheduler`` are ``cdisc build --executor/--jobs/--scheduler``;
    the files are the same whichever runs the build (default: serial, in this process).
    Raises the build's errors (``SpecError``, ``DataError``, ``InputError``, ``OutputError``)
    with every problem located; returns a ``BuildOutput`` when datasets were written (also
    when validation found errors: ``ready`` is False and ``folder`` is OUT.failed).
    """
    from .cli import _build
    from .executor import Executor, make_executor, use_executor
    from .gcpause import gc_paused
    from .project import resolve_study
    from .runtime import use_python_strings

    use_python_strings()
    p = resolve_study(Path(study) if study is not None else None, specs=Path(specs) if specs else None,
                      raw=Path(raw) if raw else None, sdtm=Path(sdtm) if sdtm else None,
                      out=Path(out) if out else None, example=example)
    buf = io.StringIO()
    given = isinstance(executor, Executor)          # the caller's: used, not closed here
    chosen = executor if given else make_executor(executor, jobs, scheduler)
    with contextlib.redirect_stdout(buf) if quiet else contextlib.nullcontext(), gc_paused(), \
            use_executor(chosen, close=not given):
        code = _build(p.specs, p.inputs, p.out, {"xpt"}, "error", not validate, "native",
                      delivered=p.sdtm is not None, review_report=report)
    folder = p.out if code == 0 else Path(str(p.out) + ".failed")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return BuildOutput(folder, code, manifest, buf.getvalue())


def validate(path: str | Path, *, specs: str | Path | None = None, report: str | Path | None = None):
    """Validate a folder as ``cdisc validate`` does; returns the ValidationResult (``.findings``,
    ``.errors``, ``.warnings``, ``.waived``, ``.ready_for_lock``). Writes a report only when
    ``report`` names a folder."""
    from .gcpause import gc_paused
    from .runtime import use_python_strings
    from .validation import validate_folder

    use_python_strings()
    with gc_paused():
        return validate_folder(Path(path), specs_dir=Path(specs) if specs else None,
                               report_dir=Path(report) if report else None)


def pool(out: str | Path, builds: list[str | Path] = (), *, spec: str | Path | None = None, validate: bool = True,
         quiet: bool = False):
    """Pool built studies as ``cdisc pool OUT BUILD... [--spec pool.yaml]`` does (cdisc.pool).

    Raises the pooling errors (``InputError``, ``DataError`` with every type conflict or USUBJID
    collision, ``OutputError``); returns a ``cdisc.pool_run.PoolOutput`` (``folder``, ``ready``,
    ``manifest``): OUT, or OUT.failed when validation found errors."""
    from .gcpause import gc_paused
    from .pool_run import run_pool
    from .runtime import use_python_strings

    use_python_strings()
    with gc_paused():
        return run_pool(Path(out), [Path(b) for b in builds], Path(spec) if spec else None, validate=validate,
                        echo=(lambda *a, **k: None) if quiet else print)
