"""Output folders: a command writes only where it may, and replaces only what it wrote.

A data manager who mistypes ``--out raw`` must not lose the raw export. Rules:

1. An output folder is missing, empty, or a folder this toolkit wrote earlier for the
   same purpose (``build`` or ``package``), recognised by the marker file
   ``.cdisc-output.json`` that lists every file the toolkit wrote there. A folder with a
   file the marker does not list (the user's own) is refused, naming the file.
2. It is never the raw folder, the specs folder or the study folder, nor inside raw/ or
   specs/, nor a folder that contains any of them.
3. Everything is written into a fresh temporary folder beside the output
   (``.NAME.cdisc-tmp-PID-XXXX``) and swapped in with renames only once the command has
   decided (after validation): old -> ``.NAME.cdisc-old-PID``, new -> NAME, then the old
   one is removed. A killed run leaves at most such temporary folders, which the next run
   removes when the process that made them is gone.
4. An output path that is a symbolic link is followed: the link stays, its target is
   replaced. A dangling link, a read-only folder or a full disk get a message.
"""
from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import socket
from pathlib import Path

from .errors import CdiscError

MARKER = ".cdisc-output.json"
TMP_TAG = "cdisc-tmp"
OLD_TAG = "cdisc-old"
LOCK = ".cdisc-tmp.json"          # inside a temporary folder: who is writing it


class OutputError(CdiscError):
    """The output folder cannot or must not be written (exit 2)."""

    exit_code = 2


def _files(folder: Path) -> list[str]:
    """Every file and symlink below ``folder`` as a sorted list of relative POSIX paths."""
    out = []
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            out.append((Path(root) / name).relative_to(folder).as_posix())
    return sorted(out)


def read_marker(folder: Path) -> dict | None:
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == "cdisc" else None


def write_marker(folder: Path, kind: str) -> None:
    """Record every file now in ``folder`` as written by this toolkit (call after the last write)."""
    folder = Path(folder)
    files = [f for f in _files(folder) if f != MARKER]
    (folder / MARKER).write_text(json.dumps({"tool": "cdisc", "kind": kind, "files": files}, indent=1) + "\n",
                                 encoding="utf-8")


