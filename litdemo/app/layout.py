"""The page: components, their layout and the event wiring, all in `build_demo()`.

Handlers live in `handlers.py` (plain functions, tested without a browser); here each event
only unpacks Gradio's inputs, calls one handler under the tab's lock, and maps the returned
view dict onto components. Errors become Gradio messages, never tracebacks.
"""
from __future__ import annotations

import atexit
import dataclasses
import functools
import logging
import shutil
import signal
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, Callable, Optional

import gradio as gr
import torch

from ..models import MODELS
from ..video_io import VideoError
from . import costs, offline, pictures
from . import handlers as h
from . import render
from .config import AppConfig
from .gpu import DEFAULT_DURATION_S, gpu, on_zero_gpu
from .priority import LowPriorityWorkers
from .samples import ASSETS_DIR, SYNTHETIC, TOUR, sample_names
from .state import AppSession, ModelCache, ModelChoice, close_session
from .uploads import STRIDE_LABEL, TRUNCATE_LABEL

INTRO = """# LIT: Live Interactive Training for video segmentation
Click on the object, **propagate**, and fix the frames where tracking goes wrong. Each
**correction trains a small LoRA adapter right away**; on later frames the adapter **suggests**
a mask (white outline) that you can **accept** with one click. The timeline shows where you had to
step in: with LIT, the red marks should thin out as the video goes on."""
TOUR_INTRO = ("**Try this:** pick a *tour* video (rendered with its ground truth), press **Load sample**, then "
              "**Simulate SAM2 vs LIT** (below the frame): a simulated user fixes every frame that goes wrong, once "
              "with SAM2 alone and once with **LIT-LoRA**, and the timelines show who needed fewer corrections. "
              + " ".join(f"*{s.name.removeprefix('tour: ')}*: {s.try_this}" for s in TOUR)
              + " Then do it yourself: click the object, **Propagate**, fix a frame with a click and "
                "**Correct**, and watch the LoRA's suggestion on the next frames.")

PLOT_HELP = {
    "training": "**Training curve**: loss and IoU per optimisation step, one line per correction. "
                "The IoU rising to ~1 means the adapter reproduces your correction.",
    "improvement": "**Improvement**: how well the LoRA's suggestion matched each correction *before* "
                   "training on it. Rising values mean the adapter anticipates your fixes: points above the "
                   "dashed lines would have been good enough to accept.",
    "cumulative": "**Cumulative corrections** against the frame index: a flatter line later in the video means "
                  "fewer fixes were needed. After **Simulate**, the simulated SAM2-alone and LIT runs are drawn too.",
    "simulation": "**Simulate** plays a user who clicks from the ground truth until each frame reaches IoU "
                  "{tau}: once with SAM2 alone, once with LIT. Red = corrected, green = suggestion accepted, "
                  "blue = already fine.",
}
TOOL_CHOICES = [("+ positive point", "positive"), ("− negative point", "negative"), ("box (two clicks)", "box")]
KEYBOARD_JS = """
<script>
document.addEventListener('keydown', (e) => {
  const t = e.target; if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.isContentEditable)) return;
  const press = (id) => { const b = document.getElementById(id); if (b) { b.click(); e.preventDefault(); } };
  if (e.key === 'ArrowRight' || e.key === '.') press('lit-next');
  else if (e.key === 'ArrowLeft' || e.key === ',') press('lit-prev');
  else if (e.key === 'z' && (e.ctrlKey || e.metaKey)) press('lit-undo');
  else if (e.key === 'Enter' && e.shiftKey) press('lit-correct');
});
</script>"""
USER_ERRORS = (h.UserError, VideoError, ValueError, KeyError, IndexError, RuntimeError, FileNotFoundError)


def available_devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
    if torch.backends.mps.is_available():
        devices.insert(0, "mps")
    return devices


def launch_options(cfg: AppConfig) -> dict:
    """Keyword arguments for `demo.launch` that belong to the app (limits, styling)."""
    return dict(max_file_size=f"{int(cfg.max_upload_mb)}mb", head=KEYBOARD_JS, ssr_mode=False,
                css="#lit-timeline img {image-rendering: pixelated; cursor: pointer}")


