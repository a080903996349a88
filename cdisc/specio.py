"""Loading spec files safely and turning pydantic errors into located SpecErrors."""
from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import Problem, SpecError

try:  # the C parser is ~10x faster on the CT file; both are safe loaders
    _Base = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Base = yaml.SafeLoader


class _Loader(_Base):
    """The safe loader, stricter where YAML is silently lossy.

    - A key given twice in one mapping is an error (plain YAML keeps the last one, so a
      rule written twice would silently lose the first).
    - A date that does not exist (``2025-02-30``) is an error at its line, not a crash.
    """


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[object, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found an unhashable key",
                key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first given on line {seen[key].start_mark.line + 1})",
                key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


def _timestamp(loader: _Loader, node: yaml.ScalarNode):
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a valid date ({exc})", node.start_mark) from None


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)

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


def parse_yaml(text: str, *, file: str) -> object:
    """YAML text (not a file) through the same strict safe loader; errors name ``file`` and line."""
    try:
        loader = _Loader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SpecError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=file,
                        row=mark.line + 1 if mark is not None else None) from None


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


def links_outside(folder: Path, *, what: str) -> list[Problem]:
    """Symbolic links under ``folder`` that lead outside it (or nowhere), one Problem each.

    A study folder is data from users: a link in raw/ or specs/ must not make the build read
    a file elsewhere on the machine (``raw/ae.csv -> /home/someone/other-study/ae.csv``).
    The folder itself may be a link (a raw export on a mounted share); what is inside it
    must resolve inside it.
    """
    import os

    base = Path(os.path.realpath(folder))
    problems = []
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            p = Path(root) / name
            if not p.is_symlink():
                continue
            target = Path(os.path.realpath(p))
            rel = p.relative_to(folder).as_posix()
            if not target.exists():
                problems.append(Problem(f"symbolic link to {target}, which does not exist", file=f"{what}/{rel}",
                                        hint="replace the link by the file itself"))
            elif target != base and base not in target.parents:
                problems.append(Problem(f"symbolic link to {target}, outside the {what} folder {base}",
                                        file=f"{what}/{rel}",
                                        hint=f"copy the file into the {what} folder instead of linking to it"))
    return problems
