"""Writing files and folders so that readers only ever see them complete.

`atomic_dir` hands out a temporary folder next to the target; the caller fills it, and only when
the block succeeds is it renamed into place (replacing an older folder when `overwrite=True`).
`atomic_file` does the same for a single file, always replacing an older one: the temp file sits
in the target's own folder so that the final `os.replace` is a rename on one file system.
Either way a crash half-way leaves the target as it was and no temporary behind, except after a
SIGKILL (or a power cut), which no `finally` survives: `sweep_stale_temps` removes what such a
crash left, and code that writes into a folder again (e.g. a resumed benchmark) calls it first.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union


@contextmanager
def atomic_dir(final: Union[str, os.PathLike], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp folder next to `final`; rename it into place only if the block succeeds.

    A crash half-way leaves no half-written folder behind for a later reader to trip on.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; pass overwrite=True to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    # The writer's pid in the name tells `sweep_stale_temps` whether the writer may still be at work.
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(final: Union[str, os.PathLike]) -> Iterator[Path]:
    """Yield a fresh temp path next to `final` for the block to write; it replaces `final` only if the block succeeds.

    The parent folders are created, so callers can write into an output tree that does not exist yet.
    The temp file is left for the writer to create (not made with mkstemp) so that it gets the usual
    umask permissions rather than mkstemp's owner-only ones.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_torch_atomically(final: Union[str, os.PathLike], obj) -> Path:
    """torch.save `obj` to `final` through memory: torch names the zip inside its format after the file
    it writes, so saving straight to `atomic_file`'s randomly named temp file would give the same
    weights different bytes (and sha256) on every run. Returns the final path."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_file(final) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(final)


def write_text_atomically(final: Union[str, os.PathLike], text: str) -> Path:
    """The common case of `atomic_file`: the whole text in one go. Returns the final path."""
    with atomic_file(final) as tmp:
        tmp.write_text(text)
    return Path(final)


# Our temporaries: atomic_dir's ".<name>.<pid>.<8 random>" (older versions: ".<name>.<8 random>")
# and atomic_file's ".<name>.<pid>.<8 hex>.tmp". Nothing else in a folder is ever touched.
_TEMP_DIR = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[a-z0-9_]{8}$")
_TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def sweep_stale_temps(folder: Union[str, os.PathLike], recursive: bool = True) -> list[Path]:
    """Remove the temporaries a killed writer left in `folder` (and below); returns what was removed.

    Only names of our own making are considered, and only when the process that made them is
    gone (a temporary of a live process is a write in progress, not debris).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    entries = folder.rglob(".*") if recursive else folder.glob(".*")
    for path in sorted(entries, key=lambda p: len(p.parts)):
        if any(parent in removed for parent in path.parents):
            continue
        match = (_TEMP_DIR if path.is_dir() else _TEMP_FILE).match(path.name)
        if match is None or _alive(match.group("pid")):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: str | None) -> bool:
    if pid is None:  # written by a version that did not record its pid: long finished
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return int(pid) < 2**22  # another user's live process (or a pid no system hands out)
    return True
