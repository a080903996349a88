"""Adds the ADaM datasets to a build from the SDTM datasets it produced."""
from __future__ import annotations

from pathlib import Path

from cdisc.build import BuildResult, BuiltDataset

from .runner import load_adam_specs, run_adam


def add_adam(result: BuildResult, specs_dir: Path) -> None:
    import time

    t = time.perf_counter()
    specs = load_adam_specs(specs_dir)
    if not specs:
        return
    sdtm = {name: ds.data for name, ds in result.datasets.items() if ds.standard == "SDTM"}
    if result.source == "delivered":
        # a CRO's SDTM: SUPP-- merged into parents, split datasets as one domain (adam.inputs)
        from .inputs import adam_inputs

        sdtm, notes = adam_inputs(sdtm)
        result.notes.extend(notes)
    built = run_adam(specs, sdtm)
    for name, frame in built.items():
        spec, _ = specs[name]
        if not spec.output:          # an intermediate dataset: read by other specs, never written
            continue
        result.datasets[name] = BuiltDataset(spec.meta(), frame, "ADaM", None)
    result.timings["adam_total"] = time.perf_counter() - t
