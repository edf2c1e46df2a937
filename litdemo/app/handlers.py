"""The app's verbs as plain functions over one tab's `AppSession`: no Gradio needed to call them.

Each handler takes the tab's session and the user's input and returns a dict of what to show,
keyed by view name (see VIEW_KEYS); `layout.py` maps those names to components. A value that is
a dict means "update these properties" (e.g. a slider's value and maximum). Handlers raise
`UserError` (or the core's own ValueError/VideoError...) with a message for the user; the layout
turns it into a Gradio message. All model work is the core's (`LitSession`); nothing here trains.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from ..config import LitConfig
from ..datasets.base import VideoSample
from ..history import History
from ..models import MODELS, WeightsUnavailableError
from ..session import LitSession
from ..training import updates_in
from ..validation import number, whole_number
from ..video_io import Video
from . import costs, offline, picker, render
from .config import AppConfig
from .replay import replay_history
from .samples import load_sample
from .state import TOOLS, AppSession, ModelCache, ModelChoice
from .uploads import ingest_upload

VIEW_KEYS = ("image", "frame", "timeline", "frame_info", "suggestion_info", "status", "objects", "object_legend",
             "training_plot", "improvement_plot", "cumulative_plot", "simulation_plot", "simulation_info",
             "export_files")
VIEW_KEYS += ("model_cost",) + picker.PICKER_KEYS  # issue 14: the model panel's measured cost, the picker
Progress = Optional[Callable[[float, str], None]]

DEVICES = ("cpu", "cuda", "mps")  # what the device picker may offer (an absent GPU is refused when loading)
UNTRAINED_FT_LABEL = "LIT-FT (full decoder fine-tune; offline demo of the loop, not the paper's LoRA result)"


class UserError(ValueError):
    """Something the user can fix; the message says how."""


def mode_choices(untrained: bool) -> list[tuple[str, str]]:
    """(label, value) pairs for the mode picker; the untrained tour says what LIT-FT shows there."""
    return [("SAM2 alone (baseline, never learns)", "sam2"),
            ("LIT-LoRA (the paper's method)", "lit-lora"),
            (UNTRAINED_FT_LABEL if untrained else "LIT-FT (full decoder fine-tune; the paper's ablation)", "lit-ft")]


def default_mode(untrained: bool) -> str:
    # A rank-4 LoRA on a random decoder has nothing to adapt; the full fine-tune shows the loop.
    return "lit-ft" if untrained else "lit-lora"


# ---------------------------------------------------------------- loading
def open_sample(app: AppSession, name: str, choice: ModelChoice, cfg: AppConfig, models: ModelCache,
                assets_dir: Optional[Path] = None) -> dict:
    kwargs = {} if assets_dir is None else {"assets_dir": assets_dir}
    video, sample = load_sample(name, cfg, **kwargs)
    return start(app, video, sample, choice, cfg, models)


def open_upload(app: AppSession, upload_path: Optional[str], original_name: str, choice: ModelChoice,
                cfg: AppConfig, models: ModelCache, stride: int = 1, truncate: bool = False) -> dict:
    if not upload_path or not isinstance(upload_path, (str, Path)):
        raise UserError("Choose a file to upload first (mp4, webm, mov, or a zip of frames).")
    stride = _whole(stride, "'keep every n-th frame'")
    if stride < 1:
        raise UserError(f"'keep every n-th frame' must be 1 or more (got {stride}).")
    video = ingest_upload(upload_path, original_name, app.folder(), cfg, stride=stride, truncate=bool(truncate))
    return start(app, video, None, choice, cfg, models)


def start(app: AppSession, video: Video, sample: Optional[VideoSample], choice: ModelChoice, cfg: AppConfig,
          models: ModelCache) -> dict:
    """Open a LIT session on `video` with the chosen model (replacing the tab's previous one)."""
    if not isinstance(choice.name, str) or choice.name not in MODELS:
        raise UserError(f"Unknown model {choice.name!r}; pick one of {', '.join(MODELS)}.")
    if choice.device not in DEVICES:
        raise UserError(f"Unknown device {choice.device!r}; pick one of {', '.join(DEVICES)}.")
    image_size = costs.model_image_size(choice.name, choice.image_size, cfg.image_size)
    try:
        if not choice.untrained:
            offline.ensure_obtainable(choice.name)  # fails at once without network, not after the hub's retries
        predictor = models.get(choice.name, image_size, choice.device, pretrained=not choice.untrained)
    except WeightsUnavailableError as err:
        raise UserError(f"The '{choice.name}' weights could not be loaded: {str(err).splitlines()[0]} "
                        f"To try the app anyway, pick the '{offline.OFFLINE_MODEL}' model (ships with litdemo, "
                        f"works offline), or tick 'Untrained model (offline tour)' and load again.") from err
    lit_cfg = LitConfig(mode=choice.mode, steps_first=cfg.train_steps_first, steps_later=cfg.train_steps_later,
                        max_train_seconds=cfg.train_max_seconds or None, max_adapters=choice.adapters)
    app.lit = LitSession(predictor, video, lit_cfg)
    app.video, app.sample, app.choice = video, sample, choice
    app.frame, app.obj_id, app.objects, app.box_corner, app.simulation = 0, 1, [1], None, None
    return full_view(app)


def restart(app: AppSession, choice: ModelChoice, cfg: AppConfig, models: ModelCache) -> dict:
    """Same video, new model settings: the work so far is dropped (export it first to keep it)."""
    _need_video(app)
    return start(app, app.video, app.sample, choice, cfg, models)


# ---------------------------------------------------------------- clicks and objects
def click(app: AppSession, x: float, y: float) -> dict:
    """A click on the frame: a point (positive/negative tool) or a box corner (box tool).

    (x, y) is a pixel of the picture shown (the frame enlarged `display_scale` times). A click off
    the picture is refused, never moved to its edge: a click the user did not make must not train.
    """
    lit = _need_video(app)
    x, y = _number(x, "The click's x"), _number(y, "The click's y")
    scale = render.display_scale(lit.video.height, lit.video.width)  # the picture shown is enlarged
    if not (0 <= x < lit.video.width * scale and 0 <= y < lit.video.height * scale):
        raise UserError(f"The click ({x:g}, {y:g}) is outside the {lit.video.width * scale}x"
                        f"{lit.video.height * scale} picture; click on the frame itself.")
    # A pixel of the enlarged picture maps into the frame; its outer half pixel rounds to the edge.
    x, y = (x + 0.5) / scale - 0.5, (y + 0.5) / scale - 0.5
    x, y = min(max(x, 0.0), lit.video.width - 1.0), min(max(y, 0.0), lit.video.height - 1.0)
    if app.tool == "box":
        if app.box_corner is None:
            app.box_corner = (float(x), float(y))
            return frame_view(app)
        (x0, y0), app.box_corner = app.box_corner, None
        box = [min(x0, x), min(y0, y), max(x0, x), max(y0, y)]
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            raise UserError("The box is too small: click two opposite corners of the object.")
        if lit.is_tracked(app.frame, app.obj_id):
            raise UserError("A box starts an object; this frame is already tracked for it. Correct it with "
                            "positive/negative points (they teach the LoRA), or 'Clear frame' first.")
        lit.prompt(app.frame, app.obj_id, box=box)
    else:
        lit.click(app.frame, app.obj_id, float(x), float(y), positive=app.tool == "positive")
    return full_view(app)


def set_tool(app: AppSession, tool: str) -> dict:
    if tool not in TOOLS:
        raise UserError(f"Unknown tool {tool!r}; use one of {TOOLS}.")
    app.tool, app.box_corner = tool, None
    return frame_view(app) if app.ready else {}


def select_object(app: AppSession, obj_id) -> dict:
    try:
        obj_id = whole_number(obj_id, "object")
    except ValueError:
        raise UserError(f"Pick an object from the list ({app.objects}); got {obj_id!r}.") from None
    if obj_id not in app.objects:
        raise UserError(f"Object {obj_id} does not exist; objects: {app.objects}.")
    app.obj_id, app.box_corner = obj_id, None
    return {**frame_view(app), "object_legend": render.object_legend_html(app.objects, app.obj_id)} if app.ready else {}


def add_object(app: AppSession) -> dict:
    app.obj_id = max(app.objects) + 1
    app.objects.append(app.obj_id)
    app.box_corner = None
    return full_view(app) if app.ready else _objects_view(app)


def remove_object(app: AppSession) -> dict:
    lit = _need_video(app)
    if app.obj_id in lit.obj_ids:
        lit.remove_object(app.obj_id)
    app.objects.remove(app.obj_id)
    if not app.objects:
        app.objects = [1]
    app.obj_id = app.objects[-1]
    return full_view(app)


def undo(app: AppSession) -> dict:
    lit = _need_video(app)
    if app.box_corner is not None:
        app.box_corner = None
        return frame_view(app)
    lit.undo_click(app.frame, app.obj_id)
    return full_view(app)


def clear_frame(app: AppSession) -> dict:
    lit = _need_video(app)
    if lit.obj_ids:
        lit.clear_frame(app.frame)
        for oid in lit.obj_ids:  # a frame no longer tracked shows no mask
            if not lit.is_tracked(app.frame, oid):
                lit.masks.get(app.frame, {}).pop(oid, None)
    app.box_corner = None
    return full_view(app)


# ---------------------------------------------------------------- frames
def goto(app: AppSession, frame) -> dict:
    lit = _need_video(app)
    frame = _whole(frame, "The frame")
    app.frame = int(min(max(frame, 0), lit.num_frames - 1))  # a slider's end or a step past it: a real frame
    app.box_corner = None
    return frame_view(app)


def timeline_click(app: AppSession, x: float) -> dict:
    lit = _need_video(app)
    return goto(app, render.timeline_frame_at(_number(x, "The timeline click's x"), lit.num_frames))


def step(app: AppSession, delta: int) -> dict:
    """Next/previous frame (wraps around, so 'play' loops)."""
    lit = _need_video(app)
    return goto(app, (app.frame + delta) % lit.num_frames)


# ---------------------------------------------------------------- tracking and learning
# While tracking, show a frame at most this often. Every view sent makes Gradio encode and ship
# a picture (~0.1-0.2 s on a CPU), more than the micro model needs to track a frame (~0.03 s):
# streaming every frame made one propagate 3-4x slower and a workshop's queue that much longer.
STREAM_EVERY_S = 0.5


def propagate(app: AppSession, from_current: bool = False, reverse: bool = False,
              progress: Progress = None, stream_every_s: float = STREAM_EVERY_S) -> Iterator[dict]:
    """Track every object through the video, showing a frame every `stream_every_s` seconds
    (0: every frame) and the whole result at the end.

    Pending correction clicks are committed first (so LIT learns from them). Stopping the
    iteration (Gradio's cancel) keeps the frames done so far.
    """
    lit = _need_video(app)
    if not lit.obj_ids:
        raise UserError("Click on the object first (or draw a box), then propagate.")
    start_frame = app.frame if from_current else None
    total = (app.frame + 1 if reverse else lit.num_frames - app.frame) if from_current else lit.num_frames
    cost_key, tic = _cost_key(app), time.perf_counter()
    shown = -math.inf
    for i, (t, _) in enumerate(lit.propagate(start_frame=start_frame, reverse=reverse)):
        costs.COSTS.add_frame(cost_key, time.perf_counter() - tic)  # the first frames of each size are kept
        app.frame = t
        if progress is not None:
            progress(min((i + 1) / max(total, 1), 1.0), f"tracking frame {t}")
        if time.perf_counter() - shown >= stream_every_s:
            yield frame_view(app, with_suggestion=False)
            shown = time.perf_counter()
        tic = time.perf_counter()
    yield full_view(app)


def correct(app: AppSession, progress: Progress = None) -> dict:
    """Commit the correction clicks on this frame: SAM2 takes the mask, the adapter trains on it.

    The training is shown live through `progress` (step, loss and IoU of each optimisation step).
    """
    lit = _need_video(app)
    key = (app.frame, app.obj_id)
    if not lit.obj_ids:
        raise UserError("There is nothing to correct yet: click on the object to start it, then propagate.")
    if key not in lit.pending:
        if not lit.is_tracked(app.frame, app.obj_id):
            raise UserError(f"Frame {app.frame} is not tracked for object {app.obj_id} yet: propagate first, or "
                            f"click here to start the object on this frame.")
        raise UserError("Click on this frame first (positive where the mask misses the object, negative where it "
                        "spills over), then press Correct.")
    cfg = lit.config
    steps = cfg.steps_later if lit.history.corrections(app.obj_id) else cfg.steps_first

    def on_step(step: int, loss: float, iou: float) -> None:
        if progress is not None:
            progress(min(1.0, (step + 1) / steps), f"LIT training step {step + 1}/{steps}: loss {loss:.3f}, IoU {iou:.2f}")

    # Dropout draws from a generator seeded per correction, so the same clicks train the same adapter
    # whatever other tabs did before (their training would otherwise shift torch's global stream).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed + len(lit.history.corrections()))
        event = lit.correct(app.frame, app.obj_id, on_step=on_step if cfg.learns else None)
    if cfg.learns:
        costs.COSTS.add_correction(_cost_key(app), event.train_seconds)
    return full_view(app)


def correct_and_continue(app: AppSession, progress: Progress = None) -> Iterator[dict]:
    """Correct this frame, then keep tracking forward from it with what SAM2 now remembers."""
    view = correct(app, progress=progress)
    yield view
    if app.frame < app.lit.num_frames - 1:
        corrected = app.frame
        yield from propagate(app, from_current=True, progress=progress)
        app.frame = corrected  # back to the frame the user was working on
        yield full_view(app)


def accept(app: AppSession, adapter: Optional[int] = None) -> dict:
    """Take the suggestion shown (or, with several adapters, adapter `adapter`'s) as this frame's mask."""
    lit = _need_video(app)
    if not lit.config.learns:
        raise UserError("Mode 'SAM2 alone' makes no suggestions; choose LIT-LoRA or LIT-FT to get them.")
    if not lit.obj_ids or app.obj_id not in lit.obj_ids:
        raise UserError(f"Object {app.obj_id} has not been started: click on it first.")
    lit.accept(app.frame, app.obj_id, adapter=None if adapter in (None, "") else int(adapter))
    return full_view(app)


# ---------------------------------------------------------------- keep the result
def export(app: AppSession) -> dict:
    """Write masks (PNG zip), overlay mp4, history JSON and adapters (zip) into the tab's folder."""
    import shutil

    lit = _need_video(app)
    if not lit.masks:
        raise UserError("Nothing to export yet: click on an object and propagate first.")
    app.exports += 1
    out = app.folder() / f"export_{app.exports}"
    paths = lit.export(out)
    files = [shutil.make_archive(str(out / "masks"), "zip", paths["masks"]), str(paths["overlay"]),
             str(paths["history"])]
    if "adapters" in paths:
        files.append(shutil.make_archive(str(out / "adapters"), "zip", paths["adapters"]))
    return {"export_files": files}


def import_history(app: AppSession, upload_path: Optional[str], progress: Progress = None) -> dict:
    """Replay a saved history.json on the loaded video (same video, any model) to continue from it.

    The file is checked as a whole and replayed on a new session; the tab's session is replaced
    only when that succeeded, so a bad file leaves the work in progress as it was.
    """
    lit = _need_video(app)
    if not upload_path or not isinstance(upload_path, (str, Path)):
        raise UserError("Choose a history.json (from an earlier export) first.")
    history = History.load(upload_path)  # read in place: nothing is written for a file that may be refused

    def tick(i: int, n: int) -> None:
        if progress is not None:
            progress(i / max(n, 1), f"replaying event {i + 1} of {n}")

    app.lit = replay_history(lit, history, progress=tick)
    app.objects = sorted(set(app.lit.obj_ids) | {1}) if app.lit.obj_ids else [1]
    app.obj_id = app.objects[0]
    app.frame, app.box_corner = (history.events[-1].frame_idx if history.events else 0), None
    return full_view(app)


def simulate(app: AppSession, cfg: AppConfig, progress: Progress = None) -> dict:
    """Run the benchmark's simulated user (clicks from ground truth) with SAM2 alone and with LIT."""
    _need_video(app)
    if app.sample is None:
        raise UserError("Simulation needs ground truth: load the synthetic sample (it has it).")
    from ..methods import method_config
    from ..simulated_user import ProtocolConfig, run_simulated_user

    # SAM2 alone vs the paper's method, LIT-LoRA; the untrained tour keeps LIT-FT, the only one that learns there.
    learner = default_mode(True) if app.choice.untrained else "lit-lora"
    protocol = ProtocolConfig(tau=cfg.simulate_iou_threshold)
    obj_id = sorted(app.sample.gt)[0]
    runs = {}
    for i, method in enumerate(("sam2", learner)):
        def tick(done: int, total: int, i=i, method=method) -> None:
            if progress is not None:
                progress((i + done / max(total, 1)) / 2, f"simulated user with {method}: frame {done}/{total}")

        lit_cfg = method_config(method, steps_first=cfg.train_steps_first, steps_later=cfg.train_steps_later)
        run = run_simulated_user(app.lit.predictor, app.sample, obj_id, method, protocol=protocol,
                                 lit_config=lit_cfg, progress=tick)
        # train_curves: what each LIT update did (batch IoU and loss per step), to inspect why LIT helped or not
        runs[method] = {"states": list(run.states), "corrections": int(run.corrections),
                        "accepted": int(run.accepted), "train_curves": list(run.train_curves)}
    app.simulation = runs
    return full_view(app)


# ---------------------------------------------------------------- views
def frame_view(app: AppSession, with_suggestion: bool = True) -> dict:
    """What changes when the frame or its clicks change: the picture, slider, timeline, suggestion."""
    lit = app.lit
    if lit is None:
        return {}
    t, oid = app.frame, app.obj_id
    suggestion, info = _suggestion(app) if with_suggestion else (None, "")
    s = render.display_scale(lit.video.height, lit.video.width)
    layers = dict(lit.masks.get(t, {}), suggestion=suggestion) if suggestion is not None else lit.masks.get(t, {})
    frame, layers = render.enlarge(lit.video.frames[t], layers, s)
    layers = dict(layers)
    suggestion = layers.pop("suggestion", None)

    def up(v):  # a pixel coordinate in the enlarged picture
        return (v + 0.5) * s - 0.5

    image = render.annotated_frame(
        frame, layers, clicks=[(up(x), up(y), l) for x, y, l in _clicks_on(lit, t)],
        boxes=[[up(v) for v in e.box] for e in lit.history.events if e.frame_idx == t and e.kind == "prompt" and e.box],
        corner=None if app.box_corner is None else (up(app.box_corner[0]), up(app.box_corner[1])),
        suggestion=suggestion)
    tracked = [f for f in range(lit.num_frames) if any(lit.is_tracked(f, o) for o in lit.obj_ids)]
    states = render.frame_states(lit.num_frames, lit.history.events, tracked)
    pending = lit.pending.get((t, oid))
    note = (f" · {len(pending.clicks)} correction click(s) pending: press **Correct** to train on them"
            if pending else "")
    frame_info = f"Frame **{t}** of {lit.num_frames - 1} · {states[t]} · object {oid}{note}"
    if app.box_corner is not None:
        frame_info += " · box: click the opposite corner"
    view = {"image": image, "frame": {"value": t, "maximum": lit.num_frames - 1},
            "timeline": render.timeline_strip(states, t), "frame_info": frame_info, "suggestion_info": info}
    if with_suggestion:  # while propagating the thumbnails would only slow each frame down
        view.update(picker.picker_view(app))
    return view


def full_view(app: AppSession) -> dict:
    """Everything: the frame view plus status, objects and the learning plots."""
    lit = app.lit
    view = {**frame_view(app), **_objects_view(app), "status": status_markdown(app)}
    if lit is None:
        return view
    view["model_cost"] = costs.COSTS.describe(*_cost_key(app))
    corrections = lit.history.corrections()
    untrained, tag = lit.untrained, render.model_tag(lit.predictor)
    plots = app.figures  # a plot is drawn again only when what it shows changed
    view["training_plot"] = plots.figure("training", render.training_figure,
                                         [e.train_curve for e in corrections if e.train_curve], tag)
    view["improvement_plot"] = plots.figure(
        "improvement", render.improvement_figure,
        [e.suggestion_iou_before for e in corrections if e.suggestion_iou_before is not None], tag)
    per_frame = np.zeros(lit.num_frames, int)
    for e in corrections:
        per_frame[e.frame_idx] += 1
    curves = {f"you ({lit.config.mode})": per_frame.tolist()} if corrections else {}
    sim_info = "Simulation: press **Simulate** (needs a video with ground truth, e.g. the synthetic sample)."
    view["simulation_plot"] = None
    if app.simulation:
        for method, run in app.simulation.items():
            curves[f"simulated {method}"] = [int(s == "corrected") for s in run["states"]]
        from ..plots import plot_timeline

        view["simulation_plot"] = plots.figure(
            "simulation", plot_timeline, {m: r["states"] for m, r in app.simulation.items()},
            title=render._tagged("simulated user: what each frame needed", tag))
        (base, b), (learner, l) = [(m, r["corrections"]) for m, r in app.simulation.items()]
        accepted = app.simulation[learner]["accepted"]
        sim_info = (f"Simulated user on object {sorted(app.sample.gt)[0]}: **{base}** needed {b} corrections, "
                    f"**{learner}** needed {l} (+{accepted} accepted suggestions): **{b - l} corrections saved**"
                    + (" — untrained model, so this only shows the loop, not the paper's result" if untrained
                       else f" — {lit.predictor.model_label}" if tag else "")
                    + ".")
    view["simulation_info"] = sim_info
    view["cumulative_plot"] = plots.figure("cumulative", render.cumulative_figure, curves, tag)
    return view


def status_markdown(app: AppSession) -> str:
    lit = app.lit
    if lit is None:
        return "No video yet: pick a sample or upload a video, then press **Load**."
    c = app.choice
    model = f"{'SAM2.1 ' + c.name if lit.untrained else lit.predictor.model_label} @ {lit.predictor.image_size} px on {c.device}"
    if lit.untrained:
        model += " — **UNTRAINED** (random weights: an offline tour of the loop, masks are not meaningful)"
    v = lit.video
    notes = f" ({'; '.join(v.notes)})" if v.notes else ""
    label = {value: text for text, value in mode_choices(lit.untrained)}[lit.config.mode]
    h = lit.history
    return (f"**Model:** {model} · **Mode:** {label}  \n"
            f"**Video:** {v.name}, {v.num_frames} frames, {v.width}x{v.height}{notes}"
            f"{' · has ground truth' if app.sample is not None else ''}  \n"
            f"**So far:** {len(lit.obj_ids)} object(s), {len(h.corrections())} correction(s), "
            f"{len(h.accepted())} accepted suggestion(s){_last_update(h)}")


# How the training loop's stop reasons read to a person.
_STOP_WORDS = {"fit": "fits the correction", "plateau": "loss stopped improving", "time": "time cap reached",
               "steps": "all steps run"}


def _last_update(history) -> str:
    """' · last update: 37 steps in 1.2 s (fits the correction), batch IoU 0.98', or ''."""
    curves = [e.train_curve for e in history.corrections() if e.train_curve]
    if not curves:
        return ""
    c = curves[-1]
    why = _STOP_WORDS.get(c.get("stop_reason", ""), "")
    return (f" · last update: {updates_in(c)} steps in {c['seconds']:.1f} s"
            f"{f' ({why})' if why else ''}, batch IoU {c['iou'][c['best_step']]:.2f}")


def _cost_key(app: AppSession) -> tuple:
    """(model, image size, device) under which this tab's timings are recorded."""
    return app.choice.name, int(app.lit.predictor.image_size), str(app.choice.device)


def _objects_view(app: AppSession) -> dict:
    return {"objects": {"choices": [(f"object {o}", o) for o in app.objects], "value": app.obj_id},
            "object_legend": render.object_legend_html(app.objects, app.obj_id)}


def _suggestion(app: AppSession) -> tuple[Optional[np.ndarray], str]:
    lit, t, oid = app.lit, app.frame, app.obj_id
    if not lit.config.learns:
        return None, "SAM2 alone makes no suggestions (baseline mode)."
    learner = lit.learners.get(oid)
    if learner is None or not learner.trained:
        return None, "The LoRA's suggestion appears here after your first correction of this object."
    if not lit.is_tracked(t, oid):
        return None, "Propagate to this frame to see the LoRA's suggestion."
    if (t, oid) in lit.pending:
        return None, "Correction in progress: press **Correct** to train on it."
    suggestion = lit.suggest(t, oid)
    shown = lit.mask(t, oid)
    agree = f" It agrees with the tracked mask at IoU {_iou(suggestion, shown):.2f}." if shown is not None else ""
    return suggestion, (f"White outline: the LoRA's suggestion for object {oid}.{agree} "
                        f"Press **Accept suggestion** to take it, or click to correct.")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    from ..metrics import iou

    return iou(a, b)


def _clicks_on(lit: LitSession, t: int) -> list:
    clicks = [c for e in lit.history.events if e.frame_idx == t and e.kind in ("prompt", "correction")
              for c in e.clicks]
    for (f, _), pending in lit.pending.items():
        if f == t:
            clicks += pending.clicks
    return clicks


def _need_video(app: AppSession) -> LitSession:
    if app.lit is None:
        raise UserError("Load a video first: pick a sample (or upload one) and press Load. If this tab had a video, "
                        "its session ended after being idle too long (or the server restarted): this is a fresh "
                        "session, and work that was not exported is gone.")
    return app.lit


def _number(value, what: str) -> float:
    try:
        return number(value, what)
    except ValueError as err:
        raise UserError(str(err)) from None


def _whole(value, what: str) -> int:
    try:
        return whole_number(value, what)
    except ValueError as err:
        raise UserError(f"{err} Use a whole number.") from None
