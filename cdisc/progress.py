"""Progress of a build as it goes (issue 15 item 2): one line per stage and dataset, with its
records and seconds, printed the moment it is done.

On a terminal a status line below the finished lines shows what is running and the time so
far (rewritten in place, erased at the end); in a log (not a terminal: CI, a pipe) only the
plain lines. ``cdisc build --quiet`` and ``--json`` print none of it.
"""
from __future__ import annotations

import sys
import time

import click


class Progress:
    """``progress(stage, dataset, records, seconds)``: the callback ``build_sdtm`` and ``add_adam`` call."""

    def __init__(self, live: bool | None = None, enabled: bool = True):
        self.enabled = enabled
        self.live = (sys.stdout.isatty() if live is None else live) and enabled
        self.t0 = time.perf_counter()
        self.rows: list[dict] = []          # for --json: stage, dataset, records, seconds, status
        self._status = ""

    def _clear(self) -> None:
        if self.live and self._status:
            click.echo("\r\033[K", nl=False)
            self._status = ""

    def status(self, text: str) -> None:
        """The transient line (terminal only): what is running now."""
        if not self.live:
            return
        self._clear()
        self._status = f"... {text} ({time.perf_counter() - self.t0:.0f} s)"
        click.echo(self._status, nl=False)
        sys.stdout.flush()

    def line(self, text: str) -> None:
        if not self.enabled:
            return
        self._clear()
        click.echo(text)

    def __call__(self, stage: str, name: str, records: int | None, seconds: float, status: str = "built") -> None:
        self.rows.append({"stage": stage, "dataset": name, "records": records, "seconds": round(seconds, 3),
                          "status": status})
        recs = f"{records:>8} records" if records is not None else " " * 16
        self.line(f"  {stage:<6} {name:<10}{recs}  {seconds:6.2f} s")
        self.status(f"{stage}: {name} done")

    def kept(self, stage: str, name: str, records: int) -> None:
        self.rows.append({"stage": stage, "dataset": name, "records": records, "seconds": 0.0, "status": "kept"})
        self.line(f"  {stage:<6} {name:<10}{records:>8} records  kept (unchanged since the build in OUT)")

    def stage(self, name: str, seconds: float, detail: str = "") -> None:
        self.rows.append({"stage": name, "dataset": None, "records": None, "seconds": round(seconds, 3),
                          "status": "done"})
        self.line(f"[{name}] {detail}{' ' if detail else ''}({seconds:.1f} s)")

    def finish(self) -> None:
        self._clear()
