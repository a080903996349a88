"""Coding dictionaries in define.xml: MedDRA, WHODrug as ``ExternalCodeList`` codelists.

``specs/study.yaml`` names each dictionary's version (``dictionaries: {MEDDRA: '27.1'}``).
The variables a dictionary codes are known by name (SDTMIG 3.4 §6.2 AE/MH and §6.1 CM:
the MedDRA hierarchy variables and their codes; the WHODrug decode and ATC classes), in
SDTM and in the ADaM datasets that carry them (ADAE, ADMH, ADCM):

* each coded variable's ItemDef gets a CodeListRef to ``CL.<DICT>`` (text terms) or
  ``CL.<DICT>.CODE`` (integer codes: the CodeList DataType must be the ItemDef's),
  each an ``ExternalCodeList Dictionary="MedDRA" Version="27.1"``;
* in SDTM their origin is ``Assigned`` (Define-XML 2.1 §5.3.6.3 / Origin Type CT:
  "determined by individual judgment ... rather than collected or derived", which names
  dictionary coding); ADaM keeps the spec's origin (Predecessor AE.AEDECOD);
* a dataset holding a coded variable whose dictionary has no version in study.yaml is a
  SpecError naming ``specs/study.yaml`` and the key ``dictionaries.<DICT>``.
"""
from __future__ import annotations

from cdisc.define.model import CodeList, DatasetDefinition, ExternalDictionary, Origin
from cdisc.errors import Problem, SpecError

# dictionary key in study.yaml -> (ExternalCodeList/@Dictionary, domain prefixes,
#                                  term suffixes, code suffixes)
DICTIONARIES = {
    "MEDDRA": ("MedDRA", ("AE", "MH", "CE"),
               ("DECOD", "LLT", "HLT", "HLGT", "SOC", "BODSYS"),
               ("LLTCD", "PTCD", "HLTCD", "HLGTCD", "SOCCD", "BDSYCD")),
    "WHODRUG": ("WHODrug", ("CM",), ("DECOD", "CLAS"), ("CLASCD",)),
}
# ADaM datasets and the SDTM domain whose coded variables they carry
ADAM_SOURCES = {"ADAE": "AE", "ADMH": "MH", "ADCM": "CM", "ADCE": "CE"}


def coded_variables(dataset: str) -> dict[str, tuple[str, bool]]:
    """Variable -> (dictionary key, is a code) for one dataset name (AE, ADAE, CM, ...)."""
    domain = ADAM_SOURCES.get(dataset, dataset)
    out: dict[str, tuple[str, bool]] = {}
    for key, (_, domains, terms, codes) in DICTIONARIES.items():
        if domain in domains:
            out.update({f"{domain}{s}": (key, False) for s in terms})
            out.update({f"{domain}{s}": (key, True) for s in codes})
    return out


def codelist_oid(key: str, is_code: bool) -> str:
    return f"CL.{key}" + (".CODE" if is_code else "")


def apply_dictionaries(datasets: list[DatasetDefinition], dictionaries: dict[str, str], *,
                       standard: str, study_file: str = "specs/study.yaml") -> list[CodeList]:
    """Point every dictionary-coded item at its ExternalCodeList; return the codelists.

    Args:
        datasets: the define's datasets (items changed in place: codelist, SDTM origin).
        dictionaries: study.yaml ``dictionaries`` (key -> version); keys are matched
            case-insensitively (``MedDRA`` = ``MEDDRA``).
        standard: SDTM (origin becomes Assigned, Sponsor) or ADaM (origin kept).
        study_file: named in the error for a missing version.

    Raises:
        SpecError: a coded variable is present but its dictionary has no version.
    """
    versions = {k.upper(): str(v) for k, v in (dictionaries or {}).items()}
    used: dict[tuple[str, bool], None] = {}
    problems: list[Problem] = []
    for ds in datasets:
        coded = coded_variables(ds.name)
        for item in ds.items:
            if item.name not in coded:
                continue
            key, is_code = coded[item.name]
            if key not in versions:
                problems.append(Problem(
                    f"{ds.name}.{item.name} is coded with {DICTIONARIES[key][0]}, but study.yaml "
                    f"gives no version for it", file=study_file, key=f"dictionaries.{key}",
                    hint=f"add `dictionaries: {{{key}: '<version>'}}` to {study_file}"))
                continue
            if is_code and item.data_type == "float":
                continue                      # a code is a whole number; never seen
            is_int = is_code and item.data_type == "integer"
            item.codelist_oid = codelist_oid(key, is_int)
            used[(key, is_int)] = None
            if standard == "SDTM":
                item.origin = Origin(type="Assigned", source="Sponsor")
    if problems:
        raise SpecError(problems)
    out = []
    for key, is_code in sorted(used):
        name = DICTIONARIES[key][0]
        out.append(CodeList(
            oid=codelist_oid(key, is_code), name=f"{name} codes" if is_code else name,
            data_type="integer" if is_code else "text",
            external=ExternalDictionary(dictionary=name, version=versions[key])))
    return out
