"""Which study a command works on: the folders of specs, raw exports (or delivered SDTM) and output.

A study is a folder. ``resolve_study`` finds its parts, in this order:

1. explicit ``--specs`` (with ``--raw`` or ``--sdtm``; without either, the ``raw/`` or ``sdtm/``
   folder beside the specs folder);
2. ``--example``: the VGO-Cs01p study shipped in the source repository (a clone or an editable
   install; an installed wheel has no example and says so);
3. the study folder (``--study DIR``, default: the current folder):
   a. ``DIR/cdisc.yaml``, a project file naming ``specs``, ``raw`` or ``sdtm``, and ``out``
      (paths relative to DIR and inside it);
   b. ``DIR/specs/study.yaml`` with ``DIR/raw/`` (raw CRF exports) or ``DIR/sdtm/`` (delivered
      SDTM);
   c. ``DIR/study.yaml``: DIR is itself the specs folder, ``raw/`` or ``sdtm/`` beside it.

Nothing found is a usage error that says how to start a study (``cdisc init DIR``). The output
defaults to ``build/`` in the study folder (the current folder for explicit ``--specs``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

PROJECT_FILE = "cdisc.yaml"
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class StudyPaths:
    root: Path                 # the study folder
    specs: Path
    raw: Path | None           # raw CRF exports (a build from raw forms) ...
    sdtm: Path | None          # ... or delivered SDTM (cdisc build --sdtm)
    out: Path
    found_by: str              # how it was found, for the first line a command prints

    @property
    def inputs(self) -> Path:
        return self.sdtm if self.sdtm is not None else self.raw   # type: ignore[return-value]

    def describe(self) -> str:
        src = f"delivered SDTM {self.sdtm}" if self.sdtm is not None else f"raw {self.raw}"
        return f"Study folder {self.root.resolve()} ({self.found_by}): specs {self.specs}, {src}, output {self.out}"


def example_study() -> Path:
    """The shipped example's folder, when this is a source checkout."""
    if (REPO_ROOT / "specs" / "study.yaml").is_file() and (REPO_ROOT / "raw").is_dir():
        return REPO_ROOT
    raise InputError("the example study ships with the source repository, not with an installed package",
                     hint="clone the repository (its specs/ and raw/), or start a study with `cdisc init DIR`")


def _beside(specs: Path, raw: Path | None, sdtm: Path | None, root: Path,
            required: bool = True) -> tuple[Path | None, Path | None]:
    if raw is not None or sdtm is not None:
        return raw, sdtm
    # sdtm/ counts only when it holds datasets (a source checkout has a Python package sdtm/)
    have_raw, have_sdtm = (root / "raw").is_dir(), _has_datasets(root / "sdtm")
    if have_raw and have_sdtm:
        raise InputError(f"{root} has both raw/ and sdtm/: say which the study is built from",
                         hint="give --raw raw or --sdtm sdtm, or name it in cdisc.yaml")
    if have_raw:
        return root / "raw", None
    if have_sdtm:
        return None, root / "sdtm"
    if not required:
        return None, None
    raise InputError(f"no raw/ (raw CRF exports) or sdtm/ (delivered SDTM) folder beside {specs}",
                     hint="give --raw DIR or --sdtm DIR")


def _has_datasets(folder: Path) -> bool:
    from .delivered import FORMATS

    return folder.is_dir() and any(p.suffix.lower() in FORMATS for p in folder.iterdir() if p.is_file())


def _inside(root: Path, rel: object, key: str) -> Path:
    """A path cdisc.yaml names: relative, and inside the study folder (specs are data)."""
    import os

    if not isinstance(rel, str) or not rel.strip():
        raise InputError(f"{PROJECT_FILE}: `{key}` must be a folder path relative to the study folder",
                         file=str(root / PROJECT_FILE), column=key)
    p = Path(rel)
    real = Path(os.path.realpath(root / p))
    if p.is_absolute() or not (real == Path(os.path.realpath(root)) or
                               Path(os.path.realpath(root)) in real.parents):
        raise InputError(f"{PROJECT_FILE}: `{key}: {rel}` is outside the study folder {root}",
                         file=str(root / PROJECT_FILE), column=key, hint="keep every folder of the study inside it")
    return root / p


