"""Adds the ADaM datasets to a build from the SDTM datasets it produced."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cdisc.pipeline import BuildResult, BuiltDataset

from .runner import build_order, load_adam_specs, run_adam


def add_adam(result: BuildResult, specs_dir: Path, *, only: set[str] | None = None, progress=None,
             previous_notes: dict[str, list[str]] | None = None) -> None:
    """Derive the ADaM datasets and add their nodes to the build graph (``result.nodes``).

    1. Every ADaM spec is a node: its spec file, upstream the nodes writing the datasets it
       reads (``AdamSpec.dependencies()``; ``SUPPAE`` is written by the AE node).
    2. ``only`` (an incremental build): derive just these datasets and the ADaM datasets they
       read (in memory; read, never written); every other output dataset is added without data,
       to be kept from the build in OUT (the caller sets ``kept``).
    3. A derivation that leaves records out says so with a warning (derive_param_tte
       on_missing_start: drop): it goes to the build's notes, printed and in the manifest, in
       build order; per dataset in ``result.node_notes`` (the build graph records them), so a
       dataset kept by an incremental build brings its notes from ``previous_notes``.
    4. ``progress(stage, dataset, records, seconds)`` hears of each derived dataset.
    """
    import time
    import warnings

    from cdisc.errors import Problem
    from cdisc.graph import Node, ancestors, node_of_dataset

    t = time.perf_counter()
    specs = load_adam_specs(specs_dir)
    if not specs:
        return
    for name, (spec, display) in specs.items():
        result.nodes[name] = Node(name, "adam", [display], [], [name] if spec.output else [])
    for name, (spec, _) in specs.items():
        ups = {node_of_dataset(d, result.nodes) for d in spec.dependencies() if d}
        result.nodes[name].upstream = sorted(u for u in ups if u is not None and u != name)
    run = specs
    if only is not None:
        needed = {n for n in ancestors(result.nodes, set(only) & set(specs)) if n in specs}
        run = {n: specs[n] for n in needed}
    sdtm = {name: ds.data for name, ds in result.datasets.items() if ds.standard == "SDTM"}
    if result.source == "delivered":
        # a CRO's SDTM: SUPP-- merged into parents, split datasets as one domain (adam.inputs)
        from .inputs import adam_inputs

        sdtm, notes = adam_inputs(sdtm)
        result.notes.extend(notes)

    notes_by: dict[str, list[str]] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seen = [0]

        def built_one(name, frame, seconds):
            notes_by[name] = [str(w.message) for w in caught[seen[0]:] if w.category.__module__.startswith("cdisc.")]
            seen[0] = len(caught)
            if progress is not None and specs[name][0].output and (only is None or name in only):
                progress("adam", name, len(frame), seconds)

        built = run_adam(run, sdtm, on_built=built_one) if run else {}
    for name in build_order(specs, set(sdtm)):
        notes = notes_by[name] if name in notes_by else list((previous_notes or {}).get(name, []))
        if notes:
            result.node_notes[name] = notes
            result.notes.extend(Problem(m, file="specs/adam") for m in notes)
    for name in sorted(specs):
        spec, _ = specs[name]
        if not spec.output:          # an intermediate dataset: read by other specs, never written
            continue
        if only is None or name in only:
            result.datasets[name] = BuiltDataset(spec.meta(), built[name], "ADaM", None)
        else:                        # kept from the build in OUT
            result.datasets[name] = BuiltDataset(spec.meta(), pd.DataFrame(), "ADaM", None)
    result.timings["adam_total"] = time.perf_counter() - t
