"""The correction widget of notebook 03: one frame, a frame slider, click polarity, buttons and a timeline.

    ui = build_correction_widget(session, obj_id=1, ground_truth=sample.gt[1])
    ui.box                                   # display it (under `%matplotlib widget`)

Every control calls one LitSession method and redraws; nothing else happens here. The handlers are plain
methods, so a script or a test drives the widget exactly as a mouse would: set `ui.slider.value`, press
`ui.buttons[...]`, or send a matplotlib button_press_event to `ui.figure.canvas`.
The picture needs matplotlib's widget backend (ipympl): its canvas is itself an ipywidget.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import matplotlib.pyplot as plt
import numpy as np

from .metrics import iou
from .plots import TIMELINE_COLOURS, annotated_frame, frame_states, timeline_strip
from .training import updates_in

try:
    import ipywidgets as W
except ImportError as err:  # an optional extra: say how to get it rather than fail deep inside
    raise ImportError("the correction widget needs ipywidgets and ipympl: pip install 'litdemo[notebooks]'") from err

# The errors the session raises for a user's mistake; their messages say what to do, so the status line shows them.
USER_ERRORS = (ValueError, KeyError, IndexError, RuntimeError)


def build_correction_widget(session, obj_id: int,
                            ground_truth: Optional[Mapping[int, np.ndarray]] = None) -> "CorrectionWidget":
    """A CorrectionWidget over `session` for object `obj_id`; `ground_truth` (frame -> mask) adds the
    "Use the true mask" button and IoU read-outs."""
    return CorrectionWidget(session, obj_id, ground_truth)


class CorrectionWidget:
    def __init__(self, session, obj_id: int, ground_truth: Optional[Mapping[int, np.ndarray]] = None):
        self.session, self.obj_id, self.ground_truth = session, obj_id, ground_truth
        self.messages: list[str] = []  # everything the status line said, newest last
        self._build_figure()
        self._build_controls()
        self.box = W.VBox([W.HBox([self.slider, self.polarity]), W.HBox(list(self.buttons.values())),
                           self.figure.canvas, self.info, self.status])
        self.redraw()

    # ---------------------------------------------------------------- what the widget shows
    @property
    def frame(self) -> int:
        return self.slider.value

    def suggestion(self, t: int) -> Optional[np.ndarray]:
        """The adapter's mask on frame t, once it has trained and tracking reached t."""
        learner = self.session.learners.get(self.obj_id)
        if learner is None or not learner.trained or not self.session.is_tracked(t, self.obj_id):
            return None
        return self.session.suggest(t, self.obj_id)

    def clicks_on(self, t: int) -> list:
        """The clicks to draw on frame t: a correction in progress, else the prompts given there."""
        pending = self.session.pending.get((t, self.obj_id))
        if pending is not None:
            return pending.clicks
        return [c for e in self.session.history.events if e.kind == "prompt" and e.frame_idx == t for c in e.clicks]

    def timeline(self) -> list[str]:
        """One state per frame (prompted, corrected, accepted, tracked, not tracked), as the strip shows it."""
        tracked = [t for t in range(self.session.num_frames) if self.session.is_tracked(t, self.obj_id)]
        return frame_states(self.session.num_frames, self.session.history.events, tracked)

    def redraw(self) -> None:
        t = self.frame
        mask, suggestion = self.session.mask(t, self.obj_id), self.suggestion(t)
        self.image.set_data(annotated_frame(self.session.video.frames[t], {} if mask is None else {self.obj_id: mask},
                                            clicks=self.clicks_on(t), suggestion=suggestion))
        self.strip.set_data(timeline_strip(self.timeline(), t))
        self.info.value = " · ".join([f"frame {t}"] + self._iou_readouts(t, mask, suggestion))
        self.accept_button.disabled = suggestion is None
        self.figure.canvas.draw_idle()

    def report(self, text: str) -> None:
        self.messages.append(text)
        self.status.value = f"<span style='color:#444'>{text}</span>"

    # ---------------------------------------------------------------- what the user does
    def click_at(self, x: float, y: float, positive: bool = True) -> None:
        self.session.click(self.frame, self.obj_id, float(x), float(y), positive=positive)
        self.report(f"{'positive' if positive else 'negative'} click at ({x:.0f}, {y:.0f}) on frame {self.frame}")

    def undo(self) -> None:
        self.session.undo_click(self.frame, self.obj_id)
        self.report("last click undone")

    def propagate(self) -> None:
        last = self.frame
        for last, _ in self.session.propagate(start_frame=self.frame):
            pass
        self.report(f"tracked frames {self.frame}..{last}")

    def commit(self) -> None:
        event = self.session.correct(self.frame, self.obj_id)
        if event.train_curve:
            self.report(f"correction on frame {event.frame_idx}: LIT trained {updates_in(event.train_curve)} steps, "
                        f"suggestion IoU there now {event.suggestion_iou_after:.2f}")
        else:
            self.report(f"correction on frame {event.frame_idx} (mode 'sam2' does not learn)")

    def use_truth(self) -> None:
        t, obj = self.frame, self.obj_id
        truth = self.ground_truth[t]
        if self.session.is_tracked(t, obj) or (t, obj) in self.session.pending:
            event = self.session.correct(t, obj, mask=truth)
            self.report(f"corrected frame {t} with the true mask" +
                        (f"; suggestion IoU there now {event.suggestion_iou_after:.2f}" if event.train_curve else ""))
        else:
            if obj in self.session.obj_ids:
                self.session.clear_frame(t, obj)  # drop clicks given here: the mask replaces them
            self.session.prompt(t, obj, mask=truth)
            self.report(f"object {obj} prompted on frame {t} with the true mask; now propagate")

    def accept(self) -> None:
        self.session.accept(self.frame, self.obj_id)
        self.report(f"accepted the suggestion on frame {self.frame}")

    # ---------------------------------------------------------------- wiring
    def _guarded(self, action: Callable[[], None]) -> Callable[..., None]:
        """A control's callback: run the action, show the session's error message (it says what to do), redraw."""
        def callback(*_):
            try:
                action()
            except USER_ERRORS as err:
                self.report(f"⚠ {err}")
            self.redraw()
        return callback

    def _on_press(self, event) -> None:
        if event.inaxes is self.image.axes and event.xdata is not None:
            positive = self.polarity.value == "positive"
            self._guarded(lambda: self.click_at(event.xdata, event.ydata, positive))()

    def _iou_readouts(self, t: int, mask, suggestion) -> list[str]:
        truth = None if self.ground_truth is None else self.ground_truth.get(t)
        if truth is None:
            return []
        shown = [] if mask is None else [f"shown mask IoU {iou(mask, truth):.2f}"]
        return shown + ([] if suggestion is None else [f"suggestion IoU {iou(suggestion, truth):.2f}"])

    def _build_figure(self) -> None:
        frames, T = self.session.video.frames, self.session.num_frames
        with plt.ioff():  # the figure is shown inside the widget, not on its own
            self.figure, (self.image_axes, self.timeline_axes) = plt.subplots(
                2, 1, figsize=(6, 5.6), height_ratios=[5, 1])
        if not isinstance(self.figure.canvas, W.DOMWidget):
            plt.close(self.figure)
            raise RuntimeError("the correction widget draws on matplotlib's widget backend: "
                               "run `%matplotlib widget` (ipympl) before building it.")
        self.figure.canvas.header_visible = False
        self.image = self.image_axes.imshow(frames[0])
        self.image_axes.set_axis_off()
        self.strip = self.timeline_axes.imshow(timeline_strip(["not tracked"] * T, 0), aspect="auto",
                                               extent=(-0.5, T - 0.5, 1, 0))
        self.timeline_axes.set_yticks([])
        self.timeline_axes.set_xlabel("frame  (" + ", ".join(TIMELINE_COLOURS) + ")", fontsize=8)
        self.figure.tight_layout()
        self.figure.canvas.mpl_connect("button_press_event", self._on_press)

    def _build_controls(self) -> None:
        self.slider = W.IntSlider(value=0, min=0, max=self.session.num_frames - 1, description="frame")
        self.slider.observe(lambda change: self.redraw(), names="value")
        self.polarity = W.ToggleButtons(options=["positive", "negative"], description="click")
        actions = {"Undo click": self.undo, "Propagate from here": self.propagate, "Commit correction": self.commit}
        if self.ground_truth is not None:  # no answer key, no button
            actions["Use the true mask"] = self.use_truth
        actions["Accept suggestion"] = self.accept
        self.buttons = {label: W.Button(description=label, layout=W.Layout(width="auto")) for label in actions}
        for label, action in actions.items():
            self.buttons[label].on_click(self._guarded(action))
        self.accept_button = self.buttons["Accept suggestion"]
        self.info, self.status = W.HTML(), W.HTML()