def _from_project_file(root: Path) -> StudyPaths:
    from .specio import load_yaml

    data = load_yaml(root / PROJECT_FILE, display=str(root / PROJECT_FILE)) or {}
    if not isinstance(data, dict):
        raise InputError(f"{PROJECT_FILE} must be a mapping (specs, raw or sdtm, out)", file=str(root / PROJECT_FILE))
    unknown = sorted(set(data) - {"specs", "raw", "sdtm", "out"})
    if unknown:
        raise InputError(f"{PROJECT_FILE}: unknown keys {', '.join(unknown)} (specs, raw, sdtm, out)",
                         file=str(root / PROJECT_FILE))
    if "raw" in data and "sdtm" in data:
        raise InputError(f"{PROJECT_FILE}: give raw or sdtm, not both", file=str(root / PROJECT_FILE))
    specs = _inside(root, data.get("specs", "specs"), "specs")
    raw = _inside(root, data["raw"], "raw") if "raw" in data else None
    sdtm = _inside(root, data["sdtm"], "sdtm") if "sdtm" in data else None
    raw, sdtm = _beside(specs, raw, sdtm, root)
    out = _inside(root, data.get("out", "build"), "out")
    return StudyPaths(root, specs, raw, sdtm, out, PROJECT_FILE)


def resolve_study(study: Path | None = None, *, specs: Path | None = None, raw: Path | None = None,
                  sdtm: Path | None = None, out: Path | None = None, example: bool = False,
                  inputs_required: bool = True) -> StudyPaths:
    """The study a command works on (see the module docstring). ``out`` given wins.
    ``inputs_required=False``: a command that may not read raw/ or sdtm/ (package of an existing
    build) accepts a study without them."""
    if raw is not None and sdtm is not None:
        raise InputError("give --raw (raw CRF exports) or --sdtm (delivered SDTM), not both")
    if specs is not None:
        specs = Path(specs)
        root = specs.parent
        raw, sdtm = _beside(specs, raw, sdtm, root, inputs_required)
        return StudyPaths(root, specs, raw, sdtm, Path(out) if out else Path("build"), "--specs")
    if example:
        root = example_study()
        return StudyPaths(root, root / "specs", root / "raw", None, Path(out) if out else Path("build"),
                          "the shipped example")
    root = Path(study) if study is not None else Path(".")
    if not root.is_dir():
        raise InputError(f"study folder {root} does not exist", hint="give an existing folder to --study")
    if (root / PROJECT_FILE).is_file():
        found = _from_project_file(root)
    elif (root / "specs" / "study.yaml").is_file():
        specs = root / "specs"
        raw, sdtm = _beside(specs, raw, sdtm, root, inputs_required)
        found = StudyPaths(root, specs, raw, sdtm, root / "build", "specs/study.yaml")
    elif (root / "study.yaml").is_file():
        raw, sdtm = _beside(root, raw, sdtm, root.resolve().parent, inputs_required)
        found = StudyPaths(root, root, raw, sdtm, root.resolve().parent / "build", "study.yaml")
    else:
        where = "the current folder" if study is None else str(root)
        raise InputError(f"no study in {where}: no {PROJECT_FILE}, specs/study.yaml or study.yaml",
                         hint="start one with `cdisc init DIR`, give --study DIR, or build the shipped "
                              "example with `cdisc build --example`")
    if (raw is not None or sdtm is not None) and (found.raw, found.sdtm) != (raw, sdtm):
        found = StudyPaths(found.root, found.specs, raw, sdtm, found.out, found.found_by)   # options win
    if out is not None:
        found = StudyPaths(found.root, found.specs, found.raw, found.sdtm, Path(out), found.found_by)
    return found
