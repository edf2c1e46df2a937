"""Writing a folder so that readers only ever see it complete.

`atomic_dir` hands out a temporary folder next to the target; the caller fills it, and only when
the block succeeds is it renamed into place (replacing an older folder when `overwrite=True`).
A crash half-way leaves the target as it was and no temporary folder behind.
"""
from __future__ import annotations

import os
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
