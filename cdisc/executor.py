"""Where the independent tasks of a build run: here (the default), a process pool, or Dask.

A build has a fixed graph (``cdisc.pipeline``): DM, then SE, then every other SDTM domain
(each reads only the raw forms, DM and SE), then the ADaM datasets level by level of their
dependency graph, then one XPT file per dataset. The tasks inside one of those stages are
independent, so they may run anywhere; everything else (merging results, problems,
progress, the build graph, the manifest) stays in this process and happens in the order of
the serial build, so the files and messages of a build are the same whichever executor ran
it.

- ``local``: serial, in this process: exactly the build as it always was. The default;
  nothing here imports ``concurrent.futures`` pools or ``dask``.
- ``processes``: a ``concurrent.futures.ProcessPoolExecutor`` of N workers (``--jobs N``),
  started with ``spawn`` (the same on Linux, macOS and Windows; no forked pandas state).
- ``dask``: a ``dask.distributed`` cluster: ``Client(ADDRESS)`` (``--scheduler
  tcp://host:8786``) or, with no address, a ``LocalCluster`` of N worker processes.
  Workers need the same cdisc version installed and the study folder at the same path.

The build's stages ask ``current()`` for the executor; ``use_executor`` sets it for a build
(the CLI and ``cdisc.api.build`` do). Task functions are module-level (picklable by
reference) and take picklable arguments; a task's exception is raised in this process when
its result is asked for (``Outcome.get``), in task order.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Any, Callable

from .errors import InputError

KINDS = ("local", "processes", "dask")


class Outcome:
    """One task's result or exception, waited for when first asked (``value``, ``error``,
    ``get()``): a stage submits all its tasks at once, then takes the results in its order."""

    def __init__(self, wait: Callable[[], Any] | None = None, *, value: Any = None, error: BaseException | None = None):
        self._wait = wait
        self._value, self._error = value, error

    def _resolve(self) -> None:
        if self._wait is not None:
            wait, self._wait = self._wait, None
            try:
                self._value = wait()
            except Exception as exc:  # the task's own exception (pickled back), raised by get()
                self._error = exc

    @property
    def value(self) -> Any:
        self._resolve()
        return self._value

    @property
    def error(self) -> BaseException | None:
        self._resolve()
        return self._error

    def get(self) -> Any:
        """The task's result; its exception is raised here."""
        if self.error is not None:
            raise self.error
        return self._value


class Executor:
    """Serial, in this process: the default (``parallel`` False: the build's stages run their
    own serial code, exactly today's build, and never call ``map``)."""

    kind = "local"
    parallel = False
    workers = 1

    def map(self, fn: Callable, items: list[tuple]) -> list[Outcome]:
        """``fn(*args)`` for each ``args`` of ``items``; outcomes in item order."""
        out = []
        for args in items:
            try:
                out.append(Outcome(value=_call(fn, args)))
            except Exception as exc:  # handed to the caller, raised by Outcome.get
                out.append(Outcome(error=exc))
        return out

    def describe(self) -> str:
        return "local (serial)"

    def close(self) -> None:
        """Stop what this executor started (a pool, a local cluster); a no-op for local."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ProcessExecutor(Executor):
    """A pool of ``jobs`` spawned worker processes, started at the first ``map`` (a build that
    finds nothing changed never starts one) and reused by every stage of the build."""

    kind = "processes"
    parallel = True

    def __init__(self, jobs: int | None = None):
        self.workers = jobs or os.cpu_count() or 1
        self._pool = None

    def _start(self):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def map(self, fn: Callable, items: list[tuple]) -> list[Outcome]:
        pool = self._start()
        return [Outcome(pool.submit(_call, fn, args).result) for args in items]

    def describe(self) -> str:
        return f"processes ({self.workers} workers)"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: the scheduler at ``address`` (connected at once, so a wrong
    address fails before any work), or a ``LocalCluster`` of ``jobs`` single-threaded worker
    processes started at the first ``map`` and closed with the executor."""

    kind = "dask"
    parallel = True

    def __init__(self, address: str | None = None, jobs: int | None = None, *, processes: bool = True):
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise InputError("--executor dask needs dask.distributed, which is not installed",
                             key="--executor", hint="pip install 'cdisc[dask]'") from None
        self.address = address
        self.workers = jobs or os.cpu_count() or 1
        self.processes = processes
        self._client = None
        self._cluster = None
        if address is not None:
            self._connect()

    def _connect(self):
        from distributed import Client

        if self._client is not None:
            return self._client
        if self.address is None:
            from distributed import LocalCluster

            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=self.processes,
                                         dashboard_address=None)
            self._client = Client(self._cluster)
            return self._client
        try:
            self._client = Client(self.address)     # waits distributed.comm.timeouts.connect (dask config)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {self.address}: {exc}", key="--scheduler",
                             hint="start it with `dask scheduler` and give its address, e.g. "
                                  "--scheduler tcp://host:8786") from None
        self.workers = len(self._client.scheduler_info().get("workers", {})) or self.workers
        return self._client

    def map(self, fn: Callable, items: list[tuple]) -> list[Outcome]:
        """Each task's arguments (frames of up to tens of MB) are scattered to a worker first,
        straight from this process, instead of travelling inside the task graph through the
        scheduler; the task then runs where its data is."""
        client = self._connect()
        data = client.scatter(list(items), hash=False)
        return [Outcome(client.submit(_call, fn, d, pure=False).result) for d in data]

    def describe(self) -> str:
        where = self.address or f"a local cluster of {self.workers} workers"
        return f"dask ({where})"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(kind: str | None = None, jobs: int | None = None, scheduler: str | None = None) -> Executor:
    """The executor the options ask for: ``--jobs`` alone means processes, ``--scheduler``
    alone means dask; neither (or ``local``) the serial default. Contradicting options are a
    usage error naming the option, never a silent choice."""
    if kind is None:
        kind = "dask" if scheduler else "processes" if jobs is not None else "local"
    if kind not in KINDS:
        raise InputError(f"unknown executor {kind!r}", key="--executor", hint=f"one of: {', '.join(KINDS)}")
    if jobs is not None and jobs < 1:
        raise InputError(f"--jobs {jobs}: give at least 1", key="--jobs")
    if scheduler and kind != "dask":
        raise InputError(f"--scheduler is for --executor dask, not {kind}", key="--scheduler")
    if kind == "local":
        if jobs not in (None, 1):
            raise InputError(f"--jobs {jobs} with --executor local (serial)", key="--jobs",
                             hint="use --executor processes (or dask) to run tasks in parallel")
        return Executor()
    if kind == "processes":
        return ProcessExecutor(jobs)
    return DaskExecutor(scheduler, jobs)


_CURRENT: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("cdisc_executor", default=None)


def current() -> Executor:
    """The executor of the build running now (``use_executor``); serial local by default."""
    return _CURRENT.get() or Executor()


@contextlib.contextmanager
def use_executor(executor: Executor, *, close: bool = True):
    """Run the build inside with ``executor``; closed (pool, cluster) at the end unless ``close``
    is False (an executor the caller made, for several builds)."""
    token = _CURRENT.set(executor)
    try:
        yield executor
    finally:
        _CURRENT.reset(token)
        if close:
            executor.close()


# -- on a worker ----------------------------------------------------------------------------------

def _call(fn: Callable, args: tuple) -> Any:
    """Every task runs through here, with the process settings of a cdisc run: Python string
    storage (``cdisc.runtime``, as the CLI sets it), so a frame built on a worker is the frame
    the serial build makes, and the cyclic garbage collector paused while it runs
    (``cdisc.gcpause``, as the CLI runs a build)."""
    from .gcpause import gc_paused
    from .runtime import use_python_strings

    use_python_strings()
    with gc_paused():
        return fn(*args)
