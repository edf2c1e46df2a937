"""Pictures the app shows: the annotated frame, the clickable timeline strip, and the plots.

Pure functions (data in, image or Figure out). The drawing itself (figures, the annotated
frame, the timeline strip) lives in `litdemo.plots`, shared with the notebooks and the
benchmark; this module adds what only the app needs: display scaling, click-to-frame mapping,
HTML legends and the model's tag on figure titles ("[untrained model]", "[micro: synthetic-trained,
not SAM2.1]"), so no picture passes a random or micro model off as SAM2.1.
"""
from __future__ import annotations

import pickle
from typing import Any, Callable, Mapping, Optional, Sequence

import cv2
import numpy as np
from matplotlib.figure import Figure

from ..plots import (  # the frame and timeline drawing helpers live in plots; re-exported for the app
    TIMELINE_COLOURS, annotated_frame, davis_palette, frame_states, plot_cumulative_corrections,
    plot_suggestion_iou, plot_training_curves, tagged, timeline_cell, timeline_strip,
)

DISPLAY_SIDE = 640         # px: small videos are enlarged to about this, so clicks land where intended


def timeline_frame_at(x: float, num_frames: int) -> int:
    """The frame under column x of the timeline strip (clamped to the video)."""
    return int(min(max(int(x) // timeline_cell(num_frames), 0), num_frames - 1))


def timeline_legend_html() -> str:
    chips = " ".join(f'<span style="display:inline-block;width:0.9em;height:0.9em;border:1px solid #999;'
                     f'background:rgb{c};vertical-align:middle"></span> {s}' for s, c in TIMELINE_COLOURS.items())
    return f'<div style="font-size:0.9em"><b>Timeline</b>, one cell per frame: {chips} &nbsp;black bar = frame shown. Click a cell to jump to that frame.</div>'


def object_legend_html(obj_ids: Sequence[int], current: int) -> str:
    palette = davis_palette()
    chips = []
    for oid in obj_ids:
        r, g, b = (int(v) for v in palette[oid % 256])
        weight = "bold" if oid == current else "normal"
        chips.append(f'<span style="font-weight:{weight}"><span style="display:inline-block;width:0.9em;'
                     f'height:0.9em;background:rgb({r},{g},{b});vertical-align:middle"></span> object {oid}</span>')
    return '<div style="font-size:0.9em">' + " &nbsp; ".join(chips) + " (bold: clicks go to it)</div>"


def display_scale(height: int, width: int) -> int:
    """Integer enlargement for showing a frame (1 for frames already >= DISPLAY_SIDE / 2)."""
    return max(1, DISPLAY_SIDE // max(height, width))


def enlarge(frame: np.ndarray, masks: Mapping[int, np.ndarray], scale: int):
    """Frame (bilinear) and masks (nearest) enlarged `scale` times, for drawing at display size."""
    if scale == 1:
        return frame, masks
    size = (frame.shape[1] * scale, frame.shape[0] * scale)
    big = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
    return big, {o: cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
                 for o, m in masks.items()}


def model_tag(predictor) -> str:
    """The tag of the model behind a session: "" for SAM2.1's own weights."""
    from ..models import model_tag as tag_of

    return tag_of(getattr(predictor, "model_name", "?"), bool(getattr(predictor, "untrained", False)))


def _tagged(title: str, tag: str) -> str:
    return tagged(title, tag)


def training_figure(curves: Sequence[Mapping[str, Sequence[float]]], tag: str) -> Optional[Figure]:
    if not curves:
        return None
    return plot_training_curves(curves, title=_tagged("training per correction", tag))


def improvement_figure(suggestion_ious: Sequence[float], tag: str) -> Optional[Figure]:
    if not suggestion_ious:
        return None
    fig = plot_suggestion_iou(suggestion_ious, title=_tagged("suggestion vs. your correction", tag))
    fig.axes[0].set_ylabel("IoU with your correction")  # live: the correction is the ground truth we have
    return fig


def cumulative_figure(per_method: Mapping[str, Sequence[int]], tag: str) -> Optional[Figure]:
    if not per_method:
        return None
    return plot_cumulative_corrections(per_method, title=_tagged("cumulative corrections", tag))


class FigureMemo:
    """A tab's plots, each kept with the data it was drawn from, so a view whose data did not change
    hands back the very same Figure. Building a plot costs ~0.1 s of CPU and Gradio's encoding of it
    ~0.2 s (measured on a 2-core machine), and most views (a click, an accept, the end of a
    propagation) leave the plots as they were; given the same Figure, the page reuses its encoding too
    (layout.encoded_plot). A cache, not state: it is never pickled (ZeroGPU's worker
    starts from an empty one and draws afresh)."""

    def __init__(self):
        self._drawn: dict[str, tuple[bytes, Any]] = {}

    def __reduce__(self):
        return FigureMemo, ()

    def figure(self, key: str, draw: Callable[..., Optional[Figure]], *args: Any, **kwargs: Any) -> Optional[Figure]:
        """`draw(*args, **kwargs)`, drawn again only when its arguments changed since the last call for `key`."""
        signature = pickle.dumps((args, kwargs))
        kept = self._drawn.get(key)
        if kept is None or kept[0] != signature:
            kept = self._drawn[key] = (signature, draw(*args, **kwargs))
        return kept[1]
