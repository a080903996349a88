"""`cdisc pool` (issue 16 item 5): the shipped study's build pooled with a small second study
made from it (a synthetic build folder: manifest, metadata, study.json and three XPT files), so
no second study is built here. The CDISC pilot pooled with the shipped study is benchmarks/pool.py."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cdisc.delivered import read_delivered
from cdisc.metadata import DatasetMeta
from cdisc.xpt import write_xpt
from conftest import run_cli

SYN = "SYN-01"


def make_study(built, folder: Path, *, studyid: str = SYN, usubjid=lambda u: u.replace("VGO-Cs01p", SYN),
               edit=None) -> Path:
    """A build folder of DM, AE and ADSL of the shipped study under another STUDYID: ``edit(name,
    df, meta)`` may change a dataset (returns df, meta) before it is written."""
    metas = json.loads((built.out / "metadata.json").read_text(encoding="utf-8"))
    outputs = []
    for name, sub in (("DM", "sdtm"), ("AE", "sdtm"), ("ADSL", "adam")):
        meta = DatasetMeta.model_validate(metas[name])
        df = read_delivered(built.out / built.output(name)["file"]).frame
        df["STUDYID"] = studyid
        df["USUBJID"] = df["USUBJID"].map(usubjid)
        if edit is not None:
            df, meta = edit(name, df, meta)
        (folder / sub).mkdir(parents=True, exist_ok=True)
        write_xpt(folder / sub / f"{name.lower()}.xpt", df, meta, pd.Timestamp("2025-01-31").to_pydatetime())
        outputs.append({"dataset": name, "standard": meta.standard, "file": f"{sub}/{name.lower()}.xpt",
                        "records": len(df)})
        metas[name] = meta.model_dump(mode="json", by_alias=True, exclude_none=True)
    (folder / "metadata.json").write_text(json.dumps({o["dataset"]: metas[o["dataset"]] for o in outputs}))
    (folder / "manifest.json").write_text(json.dumps({"tool": "cdisc", "studyid": studyid, "data_cut": "2025-01-31",
                                                      "ct_package": built.manifest["ct_package"], "outputs": outputs}))
    context = json.loads((built.out / "study.json").read_text(encoding="utf-8"))
    (folder / "study.json").write_text(json.dumps({**context, "studyid": studyid, "waivers": []}))
    return folder


ADULT = (18.0, 99.0)


def _spell(name, df, meta):
    """The second study's AE outcomes as a CRF spells them, one term no codelist knows, no AESCONG;
    its subjects adults (its spec's AGE range 18-99, the shipped study's 2-17), the fourth 150."""
    if name in ("DM", "ADSL"):
        df["AGE"] = 40.0
        df.loc[3, "AGE"] = 150.0
        meta = meta.model_copy(update={"variables": [v.model_copy(update={"range": ADULT}) if v.name == "AGE" else v
                                                     for v in meta.variables]})
    if name == "AE":
        df["AEOUT"] = df["AEOUT"].replace({"RECOVERED/RESOLVED": "Recovered/Resolved", "FATAL": "fatal"})
        df.loc[0, "AEOUT"] = "SORT OF BETTER"
        meta = meta.model_copy(update={"variables": [v for v in meta.variables if v.name != "AESCONG"]})
        df = df.drop(columns="AESCONG")
    return df, meta


@pytest.fixture
def vgo(built, tmp_path) -> Path:
    """DM, AE and ADSL of the shipped study as they are (a small first study: quick pools)."""
    return make_study(built, tmp_path / "vgo", studyid="VGO-Cs01p", usubjid=lambda u: u)


@pytest.fixture(scope="module")
def pooled(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    syn = make_study(built, root / "syn", edit=_spell)
    res = run_cli("pool", root / "out", built.out, syn)
    return root, syn, res


def test_every_record_of_both_studies_is_pooled_and_validated(pooled, built):
    root, syn, res = pooled
    out = root / "out" if (root / "out").is_dir() else root / "out.failed"
    assert "Pooled 2 studies (VGO-Cs01p, SYN-01): 46 datasets" in res.stdout, res.output
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["pool"]["counts"]
    # the shipped study's manifest: DM 9, AE 57 (today), ADSL 9 records; the second study the same
    n_ae = built.output("AE")["records"]
    assert counts["DM"] == {"studies": {"VGO-Cs01p": 9, "SYN-01": 9}, "pooled": 18, "sort": ["STUDYID", "USUBJID"]}
    assert counts["AE"]["studies"] == {"VGO-Cs01p": n_ae, "SYN-01": n_ae} and counts["AE"]["pooled"] == 2 * n_ae
    assert counts["ADSL"]["pooled"] == 18
    assert counts["LB"] == {"studies": {"VGO-Cs01p": 1182}, "pooled": 1182, "sort": counts["LB"]["sort"]}
    n_in = sum(o["records"] for o in built.manifest["outputs"]) + 9 + n_ae + 9
    assert manifest["records"] == {"in": n_in, "out": n_in}
    ae = read_delivered(out / "sdtm" / "ae.xpt").frame
    assert list(ae["STUDYID"].unique()) == ["SYN-01", "VGO-Cs01p"]           # sorted by STUDYID first
    dm = read_delivered(out / "sdtm" / "dm.xpt").frame
    assert dm["USUBJID"].is_unique and len(dm) == 18
    assert manifest["pool"]["subjects"]["by_study"] == {"VGO-Cs01p": {"subjects": 9, "usubjid_without_studyid": 0},
                                                        "SYN-01": {"subjects": 9, "usubjid_without_studyid": 0}}
    # CT: Mild/moderate pool as the submission values, the unknown term is kept and reported
    syn_out = ae.loc[ae["STUDYID"] == SYN, "AEOUT"]
    assert not syn_out.isin(["Recovered/Resolved", "fatal"]).any() and (syn_out == "SORT OF BETTER").sum() == 1
    harmonised = {(h["from"], h["to"]) for h in manifest["pool"]["ct_harmonised"] if h["variable"] == "AEOUT"}
    assert harmonised == {("Recovered/Resolved", "RECOVERED/RESOLVED"), ("fatal", "FATAL")}
    unknown = [u for u in manifest["pool"]["ct_unknown"] if u["variable"] == "AEOUT"]
    assert unknown == [{"study": SYN, "file": f"{syn}/sdtm/ae.xpt", "dataset": "AE", "variable": "AEOUT",
                        "codelist": "OUT", "value": "SORT OF BETTER", "records": 1}]
    assert manifest["pool"]["absent"]["AE"] == {"AESCONG": [SYN]}
    assert (ae.loc[ae["STUDYID"] == SYN, "AESCONG"] == "").all()
    assert (out / "validation" / "results.json").is_file() and "Validation:" in res.stdout


def test_a_variable_char_in_one_study_and_num_in_another_is_an_error(built, vgo, tmp_path):
    def age_as_text(name, df, meta):
        if name == "DM":
            df["AGE"] = df["AGE"].map(lambda a: f"{a:.0f}")
            meta = meta.model_copy(update={"variables": [v.model_copy(update={"type": "Char"}) if v.name == "AGE"
                                                         else v for v in meta.variables]})
        return df, meta

    syn = make_study(built, tmp_path / "syn", edit=age_as_text)
    res = run_cli("pool", tmp_path / "out", vgo, syn, "--no-validate")
    assert res.code == 1 and res.exception is None
    assert "DM, column AGE: DM.AGE is Char in SYN-01 but Num in VGO-Cs01p" in res.stderr
    assert not (tmp_path / "out").exists() and "Traceback" not in res.output


def test_a_usubjid_in_two_studies_is_reported_not_merged(built, vgo, tmp_path):
    syn = make_study(built, tmp_path / "syn", usubjid=lambda u: u)        # the same USUBJIDs
    res = run_cli("pool", tmp_path / "out", vgo, syn, "--no-validate")
    assert res.code == 1
    assert "USUBJID VGO-Cs01p-101-001 is in study SYN-01 (ADSL, AE, DM) and in study VGO-Cs01p (" in res.stderr
    assert not (tmp_path / "out").exists()
    # pool.yaml says they are the same people (an extension study): pooled apart, reported
    (tmp_path / "pool.yaml").write_text("studies: [syn]\nshared_subjects: true\n")
    res = run_cli("pool", tmp_path / "out", vgo, "--spec", tmp_path / "pool.yaml", "--no-validate")
    assert res.code == 0, res.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    shared = manifest["pool"]["subjects"]["shared"]
    assert len(shared) == 9 and shared[0]["studies"]["SYN-01"] == ["ADSL", "AE", "DM"]
    assert manifest["pool"]["counts"]["DM"]["pooled"] == 18


def test_pooling_twice_writes_the_same_bytes_and_recodes_are_recorded(built, vgo, tmp_path):
    make_study(built, tmp_path / "syn")          # the second study the pool.yaml names
    (tmp_path / "pool.yaml").write_text(
        "poolid: ISS\nstudies: [syn]\nrecodes:\n- {dataset: AE, variable: AEDECOD, study: SYN-01, from: Pyrexia,"
        " to: Fever, reason: dictionary version}\n")
    outs = []
    for k in (1, 2):
        res = run_cli("pool", tmp_path / f"out{k}", vgo, "--spec", tmp_path / "pool.yaml", "--no-validate")
        assert res.code == 0, res.output
        outs.append({p.relative_to(tmp_path / f"out{k}").as_posix(): p.read_bytes()
                     for p in sorted((tmp_path / f"out{k}").rglob("*")) if p.is_file() and p.name != ".cdisc-output.json"})
    assert outs[0] == outs[1] and len(outs[0]) >= 6
    manifest = json.loads(outs[0]["manifest.json"])
    assert manifest["studyid"] == "ISS"
    rec = manifest["pool"]["recodes"]
    assert len(rec) == 1 and rec[0]["study"] == SYN and rec[0]["to"] == "Fever"
    ae = read_delivered(tmp_path / "out1" / "sdtm" / "ae.xpt").frame
    assert (ae.loc[ae["STUDYID"] == SYN, "AEDECOD"] == "Fever").sum() == rec[0]["records"]


def test_bad_inputs_get_a_message_and_no_traceback(built, tmp_path):
    (tmp_path / "empty").mkdir()
    res = run_cli("pool", tmp_path / "out", built.out, tmp_path / "empty")
    assert res.code == 2 and "has no manifest.json: not a cdisc build folder" in res.stderr
    syn = make_study(built, tmp_path / "syn")
    (syn / "sdtm" / "ae.xpt").write_bytes(b"not an xpt file")
    res = run_cli("pool", tmp_path / "out", built.out, syn, "--no-validate")
    assert res.code == 2 and "ae.xpt" in res.stderr and "Traceback" not in res.output
    (tmp_path / "spec").mkdir()
    (tmp_path / "spec" / "pool.yaml").write_text("studies: [../syn]\n")
    res = run_cli("pool", tmp_path / "out", built.out, "--spec", tmp_path / "spec" / "pool.yaml")
    assert res.code == 2 and "points outside" in res.stderr
    res = run_cli("pool", tmp_path / "out", built.out, built.out)
    assert res.code == 2 and "STUDYID VGO-Cs01p is in two of the folders" in res.stderr
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    res = run_cli("pool", keep, built.out, make_study(built, tmp_path / "syn2"), "--no-validate")
    assert res.code == 2 and "not a pool folder written by cdisc" in res.stderr
    assert (keep / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "out").exists()
    shutil.rmtree(syn)


def test_each_studys_records_are_validated_with_that_studys_own_specs(pooled):
    """The pool's validation runs each study's records with its own metadata (validation/pooled.py):
    the second study's adults are checked against its AGE range 18-99, not the shipped study's
    2-17 (which would flag all nine of them in DM and ADSL); its one subject of 150 is found, on
    that subject's record of the pooled file."""
    root, syn, res = pooled
    out = root / "out" if (root / "out").is_dir() else root / "out.failed"
    results = json.loads((out / "validation" / "results.json").read_text())
    found = sorted((f["dataset"], f["row"], f["usubjid"], f["value"]) for f in results["findings"]
                   if f["rule"] == "CDISC-DS-012")
    expected = []
    for name, sub in (("ADSL", "adam"), ("DM", "sdtm")):
        df = read_delivered(out / sub / f"{name.lower()}.xpt").frame
        old = df.index[df["AGE"] == 150.0]
        assert len(old) == 1 and df.loc[old[0], "STUDYID"] == SYN
        expected.append((name, int(old[0]) + 1, df.loc[old[0], "USUBJID"], "150"))
    assert found == expected
    # a study's own waivers and parameters travel in the pool's study.json, per study
    context = json.loads((out / "study.json").read_text())
    assert sorted(context["studies"]) == [SYN, "VGO-Cs01p"]
    assert context["studies"][SYN]["metadata"]["DM"]["variables"][[v["name"] for v in context["studies"][SYN]["metadata"]["DM"]["variables"]].index("AGE")]["range"] == list(ADULT)


