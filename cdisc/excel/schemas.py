"""JSON Schemas of every spec file kind, generated from the pydantic models that load them.

Editors that speak the YAML language server (VS Code's YAML extension, JetBrains IDEs,
Neovim, ...) read the first-line comment
``# yaml-language-server: $schema=<path>`` of a spec file and then validate and
autocomplete it. The schemas are shipped in ``cdisc/schemas/specs/`` and regenerated with
``python tools/spec_schemas.py`` (a test checks they equal freshly generated ones).

Three spec files are read as plain data by their loaders (``validation.yaml``,
``waivers.yaml``, ``ct/study-ct.yaml``); the models below describe exactly what those
loaders accept, so they have schemas too. A schema checks structure and types; the
loaders' own checks (one rule per variable, a codelist that exists, ...) stay in the loaders.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "specs"
MODELINE = "# yaml-language-server: $schema="


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CtTerm(_Strict):
    value: str | int | float
    code: str | None = None                # NCI C-code of a term, when it has one
    decode: str | None = None
    synonyms: list[str] = Field(default_factory=list)


class SponsorCodelist(_Strict):
    name: str | None = None                # the codelist's label (default: its short name)
    code: str | None = None                # C-code (a sponsor codelist has none)
    extensible: bool = False
    terms: list[CtTerm] = Field(default_factory=list)


class ExtensionTerm(_Strict):
    value: str | int | float
    decode: str | None = None
    synonyms: list[str] = Field(default_factory=list)


class StudyCt(_Strict):
    """``specs/ct/study-ct.yaml``: sponsor codelists, extensions of extensible CDISC
    codelists, and raw spellings (synonyms) that map to a term (see cdisc.ct)."""

    codelists: dict[str, SponsorCodelist] = Field(default_factory=dict)
    extensions: dict[str, list[ExtensionTerm]] = Field(default_factory=dict)
    synonyms: dict[str, dict[str, str]] = Field(default_factory=dict)


class RuleParams(_Strict):
    params: dict[str, Any] = Field(default_factory=dict)


class ValidationParams(_Strict):
    """``specs/validation.yaml``: study values of the rule catalogue's parameters."""

    rules: dict[str, RuleParams] = Field(default_factory=dict)


def _waivers_models():
    from cdisc.sdtm.integrity import IntegrityWaiver
    from cdisc.validation.waivers import Waiver

    class WaiversDoc(_Strict):
        """``specs/waivers.yaml``: approved exceptions to validation findings (``waivers``) and
        to the build's integrity checks (``integrity``)."""

        waivers: list[Waiver] = Field(default_factory=list)
        integrity: list[IntegrityWaiver] = Field(default_factory=list)

    class WaiversFile(RootModel[WaiversDoc | list[Waiver]]):
        """``specs/waivers.yaml``: ``{waivers: [...], integrity: [...]}`` or a list of waivers."""

    return WaiversFile


def kinds() -> dict[str, type[BaseModel]]:
    """{kind: model} of every spec file kind."""
    from cdisc.adam.spec import AdamSpec
    from cdisc.sdtm.pp import PPSettings
    from cdisc.sdtm.spec import DomainSpec
    from cdisc.sdtm.trial_design import TrialDesign

    from cdisc.study import Study

    return {"study": Study, "sdtm-domain": DomainSpec, "adam-dataset": AdamSpec, "trial-design": TrialDesign,
            "pp": PPSettings, "study-ct": StudyCt, "validation": ValidationParams, "waivers": _waivers_models()}


TITLES = {"study": "study.yaml", "sdtm-domain": "sdtm/<domain>.yaml", "adam-dataset": "adam/<dataset>.yaml",
          "trial-design": "trial_design.yaml", "pp": "pp.yaml", "study-ct": "ct/study-ct.yaml",
          "validation": "validation.yaml", "waivers": "waivers.yaml"}


def kind_of(rel: str) -> str | None:
    """The kind of a spec file from its path inside the spec folder (None: not a spec file)."""
    rel = rel.replace("\\", "/")
    if not rel.endswith(".yaml"):
        return None
    top = {"study.yaml": "study", "trial_design.yaml": "trial-design", "pp.yaml": "pp",
           "validation.yaml": "validation", "waivers.yaml": "waivers"}
    if rel in top:
        return top[rel]
    folder = rel.split("/")[0] if "/" in rel else ""
    return {"sdtm": "sdtm-domain", "adam": "adam-dataset", "ct": "study-ct"}.get(folder) if rel.count("/") == 1 else None


def schema(kind: str) -> dict:
    """The JSON Schema (draft 2020-12) of one spec file kind."""
    model = kinds()[kind]
    body = model.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"cdisc spec: {TITLES[kind]}", **{k: v for k, v in body.items() if k != "title"}}


def schema_text(kind: str) -> str:
    return json.dumps(schema(kind), indent=2, ensure_ascii=False) + "\n"


def schema_path(kind: str) -> Path:
    return SCHEMA_DIR / f"{kind}.schema.json"


def write_schemas(folder: Path = SCHEMA_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for kind in kinds():
        p = folder / f"{kind}.schema.json"
        p.write_text(schema_text(kind), encoding="utf-8")
        out.append(p)
    return out


def modeline_for(spec_file: Path, specs_dir: Path, schema_dir: Path = SCHEMA_DIR) -> str | None:
    """The first-line comment pointing a spec file at its schema (relative path), or None."""
    kind = kind_of(Path(spec_file).resolve().relative_to(Path(specs_dir).resolve()).as_posix())
    if kind is None:
        return None
    rel = os.path.relpath(schema_dir / f"{kind}.schema.json", Path(spec_file).resolve().parent)
    return MODELINE + Path(rel).as_posix()


def add_modeline(spec_file: Path, specs_dir: Path, schema_dir: Path = SCHEMA_DIR) -> bool:
    """Make the first line of a spec file its schema comment; nothing else changes.

    An existing ``# yaml-language-server:`` first line is replaced, otherwise the line is
    inserted before the first. Returns True when the file changed.
    """
    line = modeline_for(spec_file, specs_dir, schema_dir)
    if line is None:
        return False
    text = Path(spec_file).read_text(encoding="utf-8")
    first, sep, rest = text.partition("\n")
    new = (line + "\n" + rest if sep else line + "\n") if first.startswith("# yaml-language-server:") \
        else line + "\n" + text
    if new == text:
        return False
    Path(spec_file).write_text(new, encoding="utf-8")
    return True
