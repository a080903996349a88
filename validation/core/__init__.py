"""CDISC CORE rules (cdisc-open-rules, as CORE 0.17.1 runs them for SDTMIG 3.4) as data, and a
vectorised pandas evaluator of them."""
