"""The CDISC CORE rules (validation/core) as part of a validation run: findings, statuses, differences.

Every SDTMIG 3.4 rule CORE 0.17.1 runs is evaluated by our vectorised evaluator
(``validation.core.run_core_rules``) on the SDTM datasets of the folder. Its findings join our
own rule catalogue's under their CORE ids (``CORE-000334``), with the rule's own message and
citations (CDISC conformance rule CGnnnn, FDA ids), and go through the same waivers and report.

Two adjustments, both data with a reason, both shown in the report:

- ``validation/core_differences.yaml``: CORE rules whose findings we judge CORE false positives
  (e.g. CORE-000550 on TS's TSVAL1..n, which SDTMIG 3.4 TS assumption 4 defines), optionally
  limited to datasets or variables. Their findings are not reported; the rule's status says
  "CORE false positive" with the reason. ``benchmarks/core_agreement.py`` counts them as
  explained.
- a CORE finding on a record that one of our own rules already reports under the same CORE
  id (``core_id`` in rules.yaml, e.g. CDISC-DS-010 for CORE-000544) is reported once, by ours.

Severity: error, or warning for rules whose own description says "should" (a recommendation
in CDISC wording).
"""
from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from cdisc.errors import SpecError
from cdisc.specio import parse_yaml

from .model import Rule, RuleScope, RuleStatus
from .rules import RAW_COLUMNS

DIFFERENCES_FILE = "core_differences.yaml"
#: SDTM files up to this many bytes get the CORE child started while ADaM is derived
#: (``CoreEvaluation.waiting``/``worth_it``); larger ones the child forked by the validation
EARLY_MAX_BYTES = 2_000_000_000


@dataclass(frozen=True)
class Difference:
    core_id: str
    reason: str
    datasets: tuple[str, ...] = ()
    variables: tuple[str, ...] = ()
    report: bool = False            # True: our findings stay reported (a CORE defect of another kind)

    def covers(self, dataset: str, variables) -> bool:
        if self.datasets and dataset.upper() not in self.datasets:
            return False
        if self.variables and not (set(v.upper() for v in variables) & set(self.variables)):
            return False
        return True


@lru_cache(maxsize=4)
def load_differences(path: str | None = None) -> tuple[Difference, ...]:
    """The documented CORE false positives (``validation/core_differences.yaml``)."""
    if path is None:
        text = resources.files("cdisc.validation").joinpath(DIFFERENCES_FILE).read_text(encoding="utf-8")
        where = f"validation/{DIFFERENCES_FILE}"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    data = parse_yaml(text, file=where) or {}
    out = []
    for i, e in enumerate(data.get("differences") or []):
        if not isinstance(e, dict) or not e.get("core_id") or not str(e.get("reason") or "").strip():
            raise SpecError("each difference needs core_id and reason", file=where, key=f"differences[{i}]")
        out.append(Difference(str(e["core_id"]), str(e["reason"]).strip(),
                              tuple(str(d).upper() for d in e.get("datasets") or ()),
                              tuple(str(v).upper() for v in e.get("variables") or ()),
                              bool(e.get("report", False))))
    return tuple(out)


def _severity(description: str) -> str:
    return "warning" if re.search(r"\bshould\b", description, re.IGNORECASE) else "error"


def core_catalogue() -> list[Rule]:
    """Our Rule records for the CORE rules (message, citations, severity)."""
    from .core import load_rules

    out = []
    for r in load_rules():
        cg = ", ".join(r.cdisc_ids) or None
        fda = ", ".join(r.fda_ids) or None
        out.append(Rule(id=r.id, engine="core", check=r.id, severity=_severity(r.description),
                        message=(r.message or r.description or r.id).strip(),
                        standard=f"CDISC CORE 0.17.1 rule{' (' + cg + ')' if cg else ''}: {r.description.strip()}",
                        core_id=r.id, cg_id=cg, fda_id=fda, scope=RuleScope(standards=["SDTM"])))
    return out


