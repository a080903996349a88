#!/usr/bin/env python
"""Extract the CDISC standards' own metadata and CT packages into cdisc/standards/ (maintenance).

Run by a maintainer, never at run time. It reads public, licensed sources that are only on a
developer machine and writes plain versioned data that ships inside the package:

- ``cdisc/standards/data/sdtmig-3.4.json``: SDTMIG v3.4 + SDTM v2.0 metadata, from the CDISC
  CORE engine's standards cache (cdisc-org/cdisc-rules-engine ``resources/cache``, MIT; a
  trimmed copy is in ``../shared/core-cache``). The cache holds pickles of CDISC Library API
  responses; they are trusted files and are opened only by this script, which therefore
  runs under the CORE venv (``../shared/tools/core-venv.sh``; Python 3.12)::

      /work/core/venv/bin/python tools/extract_standards.py

- ``cdisc/standards/data/adamig-1.3.json``: ADaMIG v1.3 (ADSL, BDS, BDS time-to-event) and
  ADaM ADAE v1.0 (OCCDS) variable tables, from CDISC Library CSV exports carried by the
  MIT-licensed repository rubentalstra/Trial-Submission-Studio (read from its git mirror),
  plus the naming conventions of ADaMIG v1.3 section 3.1, transcribed in ``ADAM_CONVENTIONS``.
- ``cdisc/standards/ct/<kind>ct-<date>.json.gz``: whole CDISC CT packages (NCI EVS), in one
  JSON layout (``codelists[]`` with ``conceptId``, ``submissionValue``, ``name``,
  ``extensible``, ``preferredTerm``, ``synonyms``, ``definition``, ``terms[]``), gzip level 9
  with mtime 0 so the same input gives the same bytes.
- ``cdisc/standards/data/PROVENANCE.md``: every source file with its SHA-256, repository,
  commit and licence.

Nothing in the toolkit reads ``../shared`` or the mirrors; ``cdisc.standards`` reads only the
files written here.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import pickle
import re
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "cdisc" / "standards"

RULES_ENGINE = ("cdisc-org/cdisc-rules-engine", "MIT")
TSS = ("rubentalstra/Trial-Submission-Studio", "MIT")
SDTM_TERMINOLOGY = ("patterninstitute/sdtm.terminology", "Apache-2.0")

# CT packages the CORE engine repository carries as pickles (same layout as ../shared/ct).
# Only blobs present in the mirror can be converted: the mirror lacks every sdtmct pickle
# after 2015-12-18 (largest files are left out of the snapshot).
CORE_CT_PICKLES = [
    "adamct-2024-03-29", "adamct-2024-09-27", "adamct-2025-03-28", "adamct-2025-09-26",
    "define-xmlct-2024-03-29", "define-xmlct-2024-09-27", "define-xmlct-2025-03-28",
    "define-xmlct-2025-09-26",
]
SHARED_CT = ["sdtmct-2025-03-28", "adamct-2026-03-27", "define-xmlct-2026-03-27"]
# patterninstitute/sdtm.terminology: NCI EVS "SDTM Terminology.txt" of 2023-12-15 (Q4 2023),
# committed in 1091442 and replaced by the 2025-03-28 file in cc39317.
EVS_TXT = [
    ("sdtmct-2023-12-15", "98a9f6f1579c76f7a8edf45e01959b69511ac482", "1091442488eb1b897eac07291b98c716703897c7"),
]
# The 2025-03-28 file of the same repository: used only to prove that the converter of the
# NCI text format reproduces ../shared/ct/sdtmct-2025-03-28.json exactly.
EVS_TXT_CHECK = ("sdtmct-2025-03-28", "a8e6c04a365464953ca1ed0517b4ff119990842a")

TSS_ADAM_FILES = {
    "adamig-1.3-variables": "crates/tss-standards/data/adam/ig/v1.3/Variables.csv",
    "adamig-1.3-structures": "crates/tss-standards/data/adam/ig/v1.3/DataStructures.csv",
}
# ADaM ADAE v1.0 export: in the repository's history only (docs/ADaM_ADAE_v1.0.csv).
TSS_ADAE = ("adam-adae-1.0-variables", "1e1eb2a37c084acab0b19784e89749441134801a",
            "f3e1e280775410a48b16731fc0da15bbee3bc5b1", "docs/ADaM_ADAE_v1.0.csv")

# ---------------------------------------------------------------------------------------
# ADaMIG v1.3 section 3.1 (ADaM Variable Conventions), transcribed by hand. The CDISC Library
# exports hold the variable tables only, not these rules.
# ---------------------------------------------------------------------------------------
ADAM_CONVENTIONS = {
    "source": "ADaMIG v1.3 (2021-11-29) section 3.1, transcribed by hand",
    "placeholders": {
        "w": {"regex": "[1-9]", "meaning": "index of the w-th variable, single digit 1-9",
              "section": "3.1.1 item 2a"},
        "xx": {"regex": "(?:0[1-9]|[1-9][0-9])", "meaning": "a specific period, zero-padded 01-99",
               "section": "3.1.1 item 2b"},
        "y": {"regex": "(?:[1-9][0-9]?)", "meaning": "grouping scheme, criterion or range, 1-99 not zero-padded",
              "section": "3.1.1 item 2c"},
        "zz": {"regex": "(?:0[1-9]|[1-9][0-9])", "meaning": "index of the zz-th variable, zero-padded 01-99",
               "section": "3.1.1 item 2d"},
    },
    "suffixes": [
        {"suffix": "FL", "type": "Char", "values": ["Y", "N"], "section": "3.1.4, Table 3.1.5.1",
         "meaning": "character flag; population flags Y/N with no nulls in ADSL (subject level), "
                    "other flags Y/N/null or Y/null"},
        {"suffix": "FN", "type": "Num", "values": [1, 0], "section": "3.1.4, Table 3.1.5.1",
         "meaning": "numeric version of a *FL flag"},
        {"suffix": "DTM", "type": "Num", "section": "3.1.2 item 3, Table 3.1.5.1", "meaning": "numeric datetime"},
        {"suffix": "DTF", "type": "Char", "codelist": "C81223", "alias": "DF", "section": "3.1.3, Table 3.1.5.1",
         "meaning": "date imputation flag (Y, M, D)"},
        {"suffix": "TMF", "type": "Char", "codelist": "C81226", "alias": "TF", "section": "3.1.3, Table 3.1.5.1",
         "meaning": "time imputation flag (H, M, S)"},
        {"suffix": "DT", "type": "Num", "section": "3.1.2 item 2, Table 3.1.5.1", "meaning": "numeric date"},
        {"suffix": "TM", "type": "Num", "section": "3.1.2 item 4, Table 3.1.5.1", "meaning": "numeric time",
         "exceptions": ["ARELTM"]},
        {"suffix": "DY", "type": "Num", "section": "3.1.2 item 8, Table 3.1.5.1",
         "meaning": "relative day, no day 0"},
        {"suffix": "GRyN", "type": "Num", "alias": "GyN", "section": "Table 3.1.5.1",
         "meaning": "numeric version of a grouping variable"},
        {"suffix": "GRy", "type": "Char", "alias": "Gy", "section": "Table 3.1.5.1", "meaning": "grouping variable"},
    ],
    "general": [
        "Names <= 8 characters, start with a letter, only A-Z, 0-9 and _; labels <= 40 characters; "
        "character values <= 200 characters (3.1.1 item 1).",
        "A variable with the name of an SDTM variable is a copy of it: same label, meaning and values (3.1.1 item 3).",
        "Of a variable pair (TRTP/TRTPN, APERIOD/APERIODC) the secondary member needs the primary (3.1.1 item 6).",
        "At least one population flag is required for datasets used for analysis (3.1.4 item 2).",
    ],
}


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob(git_dir: Path, rev_path: str) -> bytes:
    """Bytes of a blob (``<commit>:<path>`` or a blob id) from a bare mirror."""
    return subprocess.run(["git", f"--git-dir={git_dir}", "cat-file", "-p", rev_path],
                          check=True, capture_output=True).stdout


def git_head(git_dir: Path) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


def git_blob_id(git_dir: Path, rev_path: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", "rev-parse", rev_path], check=True,
                          capture_output=True, text=True).stdout.strip()


def gz(data: bytes) -> bytes:
    """Deterministic gzip: level 9, mtime 0, no file name."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0, filename="") as f:
        f.write(data)
    return buf.getvalue()


