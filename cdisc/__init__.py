"""cdisc: raw CRF exports -> CDISC SDTM and ADaM datasets, validated and packaged."""

__version__ = "0.1.0"
