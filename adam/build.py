"""Adds the ADaM datasets to a build from the SDTM datasets it produced."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from cdisc.build import BuildResult, BuiltDataset

from .runner import load_adam_specs, run_adam


def add_adam(result: BuildResult, specs_dir: Path, *, only: set[str] | None = None, progress=None) -> None:
    """Derive the ADaM datasets and add their nodes to the build graph (``result.nodes``).

    1. Every ADaM spec is a node: its spec file, upstream the nodes writing the datasets it
       reads (``AdamSpec.dependencies()``; ``SUPPAE`` is written by the AE node).
    2. ``only`` (an incremental build): derive just these datasets and the ADaM datasets they
       read (in memory; read, never written); every other output dataset is added without data,
       to be kept from the build in OUT (the caller sets ``kept``).
    3. ``progress(stage, dataset, records, seconds)`` hears of each derived dataset.
    """
    import time

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

    def built_one(name, frame, seconds):
        if progress is not None and specs[name][0].output and (only is None or name in only):
            progress("adam", name, len(frame), seconds)

    built = run_adam(run, sdtm, on_built=built_one) if run else {}
    for name in sorted(specs):
        spec, _ = specs[name]
        if not spec.output:          # an intermediate dataset: read by other specs, never written
            continue
        if only is None or name in only:
            result.datasets[name] = BuiltDataset(spec.meta(), built[name], "ADaM", None)
        else:                        # kept from the build in OUT
            result.datasets[name] = BuiltDataset(spec.meta(), pd.DataFrame(), "ADaM", None)
    result.timings["adam_total"] = time.perf_counter() - t
