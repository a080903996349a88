"""Write library-sdtmig-3-4.json.gz: the SDTMIG 3.4 / SDTM 2.0 metadata CDISC CORE 0.17.1 uses
(its standards cache, a trimmed copy of the MIT-licensed cdisc-org/cdisc-rules-engine
resources/cache), in the compact form validation.core.library.JsonLibrary reads. A stand-in
for cdisc.standards in the tests. Run with the CORE venv (the pickles need it):

    /work/core/venv/bin/python tests/core_cases/make_library.py /work/shared/core-cache
"""
import gzip
import json
import pickle
import sys
from pathlib import Path


def _load(path):

    with open(path, "rb") as fh:
        return pickle.load(fh)


def var(v):
    links = v.get("_links") or {}
    return {
        "name": v["name"],
        "label": v.get("label", ""),
        "ordinal": int(v.get("ordinal") or 0),
        "role": v.get("role", ""),
        "core": v.get("core", ""),
        "type": v.get("simpleDatatype", ""),
        "codelists": [c["href"].rsplit("/", 1)[-1] for c in links.get("codelist", [])],
    }


def main(cache):
    cache = Path(cache)
    std = _load(cache / "standards_details.pkl")["standards/sdtmig/3-4"]
    model = _load(cache / "standards_models.pkl")["models/sdtm/2-0"]
    doc = {
        "provenance": "CDISC CORE 0.17.1 standards cache (cdisc-org/cdisc-rules-engine resources/cache, MIT): "
                      "standards/sdtmig/3-4 and models/sdtm/2-0, trimmed by tests/core_cases/make_library.py",
        "standard": {"name": "sdtmig", "version": "3.4", "classes": [
            {"name": c["name"], "datasets": [
                {"name": d["name"], "label": d.get("label", ""), "structure": d.get("datasetStructure", ""),
                 "variables": [var(v) for v in d.get("datasetVariables", [])]}
                for d in c.get("datasets", [])]}
            for c in std["classes"]]},
        "model": {"name": "sdtm", "version": "2.0",
                  "classes": [{"name": c["name"], "variables": [var(v) for v in c.get("classVariables", [])],
                               "datasets": [d["name"] for d in c.get("datasets", [])]} for c in model["classes"]],
                  "datasets": [{"name": d["name"], "label": d.get("label", ""),
                                "variables": [var(v) for v in d.get("datasetVariables", [])]}
                               for d in model.get("datasets", [])]},
    }
    out = Path(__file__).with_name("library-sdtmig-3-4.json.gz")
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    with open(out, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(data)
    print(out, len(data), "bytes", out.stat().st_size, "gz")


if __name__ == "__main__":
    main(sys.argv[1])
