"""Hugging Face ZeroGPU: the `spaces` package's GPU decorator where it applies, a no-op elsewhere.

On a ZeroGPU Space (the platform sets $SPACES_ZERO_GPU) a GPU is lent only while a function
decorated with `spaces.GPU` runs; everywhere else (a laptop, a CPU Space, the tests) `gpu(fn)`
returns `fn` itself, so the app never needs the `spaces` package to run.

What ZeroGPU does with a decorated call (read from the `spaces` package, not tried on a Space
from here): it runs in a worker process forked from the server, which receives the arguments and
sends the result (each yielded value, for a generator) back by pickling. So the app decorates only
the model's side of an event (layout.py `_call` / `_steps`): it takes the tab's session as an
argument and returns it, changed, with the view; sessions pickle without their model's weights
(state.py), and their GPU tensors travel on the CPU (gpu_transfer.py): the server process of a
ZeroGPU Space must never start CUDA. tests/test_zerogpu.py runs the app through spaces' own worker
code with the GPU scheduler replaced by a stand-in.
"""
from __future__ import annotations

import os
from typing import Callable, Mapping, Optional, Union

from . import gpu_transfer

ZERO_GPU_ENV = "SPACES_ZERO_GPU"
# Seconds of GPU a call asks for: ZeroGPU schedules by this and checks it against the visitor's
# quota (60 is the `spaces` default). Generous on purpose: a call that runs past it may be aborted,
# and no GPU time has been measured in this project yet (docs/app.md, "What ZeroGPU costs a room").
DEFAULT_DURATION_S = 60


def on_zero_gpu(environ: Optional[Mapping[str, str]] = None) -> bool:
    """True on a Hugging Face ZeroGPU Space."""
    environ = os.environ if environ is None else environ
    return environ.get(ZERO_GPU_ENV, "").strip().lower() not in ("", "0", "false")


def gpu(fn: Optional[Callable] = None, *, duration: Union[int, Callable[..., int]] = DEFAULT_DURATION_S,
        environ: Optional[Mapping[str, str]] = None):
    """`spaces.GPU(fn, duration=...)` on ZeroGPU, else `fn` unchanged. Use as `@gpu` or `@gpu(duration=120)`;
    `duration` may be a function of the call's arguments (seconds), as spaces allows."""
    def wrap(f: Callable) -> Callable:
        if not on_zero_gpu(environ):
            return f
        try:
            import spaces
        except ImportError:  # ZeroGPU hardware without the package: run on what is there
            return f
        gpu_transfer.install()  # the session comes back from the worker without CUDA tensors
        return spaces.GPU(f, duration=duration)

    return wrap(fn) if fn is not None else wrap
