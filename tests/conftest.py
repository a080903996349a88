"""Shared fixtures for the end-to-end build tests.

- ``built``: one build of the shipped study (specs/ + raw/) per test session, into a tmp
  folder, with its manifest and every SDTM file read back by pyreadstat (lazily, cached).
- ``copy_study(tmp_path)``: a private copy of specs/ and raw/ that a test may break.
- ``run_cli(*args)``: runs ``cdisc ...`` in-process through click's CliRunner and returns
  exit code, stdout and stderr separately (``run_cli_subprocess`` does the same through
  the installed console script, for the few tests that need a real process).
- small CSV/YAML editing helpers so a bad-input test states only what it breaks.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from cdisc.cli import main as cli_main
from cdisc.runtime import use_python_strings

use_python_strings()     # as the CLI runs (cdisc/runtime.py): tests that call internals see the same frames

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"
RAW = REPO / "raw"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None
    changed: list[str] = field(default_factory=list)   # files of inputs/earlier output a command changed
    study: object = None                               # the Study copy a build ran on

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _build_flags() -> list[str]:
    """Flags that make `cdisc build` only build: the validation step (when the CLI has one)
    is tested elsewhere and would make these tests depend on its findings and timing."""
    build_cmd = cli_main.commands["build"]
    return ["--no-validate"] if any(p.name == "no_validate" for p in build_cmd.params) else []


BUILD_FLAGS = _build_flags()
# a private study copy's builds skip the review report's plots (about 3 s each, dozens of
# builds); the session build (`built`) and tests/test_review_report.py draw them
QUICK_FLAGS = BUILD_FLAGS + (["--no-report"] if any(p.name == "no_report" for p in
                                                    cli_main.commands["build"].params) else [])


def run_cli(*args: str | Path) -> CliResult:
    """`cdisc <args>` in-process; stdout and stderr are kept apart (click >= 8.2)."""
    res = CliRunner().invoke(cli_main, [str(a) for a in args], prog_name="cdisc", catch_exceptions=True)
    exc = res.exception if not isinstance(res.exception, SystemExit) else None
    return CliResult(res.exit_code, res.stdout, res.stderr, exc)


def run_cli_subprocess(*args: str | Path, timeout: float = 120) -> CliResult:
    """`cdisc <args>` as a separate process (the real entry point and sys.exit path)."""
    exe = Path(sys.executable).with_name("cdisc")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cdisc.cli"]
    p = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                       cwd=REPO, env={**os.environ, "PYTHONHASHSEED": "0"})
    return CliResult(p.returncode, p.stdout, p.stderr)


@dataclass
class Study:
    """A private copy of the shipped study: ``root/specs`` and ``root/raw``."""

    root: Path
    specs: Path
    raw: Path

    def build(self, out: Path | None = None, *extra: str) -> CliResult:
        """`cdisc build` of this copy; ``res.changed`` lists every file of specs/, raw/ and an
        earlier build in ``out`` that the command changed, added or removed."""
        out = out if out is not None else self.root / "out"
        before = {name: tree_bytes(folder) for name, folder in (("specs", self.specs), ("raw", self.raw))}
        res = run_cli("build", "--specs", self.specs, "--raw", self.raw, "--out", out, *QUICK_FLAGS, *extra)
        for name, folder in (("specs", self.specs), ("raw", self.raw)):
            res.changed += changed_files(before[name], tree_bytes(folder), prefix=f"{name}/")
        res.study = self
        return res

    # -- editing helpers ------------------------------------------------------------------
    def read_csv(self, form: str) -> pd.DataFrame:
        return pd.read_csv(self.raw / f"{form}.csv", dtype=str, keep_default_na=False)

    def write_csv(self, form: str, df: pd.DataFrame) -> None:
        # same dialect as the EDC export: \n line ends, quotes only where needed
        df.to_csv(self.raw / f"{form}.csv", index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)

    def set_raw(self, form: str, row: int, column: str, value: str) -> None:
        """Set one raw cell; ``row`` is the file line number (header = 1), as messages give it."""
        df = self.read_csv(form)
        df.loc[row - 2, column] = value
        self.write_csv(form, df)

    def read_spec(self, rel: str) -> dict:
        return yaml.safe_load((self.specs / rel).read_text(encoding="utf-8"))

    def write_spec(self, rel: str, data: dict) -> None:
        (self.specs / rel).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _forms_named(node) -> set[str]:
    """Every ``form:`` value anywhere in a parsed spec (sources, aggregate sources, elements)."""
    if isinstance(node, dict):
        found = {str(node["form"])} if isinstance(node.get("form"), str) else set()
        return found.union(*(_forms_named(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_forms_named(v) for v in node))
    return set()


def copy_study(tmp_path: Path, domains: tuple[str, ...] | None = None) -> Study:
    """Copy specs/ and raw/ of the shipped study under ``tmp_path/study``.

    ``domains`` (e.g. ``("DM", "AE", "EX")``) slims the copy for tests that break one of
    those domains: the other SDTM specs and the ADaM specs are removed and every raw form
    no remaining spec reads is listed under forms_not_mapped. A failing build then costs
    about a third of a full one, and the message under test is the same. The slimmed specs
    are made once per process and copied from there (_slim_specs).
    """
    root = tmp_path / "study"
    root.mkdir(parents=True, exist_ok=True)
    specs = SPECS if domains is None else _slim_specs(tuple(sorted(d.lower() for d in domains)))
    shutil.copytree(specs, root / "specs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(RAW, root / "raw", ignore=shutil.ignore_patterns("__pycache__"))
    return Study(root, root / "specs", root / "raw")


_SLIM: dict[tuple[str, ...], Path] = {}


def _slim_specs(keep: tuple[str, ...]) -> Path:
    """specs/ with only the SDTM specs of ``keep`` (no ADaM), made once per process."""
    if keep in _SLIM:
        return _SLIM[keep]
    import atexit
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="cdisc-slim-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    study = Study(tmp, tmp / "specs", RAW)
    shutil.copytree(SPECS, study.specs, ignore=shutil.ignore_patterns("__pycache__"))
    for f in sorted((study.specs / "sdtm").glob("*.yaml")):
        if f.stem not in keep:
            f.unlink()
    shutil.rmtree(study.specs / "adam", ignore_errors=True)
    doc = study.read_spec("study.yaml")
    read = _forms_named(doc).union(*(_forms_named(study.read_spec(f"sdtm/{d}.yaml")) for d in keep))
    listed = doc.setdefault("forms_not_mapped", {}) or {}
    for f in sorted(RAW.iterdir()):
        if f.suffix in (".csv", ".xlsx", ".sas7bdat", ".xpt") and f.stem not in read and f.stem not in listed:
            listed[f.stem] = "not mapped in this slimmed test copy of the study"
    doc["forms_not_mapped"] = listed
    # columns the removed specs read are not read any more: list every raw column
    columns = doc.setdefault("columns_not_mapped", {}) or {}
    every = columns.setdefault("*", {}) or {}
    for f in sorted(RAW.glob("*.csv")):
        for col in pd.read_csv(f, dtype=str, nrows=0).columns:
            every.setdefault(str(col).strip().upper(), "not mapped in this slimmed test copy of the study")
    columns["*"] = every
    doc["columns_not_mapped"] = columns
    study.write_spec("study.yaml", doc)
    _SLIM[keep] = study.specs
    return study.specs


@dataclass
class Build:
    """One finished build: output folder, CLI result, manifest, datasets read by pyreadstat."""

    out: Path
    result: CliResult
    manifest: dict
    _cache: dict = field(default_factory=dict)

    def files(self) -> list[Path]:
        return sorted(self.out.rglob("*.xpt"))

    def output(self, dataset: str) -> dict:
        return next(o for o in self.manifest["outputs"] if o["dataset"] == dataset)

    def read(self, dataset: str) -> tuple[pd.DataFrame, object]:
        """(data, pyreadstat metadata) of one dataset, e.g. ``read('AE')``."""
        if dataset not in self._cache:
            import pyreadstat

            self._cache[dataset] = pyreadstat.read_xport(str(self.out / self.output(dataset)["file"]))
        return self._cache[dataset]

    def df(self, dataset: str) -> pd.DataFrame:
        return self.read(dataset)[0]

    def recon(self, domain: str, file: str) -> dict:
        return next(r for r in self.manifest["reconciliation"] if r["domain"] == domain and r["file"] == file)


def build_into(out: Path, specs: Path = SPECS, raw: Path = RAW) -> Build:
    res = run_cli("build", "--specs", specs, "--raw", raw, "--out", out, *BUILD_FLAGS)
    assert res.code == 0, f"build of the shipped study failed ({res.code}):\n{res.stderr}\n{res.exception!r}"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return Build(out, res, manifest)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Build:
    """The shipped study built once per session (about 1 s)."""
    return build_into(tmp_path_factory.mktemp("build") / "out")


@pytest.fixture
def study(tmp_path) -> Study:
    """A private copy of the study slimmed to DM, AE and EX (+ SE, trial design)."""
    return copy_study(tmp_path, domains=("DM", "AE", "EX"))


@pytest.fixture
def full_study(tmp_path) -> Study:
    """A private copy of the whole shipped study."""
    return copy_study(tmp_path)


@pytest.fixture(scope="session")
def adam_frames() -> dict[str, pd.DataFrame]:
    """SDTM + ADaM of the shipped study built in-process once per session (dataset -> frame)."""
    from cdisc.adam.build import add_adam
    from cdisc.pipeline import build_sdtm

    result = build_sdtm(SPECS, RAW)
    add_adam(result, SPECS)
    return {name: ds.data for name, ds in result.datasets.items()}


@pytest.fixture(scope="session")
def truth_by_usubjid() -> pd.DataFrame:
    """raw/truth.csv indexed by USUBJID (with a SUBJECT column)."""
    t = pd.read_csv(RAW / "truth.csv", dtype=str, keep_default_na=False)
    t["USUBJID"] = "VGO-Cs01p-" + t["SUBJECT"]
    return t.set_index("USUBJID")


@pytest.fixture(scope="session")
def truth() -> pd.DataFrame:
    """raw/truth.csv, one row per subject, indexed by SUBJECT."""
    return pd.read_csv(RAW / "truth.csv", dtype=str, keep_default_na=False).set_index("SUBJECT")


def changed_files(before: dict[str, bytes], after: dict[str, bytes], prefix: str = "") -> list[str]:
    """Files added, removed or changed between two ``tree_bytes`` snapshots."""
    return sorted(prefix + k for k in set(before) | set(after) if before.get(k) != after.get(k))


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> content), to compare two states of a folder."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
