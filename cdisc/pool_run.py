"""Pooling, end to end (cdisc.pooling has the why): read the builds, pick the pool's CT and
validation context, write the pooled folder through cdisc.outdir and validate it there."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError, InputError

#: The output folder kind (cdisc.outdir marker): a pool folder is replaced only by another pool
KIND = "pool"


@dataclass
class PoolOutput:
    """What ``cdisc.pool`` made: where, the exit code (0 ready, 1 validation errors), the manifest."""

    folder: Path
    exit_code: int
    manifest: dict = field(repr=False)
    validation: object = field(default=None, repr=False)

    @property
    def ready(self) -> bool:
        return self.exit_code == 0


def pool_ct(studies, spec):
    """The pool's terminology: pool.yaml ``ct``, else the newest SDTM and ADaM CT the studies were
    built with (one CT for the integrated database), plus every study's sponsor codelists and
    extensions (terms joined by value; a sponsor codelist two studies define differently keeps
    the first study's and is noted)."""
    from .ct import make_terminology

    versions = {}
    for kind in ("sdtm", "adam"):
        have = [str((s.context.get("ct") or {}).get(kind)) for s in studies if (s.context.get("ct") or {}).get(kind)]
        versions[kind] = (spec.ct or {}).get(kind) or (max(have) if have else None)
    sponsor: dict = {"codelists": {}, "extensions": {}}
    notes = []
    for s in studies:
        sp = s.context.get("sponsor_ct") or {}
        for name, body in (sp.get("codelists") or {}).items():
            if name in sponsor["codelists"] and sponsor["codelists"][name] != body:
                notes.append(f"sponsor codelist {name} differs in {s.studyid}; the first study's is used")
            sponsor["codelists"].setdefault(name, body)
        for name, terms in (sp.get("extensions") or {}).items():
            have = sponsor["extensions"].setdefault(name, [])
            have += [t for t in terms if str(t.get("value")) not in {str(h.get("value")) for h in have}]
    sponsor = {k: v for k, v in sponsor.items() if v}
    return make_terminology(versions["sdtm"], versions["adam"], sponsor, file="pool CT"), versions, sponsor, notes


def pool_context(studies, poolid: str, versions: dict, sponsor: dict, data_cut: str,
                 rows: dict | None = None) -> tuple[dict, list[str]]:
    """study.json of the pool: what validate_folder needs. ``studies``: each study's own data cut,
    rule parameters and waivers, with which validate_folder validates that study's records
    (validation/pooled.py). Also, for a reader of the pool as one folder: rule parameters of the studies joined
    (lists as the union, a scalar two studies set differently: the first study's, noted); the
    studies' waivers with their study named in the reason.

    A waiver of one record (``row``: the record number in the study's own file) follows that
    record into the pool: ``rows`` (``PoolResult.rows``) gives its pooled row, which both the
    pool's waivers and the study's own (``studies``) then name; validation/pooled.py numbers it
    among the study's records again. A record number the study's dataset does not have (or a
    dataset the pool does not hold under that name, such as LB for a study's LBCH file) is not
    applied, and noted."""
    rules: dict = {}
    waivers, notes, each = [], [], {}
    for s in studies:
        own = []
        for w in s.context.get("waivers") or []:
            if w.get("row") is None:
                own.append(w)
                waivers.append({**w, "reason": f"[{s.studyid}] {w.get('reason', '')}"})
                continue
            name = str(w.get("dataset") or "").strip().upper()
            where = (rows or {}).get(name, {}).get(s.studyid)
            r = w.get("row")
            if where is None or not isinstance(r, int) or isinstance(r, bool) or not 1 <= r <= len(where):
                notes.append(f"waiver of {w.get('rule')} {w.get('dataset')} record {r} of {s.studyid} "
                             f"not applied: the pool has no such record of {s.studyid}")
                continue
            pooled = {**w, "row": int(where[r - 1]) + 1}
            own.append(pooled)
            waivers.append({**pooled, "reason": f"[{s.studyid}] {w.get('reason', '')} (record {r} of the study's "
                                                f"{name})"})
        # what validation/pooled.py validates each study's records with
        each[s.studyid] = {"data_cut": s.manifest.get("data_cut") or (s.context or {}).get("data_cut"),
                           "validation": s.context.get("validation") or {},
                           "waivers": own,
                           "metadata": {name: m.model_dump(mode="json", by_alias=True, exclude_none=True)
                                        for name, m in sorted(s.metas.items())}}
        for rid, body in ((s.context.get("validation") or {}).get("rules") or {}).items():
            params = rules.setdefault(rid, {"params": {}})["params"]
            for k, v in ((body or {}).get("params") or {}).items():
                if k not in params:
                    params[k] = v
                elif isinstance(v, list) and isinstance(params[k], list):
                    params[k] = params[k] + [x for x in v if x not in params[k]]
                elif params[k] != v:
                    notes.append(f"rule {rid} parameter {k}: {s.studyid} sets {v!r}, the pool keeps {params[k]!r}")
    return ({"studyid": poolid, "data_cut": data_cut, "ct": versions, "sponsor_ct": sponsor,
             "validation": {"rules": rules}, "waivers": waivers, "studies": each}, notes)


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_pool(folder: Path, result, studies, poolid: str, ct_package: str, data_cut: str, context: dict,
               notes: list[str]) -> dict:
    """The pooled XPT files, metadata.json, study.json and manifest.json into ``folder`` (staging).
    Every XPT limit is checked first, so a dataset that breaks one leaves no partial folder."""
    from .xpt import check_xpt, write_xpt

    from dataclasses import replace

    problems = []
    for name, df in result.frames.items():
        for p in check_xpt(df, result.metas[name]):
            if p.row is not None and "STUDYID" in df.columns and 1 <= p.row <= len(df):
                p = replace(p, message=f"study {df['STUDYID'].iloc[p.row - 1]}: {p.message}",
                            hint=(p.hint or "") + "; pool.yaml `characters` can replace a character in every value")
            problems.append(p)
    if problems:
        raise DataError(problems)
    created = dt.datetime.combine(dt.date.fromisoformat(data_cut), dt.time(0, 0, 0))
    outputs = []
    for name, df in result.frames.items():
        meta = result.metas[name]
        sub = "sdtm" if meta.standard == "SDTM" else "adam"
        (folder / sub).mkdir(parents=True, exist_ok=True)
        path = folder / sub / f"{name.lower()}.xpt"
        info = write_xpt(path, df, meta, created)
        outputs.append({"dataset": name, "standard": meta.standard, "file": f"{sub}/{path.name}",
                        "records": int(len(df)), "variables": len(meta.variables), "bytes": path.stat().st_size,
                        "sha256": _sha256(path), "lengths": info.get("lengths", {})})
    metadata = {n: m.model_dump(mode="json", by_alias=True, exclude_none=True) for n, m in sorted(result.metas.items())}
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=1) + "\n", encoding="utf-8")
    (folder / "study.json").write_text(json.dumps(context, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    total_in = sum(sum(c["studies"].values()) for c in result.report["counts"].values())
    manifest = {
        "tool": "cdisc", "kind": "pool", "studyid": poolid, "data_cut": data_cut, "ct_package": ct_package,
        "studies": [{"studyid": s.studyid, "folder": s.shown, "manifest_sha256": s.manifest_sha256,
                     "data_cut": s.manifest.get("data_cut"), "ct_package": s.manifest.get("ct_package"),
                     "datasets": len(s.files)} for s in studies],
        "outputs": outputs,
        "records": {"in": total_in, "out": sum(o["records"] for o in outputs)},
        "pool": result.report,
        "notes": notes,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def run_pool(out: Path, folders: list[Path], spec_path: Path | None = None, *, validate: bool = True,
             fail_on: str = "error", echo=print) -> PoolOutput:
    """``cdisc pool OUT BUILD... [--spec pool.yaml]``: pool, write, validate; OUT.failed when the
    pooled data fails validation (as a build). Raises the CdiscErrors of bad input."""
    from .outdir import OutputFolder, add_to_marker
    from .pooling import PoolSpec, load_pool_spec, load_study_build, pool_studies

    spec, spec_folders = (load_pool_spec(spec_path) if spec_path is not None else (PoolSpec(), []))
    shown = [str(f) for f in folders] + [str(f) for f in spec_folders]
    paths = [Path(f) for f in folders] + spec_folders
    if len(paths) < 2:
        raise InputError(f"pooling needs at least two study build folders, got {len(paths)}",
                         hint="cdisc pool OUT BUILD1 BUILD2 ... (or list them under studies: in pool.yaml)")
    protected = {f"study build folder {s}": p for s, p in zip(shown, paths)}
    if spec_path is not None:
        protected["pool spec"] = Path(spec_path)       # OUT may sit beside it, never hold it
    staged = OutputFolder(Path(out), kind=KIND, protected=protected, option="OUT")
    studies = [load_study_build(p, s) for p, s in zip(paths, shown)]
    ct, versions, sponsor, notes = pool_ct(studies, spec)
    result = pool_studies(studies, spec, ct)
    poolid = spec.poolid or "+".join(s.studyid for s in studies)
    data_cut = max(str(s.manifest.get("data_cut") or "1960-01-01") for s in studies)
    context, more = pool_context(studies, poolid, versions, sponsor, data_cut, result.rows)
    notes += more
    with staged:
        manifest = write_pool(staged.path, result, studies, poolid, ct.package, data_cut, context, notes)
        echo(f"Pooled {len(studies)} studies ({', '.join(s.studyid for s in studies)}): {len(manifest['outputs'])} "
             f"datasets, {manifest['records']['out']} records (= {manifest['records']['in']} in the studies)")
        code, vres = 0, None
        if validate:
            from .validation import validate_folder

            vres = validate_folder(staged.path, report_dir=staged.path / "validation", fail_on=fail_on)
            add_to_marker(staged.path, "validation/")
            code = vres.exit_code(fail_on)
            echo(f"Validation: {len(vres.errors)} errors, {len(vres.warnings)} warnings, "
                 f"{len(vres.waived)} waived; {vres.verdict}")
        final = staged.commit() if code == 0 else staged.commit_failed()
    echo(f"Wrote {final}")
    return PoolOutput(final, code, manifest, vres)
