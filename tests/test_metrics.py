"""J and F against values derived by hand, and on real DAVIS masks perturbed in known ways."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from litdemo.metrics import boundary_f, boundary_map, boundary_precision_recall, iou, j_and_f, region_j, tolerance_pixels


def square(shape, top, left, size):
    m = np.zeros(shape, bool)
    m[top:top + size, left:left + size] = True
    return m


def shift(mask, dx=0, dy=0):
    """Move a mask by (dx, dy) pixels, filling with background (no wrap-around)."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = mask[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


# --------------------------------------------------------------------------- hand-built cases

def test_iou_hand_values():
    a = square((30, 30), 5, 5, 10)  # 100 px
    assert iou(a, a) == 1.0
    assert iou(a, shift(a, dx=2)) == pytest.approx(80 / 120)  # overlap 10x8, union 100+100-80
    assert iou(a, square((30, 30), 20, 20, 5)) == 0.0
    assert iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0  # "absent" predicted where absent
    assert iou(np.zeros((4, 4)), np.ones((4, 4))) == 0.0
    assert region_j(a, shift(a, dx=1)) == pytest.approx(90 / 110)


def test_boundary_map_of_square_is_ring_shifted_up_left():
    # For a square covering rows/cols 5..14, a pixel is boundary when its right, lower or
    # lower-right neighbour differs: the square's right column and bottom row (inside), plus
    # the column left of it, the row above it and the corner (outside) = ring of box 4..14.
    b = boundary_map(square((30, 30), 5, 5, 10))
    ring = np.zeros((30, 30), bool)
    ring[4:15, 4:15] = True
    ring[5:14, 5:14] = False
    assert np.array_equal(b, ring)
    assert b.sum() == 40


def test_boundary_map_ignores_image_edges():
    full = np.ones((6, 7), bool)
    assert not boundary_map(full).any()
    left_half = np.zeros((6, 7), bool)
    left_half[:, :3] = True
    b = boundary_map(left_half)
    assert np.array_equal(np.flatnonzero(b.any(axis=0)), [2])  # only the column at the edge
    assert b[:, 2].all()


def test_tolerance_pixels():
    assert tolerance_pixels((30, 30)) == 1  # 0.008 * 42.4 = 0.34 -> 1
    assert tolerance_pixels((480, 854)) == 8  # 0.008 * 979.6 = 7.84 -> 8, DAVIS 480p
    assert tolerance_pixels((480, 854), bound_th=3) == 3  # >= 1 means pixels


def test_boundary_f_square_shifted_by_two():
    # 30x30 image -> tolerance disk of radius 1 (the pixel and its 4 neighbours).
    # GT ring: box rows 4..14, cols 4..14 (40 px). Prediction moved 2 px right: box cols 6..16.
    # Predicted top row (x = 6..16): x = 6..14 lie on the GT top row, x = 15 touches GT pixel
    # x = 14, x = 16 is 2 away -> 10 of 11 matched; the bottom row likewise 10.
    # Predicted left column (x = 6, y = 5..13): only y = 5 and y = 13 touch the GT top/bottom
    # rows -> 2 of 9. Predicted right column (x = 16): the GT's is at x = 14 -> 0 of 9.
    # Precision = 22/40; recall is the mirror image of the same count.
    gt = square((30, 30), 5, 5, 10)
    pred = shift(gt, dx=2)
    p, r = boundary_precision_recall(pred, gt)
    assert p == pytest.approx(22 / 40)
    assert r == pytest.approx(22 / 40)
    assert boundary_f(pred, gt) == pytest.approx(0.55)


def test_boundary_f_within_tolerance_is_perfect():
    gt = square((30, 30), 5, 5, 10)
    # 1 px shift: every predicted ring pixel is on, or next to, a GT ring pixel.
    assert boundary_f(shift(gt, dx=1), gt) == 1.0
    assert boundary_f(shift(gt, dy=-1), gt) == 1.0


