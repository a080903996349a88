"""Issue 16 item 4, files as agencies require: per-agency split limits and split variables
from specs/study.yaml ``submission:`` (``cdisc package --agency``; ``--split-limit``
overrides), each split part its own define.xml ItemGroupDef and def:leaf, and one
character length per variable for the whole study (FDA TCG §3.3.2, §4.1.5.2).

One package of the session build (conftest ``built``, packaged with --allow-errors, so
nothing is built or validated again) with a 200 KB "partner-x" limit serves every test
that needs one; the error cases stop before any file is written.
"""
from __future__ import annotations

import shutil

import pandas as pd
import pyreadstat
import pytest
import yaml
from lxml import etree

from cdisc.define import validate_define
from cdisc.define.xsd import NS
from cdisc.errors import DataError, SpecError
from cdisc.package import agency_rules, package, verify_package
from cdisc.study import load_study, parse_size
from conftest import SPECS, run_cli

SDTM = "m5/datasets/vgo-cs01p/tabulations/sdtm"
ADAM = "m5/datasets/vgo-cs01p/analysis/adam/datasets"
AGENCIES = {"FDA": {"split_limit": "5 GB"},
            "partner-x": {"split_limit": "200 KB", "split_by": {"LB": "LBCAT", "ADLB": "PARCAT1"}},
            "NMPA": {}}


def _specs(tmp_path, agencies=AGENCIES):
    """A copy of the shipped specs whose study.yaml has ``agencies``."""
    specs = tmp_path / "specs"
    shutil.copytree(SPECS, specs)
    path = specs / "study.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["submission"] = {"agency": "FDA", "agencies": agencies}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return specs


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    return _specs(tmp_path_factory.mktemp("split_specs"))


@pytest.fixture(scope="module")
def pkg(built, specs, tmp_path_factory):
    out = tmp_path_factory.mktemp("split_pkg") / "out"
    manifest = package(built.out, out, specs, allow_errors=True, agency="partner-x", echo=lambda m: None)
    return out, manifest


def _split(manifest, name):
    return next(s for s in manifest["splits"] if s["dataset"] == name)


def _read(path):
    df, meta = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
    return df, meta


def test_configured_limit_splits_lb_by_lbcat(pkg):
    out, manifest = pkg
    assert manifest["agency"] == "partner-x" and manifest["split_limit_bytes"] == 200 * 1024
    lb = _split(manifest, "LB")
    assert lb["split_by"] == "LBCAT" and _split(manifest, "ADLB")["split_by"] == "PARCAT1"
    assert [p["file"] for p in lb["parts"]] == [f"{SDTM}/split/lb{i}.xpt" for i in range(1, 6)]
    assert [p["values"] for p in lb["parts"]] == [["CHEMISTRY"], ["CYTOKINES"], ["HEMATOLOGY"],
                                                  ["IMMUNOPHENOTYPING"], ["MINIMAL RESIDUAL DISEASE"]]
    full, _ = _read(out / lb["file"])
    assert sum(p["records"] for p in lb["parts"]) == lb["records"] == len(full) == 1182
    assert all((out / p["file"]).stat().st_size <= 200 * 1024 for p in lb["parts"])
    assert (out / lb["file"]).stat().st_size > 200 * 1024          # the full file stays too
    assert verify_package(out) == []


def test_every_file_over_the_limit_and_only_those_is_split(pkg):
    """(Was test_package.py's split test.) Split exactly the packaged files over the limit
    (FDA TCG §3.3.2): the full file stays, parts in split/ numbered from 1, each within
    the limit, records adding up, no value in two parts, the define.xml note."""
    out, manifest = pkg
    limit = manifest["split_limit_bytes"]
    over = {d["dataset"] for d in manifest["datasets"] if (out / d["file"]).stat().st_size > limit}
    assert over == {s["dataset"] for s in manifest["splits"]} == {"LB", "ADLB", "ADVS"}
    for info in manifest["splits"]:
        name = info["dataset"].lower()
        folder = SDTM if info["file"].startswith(SDTM) else ADAM
        assert info["file"] == f"{folder}/{name}.xpt"
        assert info["bytes"] == (out / info["file"]).stat().st_size
        assert [p["file"] for p in info["parts"]] == [
            f"{folder}/split/{name}{i}.xpt" for i in range(1, len(info["parts"]) + 1)]
        assert len(info["parts"]) >= 2 and sum(p["records"] for p in info["parts"]) == info["records"]
        values = [v for p in info["parts"] for v in p["values"]]
        assert len(values) == len(set(values))
        assert all((out / p["file"]).stat().st_size <= limit for p in info["parts"])
        define = (out / folder / "define.xml").read_text(encoding="utf-8")
        assert f"also submitted split by {info['split_by']} as {name}1.xpt" in define
        entry = next(d for d in manifest["datasets"] if d["dataset"] == info["dataset"])
        assert entry["split"] == [p["file"] for p in info["parts"]]


