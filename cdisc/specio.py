"""Loading spec files safely and turning pydantic errors into located SpecErrors."""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import Problem, SpecError

try:  # the C loader is ~10x faster on the CT file; both are safe loaders
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

M = TypeVar("M", bound=BaseModel)


def load_yaml(path: Path, *, display: str | None = None) -> object:
    """Parse a YAML file with a safe loader; a syntax error names the file and line.

    ``display`` is the name messages use (``specs/sdtm/ae.yaml``), as for validation errors.
    """
    file = display or str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("spec file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file: {exc}", file=file) from None
    try:
        loader = _Loader(text)          # a safe loader: plain data only, no Python objects
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark is not None else None
        raise SpecError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=file, row=row) from None


def key_path(loc: tuple) -> str:
    """('variables', 3, 'rule') -> 'variables[3].rule'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def validate_model(model: type[M], data: object, *, file: str) -> M:
    """Validate parsed YAML against a pydantic model; every error names its key path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling against the spec reference in README.md)"
            problems.append(Problem(msg, file=file, key=key_path(loc) or "(top level)"))
        raise SpecError(problems) from None


def load_model(model: type[M], path: Path, *, display: str | None = None) -> M:
    return validate_model(model, load_yaml(path, display=display), file=display or str(path))


def load_spec_folder(specs_dir: Path, subfolder: str, model: type[M], name_key: str) -> dict[str, tuple[M, str]]:
    """Every ``specs/<subfolder>/*.yaml``, keyed by the name the spec declares (DM, ADSL, ...).

    The file name must be that name in lower case, so a reader finds a dataset's spec by
    its name. Returns {name: (spec, display path for messages)}.
    """
    folder = Path(specs_dir) / subfolder
    specs: dict[str, tuple[M, str]] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        display = f"specs/{subfolder}/{path.name}"
        spec = load_model(model, path, display=display)
        name = getattr(spec, name_key)
        if path.stem.upper() != name:
            raise SpecError(f"file name must be the {name_key} in lower case ({name.lower()}.yaml)",
                            file=display, key=name_key)
        specs[name] = (spec, display)
    return specs


def inside(base: Path, name: str, *, file: str, key: str) -> Path:
    """Resolve a path a spec names, refusing anything that escapes ``base``.

    Specs are data from users: a spec must not make the build read or write outside
    the study folder (absolute paths, '..', symlinks pointing out).
    """
    base_r = Path(base).resolve()
    candidate = Path(name)
    if candidate.is_absolute():
        raise SpecError(f"path {name!r} must be relative to the study folder", file=file, key=key)
    resolved = (base_r / candidate).resolve()
    if resolved != base_r and base_r not in resolved.parents:
        raise SpecError(f"path {name!r} points outside the study folder {base_r}", file=file, key=key)
    return resolved
