"""Writing files and folders so that readers only ever see them complete.

`atomic_dir` hands out a temporary folder next to the target; the caller fills it, and only when
the block succeeds is it renamed into place (replacing an older folder when `overwrite=True`).
`atomic_file` does the same for a single file, always replacing an older one: the temp file sits
in the target's own folder so that the final `os.replace` is a rename on one file system.
Either way a crash half-way leaves the target as it was and no temporary behind.
"""
from __future__ import annotations

import os
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
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


def write_text_atomically(final: Union[str, os.PathLike], text: str) -> Path:
    """The common case of `atomic_file`: the whole text in one go. Returns the final path."""
    with atomic_file(final) as tmp:
        tmp.write_text(text)
    return Path(final)
