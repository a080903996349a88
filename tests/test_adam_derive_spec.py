"""Issue 14 derivations called from ADaM specs (YAML, through the spec runner): last dose
before an AE (derive_vars_joined with EX), CTCAE v5 grades by name, ASEQ."""
import pandas as pd
import yaml

from cdisc.adam.runner import run_adam
from cdisc.adam.spec import AdamSpec

ADAE = """
dataset: ADAE
label: Adverse Events Analysis Dataset
class: OCCURRENCE DATA STRUCTURE
structure: One record per adverse event
keys: [USUBJID, AESEQ]
source: {dataset: AE}
steps:
  - derivation: derive_vars_dtm
    args: {new_vars_prefix: AST, dtc: AESTDTC, highest_imputation: s, flag_imputation: false}
  - derivation: derive_vars_joined
    args:
      dataset_add: EXDTM
      by_vars: [USUBJID]
      new_vars: {LDOSEDTM: EXSTDTM, DOSEON: EXDOSE, DOSEU: EXDOSU}
      filter_join: "EXSTDTM <= ASTDTM"
      order: [EXSTDTM]
      mode: last
  - derivation: derive_var_obs_number
    args: {by_vars: [USUBJID], order: [ASTDTM, AESEQ]}
variables:
  - {name: USUBJID, label: Unique Subject Identifier, origin: Predecessor, source: AE.USUBJID}
  - {name: AESEQ, label: Sequence Number, type: Num, origin: Predecessor, source: AE.AESEQ}
  - {name: ASEQ, label: Analysis Sequence Number, type: Num, method: "ASEQ by ASTDTM"}
  - {name: DOSEON, label: Dose at Onset, type: Num, method: "EXDOSE of the last dose on or before ASTDTM"}
  - {name: DOSEU, label: Dose Unit at Onset, method: "EXDOSU of that dose"}
"""


def _spec(text):
    spec = AdamSpec.model_validate(yaml.safe_load(text))
    return {spec.dataset: (spec, "adae.yaml")}


def test_last_dose_before_ae_from_a_spec():
    # EXDTM: EX with a numeric EXSTDTM (a helper dataset of the study), given directly here
    ex = pd.DataFrame({"USUBJID": ["1", "1", "2"], "EXSTDTC": ["2021-01-01T08:00",
                                                            "2021-01-08T08:00",
                                                            "2021-02-01T08:00"],
                       "EXDOSE": [100.0, 200.0, 50.0], "EXDOSU": ["mg"] * 3})
    exdtm = ex.assign(EXSTDTM=pd.to_datetime(ex["EXSTDTC"]).astype("datetime64[s]"))
    ae = pd.DataFrame({"USUBJID": ["1", "1", "2"], "AESEQ": [1.0, 2.0, 1.0],
                       "AESTDTC": ["2021-01-09T10:00", "2021-01-02T00:00", "2021-01-20T00:00"]})
    out = run_adam(_spec(ADAE), {"AE": ae, "EX": ex, "EXDTM": exdtm})["ADAE"]
    # AE 1 (01-09 10:00): last dose 01-08 -> 200 mg; AE 2 (01-02): dose 01-01 -> 100 mg;
    # subject 2's AE (01-20) precedes its only dose (02-01) -> missing
    assert out["DOSEON"].tolist()[:2] == [200.0, 100.0] and pd.isna(out["DOSEON"].iloc[2])
    assert out["DOSEU"].tolist() == ["mg", "mg", ""]
    # ASEQ by onset: subject 1's AESEQ 2 (01-02) is first
    assert out["ASEQ"].tolist() == [2.0, 1.0, 1.0]


ADLB = """
dataset: ADLB
label: Laboratory Analysis Dataset
class: BASIC DATA STRUCTURE
structure: One record per subject per parameter per analysis timepoint
keys: [USUBJID, PARAMCD, ADY]
source: {dataset: LB}
steps:
  - derivation: map_values
    args: {new_var: PARAM, source_var: PARAMCD,
           values: {NEUT: "Neutrophils (10^9/L)", K: "Potassium (mmol/L)"}}
  - derivation: map_values
    args: {new_var: ATOXDSCL, source_var: PARAMCD,
           values: {NEUT: Neutrophil count decreased, K: Hypokalemia}}
  - derivation: map_values
    args: {new_var: ATOXDSCH, source_var: PARAMCD, values: {K: Hyperkalemia}, strict: false}
  - derivation: derive_var_atoxgr_dir
    args: {new_var: ATOXGRL, tox_description_var: ATOXDSCL, criteria_direction: L,
           criteria: CTCAEv5, unit_var: AVALU}
  - derivation: derive_var_atoxgr_dir
    args: {new_var: ATOXGRH, tox_description_var: ATOXDSCH, criteria_direction: H,
           criteria: CTCAEv5, unit_var: AVALU}
  - derivation: derive_var_atoxgr
  - derivation: derive_var_shift
    args: {new_var: SHIFT1, from_var: BNRIND, to_var: ANRIND}
variables:
  - {name: USUBJID, label: Unique Subject Identifier, origin: Predecessor, source: LB.USUBJID}
  - {name: PARAMCD, label: Parameter Code, origin: Assigned}
  - {name: PARAM, label: Parameter, origin: Assigned}
  - {name: ADY, label: Analysis Relative Day, type: Num, origin: Predecessor, source: LB.LBDY}
  - {name: ATOXGR, label: Analysis Toxicity Grade, method: "CTCAE v5.0, ATOXGRL/ATOXGRH combined"}
  - {name: SHIFT1, label: Shift 1, method: "BNRIND to ANRIND"}
parameters:
  - {paramcd: NEUT, param: "Neutrophils (10^9/L)", method: LB.LBSTRESN}
  - {paramcd: K, param: "Potassium (mmol/L)", method: LB.LBSTRESN}
"""


def test_ctcae_v5_by_name_from_a_spec():
    lb = pd.DataFrame({"USUBJID": ["1"] * 4, "PARAMCD": ["NEUT", "NEUT", "K", "K"],
                       "ADY": [1.0, 8.0, 1.0, 8.0], "AVAL": [1.8, 0.4, 3.8, 6.2],
                       "ANRLO": [2.0, 2.0, 3.5, 3.5], "ANRHI": [7.5, 7.5, 5.1, 5.1],
                       "AVALU": ["10^9/L", "10^9/L", "mmol/L", "mmol/L"],
                       "BNRIND": ["LOW", "LOW", "NORMAL", "NORMAL"],
                       "ANRIND": ["LOW", "LOW", "NORMAL", "HIGH"]})
    out = run_adam({"ADLB": (AdamSpec.model_validate(yaml.safe_load(ADLB)), "adlb.yaml")},
                   {"LB": lb})["ADLB"]
    # output sorted by the keys (K before NEUT): K 3.8 normal both ways -> 0; 6.2 > 6.0 -> 3;
    # NEUT 1.8 < LLN -> -1; 0.4 < 0.5 -> -4
    assert out["PARAMCD"].tolist() == ["K", "K", "NEUT", "NEUT"]
    assert out["ATOXGR"].tolist() == ["0", "3", "-1", "-4"]
    assert out["SHIFT1"].tolist() == ["NORMAL to NORMAL", "NORMAL to HIGH", "LOW to LOW",
                                      "LOW to LOW"]
