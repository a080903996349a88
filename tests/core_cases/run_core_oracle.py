"""CDISC CORE 0.17.1's own results on every open-rules test case -> core-0.17.1-results.json.gz.

The open-rules ``results.csv`` baselines were produced by a newer engine (engine@main); this
runs the engine we must agree with (cdisc-rules-engine 0.17.1, in its own Python 3.12 venv,
offline) in-process on each case folder with the repository's rule.yml, the SDTMIG 3.4
library from CORE's cache and no CT packages, and keeps its rows in the results.csv form
(Dataset, Record, Variable, Value) plus the datasets with an execution error. About 1 s per
case; split the rule ids over processes and merge with ``--merge``::

    /work/core/venv/bin/python tests/core_cases/run_core_oracle.py OPEN_RULES CACHE part1.json CORE-000001 ...
    python tests/core_cases/run_core_oracle.py --merge part1.json part2.json

``--engine-form`` (first argument) runs the rules as CORE 0.17.1 has them in its cache
(rules.pkl) instead of the repository's rule.yml (18 rules differ), into
core-0.17.1-engine-form.json.gz with ``--merge-engine-form``.
"""
import copy
import glob
import gzip
import itertools
import json
import logging
import os
import sys
import time
from pathlib import Path

OUT = Path(__file__).with_name("core-0.17.1-results.json.gz")
OUT_ENGINE = Path(__file__).with_name("core-0.17.1-engine-form.json.gz")


def _load(path):
    import pickle

    with open(path, "rb") as fh:
        return pickle.load(fh)


def merge(parts, out=OUT, form="rule.yml of open-rules 618ab81"):
    rules = {}
    for part in parts:
        src = json.loads(Path(part).read_text())
        for rid, cases in src.items():
            for case, v in cases.items():
                if "rows" in v:
                    rows = [r for r in v["rows"] if r[2] != "EXECUTION_ERROR"]
                    errs = sorted({r[0] for r in v["rows"] if r[2] == "EXECUTION_ERROR"})
                    rules.setdefault(rid, {})[case] = {"rows": sorted(rows), "errors": errs}
                else:
                    rules.setdefault(rid, {})[case] = {"crash": v.get("error")}
    doc = {"source": "CDISC CORE (cdisc-rules-engine) 0.17.1 run in-process on each open-rules test case "
                     f"({form}, SDTMIG 3.4 library from the CORE cache, no CT packages) "
                     "by tests/core_cases/run_core_oracle.py", "rules": rules}
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    with open(out, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(data)
    print(f"{len(rules)} rules -> {out}")


def run(open_rules, cache_dir, out, ids, engine_form=False):

    import pandas as pd
    import yaml
    logging.disable(logging.CRITICAL)
    from cdisc_rules_engine.config import config
    from cdisc_rules_engine.models.library_metadata_container import (
        LibraryMetadataContainer,
    )
    from cdisc_rules_engine.models.rule import Rule
    from cdisc_rules_engine.rules_engine import RulesEngine
    from cdisc_rules_engine.services import logger as engine_logger
    from cdisc_rules_engine.services.cache import InMemoryCacheService
    from cdisc_rules_engine.services.data_services import DataServiceFactory
    from cdisc_rules_engine.services.data_services.local_data_service import (
        LocalDataService,
    )
    from cdisc_rules_engine.utilities.utils import get_model_details_cache_key_from_ig

    engine_logger.disabled = True
    pk = {f: _load(f"{cache_dir}/{f}.pkl")
          for f in ["standards_details", "standards_models", "variables_metadata", "variable_codelist_maps"]}
    sm = pk["standards_details"]["standards/sdtmig/3-4"]
    lib = LibraryMetadataContainer(
        standard_metadata=sm, model_metadata=pk["standards_models"][get_model_details_cache_key_from_ig(sm)],
        variables_metadata=pk["variables_metadata"]["library_variables_metadata/sdtmig/3-4"],
        variable_codelist_map=pk["variable_codelist_maps"]["sdtmig-3-4-codelists"], ct_package_metadata={})

    def run_case(rule, data_dir):
        allowed = {Path(str(n)).stem.lower() for n in pd.read_csv(Path(data_dir) / "_datasets.csv")["Filename"].dropna()}
        paths = sorted(str(p) for p in Path(data_dir).glob("*.csv")
                       if p.name.lower() not in ("_datasets.csv", "_variables.csv") and p.stem.lower() in allowed)
        cache = InMemoryCacheService()  # a fresh cache: CORE's operation cache keys ignore the folder
        for d in pk.values():
            cache.add_all(d)
        LocalDataService._instance = None
        mds = max(os.path.getsize(p) for p in paths)
        ds = DataServiceFactory(config=config, cache_service=cache, standard="sdtmig", standard_version="3-4",
                                standard_substandard=None, library_metadata=lib,
                                max_dataset_size=mds).get_data_service(paths)
        eng = RulesEngine(cache=cache, data_service=ds, config_obj=config, external_dictionaries=None,
                          standard="sdtmig", standard_version="3-4", standard_substandard=None,
                          library_metadata=lib, max_dataset_size=mds, dataset_paths=paths, ct_packages=[],
                          validate_xml=False)
        flat = list(itertools.chain(*eng.validate_single_rule(copy.deepcopy(rule)).values()))
        rows, statuses = [], []
        for x in flat:
            statuses.append(x.get("executionStatus"))
            if x.get("executionStatus") == "issue reported":
                for e in x.get("errors") or []:
                    for v in x.get("variables", []):
                        raw = (e.get("value") or {}).get(v)
                        val = None if raw is None else str(raw)
                        if val is not None and (val.strip() == "" or val.strip().lower() == "nan"):
                            val = None
                        rows.append([(e.get("dataset") or "").removesuffix(".csv"), str(e.get("row", "")), v,
                                     "" if val in (None, "null") else val])
            elif x.get("executionStatus") == "execution error":
                for e in x.get("errors") or []:
                    rows.append([(e.get("dataset") or x.get("dataset") or ""), "", "EXECUTION_ERROR",
                                 str(e.get("message"))[:300]])
        return statuses, rows

    result = {}
    for rid in sorted(ids):
        path = next((p for f in ("Published", "Deprecated") if os.path.exists(p := f"{open_rules}/{f}/{rid}/rule.yml")), None)
        if path is None:
            continue
        if engine_form:
            rule = copy.deepcopy(_load(f"{cache_dir}/rules.pkl")[rid])
        else:
            rule = Rule.from_cdisc_metadata(yaml.safe_load(Path(path).read_text()))
        for cd in sorted(glob.glob(f"{os.path.dirname(path)}/*/*/data")):
            case = "/".join(cd.split("/")[-3:-1])
            t = time.time()
            try:
                st, rows = run_case(rule, cd)
                result.setdefault(rid, {})[case] = {"status": st, "rows": rows, "s": round(time.time() - t, 3)}
            except Exception as e:  # noqa: BLE001
                result.setdefault(rid, {})[case] = {"error": f"{type(e).__name__}: {e}"[:300]}
    Path(out).write_text(json.dumps(result, indent=0))


if __name__ == "__main__":
    if sys.argv[1] == "--merge":
        merge(sys.argv[2:])
    elif sys.argv[1] == "--merge-engine-form":
        merge(sys.argv[2:], OUT_ENGINE, "the rules as CORE 0.17.1's cache has them")
    elif sys.argv[1] == "--engine-form":
        run(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:], engine_form=True)
    else:
        run(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
