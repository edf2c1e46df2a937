"""Issue 14, without a browser: offline first start, the ZeroGPU decorator, the multi-LoRA picker,
measured costs and image sizes, and warnings that leave the page as it was. Runs on micro (128 px)."""
import socket
import sys
import threading
import types

import numpy as np
import pytest

from litdemo.app import AppConfig, build_demo, costs, offline
from litdemo.app import handlers as h
from litdemo.app import layout, picker, priority
from litdemo.app.gpu import gpu, on_zero_gpu
from litdemo.app.samples import TOUR, load_sample, sample_names
from litdemo.app.state import ModelChoice
from litdemo.models import MICRO_LABEL, WeightsUnavailableError

CFG = AppConfig(train_steps_first=6, train_steps_later=3)
MICRO = ModelChoice(name="micro", device="cpu", mode="lit-lora")


@pytest.fixture
def no_local_weights(monkeypatch, tmp_path):
    """A machine with no SAM2.1 checkpoint anywhere (and an empty hub cache)."""
    for var in ("LITDEMO_SAM2_CHECKPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LITDEMO_CHECKPOINT_DIR", str(tmp_path / "empty"))
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)

    def no_download(*args, **kwargs):
        raise AssertionError("the hub client was called although the hub is known to be unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    monkeypatch.setattr(offline, "go_offline", lambda: None)  # keep this process's hub client as it was


class CountingProbe(offline.HubProbe):
    def __init__(self, answer):
        self.calls = 0

        def probe():
            self.calls += 1
            return answer

        super().__init__(probe)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


# ------------------------------------------------------------------ offline first start
def test_offline_start_lands_on_micro_with_one_probe(no_local_weights):
    probe = CountingProbe("huggingface.co:443 cannot be reached (timeout)")
    start = offline.choose_start_model("tiny", 1024, pretrained=True, probe=probe)
    assert (start.name, start.image_size) == ("micro", 128) and start.fell_back
    assert "micro" in start.banner and "not SAM2.1" in start.banner and "cannot be reached" in start.banner
    with pytest.raises(WeightsUnavailableError, match="micro"):
        offline.ensure_obtainable("tiny", probe=probe)
    assert probe.calls == 1  # the answer is kept: a second check does not probe again

    reachable = offline.choose_start_model("tiny", 1024, pretrained=True, probe=CountingProbe(None))
    assert (reachable.name, reachable.image_size, reachable.banner) == ("tiny", 1024, "")
    untrained = offline.choose_start_model("tiny", 256, pretrained=False, probe=CountingProbe("down"))
    assert (untrained.name, untrained.image_size, untrained.banner) == ("tiny", 256, "")


def test_local_weights_win_over_the_probe(no_local_weights, monkeypatch, tmp_path):
    folder = tmp_path / "ckpts"
    folder.mkdir()
    (folder / "sam2.1_hiera_tiny.pt").write_bytes(b"weights")
    monkeypatch.setenv("LITDEMO_CHECKPOINT_DIR", str(folder))
    probe = CountingProbe("down")
    assert offline.local_weights("tiny") == folder / "sam2.1_hiera_tiny.pt"
    assert offline.choose_start_model("tiny", 1024, True, probe=probe).name == "tiny" and probe.calls == 0
    assert offline.local_weights("micro").name == "sam2.1_hiera_micro.pt"  # shipped inside litdemo


def test_hub_probe_fails_fast_without_network(monkeypatch):
    assert offline.probe_hub({"HF_HUB_OFFLINE": "1"}) == "HF_HUB_OFFLINE is set"
    why = offline.probe_hub({"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}, timeout=1.0)
    assert why is not None and "cannot be reached" in why and "127.0.0.1" in why


def test_page_built_offline_opens_on_micro_with_its_banner(no_local_weights, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    demo = build_demo(AppConfig())
    blocks = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert blocks["lit-model"].value == "micro" and blocks["lit-image-size"].value == 128
    assert blocks["lit-banner"].visible and "Offline start" in blocks["lit-banner"].value
    assert blocks["lit-sample"].value == TOUR[0].name


def test_a_real_model_offline_is_refused_at_once_with_the_way_out(app, models, no_local_weights, monkeypatch):
    monkeypatch.setattr(offline, "HUB", CountingProbe("huggingface.co:443 cannot be reached (gaierror)"))
    with pytest.raises(h.UserError, match="pick the 'micro' model"):
        h.open_sample(app, TOUR[0].name, ModelChoice(name="tiny"), CFG, models)
    assert app.lit is None
    view = h.open_sample(app, TOUR[0].name, MICRO, CFG, models)  # the way out works, offline
    assert MICRO_LABEL in view["status"] and app.lit.predictor.image_size == 128


def test_a_user_error_is_a_warning_and_the_page_keeps_what_it_showed(app, monkeypatch):
    shown = []
    monkeypatch.setattr(layout.gr, "Warning", lambda message, title="": shown.append((title, message)))
    comps = {"state": object()}
    assert layout._run(app, h.undo, comps=comps) == {}  # no video yet: a user error
    assert shown and "Load a video first" in shown[0][1] and shown[0][0] == "Cannot do that"

    def broken(app):
        raise ZeroDivisionError("boom")

    assert layout._run(app, broken, comps=comps) == {}
    assert shown[-1][0] == "Something went wrong" and "boom" in shown[-1][1]

    def stream_fails(app):
        yield {}
        raise h.UserError("stopped halfway")

    updates = list(layout._stream(app, stream_fails, comps=comps))
    assert len(updates) == 2 and all(set(u) == {comps["state"]} for u in updates)  # nothing but the state
    assert "stopped halfway" in shown[-1][1]


# ------------------------------------------------------------------ ZeroGPU
def test_gpu_decorator_is_a_no_op_offline(monkeypatch):
    def handler(x):
        return x + 1

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert not on_zero_gpu() and gpu(handler) is handler and gpu(duration=5)(handler) is handler
    monkeypatch.setitem(sys.modules, "spaces", None)  # ZeroGPU hardware but no `spaces` package
    assert gpu(handler, environ={"SPACES_ZERO_GPU": "true"}) is handler

    wrapped = []
    fake = types.SimpleNamespace(GPU=lambda fn, duration: wrapped.append(duration) or (lambda *a: ("gpu", fn(*a))))
    monkeypatch.setitem(sys.modules, "spaces", fake)
    on_space = gpu(handler, duration=7, environ={"SPACES_ZERO_GPU": "true"})
    assert on_space is not handler and on_space(1) == ("gpu", 2) and wrapped == [7]
    assert gpu(handler, environ={"SPACES_ZERO_GPU": "0"}) is handler


# ------------------------------------------------------------------ image sizes and measured cost
def test_image_sizes_offered_per_model_and_device():
    assert costs.size_choices("micro", "cpu", 1024) == [(costs.size_choices("micro", "cpu", 1024)[0][0], 128)]
    cpu = costs.size_choices("tiny", "cpu", 1024)
    assert [v for _, v in cpu] == [1024, 512, 256] and "suggested on a CPU" in cpu[1][0]
    assert "suggested" not in costs.size_choices("tiny", "cuda", 1024)[1][0]
    assert costs.default_size("tiny", "cpu", 1024) == 512 and costs.default_size("tiny", "cuda", 1024) == 1024
    assert costs.default_size("tiny", "cpu", 256) == 256 and costs.default_size("micro", "cuda", 1024) == 128
    assert costs.model_image_size("micro", 1024, 1024) == 128 and costs.model_image_size("tiny", 512, 1024) == 512


def test_cost_book_reports_the_median_after_warm_up():
    book, key = costs.CostBook(), ("tiny", 512, "cpu")
    assert "not measured yet" in book.describe(*key)
    for seconds in [5.0, 0.4, 0.2, 0.3] + [9.0] * 20:  # warm-up first; only the first frames are kept
        book.add_frame(key, seconds)
    assert book.frame_seconds(key) == pytest.approx(np.median([0.4, 0.2, 0.3] + [9.0] * (costs.FIRST_FRAMES - 4)))
    book.add_correction(key, 1.5)
    text = book.describe(*key)
    assert f"{book.frame_seconds(key):.2f} s per tracked frame" in text and "1.5 s of training" in text


def test_propagation_measures_the_frame_cost_of_its_size(app, models):
    h.open_sample(app, TOUR[0].name, MICRO, CFG, models)
    key = ("micro", 128, "cpu")
    costs.COSTS._frames.pop(key, None)
    _prompt_with_gt(app, 0)
    views = list(h.propagate(app))
    measured = costs.COSTS.frame_seconds(key)
    assert measured is not None and measured > 0
    assert f"{measured:.2f} s per tracked frame" in views[-1]["model_cost"] and "at 128 px on cpu" in views[-1]["model_cost"]



def test_propagation_streams_a_frame_per_interval_and_the_whole_video_at_the_end(app, models):
    """A workshop's queue waits on every picture Gradio encodes: propagate shows a frame per
    `stream_every_s`, never fewer than the first and the complete result."""
    h.open_sample(app, TOUR[0].name, MICRO, CFG, models)
    _prompt_with_gt(app, 0)
    views = list(h.propagate(app, stream_every_s=1e9))
    assert len(views) == 2 and views[0]["frame"]["value"] == 0
    last = app.lit.num_frames - 1
    assert views[-1]["frame"]["value"] == last and "status" in views[-1]
    assert all(app.lit.is_tracked(t, 1) for t in range(last + 1))
    every = list(h.propagate(app, stream_every_s=0))
    assert len(every) == app.lit.num_frames + 1

# ------------------------------------------------------------------ three suggestions to pick from
def test_picker_offers_one_suggestion_per_adapter_and_accepts_the_chosen_one(app, models):
    from dataclasses import replace

    cfg = replace(CFG, train_steps_first=60)  # each new adapter's first update: enough steps to tell them apart
    h.open_sample(app, TOUR[0].name, ModelChoice(name="micro", mode="lit-lora", adapters=3), cfg, models)
    assert app.lit.config.max_adapters == 3
    gt = app.sample.gt[1]
    _prompt_with_gt(app, 0)
    list(h.propagate(app))
    h.goto(app, 4)
    assert picker.picker_view(app)["picker_gallery"] == []  # nothing learned yet
    # three corrections no existing adapter predicts (the object, then two far-apart squares): three experts
    lit = app.lit
    lit.correct(4, 1, mask=gt[4])
    for frame, corner in ((8, (0, 0)), (12, (96, 96))):
        square = np.zeros_like(gt[frame])
        square[corner[0]:corner[0] + 24, corner[1]:corner[1] + 24] = True
        lit.correct(frame, 1, mask=square)
    assert len(lit.learners[1].adapters) == 3

    view = h.goto(app, 20)
    offered = lit.suggestions(20, 1)
    assert [s.adapter for s in offered] == [0, 1, 2]
    assert len(view["picker_gallery"]) == 3
    assert [cap for _, cap in view["picker_gallery"]] == [picker.adapter_label(s.adapter, s.predicted_iou)
                                                          for s in offered]
    assert view["picker_choice"]["value"] == max(offered, key=lambda s: s.predicted_iou).adapter
    thumb = view["picker_gallery"][1][0]
    assert thumb.ndim == 3 and max(thumb.shape[:2]) == picker.THUMB_SIDE

    best = view["picker_choice"]["value"]
    others = [s for s in offered if s.adapter != best]  # not the preselected one: the user's own choice
    differing = [s for s in others if not np.array_equal(s.mask, offered[best].mask)]
    chosen = (differing or others)[0].adapter
    view = h.accept(app, chosen)
    event = lit.history.events[-1]
    assert event.kind == "accepted" and event.adapter_idx == chosen
    assert f"adapter {chosen + 1}'s suggestion" in view["picker_info"]
    # what SAM2 was given (and the history keeps) is the chosen adapter's mask, not the others'
    assert np.array_equal(event.mask_array(), offered[chosen].mask)
    with pytest.raises(ValueError, match="Adapter 5 has no suggestion"):
        lit.accept(21, 1, adapter=5)


def test_tour_samples_are_procedural_videos_with_ground_truth():
    assert sample_names()[:len(TOUR)] == [s.name for s in TOUR]
    video, sample = load_sample(TOUR[0].name, CFG)
    assert sample.gt and video.num_frames == 32 and (video.height, video.width) == (128, 128)


def _prompt_with_gt(app, frame):
    from litdemo.app import render

    ys, xs = np.nonzero(app.sample.gt[1][frame])
    s = render.display_scale(*app.sample.gt[1][frame].shape)
    h.goto(app, frame)
    h.click(app, (xs.mean() + 0.5) * s - 0.5, (ys.mean() + 0.5) * s - 0.5)


# ------------------------------------------------------------------ plots drawn and encoded once per change
def test_a_plot_is_drawn_and_encoded_again_only_when_its_data_changed(app, models, monkeypatch):
    import pickle

    import gradio as gr
    from gradio import processing_utils

    encodings = []
    encode = processing_utils.encode_plot_to_base64
    monkeypatch.setattr(processing_utils, "encode_plot_to_base64",
                        lambda fig, fmt: encodings.append(fig) or encode(fig, fmt))
    plot = gr.Plot()

    h.open_sample(app, TOUR[0].name, MICRO, CFG, models)
    _prompt_with_gt(app, 0)
    list(h.propagate(app))
    _prompt_with_gt(app, 8)
    first = list(h.correct_and_continue(app))[-1]["training_plot"]
    assert first is not None  # the first correction's training curve
    again = h.full_view(app)["training_plot"]  # what every later full view (accept, undo, ...) shows
    assert again is first  # nothing new was learned: the same figure, not a new drawing
    sent = layout.encoded_plot(plot, first)
    assert plot.postprocess(sent) is sent  # Gradio sends an encoded plot as it is
    assert layout.encoded_plot(plot, again) is sent and encodings == [first]  # ... and its encoding again
    comps = {"state": gr.State(), "training_plot": plot}
    assert layout._updates(app, {"training_plot": again}, comps)[plot] is sent  # what every event sends

    _prompt_with_gt(app, 20)
    second = list(h.correct_and_continue(app))[-1]["training_plot"]
    assert second is not first  # a second correction: drawn anew, with its curve
    assert layout.encoded_plot(plot, second) is not sent and encodings == [first, second]

    back = pickle.loads(pickle.dumps(app.figures))  # a cache, not state: ZeroGPU's worker gets an empty one
    assert back._drawn == {} and app.figures._drawn


# ------------------------------------------------------------------ long jobs at a lower CPU priority
def _wired(demo) -> dict:
    fns = demo.fns.values() if isinstance(demo.fns, dict) else demo.fns
    return {f.api_name: f.fn for f in fns if f.api_name}


def _record_thread_nice(monkeypatch) -> dict:
    """Replace the handlers of propagate, correct and simulate with ones noting their thread's nice value."""
    seen = {}

    def streaming(name):
        def handler(app, **kwargs):
            seen[name] = priority.thread_nice()
            yield {}
            yield {}
        return handler

    def simulate(app, cfg, **kwargs):
        seen["simulate"] = priority.thread_nice()
        return {}

    monkeypatch.setattr(h, "propagate", streaming("propagate"))
    monkeypatch.setattr(h, "correct_and_continue", streaming("correct"))
    monkeypatch.setattr(h, "simulate", simulate)
    return seen


def _press(demo, app) -> None:
    wired, no_bar = _wired(demo), (lambda *args, **kwargs: None)
    assert len(list(wired["propagate"](app, progress=no_bar))) == 2
    assert len(list(wired["correct"](app, progress=no_bar))) == 2
    wired["simulate"](app, progress=no_bar)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="one thread's priority is Linux's")
def test_training_runs_on_lower_priority_threads_only_when_asked(app, monkeypatch):
    seen = _record_thread_nice(monkeypatch)
    base = priority.thread_nice()
    _press(build_demo(AppConfig(pretrained=False, training_concurrency_limit=1)), app)
    assert seen == {"propagate": base, "correct": base, "simulate": base}   # the default: normal priority
    _press(build_demo(AppConfig(pretrained=False, training_concurrency_limit=1, training_nice=7)), app)
    assert seen == {"propagate": base, "correct": base + 7, "simulate": base + 7}
    assert priority.thread_nice() == base                                  # the caller's thread is unchanged
    monkeypatch.setenv("SPACES_ZERO_GPU", "1")  # there the work runs in the GPU worker's process: no threads
    assert layout.training_workers(AppConfig(pretrained=False, training_nice=7)) is None
    with pytest.raises(ValueError, match="training_nice must be in 0..19"):
        AppConfig(training_nice=20)


def test_lower_priority_workers_pass_results_failures_and_context():
    import contextvars

    workers = priority.LowPriorityWorkers(1, 3)
    request = contextvars.ContextVar("request")
    request.set("tab 1")  # Gradio keeps the event's request and progress bar in context variables
    assert workers.run(request.get) == "tab 1"
    with pytest.raises(KeyError, match="nothing"):
        workers.run({}.__getitem__, "nothing")

    def counting():
        for i in range(3):
            yield i, request.get(), threading.get_native_id()

    steps = list(workers.steps(counting()))
    assert [i for i, _, _ in steps] == [0, 1, 2] and {r for _, r, _ in steps} == {"tab 1"}
    assert len({t for _, _, t in steps}) == 1 and steps[0][2] != threading.get_native_id()
    # daemon threads, as Gradio's: a server told to stop does not wait for a running simulation
    ours = [t for t in threading.enumerate() if t.name.startswith("litdemo-training")]
    assert ours and all(t.daemon for t in ours)
    workers.shutdown()


def test_the_priority_benchmark_measures_propagations_beside_a_niced_training(micro, one_torch_thread):
    """benchmarks/bench_training_priority.py cannot rot: one of its conditions, as small as it goes."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_training_priority as bench
    from litdemo.datasets import make_procedural_video
    from litdemo.tour import OFFLINE_INDEX, OFFLINE_SPLIT

    video = make_procedural_video(OFFLINE_SPLIT, OFFLINE_INDEX, num_frames=12)
    workers = priority.LowPriorityWorkers(1, 5)
    done, steps = bench.condition(micro, video, propagators=1, count=2, trainer=workers)
    assert len(done) == 2 and all(s > 0 for s in done)
    assert steps and all(0 < s < 5 for s in steps)   # seconds per training step of each correction
    workers.shutdown()
