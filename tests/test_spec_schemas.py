"""JSON Schemas of the spec files: shipped = generated, referenced by every spec file, and they
accept the shipped specs and reject a typo."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from cdisc.cli import main
from cdisc.excel.schemas import MODELINE, SCHEMA_DIR, kind_of, kinds, schema, schema_path, schema_text
from cdisc.specio import load_yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIRS = [ROOT / "specs", ROOT / "tests" / "studies" / "edc2" / "specs", ROOT / "studies" / "cdiscpilot01" / "specs"]
SPEC_FILES = [(d, p) for d in SPEC_DIRS for p in sorted(d.rglob("*.yaml"))]


def _plain(data):
    """YAML data as an editor's language server sees it (dates are text in YAML 1.2)."""
    return json.loads(json.dumps(data, default=lambda o: o.isoformat()))


def test_shipped_schemas_equal_fresh_ones():
    # regenerate with: python tools/spec_schemas.py
    shipped = sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json"))
    assert shipped == sorted(f"{k}.schema.json" for k in kinds())
    assert len(shipped) == 8
    for kind in kinds():
        assert schema_path(kind).read_text(encoding="utf-8") == schema_text(kind), kind


def test_every_spec_file_names_its_schema_on_line_one():
    assert len(SPEC_FILES) == 52            # 37 shipped + 7 edc2 + 8 pilot (ls of the folders)
    for d, p in SPEC_FILES:
        kind = kind_of(p.relative_to(d).as_posix())
        assert kind is not None, p
        first = p.read_text(encoding="utf-8").split("\n", 1)[0]
        assert first.startswith(MODELINE), p
        target = (p.parent / first[len(MODELINE):]).resolve()
        assert target == schema_path(kind).resolve() and target.is_file(), p


@pytest.mark.parametrize("kind", sorted(kinds()))
def test_shipped_specs_are_valid_against_their_schema(kind):
    validator = jsonschema.Draft202012Validator(schema(kind))
    files = [p for d, p in SPEC_FILES if kind_of(p.relative_to(d).as_posix()) == kind]
    assert files, kind
    for p in files:
        errors = [e.message for e in validator.iter_errors(_plain(load_yaml(p)))]
        assert errors == [], p


def test_schema_rejects_a_typo_and_a_missing_key():
    v = jsonschema.Draft202012Validator(schema("sdtm-domain"))
    good = {"domain": "AE", "label": "Adverse Events", "class": "EVENTS", "structure": "x", "keys": ["STUDYID"],
            "sources": [{"form": "ae"}], "variables": [{"name": "STUDYID", "label": "Study Identifier", "study": "studyid"}]}
    assert list(v.iter_errors(good)) == []
    typo = json.loads(json.dumps(good))
    typo["variables"][0]["lable"] = typo["variables"][0].pop("label")
    msgs = [e.message for e in v.iter_errors(typo)]
    assert any("'lable'" in m for m in msgs) and any("'label' is a required property" in m for m in msgs)
    bad_type = json.loads(json.dumps(good))
    bad_type["variables"][0]["type"] = "Date"
    assert any("'Date' is not one of ['Char', 'Num']" in e.message for e in v.iter_errors(bad_type))
    # waivers.yaml: a waiver without a reason
    w = jsonschema.Draft202012Validator(schema("waivers"))
    assert list(w.iter_errors({"waivers": [{"rule": "R", "dataset": "AE", "reason": "ok"}]})) == []
    assert list(w.iter_errors({"waivers": [{"rule": "R", "dataset": "AE"}]})) != []


def test_spec_schemas_command_adds_only_the_first_line(tmp_path):
    specs = tmp_path / "specs"
    (specs / "sdtm").mkdir(parents=True)
    body = "# DM of my study\ndomain: DM\n"
    (specs / "sdtm" / "dm.yaml").write_text(body)
    (specs / "notes.yaml").write_text("x: 1\n")               # not a spec file kind: untouched
    r = CliRunner().invoke(main, ["spec", "schemas", "--specs", str(specs)])
    assert r.exit_code == 0 and "1 spec files" in r.output, r.output
    first, rest = (specs / "sdtm" / "dm.yaml").read_text().split("\n", 1)
    assert rest == body and first.startswith(MODELINE) and first.endswith("sdtm-domain.schema.json")
    assert (specs / "sdtm" / first[len(MODELINE):]).resolve() == schema_path("sdtm-domain").resolve()
    assert (specs / "notes.yaml").read_text() == "x: 1\n"
    r = CliRunner().invoke(main, ["spec", "schemas", "--specs", str(specs)])   # twice: no change
    assert "0 spec files" in r.output