def _legacy_files(folder: Path, kind: str) -> set[str] | None:
    """Files of an output written before the marker existed (its manifest names them), or None."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    if kind == "build" and manifest.get("tool") == "cdisc":
        files = {"manifest.json", "metadata.json"}
        for o in manifest.get("outputs", []):
            f = str(o.get("file", ""))
            files |= {f, f.rsplit(".", 1)[0] + ".json"}
        return files
    if kind == "package" and manifest.get("format") == "cdisc submission package":
        return {"manifest.json"} | {str(f.get("path")) for f in manifest.get("files", [])}
    return None


def foreign_files(folder: Path, kind: str) -> list[str] | None:
    """Files in an existing output folder that this toolkit did not write there.

    None when the folder is not a ``kind`` output of this toolkit at all (and not empty).
    """
    folder = Path(folder)
    present = _files(folder)
    if not present:
        return []
    marker = read_marker(folder)
    if marker is not None and marker.get("kind") == kind:
        known = set(marker.get("files") or []) | {MARKER}
    else:
        legacy = _legacy_files(folder, kind) if marker is None else None
        if legacy is None:
            return None
        known = legacy
        # a legacy build also holds its validation outputs
        present_known = [f for f in present if f in known or (kind == "build" and f.startswith("validation/"))]
        return sorted(set(present) - set(present_known))
    return sorted(set(present) - known)


def _is_within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_output(out: Path, *, kind: str, protected: dict[str, Path], option: str = "--out") -> Path:
    """The real folder to write ``kind`` output to, or an OutputError saying why not.

    ``protected`` names folders that must stay untouched ({"raw folder": raw, ...}): the
    output may not be one of them, inside one of them, or contain one of them.
    Returns the path with a symlinked final component followed.
    """
    out = Path(out)
    shown = str(out)
    if out.is_symlink():
        target = Path(os.path.realpath(out))
        if not target.exists():
            raise OutputError(f"{option} {shown} is a symbolic link to {target}, which does not exist",
                              hint="create the target folder or give another --out")
        out = target
    real = Path(os.path.realpath(out))
    for what, p in protected.items():
        if p is None:
            continue
        pr = Path(os.path.realpath(p))
        if _is_within(pr, real):
            raise OutputError(f"{option} {shown} is the {what} or contains it ({p}); refusing to write there",
                              hint="give a separate output folder, e.g. --out build")
        if what != "study folder" and _is_within(real, pr):
            raise OutputError(f"{option} {shown} is inside the {what} ({p}); refusing to write there",
                              hint="give an output folder outside it, e.g. --out build")
    if real.exists() and not real.is_dir():
        raise OutputError(f"{option} {shown} exists and is not a folder", hint="give a folder path")
    if real.is_dir():
        foreign = foreign_files(real, kind)
        if foreign is None:
            raise OutputError(
                f"{option} {shown} is not empty and is not a {kind} folder written by cdisc; "
                "refusing to replace it", hint="give a new or empty folder, or the folder of an earlier "
                f"`cdisc {kind}`")
        if foreign:
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            raise OutputError(
                f"{option} {shown} holds files cdisc did not write: {', '.join(foreign[:5])}{more}; "
                "refusing to replace it", hint="move those files elsewhere or give another output folder")
    parent = real.parent
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not _writable(probe):
        raise OutputError(f"cannot write to {probe}: permission denied (read-only?)",
                          hint="give an output folder you can write to")
    return real


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(real: Path) -> list[Path]:
    """Remove temporary folders beside ``real`` left by killed runs (their process is gone)."""
    removed = []
    parent = real.parent
    if not parent.is_dir():
        return removed
    host = socket.gethostname()
    for p in parent.glob(f".{real.name}.{TMP_TAG}-*"):
        info = {}
        try:
            info = json.loads((p / LOCK).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue            # not ours (no lock file): leave it
        if info.get("tool") == "cdisc" and info.get("host") == host and not _pid_alive(int(info.get("pid", 0))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    for p in parent.glob(f".{real.name}.{OLD_TAG}-*"):
        try:
            pid = int(p.name.rsplit("-", 1)[-1])
        except ValueError:
            continue
        if p.is_dir() and not p.is_symlink() and not _pid_alive(pid) and read_marker(p) is not None:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def os_problem(exc: OSError, where: Path) -> OutputError:
    """A readable message for a write that failed (full disk, read-only, permissions)."""
    reason = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
              errno.EPERM: "operation not permitted"}.get(exc.errno, exc.strerror or str(exc))
    return OutputError(f"cannot write {exc.filename or where}: {reason}",
                       hint="nothing was replaced; free space or fix permissions and run again")


class OutputFolder:
    """A temporary folder that becomes ``out`` (or ``out.failed``) only when the command says so.

    >>> with OutputFolder(out, kind="build", protected={...}) as staged:
    ...     write files into staged.path
    ...     staged.commit()          # or staged.commit_failed()
    Leaving the block without a commit removes the temporary folder; the earlier output
    stays as it was.
    """

    def __init__(self, out: Path, *, kind: str, protected: dict[str, Path], option: str = "--out"):
        self.shown = Path(out)
        self.kind = kind
        self.protected = protected
        self.option = option
        self.real = check_output(out, kind=kind, protected=protected, option=option)
        self.path: Path | None = None
        self.final: Path | None = None
        self.removed_failed: Path | None = None

    def __enter__(self) -> "OutputFolder":
        clean_stale(self.real)
        try:
            self.real.parent.mkdir(parents=True, exist_ok=True)
            self.path = self.real.parent / f".{self.real.name}.{TMP_TAG}-{os.getpid()}-{secrets.token_hex(4)}"
            self.path.mkdir()
            (self.path / LOCK).write_text(json.dumps({"tool": "cdisc", "pid": os.getpid(),
                                                      "host": socket.gethostname()}) + "\n", encoding="utf-8")
        except OSError as exc:
            raise os_problem(exc, self.real.parent) from None
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.path is not None and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, CdiscError):
            raise os_problem(exc, self.real) from None
        return False

    @property
    def failed_path(self) -> Path:
        return self.real.with_name(self.real.name + ".failed")

    def _swap_into(self, target: Path, shown: str) -> Path:
        """Rename the staged folder to ``target``; an earlier output there goes only afterwards."""
        assert self.path is not None
        check_output(target, kind=self.kind, protected=self.protected, option=shown)  # again, just before
        target = Path(os.path.realpath(target)) if target.is_symlink() else target
        (self.path / LOCK).unlink(missing_ok=True)
        write_marker(self.path, self.kind)
        old = None
        try:
            if target.exists():
                old = target.with_name(f".{target.name}.{OLD_TAG}-{os.getpid()}")
                target.rename(old)
            self.path.rename(target)
        except OSError as exc:
            if old is not None and not target.exists():
                old.rename(target)
            raise os_problem(exc, target) from None
        self.path = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.final = target
        return target

    def commit(self) -> Path:
        """The staged output becomes ``out``; a stale ``out.failed`` of ours goes."""
        target = self._swap_into(self.real, self.option)
        failed = self.failed_path
        if failed.is_dir() and not failed.is_symlink() and foreign_files(failed, self.kind) == []:
            shutil.rmtree(failed, ignore_errors=True)
            self.removed_failed = failed
        return target

    def commit_failed(self) -> Path:
        """The staged output goes to ``out.failed``; ``out`` (an earlier good output) stays."""
        return self._swap_into(self.failed_path, f"{self.option} (failed copy)")


def add_to_marker(folder: Path, prefix: str) -> None:
    """Files a later command wrote under ``prefix`` (``cdisc validate``: validation/) join the
    marker of one of our output folders; a folder without a marker (a staging folder, whose
    marker is written when it is committed) is left alone."""
    marker = read_marker(folder)
    if marker is None:
        return
    files = set(marker.get("files") or []) | {f for f in _files(Path(folder)) if f.startswith(prefix)}
    marker["files"] = sorted(files - {MARKER})
    (Path(folder) / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
