"""XPT files written by a forked child beside the parent (``cdisc build`` on a POSIX machine).

Writing a 10,000-subject study's transport files is about 13 s of one core (text encoding,
IBM floats), after the build, while the second core waits. A process pool would pickle each
frame to its worker, which costs what the second core gives (benchmarks/README.md, "Scale").
A forked child needs no pickling: it sees the finished frames in the memory it shares with the
parent (copy-on-write), writes its share of the files into the fresh output folder, and sends
back only each file's outcome, ``(name, problems, info)``, through a pipe.

The files are the same bytes either way (a file is determined by data, metadata and the
creation time); the parent still decides everything: it takes each outcome in its own order,
so limit problems are reported in build order as before, and when a dataset breaks a limit it
removes every file it did not keep, the child's too (all inside the output folder the build is
writing). If the child fails in any way (killed, out of memory, an exception) the parent writes
those files itself.
"""
from __future__ import annotations

from pathlib import Path

#: below this many records in all, the fork costs more than the second core gives
MIN_RECORDS = 200_000


def can_fork() -> bool:
    """``cdisc.runtime.can_fork`` (a seam: tests force the fork for a small study)."""
    from .runtime import can_fork as runtime_can_fork

    return runtime_can_fork()


def share(sizes: dict[str, int]) -> set[str]:
    """The datasets the child writes: about half of the bytes, largest first alternately (a
    greedy split, deterministic for the same sizes)."""
    mine = theirs = 0
    out: set[str] = set()
    for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
        if theirs <= mine:
            out.add(name)
            theirs += sizes[name]
        else:
            mine += sizes[name]
    return out


class ForkedWriter:
    """Start with ``{name: (path, data, meta)}`` and the creation time; ``outcome(name)`` is that
    file's ``(problems, info)`` once the child wrote it (problems: nothing was written), or None
    when the child could not (the caller writes it)."""

    def __init__(self, jobs: dict[str, tuple[Path, object, object]], created):
        from .runtime import fork_child

        self.names = list(jobs)
        self.paths = {n: Path(j[0]) for n, j in jobs.items()}
        self._got: dict[str, tuple] = {}
        self._proc, self._conn = fork_child(_child, jobs, created)
        if self._proc is None:                       # no process slot or memory, a daemonic parent
            self.names = []

    def outcome(self, name: str):
        while name not in self._got and self._conn is not None:
            try:
                got_name, problems, info = self._conn.recv()
            except (EOFError, OSError):              # the child is gone: what it did not send, here
                self._close()
                break
            self._got[got_name] = (problems, info)
        got = self._got.get(name)
        return None if got is None or got[0] is None else got

    def written(self) -> list[Path]:
        """The files the child wrote (every outcome without problems)."""
        self.finish()
        return [self.paths[n] for n, (problems, _) in self._got.items() if problems == []]

    def finish(self) -> None:
        for name in self.names:
            if name not in self._got:
                self.outcome(name)
        self._close()

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            self._proc.join()
            self._proc = None


def _child(jobs: dict, created, conn) -> None:
    from .errors import ConformanceError
    from .xpt import write_xpt

    for name, (path, data, meta) in jobs.items():
        try:
            info = write_xpt(path, data, meta, created)
            conn.send((name, [], info))
        except ConformanceError as exc:              # nothing written: the parent reports it
            conn.send((name, list(exc.problems), None))
        except Exception:                            # the parent writes this one again itself
            Path(path).unlink(missing_ok=True)
            conn.send((name, None, None))