def _flat(o) -> bool:
    """Written on one line: a list of scalars, an object of scalars or lists of scalars, or a
    variable (an object with a name) whose nested objects hold no objects themselves."""
    values = list(o.values()) if isinstance(o, dict) else o
    if any(isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v) for v in values):
        return False
    nested = [v for v in values if isinstance(v, dict)]
    if not nested:
        return True
    return isinstance(o, dict) and "name" in o and all(_flat(v) and not any(isinstance(x, dict) for x in v.values())
                                                       for v in nested)


def _fmt(o, depth: int) -> str:
    one = lambda x: json.dumps(x, ensure_ascii=False, separators=(", ", ": "))   # noqa: E731
    if not isinstance(o, (dict, list)) or _flat(o):
        return one(o)
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(o, dict):
        items = [f"{inner}{one(k)}: {_fmt(v, depth + 1)}" for k, v in o.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    return "[\n" + ",\n".join(f"{inner}{_fmt(v, depth + 1)}" for v in o) + "\n" + pad + "]"


def dump_json(obj) -> bytes:
    """Diffable JSON: nested objects indented, each variable (a flat object) on one line."""
    return (_fmt(obj, 0) + "\n").encode("utf-8")


def dump_ct(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def ordinal(item: dict) -> int:
    return int(item["ordinal"])


def href_tail(link: dict | None) -> str | None:
    return link["href"].rsplit("/", 1)[-1] if link else None


# ---------------------------------------------------------------------------------------
# SDTMIG 3.4 / SDTM 2.0 from the CORE cache
# ---------------------------------------------------------------------------------------
RESTRICTION_PATTERNS = [
    (re.compile(r"^not in human clinical trials$", re.I), "not_human"),
    (re.compile(r"^not in nonclinical trials$", re.I), "not_nonclinical"),
    (re.compile(r"^not in (\w[\w ]*?) class domains$", re.I), "not_classes"),
    (re.compile(r"^not in ([A-Z]{2}) domain$", re.I), "not_domains"),
    (re.compile(r"^[Nn]ot in ((?:[A-Z]{2}, )*[A-Z]{2}),? and .*$"), "not_domains_partial"),
    (re.compile(r"^only in [\w \-]+ domains: (.*)$", re.I), "only_domains_list"),
    (re.compile(r"^((?:[A-Z]{2}, )*[A-Z]{2},? (?:and )?[A-Z]{2}) domains only$"), "only_domains_list"),
    (re.compile(r"^([A-Z]{2}) domain only$", re.I), "only_domains_list"),
]


def parse_restriction(text: str) -> dict:
    """SDTM v2.0 usageRestrictions text -> structured form (the text is kept as well)."""
    out: dict = {"text": " ".join(text.replace("\\n", " ").split())}   # one has a literal "\\n"
    for part in [p.strip() for p in out["text"].split(";") if p.strip()]:
        for rx, kind in RESTRICTION_PATTERNS:
            m = rx.match(part)
            if not m:
                continue
            if kind == "not_human":
                out["human_clinical_trials"] = False
            elif kind == "not_nonclinical":
                out["nonclinical_trials"] = False
            elif kind == "not_classes":
                out.setdefault("not_classes", []).append(m.group(1).strip())
            elif kind in ("not_domains", "not_domains_partial"):
                out.setdefault("not_domains", []).extend(re.findall(r"[A-Z]{2}", m.group(1)))
                if kind == "not_domains_partial":
                    out["partial"] = True          # e.g. "... and clinical classifications use case of RS"
            else:
                out.setdefault("only_domains", []).extend(re.findall(r"\b[A-Z]{2}\b", m.group(1)))
            break
        else:
            raise SystemExit(f"usage restriction not understood: {part!r} (extend RESTRICTION_PATTERNS)")
    return out


def ig_variable(v: dict) -> dict:
    links = v["_links"]
    codelists = [href_tail(c) for c in (links.get("codelist") or [])]
    model = None
    if links.get("modelClassVariable"):
        href = links["modelClassVariable"]["href"]          # /mdr/sdtm/2-0/classes/Events/variables/--TERM
        model = href.split("/classes/")[1].replace("/variables/", ".")
    elif links.get("modelDatasetVariable"):
        href = links["modelDatasetVariable"]["href"]        # /mdr/sdtm/2-0/datasets/DM/variables/ARMNRS
        model = href.split("/datasets/")[1].replace("/variables/", ".")
    out = {"name": v["name"], "label": v["label"], "type": v["simpleDatatype"], "core": v["core"],
           "role": v["role"], "order": ordinal(v), "codelists": codelists}
    if v.get("describedValueDomain"):
        out["format"] = v["describedValueDomain"]
    if v.get("valueList"):
        out["values"] = list(v["valueList"])
    if model:
        out["model"] = model
    return out


def model_variable(v: dict) -> dict:
    out = {"name": v["name"], "label": v["label"], "type": v["simpleDatatype"], "role": v["role"],
           "order": ordinal(v)}
    if v.get("describedValueDomain"):
        out["format"] = v["describedValueDomain"]
    if v.get("variableCcode"):
        out["ccode"] = v["variableCcode"]
    q = v["_links"].get("qualifiesVariables")
    if q:
        out["qualifies"] = [href_tail(x) for x in q]
    if v.get("usageRestrictions"):
        out["restriction"] = parse_restriction(v["usageRestrictions"])
    return out


def class_name_of(link: dict | None) -> str | None:
    return link["title"] if link else None


def extract_sdtmig(cache: Path, date: str) -> tuple[dict, list[dict], dict]:
    files = {}
    loaded = {}
    for name in ("standards_details", "standards_models", "variable_codelist_maps", "variables_metadata"):
        raw = (cache / f"{name}.pkl").read_bytes()
        files[f"{name}.pkl"] = {"sha256": sha256(raw), "bytes": len(raw)}
        loaded[name] = pickle.loads(raw)                  # trusted file (CORE cache), CORE venv only
    ig = loaded["standards_details"]["standards/sdtmig/3-4"]
    model = loaded["standards_models"]["models/sdtm/2-0"]
    cl_map = loaded["variable_codelist_maps"]["sdtmig-3-4-codelists"]
    flat_meta = loaded["variables_metadata"]["library_variables_metadata/sdtmig/3-4"]

    classes = []
    domains = []
    for c in sorted(ig["classes"], key=ordinal):
        classes.append({"name": c["name"], "label": c["label"], "order": ordinal(c),
                        "parent": class_name_of(c["_links"].get("parentClass"))})
        for ds in sorted(c.get("datasets", []), key=ordinal):
            variables = [ig_variable(v) for v in sorted(ds["datasetVariables"], key=ordinal)]
            domains.append({"name": ds["name"], "label": ds["label"], "class": c["name"],
                            "structure": ds["datasetStructure"], "keys": None, "variables": variables})

    # cross-check the per-variable codelist links against the flat variable -> codelist map
    # the engine uses (keyed by variable name only, so shared names collapse): union them.
    notes = {"codelists_added_from_map": [], "codelists_map_only_names": []}
    by_name: dict[str, list[dict]] = {}
    for d in domains:
        for v in d["variables"]:
            by_name.setdefault(v["name"], []).append(v)
    for var, codes in cl_map.items():
        if var == "name":
            continue
        codes = list(dict.fromkeys(codes))
        if var not in by_name:
            notes["codelists_map_only_names"].append(var)
            continue
        for v in by_name[var]:
            for code in codes:
                if code not in v["codelists"]:
                    v["codelists"].append(code)
                    notes["codelists_added_from_map"].append(f"{var}:{code}")

    model_classes = {}
    for c in sorted(model["classes"], key=ordinal):
        model_classes[c["name"]] = {
            "label": c["label"], "order": ordinal(c),
            "parent": class_name_of(c["_links"].get("parentClass")),
            "variables": [model_variable(v) for v in sorted(c.get("classVariables", []), key=ordinal)]}
    model_datasets = []
    for ds in sorted(model["datasets"], key=lambda d: (class_name_of(d["_links"].get("parentClass")) or "", ordinal(d))):
        model_datasets.append({
            "name": ds["name"], "label": ds["label"], "class": class_name_of(ds["_links"].get("parentClass")),
            "variables": [model_variable(v) for v in sorted(ds["datasetVariables"], key=ordinal)]})

    out = {
        "format": 1,
        "standard": {"name": "sdtmig", "version": "3.4", "title": ig["name"], "label": ig["label"],
                     "effective_date": ig["effectiveDate"], "status": ig["registrationStatus"]},
        "model": {"name": "sdtm", "version": "2.0", "title": model["name"], "label": model["label"],
                  "effective_date": model["effectiveDate"], "status": model["registrationStatus"],
                  "classes": model_classes, "datasets": model_datasets},
        "classes": classes,
        "domains": domains,
        "source": {"repository": RULES_ENGINE[0], "license": RULES_ENGINE[1],
                   "path": "resources/cache (trimmed copy: ../shared/core-cache)", "files": files,
                   "extracted": date},
    }
    stats = {
        "ig_classes": len(classes), "ig_domains": len(domains),
        "ig_variables": sum(len(d["variables"]) for d in domains),
        "ig_variables_with_codelist": sum(1 for d in domains for v in d["variables"] if v["codelists"]),
        "ig_variables_with_format": sum(1 for d in domains for v in d["variables"] if v.get("format")),
        "model_classes": {k: len(v["variables"]) for k, v in model_classes.items()},
        "model_datasets": len(model_datasets),
        "model_dataset_variables": sum(len(d["variables"]) for d in model_datasets),
        "codelist_map_entries": len(cl_map) - 1,
        "flat_variables_metadata_entries": len(flat_meta),
        "rules_in_cache": None,
        **{k: len(v) for k, v in notes.items()},
    }
    rules_dict = pickle.loads((cache / "rules_dictionary.pkl").read_bytes())
    stats["rules_in_cache"] = {k: len(v) for k, v in rules_dict.items() if v}
    for name in ("rules.pkl", "rules_dictionary.pkl"):
        raw = (cache / name).read_bytes()
        files[name] = {"sha256": sha256(raw), "bytes": len(raw), "used": False}
    return out, domains, stats | {"notes": notes}


# ---------------------------------------------------------------------------------------
# ADaMIG 1.3 / ADAE 1.0 from CDISC Library CSV exports
# ---------------------------------------------------------------------------------------
def split_codes(text: str) -> list[str]:
    return [c for c in re.split(r"[;,\s]+", text or "") if c]


def adam_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def adam_variable(row: dict, order: int) -> dict:
    out = {"name": row["Variable Name"].strip(), "label": row["Variable Label"].strip(),
           "type": row["Type"].strip(), "core": row["Core"].strip(), "role": None,
           "group": row["Variable Set"].strip(), "order": order,
           "codelists": split_codes(row["CDISC CT Codelist Code(s)"])}
    if row.get("Described Value Domain(s)", "").strip():
        out["format"] = row["Described Value Domain(s)"].strip()
    if row.get("Value List Value", "").strip():
        out["values"] = [v.strip() for v in row["Value List Value"].split(";") if v.strip()]
    if row.get("CDISC Notes", "").strip():
        # the export writes paragraph breaks as a literal backslash-n
        out["notes"] = "\n".join(" ".join(p.split()) for p in row["CDISC Notes"].split("\\n"))
    return out


def extract_adam(tss_git: Path, cache: Path, date: str) -> tuple[dict, dict]:
    head = git_head(tss_git)
    files = {}
    raw = {}
    for key, path in TSS_ADAM_FILES.items():
        b = git_blob(tss_git, f"{head}:{path}")
        raw[key] = b
        files[key] = {"repository": TSS[0], "license": TSS[1], "commit": head, "path": path,
                      "blob": git_blob_id(tss_git, f"{head}:{path}"), "sha256": sha256(b), "bytes": len(b)}
    key, blob, commit, path = TSS_ADAE
    b = git_blob(tss_git, blob)
    raw[key] = b
    files[key] = {"repository": TSS[0], "license": TSS[1], "commit": commit, "path": path, "blob": blob,
                  "sha256": sha256(b), "bytes": len(b)}

    rows = adam_rows(raw["adamig-1.3-variables"])
    versions = {r["Version"] for r in rows}
    assert versions == {"ADaMIG v1.3"}, versions
    # DataStructures.csv of that repository is cut off inside the TTE row (963 bytes): read
    # what is there and take the TTE structure text from the row as far as it goes.
    structures_text = raw["adamig-1.3-structures"].decode("utf-8-sig")
    structures = {}
    for r in csv.reader(io.StringIO(structures_text + ('"' if structures_text.count('"') % 2 else ""))):
        if r and r[0].startswith("ADaMIG"):
            structures[r[1]] = {"label": r[2], "class": r[3], "subclass": r[4] or None, "structure": r[5]}
    adsl = [adam_variable(r, i) for i, r in enumerate(
        [r for r in rows if r["Data Structure Name"] == "Subject-Level Analysis Dataset"], 1)]
    bds = [adam_variable(r, i) for i, r in enumerate(
        [r for r in rows if r["Data Structure Name"] == "Basic Data Structure"], 1)]
    assert len(adsl) + len(bds) == len(rows)
    adae_rows = adam_rows(raw[TSS_ADAE[0]])
    assert {r["Version"] for r in adae_rows} == {"ADaM ADAE v1.0"}
    adae = [adam_variable(r, i) for i, r in enumerate(adae_rows, 1)]

    # cross-check codelists with the CORE cache's ADaM variable -> codelist maps
    maps = pickle.loads((cache / "variable_codelist_maps.pkl").read_bytes())
    added = []
    for table, mapname in ((adsl, "adam-adamig-1-3-codelists"), (bds, "adam-adamig-1-3-codelists"),
                           (adae, "adam-adam-adae-1-0-codelists")):
        m = maps[mapname]
        for v in table:
            for code in dict.fromkeys(m.get(v["name"], [])):
                if code not in v["codelists"]:
                    v["codelists"].append(code)
                    added.append(f"{mapname}:{v['name']}:{code}")

    tte = structures.get("TTE", {})
    domains = [
        {"name": "ADSL", "label": structures["ADSL"]["label"], "class": "SUBJECT LEVEL ANALYSIS DATASET",
         "structure": structures["ADSL"]["structure"], "keys": None, "source": "ADaMIG v1.3 (CDISC Library export)",
         "variables": adsl},
        {"name": "BDS", "label": structures["BDS"]["label"], "class": "BASIC DATA STRUCTURE",
         "structure": structures["BDS"]["structure"], "keys": None, "source": "ADaMIG v1.3 (CDISC Library export)",
         "variables": bds},
        {"name": "TTE", "label": tte.get("label", "Basic Data Structure Time-to-Event"),
         "class": "BASIC DATA STRUCTURE", "subclass": "TIME-TO-EVENT",
         "structure": "One or more records per subject, per analysis parameter (BDS); "
                      "time-to-event analyses (ADaMIG v1.3 TTE data structure)",
         "keys": None, "source": "ADaMIG v1.3 (CDISC Library export): the BDS table, whose "
                                  "'Time-to-Event' variable set holds the TTE variables",
         "variables_from": "BDS"},
        {"name": "OCCDS", "label": "Adverse Event Analysis Dataset (ADaM ADAE v1.0)",
         "class": "OCCURRENCE DATA STRUCTURE", "subclass": "ADVERSE EVENT",
         "structure": "One record per record in the SDTM AE domain (ADAE)", "keys": None,
         "source": "ADaM ADAE v1.0 (CDISC Library export); ADaM OCCDS v1.1 was not found in a "
                   "machine-readable form",
         "variables": adae},
    ]
    out = {
        "format": 1,
        "standard": {"name": "adamig", "version": "1.3", "title": "ADaMIG v1.3",
                     "label": "Analysis Data Model Implementation Guide", "effective_date": "2021-11-29",
                     "status": "Final"},
        "model": {"name": "adam", "version": "2.1"},
        "domains": domains,
        "conventions": ADAM_CONVENTIONS,
        "source": {"files": files, "extracted": date, "codelists_added_from_core_maps": added},
    }
    stats = {"ADSL": len(adsl), "BDS": len(bds), "TTE (BDS Time-to-Event set)": sum(
        v["group"] == "Time-to-Event" for v in bds), "OCCDS (ADAE v1.0)": len(adae),
        "codelists_added_from_core_maps": len(added)}
    return out, stats


# ---------------------------------------------------------------------------------------
# Controlled terminology
# ---------------------------------------------------------------------------------------
def evs_txt_to_package(text: str, package: str, source: str) -> dict:
    """NCI EVS '<Set> Terminology.txt' (tab-separated) -> the JSON layout of ../shared/ct."""
    rows = list(csv.reader(io.StringIO(text), delimiter="\t"))
    header = rows[0]
    assert header == ["Code", "Codelist Code", "Codelist Extensible (Yes/No)", "Codelist Name",
                      "CDISC Submission Value", "CDISC Synonym(s)", "CDISC Definition",
                      "NCI Preferred Term"], header

    def syn(s: str) -> list[str]:
        return [x.strip() for x in s.split(";") if x.strip()]

    codelists: dict[str, dict] = {}
    for code, cl_code, ext, cl_name, value, synonyms, definition, pref in rows[1:]:
        if not cl_code:
            codelists[code] = {"conceptId": code, "definition": definition, "extensible": ext == "Yes",
                               "name": cl_name, "preferredTerm": pref, "submissionValue": value,
                               "synonyms": syn(synonyms), "terms": []}
    for code, cl_code, ext, cl_name, value, synonyms, definition, pref in rows[1:]:
        if cl_code:
            codelists[cl_code]["terms"].append({"conceptId": code, "definition": definition,
                                                "preferredTerm": pref, "submissionValue": value,
                                                "synonyms": syn(synonyms)})
    return {"package": package, "source": source, "codelists": list(codelists.values())}


def ct_stats(pkg: dict) -> dict:
    return {"codelists": len(pkg["codelists"]), "terms": sum(len(c["terms"]) for c in pkg["codelists"])}


def canonical(pkg: dict) -> dict:
    """Order-insensitive form for comparing two conversions of one package."""
    return {c["conceptId"]: (c["submissionValue"], c["name"], c["extensible"], c["preferredTerm"],
                             tuple(c["synonyms"]), c["definition"],
                             sorted((t["conceptId"], t["submissionValue"], t["preferredTerm"],
                                     tuple(t["synonyms"]), t["definition"]) for t in c["terms"]))
            for c in pkg["codelists"]}


def extract_ct(shared: Path, engine_git: Path, terminology_git: Path) -> list[dict]:
    ct_dir = OUT / "ct"
    ct_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def write(name: str, pkg: dict, source: dict) -> None:
        data = gz(dump_ct(pkg))
        (ct_dir / f"{name}.json.gz").write_bytes(data)
        written.append({"file": f"ct/{name}.json.gz", "bytes": len(data), **ct_stats(pkg), **source})

    for name in SHARED_CT:
        raw = (shared / "ct" / f"{name}.json").read_bytes()
        pkg = json.loads(raw)
        pkg.setdefault("package", name)
        write(name, pkg, {"from": f"../shared/ct/{name}.json", "sha256": sha256(raw),
                          "origin": pkg.get("source") or "see ../shared/README.md"})

    head = git_head(engine_git)
    for name in CORE_CT_PICKLES:
        path = f"resources/cache/{name}.pkl"
        raw = git_blob(engine_git, f"{head}:{path}")
        pkg = pickle.loads(raw)                           # trusted file (CORE repository), CORE venv only
        assert pkg["package"] == name, pkg["package"]
        write(name, pkg, {"from": f"{RULES_ENGINE[0]}@{head[:12]}:{path}", "sha256": sha256(raw),
                          "origin": "CDISC Library via the CORE engine's cache (NCI EVS CDISC CT)"})

    # the converter must reproduce the shared 2025-03-28 package from the NCI text file
    name, blob = EVS_TXT_CHECK
    text = _evs_text(terminology_git, blob)
    mine = evs_txt_to_package(text, name, "")
    theirs = json.loads((shared / "ct" / f"{name}.json").read_bytes())
    if canonical(mine) != canonical(theirs):
        raise SystemExit("the NCI text converter does not reproduce ../shared/ct/sdtmct-2025-03-28.json")
    for name, blob, commit in EVS_TXT:
        text = _evs_text(terminology_git, blob)
        raw_xz = git_blob(terminology_git, blob)
        pkg = evs_txt_to_package(
            text, name, f"NCI EVS 'SDTM Terminology.txt' (effective {name[7:]}), as carried in "
                        f"{SDTM_TERMINOLOGY[0]}@{commit[:7]} data-raw/SDTM Terminology.tar.xz")
        write(name, pkg, {"from": f"{SDTM_TERMINOLOGY[0]}@{commit[:12]}:data-raw/SDTM Terminology.tar.xz",
                          "sha256": sha256(raw_xz), "origin": "NCI EVS SDTM Terminology.txt"})
    return written


def _evs_text(git_dir: Path, blob: str) -> str:
    raw = git_blob(git_dir, blob)
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:xz") as tar:
        member = tar.getmember("SDTM Terminology.txt")
        return tar.extractfile(member).read().decode("utf-8")


# ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"),
                    help="folder of bare git mirrors named owner+repo/repo")
    ap.add_argument("--date", default=dt.date.today().isoformat(), help="extraction date recorded")
    args = ap.parse_args(argv)
    if sys.version_info < (3, 12):
        print("warning: run under the CORE venv (Python 3.12) to unpickle the cache", file=sys.stderr)
    cache = args.shared / "core-cache"
    mirror = lambda repo: args.mirrors / repo.replace("/", "+") / "repo"   # noqa: E731

    data_dir = OUT / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    sdtm, _, sdtm_stats = extract_sdtmig(cache, args.date)
    (data_dir / "sdtmig-3.4.json").write_bytes(dump_json(sdtm))
    adam, adam_stats = extract_adam(mirror(TSS[0]), cache, args.date)
    (data_dir / "adamig-1.3.json").write_bytes(dump_json(adam))
    ct = extract_ct(args.shared, mirror(RULES_ENGINE[0]), mirror(SDTM_TERMINOLOGY[0]))
    report = {"sdtmig": sdtm_stats, "adamig": adam_stats, "ct": ct,
              "engine_commit": git_head(mirror(RULES_ENGINE[0])),
              "tss_commit": git_head(mirror(TSS[0])),
              "sdtm_terminology_commit": git_head(mirror(SDTM_TERMINOLOGY[0])),
              "extracted": args.date}
    (data_dir / "sources.json").write_bytes(dump_json(report))
    update_provenance(data_dir / "PROVENANCE.md", sdtm, adam, report)
    print(json.dumps(report, indent=1))
    return 0


BEGIN, END = "<!-- sources: generated by tools/extract_standards.py -->", "<!-- end of generated sources -->"


def update_provenance(path: Path, sdtm: dict, adam: dict, report: dict) -> None:
    """Rewrite the generated block of PROVENANCE.md (files, hashes, counts); the prose around
    it is written by hand."""
    lines = [BEGIN, "", f"Extracted {report['extracted']}.", "",
             "| data file | source file | repository @ commit | SHA-256 of the source file |",
             "| --- | --- | --- | --- |"]
    for name, f in sdtm["source"]["files"].items():
        use = "not used (rules)" if f.get("used") is False else "data/sdtmig-3.4.json"
        lines.append(f"| {use} | `core-cache/{name}` ({f['bytes']:,} bytes) | {RULES_ENGINE[0]} "
                     f"`resources/cache` (trimmed copy in ../shared/core-cache) | `{f['sha256']}` |")
    for key, f in adam["source"]["files"].items():
        lines.append(f"| data/adamig-1.3.json | `{f['path']}` ({f['bytes']:,} bytes) | "
                     f"{f['repository']} @ {f['commit'][:12]} | `{f['sha256']}` |")
    for c in report["ct"]:
        lines.append(f"| {c['file']} ({c['bytes']:,} bytes; {c['codelists']:,} codelists, "
                     f"{c['terms']:,} terms) | `{c['from']}` | {c['origin']} | `{c['sha256']}` |")
    lines += ["", END]
    block = "\n".join(lines)
    text = path.read_text() if path.exists() else f"# Provenance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path}: markers of the generated block are missing")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(head + block + tail)


if __name__ == "__main__":
    sys.exit(main())