def test_a_waiver_of_one_record_follows_it_into_the_pool(built, tmp_path):
    """A study's waiver of record 4 of its DM (the subject aged 150) waives that record's finding
    at its pooled row, and only that one: the same subject's ADSL record is still found. A
    waiver of a record the study does not have is noted in the manifest, not applied."""
    later = "XYZ-02"                    # sorts after VGO-Cs01p: its records move down in the pool
    syn = make_study(built, tmp_path / "syn", studyid=later, usubjid=lambda u: u.replace("VGO-Cs01p", later),
                     edit=_spell)
    context = json.loads((syn / "study.json").read_text())
    context["waivers"] = [
        {"rule": "CDISC-DS-012", "dataset": "DM", "row": 4, "reason": "confirmed with the site"},
        {"rule": "CDISC-DS-012", "dataset": "DM", "row": 99, "reason": "no such record"}]
    (syn / "study.json").write_text(json.dumps(context))
    res = run_cli("pool", tmp_path / "out", built.out, syn)
    out = tmp_path / "out" if (tmp_path / "out").is_dir() else tmp_path / "out.failed"
    dm = read_delivered(out / "sdtm" / "dm.xpt").frame
    pooled_row = int(dm.index[(dm["STUDYID"] == later) & (dm["AGE"] == 150.0)][0]) + 1
    syn_dm = read_delivered(syn / "sdtm" / "dm.xpt").frame
    assert syn_dm.loc[3, "AGE"] == 150.0 and pooled_row == 9 + 4     # after the shipped study's 9 subjects
    results = json.loads((out / "validation" / "results.json").read_text())
    found = [(f["dataset"], f["row"]) for f in results["findings"] if f["rule"] == "CDISC-DS-012"]
    waived = [(f["dataset"], f["row"], f["waiver"]["reason"]) for f in results["waived"]
              if f["rule"] == "CDISC-DS-012"]
    assert [d for d, _ in found] == ["ADSL"]
    assert waived == [("DM", pooled_row, "confirmed with the site")]
    study_json = json.loads((out / "study.json").read_text())
    assert [w["row"] for w in study_json["studies"][later]["waivers"]] == [pooled_row]
    assert [(w["row"], w["reason"]) for w in study_json["waivers"] if w.get("row")] == [
        (pooled_row, f"[{later}] confirmed with the site (record 4 of the study's DM)")]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [n for n in manifest["notes"] if "waiver" in n] == [
        f"waiver of CDISC-DS-012 DM record 99 of {later} not applied: the pool has no such record of {later}"]
    assert "Validation:" in res.stdout
