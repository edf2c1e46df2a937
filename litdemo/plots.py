"""Pictures shared by the app, the notebooks and the benchmark: data in, Figure or image out.

Figures are built with `matplotlib.figure.Figure` directly, not pyplot: no global figure
registry (nothing leaks in a long-running app), no GUI backend needed (safe under Agg, in
workers and in CI), and Gradio's `gr.Plot`, Jupyter and `fig.savefig` all accept them.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .datasets.base import davis_palette

if TYPE_CHECKING:
    from .history import Event

__all__ = [
    "FRAME_STATES", "TIMELINE_COLOURS", "annotated_frame", "davis_palette", "feature_pca_image", "frame_states",
    "overlay_masks",
    "plot_cumulative_corrections", "plot_suggestion_iou", "plot_timeline", "plot_training_curves",
    "tagged", "timeline_cell", "timeline_strip",
]

# What the simulated (or real) user did on each frame, and how the timeline draws it.
FRAME_STATES: dict[str, str] = {
    "corrected": "#d62728",  # user clicked / drew a mask: the cost LIT tries to cut
    "accepted": "#2ca02c",  # the LoRA's suggestion was good enough and taken as is
    "fine": "#c7d7e8",  # the prediction already passed the IoU threshold
    "unannotated": "#ffffff",  # no ground truth on this frame, so nothing was judged
}


def tagged(title: str, tag: str) -> str:
    """A figure title with the model's tag (litdemo.models.model_tag), e.g. "[untrained model]" or
    "[micro: synthetic-trained, not SAM2.1]", so a picture cannot be mistaken for SAM2.1's result."""
    return f"{title} {tag}" if tag else title


def plot_timeline(frame_states: Mapping[str, Sequence[str]], title: str | None = None) -> Figure:
    """One row per method, one coloured cell per frame: corrected / accepted / fine / unannotated."""
    if not frame_states:
        raise ValueError("frame_states is empty: pass {method: [state per frame]}")
    for method, states in frame_states.items():
        unknown = sorted(set(states) - set(FRAME_STATES))
        if unknown:
            raise ValueError(f"method {method!r} has unknown frame states {unknown}; use {list(FRAME_STATES)}")
    methods = list(frame_states)
    num_frames = max(len(s) for s in frame_states.values())
    fig = Figure(figsize=(max(6.0, min(16.0, 0.12 * num_frames + 2)), 0.5 * len(methods) + 1.4))
    ax = fig.add_subplot()
    for row, method in enumerate(methods):
        states = np.array(frame_states[method], dtype=object)
        for state, colour in FRAME_STATES.items():
            frames = np.flatnonzero(states == state)
            if frames.size:
                ax.barh(row, 1.0, left=frames - 0.5, height=0.8, color=colour,
                        edgecolor="#999999", linewidth=0.3)
    ax.set_yticks(range(len(methods)), labels=methods)
    ax.set_ylim(len(methods) - 0.5, -0.5)  # first method on top
    ax.set_xlim(-0.5, num_frames - 0.5)
    ax.set_xlabel("frame")
    counts = ", ".join(f"{m}: {list(frame_states[m]).count('corrected')}" for m in methods)
    ax.set_title(title or f"corrections per frame ({counts})")
    handles = [Patch(facecolor=c, edgecolor="#999999", label=s) for s, c in FRAME_STATES.items()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(methods) < 3 else -0.2),
              ncol=len(handles), frameon=False)
    fig.tight_layout()
    return fig