def test_union_of_parts_is_the_full_file_row_for_row(pkg):
    out, manifest = pkg
    for name in ("LB", "ADLB"):
        info = _split(manifest, name)
        full, _ = _read(out / info["file"])
        frames = []
        for p in info["parts"]:
            df, meta = _read(out / p["file"])
            assert meta.table_name == p["dataset"]                     # LB1 in lb1.xpt (TCG §4.1.1)
            assert sorted(df[info["split_by"]].unique()) == p["values"]
            frames.append(df)
        union = pd.concat(frames, ignore_index=True)
        keys = list(full.columns)
        a = full.sort_values(keys, ignore_index=True)
        b = union.sort_values(keys, ignore_index=True)
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_parts_and_full_file_share_the_study_wide_lengths(pkg):
    """A part keeps the full file's storage widths even where its own longest value is
    shorter; a variable has one length study-wide (LB and EX VISIT); define.xml says it."""
    out, manifest = pkg
    lb = _split(manifest, "LB")
    full_df, full = _read(out / lb["file"])
    shorter = set()
    for p in lb["parts"]:
        df, meta = _read(out / p["file"])
        assert meta.variable_storage_width == full.variable_storage_width, p["file"]
        for var, width in meta.variable_storage_width.items():
            if meta.readstat_variable_types[var] == "string" and df[var].str.len().max() < width:
                shorter.add(var)
    assert {"LBTEST", "LBORRES"} <= shorter                    # the parts did not shrink
    ex_df, ex = _read(out / SDTM / "ex.xpt")
    _, dm = _read(out / SDTM / "dm.xpt")
    widths = full.variable_storage_width
    # VISIT: LB's longest is "UNSCHEDULED 5.02" (16), EX's "LYMPHODEPLETION" (15): both 16
    assert widths["VISIT"] == ex.variable_storage_width["VISIT"] == full_df["VISIT"].str.len().max() == 16
    assert ex_df["VISIT"].str.len().max() == 15
    assert widths["USUBJID"] == dm.variable_storage_width["USUBJID"] == 17
    define = etree.parse(str(out / SDTM / "define.xml"))
    for var in ("VISIT", "USUBJID", "LBTEST"):
        [length] = define.xpath(f"//odm:ItemDef[@OID='IT.LB.{var}']/@Length", namespaces=NS)
        assert int(length) == widths[var]
    entry = next(d for d in manifest["datasets"] if d["dataset"] == "EX")
    assert entry["lengths_widened"] == ["VISIT"]


