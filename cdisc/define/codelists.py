"""CodeLists of a define.xml from the study's controlled terminology (specs/ct).

Split out of :mod:`cdisc.define.from_build`.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from cdisc.define.model import CodeList, Standard, Term
from cdisc.errors import Problem, SpecError


# --------------------------------------------------------------------------------------
# Codelists
# --------------------------------------------------------------------------------------
def _ct_packages(ct) -> tuple[dict[str, Standard], "_Owner"]:
    """CT standards by publishing set (SDTM, ADaM: the packages study.yaml names) and a
    codelist name -> standard OID lookup (sponsor codelists have none)."""
    standards: dict[str, Standard] = {}
    oids: dict[str, str] = {}
    for p in ct.packages:
        pub = "SDTM" if p.kind == "sdtm" else "ADaM"
        std = Standard(oid=f"STD.CT.{pub.upper()}.{p.version}", name="CDISC/NCI", type="CT",
                       version=p.version, publishing_set=pub)
        standards[pub] = std
        oids[p.kind] = std.oid
    return standards, _Owner(ct, oids)


class _Owner:
    """``owner.get(name)``: the OID of the CT standard whose package holds codelist ``name``."""

    def __init__(self, ct, oids: dict[str, str]):
        self._ct, self._oids = ct, oids

    def get(self, name: str, default=None):
        p = self._ct.package_of(name)
        return self._oids.get(p.kind, default) if p is not None else default


def _used_values(series_list: list[pd.Series]) -> set[str]:
    """The distinct non-blank values of the columns, as codelist coded values (a whole
    number as its integer text, 2.0 -> "2")."""
    values: set[str] = set()
    for s in series_list:
        if pd.api.types.is_numeric_dtype(s):
            uniq = np.unique(s.dropna().to_numpy(dtype=float))
            values |= {f"{x:.0f}" if x == round(x) else repr(float(x)) for x in uniq}
        else:
            text = s.astype(str).str.strip()
            values |= set(text[text != ""].unique().tolist())
    return values


def build_codelists(uses: dict[str, list[tuple[pd.Series, str]]], ct, owner,
                    *, where: str) -> list[CodeList]:
    """CodeList objects for the codelists ``uses`` names (name -> [(values, type)]).

    Steps (Define-XML 2.1 §5.3.9): 1. a name not in the study's CT is a SpecError;
    2. non-extensible and sponsor codelists: every term; extensible CDISC codelists: the
    terms used in the data in CT order, then used values CT does not have as
    ``ExtendedValue`` terms (no C-code), or every term when nothing is used;
    3. sponsor terms of a CDISC codelist (study-ct.yaml extensions) are ExtendedValue;
    4. DataType integer/float when every referencing variable is Num.
    """
    out, problems = [], []
    for name in sorted(uses):
        if name not in ct.codelists:
            problems.append(Problem(f"codelist {name} is referenced but not in specs/ct",
                                    file=where, key=name,
                                    hint="add it to specs/ct/study-ct.yaml or fix the variable's codelist"))
            continue
        cl = ct.codelists[name]
        used = _used_values([s for s, _ in uses[name]])
        cdisc_extensible = cl.extensible and not cl.sponsor
        if cdisc_extensible and used:
            chosen = [t for t in cl.terms if t.value in used]
            known = {t.value for t in cl.terms}
            extra = sorted(used - known)
        else:
            chosen, extra = list(cl.terms), []
        terms = [Term(coded_value=t.value, decode=t.decode,
                      c_code=None if (t.sponsor or cl.sponsor) else t.code,
                      extended=bool(t.sponsor and cdisc_extensible))
                 for t in chosen]
        terms += [Term(coded_value=v, extended=True) for v in extra]
        kinds = {k for _, k in uses[name]}
        data_type = "text"
        if kinds == {"Num"}:
            data_type = "integer" if all(re.fullmatch(r"-?\d+", t.coded_value) for t in terms) else "float"
        out.append(CodeList(oid=f"CL.{name}", name=cl.label, data_type=data_type,
                            c_code=None if cl.sponsor else cl.code, terms=terms,
                            standard_oid=None if cl.sponsor else owner.get(name)))
    if problems:
        raise SpecError(problems)
    return out
