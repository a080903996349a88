"""The study's terminology: whole CDISC CT packages (cdisc.standards) + specs/ct/study-ct.yaml."""
from __future__ import annotations

import pytest

from cdisc.ct import load_terminology
from cdisc.errors import SpecError
from conftest import SPECS, copy_study


@pytest.fixture(scope="module")
def ct():
    return load_terminology(SPECS)


def test_versions_come_from_study_yaml(ct):
    assert ct.package == "SDTM CT 2025-03-28; ADaM CT 2026-03-27"
    assert [(p.kind, p.version) for p in ct.packages] == [("sdtm", "2025-03-28"), ("adam", "2026-03-27")]


def test_every_cdisc_codelist_of_the_package_is_there_with_c_codes(ct):
    """The whole package, not an excerpt: a codelist no spec names (SKINTYP) is known too."""
    assert "SKINTYP" in ct and ct["SKINTYP"].code == "C74561"
    ny = ct["NY"]
    assert (ny.code, ny.extensible, sorted(ny.values)) == ("C66742", False, ["N", "NA", "U", "Y"])
    assert all(t.code for t in ny.terms)
    assert ct.package_of("NY").kind == "sdtm" and ct.package_of("DATEFL").kind == "adam"
    assert ct.package_of("ASTCTGR") is None                      # a sponsor codelist


def test_decodes(ct):
    """A paired --TESTCD decodes to the --TEST submission value of the same concept, others to
    the NCI preferred term."""
    assert ct["LBTESTCD"].decode_of()["ALT"] == "Alanine Aminotransferase"   # not "... Measurement"
    assert ct["TSPARMCD"].decode_of()["REGID"] == "Registry Identifier"
    assert ct["SEX"].decode_of()["F"] == "Female"


def test_mapping_raw_spellings(ct):
    import pandas as pd

    mapped, unknown = ct.map_values(pd.Series(["female", " Male ", "F", "", "Unknown gender"]), "SEX")
    assert mapped.tolist()[:3] == ["F", "M", "F"] and pd.isna(mapped[3])
    assert unknown.tolist() == [False, False, False, False, True]
    # a study synonym (specs/ct/study-ct.yaml: UNIT "x10^6 cells/kg" -> 10^6/kg)
    assert ct.map_values(pd.Series(["x10^6 cells/kg"]), "UNIT")[0].tolist() == ["10^6/kg"]
    # a sponsor extension of an extensible codelist
    assert ct.map_values(pd.Series(["lymphodepletion"]), "EPOCH")[0].tolist() == ["LYMPHODEPLETION"]


def test_lazy_view_for_validation(ct):
    view = ct.as_dict()
    assert bool(view) and "NY" in view and "NOSUCH" not in view
    assert view["NY"]["extensible"] is False and view.get("NOSUCH") is None


def _write(study, text: str) -> None:
    (study.specs / "ct" / "study-ct.yaml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("text, key, fragment", [
    ("extensions:\n  NY:\n    - {value: MAYBE}\n", "extensions.NY", "not extensible"),
    ("extensions:\n  ONCRSR:\n    - {value: CRh}\n", "extensions.ONCRSR", "'CRh' already in the CDISC codelist ONCRSR"),
    ("codelists:\n  SEX:\n    extensible: false\n    terms: [{value: X}]\n", "codelists.SEX", "name of a CDISC codelist"),
    ("synonyms:\n  SEX: {Woman: W}\n", "synonyms.SEX", "maps to 'W', which is not a term of codelist SEX"),
    ("synonyms:\n  NOSUCH: {a: b}\n", "synonyms.NOSUCH", "synonyms for unknown codelist"),
])
def test_study_ct_errors(tmp_path, text, key, fragment):
    s = copy_study(tmp_path, domains=("DM",))
    _write(s, text)
    with pytest.raises(SpecError) as exc:
        load_terminology(s.specs)
    (p,) = exc.value.problems
    assert p.file == "specs/ct/study-ct.yaml" and (p.key == key or key in (p.key or "")) and fragment in p.message


def test_a_ct_version_not_shipped_is_a_spec_error(tmp_path):
    s = copy_study(tmp_path, domains=("DM",))
    d = s.read_spec("study.yaml")
    d["ct"] = {"sdtm": "2019-12-20", "adam": "2026-03-27"}
    s.write_spec("study.yaml", d)
    with pytest.raises(SpecError) as exc:
        load_terminology(s.specs)
    (p,) = exc.value.problems
    assert (p.file, p.key) == ("specs/study.yaml", "ct.sdtm") and "2025-03-28" in p.hint


def test_an_older_package_side_by_side(tmp_path):
    """A study keeps the CT version it was built with: 2023-12-15 is shipped too."""
    s = copy_study(tmp_path, domains=("DM",))
    d = s.read_spec("study.yaml")
    d["ct"] = {"sdtm": "2023-12-15", "adam": "2026-03-27"}
    s.write_spec("study.yaml", d)
    _write(s, "")
    ct = load_terminology(s.specs)
    assert ct.package.startswith("SDTM CT 2023-12-15") and "NY" in ct


def test_every_cdisc_term_in_define_has_its_c_code(built, tmp_path):
    """define.xml: each CodeListItem/EnumeratedItem of a CDISC codelist that is not a sponsor
    ExtendedValue carries the term's NCI C-code (no null C-codes since the whole package is used)."""
    from lxml import etree

    from cdisc.define.from_build import write_defines
    from cdisc.package import read_build

    dirs = {"SDTM": tmp_path / "sdtm", "ADaM": tmp_path / "adam"}
    for d in dirs.values():
        d.mkdir()
    write_defines(built.out, SPECS, dirs, datasets=read_build(built.out))
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}
    checked = 0
    for d in dirs.values():
        doc = etree.parse(str(d / "define.xml"))
        for cl in doc.xpath("//odm:CodeList[odm:Alias[@Context='nci:ExtCodeID']]", namespaces=ns):
            for item in cl.xpath("odm:CodeListItem|odm:EnumeratedItem", namespaces=ns):
                if item.get("{http://www.cdisc.org/ns/def/v2.1}ExtendedValue") == "Yes":
                    continue
                assert item.xpath("odm:Alias[@Context='nci:ExtCodeID']/@Name", namespaces=ns), (
                    cl.get("OID"), item.get("CodedValue"))
                checked += 1
    assert checked > 100
