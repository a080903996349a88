"""Standardised results: --STRESC, --STRESN, --STRESU from --ORRES/--ORRESU (SDTMIG 3.4 §4.5.1).

One unit conversion table, kept as data in ``specs/study.yaml`` (``lookups.unit_conversions``),
serves every findings domain. A row per test and original unit::

    - {testcd: HGB, orresu: g/dL, stresu: g/L, factor: 10, decimals: 0}
    - {testcd: HGB, orresu: g/L, stresu: g/L}          # factor 1: the standard unit itself
    - {testcd: PH}                                      # no orresu: the test is unitless

``testcd`` is the --TESTCD, ``orresu``/``stresu`` are CDISC UNIT submission values (the
original unit after CT mapping, so ``µmol/L`` and ``umol/L`` are one row), ``factor``
multiplies the original value (default 1), ``offset`` is added after it (default 0; an
affine conversion such as degrees F -> C: ``factor: 0.5555555556, offset: -17.7777777778``,
i.e. (F - 32) x 5/9) and ``decimals`` rounds the standard value; --STRESC is the rounded
number without padding (177.8, not 177.80).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdisc.distinct import clean_text, on_distinct_rows

from cdisc.ct import Codelist, normalise
from cdisc.errors import Problem, SpecError
from cdisc.rawio import FILE_COL, ROW_COL

from .functions import _QUALIFIED, blank, number_text, parse_numbers

TABLE = "lookups.unit_conversions"
TABLE_FILE = "specs/study.yaml"
_TITER = r"^\s*1\s*:\s*(?P<num>\d+(?:\.\d+)?)\s*$"


def conversion_table(rows: list[dict]) -> pd.DataFrame:
    """The conversion rows as a frame (testcd, orresu, stresu, factor, decimals), checked.

    A row without ``testcd``, with a non-numeric ``factor``, with ``stresu`` but no
    ``orresu`` or repeating a (testcd, orresu) pair is a SpecError naming its key path.
    """
    problems = []
    recs = []
    for i, row in enumerate(rows or []):
        key = f"{TABLE}[{i}]"
        if not isinstance(row, dict) or not str(row.get("testcd") or "").strip():
            problems.append(Problem("a unit conversion row needs testcd", file=TABLE_FILE, key=key))
            continue
        unknown = set(row) - {"testcd", "orresu", "stresu", "factor", "offset", "decimals", "comment"}
        if unknown:
            problems.append(Problem(f"unknown keys {sorted(unknown)}", file=TABLE_FILE, key=key,
                                    hint="allowed: testcd, orresu, stresu, factor, offset, decimals, comment"))
        try:
            offset = float(row.get("offset", 0))
            factor = float(row.get("factor", 1))
            decimals = None if row.get("decimals") is None else int(row["decimals"])
        except (TypeError, ValueError):
            problems.append(Problem("factor and offset must be numbers and decimals an integer", file=TABLE_FILE,
                                    key=key))
            continue
        orresu = str(row.get("orresu") or "").strip()
        stresu = str(row.get("stresu") or "").strip()
        if bool(orresu) != bool(stresu):
            problems.append(Problem("give both orresu and stresu, or neither (a unitless test)",
                                    file=TABLE_FILE, key=key))
        recs.append({"testcd": str(row["testcd"]).strip(), "orresu": orresu, "stresu": stresu,
                     "factor": factor, "offset": offset, "decimals": decimals, "__key": key})
    table = pd.DataFrame(recs, columns=["testcd", "orresu", "stresu", "factor", "offset", "decimals", "__key"])
    dup = table.duplicated(["testcd", "orresu"], keep="first")
    for key, tc, u in zip(table.loc[dup, "__key"], table.loc[dup, "testcd"], table.loc[dup, "orresu"]):
        problems.append(Problem(f"test {tc} unit {u or '(none)'} is listed twice", file=TABLE_FILE, key=key))
    if problems:
        raise SpecError(problems)
    return table.drop(columns="__key")


def standardise(orres: pd.Series, orresu: pd.Series | None, testcd: pd.Series | None, raw: pd.DataFrame, *,
                part: str, conversions: list[dict], where: str, names: dict[str, pd.Series] | None = None,
                lloq: pd.Series | None = None, below_lloq: list[str] = (), blq: str = "BLQ",
                codelist: Codelist | None = None) -> tuple[pd.Series, list[Problem]]:
    """Derive one of --STRESC / --STRESN / --STRESU from the original result and unit.

    Arguments: ``orres`` the result as collected (text), ``orresu`` its unit (CT value),
    ``testcd`` the test code, ``raw`` the stacked raw rows (for file and row in messages),
    ``part`` which variable to return, ``conversions`` the study's conversion rows,
    ``where`` the spec location, ``names`` the raw column of orres/orresu per record,
    ``lloq`` the lower limit of quantitation in the original unit, ``below_lloq`` the
    spellings meaning "below the LLOQ" (e.g. BLQ, <LLOQ) and ``blq`` their --STRESC,
    ``codelist`` the codelist of character results.

    Steps (SDTMIG 3.4 §4.5.1 Original and Standardized Results; PC/LB below-LLOQ assumptions):
    1. a blank result gives blank standard results (a not-done test; no error);
    2. classify the result: a number; a number with a qualifier (``<5``, ``>=100``); a
       titre ``1:N`` (standardised to its reciprocal N, SDTMIG IS); a below-LLOQ spelling;
       otherwise character;
    3. numbers, qualified numbers and titres need a conversion row for (test, unit): a
       blank unit is an error unless the test is unitless in the table; a unit the table
       does not list for the test is an error (no silent pass-through of unconverted units);
    4. --STRESN = value x factor + offset, rounded to ``decimals``; missing for qualified results,
       below-LLOQ results and character results;
    5. --STRESC = the original number text when the unit is already standard (factor 1,
       no rounding), else the converted number as text; qualified results keep their
       qualifier with the converted limit (``<5`` stays ``<5``); a number below ``lloq``
       becomes ``<LLOQ`` (e.g. an MRD of 0.003 % with sensitivity 0.01 % -> ``<0.01``) with
       --STRESN missing, since it is below what the assay can quantify; below-LLOQ
       spellings become ``blq`` (PCSTRESC "BLQ"); character results are mapped through
       ``codelist`` when given (unknown terms are errors), else kept as collected;
    6. --STRESU = the table's standard unit for every result that has one.
    Returns (the part, problems naming file, row and raw column).
    """
    parts, problems = standardise_all(orres, orresu, testcd, raw, conversions=conversions, where=where,
                                      names=names, lloq=lloq, below_lloq=below_lloq, blq=blq, codelist=codelist)
    return parts[part], problems


#: The problems standardise can find, in the order they are reported, with their hints.
_PROBLEMS = [
    ("not_number", "orres", "enter the number with a decimal point and no thousands separator (5.3, 1200); "
                            "leave it blank if the test was not done"),
    ("no_unit", "orresu", f"enter the unit, or list the test as unitless (a row without orresu) in {TABLE_FILE} {TABLE}"),
    ("no_conv", "orresu", None),
    ("unknown", "orres", "use one of: {values}, or add the spelling under synonyms.{name} in specs/ct/study-ct.yaml"),
]


def standardise_all(orres: pd.Series, orresu: pd.Series | None, testcd: pd.Series | None, raw: pd.DataFrame, *,
                    conversions: list[dict], where: str, names: dict[str, pd.Series] | None = None,
                    lloq: pd.Series | None = None, below_lloq: list[str] = (), blq: str = "BLQ",
                    codelist: Codelist | None = None) -> tuple[pd.DataFrame, list[Problem]]:
    """:func:`standardise` for all three parts at once: a frame (stresc, stresn, stresu) and the problems.

    The result of a record depends only on its (result, unit, test, LLOQ), so the work is done
    once per distinct combination (cdisc.distinct) and taken back to every record; the
    problems are then reported per record, in record order, as before.
    """
    idx = orres.index
    names = names or {}
    table = conversion_table(conversions)
    frame = pd.DataFrame({
        "orres": orres, "orresu": orresu if orresu is not None else pd.Series("", index=idx, dtype="str"),
        "testcd": testcd if testcd is not None else pd.Series("", index=idx, dtype="str"),
        "lloq": lloq if lloq is not None else pd.Series(np.nan, index=idx)}, index=idx)
    res = on_distinct_rows(frame, lambda f: _standardise_values(f, table, below_lloq, blq, codelist))
    problems: list[Problem] = []
    for kind, which, hint in _PROBLEMS:
        mask = res[kind].notna().to_numpy()
        if not mask.any():
            continue
        if kind == "no_conv":
            hint = f"add a row {{testcd, orresu, stresu, factor}} to {TABLE} in {TABLE_FILE} ({where})"
        elif kind == "unknown":
            hint = hint.format(values=", ".join(codelist.values[:12]), name=codelist.name)
        column = names.get(which, pd.Series(which, index=idx))
        for f, r, c, m in zip(raw.loc[mask, FILE_COL].tolist(), raw.loc[mask, ROW_COL].tolist(),
                              column[mask].tolist(), res.loc[mask, kind].tolist()):
            problems.append(Problem(m, file=f, row=int(r), column=c, hint=hint))
    return res[["stresc", "stresn", "stresu"]], problems


def _standardise_values(frame: pd.DataFrame, table: pd.DataFrame, below_lloq, blq: str,
                        codelist: Codelist | None) -> pd.DataFrame:
    """The steps of :func:`standardise` on (distinct) records: the three parts and a message per problem kind."""
    idx = frame.index
    text = clean_text(frame["orres"])
    unit = clean_text(frame["orresu"])
    tc = clean_text(frame["testcd"])
    lloq = frame["lloq"]
    empty = text.eq("")
    blq_spell = {s.strip().casefold() for s in below_lloq}
    is_blq = ~empty & text.str.casefold().isin(blq_spell)
    q = text.str.extract(_QUALIFIED)
    is_qual = ~empty & ~is_blq & q["num"].notna()
    t = text.str.extract(_TITER)
    is_titer = ~empty & ~is_blq & t["num"].notna()
    num = parse_numbers(text.where(~empty & ~is_blq & ~is_qual & ~is_titer, ""))
    is_num = num.notna()
    is_char = ~empty & ~is_blq & ~is_qual & ~is_titer & ~is_num

    unitless = set(table.loc[table["orresu"].eq(""), "testcd"])
    left = pd.DataFrame({"testcd": tc.to_numpy(), "orresu": unit.to_numpy()})
    conv = left.merge(table, on=["testcd", "orresu"], how="left", validate="many_to_one")
    conv.index = idx
    matched = conv["factor"].notna()
    numeric = is_num | is_qual | is_titer
    known_test = tc.ne("")
    out = pd.DataFrame(index=idx)
    none = pd.Series(None, index=idx, dtype="object")

    # A result that is not a number, of a test the table converts (a numeric test) or given
    # with a unit, is a typing error ("5,3", "1,200", "NaN", "n/a"), not a character result:
    # reported with its value, never kept as text without --STRESN and --STRESU.
    numeric_tests = set(table["testcd"])
    not_number = is_char & known_test & (tc.isin(numeric_tests) | unit.ne(""))
    if codelist is not None:                 # a coded text result of a numeric test (NEGATIVE) is fine
        not_number &= normalise(text.where(is_char, "")).map(codelist.lookup).isna()
    out["not_number"] = none.mask(not_number, "result " + text.map(repr) + " of test " + tc + " is not a number" +
                                  unit.map(lambda u: f" (unit {u!r})" if u else ""))
    is_char &= ~not_number

    no_unit = numeric & known_test & unit.eq("") & ~tc.isin(unitless)
    out["no_unit"] = none.mask(no_unit, "a numeric result of test " + tc + " has no unit")
    no_conv = (numeric | is_blq) & known_test & unit.ne("") & ~matched
    out["no_conv"] = none.mask(no_conv, "no unit conversion for test " + tc + " from unit " + unit.map(repr) +
                               f" in {TABLE_FILE} {TABLE}")

    factor = conv["factor"].astype("float64")
    decimals = conv["decimals"]
    offset = conv["offset"].astype("float64").fillna(0.0)
    identity = factor.eq(1.0) & offset.eq(0.0) & decimals.isna()
    value = num.where(is_num, pd.to_numeric(t["num"], errors="coerce").where(is_titer))
    stresn = value * factor + offset
    has_dec = decimals.notna()
    if has_dec.any():
        d = decimals.where(has_dec, 0).astype(int)
        stresn = stresn.where(~has_dec, pd.Series(np.round(stresn.to_numpy(dtype="float64") * 10.0 ** d.to_numpy())
                                                  / 10.0 ** d.to_numpy(), index=idx))
    lim = pd.to_numeric(lloq, errors="coerce")
    below = is_num & matched & lim.notna() & (num < lim)

    stresc = pd.Series(np.nan, index=idx, dtype="object")
    conv_text = number_text(stresn, decimals)
    plain_text = text.where(is_num)
    stresc = stresc.mask(is_num & matched, plain_text.where(identity, conv_text))
    stresc = stresc.mask(is_titer & matched, conv_text)
    qnum = pd.to_numeric(q["num"], errors="coerce")
    q_text = q["num"].where(identity, number_text(qnum * factor + offset, decimals))
    stresc = stresc.mask(is_qual & matched, q["op"] + q_text)
    stresc = stresc.mask(below, "<" + number_text(lim * factor + offset))
    stresc = stresc.mask(is_blq, blq)
    unknown = pd.Series(False, index=idx)
    if codelist is not None:
        mapped = normalise(text.where(is_char, "")).map(codelist.lookup)
        unknown = is_char & mapped.isna()
        kind = "extensible" if codelist.extensible else "non-extensible"
        out["unknown"] = none.mask(unknown, "value " + text.map(repr) +
                                   f" is not in the {kind} codelist {codelist.name} ({codelist.code or 'sponsor'})")
        stresc = stresc.mask(is_char, mapped)
    else:
        out["unknown"] = none
        stresc = stresc.mask(is_char, text)

    out["stresc"] = stresc.where(~empty)
    out["stresn"] = stresn.where((is_num | is_titer) & matched & ~below).astype("float64")
    su = conv["stresu"].where(matched & (numeric | is_blq))
    out["stresu"] = su.where(su.astype("str").str.strip().ne("") & su.notna())
    return out


__all__ = ["standardise", "conversion_table", "blank"]
