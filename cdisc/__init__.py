"""cdisc: raw CRF exports -> CDISC SDTM and ADaM datasets, validated and packaged.

Python API (``cdisc.api``): ``cdisc.build(study)``, ``cdisc.validate(path)``, ``cdisc.read(path)``,
``cdisc.pool(out, builds)``.
The toolkit's parts are the subpackages ``cdisc.sdtm``, ``cdisc.adam``, ``cdisc.validation``.
"""
__version__ = "0.1.0"
__all__ = ["build", "validate", "read", "pool", "__version__"]


def build(*args, **kwargs):
    """Build a study (``cdisc.api.build``)."""
    from .api import build as _api_build

    return _api_build(*args, **kwargs)


def validate(*args, **kwargs):
    """Validate a folder (``cdisc.api.validate``)."""
    from .api import validate as _api_validate

    return _api_validate(*args, **kwargs)


def read(*args, **kwargs):
    """Read every dataset of a folder (``cdisc.api.read``)."""
    from .api import read as _api_read

    return _api_read(*args, **kwargs)


def pool(*args, **kwargs):
    """Pool built studies into an integrated database (``cdisc.api.pool``)."""
    from .api import pool as _api_pool

    return _api_pool(*args, **kwargs)
