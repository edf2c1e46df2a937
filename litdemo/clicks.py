"""Simulated clicks, placed exactly as in SAM2's own interactive evaluation.

SAM2 (https://github.com/facebookresearch/sam2, `sam2/modeling/sam2_utils.py`) simulates a user
with `get_next_point(gt_masks, pred_masks, method="center")`, the RITM rule: take the error
region (missed object pixels = false negatives, wrongly included pixels = false positives),
and click at the error pixel farthest from the edge of its region (distance transform maximum).
The click is positive on a miss and negative on a false alarm, whichever region is "deeper".
We call that function rather than re-implement it, so our simulated user matches SAM2's to
the pixel.

Coordinates: `Click.x` is the column and `Click.y` the row (image convention, as SAM2's
point prompts expect); the clicked pixel is `mask[click.y, click.x]`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sam2.modeling.sam2_utils import get_next_point


@dataclass(frozen=True)
class Click:
    x: int  # column of the clicked pixel
    y: int  # row of the clicked pixel
    positive: bool  # True: "this is the object" (fixes a miss); False: "this is not" (false alarm)

    @property
    def label(self) -> int:
        """SAM2 point label: 1 positive, 0 negative."""
        return int(self.positive)


def next_click(pred: np.ndarray, gt: np.ndarray) -> Click | None:
    """The click a simulated user makes to fix `pred` towards `gt`; None if they already agree.

    pred, gt: (H, W) masks (bool or 0/1). Deterministic: ties go to the first pixel in
    row-major order, as in SAM2.
    """
    pred = np.asarray(pred).astype(bool, copy=False)
    gt = np.asarray(gt).astype(bool, copy=False)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"pred and gt must be (H, W) masks of one shape, got {pred.shape} and {gt.shape}")
    if np.array_equal(pred, gt):
        return None
    gt_t = torch.from_numpy(np.ascontiguousarray(gt))[None, None]  # (1, 1, H, W) bool
    pred_t = torch.from_numpy(np.ascontiguousarray(pred))[None, None]  # (1, 1, H, W) bool
    points, labels = get_next_point(gt_t, pred_t, method="center")  # (1, 1, 2) xy, (1, 1)
    x, y = (int(v) for v in points[0, 0].tolist())
    return Click(x=x, y=y, positive=bool(labels[0, 0].item() == 1))
