"""The correction widget of notebook 03, driven without a notebook: real canvas clicks, button presses, slider moves.

The picture lives on ipympl's canvas (an ipywidget), so these tests switch pyplot to that backend, as
`%matplotlib widget` does in the notebook, and back to the previous one afterwards.
"""
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backend_bases import MouseEvent

from litdemo.clicks import next_click
from litdemo.config import LitConfig
from litdemo.datasets import make_synthetic_video
from litdemo.session import LitSession
from litdemo.widget import build_correction_widget

OBJ = 1
# ipympl's own toolbar passes an argument traitlets no longer wants; nothing of ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Passing unrecognized arguments to super\\(Toolbar\\):DeprecationWarning")


@pytest.fixture
def widget_backend():
    previous = plt.get_backend()
    plt.switch_backend("module://ipympl.backend_nbagg")
    yield
    plt.close("all")
    plt.switch_backend(previous)


@pytest.fixture
def sample():
    return make_synthetic_video(num_frames=6, height=128, width=160, seed=0)


@pytest.fixture
def session(predictor, sample, one_torch_thread):
    return LitSession(predictor, sample.frames, LitConfig(mode="lit-ft"))


def mouse_click(ui, x, y):
    """A real matplotlib button press at image pixel (x, y), through the canvas's callbacks."""
    px, py = ui.image_axes.transData.transform((x, y))
    ui.figure.canvas.callbacks.process("button_press_event",
                                       MouseEvent("button_press_event", ui.figure.canvas, px, py, button=1))


def centre_of(mask):
    ys, xs = np.nonzero(mask)
    return xs.mean(), ys.mean()


def test_a_scripted_user_prompts_corrects_and_accepts(widget_backend, session, sample):
    gt = sample.gt[OBJ]
    ui = build_correction_widget(session, OBJ, ground_truth=gt)
    assert ui.accept_button.disabled and ui.timeline() == ["not tracked"] * 6

    mouse_click(ui, *centre_of(gt[0]))
    assert len(ui.clicks_on(0)) == 1 and ui.messages[-1].startswith("positive click at")
    ui.buttons["Use the true mask"].click()
    ui.buttons["Propagate from here"].click()
    assert ui.timeline() == ["prompted"] + ["tracked"] * 5
    assert ui.clicks_on(0) == []  # the true mask replaced the click

    ui.slider.value = 3
    click = next_click(session.mask(3, OBJ), gt[3])
    ui.polarity.value = "positive" if click.positive else "negative"
    mouse_click(ui, click.x, click.y)
    assert len(ui.clicks_on(3)) == 1 and (3, OBJ) in session.pending
    ui.buttons["Use the true mask"].click()
    assert ui.messages[-1].startswith("corrected frame 3 with the true mask; suggestion IoU there now")
    ui.buttons["Propagate from here"].click()

    ui.slider.value = 4
    assert not ui.accept_button.disabled  # LIT trained: its suggestion is shown on the later frame
    assert "suggestion IoU" in ui.info.value and ui.info.value.startswith("frame 4")
    ui.buttons["Accept suggestion"].click()

    assert ui.timeline() == ["prompted", "tracked", "tracked", "corrected", "accepted", "tracked"]
    assert [e.kind for e in session.history.events] == ["prompt", "correction", "accepted"]
    assert not [m for m in ui.messages if m.startswith("⚠")], ui.messages
    assert ui.messages[-1] == "accepted the suggestion on frame 4"


def test_undo_and_a_negative_click(widget_backend, session, sample):
    ui = build_correction_widget(session, OBJ, ground_truth=sample.gt[OBJ])
    ui.polarity.value = "negative"
    mouse_click(ui, 5, 5)
    assert ui.messages[-1] == "negative click at (5, 5) on frame 0"
    ui.buttons["Undo click"].click()
    assert ui.clicks_on(0) == [] and ui.messages[-1] == "last click undone"


def test_a_click_outside_the_picture_does_nothing(widget_backend, session):
    ui = build_correction_widget(session, OBJ)
    px, py = ui.timeline_axes.transData.transform((0, 0.5))
    ui.figure.canvas.callbacks.process("button_press_event",
                                       MouseEvent("button_press_event", ui.figure.canvas, px, py, button=1))
    assert ui.messages == [] and session.history.events == []


def test_a_mistake_shows_the_sessions_message_instead_of_raising(widget_backend, session):
    ui = build_correction_widget(session, OBJ)
    ui.buttons["Accept suggestion"].click()  # nothing tracked, nothing learned yet
    assert len(ui.messages) == 1 and ui.messages[0].startswith("⚠")
    assert ui.messages[0] in ui.status.value


def test_without_ground_truth_there_is_no_answer_key(widget_backend, session):
    ui = build_correction_widget(session, OBJ)
    assert list(ui.buttons) == ["Undo click", "Propagate from here", "Commit correction", "Accept suggestion"]
    assert ui.info.value == "frame 0"
    assert ui.figure.canvas in ui.box.children  # the picture sits inside the widget


def test_without_the_widget_backend_it_says_what_to_run(session):
    previous = plt.get_backend()
    plt.switch_backend("Agg")
    try:
        with pytest.raises(RuntimeError, match="%matplotlib widget"):
            build_correction_widget(session, OBJ)
    finally:
        plt.switch_backend(previous)