def stop_cleanly_on_sigterm() -> None:
    """Let SIGTERM stop the server the way Ctrl+C does, so the exit sweep of the temp root runs.

    A Space (and docker, systemd, Kubernetes) stops a container with SIGTERM, whose default action
    ends the process without running `atexit` handlers: every tab's uploads and exports stayed on
    disk. Python turns SIGINT into KeyboardInterrupt, which Gradio's launch loop handles by closing
    the server; SIGTERM now takes the same path. Only the main thread may install the handler.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def build_demo(cfg: Optional[AppConfig] = None, assets_dir: Optional[Path] = ASSETS_DIR) -> gr.Blocks:
    """The whole app. Call `.queue(...).launch(**launch_options(cfg))` on the result."""
    cfg = cfg or AppConfig.from_env()
    models = ModelCache()  # shared by all tabs: models are read-only, sessions are not
    root = Path(tempfile.mkdtemp(prefix="litdemo-app-"))  # every tab's folder lives inside
    atexit.register(shutil.rmtree, root, True)  # a last sweep when the server stops
    heavy = dict(concurrency_limit=cfg.concurrency_limit, concurrency_id="model")
    # Corrections (training), Simulate and history imports are the long jobs. With their own group a
    # student's propagate or click never waits behind other students' training (a workshop's queue).
    training = (dict(concurrency_limit=cfg.training_concurrency_limit, concurrency_id="training")
                if cfg.training_concurrency_limit else heavy)
    # Decided once, before the page exists: no failed load first when the real weights cannot be had.
    start = offline.choose_start_model(cfg.default_model, cfg.image_size, cfg.pretrained)
    if start.fell_back:
        logging.getLogger(__name__).warning("offline start on %s: %s", start.name, start.banner)

    with gr.Blocks(title="LIT: live interactive training", delete_cache=(1800, 3600)) as demo:
        state = gr.State(functools.partial(AppSession, root), time_to_live=cfg.session_ttl_s,
                         delete_callback=close_session)
        gr.Markdown(start.banner, visible=start.fell_back, elem_id="lit-banner")
        gr.Markdown(INTRO + "\n\n" + TOUR_INTRO)
        with gr.Tab("Video (SAM2)"):
            c = _video_tab(cfg, assets_dir, start)
        with gr.Tab("Images (CLIP)"):
            _clip_tab_or_note(cfg)
        _wire(c, state, cfg, models, assets_dir, heavy, training)
    return demo


def model_labels() -> list[tuple[str, str]]:
    """(label, name) for the model picker: micro says it is not SAM2.1."""
    return [(spec.display_name, name) for name, spec in MODELS.items()]


def _video_tab(cfg: AppConfig, assets_dir: Optional[Path], start: offline.StartModel) -> dict[str, Any]:
    c: dict[str, Any] = {}
    untrained = not cfg.pretrained
    with gr.Row():
        with gr.Column(scale=3, min_width=360):
            # Sent as JPEG, not Gradio's default WebP: the server encodes this picture on every click, step,
            # played frame and streamed propagation update, and a 640 px frame takes ~60 ms as WebP against
            # ~4 ms as JPEG on a 2-core CPU (a quarter of a propagation's server time went to WebP:
            # docs/app.md, "Where a propagation's time goes"). At 5x enlargement JPEG's loss does not show.
            c["image"] = gr.Image(label="Frame: click to add points (or two corners of a box)", type="numpy",
                                  interactive=False, elem_id="lit-frame", buttons=["fullscreen"], height=420,
                                  format="jpeg")
            c["frame_info"] = gr.Markdown("Load a video to start.", elem_id="lit-frame-info")
            with gr.Row():
                c["prev"] = gr.Button("◀ prev", elem_id="lit-prev", size="sm", min_width=60)
                c["play"] = gr.Button("▶ play", elem_id="lit-play", size="sm", min_width=60)
                c["next"] = gr.Button("next ▶", elem_id="lit-next", size="sm", min_width=60)
            c["frame"] = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="lit-slider")
            c["timeline"] = gr.Image(label="Timeline: what each frame needed (click a frame to jump to it)",
                                     type="numpy", interactive=False, elem_id="lit-timeline", height=56,
                                     show_label=False, buttons=[], format="png")  # exact state colours, ~1 ms
            gr.HTML(render.timeline_legend_html())
            c["suggestion_info"] = gr.Markdown("", elem_id="lit-suggestion-info")
            _picker(c)
        with gr.Column(scale=2, min_width=300):
            with gr.Accordion("1 · Video", open=True):
                c["sample"] = gr.Dropdown(sample_names(assets_dir), value=SYNTHETIC if untrained else TOUR[0].name,
                                          label="Sample video", elem_id="lit-sample")
                c["load_sample"] = gr.Button("Load sample", variant="primary", elem_id="lit-load-sample")
                c["upload"] = gr.File(label=f"…or upload mp4 / webm / mov, or a zip of frames "
                                            f"(≤ {cfg.max_upload_mb:g} MB, ≤ {cfg.max_frames} frames)",
                                      file_types=[".mp4", ".webm", ".mov", ".zip"], elem_id="lit-upload")
                with gr.Row():
                    c["stride"] = gr.Slider(1, 10, value=1, step=1, label=STRIDE_LABEL)
                    c["truncate"] = gr.Checkbox(label=TRUNCATE_LABEL.format(max_frames=cfg.max_frames), value=False)
                c["load_upload"] = gr.Button("Load upload", elem_id="lit-load-upload")
            with gr.Accordion("2 · Model", open=False):
                device = available_devices()[0]
                c["model"] = gr.Dropdown(model_labels(), value=start.name, label="Model", elem_id="lit-model")
                c["device"] = gr.Dropdown(available_devices(), value=device, label="Device")
                c["image_size"] = gr.Dropdown(costs.size_choices(start.name, device, cfg.image_size),
                                              value=costs.default_size(start.name, device, start.image_size),
                                              label="Image size (SAM2's input)", elem_id="lit-image-size")
                c["untrained"] = gr.Checkbox(label="Untrained model (offline tour: random weights)", value=untrained)
                c["mode"] = gr.Radio(h.mode_choices(untrained), value=h.default_mode(untrained), label="Mode")
                c["adapters"] = gr.Checkbox(label="Three suggestions to pick from (multi-LoRA: up to 3 adapters "
                                                  "per object)", value=False, elem_id="lit-adapters")
                c["model_cost"] = gr.Markdown("**Cost here:** not measured yet; load a video and propagate.",
                                              elem_id="lit-model-cost")
                c["restart"] = gr.Button("Apply to this video (restarts it)", elem_id="lit-restart")
            with gr.Accordion("3 · Click", open=True):
                c["tool"] = gr.Radio(TOOL_CHOICES, value="positive", label="Click adds", elem_id="lit-tool")
                c["objects"] = gr.Radio([("object 1", 1)], value=1, label="Object", elem_id="lit-objects")
                c["object_legend"] = gr.HTML(render.object_legend_html([1], 1))
                with gr.Row():
                    c["add_object"] = gr.Button("+ object", size="sm", min_width=60)
                    c["remove_object"] = gr.Button("− object", size="sm", min_width=60)
                    c["undo"] = gr.Button("↶ undo click", size="sm", elem_id="lit-undo", min_width=60)
                    c["clear"] = gr.Button("clear frame", size="sm", min_width=60)
            with gr.Accordion("4 · Track and learn", open=True):
                with gr.Row():
                    c["propagate"] = gr.Button("Propagate", variant="primary", elem_id="lit-propagate")
                    c["propagate_here"] = gr.Button("…from this frame", elem_id="lit-propagate-here")
                    c["stop"] = gr.Button("Stop", variant="stop", elem_id="lit-stop")
                with gr.Row():
                    c["correct"] = gr.Button("Correct → train → continue", variant="primary",
                                             elem_id="lit-correct")
                    c["accept"] = gr.Button("Accept suggestion", elem_id="lit-accept")
            c["status"] = gr.Markdown(h.status_markdown(AppSession(Path("."))), elem_id="lit-status")
    with gr.Row():
        with gr.Column(min_width=300):
            gr.Markdown(PLOT_HELP["training"])
            c["training_plot"] = gr.Plot(label="LoRA training", show_label=False, elem_id="lit-training-plot")
        with gr.Column(min_width=300):
            gr.Markdown(PLOT_HELP["improvement"])
            c["improvement_plot"] = gr.Plot(label="LoRA improvement", show_label=False, elem_id="lit-improvement-plot")
    with gr.Row():
        with gr.Column(min_width=300):
            gr.Markdown(PLOT_HELP["cumulative"])
            c["cumulative_plot"] = gr.Plot(label="Cumulative corrections", show_label=False, elem_id="lit-cumulative-plot")
        with gr.Column(min_width=300):
            gr.Markdown(PLOT_HELP["simulation"].format(tau=cfg.simulate_iou_threshold))
            c["simulate"] = gr.Button("Simulate SAM2 vs LIT on this video", elem_id="lit-simulate")
            c["simulation_info"] = gr.Markdown("", elem_id="lit-simulation-info")
            c["simulation_plot"] = gr.Plot(label="Simulated user", show_label=False, elem_id="lit-simulation-plot")
    with gr.Accordion("5 · Keep the result", open=False):
        with gr.Row():
            with gr.Column():
                c["export"] = gr.Button("Export masks (PNG zip), overlay mp4, history JSON, adapter",
                                        elem_id="lit-export")
                c["export_files"] = gr.File(label="Exported files", file_count="multiple", interactive=False)
            with gr.Column():
                c["history_file"] = gr.File(label="Continue from a saved history.json", file_types=[".json"])
                c["import"] = gr.Button("Replay history on this video", elem_id="lit-import")
    gr.Markdown("Keys: ←/→ frame · Ctrl+Z undo · Shift+Enter correct. "
                "Each browser tab has its own session; files you upload stay in a private temp folder that "
                "is deleted when the session ends.")
    c["timer"] = gr.Timer(0.4, active=False)
    c["playing"] = gr.State(False)
    return c


def _picker(c: dict) -> None:
    """Issue 14's picker: each adapter's suggestion as a thumbnail, the one to accept, the button."""
    c["picker_info"] = gr.Markdown("", elem_id="lit-picker-info")
    c["picker_gallery"] = gr.Gallery(label="Each adapter's suggestion for this frame", columns=3, height=200,
                                     allow_preview=False, show_label=True, elem_id="lit-picker-gallery",
                                     format="png", interactive=False)
    with gr.Row():
        c["picker_choice"] = gr.Radio([], label="Suggestion to accept", elem_id="lit-picker-choice")
        c["picker_accept"] = gr.Button("Accept the chosen suggestion", elem_id="lit-picker-accept", min_width=60)


def _clip_tab_or_note(cfg: AppConfig) -> None:
    try:
        from .clip_tab import build_clip_tab
    except ImportError as err:
        gr.Markdown(f"The CLIP part of the app is not available in this version ({err}).")
        return
    build_clip_tab(cfg)


# ---------------------------------------------------------------- wiring
def _wire(c: dict, state: gr.State, cfg: AppConfig, models: ModelCache, assets_dir, heavy: dict,
          training: dict) -> None:
    c["state"] = state
    outs = [state] + [c[k] for k in h.VIEW_KEYS]

    def choice(model, device, untrained, mode, image_size=None, three=False) -> ModelChoice:
        return ModelChoice(name=model, device=device, mode=mode, untrained=bool(untrained),
                           image_size=int(image_size) if image_size else None, adapters=3 if three else 1)

    model_inputs = [c["model"], c["device"], c["untrained"], c["mode"], c["image_size"], c["adapters"]]
    device = DeviceCalls.make()  # decided now: spaces.GPU on ZeroGPU (see gpu.py), the plain functions elsewhere
    run = functools.partial(_run, comps=c, device=device)
    stream = functools.partial(_stream, comps=c, device=device)
    # the long jobs, on lower-priority threads when the config asks for it (priority.py)
    slow = device.on(training_workers(cfg))
    run_slow = functools.partial(_run, comps=c, device=slow)
    stream_slow = functools.partial(_stream, comps=c, device=slow)

    def load_sample(app, name, *m):
        return run(app, h.open_sample, name, choice(*m), cfg, models, assets_dir)

    def load_upload(app, upload, stride, truncate, *m):
        return run(app, h.open_upload, upload, upload or "", choice(*m), cfg, models, stride, truncate)

    def restart(app, *m):
        return run(app, h.restart, choice(*m), cfg, models)

    def sizes(model, device, size):
        choices = costs.size_choices(model, device, cfg.image_size)
        keep = size if size in [v for _, v in choices] and not MODELS[model].shipped else None
        return gr.update(choices=choices, value=keep or costs.default_size(model, device, cfg.image_size))

    c["model"].input(sizes, [c["model"], c["device"], c["image_size"]], c["image_size"])
    c["device"].input(sizes, [c["model"], c["device"], c["image_size"]], c["image_size"])
    c["load_sample"].click(load_sample, [state, c["sample"]] + model_inputs, outs, api_name="load_sample", **heavy)
    c["load_upload"].click(load_upload, [state, c["upload"], c["stride"], c["truncate"]] + model_inputs, outs,
                           **heavy)
    c["restart"].click(restart, [state] + model_inputs, outs, **heavy)
    c["untrained"].input(lambda u: gr.update(choices=h.mode_choices(u), value=h.default_mode(u)),
                         c["untrained"], c["mode"])

    def on_click(app, evt: gr.SelectData):
        return run(app, h.click, *evt.index[:2])

    def click_at(app, x, y):  # the same click for API clients (the load test): x, y in the picture shown
        return run(app, h.click, float(x), float(y))

    def on_timeline(app, evt: gr.SelectData):
        return run(app, h.timeline_click, evt.index[0])

    c["image"].select(on_click, state, outs, **heavy)
    c["api_x"], c["api_y"] = gr.Number(visible=False), gr.Number(visible=False)
    c["api_click"] = gr.Button(visible=False)
    c["api_click"].click(click_at, [state, c["api_x"], c["api_y"]], outs, api_name="click_at", **heavy)
    c["timeline"].select(on_timeline, state, outs, **heavy)
    c["frame"].release(lambda app, f: run(app, h.goto, f), [state, c["frame"]], outs, api_name="goto", **heavy)
    c["prev"].click(lambda app: run(app, h.step, -1), state, outs, **heavy)
    c["next"].click(lambda app: run(app, h.step, 1), state, outs, **heavy)
    # heavy too: with a suggestion on screen, redrawing the frame may run the model
    c["tool"].input(lambda app, t: run(app, h.set_tool, t), [state, c["tool"]], outs, **heavy)
    c["objects"].input(lambda app, o: run(app, h.select_object, o), [state, c["objects"]], outs, **heavy)
    c["add_object"].click(lambda app: run(app, h.add_object), state, outs, **heavy)
    c["remove_object"].click(lambda app: run(app, h.remove_object), state, outs, **heavy)
    c["undo"].click(lambda app: run(app, h.undo), state, outs, **heavy)
    c["clear"].click(lambda app: run(app, h.clear_frame), state, outs, **heavy)

    def propagate(app, progress=gr.Progress()):
        yield from stream(app, h.propagate, progress=ReportProgress(progress))

    def propagate_here(app, progress=gr.Progress()):
        yield from stream(app, h.propagate, from_current=True, progress=ReportProgress(progress))

    def correct(app, progress=gr.Progress()):
        yield from stream_slow(app, h.correct_and_continue, progress=ReportProgress(progress))

    def simulate(app, progress=gr.Progress()):
        return run_slow(app, h.simulate, cfg, progress=ReportProgress(progress))

    def accept(app, adapter=None):
        return run(app, h.accept, adapter)

    def import_history(app, path, progress=gr.Progress()):
        return run_slow(app, h.import_history, path, progress=ReportProgress(progress))

    jobs = [c["propagate"].click(propagate, state, outs, api_name="propagate", **heavy),
            c["propagate_here"].click(propagate_here, state, outs, **heavy),
            c["correct"].click(correct, state, outs, api_name="correct", **training)]
    c["stop"].click(None, None, None, cancels=jobs)
    c["accept"].click(accept, state, outs, api_name="accept", **heavy)
    c["picker_accept"].click(accept, [state, c["picker_choice"]], outs, api_name="accept_chosen", **heavy)
    c["simulate"].click(simulate, state, outs, api_name="simulate", **training)
    c["export"].click(lambda app: run(app, h.export), state, outs, api_name="export", **heavy)
    c["import"].click(import_history, [state, c["history_file"]], outs, **training)

    # play: a timer steps the frames; the button toggles it
    def toggle(playing):
        return {c["timer"]: gr.Timer(active=not playing), c["playing"]: not playing,
                c["play"]: gr.Button("⏸ pause" if not playing else "▶ play")}

    c["play"].click(toggle, c["playing"], [c["timer"], c["playing"], c["play"]])
    c["timer"].tick(lambda app: run(app, h.step, 1, quiet=True), state, outs, **heavy)


def training_workers(cfg: AppConfig) -> Optional[LowPriorityWorkers]:
    """Threads for the long jobs at `cfg.training_nice` (None at 0: they run on Gradio's threads). As many
    as those jobs may run at once: their own queue's limit, or the model steps' when they share it."""
    if not cfg.training_nice or on_zero_gpu():  # on ZeroGPU the work runs in the GPU worker's process
        return None
    return LowPriorityWorkers(cfg.training_concurrency_limit or cfg.concurrency_limit, cfg.training_nice)


class ReportProgress:
    """A handler's progress callback (fraction, text) onto Gradio's progress bar. A class, not a
    lambda, so that it pickles: on ZeroGPU it travels to the worker with the handler's arguments."""

    def __init__(self, progress: gr.Progress):
        self.progress = progress

    def __call__(self, fraction: float, desc: str) -> None:
        self.progress(fraction, desc=desc)


# ---------------------------------------------------------------- the model's side of an event
# `_call` and `_steps` are the part of an event that runs the model. On a ZeroGPU Space they run
# in spaces' forked GPU worker, which gets (session, handler, arguments) pickled and sends the
# result back pickled. So they hand the session back with the view (the worker changed a copy), and
# turn a failure into a message there (an exception type may not survive the trip back).
def _call(app: AppSession, fn: Callable, args: tuple, kwargs: dict):
    try:
        return app, fn(app, *args, **kwargs), None
    except Exception as err:  # noqa: BLE001 - every failure becomes a message, never a traceback
        return app, None, _message(err)


def _steps(app: AppSession, fn: Callable, args: tuple, kwargs: dict):
    gen = fn(app, *args, **kwargs)
    while True:
        try:
            view = next(gen)
        except StopIteration:
            return
        except Exception as err:  # noqa: BLE001
            yield app, None, _message(err)
            return
        yield app, view, None


LONG_HANDLERS = {h.simulate, h.import_history}  # two runs of a whole video: they may hold the GPU longer


def _gpu_seconds(app, fn: Callable, args, kwargs) -> int:
    """The GPU time ZeroGPU reserves for one call (spaces asks before running it)."""
    return 2 * DEFAULT_DURATION_S if fn in LONG_HANDLERS else DEFAULT_DURATION_S


@dataclasses.dataclass
class DeviceCalls:
    call: Callable   # _call, or spaces.GPU(_call) on ZeroGPU
    steps: Callable  # _steps, likewise

    @staticmethod
    def make() -> "DeviceCalls":
        return DeviceCalls(gpu(_call, duration=_gpu_seconds), gpu(_steps, duration=_gpu_seconds))

    def on(self, workers: Optional[LowPriorityWorkers]) -> "DeviceCalls":
        """The same calls, run on `workers`' lower-priority threads (None: where they are called)."""
        if workers is None:
            return self
        calls = self
        return DeviceCalls(lambda *a: workers.run(calls.call, *a),
                           lambda *a: workers.steps(calls.steps(*a)))


IN_PROCESS = DeviceCalls(_call, _steps)  # what `make()` gives anywhere but ZeroGPU


def _run(app: AppSession, fn: Callable, *args, comps: dict, device: DeviceCalls = IN_PROCESS,
         quiet: bool = False, **kwargs) -> dict:
    """Call one handler under the tab's lock; map its view onto components; errors -> messages."""
    if quiet and app.lit is None:  # e.g. the play timer before any video: nothing to say
        return {}
    with app.lock:
        changed, view, failure = device.call(app, fn, args, kwargs)
        app.adopt(changed)
    if failure is not None:
        gr.Warning(failure.message, title=failure.title)
        return {}  # nothing changes: the page keeps what it showed (no "Error" on every component)
    return _updates(app, view, comps)


def _stream(app: AppSession, fn: Callable, *args, comps: dict, device: DeviceCalls = IN_PROCESS, **kwargs):
    """As `_run`, for generator handlers: the lock is held per step, so Stop and scrubbing get a turn."""
    steps = device.steps(app, fn, args, kwargs)
    while True:
        with app.lock:  # never yield while holding it: the next step may run on another thread
            try:
                changed, view, failure = next(steps)
            except StopIteration:
                return
            app.adopt(changed)
        if failure is not None:
            gr.Warning(failure.message, title=failure.title)
            yield _updates(app, {}, comps)  # the frames done so far stay; the rest of the page too
            return
        yield _updates(app, view, comps)


def _updates(app: AppSession, view: dict, comps: dict) -> dict:
    from matplotlib.figure import Figure

    out: dict = {comps["state"]: app}  # stored back, so the state's time-to-live restarts
    for key, value in view.items():
        component = comps[key]
        if isinstance(value, Figure):
            value = encoded_plot(component, value)
        else:
            value = pictures.as_served(component, value)  # written whole: tabs may show the same picture
        out[component] = gr.update(**value) if isinstance(value, dict) else value
    return out


# Each figure's encoding, kept while the figure lives (weak keys: a tab's FigureMemo drops the figures
# it replaced). Shared by all tabs: each figure belongs to one of them.
_ENCODED: "weakref.WeakKeyDictionary[Any, tuple[str, Any]]" = weakref.WeakKeyDictionary()
_ENCODED_LOCK = threading.Lock()  # tabs' events run on several threads


def encoded_plot(plot: gr.Plot, figure) -> Any:
    """`figure` as `plot` sends it to the page, encoded once: a view whose data did not change hands back
    the same figure (render.FigureMemo), and its earlier encoding goes out again instead of a new one
    (~0.2 s of CPU per plot and view, which a workshop's thirty tabs feel). Gradio passes the encoded
    plot through unchanged."""
    with _ENCODED_LOCK:
        kept = _ENCODED.get(figure)
    if kept is None or kept[0] != plot.format:
        kept = (plot.format, plot.postprocess(figure))
        with _ENCODED_LOCK:
            _ENCODED[figure] = kept
    return kept[1]


def _message(err: Exception) -> gr.Error:
    """How a failure is shown: a warning toast, the page stays as it was (issue 14: no error badges)."""
    if not isinstance(err, USER_ERRORS):
        logging.getLogger(__name__).error("handler failed", exc_info=err)
    if isinstance(err, USER_ERRORS):
        text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        return gr.Error(str(text), title="Cannot do that", print_exception=False)
    return gr.Error(f"Unexpected {type(err).__name__}: {err}. The session is still usable; "
                    f"if it misbehaves, load the video again.",
                    title="Something went wrong")