def plot_cumulative_corrections(per_method: Mapping[str, Sequence[int]],
                                title: str = "cumulative corrections") -> Figure:
    """Running total of corrections vs frame index, one line per method.

    per_method: {method: corrections on each frame (0/1, or counts)}; a flatter line later in
    the video is the point of LIT.
    """
    if not per_method:
        raise ValueError("per_method is empty: pass {method: [corrections per frame]}")
    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    for method, per_frame in per_method.items():
        total = np.cumsum(np.asarray(per_frame, dtype=float))
        ax.step(np.arange(total.size), total, where="post", label=f"{method} ({total[-1]:g})" if total.size else method)
    ax.set_xlabel("frame")
    ax.set_ylabel("corrections so far")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # frames and counts are whole numbers
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_training_curves(curves: Sequence[Mapping[str, Sequence[float]]],
                         title: str = "LoRA training after each correction") -> Figure:
    """Loss and IoU per optimisation step, one line per training round (one round = one
    correction), coloured from light (early rounds) to dark (late rounds)."""
    if not curves:
        raise ValueError("curves is empty: pass one {'loss': [...], 'iou': [...]} dict per round")
    fig = Figure(figsize=(9.0, 3.4))
    ax_loss, ax_iou = fig.subplots(1, 2)
    colours = _shades(len(curves))
    for i, curve in enumerate(curves):
        for key, ax in (("loss", ax_loss), ("iou", ax_iou)):
            values = list(curve.get(key, []))
            if values:
                label = f"round {i + 1}" if i in (0, len(curves) - 1) else None
                ax.plot(np.arange(1, len(values) + 1), values, color=colours[i], label=label)
    ax_loss.set(xlabel="step", ylabel="loss", title="training loss")
    ax_iou.set(xlabel="step", ylabel="IoU with the correction", title="training IoU", ylim=(0, 1.02))
    for ax in (ax_loss, ax_iou):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_suggestion_iou(values: Sequence[float], tau: float | Sequence[float] = (0.5, 0.7),
                        title: str = "LoRA suggestion IoU at each correction") -> Figure:
    """IoU of the LoRA's suggested mask at each new correction, with the acceptance threshold(s):
    points above a line would have been accepted instead of corrected."""
    values = np.asarray(values, dtype=float)
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.add_subplot()
    ax.plot(np.arange(1, values.size + 1), values, marker="o", color="#1f77b4", label="suggestion IoU")
    for th in np.atleast_1d(tau):
        ax.axhline(th, linestyle="--", color="#7f7f7f", linewidth=1)
        # x in axes fraction, y in data: the label sits at the left edge of the plot whatever the
        # x range (at data x=0.5 it fell outside the axes, and with 0 or 1 values so far out
        # that tight_layout gave up with a warning)
        ax.text(0.0, th, f" tau={th:g}", va="bottom", color="#7f7f7f", transform=ax.get_yaxis_transform())
    ax.set(xlabel="correction #", ylabel="IoU with ground truth", ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def overlay_masks(frame: np.ndarray, masks: Mapping[int, np.ndarray], alpha: float = 0.5) -> np.ndarray:
    """Blend each object's mask over the frame in its DAVIS palette colour.

    frame: (H, W, 3) uint8; masks: {obj_id: (H, W) bool}. Later ids are drawn over earlier
    ones where masks overlap. Returns a new (H, W, 3) uint8 image; pixels under no mask are
    unchanged.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    palette = davis_palette()
    out = frame.astype(np.float32)
    for obj_id, mask in sorted(masks.items()):
        mask = np.asarray(mask, bool)
        if mask.shape != frame.shape[:2]:
            raise ValueError(f"mask of object {obj_id} is {mask.shape}, frame is {frame.shape[:2]}")
        colour = palette[int(obj_id) % 256].astype(np.float32)
        out[mask] = (1 - alpha) * out[mask] + alpha * colour
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ------------------------------------------------- the live view: annotated frame and timeline strip
# Plain (H, W, 3) uint8 images (numpy + OpenCV), drawn by the app and by notebook 03 from a
# session's history. Live timeline states, in the order they win when several objects disagree on a frame (the
# benchmark's per-method timeline above uses FRAME_STATES instead: it judges against ground truth).
TIMELINE_COLOURS: dict[str, tuple[int, int, int]] = {
    "corrected": (214, 39, 40),    # you corrected this frame: the LoRA learned from it
    "accepted": (44, 160, 44),     # you accepted the LoRA's suggestion as is
    "prompted": (31, 119, 180),    # the object was started here (clicks / box)
    "tracked": (199, 215, 232),    # SAM2 tracked it, left as is
    "not tracked": (245, 245, 245),
}
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


def annotated_frame(frame: np.ndarray, masks: Mapping[int, np.ndarray], clicks: Sequence[Sequence[float]] = (),
                    boxes: Sequence[Sequence[float]] = (), corner: Sequence[float] | None = None,
                    suggestion: np.ndarray | None = None) -> np.ndarray:
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


def feature_pca_image(features) -> np.ndarray:
    """A feature map as a picture: its channels projected onto their first 3 principal components
    (red, green, blue), each stretched to 0..255. Pixels with similar features get similar colours.

    features: (1, C, h, w) or (C, h, w), a torch tensor (any device or dtype) or an array.
    Returns (h, w, 3) uint8. Deterministic: each component's sign is fixed (its largest loading
    is positive), so the colours do not flip between runs or linear algebra libraries.
    """
    if hasattr(features, "detach"):  # a torch tensor; plots does not import torch
        features = features.detach().float().cpu().numpy()
    f = np.asarray(features, dtype=np.float64)
    if f.ndim == 4 and f.shape[0] == 1:
        f = f[0]
    if f.ndim != 3:
        raise ValueError(f"features must be (1, C, h, w) or (C, h, w), got shape {tuple(np.shape(features))}")
    channels, h, w = f.shape
    f = f.reshape(channels, h * w).T  # (h*w, C)
    f = f - f.mean(0)
    _, _, vt = np.linalg.svd(f, full_matrices=False)
    vt = vt[:3]
    vt = vt * np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])[:, None]
    rgb = np.zeros((h * w, 3))
    rgb[:, :len(vt)] = f @ vt.T  # fewer than 3 channels: the missing components stay black
    rgb = (rgb - rgb.min(0)) / np.maximum(np.ptp(rgb, 0), 1e-12)
    return np.rint(rgb * 255).astype(np.uint8).reshape(h, w, 3)


def _shades(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.85 - 0.75 * i / max(n - 1, 1)) for i in range(n)]
