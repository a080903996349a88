"""cdisc.standards: the shipped SDTMIG 3.4 / ADaMIG 1.3 metadata and CDISC CT packages.

Every expected value below was checked by hand against the source named in the comment
(cdisc/standards/data/PROVENANCE.md lists the files): the SDTMIG v3.4 domain tables and the
SDTM v2.0 class tables as published in the CDISC Library (CORE cache), the ADaMIG v1.3 and
ADaM ADAE v1.0 CDISC Library exports, and the NCI EVS CT files.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cdisc.standards import available_ct, available_standards, latest_ct, load_ct, load_standard
from cdisc.standards.model import DATA, Standard
from cdisc.standards.terminology import CT_DIR

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ig():
    return load_standard("sdtmig", "3.4")


@pytest.fixture(scope="module")
def adam():
    return load_standard("adamig", "1.3")


@pytest.fixture(scope="module")
def ct():
    return load_ct("sdtm", "2025-03-28")


# ----------------------------------------------------------------------------- SDTMIG 3.4
def test_sdtmig_counts(ig):
    # CORE cache standards/sdtmig/3-4: 9 classes, 63 datasets, 1,917 dataset variables
    assert ig.title == "SDTMIG v3.4" and ig.effective_date == "2021-11-29"
    assert (ig.model_name, ig.model_version) == ("sdtm", "2.0")
    assert len(ig.domains) == 63
    assert sum(len(d.variables) for d in ig.domains.values()) == 1917
    assert [c["name"] for c in ig.classes] == [
        "General Observations", "Interventions", "Events", "Findings", "Findings About",
        "Special-Purpose", "Trial Design", "Study Reference", "Relationship"]
    assert ig.domains["FA"].class_ == "Findings About" and ig.domains["SV"].class_ == "Special-Purpose"


def test_sdtmig_ae_aeterm(ig):
    # SDTMIG 3.4 section 6.2 AE: AETERM Req, Char, Topic
    v = ig.domains["AE"].get("AETERM")
    assert (v.label, v.type, v.core, v.role) == ("Reported Term for the Adverse Event", "Char", "Req", "Topic")
    assert v.model == "Events.--TERM"
    ae = ig.domains["AE"]
    assert ae.label == "Adverse Events" and ae.class_ == "Events"
    assert ae.structure == "One record per adverse event per subject"
    assert ae.names[:5] == ["STUDYID", "DOMAIN", "USUBJID", "SPDEVID", "AESEQ"]
    assert [v.order for v in ae.variables] == list(range(1, len(ae.variables) + 1))
    assert ae.get("DOMAIN").values == ("AE",)
    assert ae.get("AESTDTC").format == "ISO 8601 datetime or interval"
    assert ae.get("AESER").codelists == ("C66742",)          # NY
    assert ae.keys is None                                    # the Library has no keys for SDTMIG


def test_sdtmig_expected_variables_cited_by_core(ig):
    # the Expected variables CORE-000334 reported missing on our study (.helpers/core-baseline.md)
    assert ig.domains["DM"].get("ARMNRS").core == "Exp"
    assert ig.domains["DM"].get("ARMNRS").codelists == ("C142179",)   # ARMNULRS
    assert ig.domains["DM"].get("ACTARMUD").core == "Exp"
    for name in ("ISORNRLO", "ISORNRHI", "ISSTNRLO", "ISSTNRHI", "ISNRIND", "ISLLOQ"):
        assert ig.domains["IS"].get(name).core == "Exp", name
    assert ig.domains["IS"].get("ISORNRLO").label == "Reference Range Lower Limit in Orig Unit"
    assert ig.domains["PC"].get("PCNAM").core == "Exp"
    assert {v.name for v in ig.domains["DM"].expected} >= {"ARMNRS", "ACTARMUD", "RFSTDTC", "ARMCD"}
    assert ig.domains["DM"].get("COUNTRY").core == "Req"


def test_se_sv_tables(ig):
    # SDTMIG 3.4 SE lists SESTDY/SEENDY (Perm); the SV table does not list EPOCH (nor does the
    # SDTM v2.0 SV dataset), although SV assumption 11 speaks of adding it
    se = ig.domains["SE"]
    assert (se.get("SESTDY").core, se.get("SESTDY").type) == ("Perm", "Num")
    assert se.get("SEENDY").core == "Perm" and se.get("EPOCH").core == "Perm"
    sv = ig.domains["SV"]
    assert "EPOCH" not in sv.names and "TAETORD" not in sv.names
    assert "EPOCH" not in ig.model_datasets["SV"].names
    assert ig.variable("SV", "EPOCH") is None
    assert [v.name for v in ig.allowed_variables("SV")] == sv.names


def test_domain_for_split_and_supp(ig):
    assert ig.domain_for("LBCH").name == "LB" and ig.domain_for("LBHE").name == "LB"
    assert ig.domain_for("QSCG").name == "QS" and ig.domain_for("FAMH").name == "FA"
    assert ig.domain_for("lb").name == "LB"
    for name in ("SUPPAE", "SUPPLBCH", "SQAPDM"):
        assert ig.domain_for(name).name == "SUPPQUAL", name
    assert ig.domain_for("RELREC").name == "RELREC"
    assert ig.domain_for("XX") is None and ig.domain_for("XXAB") is None   # custom
    assert ig.domain_for("TSX") is None                                      # trial design is not split


def test_variable_resolves_model_names(ig):
    assert ig.variable("LB", "--SEQ").name == "LBSEQ"
    assert ig.variable("LBCH", "LBSEQ") is ig.domains["LB"].get("LBSEQ")
    # model variables the LB table does not list but the Findings class allows
    extra = ig.variable("LB", "LBRECID")
    assert extra is not None and extra.core is None and extra.label == "Invariant Record Identifier"
    # SDTM v2.0 usage restrictions
    assert ig.variable("LB", "LBSTDTC") is None             # --STDTC: "Not in Findings class domains"
    assert ig.variable("AE", "AEOCCUR") is None             # --OCCUR: "Not in AE domain"
    assert ig.variable("MH", "MHOCCUR") is not None
    assert ig.variable("LB", "LBBEATNO") is None            # --BEATNO: "EG Domain only"
    assert ig.variable("EG", "EGBEATNO") is not None
    assert ig.variable("AE", "AEFETUSID") is None and ig.variable("AE", "FETUSID") is None
    assert ig.variable("AE", "AETESTCD") is None            # a Findings variable in an Events domain
    assert ig.variable("TS", "TSVAL1") is None              # TSVALn: IG text only, not in the table


def test_class_variables_and_custom_domains(ig):
    findings = [v.name for v in ig.class_variables("FINDINGS")]
    assert findings[:3] == ["STUDYID", "DOMAIN", "USUBJID"]
    assert {"--SEQ", "--TESTCD", "--ORRES", "--STRESC", "--STRESN", "--DTC", "EPOCH"} <= set(findings)
    assert "--TERM" not in findings
    fa = [v.name for v in ig.class_variables("Findings About")]
    assert fa[fa.index("--TEST") + 1] == "--OBJ"
    assert ig.class_variables("Special-Purpose") == []
    allowed = {v.name for v in ig.allowed_variables("XX", "Findings")}
    assert {"XXSEQ", "XXTESTCD", "XXORRES", "XXDTC", "VISITNUM", "EPOCH"} <= allowed
    assert "XXSTDTC" not in allowed and "XXTERM" not in allowed
    assert ig.variable("XX", "XXTERM", "Events").label == "Reported Term"
    assert ig.variable("XX", "XXTERM") is None              # no class given: nothing can be said
    with pytest.raises(ValueError):
        ig.allowed_variables("XX")


def test_allowed_variables_follow_model_order(ig):
    lb = ig.allowed_variables("LB")
    names = [v.name for v in lb]
    assert names[:3] == ["STUDYID", "DOMAIN", "USUBJID"]
    assert names.index("LBSEQ") < names.index("LBTESTCD") < names.index("LBORRES") < names.index("VISITNUM")
    assert set(ig.domains["LB"].names) <= set(names)
    assert lb[names.index("LBORRES")] is ig.domains["LB"].get("LBORRES")   # IG entry wins
    assert len(names) == len(set(names))


# ----------------------------------------------------------------------------- ADaMIG 1.3
def test_adamig_structures(adam):
    assert {k: len(d.variables) for k, d in adam.domains.items()} == {
        "ADSL": 141, "BDS": 195, "TTE": 195, "OCCDS": 85}
    assert adam.domains["TTE"].subclass == "TIME-TO-EVENT"
    assert adam.domains["OCCDS"].class_ == "OCCURRENCE DATA STRUCTURE"
    assert adam.domain_for("ADSL").name == "ADSL" and adam.domain_for("ADLB") is None


def test_adamig_variables(adam):
    # ADaMIG v1.3 section 3.2 (ADSL) and 3.3 (BDS), CDISC Library export
    trt = adam.variable("ADSL", "TRT01P")
    assert (trt.name, trt.core, trt.type, trt.label) == ("TRTxxP", "Req", "Char", "Planned Treatment for Period xx")
    assert adam.variable("ADSL", "TRT1P") is None            # xx is two digits
    assert adam.variable("ADSL", "AGEGR1").name == "AGEGRy"
    saffl = adam.variable("ADSL", "SAFFL")
    assert (saffl.core, saffl.values) == ("Cond", ("Y", "N"))
    assert adam.variable("ADSL", "AGEU").codelists == ("C66781",)
    assert adam.variable("BDS", "PARAMCD").core == "Req" and adam.variable("BDS", "PARAM").core == "Req"
    assert adam.variable("BDS", "AVAL").core == "Cond"
    assert adam.variable("BDS", "ANL01FL").name == "ANLzzFL"
    assert adam.variable("BDS", "DTYPE").codelists == ("C81224",)
    assert adam.variable("BDS", "APERIOD").type == "Num"
    cnsr = adam.variable("TTE", "CNSR")
    assert (cnsr.type, cnsr.group) == ("Num", "Time-to-Event")
    # ADaM ADAE v1.0 (OCCDS)
    assert adam.variable("OCCDS", "AESER").core == "Req"
    assert (adam.variable("OCCDS", "AOCCFL").core, adam.variable("OCCDS", "AOCCFL").values) == ("Perm", ("Y",))
    assert adam.class_variables("BASIC DATA STRUCTURE") == adam.domains["BDS"].variables
    assert adam.class_variables("Occurrence Data Structure") == adam.domains["OCCDS"].variables
    assert adam.variable("ADAE", "AOCCPFL", "OCCURRENCE DATA STRUCTURE").core == "Perm"
    assert len({adam.variable("ADSL", "TRT01P"), adam.variable("ADSL", "TRT02P")}) == 1   # hashable


def test_adam_conventions(adam):
    conv = adam.conventions
    assert set(conv["placeholders"]) == {"w", "xx", "y", "zz"}
    suffixes = {s["suffix"]: s for s in conv["suffixes"]}
    assert suffixes["FL"]["type"] == "Char" and suffixes["DT"]["type"] == "Num"
    assert suffixes["DTF"]["codelist"] == "C81223" and suffixes["TMF"]["codelist"] == "C81226"


# ----------------------------------------------------------------------------- CT
def test_available_ct():
    have = available_ct()
    for pkg in [("sdtm", "2025-03-28"), ("sdtm", "2023-12-15"), ("adam", "2026-03-27"),
                ("define-xml", "2026-03-27")]:
        assert pkg in have
    assert latest_ct("sdtm") == "2025-03-28" and latest_ct("adam") == "2026-03-27"


def test_sdtm_ct_2025(ct):
    assert len(ct) == 1158 and ct.term_count == 43698
    ny = ct["NY"]
    assert ct["C66742"] is ny and ny.code == "C66742"
    assert ny.extensible is False and sorted(ny.values) == ["N", "NA", "U", "Y"]
    y = ny.term("Y")
    assert (y.code, y.preferred_term) == ("C49488", "Yes")
    assert ny.find(" yes ") is y and ny.find("unk").value == "U"
    assert ny.term("yes") is None and "Y" in ny and "Maybe" not in ny
    assert ct["SEX"].code == "C66731" and not ct["SEX"].extensible
    assert ct["UNIT"].extensible is True
    assert ct.term("ARMNULRS", "SCREEN FAILURE").code is not None
    assert load_ct("sdtm") is ct                              # newest, cached
    with pytest.raises(KeyError):
        ct["NOPE"]


def test_other_ct_packages():
    old = load_ct("sdtm", "2023-12-15")
    assert len(old) == 1081 and old.term_count == 39735
    assert old["NY"].values == load_ct("sdtm", "2025-03-28")["NY"].values
    adam_ct = load_ct("adam", "2026-03-27")
    assert len(adam_ct) == 25 and adam_ct["DATEFL"].code == "C81223"
    assert load_ct("define-xml", "2026-03-27").codelist("C81226") is None
    with pytest.raises(KeyError):
        load_ct("sdtm", "1999-01-01")


def test_ct_files_deterministic_gzip():
    for path in CT_DIR.glob("*.json.gz"):
        head = path.read_bytes()[:10]
        assert head[:2] == b"\x1f\x8b" and head[4:8] == b"\0\0\0\0", path.name   # mtime 0
        assert head[3] & 0x08 == 0, path.name                                   # no file name


# ----------------------------------------------------------------------------- provenance and speed
def test_provenance_and_no_shared_paths():
    text = (DATA / "PROVENANCE.md").read_text()
    for needle in ("cdisc-org/cdisc-rules-engine", "MIT", "standards_details.pkl", "NCI EVS",
                   "Trial-Submission-Studio", "transcribed"):
        assert needle in text, needle
    sources = json.loads((DATA / "sources.json").read_text())
    assert len(sources["ct"]) == len(list(CT_DIR.glob("*.json.gz")))
    for mod in (ROOT / "cdisc" / "standards").glob("*.py"):       # nothing at run time reads ../shared
        assert "../shared" not in mod.read_text() and "/work/" not in mod.read_text(), mod.name


def test_load_speed():
    raw = (DATA / "sdtmig-3.4.json").read_bytes()
    best = min(_timed(lambda: Standard(json.loads(raw))) for _ in range(3))
    assert best < 0.05 * 4                                    # 50 ms target, x4 for a busy CI machine
    assert available_standards() == [("adamig", "1.3"), ("sdtmig", "3.4")]


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
