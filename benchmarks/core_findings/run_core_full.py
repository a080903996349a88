"""(Copied from /work/core/run_core_full.py, the colleague's runner described in .helpers/core-baseline.md;
changed here only to also read Dataset-JSON files: ``*.json`` next to the ``*.xpt``, which needs the
working directory to be where the wheel put ``resources/``.)

Offline CDISC CORE (cdisc-rules-engine 0.17.1) run on a folder of XPT, like /work/shared/tools/run_core.py,
but keeping EVERY finding (not just 3 samples), the execution status of every (rule, dataset) pair, per-rule
timings and the peak RSS of the whole process tree (this process + the SyncManager server).

Usage: <core-venv>/bin/python run_core_full.py CACHE_DIR XPT_DIR OUT.json [CORE-000001 ...]
"""
import os, sys, time, pickle, json, logging, threading, collections
import psutil

T0 = time.time()
from multiprocessing.managers import SyncManager
from cdisc_rules_engine.services.cache import InMemoryCacheService
from cdisc_rules_engine.utilities.utils import (get_library_variables_metadata_cache_key,
    get_model_details_cache_key_from_ig, get_standard_details_cache_key, get_variable_codelist_map_cache_key)
from cdisc_rules_engine.models.library_metadata_container import LibraryMetadataContainer
from cdisc_rules_engine.models.sdtm_dataset_metadata import SDTMDatasetMetadata
from cdisc_rules_engine.config import config as default_config
from cdisc_rules_engine.services.data_services import DataServiceFactory
from cdisc_rules_engine.rules_engine import RulesEngine
import pyreadstat

T_IMPORT = time.time() - T0


class CacheManager(SyncManager): pass
CacheManager.register("InMemoryCacheService", InMemoryCacheService)

peak = {"rss": 0}
def sampler(stop):
    me = psutil.Process()
    while not stop.is_set():
        try:
            procs = [me] + me.children(recursive=True)
            peak["rss"] = max(peak["rss"], sum(p.memory_info().rss for p in procs))
        except psutil.Error:
            pass
        stop.wait(0.05)


def main(cache_dir, data_dir, out, only=None):
    # The engine opens resources/schema/dataset.schema.json relative to the working directory (to read
    # Dataset-JSON); the wheel installs resources/ into site-packages: run from there, with absolute paths.
    cache_dir, data_dir, out = (os.path.abspath(p) for p in (cache_dir, data_dir, out))
    import cdisc_rules_engine
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(cdisc_rules_engine.__file__))))
    logging.getLogger().disabled = True  # the engine logs every operator call at INFO to the root logger
    stop = threading.Event(); th = threading.Thread(target=sampler, args=(stop,), daemon=True); th.start()
    t = time.time()
    mgr = CacheManager(); mgr.start(); cache = mgr.InMemoryCacheService()
    # CORE's own cache format (pickle) written by CORE in /work/shared/core-cache: trusted tool
    # data read in the CORE venv only, never a spec or study input
    for f in os.listdir(cache_dir):
        if f.endswith('.pkl'):
            cache.add_all(pickle.load(open(os.path.join(cache_dir, f), 'rb')))
    std, ver = "sdtmig", "3-4"
    rules_all = pickle.load(open(os.path.join(cache_dir, 'rules.pkl'), 'rb'))
    ids = pickle.load(open(os.path.join(cache_dir, 'rules_dictionary.pkl'), 'rb'))[f"{std}/{ver}"]
    rules = [rules_all[i] for i in ids if i in rules_all and (not only or i in only)]
    sm = cache.get(get_standard_details_cache_key(std, ver))
    lib = LibraryMetadataContainer(standard_metadata=sm, model_metadata=cache.get(get_model_details_cache_key_from_ig(sm)),
        variables_metadata=cache.get(get_library_variables_metadata_cache_key(std, ver, None)),
        variable_codelist_map=cache.get(get_variable_codelist_map_cache_key(std, ver, None)), ct_package_metadata={})
    paths = [os.path.join(data_dir, f) for f in sorted(os.listdir(data_dir)) if f.endswith(('.xpt', '.json'))]
    mds = max(os.path.getsize(p) for p in paths)
    ds = DataServiceFactory(config=default_config, cache_service=cache, standard=std, standard_version=ver,
        standard_substandard=None, library_metadata=lib, max_dataset_size=mds).get_data_service(paths)
    eng = RulesEngine(cache=cache, data_service=ds, config_obj=default_config, external_dictionaries=None, standard=std,
        standard_version=ver, standard_substandard=None, library_metadata=lib, max_dataset_size=mds,
        dataset_paths=paths, ct_packages=[], validate_xml=False)
    t_setup = time.time() - t
    t = time.time()
    findings, status, timing, raised = [], collections.Counter(), {}, {}
    per_rule_status = {}; skip_why = {}
    for r in rules:
        t1 = time.time()
        try:
            res = eng.validate_single_rule(dict(r))
        except Exception as e:
            raised[r["core_id"]] = repr(e); continue
        finally:
            timing[r["core_id"]] = round(time.time() - t1, 4)
        st = collections.Counter()
        for v in res.values():
            for x in (v or []):
                if not isinstance(x, dict):
                    continue
                s = x.get("executionStatus"); st[s] += 1; status[s] += 1
                if s == "skipped":
                    e0 = (x.get("errors") or [{}])[0] if isinstance((x.get("errors") or [{}])[0], dict) else {}
                    why = " | ".join(str(z)[:120] for z in (x.get("message"), e0.get("error"), e0.get("message")) if z)
                    skip_why.setdefault(r["core_id"], collections.Counter())[why] += 1
                errs = x.get("errors", []) or []
                if s not in ("skipped", "success") and errs:
                    findings.append({"rule": r["core_id"], "dataset": x.get("dataset") or x.get("domain"),
                                     "status": s, "message": x.get("message"), "count": len(errs), "errors": errs})
        per_rule_status[r["core_id"]] = dict(st)
    t_rules = time.time() - t
    mgr.shutdown(); stop.set(); th.join()
    summary = {"engine": "cdisc-rules-engine 0.17.1", "standard": "sdtmig 3-4", "data_dir": data_dir,
               "n_rules": len(rules), "n_datasets": len(paths),
               "seconds": {"imports": round(T_IMPORT, 2), "setup": round(t_setup, 2), "rules": round(t_rules, 2),
                           "total_in_process": round(time.time() - T0, 2)},
               "peak_rss_tree_mb": round(peak["rss"] / 2**20, 1),
               "execution_status_counts": dict(status),
               "rules_with_findings": dict(collections.Counter(f["rule"] for f in findings for _ in range(f["count"]))),
               "raised": raised, "slowest_rules": sorted(timing.items(), key=lambda kv: -kv[1])[:15]}
    json.dump({"summary": summary, "per_rule_status": per_rule_status, "rule_seconds": timing,
               "skip_reasons": {k: dict(v) for k, v in skip_why.items()}, "findings": findings},
              open(out, "w"), indent=1, default=str)
    print(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:]) or None)
