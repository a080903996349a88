"""Non-compartmental analysis (NCA), PKNCA's definitions under CDISC PKPARMCD names.

Modules by job:

* ``core``: ``nca_parameters`` (one row per profile and parameter) and
  ``nca_lambda_z_flags`` (per-sample flag of the points in the λz fit, for ADPC);
  BLQ handling (``BLQRule``), AUC/AUMC integration (linear or lin-up/log-down).
* ``lambda_z``: the vectorised λz best-fit selection (PKNCA ``pk.calc.half.life``).
* ``dosing``: time since the most recent dose, dose amount per sample
  (multiple dose), accumulation ratios between two profiles.
* ``urine``: amount excreted, fraction excreted, renal clearance.

In an ADaM spec the step ``derivation: nca`` takes the arguments of ``nca_parameters``
(``blq_rule`` and ``lambda_z`` as mappings) and returns the parameter records; with
``lambda_z_flag: VAR`` it instead keeps the concentration records and adds ``VAR`` = "Y" on
the samples used in the λz fit (``nca_lambda_z_flags``), e.g. in ADPC::

    - derivation: nca
      args: {by: [STUDYID, USUBJID], time: AFRLT, value: AVAL, blq_flag: BLQFL,
             lambda_z_flag: LAMZFL}

Give both steps the same by/time/value/BLQ arguments so the flag marks the points of the
published λz.
"""
from .core import (ALL_PARAMETERS, PARAMETER_ORDER, PK_PARAMETERS, BLQRule, LambdaZRule,
                   iso_hours, nca_lambda_z_flags, nca_parameters)
from .dosing import accumulation_ratios, time_since_dose
from .urine import renal_clearance, urine_parameters

__all__ = ["ALL_PARAMETERS", "BLQRule", "LambdaZRule", "PK_PARAMETERS", "PARAMETER_ORDER",
           "accumulation_ratios", "iso_hours", "nca_lambda_z_flags", "nca_parameters",
           "renal_clearance", "time_since_dose", "urine_parameters"]
