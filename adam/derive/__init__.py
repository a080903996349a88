"""ADaM derivation library: small, vectorised, documented derivations in the spirit of
pharmaverse admiral, called by name from the ADaM specs.

Conventions shared by every function:

* keyword arguments with consistent names: ``dataset``, ``by_vars``, ``order``,
  ``new_var``, ``filter`` (a condition in the project's safe expression language,
  evaluated by ``cdisc.expr.evaluate_filter``), ``mode`` (``"first"``/``"last"``),
  ``dataset_add`` (a second frame), ``set_values_to`` (constants for derived records);
* a new DataFrame is returned, the input is never modified, and every record is kept
  unless the function exists to add or select records (its docstring says so);
* mistakes in the arguments raise ``SpecError``; problems in the data (duplicate
  keys, invalid dates, subjects without any censoring date) raise ``DataError``
  naming the records or keys.

``DERIVATIONS`` maps each public derivation's name to the function, for the spec
runner: ``DERIVATIONS[step["derivation"]](frame, **step["args"])``.
"""
from __future__ import annotations

from typing import Callable

from .baseline import (derive_var_ablfl, derive_var_base, derive_var_chg, derive_var_pchg,
                       derive_var_shift)
from .dates import derive_vars_dt, derive_vars_dtm, derive_vars_dy
from .duration import (compute_duration, derive_var_age_years, derive_vars_aage,
                       derive_vars_duration)
from .exposure import create_single_dose_dataset
from .grading import derive_var_atoxgr, derive_var_atoxgr_dir
from .joined import derive_vars_joined, filter_joined
from .ontreatment import derive_var_ontrtfl
from .records import derive_locf_records, derive_summary_records, derive_var_obs_number
from .flags import (derive_var_anl_flag, derive_var_extreme_flag, derive_var_trtemfl,
                    derive_var_worst_flag)
from .merge import (derive_var_merged_exist_flag, derive_var_merged_summary,
                    derive_vars_merged)
from .relrec import derive_var_relrec_exist_flag
from .summary import derive_vars_merged_summary
from .params import derive_extreme_records, derive_param_computed, derive_param_exist_flag
from .timing import derive_var_relative_time, derive_vars_analysis_window, derive_vars_last_dose
from .tte import CensorSource, EventSource, MissingStartWarning, TTESource, derive_param_tte

DERIVATIONS: dict[str, Callable[..., object]] = {
    f.__name__: f
    for f in (
        derive_vars_dt,
        derive_vars_dtm,
        derive_vars_dy,
        derive_vars_merged,
        derive_var_merged_exist_flag,
        derive_var_merged_summary,
        derive_vars_merged_summary,
        derive_var_extreme_flag,
        derive_var_worst_flag,
        derive_var_anl_flag,
        derive_var_trtemfl,
        derive_var_ablfl,
        derive_var_base,
        derive_var_chg,
        derive_var_pchg,
        derive_extreme_records,
        derive_param_computed,
        derive_param_exist_flag,
        derive_param_tte,
        derive_var_relative_time,
        derive_vars_analysis_window,
        derive_vars_last_dose,
        derive_var_atoxgr,
        derive_var_relrec_exist_flag,
        # issue 14
        derive_vars_joined,
        filter_joined,
        create_single_dose_dataset,
        derive_var_obs_number,
        derive_var_atoxgr_dir,
        derive_var_shift,
        derive_var_ontrtfl,
        derive_vars_aage,
        derive_var_age_years,
        derive_vars_duration,
        derive_locf_records,
        derive_summary_records,
    )
}

__all__ = sorted(DERIVATIONS) + ["DERIVATIONS", "EventSource", "CensorSource", "TTESource",
                                 "MissingStartWarning", "compute_duration"]
