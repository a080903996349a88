"""A small, safe expression language for record filters, conditions and values in specs.

Specs are data written by users. Where a spec needs a condition (which raw records
to keep, when a rule applies) or a computed value it holds a short expression such as::

    RECSTATUS != 'Deleted'
    AESER == 'Y' and AETOXGR in ('3', '4', '5')
    missing(AEENDTC)
    PARAMCD == 'OS' and CNSR == 0
    upper(OVRLRESP) in ('CR', 'CRH', 'CRI')
    ADT >= TRTSDT and ADT <= TRTEDT + 30
    AVAL > 0.5 * BASE
    not present(DTHDTC)
    startswith(LBTESTCD, 'CD7')

The text is parsed with :mod:`ast` and checked against a whitelist of node types and
function names; it is never passed to ``eval``, ``exec`` or ``compile``. A checked
expression is evaluated column-wise with pandas operations (no Python loop over rows).

Modules
-------
* :mod:`cdisc.expr.parse`: parsing and the whitelist (:func:`parse`, :class:`Expr`, bounds).
* :mod:`cdisc.expr.evaluate`: the evaluator (:func:`evaluate_filter`, :func:`evaluate_value`,
  comparisons, arithmetic, :func:`near_misses`).
* :mod:`cdisc.expr.functions`: the function library (:data:`FUNCTIONS`, :data:`FUNCTION_DOCS`).
* :mod:`cdisc.expr.dates`: what a date is, date arithmetic, the date functions.
* :mod:`cdisc.expr.values`: kinds of values and what counts as missing.

Language
--------
* Literals: ``'text'`` / ``"text"``, integers, decimals, ``True``, ``False``, ``None``.
* Names are columns of the frame the expression is evaluated on.
* ``and``, ``or``, ``not``; comparisons ``== != < <= > >=`` (chains such as
  ``0 < AVAL <= 10`` mean ``0 < AVAL and AVAL <= 10``); ``in`` / ``not in`` with a
  tuple or list of literals on the right; parentheses.
* Arithmetic on numbers: ``+ - * /``, ``//`` (floor division), ``%`` (its remainder),
  ``**`` (power) and unary ``-``. ``//`` and ``%`` round toward minus infinity as in R
  (``%/%``, ``%%``) and Python: ``-7 // 2 = -4``, ``-7 % 2 = 1`` (SAS ``MOD(-7, 2)`` is -1).
* Date arithmetic (:mod:`cdisc.expr.dates`): ``date + days``, ``date - days`` (a date),
  ``date - date`` (days, a number). A date is a ``datetime64`` column as ADaM derivations
  store ``ADT``/``ADTM``; ISO 8601 text (SDTM ``--DTC``) is text and must be converted with
  ``date(x)`` first; a number is always days, also for a datetime.
* Text is joined with ``concat(a, b, ...)``; ``+`` on text is a SpecError. Why not ``+``:
  a text column that should be numeric (a raw CSV column read as text) would silently give
  ``'1' + '2' = '12'`` instead of an error, and ``+`` would need two missing-value rules
  (a missing number makes the sum missing; a missing text part counts as empty in concat).
* Functions, called by bare name only (see :data:`FUNCTIONS`, :data:`FUNCTION_DOCS` for each
  rule and an example): ``missing(x)``, ``present(x)``, ``upper(x)``, ``lower(x)``,
  ``strip(x)``, ``startswith(x, 'lit')``, ``endswith(x, 'lit')``, ``contains(x, 'lit')``
  (plain text, not a regex), ``length(x)``, ``coalesce(a, b, ...)``, ``number(x)``,
  ``date(x)``, ``substr(x, start[, length])`` (1-based like SAS ``SUBSTR``),
  ``isin_list(x, 'A', 'B', ...)`` (same as ``x in ('A', 'B', ...)``), ``concat(a, b, ...)``,
  ``scan(x, n, 'sep')``, ``replace(x, 'old', 'new')``, ``text(x)``, ``round(x[, digits])``,
  ``floor(x)``, ``ceil(x)``, ``abs(x)``, ``min(a, b, ...)`` / ``max(a, b, ...)`` (row by
  row, missing ignored as SAS MIN/MAX do), ``days_between(start, end)``, ``add_days(date,
  n)``, ``add_months(date, n)``, ``add_years(date, n)`` and ``study_day(date, reference)``;
  and the conditional ``a if condition else b`` (a missing condition counts as false; both
  branches of one type). :func:`evaluate_value` evaluates a value expression (the SDTM
  ``expr:`` rule; ADaM specs use :meth:`Expr.evaluate`).
* A dotted name such as ``IT.AETERM`` is one column name, as EDC exports write them
  (``ITEMGROUP.ITEM``); it is never attribute access.
* Anything else is rejected with a :class:`~cdisc.errors.SpecError` that names what was
  found, where (1-based character column in the expression) and what is allowed:
  attribute access other than a dotted column name, method calls (``X.startswith('a')``),
  indexing, lambdas, comprehensions, f-strings, keyword or starred arguments,
  ``:=``, ``is``, bit operators, other functions, any ``__`` (even inside a string),
  expressions longer than :data:`MAX_LENGTH` characters or nested deeper than
  :data:`MAX_DEPTH` levels.

Missing values
--------------
A value is missing when it is NaN, None, NaT or (for text) empty or only blanks; SAS
and the XPT v5 format store a missing character value as blanks, so blank text is
treated as missing everywhere, not only in ``missing()``. Every comparison is true or
false, never unknown:

1. ``missing(x)`` is True exactly where ``x`` is missing; ``present(x)`` is its negation.
2. A missing value compares unequal to everything (including another missing value)
   and is neither less nor greater than anything. So ``==, <, <=, >, >=`` and ``in``
   are False where either side is missing, while ``!=`` and ``not in`` are True there:
   ``X != 'A'`` is exactly ``not (X == 'A')``.
3. Comparing with ``None`` or with a blank literal (``X == ''``) is rejected at parse
   time; write ``missing(X)`` / ``present(X)`` instead.
4. Arithmetic with a missing operand, and division by zero, give a missing number.
5. ``and``/``or``/``not`` on a true/false column that has missing values follow
   Kleene (SQL) logic; :func:`evaluate_filter` finally turns an unknown into False.

Decision on ``!=`` (issue 14), because SAS and R programmers expect different things:
``!=`` / ``not in`` are **True for a missing value, as in SAS** (``where X ne 'A'`` keeps
blank X), while R/dplyr gives NA and ``filter()`` drops the record. We follow SAS because
(a) CDISC flags are ``'Y'``/blank, so ``DTHFL != 'Y'``, ``LBSTAT != 'NOT DONE'``,
``RECSTATUS != 'Deleted'`` must keep the blank records (the shipped specs hold 30 ``!=`` /
``not in`` conditions, many like these; with R's rule ``LBSTAT != 'NOT DONE'`` would drop
every test that was done), and
(b) ``X != 'A'`` stays the exact complement of ``X == 'A'``, so a ``when``/``else`` pair
covers every record. Unlike SAS, a missing number is *not* less than every number
(``AVAL < 5`` is False for a missing AVAL, as in R and SQL). To get R's ``!=``, write
``present(X) and X != 'A'``.

Types
-----
Each operand has a kind: text, number, date, true/false, missing (an all-missing column
or ``None``) or mixed (an object column holding several Python types). Comparisons need
the same kind on both sides; text against a number is a SpecError naming the column and
both types (convert with ``number(X)`` or quote the literal). A date column may be
compared with a text literal holding a complete ISO 8601 date (``ADT >= '2024-01-15'``);
a text column must be converted with ``date(X)`` first. Columns may have the pandas 3
``str`` dtype, ``object``, any numeric dtype (nullable ones included), ``bool`` /
``boolean``, ``category`` or ``datetime64``.
"""
from __future__ import annotations

from .evaluate import evaluate_filter, evaluate_value, near_misses
from .functions import FUNCTION_DOCS, FUNCTIONS
from .parse import MAX_DEPTH, MAX_LENGTH, Expr, parse, text_comparisons
from .values import _num_text  # noqa: F401  (sdtm/engine.py: numbers as unpadded text)

__all__ = ["Expr", "parse", "evaluate_filter", "evaluate_value", "FUNCTIONS", "FUNCTION_DOCS", "MAX_LENGTH",
           "MAX_DEPTH", "near_misses", "text_comparisons"]
