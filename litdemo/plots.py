"""Pictures shared by the app, the notebooks and the benchmark: data in, Figure or image out.

Figures are built with `matplotlib.figure.Figure` directly, not pyplot: no global figure
registry (nothing leaks in a long-running app), no GUI backend needed (safe under Agg, in
workers and in CI), and Gradio's `gr.Plot`, Jupyter and `fig.savefig` all accept them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .datasets.base import davis_palette

__all__ = [
    "FRAME_STATES", "davis_palette", "overlay_masks", "plot_cumulative_corrections",
    "plot_suggestion_iou", "plot_timeline", "plot_training_curves",
]

# What the simulated (or real) user did on each frame, and how the timeline draws it.
FRAME_STATES: dict[str, str] = {
    "corrected": "#d62728",  # user clicked / drew a mask: the cost LIT tries to cut
    "accepted": "#2ca02c",  # the LoRA's suggestion was good enough and taken as is
    "fine": "#c7d7e8",  # the prediction already passed the IoU threshold
    "unannotated": "#ffffff",  # no ground truth on this frame, so nothing was judged
}


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
        ax.text(0.5, th, f" tau={th:g}", va="bottom", color="#7f7f7f")
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


def _shades(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.85 - 0.75 * i / max(n - 1, 1)) for i in range(n)]
