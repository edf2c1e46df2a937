"""Pictures the app shows: the annotated frame, the clickable timeline strip, and the plots.

Pure functions (data in, image or Figure out); the figures themselves come from
`litdemo.plots`, shared with the notebooks and the benchmark.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

import cv2
import numpy as np
from matplotlib.figure import Figure

from ..history import Event
from ..plots import davis_palette, overlay_masks, plot_cumulative_corrections, plot_suggestion_iou, \
    plot_training_curves

# Live timeline states, in the order they win when several objects disagree on a frame.
TIMELINE_COLOURS: dict[str, tuple[int, int, int]] = {
    "corrected": (214, 39, 40),    # you corrected this frame: the LoRA learned from it
    "accepted": (44, 160, 44),     # you accepted the LoRA's suggestion as is
    "prompted": (31, 119, 180),    # the object was started here (clicks / box)
    "tracked": (199, 215, 232),    # SAM2 tracked it, left as is
    "not tracked": (245, 245, 245),
}
DISPLAY_SIDE = 640         # px: small videos are enlarged to about this, so clicks land where intended
TIMELINE_CELL_MIN = 6      # px per frame at least, so a mark is a target a mouse can hit
TIMELINE_WIDTH = 960       # px the strip aims for
TIMELINE_HEIGHT = 36       # px of coloured cells; the current frame gets a marker below


def frame_states(num_frames: int, events: Iterable[Event], tracked: Iterable[int]) -> list[str]:
    """One TIMELINE_COLOURS key per frame, from the history and the frames tracking reached."""
    states = ["not tracked"] * num_frames
    for t in tracked:
        states[t] = "tracked"
    rank = {s: i for i, s in enumerate(TIMELINE_COLOURS)}
    for e in events:
        state = {"correction": "corrected", "accepted": "accepted", "prompt": "prompted"}[e.kind]
        if rank[state] < rank[states[e.frame_idx]]:
            states[e.frame_idx] = state
    return states


def timeline_cell(num_frames: int) -> int:
    """Pixel width of one frame's cell in the timeline strip."""
    return max(TIMELINE_CELL_MIN, TIMELINE_WIDTH // max(num_frames, 1))


def timeline_strip(states: Sequence[str], current: int) -> np.ndarray:
    """(TIMELINE_HEIGHT + 8, T * cell, 3) uint8: a coloured cell per frame, a marker under `current`.

    Frame t covers columns [t * cell, (t + 1) * cell), so a click at column x means frame x // cell.
    """
    cell = timeline_cell(len(states))
    img = np.full((TIMELINE_HEIGHT + 8, len(states) * cell, 3), 255, np.uint8)
    for t, state in enumerate(states):
        x0 = t * cell
        img[:TIMELINE_HEIGHT, x0:x0 + cell] = TIMELINE_COLOURS[state]
        if cell >= 8:  # a 1 px gap keeps neighbouring frames apart when there is room
            img[:TIMELINE_HEIGHT, x0 + cell - 1] = 255
    if 0 <= current < len(states):
        img[TIMELINE_HEIGHT + 2:, current * cell:(current + 1) * cell] = (0, 0, 0)
    return img


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


def annotated_frame(frame: np.ndarray, masks: Mapping[int, np.ndarray], clicks: Sequence[Sequence[float]] = (),
                    boxes: Sequence[Sequence[float]] = (), corner: Optional[Sequence[float]] = None,
                    suggestion: Optional[np.ndarray] = None) -> np.ndarray:
    """(H, W, 3) uint8: masks blended in, clicks as dots (green +, red -), boxes, the LoRA's suggestion outlined."""
    img = overlay_masks(frame, masks)
    h, w = img.shape[:2]
    radius = max(2, round(min(h, w) / 60))
    if suggestion is not None and suggestion.any():
        contours, _ = cv2.findContours(suggestion.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, (0, 0, 0), max(2, radius // 2 + 1))
        cv2.drawContours(img, contours, -1, (255, 255, 255), max(1, radius // 2))
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(img, (round(x0), round(y0)), (round(x1), round(y1)), (255, 215, 0), max(1, radius // 2))
    for x, y, label in clicks:
        colour = (0, 200, 0) if int(label) == 1 else (230, 0, 0)
        cv2.circle(img, (round(x), round(y)), radius + 1, (255, 255, 255), -1)
        cv2.circle(img, (round(x), round(y)), radius, colour, -1)
    if corner is not None:
        cx, cy = round(corner[0]), round(corner[1])
        cv2.drawMarker(img, (cx, cy), (255, 215, 0), cv2.MARKER_CROSS, 4 * radius, max(1, radius // 2))
    return img


def _tagged(title: str, untrained: bool) -> str:
    return f"{title} [untrained model]" if untrained else title


def training_figure(curves: Sequence[Mapping[str, Sequence[float]]], untrained: bool) -> Optional[Figure]:
    if not curves:
        return None
    return plot_training_curves(curves, title=_tagged("training per correction",
                                                      untrained))


def improvement_figure(suggestion_ious: Sequence[float], untrained: bool) -> Optional[Figure]:
    if not suggestion_ious:
        return None
    fig = plot_suggestion_iou(suggestion_ious, title=_tagged("suggestion vs. your correction", untrained))
    fig.axes[0].set_ylabel("IoU with your correction")  # live: the correction is the ground truth we have
    return fig


def cumulative_figure(per_method: Mapping[str, Sequence[int]], untrained: bool) -> Optional[Figure]:
    if not per_method:
        return None
    return plot_cumulative_corrections(per_method, title=_tagged("cumulative corrections", untrained))