def evaluate_core(core_datasets: dict, claim=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The CORE evaluator's own (findings, status) frames for the datasets (with ``claim``,
    only the rules this process takes from the shared counter)."""
    from .core import from_cdisc_standards, run_core_rules

    return run_core_rules(core_datasets, from_cdisc_standards(), claim=claim)


def _parallel() -> bool:
    """Fork a child for the CORE rules only where it can run beside us (cdisc.runtime.can_fork)."""
    from cdisc.runtime import can_fork

    return can_fork()


class CoreEvaluation:
    """The CORE rules evaluated beside our own checks, on two cores.

    ``start()`` forks a child process that takes rules one at a time from a shared counter
    and evaluates them; the parent meanwhile runs the suites and our rule catalogue, then
    (``result()``) takes the remaining rules from the same counter until none is left and
    receives the child's frames (pickled through a pipe). Both halves are put back in the
    rule catalogue's order, so the output does not depend on who evaluated what.

    On one core, without fork, or if the child fails in any way (killed, out of memory, an
    exception), the rules it did not report are evaluated here: the findings never depend
    on where they were computed. The child writes no file and leaves with ``os._exit``.
    """

    def __init__(self, core_datasets: dict):
        self.datasets = core_datasets
        self.seconds = 0.0
        self._proc = None
        self._conn = None
        self._counter = None
        self._orders = None                 # waiting(): where go() sends the folder to read
        self._given = None                  # go(): (folder, files, their signatures)
        self._t0 = time.perf_counter()

    def __bool__(self) -> bool:
        return bool(self.datasets)

    def start(self) -> CoreEvaluation:
        if self.datasets and _parallel():
            self._fork(_child, self.datasets)
        return self

    @classmethod
    def waiting(cls) -> CoreEvaluation | None:
        """A child forked now, while this process is still small (before a build maps its SDTM),
        that waits for ``go(folder, files)``: then it reads those SDTM files itself and takes
        rules from the shared counter, beside the build's ADaM derivation and the writing and
        reading after it. The validation of that folder ``attach``es the frames it read itself
        (its share of the rules, and the lost ones, as with ``start``). None where no child can
        run beside us. The caller ``cancel``s it when the build stops before validating."""
        if not _parallel():
            return None
        import multiprocessing as mp

        try:
            orders_in, orders_out = mp.get_context("fork").Pipe(duplex=False)
        except OSError:
            return None
        run = cls({})
        forked = run._fork(_waiting_child, orders_in, parent_ends=(orders_out,))
        orders_in.close()
        if not forked:
            orders_out.close()
            return None
        run._orders = orders_out
        return run

    def _fork(self, target, *args, parent_ends=()) -> bool:
        """Fork the CORE child ``target(*args, claim, ...)`` beside a fresh shared rule counter;
        False (no child, the rules run here) where no counter, memory or process slot is left."""
        import multiprocessing as mp

        from .core import load_rules as load_core

        from cdisc.runtime import fork_child

        load_core()                                 # read once, before the fork: both halves need it
        try:
            self._counter = mp.get_context("fork").Value("q", 0)
        except OSError:
            return False
        self._proc, self._conn = fork_child(target, *args, self._claim, parent_ends=parent_ends)
        if self._proc is None:
            self._counter = None
        return self._proc is not None

    @staticmethod
    def worth_it(outputs: list[dict]) -> bool:
        """Whether the SDTM files (manifest entries) are small enough for a child of its own.
        It reads its own copy of them while the build still holds its frames, where a child
        forked by the validation after reading shares the parent's copy (``start``). Measured
        at 10,000 subjects (1.1 GB of SDTM): 104 s against 120 s, but both processes together
        5.0 GB against 4.2 GB (summed PSS; the largest process 3.6 GB either way). Above
        ``EARLY_MAX_BYTES`` (a 30,000-subject study's 3.3 GB) the copy costs more than it gives."""
        return sum(int(o.get("bytes") or 0) for o in outputs) <= EARLY_MAX_BYTES

    def go(self, folder: Path, files: dict[str, str]) -> None:
        """The SDTM files (``{dataset: file relative to folder}``) are written: the child reads
        them and starts on the rules."""
        if self._proc is None or self._orders is None:
            return
        folder = Path(folder)
        try:
            self._given = (folder.resolve(), dict(files), {n: _signature(folder / f) for n, f in files.items()})
            self._orders.send((str(folder), dict(files)))
        except (OSError, ValueError):
            self.cancel()

    def attach(self, folder: Path, files: dict[str, str], core_datasets: dict) -> bool:
        """Take ``core_datasets`` (read here from ``files`` of ``folder``) as this process's
        input when the child read the very same files (folder, names, sizes, modification
        times); else stop the child (False: the caller starts a fresh evaluation)."""
        given = self._given
        folder = Path(folder)
        same = (self._proc is not None and given is not None and folder.resolve() == given[0]
                and dict(files) == given[1] and all(_signature(folder / f) == given[2][n] for n, f in files.items()))
        if not same:
            self.cancel()
            return False
        self.datasets = core_datasets
        return True

    def cancel(self) -> None:
        """Stop the child (the reading after it started failed, the build stopped): nothing of it is kept."""
        if self._orders is not None:
            self._orders.close()
            self._orders = None
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join()
            self._conn.close()
            self._proc = None

    def _claim(self) -> int:
        with self._counter.get_lock():
            i = self._counter.value
            self._counter.value = i + 1
        return i

    def result(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        from .core import load_rules as load_core

        if self._proc is None:
            out = evaluate_core(self.datasets)
        else:
            mine = evaluate_core(self.datasets, claim=self._claim)
            theirs = None
            try:
                theirs = self._conn.recv()
            except (EOFError, OSError):
                pass
            finally:
                self._conn.close()
                if self._orders is not None:
                    self._orders.close()
                    self._orders = None
                self._proc.join()
            self._proc = None
            parts = [mine]
            if isinstance(theirs, tuple) and len(theirs) == 2:
                parts.append(theirs)
            done = {c for _, st in parts for c in st["core_id"]}
            lost = [r for r in load_core() if r.id not in done]
            if lost:                                 # the child died: its rules, here
                from .core import from_cdisc_standards, run_core_rules

                parts.append(run_core_rules(self.datasets, from_cdisc_standards(), rules=lost))
            order = {r.id: i for i, r in enumerate(load_core())}
            out = tuple(_in_order([p[k] for p in parts], order) for k in (0, 1))
        self.seconds = time.perf_counter() - self._t0
        return out


def _in_order(frames: list[pd.DataFrame], order: dict[str, int]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)] or frames[:1]
    allf = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    pos = allf["core_id"].map(order).to_numpy()
    return allf.iloc[pos.argsort(kind="stable")].reset_index(drop=True)


def _signature(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _waiting_child(orders, claim, conn) -> None:
    """``CoreEvaluation.waiting``'s child: reads the SDTM files it is sent (None: nothing to do;
    EOF: the parent is gone), then as ``_child``."""
    def datasets():
        from .folder import read_core_datasets

        got = orders.recv()
        return None if got is None else read_core_datasets(Path(got[0]), got[1])

    _evaluate_in_child(datasets, claim, conn)


def _child(datasets: dict, claim, conn) -> None:
    _evaluate_in_child(lambda: datasets, claim, conn)


def _evaluate_in_child(datasets, claim, conn) -> None:
    """A CORE child (``cdisc.runtime.fork_child``): the outcome of the rules it takes from the
    counter, or why it has none (the parent evaluates the lost rules itself)."""
    try:
        found = datasets()
        if found is not None:
            conn.send(evaluate_core(found, claim=claim))
    except BaseException as exc:
        conn.send(f"{type(exc).__name__}: {exc}")


def _not_explained(findings: pd.DataFrame, rules: dict, by_id: dict[str, list[Difference]]
                   ) -> tuple[pd.DataFrame, dict[str, int]]:
    """The CORE findings of our catalogue's rules that no documented difference explains, and
    per rule how many were explained. A difference covers a (rule, dataset, variables)
    combination, so it is decided once per distinct combination, not per finding (at 10,000
    subjects the shipped study's copy has 122,000 explained findings)."""
    findings = findings[findings["core_id"].isin(list(rules))]
    if findings.empty:
        return findings, {}
    keys = list(zip(findings["core_id"], findings["dataset"], (tuple(v or ()) for v in findings["variables"])))
    verdict = {k: any(d.covers(k[1], list(k[2])) and not d.report for d in by_id.get(k[0], []))
               for k in dict.fromkeys(keys)}
    hit = np.fromiter((verdict[k] for k in keys), dtype=bool, count=len(keys))
    explained = Counter(findings["core_id"].to_numpy()[hit].tolist())
    return findings[~hit], dict(explained)


def run_core(core_datasets, covered: set[tuple[str, str, int | None]], differences=None
             ) -> tuple[list[pd.DataFrame], dict[str, RuleStatus], list[Rule], float]:
    """Evaluate the CORE rules; returns (raw findings frames, statuses, rules, seconds).

    ``core_datasets``: ``{name: Dataset}`` or a started :class:`CoreEvaluation`.
    ``covered``: (core id, dataset, record) our own rules already report.
    """
    t0 = time.perf_counter()
    rules = {r.id: r for r in core_catalogue()}
    from .core import load_rules as load_core

    rule_types = {r.id: r.rule_type for r in load_core()}
    differences = load_differences() if differences is None else differences
    by_id: dict[str, list[Difference]] = {}
    for d in differences:
        by_id.setdefault(d.core_id, []).append(d)
    if isinstance(core_datasets, CoreEvaluation):
        findings, status = core_datasets.result()
    else:
        findings, status = evaluate_core(core_datasets)
    statuses: dict[str, RuleStatus] = {}
    findings, explained = _not_explained(findings, rules, by_id)
    rows = []
    for rec in findings.itertuples(index=False):
        variables = list(rec.variables or [])
        rule = rules[rec.core_id]
        row = None if pd.isna(rec.record) else int(rec.record)
        values = list(rec.values or [])
        usubjid = None if rec.usubjid is None or pd.isna(rec.usubjid) else rec.usubjid
        variable = variables[0] if len(variables) == 1 else (", ".join(variables) or None)
        if rule_types.get(rec.core_id, "").endswith("Metadata Check") or (variables and variables[0] in
                                                                         ("variable_name", "dataset_name")):
            # a finding about a variable or the dataset, not a record: CORE's "record" is the
            # variable's position; the variable is named by the value of variable_name
            meta = dict(zip(variables, values))
            variable = meta.get("variable_name") or (variable if variables[:1] != ["dataset_name"] else None)
            row, usubjid = None, None
        if (rec.core_id, rec.dataset, row) in covered:
            continue
        shown = ", ".join(f"{v}={'' if val is None or (isinstance(val, float) and pd.isna(val)) else val}"
                          for v, val in zip(variables, values))
        rows.append({"dataset": rec.dataset, "variable": variable, "row": row, "usubjid": usubjid,
                     "value": shown[:200] if shown else None, "detail": None,
                     "rule": rec.core_id, "severity": rule.severity})
    for s in status.itertuples(index=False):
        rule = rules.get(s.core_id)
        if rule is None:
            continue
        if s.status != "executed":
            statuses[s.core_id] = RuleStatus(s.core_id, rule.severity, "not applicable",
                                             reason=f"not executed: {s.reason}")
            continue
        diffs = by_id.get(s.core_id, [])
        reason = None
        if diffs and explained.get(s.core_id):
            reason = (f"{explained[s.core_id]} CORE finding(s) not reported: CORE false positive "
                      f"(validation/core_differences.yaml): {diffs[0].reason}")
        evaluated = sorted(d for d, st in (s.dataset_status or {}).items() if st in ("success", "issue reported"))
        statuses[s.core_id] = RuleStatus(s.core_id, rule.severity, "passed" if evaluated else "not applicable",
                                         datasets=evaluated, reason=reason or (None if evaluated else
                                                                                "no dataset in its scope"))
    frame = pd.DataFrame(rows, columns=RAW_COLUMNS + ["rule", "severity"])
    seconds = core_datasets.seconds if isinstance(core_datasets, CoreEvaluation) else time.perf_counter() - t0
    return ([frame] if len(frame) else []), statuses, list(rules.values()), seconds