def test_define_has_an_item_group_and_leaf_per_part(pkg):
    out, manifest = pkg
    for folder, name in ((SDTM, "LB"), (ADAM, "ADLB")):
        path = out / folder / "define.xml"
        assert validate_define(path) == []
        x = etree.parse(str(path))
        info = _split(manifest, name)
        for i, p in enumerate(info["parts"], start=1):
            [ig] = x.xpath(f"//odm:ItemGroupDef[@Name='{name}{i}']", namespaces=NS)
            leaf = ig.find(f"{{{NS['def']}}}leaf")
            href = f"split/{name.lower()}{i}.xpt"
            assert leaf.get("ID") == f"LF.{name}{i}" and leaf.get(f"{{{NS['xlink']}}}href") == href
            assert leaf.findtext(f"{{{NS['def']}}}title") == href and (path.parent / href).is_file()
            assert ig.get("SASDatasetName") == f"{name}{i}"
            desc = ig.findtext("odm:Description/odm:TranslatedText", namespaces=NS)
            assert desc.endswith(f"({name} split by {info['split_by']} = {p['values'][0]})")
            oid = ig.get(f"{{{NS['def']}}}CommentOID")
            [comment] = x.xpath(f"//def:CommentDef[@OID='{oid}']//odm:TranslatedText/text()",
                                namespaces=NS)
            assert comment.startswith(f"Part {i} of {len(info['parts'])} of {name}: the {p['records']} "
                                      f"records with {info['split_by']} = {p['values'][0]}.")
            refs = ig.xpath("odm:ItemRef/@ItemOID", namespaces=NS)
            assert refs and all(r.startswith(f"IT.{name}.") for r in refs)  # the dataset's own ItemDefs


def test_unknown_agency_is_a_clear_error(built, specs, tmp_path):
    with pytest.raises(SpecError) as exc:
        package(built.out, tmp_path / "out", specs, allow_errors=True, agency="EMA")
    [p] = exc.value.problems
    assert p.file.endswith("study.yaml") and p.key == "submission.agencies.EMA"
    assert "FDA, NMPA, partner-x" in p.message and not (tmp_path / "out").exists()
    res = run_cli("package", "--specs", specs, "--build", built.out, "--out", tmp_path / "cli",
                  "--allow-errors", "--agency", "EMA")
    assert res.code == 2 and res.exception is None and "Traceback" not in res.output
    assert "study.yaml" in res.stderr and "submission.agencies.EMA" in res.stderr


def test_agency_limits_and_overrides(specs):
    study = load_study(specs)
    assert agency_rules(study)["split_limit"] == 5 * 1024**3                       # default: FDA
    assert agency_rules(study, "PARTNER-X") == {"agency": "partner-x", "split_limit": 204800,
                                                "split_by": {"LB": "LBCAT", "ADLB": "PARCAT1"}}
    over = agency_rules(study, "partner-x", split_limit=10**6, split_by={"lb": "lbtestcd"})
    assert over["split_limit"] == 10**6 and over["split_by"]["LB"] == "LBTESTCD"
    with pytest.raises(SpecError) as exc:                     # NMPA: no sourced built-in number
        agency_rules(study, "NMPA")
    assert exc.value.problems[0].key == "submission.agencies.NMPA.split_limit"
    assert agency_rules(study, "NMPA", split_limit=123)["split_limit"] == 123
    assert [parse_size(s) for s in ("5 GB", "100 MB", "2KB", 4096)] == [5 * 1024**3, 100 * 1024**2, 2048, 4096]


def test_cli_split_limit_overrides_the_agency(built, specs, tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr("cdisc.package.package", lambda *a, **kw: seen.update(kw) or {"files": []})
    res = run_cli("package", "--specs", specs, "--build", built.out, "--out", tmp_path / "o",
                  "--agency", "partner-x", "--split-limit", "1 MB")
    assert res.code == 0, res.output
    assert seen["agency"] == "partner-x" and seen["split_limit_bytes"] == 1024**2
    bad = run_cli("package", "--specs", specs, "--build", built.out, "--out", tmp_path / "o",
                  "--split-limit", "5 parsecs")
    assert bad.code == 2 and "--split-limit" in bad.stderr and "not a size" in bad.stderr


def test_missing_split_variable_and_bad_size_name_their_place(built, specs, tmp_path):
    with pytest.raises(DataError) as exc:
        package(built.out, tmp_path / "out", specs, allow_errors=True, agency="partner-x",
                split_by={"LB": "LBXCAT"})
    [p] = exc.value.problems
    assert (p.file, p.column) == ("sdtm/lb.xpt", "LBXCAT") and "cannot split LB by LBXCAT" in p.message
    bad = _specs(tmp_path, {"PMDA": {"split_limit": "5 parsecs"}})
    with pytest.raises(SpecError) as exc:
        load_study(bad)
    assert "5 parsecs" in exc.value.render() and "split_limit" in exc.value.render()