def test_boundary_f_empty_cases():
    gt = square((30, 30), 5, 5, 10)
    empty = np.zeros_like(gt)
    assert boundary_precision_recall(empty, gt) == (1.0, 0.0)  # nothing predicted: found nothing
    assert boundary_f(empty, gt) == 0.0
    assert boundary_precision_recall(gt, empty) == (0.0, 1.0)
    assert boundary_f(gt, empty) == 0.0
    assert boundary_f(empty, empty) == 1.0


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        iou(np.zeros((3, 4)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="shape"):
        boundary_f(np.zeros((3, 4)), np.zeros((3, 5)))


def test_j_and_f_skips_first_and_last_annotated_frames():
    gt_sq = square((30, 30), 5, 5, 10)
    wrong = square((30, 30), 20, 20, 5)
    gt = {0: gt_sq, 4: gt_sq, 8: gt_sq, 12: gt_sq}  # sparse annotation
    pred = {0: wrong, 4: gt_sq, 8: shift(gt_sq, dx=2), 12: wrong, 5: wrong}  # 5 is not annotated
    r = j_and_f(pred, gt)
    assert r["n_frames"] == 2
    assert r["J"] == pytest.approx((1 + 2 / 3) / 2)
    assert r["F"] == pytest.approx((1 + 0.55) / 2)
    assert r["JF"] == pytest.approx((r["J"] + r["F"]) / 2)
    everything = j_and_f(pred, gt, skip_first_last=False)
    assert everything["n_frames"] == 4
    assert everything["J"] == pytest.approx((0 + 1 + 2 / 3 + 0) / 4)
    # sequences: frame index = position; fewer than 3 frames are all scored
    short = j_and_f([gt_sq, wrong], [gt_sq, gt_sq])
    assert short["n_frames"] == 2 and short["J"] == pytest.approx(0.5)


def test_j_and_f_missing_prediction_names_frame():
    gt = {0: square((30, 30), 5, 5, 10), 3: square((30, 30), 5, 5, 10)}
    with pytest.raises(ValueError, match="frame 3"):
        j_and_f({0: gt[0]}, gt)


# --------------------------------------------------------------------------- real DAVIS masks

def davis_root() -> Path:
    root = os.environ.get("LITDEMO_DAVIS_ROOT")
    if not root or not Path(root).is_dir():
        pytest.skip("LITDEMO_DAVIS_ROOT is not set to the DAVIS data folder")
    return Path(root)


def davis_mask(root: Path, sequence="blackswan", margin=40) -> np.ndarray:
    """A real GT mask whose object stays > margin px from the image border (so shifts don't clip it)."""
    from PIL import Image

    for png in sorted((root / "Annotations" / "480p" / sequence).glob("*.png")):
        m = np.asarray(Image.open(png)) > 0
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        if rows.size and rows[0] > margin and cols[0] > margin and rows[-1] < m.shape[0] - margin \
                and cols[-1] < m.shape[1] - margin:
            return m
    pytest.fail(f"no {sequence} frame keeps its object {margin}px from the border")


def test_davis_shift_within_tolerance_keeps_f_perfect():
    gt = davis_mask(davis_root())
    assert gt.shape == (480, 854)
    # The boundary map moves with the mask, so a shift by k <= 8 px (the 480p tolerance)
    # leaves every boundary pixel exactly k px from its partner: precision = recall = 1.
    for k in (1, 4, 8):
        assert boundary_f(shift(gt, dx=k), gt) == 1.0
        assert boundary_f(shift(gt, dy=-k), gt) == 1.0
    # J of a shift is |M & shifted M| / |M | shifted M|, counted here without iou():
    for k in (2, 8):
        moved = shift(gt, dx=k)
        overlap = int((gt[:, k:] & gt[:, :-k]).sum())
        assert region_j(moved, gt) == pytest.approx(overlap / (2 * gt.sum() - overlap))


def test_davis_larger_shifts_degrade_monotonically():
    gt = davis_mask(davis_root())
    js = [region_j(shift(gt, dx=k), gt) for k in (2, 5, 12, 30)]
    fs = [boundary_f(shift(gt, dx=k), gt) for k in (8, 12, 30)]
    assert js == sorted(js, reverse=True) and js[0] < 1 and len(set(js)) == 4
    assert fs[0] == 1.0 and 0 < fs[2] < fs[1] < 1.0


def test_davis_erosion_and_empty_prediction():
    gt = davis_mask(davis_root())
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    eroded = cv2.erode(gt.astype(np.uint8), kernel).astype(bool)
    # eroded is inside gt, so J = |eroded| / |gt| exactly
    assert region_j(eroded, gt) == pytest.approx(eroded.sum() / gt.sum())
    assert boundary_f(eroded, gt) == 1.0  # a 1 px erosion is within the 8 px tolerance
    big = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (31, 31))  # 15 px erosion > tolerance
    heavily = cv2.erode(gt.astype(np.uint8), big).astype(bool)
    assert region_j(heavily, gt) < region_j(eroded, gt)
    assert boundary_f(heavily, gt) < 1.0
    empty = np.zeros_like(gt)
    assert region_j(empty, gt) == 0.0 and boundary_f(empty, gt) == 0.0
    r = j_and_f({0: gt, 1: empty, 2: gt}, {0: gt, 1: gt, 2: gt})
    assert (r["J"], r["F"], r["n_frames"]) == (0.0, 0.0, 1)
