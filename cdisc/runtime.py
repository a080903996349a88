"""Process settings for a cdisc run (the CLI sets them; a Python caller may).

``use_python_strings()``: pandas 3 stores its default ``str`` dtype in pyarrow when pyarrow is
installed (it is, for Parquet input). On this workload (many small string operations on
object-like columns, CORE rule evaluation, XPT text) that storage is measured slower: validating
the shipped study 9.9-11.9 s with Python storage vs 12.1-15.2 s with pyarrow, the CDISC pilot
47.7 s vs 68.5 s (one process, 2-core machine, `benchmarks/README.md`). Outputs are identical
either way (tests run with this setting and compare bytes). The CLI therefore uses Python
storage; Parquet files are still read by pyarrow and converted.

``keep_freed_memory()``: glibc's malloc gives every block over 128 KB its own mmap and returns
freed memory at the top of the heap to the system at once, so a build that makes and drops
frames of millions of values faults the same pages in again and again (at 10,000 subjects 28-31
s of system time). Blocks up to 32 MB from the heap: 10k build 108.9 -> 101.4-104.4 s wall,
30.6 -> 19-24 s system time, peak RSS the same (benchmarks/README.md). 256 MB of free heap are
kept before trimming (2 GB measured no faster), and ``give_back_freed_memory()`` trims once the
build has let its frames go. Not glibc (macOS, musl): nothing is changed.
"""
from __future__ import annotations

#: glibc mallopt parameters (malloc.h) and the values keep_freed_memory sets
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Tune glibc malloc for large frames (see the module docstring); False where it is not glibc."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def can_fork() -> bool:
    """Whether a forked child can run beside this process (the CORE rules of validation, half of
    a build's XPT files): a POSIX fork, more than one core for this process, not switched off
    (``CDISC_JOBS=1``), and not inside a daemonic process (a Dask worker, a pool worker: they
    may not have children)."""
    import multiprocessing as mp
    import os

    if not hasattr(os, "fork") or os.environ.get("CDISC_JOBS", "").strip() == "1" or mp.current_process().daemon:
        return False
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:                          # macOS: no affinity API
        return (os.cpu_count() or 1) > 1


def fork_child(target, *args, parent_ends=()):
    """Fork a daemonic child running ``target(*args, conn)``, which sends its outcome on
    ``conn``; returns (process, the parent's end of the pipe), or (None, None) when no child
    can be started (no process slot or memory, a daemonic parent). The child first closes the
    parent's end and ``parent_ends`` (``as_forked_child``), and ends with ``os._exit`` however
    ``target`` ends (what it could not send, the parent does itself)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    try:
        parent, child = ctx.Pipe(duplex=False)
    except OSError:
        return None, None
    try:
        proc = ctx.Process(target=_forked, args=(target, args, child, (parent, *parent_ends)), daemon=True)
        proc.start()
    except (OSError, AssertionError):
        parent.close()
        child.close()
        return None, None
    child.close()
    return proc, parent


def _forked(target, args: tuple, conn, parent_ends: tuple) -> None:
    import os

    try:
        as_forked_child(*parent_ends)
        target(*args, conn)
    except BaseException:
        pass
    finally:
        conn.close()
        os._exit(0)


def as_forked_child(*parent_ends) -> None:
    """First thing in a forked child (the CORE rules, XPT files, SDTM domains): close the pipe
    ends that are the parent's, so that a send to a parent that is gone fails instead of
    waiting for ever on a pipe the child itself holds open, and on Linux die with the parent
    (prctl PR_SET_PDEATHSIG): a build killed with kill -9 leaves no process behind."""
    import multiprocessing as mp
    import os
    import signal
    import sys

    for end in parent_ends:
        try:
            end.close()
        except OSError:
            pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").prctl(1, int(signal.SIGKILL))     # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    parent = mp.parent_process()
    if parent is not None and os.getppid() != parent.pid:              # gone before the prctl
        os._exit(0)


def give_back_freed_memory() -> None:
    """Return the heap's free memory to the system now (glibc malloc_trim; nothing elsewhere):
    after a build lets its frames go, so that the validation's processes do not sit beside
    memory nobody uses."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def use_python_strings() -> None:
    import pandas as pd

    pd.set_option("mode.string_storage", "python")
