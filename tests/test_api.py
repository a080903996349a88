"""The Python API (issue 15 item 7): cdisc.build / cdisc.validate / cdisc.read, one namespace."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest

import cdisc
from cdisc.errors import SpecError
from conftest import RAW, SPECS, copy_study


def test_build_from_python_writes_the_same_bytes_as_the_command(built, tmp_path):
    b = cdisc.build(specs=SPECS, raw=RAW, out=tmp_path / "out", validate=False, quiet=True, report=False)
    assert b.ready and b.folder == tmp_path / "out" and b.exit_code == 0
    assert "Wrote 46 datasets" in b.output                    # quiet: captured, not printed
    for f in sorted((built.out / "sdtm").glob("*.xpt")) + sorted((built.out / "adam").glob("*.xpt")):
        rel = f.relative_to(built.out)
        assert (b.folder / rel).read_bytes() == f.read_bytes(), rel
    dm = b["DM"]
    assert isinstance(dm, pd.DataFrame) and len(dm) == len(built.df("DM"))
    assert list(dm["USUBJID"]) == list(built.df("DM")["USUBJID"])
    assert len(b.datasets) == 46 and "ADSL" in b.datasets


def test_build_errors_are_raised_with_their_location(tmp_path):
    study = copy_study(tmp_path)
    (study.specs / "sdtm" / "ae.yaml").write_text("domain: AE\nlabel: [\n")
    with pytest.raises(SpecError, match="ae.yaml"):
        cdisc.build(specs=study.specs, raw=study.raw, out=tmp_path / "out", validate=False, quiet=True)
    assert not (tmp_path / "out").exists()


def test_validate_and_read_a_build(built, tmp_path):
    # a delivery of two datasets (validating the whole build is tests/test_validate_build.py's)
    for name in ("dm.xpt", "ae.xpt"):
        shutil.copyfile(built.out / "sdtm" / name, tmp_path / name)
    r = cdisc.validate(tmp_path)
    assert r.exit_code("error") == 1
    assert any(f.rule == "CDISC-XD-017" for f in r.errors)          # TS (and more) missing from the delivery
    ds = cdisc.read(built.out)
    assert len(ds) == 46 and ds["adsl"].equals(ds["ADSL"])
    with pytest.raises(KeyError, match="XX: no such dataset"):
        ds["XX"]


def test_cdisc_build_is_the_function_and_the_build_graph_is_cdisc_pipeline():
    """The API function ``cdisc.build`` does not share its name with a submodule (importing a
    submodule ``cdisc.build`` would rebind the package attribute): the build graph is
    ``cdisc.pipeline``."""
    import importlib.util

    from cdisc.pipeline import build_sdtm  # noqa: F401

    assert cdisc.build.__module__ == "cdisc" and callable(cdisc.build)
    assert importlib.util.find_spec("cdisc.build") is None


def test_one_installed_namespace(tmp_path):
    """Outside the repository, only cdisc is importable: its parts are cdisc.sdtm, cdisc.adam,
    cdisc.validation, and no top-level sdtm/adam/validation module can collide with a user's."""
    code = ("import importlib.util as u; import cdisc.sdtm.engine, cdisc.adam.derive, cdisc.validation.rules; "
            "print([u.find_spec(n) is None for n in ('sdtm', 'adam', 'validation')])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[True, True, True]"


def test_every_packaged_data_file_loads_outside_the_repository(tmp_path):
    """Data files are found through the installed package names (cdisc.validation, ...), not a
    top-level name that only the repository folder on sys.path provides (a test run from the
    repository root would hide that: this runs from an empty folder)."""
    code = "; ".join([
        "from cdisc.validation.rules import load_rules; assert len(load_rules()) > 40",
        "from cdisc.validation.core_bridge import load_differences; load_differences()",
        "from cdisc.validation.core.catalogue import load_rules as core; assert len(core()) > 300",
        "from cdisc.adam.derive.grading import grading_criteria; assert grading_criteria('CTCAEv5')",
        "from cdisc.adam.derive.exposure import dose_freq_lookup; assert len(dose_freq_lookup()) > 50",
        "from cdisc.define.xsd import resources_dir; assert (resources_dir() / 'define2-1.xsl').is_file()",
        "from cdisc.standards import load_standard; load_standard('sdtmig', '3.4')",
        "print('ok')",
    ])
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
