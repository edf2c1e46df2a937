"""Continuing from a saved history: replay its events on a fresh session over the same video.

Each event is replayed with the mask it recorded (not its clicks), so the result matches what
the user saw even with another model size. Corrections retrain the adapter as they did the
first time; frames are tracked on demand, only as far as the next event needs.
"""
from __future__ import annotations

from typing import Callable, Optional

from ..history import Event, History
from ..session import LitSession


def check_history_fits(lit: LitSession, history: History) -> None:
    """Raise ValueError unless the history was recorded on a video of this length and size."""
    v = history.video
    want = (lit.num_frames, lit.video.height, lit.video.width)
    got = (v.get("num_frames"), v.get("height"), v.get("width"))
    if got != want:
        raise ValueError(f"This history was recorded on '{v.get('name', '?')}' ({got[0]} frames, {got[2]}x{got[1]}), "
                         f"but the loaded video has {want[0]} frames at {want[2]}x{want[1]}; load the same video "
                         f"(with the same subsampling) first.")


def replay_history(lit: LitSession, history: History,
                   progress: Optional[Callable[[int, int], None]] = None) -> int:
    """Reset `lit` and replay every event of `history`; returns how many events were replayed."""
    check_history_fits(lit, history)
    lit.reset()
    for i, event in enumerate(history.events):
        if progress is not None:
            progress(i, len(history.events))
        _replay_event(lit, event)
    return len(history.events)


def _replay_event(lit: LitSession, e: Event) -> None:
    mask = e.mask_array()
    if e.kind == "prompt":
        if mask is None:
            raise ValueError(f"The prompt on frame {e.frame_idx} has no mask recorded; the history is incomplete.")
        if lit.is_tracked(e.frame_idx, e.obj_id):
            lit.clear_frame(e.frame_idx, e.obj_id)  # the user re-started the object here
        lit.prompt(e.frame_idx, e.obj_id, mask=mask)
        return
    track_to(lit, e.frame_idx, e.obj_id)
    if e.kind == "correction":
        lit.correct(e.frame_idx, e.obj_id, mask=mask)
    else:  # accepted: the adapter, retrained on the same corrections, makes the suggestion again
        lit.accept(e.frame_idx, e.obj_id)


def track_to(lit: LitSession, frame_idx: int, obj_id: int) -> None:
    """Propagate from the nearest frame with a mask (tracked or prompted) until `frame_idx` is tracked."""
    if lit.is_tracked(frame_idx, obj_id):
        return
    before = [t for t in range(frame_idx - 1, -1, -1) if lit.mask(t, obj_id) is not None]
    after = [t for t in range(frame_idx + 1, lit.num_frames) if lit.mask(t, obj_id) is not None]
    if before:
        start, reverse = before[0], False
    elif after:
        start, reverse = after[0], True
    else:
        raise ValueError(f"Object {obj_id} has no prompt before its event on frame {frame_idx}; the history is "
                         f"incomplete.")
    for t, _ in lit.propagate(start_frame=start, reverse=reverse):
        if t == frame_idx:
            break
