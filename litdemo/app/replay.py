"""Continuing from a saved history: replay its events on a fresh session over the same video.

Each event is replayed with the mask it recorded (not its clicks), so the result matches what
the user saw even with another model size. Corrections retrain the adapter as they did the
first time; frames are tracked on demand, only as far as the next event needs.

Nothing is lost when a history is bad: the whole file is checked first (without decoding a
mask), then replayed on a *new* session; the caller swaps it in only when the replay succeeded.
"""
from __future__ import annotations

from typing import Callable, Optional

from ..history import History
from ..session import LitSession


def check_history_fits(lit: LitSession, history: History) -> None:
    """Raise ValueError unless the history was recorded on a video of this length and size, and
    every event fits it (see `History.check_fits`)."""
    v = history.video
    want = (lit.num_frames, lit.video.height, lit.video.width)
    got = (v.get("num_frames"), v.get("height"), v.get("width"))
    if got != want:
        raise ValueError(f"This history was recorded on '{v.get('name', '?')}' ({got[0]} frames, {got[2]}x{got[1]}), "
                         f"but the loaded video has {want[0]} frames at {want[2]}x{want[1]}; load the same video "
                         f"(with the same subsampling) first.")
    history.check_fits(*want)


def replay_history(lit: LitSession, history: History,
                   progress: Optional[Callable[[int, int], None]] = None) -> LitSession:
    """A new session over `lit`'s video, model and settings with every event of `history` replayed
    (see `LitSession.replay`). `lit` itself is never touched, so a failure loses nothing."""
    check_history_fits(lit, history)
    fresh = LitSession(lit.predictor, lit.video, lit.config)
    fresh.replay(history, progress=progress)
    return fresh
