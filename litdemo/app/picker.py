"""Three suggestions to pick from: each adapter's mask for the current frame, side by side.

With multi-LoRA (up to 3 adapters per object, LitConfig.max_adapters) every adapter is an expert
for one appearance of the object. The paper's evaluation takes the best adapter's mask; here the
user sees every adapter's mask as a thumbnail with its predicted IoU (the decoder's own confidence)
and accepts the one that fits. The accepted event records which adapter it came from.
"""
from __future__ import annotations

import numpy as np

from . import render
from .state import AppSession

PICKER_KEYS = ("picker_gallery", "picker_choice", "picker_info")
THUMB_SIDE = 160   # px: three thumbnails fit next to each other under the frame


def adapter_label(adapter: int, predicted_iou: float) -> str:
    return f"adapter {adapter + 1} · predicted IoU {predicted_iou:.2f}"


def picker_view(app: AppSession) -> dict:
    """Thumbnails (one per trained adapter), the choice of which to accept, and a line of help."""
    empty = {"picker_gallery": [], "picker_choice": {"choices": [], "value": None}}
    lit = app.lit
    if lit is None or not lit.config.learns:
        return {**empty, "picker_info": ""}
    t, oid = app.frame, app.obj_id
    accepted = accepted_note(app)
    if oid not in lit.obj_ids or not lit.is_tracked(t, oid) or (t, oid) in lit.pending:
        return {**empty, "picker_info": accepted}
    suggestions = lit.suggestions(t, oid)
    if not suggestions:
        return {**empty, "picker_info": accepted}
    frame = lit.video.frames[t]
    thumbs = [(thumbnail(frame, s.mask, oid), adapter_label(s.adapter, s.predicted_iou)) for s in suggestions]
    best = max(suggestions, key=lambda s: s.predicted_iou).adapter
    limit = lit.config.max_adapters
    info = (f"**{len(suggestions)} of up to {limit} adapters** suggest a mask for frame {t}: pick the one that fits "
            f"and press **Accept the chosen suggestion** (preselected: the most confident, as the paper's "
            f"evaluation takes)." if limit > 1 else
            "One adapter (LIT-LoRA); tick *three suggestions* in 2 · Model for up to three to pick from.")
    if accepted:
        info = f"{accepted} {info}"
    return {"picker_gallery": thumbs,
            "picker_choice": {"choices": [(adapter_label(s.adapter, s.predicted_iou), s.adapter)
                                          for s in suggestions], "value": best},
            "picker_info": info}


def thumbnail(frame: np.ndarray, mask: np.ndarray, obj_id: int) -> np.ndarray:
    """The frame with `mask` drawn in the object's colour, about THUMB_SIDE px on its long side."""
    import cv2

    picture = render.annotated_frame(frame, {obj_id: mask}, clicks=[], suggestion=None)
    scale = THUMB_SIDE / max(picture.shape[:2])
    size = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
    return cv2.resize(picture, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def accepted_note(app: AppSession) -> str:
    """'Accepted on this frame: adapter 2's suggestion ...' when the history has such an event, else ''."""
    events = [e for e in app.lit.history.events
              if e.kind == "accepted" and e.frame_idx == app.frame and e.obj_id == app.obj_id]
    if not events or events[-1].adapter_idx is None:
        return ""
    return (f"**Accepted on this frame: adapter {events[-1].adapter_idx + 1}'s suggestion** "
            f"(recorded in the history as adapter_idx={events[-1].adapter_idx}).")
