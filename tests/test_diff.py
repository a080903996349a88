"""`cdisc diff OLD NEW`: two data cuts of the shipped study, and small hand-made folders.

The second cut is the shipped study with three raw AE edits (raw/ae.csv, the EDC export):
  1. 102-003 record position 5 (Diarrhoea, started 31-JAN-2025): AETOXGR 1 -> 2;
  2. 101-003 record position 7 (Hypotension, 23-JAN-2025, grade 3) deleted;
  3. 103-003 a new record position 11: Headache, 20-MAY-2025 to 21-MAY-2025, grade 1.
Hand-worked consequences (AESEQ follows AESTDTC within a subject, specs/sdtm/ae.yaml):
  AE    key STUDYID/USUBJID/AEDECOD/AESTDTC: 1 changed (AETOXGR '1' -> '2'), 1 removed
        (Hypotension 2025-01-23, 101-003's latest AE, AESEQ 7 of 7), 1 added (Headache
        2025-05-20, after 103-003's latest AE fever 2025-05-13: AESEQ 10, its nine active
        records being positions 1-8 and 10); 57 records on both sides. AEHLGT length 60 -> 52:
        the 60-character "Decreased and nonspecific blood pressure disorders and shock" was the
        deleted record's, the longest left is 102-003's 52-character "Gastrointestinal
        motility and defaecation conditions".
  ADAE  key STUDYID/USUBJID/AESEQ: the same three records; the grade change shows in
        AETOXGR, ATOXGR ('1' -> '2') and ATOXGRN (1 -> 2); the occurrence flags do not move
        (102-003's worst grade is 4, and Diarrhoea is the subject's only AE of its SOC/PT).
  SUPPAE 4 qualifiers per AE record (AECRS, AEDLT, AEICANS, AETOXSCL: No/No/No for both
        edited records, so no CRS/ICANS grade rows): 4 removed (101-003, IDVARVAL 7), 4 added
        (103-003, IDVARVAL 10); IDVARVAL length 1 -> 2 ("10").
  CO    the deleted raw row had a comment (AESPID 7): 1 removed.
  Nothing else changes.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cdisc.diff import choose_keys, diff_folders, diff_frames, render_html, render_text
from cdisc.metadata import DatasetMeta, VariableMeta
from tests.conftest import copy_study, run_cli, tree_bytes

CHANGED = {"AE", "ADAE", "SUPPAE", "CO"}


@pytest.fixture(scope="module")
def second_cut(tmp_path_factory):
    study = copy_study(tmp_path_factory.mktemp("cut2"))
    ae = study.read_csv("ae")
    pick = (ae["SUBJECT"] == "102-003") & (ae["RECORDPOSITION"] == "5")
    assert ae.loc[pick, "AETERM"].tolist() == ["diarrhea"] and ae.loc[pick, "AETOXGR"].tolist() == ["1"]
    ae.loc[pick, "AETOXGR"] = "2"
    gone = (ae["SUBJECT"] == "101-003") & (ae["RECORDPOSITION"] == "7")
    assert ae.loc[gone, "AETERM"].tolist() == ["Hypotension"]
    ae = ae[~gone]
    new = ae[(ae["SUBJECT"] == "103-003") & (ae["RECORDPOSITION"] == "10")].copy()
    headache = ae[ae["AEDECOD"] == "Headache"].iloc[0]
    for c in ("AELLTCD", "AEPTCD", "AEHLT", "AEHLTCD", "AEHLGT", "AEHLGTCD", "AESOC", "AESOCCD"):
        new[c] = headache[c]
    new = new.assign(RECORDPOSITION="11", AETERM="Headache", AELLT="Headache", AEDECOD="Headache",
                     AESTDAT="20-MAY-2025", AEENDAT="21-MAY-2025", AECOMM="", AETOXGR="1")
    study.write_csv("ae", pd.concat([ae, new], ignore_index=True))
    res = study.build(study.root / "build")
    assert res.code == 0, res.stderr
    return study.root / "build"


@pytest.fixture(scope="module")
def cuts(built, second_cut):
    return diff_folders(built.out, second_cut)


def _ds(result, name):
    return next(d for d in result.datasets if d.name == name)


def test_only_the_edited_datasets_change(cuts):
    assert {d.name for d in cuts.datasets if d.has_changes} == CHANGED
    assert len(cuts.datasets) == 46 and all(d.status == "compared" for d in cuts.datasets)
    counts = {d.name: (d.old_records, d.new_records, d.n_added, d.n_removed, d.changed_records)
              for d in cuts.datasets if d.name in CHANGED}
    assert counts == {"AE": (57, 57, 1, 1, 1), "ADAE": (57, 57, 1, 1, 1), "SUPPAE": (245, 245, 4, 4, 0),
                      "CO": (11, 10, 0, 1, 0)}


def test_ae_records_and_values(cuts):
    ae = _ds(cuts, "AE")
    assert ae.keys == ["STUDYID", "USUBJID", "AEDECOD", "AESTDTC"] and ae.key_source == "metadata.json of NEW"
    assert ae.added.to_dict("records") == [{"STUDYID": "VGO-Cs01p", "USUBJID": "VGO-Cs01p-103-003",
                                            "AEDECOD": "Headache", "AESTDTC": "2025-05-20"}]
    assert ae.removed.to_dict("records") == [{"STUDYID": "VGO-Cs01p", "USUBJID": "VGO-Cs01p-101-003",
                                              "AEDECOD": "Hypotension", "AESTDTC": "2025-01-23"}]
    assert ae.changed.to_dict("records") == [{"STUDYID": "VGO-Cs01p", "USUBJID": "VGO-Cs01p-102-003",
                                              "AEDECOD": "Diarrhoea", "AESTDTC": "2025-01-31",
                                              "VARIABLE": "AETOXGR", "OLD": "1", "NEW": "2"}]
    assert ae.variable_changes == [{"variable": "AEHLGT", "attribute": "length", "old": 60, "new": 52}]
    assert not ae.variables_added and not ae.variables_removed and ae.label is None and not len(ae.duplicates)


def test_adae_follows_its_source(cuts):
    adae = _ds(cuts, "ADAE")
    assert adae.keys == ["STUDYID", "USUBJID", "AESEQ"]
    assert adae.added[["USUBJID", "AESEQ"]].values.tolist() == [["VGO-Cs01p-103-003", 10.0]]
    assert adae.removed[["USUBJID", "AESEQ"]].values.tolist() == [["VGO-Cs01p-101-003", 7.0]]
    assert adae.changed[["USUBJID", "AESEQ", "VARIABLE", "OLD", "NEW"]].values.tolist() == [
        ["VGO-Cs01p-102-003", 5.0, "AETOXGR", "1", "2"],
        ["VGO-Cs01p-102-003", 5.0, "ATOXGR", "1", "2"],
        ["VGO-Cs01p-102-003", 5.0, "ATOXGRN", 1.0, 2.0]]
    supp = _ds(cuts, "SUPPAE")
    assert supp.removed[["USUBJID", "IDVARVAL", "QNAM"]].values.tolist() == [
        ["VGO-Cs01p-101-003", "7", q] for q in ("AECRS", "AEDLT", "AEICANS", "AETOXSCL")]
    assert supp.added[["USUBJID", "IDVARVAL", "QNAM"]].values.tolist() == [
        ["VGO-Cs01p-103-003", "10", q] for q in ("AECRS", "AEDLT", "AEICANS", "AETOXSCL")]
    assert supp.variable_changes == [{"variable": "IDVARVAL", "attribute": "length", "old": 1, "new": 2}]


def test_cli_terminal_json_html_and_read_only(built, second_cut, tmp_path):
    before = (tree_bytes(built.out), tree_bytes(second_cut))
    page = tmp_path / "diff.html"
    res = run_cli("diff", built.out, second_cut, "--html", page, "--limit", "5")
    assert res.code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == f"Comparing OLD {built.out} (study VGO-Cs01p, data cut 2026-02-28)"
    assert f"{'AE':<9}{57:>8}{57:>8}{1:>8}{1:>8}{1:>8}  AEHLGT length 60->52" in lines
    assert f"{'DM':<9}{9:>8}{9:>8}{0:>8}{0:>8}{0:>8}  no differences" in lines
    text = res.stdout
    assert "    USUBJID=VGO-Cs01p-102-003 AEDECOD=Diarrhoea AESTDTC=2025-01-31\n      AETOXGR: '1' -> '2'\n" in text
    assert "      ATOXGRN: 1 -> 2\n" in text
    assert "  removed (1 record):\n    USUBJID=VGO-Cs01p-101-003 AESEQ=7\n" in text
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html and "http" not in html
    assert '<h2 id="ds-ADAE">ADAE</h2>' in html and '<td class="old">1</td><td class="new">2</td>' in html
    assert (tree_bytes(built.out), tree_bytes(second_cut)) == before      # never writes into OLD/NEW

    res = run_cli("diff", built.out, second_cut, "--json", "--dataset", "adae")
    assert run_cli("diff", built.out, second_cut, "--json", "--dataset", "adae").stdout == res.stdout  # deterministic
    data = json.loads(res.stdout)
    assert [d["dataset"] for d in data["datasets"]] == ["ADAE"] and data["has_changes"] is True
    assert data["datasets"][0]["changed_values"][2] == {"STUDYID": "VGO-Cs01p", "USUBJID": "VGO-Cs01p-102-003",
                                                       "AESEQ": 5, "VARIABLE": "ATOXGRN", "OLD": 1, "NEW": 2}
    res = run_cli("diff", built.out, second_cut, "--dataset", "SUPPAE", "--limit", "2")
    assert ("  added (4 records, first 2):\n"
            "    RDOMAIN=AE USUBJID=VGO-Cs01p-103-003 IDVAR=AESEQ IDVARVAL=10 QNAM=AECRS\n"
            "    RDOMAIN=AE USUBJID=VGO-Cs01p-103-003 IDVAR=AESEQ IDVARVAL=10 QNAM=AEDLT\n"
            "  removed (4 records, first 2):\n") in res.stdout
    assert run_cli("diff", built.out, second_cut, "--fail-on-change", "--dataset", "CO").code == 1
    assert run_cli("diff", built.out, second_cut, "--fail-on-change", "--dataset", "DM").code == 0
    res = run_cli("diff", built.out, second_cut, "--html", built.out / "diff.html")
    assert res.code == 2 and "never writes into the folders it compares" in res.stderr
    assert not (built.out / "diff.html").exists()
    res = run_cli("diff", built.out, second_cut, "--dataset", "XX")
    assert res.code == 2 and "dataset XX in neither" in res.stderr


def test_identical_builds(built):
    res = run_cli("diff", built.out, built.out, "--fail-on-change")
    assert res.code == 0
    assert res.stdout.splitlines()[-1] == "No differences: 46 datasets, 6122 records compared."


# -- small hand-made folders (no build: keys from the data) --------------------------------
def _write(folder: Path, name: str, df: pd.DataFrame, labels: dict | None = None, label: str = "") -> None:
    """One dataset as XPT v5 (labels default to the variable names)."""
    import datetime

    from cdisc.xpt import write_xpt

    folder.mkdir(parents=True, exist_ok=True)
    meta = DatasetMeta(name=name, label=label or name, variables=[
        VariableMeta(name=c, label=(labels or {}).get(c, c), type="Num" if df[c].dtype.kind in "fi" else "Char")
        for c in df.columns])
    write_xpt(folder / f"{name.lower()}.xpt", df, meta, datetime.datetime(2026, 1, 1))


def _ae(rows):
    return pd.DataFrame(rows, columns=["STUDYID", "USUBJID", "AESEQ", "AETERM", "AETOXGR"]).astype(
        {"AESEQ": "float64"})


def test_duplicate_key_is_reported_not_a_crash(tmp_path):
    old = _ae([["S", "S-1", 1, "Headache", "1"], ["S", "S-1", 2, "Nausea", "1"], ["S", "S-2", 1, "Rash", "2"]])
    # NEW: S-1 AESEQ 2 on two records (Nausea kept, Vomiting new); Rash grade 2 -> 3
    new = _ae([["S", "S-1", 1, "Headache", "1"], ["S", "S-1", 2, "Nausea", "1"], ["S", "S-1", 2, "Vomiting", "1"],
               ["S", "S-2", 1, "Rash", "3"]])
    _write(tmp_path / "old", "AE", old)
    _write(tmp_path / "new", "AE", new)
    d = diff_folders(tmp_path / "old", tmp_path / "new").datasets[0]
    assert d.keys == ["STUDYID", "USUBJID", "AESEQ"] and d.key_source == "AESEQ sequence number, no build metadata"
    assert d.duplicates.to_dict("records") == [{"STUDYID": "S", "USUBJID": "S-1", "AESEQ": 2.0,
                                                "OLD_COUNT": 1, "NEW_COUNT": 2}]
    # the rows of key S-1/2 compared whole: Nausea on both sides, Vomiting added
    assert d.added.values.tolist() == [["S", "S-1", 2.0]] and len(d.removed) == 0
    assert d.changed[["USUBJID", "VARIABLE", "OLD", "NEW"]].values.tolist() == [["S-2", "AETOXGR", "2", "3"]]
    assert d.changed_records == 1
    text = render_text(diff_folders(tmp_path / "old", tmp_path / "new"))
    assert f"{'AE':<9}{3:>8}{4:>8}{1:>8}{0:>8}{1:>8}  1 duplicate key" in text.splitlines()
    assert ("  key values on more than one record (1; their records compared as whole rows):\n"
            "    USUBJID=S-1 AESEQ=2 (OLD 1, NEW 2)\n") in text


def test_keyless_dataset_is_a_multiset(tmp_path):
    # no USUBJID, no --SEQ: rows compared whole. OLD has (a,1) twice, NEW once; (b,2) -> (b,3)
    old = pd.DataFrame({"CODE": ["a", "a", "b", "c"], "VALUE": [1.0, 1.0, 2.0, np.nan]})
    new = pd.DataFrame({"CODE": ["c", "b", "a"], "VALUE": [np.nan, 3.0, 1.0]})
    assert choose_keys("XX", old, new) == (None, "no key")
    d = diff_frames("XX", old, new, None)
    assert d.removed.values.tolist() == [["a", 1.0], ["b", 2.0]]      # sorted by row content
    assert d.added.values.tolist() == [["b", 3.0]]
    assert d.changed_records == 0 and "multiset" in d.notes[0]


def test_dataset_added_variable_added_label_type_changed(tmp_path):
    dm = pd.DataFrame({"STUDYID": ["S", "S"], "USUBJID": ["S-1", "S-2"], "AGE": [30.0, 41.0], "SEX": ["F", "M"]})
    _write(tmp_path / "old", "DM", dm, {"AGE": "Age"})
    dm2 = dm.assign(AGE=["30", "42"], RACE=["ASIAN", "<WHITE & OTHER>"])          # AGE Num -> Char, RACE new
    _write(tmp_path / "new", "DM", dm2, {"AGE": "Age in Years"})
    _write(tmp_path / "new", "AE", _ae([["S", "S-1", 1, "Headache", "1"]]))
    res = diff_folders(tmp_path / "old", tmp_path / "new")
    ae, dm_d = res.datasets
    assert (ae.name, ae.status, ae.n_added, ae.new_records) == ("AE", "added", 1, 1)
    assert dm_d.keys == ["STUDYID", "USUBJID"] and dm_d.key_source == "one record per subject, no build metadata"
    assert dm_d.variables_added == ["RACE"] and dm_d.variables_removed == []
    assert dm_d.variable_changes == [{"variable": "AGE", "attribute": "label", "old": "Age", "new": "Age in Years"},
                                     {"variable": "AGE", "attribute": "type", "old": "Num", "new": "Char"},
                                     {"variable": "AGE", "attribute": "length", "old": 8, "new": 2}]
    # AGE compared as text: 30 == "30", 41 -> "42"
    assert dm_d.changed[["USUBJID", "VARIABLE", "OLD", "NEW"]].values.tolist() == [["S-2", "AGE", 41.0, "42"]]
    text = render_text(res)
    assert f"{'AE':<9}{0:>8}{1:>8}{1:>8}{0:>8}{0:>8}  dataset only in NEW" in text.splitlines()
    page = render_html(res)
    # an escaped value: a changed text with markup in it
    _write(tmp_path / "new2", "DM", dm.assign(SEX=["F", "<b>M</b>"]), {"AGE": "Age"})
    page = render_html(diff_folders(tmp_path / "old", tmp_path / "new2"))
    assert "<td class=\"new\">&lt;b&gt;M&lt;/b&gt;</td>" in page and "<b>M</b>" not in page


def test_xpt_and_parquet_of_the_same_data_agree(built, tmp_path):
    """A parquet copy of the build's AE (pandas, no labels) against the XPT: the same values,
    so nothing added, removed or changed; the labels parquet lacks are reported as changes."""
    import shutil

    (tmp_path / "xpt").mkdir()
    shutil.copyfile(built.out / "sdtm" / "ae.xpt", tmp_path / "xpt" / "ae.xpt")
    (tmp_path / "pq").mkdir()
    built.df("AE").to_parquet(tmp_path / "pq" / "ae.parquet", index=False)
    (d,) = diff_folders(tmp_path / "xpt", tmp_path / "pq").datasets
    assert d.keys == ["STUDYID", "USUBJID", "AESEQ"] and (d.old_records, d.new_records) == (57, 57)
    assert (len(d.added), len(d.removed), d.changed_records) == (0, 0, 0)
    assert {c["attribute"] for c in d.variable_changes} == {"label"}
    assert {"variable": "AETERM", "attribute": "label", "old": "Reported Term for the Adverse Event",
            "new": ""} in d.variable_changes


def test_empty_side_and_bad_folders(tmp_path):
    empty = _ae([])
    one = _ae([["S", "S-1", 1, "Headache", "1"]])
    d = diff_frames("AE", empty, one, ["STUDYID", "USUBJID", "AESEQ"])
    assert (len(d.added), len(d.removed), d.changed_records) == (1, 0, 0)
    d = diff_frames("AE", one, empty, None)
    assert (len(d.added), len(d.removed)) == (0, 1)
    (tmp_path / "nothing").mkdir()
    _write(tmp_path / "old", "AE", one)
    res = run_cli("diff", tmp_path / "old", tmp_path / "nothing")
    assert res.code == 2 and "holds no dataset files" in res.stderr
    res = run_cli("diff", tmp_path / "old", tmp_path / "missing")
    assert res.code == 2 and "NEW folder" in res.stderr and "does not exist" in res.stderr


def test_pooled_studies_keep_studyid_in_the_lines():
    from cdisc.diff import DiffResult

    old = _ae([["A", "X-1", 1, "Headache", "1"], ["B", "X-1", 1, "Headache", "1"]])
    new = _ae([["A", "X-1", 1, "Headache", "1"], ["B", "X-1", 1, "Headache", "2"]])
    d = diff_frames("AE", old, new, ["STUDYID", "USUBJID", "AESEQ"])
    side = {"folder": "x", "studyid": None, "data_cut": None}
    text = render_text(DiffResult(side, side, [d]))
    assert "    STUDYID=B USUBJID=X-1 AESEQ=1\n      AETOXGR: '1' -> '2'\n" in text
