"""Plots return Figures with the data drawn in them; overlay and palette are exact."""
import io
import subprocess
import sys
import warnings

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from litdemo.plots import (
    FRAME_STATES, davis_palette, feature_pca_image, overlay_masks, plot_cumulative_corrections,
    plot_suggestion_iou, plot_timeline, plot_training_curves,
)


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")  # works without pyplot or a display
    return buf.getvalue()


def test_davis_palette_matches_known_voc_colours():
    p = davis_palette()
    assert p.shape == (256, 3) and p.dtype == np.uint8
    # the well-known first PASCAL VOC / DAVIS colours, and the 'void' colour at 255
    assert p[0].tolist() == [0, 0, 0]
    assert p[1].tolist() == [128, 0, 0]
    assert p[2].tolist() == [0, 128, 0]
    assert p[3].tolist() == [128, 128, 0]
    assert p[4].tolist() == [0, 0, 128]
    assert p[8].tolist() == [64, 0, 0]
    assert p[255].tolist() == [224, 224, 192]
    assert len({tuple(c) for c in p}) == 256  # all distinct


def test_overlay_blends_exactly_and_leaves_background():
    frame = np.full((4, 5, 3), 100, np.uint8)
    m1 = np.zeros((4, 5), bool)
    m1[0, 0] = True
    m2 = np.zeros((4, 5), bool)
    m2[1, 1] = True
    out = overlay_masks(frame, {1: m1, 2: m2}, alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == frame.shape
    assert out[0, 0].tolist() == [114, 50, 50]  # 0.5 * 100 + 0.5 * (128, 0, 0)
    assert out[1, 1].tolist() == [50, 114, 50]  # object 2: (0, 128, 0)
    untouched = ~(m1 | m2)
    assert np.array_equal(out[untouched], frame[untouched])
    assert np.array_equal(overlay_masks(frame, {1: m1}, alpha=0.0), frame)
    assert frame[0, 0].tolist() == [100, 100, 100]  # input not modified


def test_overlay_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        overlay_masks(np.zeros((4, 5, 3), np.float32), {})
    with pytest.raises(ValueError, match="object 3"):
        overlay_masks(np.zeros((4, 5, 3), np.uint8), {3: np.zeros((5, 4), bool)})
    with pytest.raises(ValueError, match="alpha"):
        overlay_masks(np.zeros((4, 5, 3), np.uint8), {}, alpha=1.5)


def test_timeline_draws_one_cell_per_frame_in_state_colours():
    states = {
        "sam2": ["fine", "corrected", "corrected", "fine", "unannotated"],
        "lit-lora": ["fine", "corrected", "accepted", "fine", "unannotated"],
    }
    fig = plot_timeline(states)
    ax = fig.axes[0]
    bars = ax.patches
    assert len(bars) == 10  # 2 methods x 5 frames
    colours = {}
    for bar in bars:
        row = round(bar.get_y() + bar.get_height() / 2)
        frame = round(bar.get_x() + 0.5)
        colours[(row, frame)] = bar.get_facecolor()
    assert colours[(0, 1)] == to_rgba(FRAME_STATES["corrected"])
    assert colours[(1, 2)] == to_rgba(FRAME_STATES["accepted"])
    assert colours[(1, 0)] == to_rgba(FRAME_STATES["fine"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["sam2", "lit-lora"]
    assert "sam2: 2" in ax.get_title() and "lit-lora: 1" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(FRAME_STATES)
    assert len(png_bytes(fig)) > 1000


def test_timeline_rejects_unknown_state():
    with pytest.raises(ValueError, match="skipped"):
        plot_timeline({"sam2": ["fine", "skipped"]})


def test_cumulative_corrections_lines_end_at_totals():
    fig = plot_cumulative_corrections({"sam2": [0, 1, 1, 1, 0, 1], "lit": [0, 1, 0, 0, 0, 0]})
    lines = fig.axes[0].get_lines()
    assert [list(line.get_ydata()) for line in lines] == [[0, 1, 2, 3, 3, 4], [0, 1, 1, 1, 1, 1]]
    assert len(png_bytes(fig)) > 1000


def test_training_curves_one_line_per_round_and_metric():
    curves = [{"loss": [1.0, 0.5, 0.2], "iou": [0.3, 0.6, 0.9]}, {"loss": [0.4, 0.1], "iou": [0.8, 0.95]}]
    fig = plot_training_curves(curves)
    loss_ax, iou_ax = fig.axes
    assert [list(line.get_ydata()) for line in loss_ax.get_lines()] == [[1.0, 0.5, 0.2], [0.4, 0.1]]
    assert [list(line.get_ydata()) for line in iou_ax.get_lines()] == [[0.3, 0.6, 0.9], [0.8, 0.95]]
    assert len(png_bytes(fig)) > 1000
    with pytest.raises(ValueError, match="empty"):
        plot_training_curves([])


def test_suggestion_iou_plot_has_values_and_thresholds():
    fig = plot_suggestion_iou([0.2, 0.45, 0.8], tau=0.5)
    ax = fig.axes[0]
    data_line, tau_line = ax.get_lines()
    assert list(data_line.get_ydata()) == [0.2, 0.45, 0.8]
    assert list(tau_line.get_ydata()) == [0.5, 0.5]
    assert len(png_bytes(fig)) > 1000


@pytest.mark.parametrize("values", [[], [0.6], [0.2, 0.45, 0.8]])
def test_suggestion_iou_plot_lays_out_without_warnings_and_keeps_tau_labels_inside(values):
    # The tau labels used to sit at data x=0.5, outside the axes; with 0 or 1 values so far out that
    # tight_layout gave up with "Tight layout not applied" (a UserWarning).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_suggestion_iou(values, tau=(0.5, 0.7))
        png_bytes(fig)
    ax = fig.axes[0]
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    assert [t.get_text() for t in ax.texts] == [" tau=0.5", " tau=0.7"]
    for text in ax.texts:
        extent = text.get_window_extent(renderer)
        assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1, f"{text.get_text()!r} drawn outside the axes"


def test_feature_pca_image_is_uint8_rgb_deterministic_and_groups_alike_pixels():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(1, 16, 6, 7)).astype(np.float32)
    features[0, :, :3, :] += 5 * rng.normal(size=(16, 1, 1))  # top half: one feature vector, plus noise
    img = feature_pca_image(features)
    assert img.shape == (6, 7, 3) and img.dtype == np.uint8
    assert img.min() == 0 and img.max() == 255  # each component stretched to the full range
    assert np.array_equal(img, feature_pca_image(features))  # deterministic
    assert np.array_equal(img, feature_pca_image(features[0]))  # (C, h, w) works too
    # the first component separates the two halves: all top pixels on one side of all bottom ones
    top, bottom = img[:3, :, 0].astype(int), img[3:, :, 0].astype(int)
    assert top.min() > bottom.max() or top.max() < bottom.min()
    # a torch tensor (as SAM2's decoder inputs are) gives the same picture
    torch = pytest.importorskip("torch")
    assert np.array_equal(img, feature_pca_image(torch.from_numpy(features)))
    with pytest.raises(ValueError, match="shape"):
        feature_pca_image(np.zeros((2, 16, 6, 7)))


def test_plots_import_without_gradio():
    # notebook 03 draws the live view with these helpers; importing them must not pull in the app
    code = ("import sys; from litdemo.plots import TIMELINE_COLOURS, annotated_frame, frame_states, "
            "timeline_strip; assert 'gradio' not in sys.modules, 'litdemo.plots imported gradio'")
    subprocess.run([sys.executable, "-c", code], check=True)
