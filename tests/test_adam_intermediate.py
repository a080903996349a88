"""Intermediate datasets (`output: false`): built, read by other specs, never written."""
from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from cdisc.adam.runner import run_adam
from cdisc.adam.spec import AdamSpec

EX = pd.DataFrame({"STUDYID": "S", "USUBJID": ["1", "1", "2"], "EXSEQ": [1.0, 2.0, 1.0],
                   "EXDOSE": [10.0, 20.0, 5.0], "EXSTDTC": ["2024-01-01", "2024-01-08", "2024-01-03"]})
DM = pd.DataFrame({"STUDYID": "S", "USUBJID": ["1", "2"]})

LASTDOSE = {"dataset": "LASTDOSE", "output": False, "source": {"dataset": "EX"},
            "steps": [{"derivation": "derive_var_extreme_flag",
                       "args": {"by_vars": ["USUBJID"], "order": ["EXSEQ"], "new_var": "LASTFL", "mode": "last"}},
                      {"derivation": "filter", "args": {"where": "LASTFL == 'Y'"}}]}
ADX = {"dataset": "ADX", "label": "X", "class": "SUBJECT LEVEL ANALYSIS DATASET", "structure": "One record per subject",
       "keys": ["USUBJID"], "source": {"dataset": "DM"},
       "steps": [{"derivation": "derive_vars_merged",
                  "args": {"dataset_add": "LASTDOSE", "by_vars": ["USUBJID"], "new_vars": {"LDOSE": "EXDOSE"}}}],
       "variables": [{"name": "STUDYID", "label": "Study Identifier", "type": "Char", "origin": "Predecessor",
                      "source": "DM.STUDYID"},
                     {"name": "USUBJID", "label": "Unique Subject Identifier", "type": "Char",
                      "origin": "Predecessor", "source": "DM.USUBJID"},
                     {"name": "LDOSE", "label": "Last Dose", "type": "Num", "method": "EXDOSE of the last EX record"}]}


def test_an_intermediate_dataset_is_read_by_another_spec_and_keeps_every_column():
    specs = {"LASTDOSE": (AdamSpec.model_validate(LASTDOSE), "lastdose.yaml"),
             "ADX": (AdamSpec.model_validate(ADX), "adx.yaml")}
    built = run_adam(specs, {"EX": EX, "DM": DM})
    # subject 1's last dose is EXSEQ 2 (20), subject 2's only dose is 5
    assert built["ADX"]["LDOSE"].tolist() == [20.0, 5.0]
    assert list(built["LASTDOSE"].columns) == list(EX.columns) + ["LASTFL"]
    assert built["LASTDOSE"]["EXSEQ"].tolist() == [2.0, 1.0]


def test_a_written_dataset_still_needs_its_metadata_and_an_ad_name():
    with pytest.raises(ValidationError, match="needs label, class, structure, keys, variables"):
        AdamSpec.model_validate({"dataset": "ADY", "source": {"dataset": "DM"}})
    with pytest.raises(ValidationError, match="starts with AD"):
        AdamSpec.model_validate({**ADX, "dataset": "XY"})


def test_a_builtin_step_without_its_argument_is_a_spec_error():
    from cdisc.errors import SpecError

    bad = {**LASTDOSE, "steps": [{"derivation": "filter", "args": {"condition": "EXSEQ == 1"}}]}
    with pytest.raises(SpecError, match="step filter needs argument where") as e:
        run_adam({"LASTDOSE": (AdamSpec.model_validate(bad), "specs/adam/lastdose.yaml")}, {"EX": EX})
    assert "specs/adam/lastdose.yaml" in str(e.value) and "steps[0] filter" in str(e.value)


def test_subjects_left_out_by_a_derivation_are_a_build_note(tmp_path):
    """derive_param_tte with on_missing_start: drop (admiral's behaviour) leaves a subject out;
    the build says so (printed note, manifest `notes`), it is not only a Python warning."""
    import datetime as dt
    from types import SimpleNamespace

    import yaml

    from cdisc.adam.build import add_adam
    from cdisc.pipeline import BuiltDataset
    from cdisc.metadata import DatasetMeta

    spec = {"dataset": "ADTTE", "label": "TTE", "class": "BASIC DATA STRUCTURE", "structure": "One record per "
            "subject per parameter", "keys": ["USUBJID", "PARAMCD"], "source": {"dataset": "ADSL", "empty": True},
            "steps": [{"derivation": "derive_param_tte", "args": {
                "dataset_adsl": "ADSL", "source_datasets": {"adsl": "ADSL"}, "start_date": "TRTSDT",
                "on_missing_start": "drop",
                "event_conditions": [{"dataset_name": "adsl", "date": "DTHDT", "filter": "present(DTHDT)"}],
                "censor_conditions": [{"dataset_name": "adsl", "date": "LSTALVDT", "censor": 1}],
                "set_values_to": {"PARAMCD": "OS", "PARAM": "Overall Survival"}}}],
            "parameters": [{"paramcd": "OS", "param": "Overall Survival", "method": "death"}],
            "variables": [{"name": n, "label": n, "type": t, "method": "m"} for n, t in
                          (("USUBJID", "Char"), ("PARAMCD", "Char"), ("PARAM", "Char"), ("AVAL", "Num"),
                           ("CNSR", "Num"))]}
    (tmp_path / "adam").mkdir()
    (tmp_path / "adam" / "adtte.yaml").write_text(yaml.safe_dump(spec))
    d = lambda *v: pd.to_datetime(pd.Series(v))  # noqa: E731
    adsl = pd.DataFrame({"STUDYID": "S", "USUBJID": ["1", "2"], "TRTSDT": d(dt.date(2020, 1, 1), None),
                         "DTHDT": d(None, None), "LSTALVDT": d(dt.date(2020, 1, 10), dt.date(2020, 2, 1))})
    meta = DatasetMeta(name="ADSL", label="ADSL", variables=[], standard="SDTM")
    result = SimpleNamespace(datasets={"ADSL": BuiltDataset(meta, adsl, "SDTM")}, source="raw", notes=[],
                             timings={}, nodes={}, node_notes={})
    add_adam(result, tmp_path)
    assert result.datasets["ADTTE"].data["USUBJID"].tolist() == ["1"]
    assert len(result.notes) == 1 and "USUBJID=2" in result.notes[0].message
