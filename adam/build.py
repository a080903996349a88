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
    # a derivation that leaves records out says so with a warning (derive_param_tte
    # on_missing_start: drop): it goes to the build's notes, printed and in the manifest
    import warnings

    from cdisc.errors import Problem

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        built = run_adam(specs, sdtm)
    result.notes.extend(Problem(str(w.message), file="specs/adam") for w in caught
                        if w.category.__module__.startswith("cdisc."))
    for name, frame in built.items():
        spec, _ = specs[name]
        if not spec.output:          # an intermediate dataset: read by other specs, never written
            continue
        result.datasets[name] = BuiltDataset(spec.meta(), frame, "ADaM", None)
    result.timings["adam_total"] = time.perf_counter() - t
