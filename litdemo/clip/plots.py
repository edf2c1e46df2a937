"""Pure picture functions for the CLIP variant: numbers in, matplotlib Figure out.

Shared by the benchmark, the app tab and the notebook, so each picture is drawn once. None of
them touches pyplot's global state (figures are built from matplotlib.figure.Figure), so they
are safe in a web server and with the Agg backend.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure


def confusion_matrix(true: Sequence[int], pred: Sequence[int], num_classes: int) -> np.ndarray:
    """(K, K) int counts, rows = true class, columns = predicted class."""
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return out


def plot_cumulative_corrections(curves: Mapping[str, Sequence[Sequence[int]]], title: str = "") -> Figure:
    """curves: label -> one cumulative-corrections list per seed. Draws the mean and the min-max band."""
    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    longest = 0
    for label, runs in curves.items():
        n = min(len(r) for r in runs)
        arr = np.array([list(r)[:n] for r in runs], dtype=float)     # (seeds, images)
        x = np.arange(1, n + 1)
        line, = ax.plot(x, arr.mean(axis=0), label=f"{label} ({arr[:, -1].mean():.1f})")
        if len(runs) > 1:
            ax.fill_between(x, arr.min(axis=0), arr.max(axis=0), color=line.get_color(), alpha=0.2)
        longest = max(longest, n)
    ax.plot([0, longest], [0, longest], ls=":", color="grey", label="every image corrected")
    ax.set_xlabel("images seen")
    ax.set_ylabel("cumulative corrections")
    ax.set_title(title or "Corrections vs images seen (mean, min-max over seeds)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusion_pair(before: np.ndarray, after: np.ndarray, class_names: Sequence[str],
                        titles: tuple[str, str] = ("before", "after")) -> Figure:
    """Two row-normalized confusion matrices side by side (rows: true class)."""
    fig = Figure(figsize=(12, 5.5), dpi=100, layout="constrained")
    show_names = len(class_names) <= 25   # 200 tick labels are unreadable; draw the matrix alone
    for k, (mat, title) in enumerate(zip((before, after), titles)):
        ax = fig.add_subplot(1, 2, k + 1)
        rows = mat.sum(axis=1, keepdims=True).clip(min=1)
        im = ax.imshow(mat / rows, vmin=0, vmax=1, cmap="Blues")
        acc = np.trace(mat) / max(mat.sum(), 1)
        ax.set_title(f"{title}: accuracy {acc:.1%}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true" if k == 0 else "")
        if show_names:
            ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=6)
            ax.set_yticks(range(len(class_names)), class_names if k == 0 else [], fontsize=6)
    fig.colorbar(im, ax=fig.axes, shrink=0.8)
    return fig


def plot_training_curve(losses: Sequence[float], true_prob: Sequence[float]) -> Figure:
    """One correction's training: loss and P(true class) per optimizer step."""
    fig = Figure(figsize=(5, 3), dpi=100)
    ax = fig.add_subplot()
    steps = np.arange(len(losses))
    ax.plot(steps, losses, marker="o", label="loss (batch)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy")
    ax2 = ax.twinx()
    ax2.plot(steps, true_prob, marker="s", color="tab:green", label="P(true class)")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("P(true class), corrected image")
    fig.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig
