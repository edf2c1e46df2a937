"""Video segmentation metrics: region J (IoU), boundary F, and their mean J&F.

Definitions follow the DAVIS benchmark (Perazzi et al., CVPR 2016;
https://github.com/davisvideochallenge/davis2017-evaluation), which SAM2's SA-V evaluator
reuses (https://github.com/facebookresearch/sam2/tree/main/sav_dataset):

- J = |pred & gt| / |pred | gt|.
- F: both masks are turned into 1-pixel boundary maps; a boundary pixel of one counts as
  matched if a boundary pixel of the other lies within a disk of radius
  ceil(bound_th * image diagonal) (bound_th = 0.008: 8 px at 854x480). precision = matched
  predicted boundary / predicted boundary, recall = matched GT boundary / GT boundary,
  F = 2PR / (P + R).
- Per object, J and F are averaged over annotated frames, dropping the first and the last
  (the first is the given reference; both evaluators skip them for semi-supervised VOS).

All functions are pure: masks in, numbers out. Values are fractions in [0, 1] (the reference
tools print percentages).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

BOUND_TH = 0.008  # DAVIS / SA-V boundary tolerance, as a fraction of the image diagonal


def _as_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred).astype(bool, copy=False), np.asarray(gt).astype(bool, copy=False)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"masks must be 2-D and of one shape, got pred {pred.shape} and gt {gt.shape}")
    return pred, gt


def iou(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """Intersection over union of two (H, W) masks.

    Both empty -> 1.0: predicting "no object" where the object is absent (occluded, out of
    view) is exactly right, so it must not count as a failure or trigger a correction. This
    matches the DAVIS and SA-V evaluators.
    `void`: (H, W) pixels left out of both masks (VOST/DAVIS "void" label 255), as the VOST
    evaluator and the LIT author's `get_iou` do.
    """
    pred, gt = _as_pair(pred, gt)
    if void is not None:
        keep = ~_as_pair(void, gt)[0]
        pred, gt = pred & keep, gt & keep
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt) / union


def region_j(pred: np.ndarray, gt: np.ndarray) -> float:
    """DAVIS region similarity J: the IoU of the two masks."""
    return iou(pred, gt)


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool map of 1-pixel boundaries, as DAVIS's seg2bmap draws them.

    A pixel is on the boundary when its right, lower or lower-right neighbour has the other
    label. The map thus sits half a pixel up-left of the true contour and takes pixels on both
    sides of it. Outside the image counts as "same label", so the frame edge is no boundary.
    """
    m = np.asarray(mask, bool)
    padded = np.pad(m, ((0, 1), (0, 1)), mode="edge")  # replicate: image edge is no boundary
    right = padded[:-1, 1:]
    below = padded[1:, :-1]
    diagonal = padded[1:, 1:]
    return (m != right) | (m != below) | (m != diagonal)


def _disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 disk: offsets with dx^2 + dy^2 <= r^2 (as skimage.morphology.disk)."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(np.uint8)


def tolerance_pixels(shape: tuple[int, int], bound_th: float = BOUND_TH) -> int:
    """Match radius in pixels: bound_th itself if >= 1, else that fraction of the diagonal."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(*shape)))


def boundary_precision_recall(pred: np.ndarray, gt: np.ndarray,
                              bound_th: float = BOUND_TH) -> tuple[float, float]:
    """(precision, recall) of the predicted boundary against the GT boundary."""
    pred, gt = _as_pair(pred, gt)
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    # no boundary on one side: nothing there to be wrong (1) or nothing found (0)
    if n_pred == 0 or n_gt == 0:
        return (1.0 if n_pred == 0 else 0.0), (1.0 if n_gt == 0 else 0.0)
    disk = _disk(tolerance_pixels(pred.shape, bound_th))
    near_gt = cv2.dilate(gt_b.astype(np.uint8), disk).astype(bool)  # within tolerance of GT
    near_pred = cv2.dilate(pred_b.astype(np.uint8), disk).astype(bool)
    precision = np.count_nonzero(pred_b & near_gt) / n_pred
    recall = np.count_nonzero(gt_b & near_pred) / n_gt
    return precision, recall


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """DAVIS boundary measure F: harmonic mean of boundary precision and recall."""
    precision, recall = boundary_precision_recall(pred, gt, bound_th)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def j_and_f(pred_masks: Mapping[int, np.ndarray] | Sequence[np.ndarray],
            gt_masks: Mapping[int, np.ndarray] | Sequence[np.ndarray], *,
            bound_th: float = BOUND_TH, skip_first_last: bool = True,
            void: Mapping[int, np.ndarray] | None = None) -> dict[str, float]:
    """Mean J, mean F and their average JF of one object over its annotated frames.

    gt_masks: {frame_idx: (H, W) mask} for the annotated frames (a sequence means every frame
    is annotated); pred_masks: {frame_idx: mask} or a per-frame sequence covering them.
    skip_first_last drops the first and last annotated frame as the DAVIS and SA-V evaluators
    do; with fewer than 3 annotated frames nothing would remain, so all are scored.
    void: {frame_idx: (H, W) void pixels} left out of J (as the VOST evaluator does); F is
    computed on the masks as they are.
    Returns {"J", "F", "JF", "n_frames"}.
    """
    void = void or {}
    gt = dict(gt_masks) if isinstance(gt_masks, Mapping) else dict(enumerate(gt_masks))
    if not gt:
        raise ValueError("gt_masks is empty: pass at least one annotated frame")
    frames = sorted(gt)
    if skip_first_last and len(frames) >= 3:
        frames = frames[1:-1]
    js, fs = [], []
    for t in frames:
        pred = _prediction_at(pred_masks, t)
        js.append(iou(pred, gt[t], void=void.get(t)))
        fs.append(boundary_f(pred, gt[t], bound_th))
    j, f = float(np.mean(js)), float(np.mean(fs))
    return {"J": j, "F": f, "JF": (j + f) / 2, "n_frames": len(frames)}


def _prediction_at(pred_masks: Mapping[int, np.ndarray] | Sequence[np.ndarray], t: int) -> np.ndarray:
    try:
        return pred_masks[t]
    except (KeyError, IndexError):
        raise ValueError(
            f"no predicted mask for annotated frame {t}; predict every annotated frame "
            "(an empty mask means 'object absent')"
        ) from None
