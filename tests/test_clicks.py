"""Simulated clicks: inside the error region, positive on misses, negative on false alarms."""
import numpy as np
import pytest
import torch
from sam2.modeling.sam2_utils import get_next_point

from litdemo.clicks import Click, next_click


def box(shape, rows, cols):
    m = np.zeros(shape, bool)
    m[rows[0]:rows[1], cols[0]:cols[1]] = True
    return m


def test_perfect_prediction_gives_no_click():
    gt = box((40, 60), (4, 15), (20, 31))
    assert next_click(gt.copy(), gt) is None
    assert next_click(np.zeros((5, 5)), np.zeros((5, 5))) is None


def test_miss_gives_positive_click_at_centre_with_x_as_column():
    # 11x11 object at rows 4..14, cols 20..30, nothing predicted: the pixel farthest from the
    # edge of the missed region is its centre, row 9, column 25 (unique maximum).
    gt = box((40, 60), (4, 15), (20, 31))
    click = next_click(np.zeros_like(gt), gt)
    assert click == Click(x=25, y=9, positive=True)
    assert click.label == 1
    assert gt[click.y, click.x]


def test_false_alarm_gives_negative_click_outside_object():
    gt = box((40, 60), (10, 14), (10, 14))  # small object
    pred = box((40, 60), (5, 35), (5, 55))  # prediction spills far beyond it
    click = next_click(pred, gt)
    assert click is not None and not click.positive and click.label == 0
    assert pred[click.y, click.x] and not gt[click.y, click.x]  # inside the false-alarm region


def test_deeper_error_wins():
    gt = box((50, 50), (5, 25), (5, 25))  # 20x20 object
    pred = box((50, 50), (5, 25), (5, 10)) | box((50, 50), (40, 44), (40, 44))  # misses most, small FP
    click = next_click(pred, gt)
    assert click.positive and gt[click.y, click.x] and not pred[click.y, click.x]
    # mirror: big false alarm, tiny miss
    gt2 = box((50, 50), (5, 8), (5, 8))
    pred2 = box((50, 50), (20, 45), (20, 45))
    click2 = next_click(pred2, gt2)
    assert not click2.positive and pred2[click2.y, click2.x] and not gt2[click2.y, click2.x]


def test_matches_sam2_get_next_point_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(10):
        gt = rng.random((24, 32)) < 0.4
        pred = rng.random((24, 32)) < 0.4
        click = next_click(pred, gt)
        points, labels = get_next_point(torch.from_numpy(gt)[None, None], torch.from_numpy(pred)[None, None], "center")
        assert (click.x, click.y) == (int(points[0, 0, 0]), int(points[0, 0, 1]))
        assert click.positive == bool(labels[0, 0] == 1)
        wrong = gt ^ pred
        assert wrong[click.y, click.x]  # always on an error pixel
        assert click.positive == bool(gt[click.y, click.x])


def test_accepts_0_1_masks_and_rejects_shape_mismatch():
    gt = box((20, 20), (2, 9), (2, 9)).astype(np.uint8)
    assert next_click(np.zeros((20, 20), np.uint8), gt).positive
    with pytest.raises(ValueError, match="shape"):
        next_click(np.zeros((20, 21)), np.zeros((20, 20)))
