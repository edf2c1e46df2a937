"""The app's handlers without a browser: the whole workflow on the untrained tiny model at 256 px."""
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import centre
from litdemo.app import AppConfig, build_demo
from litdemo.app import handlers as h
from litdemo.app import render
from litdemo.app.samples import SYNTHETIC, sample_names
from litdemo.app.state import AppSession, ModelChoice, close_session
from litdemo.history import History
from litdemo.metrics import iou
from litdemo.video_io import VideoError

CFG = AppConfig(image_size=256, pretrained=False, sample_frames=3, sample_height=64, sample_width=80,
                train_steps_first=6, train_steps_later=3, max_upload_mb=1.0, max_frames=20)
TOUR = ModelChoice(name="tiny", device="cpu", mode="lit-ft", untrained=True)


def cell_colour(strip, t, num_frames):
    return tuple(int(v) for v in strip[2, t * render.timeline_cell(num_frames)])


def test_full_workflow_click_propagate_correct_accept_export_import(app, models, tmp_path):
    view = h.open_sample(app, SYNTHETIC, TOUR, CFG, models)
    assert view["frame"] == {"value": 0, "maximum": CFG.sample_frames - 1}
    assert "UNTRAINED" in view["status"] and h.UNTRAINED_FT_LABEL in view["status"]
    scale = render.display_scale(64, 80)
    assert scale == 8 and view["image"].shape == (64 * scale, 80 * scale, 3)
    gt = app.sample.gt[1]

    # a positive click on the object: a mask at once, blended into the picture in object 1's colour
    view = h.click(app, *centre(gt[0]))
    mask0 = app.lit.mask(0, 1)
    assert mask0 is not None and mask0.any()
    changed = np.any(view["image"] != render.enlarge(app.video.frames[0], {}, scale)[0], axis=-1)
    assert changed[render.enlarge(app.video.frames[0], {1: mask0}, scale)[1][1]].mean() > 0.9
    assert cell_colour(view["timeline"], 0, 4) == render.TIMELINE_COLOURS["prompted"]

    # propagate: each frame is shown as it is tracked (stream_every_s=0), then the timeline marks them all
    views = list(h.propagate(app, stream_every_s=0))
    shown = [int(v["frame"]["value"]) for v in views[:-1]]
    assert shown == [0, 1, 2]
    assert all(app.lit.is_tracked(t, 1) for t in range(3))
    assert cell_colour(views[-1]["timeline"], 1, 3) == render.TIMELINE_COLOURS["tracked"]
    assert views[-1]["training_plot"] is None  # nothing learned yet

    # correct frame 1 with a click: the adapter trains, the curve appears, tracking continues
    h.goto(app, 1)
    view = h.click(app, *centre(gt[1]))
    assert "pending" in view["frame_info"]
    views = list(h.correct_and_continue(app))
    first = views[0]
    assert len(app.lit.history.corrections()) == 1
    curve = app.lit.history.corrections()[0].train_curve
    steps = len(curve["loss"])
    assert 1 <= steps <= CFG.train_steps_first + 1  # + the score after the last update
    assert f"last update: {steps - 1} steps in" in first["status"]
    assert f"batch IoU {curve['iou'][curve['best_step']]:.2f}" in first["status"]
    loss_line = first["training_plot"].axes[0].lines[0]
    assert len(loss_line.get_xdata()) == steps
    assert cell_colour(views[-1]["timeline"], 1, 3) == render.TIMELINE_COLOURS["corrected"]
    # tracking went on from the corrected frame: the first frame streamed is 1, the whole run ends on 2
    assert views[1]["frame"]["value"] == 1 and views[-2]["frame"]["value"] == 2
    assert app.frame == 1  # back on the corrected frame after continuing
    assert views[-1]["cumulative_plot"] is not None

    # the suggestion shows on a later frame and is accepted with one click
    view = h.goto(app, 2)
    assert "White outline" in view["suggestion_info"]
    suggestion = app.lit.suggest(2, 1)
    view = h.accept(app)
    assert iou(app.lit.mask(2, 1), suggestion) > 0.8  # SAM2 takes it as a mask prompt (resampled)
    assert cell_colour(view["timeline"], 2, 3) == render.TIMELINE_COLOURS["accepted"]
    assert "1 accepted" in view["status"]

    # export: PNG masks in a zip, an overlay mp4, the history and the adapter
    files = [Path(f) for f in h.export(app)["export_files"]]
    names = {f.name for f in files}
    assert names == {"masks.zip", "overlay.mp4", "history.json", "adapters.zip"}
    assert all(f.is_file() and f.stat().st_size > 0 and app.workdir in f.parents for f in files)
    with zipfile.ZipFile(next(f for f in files if f.name == "masks.zip")) as zf:
        pngs = sorted(n for n in zf.namelist() if n.endswith(".png"))
        assert len(pngs) == 3
        labels = np.asarray(Image.open(zf.open(pngs[1])))
    assert iou(labels == 1, app.lit.mask(1, 1)) == 1.0
    saved = History.load(next(f for f in files if f.name == "history.json"))
    assert [e.kind for e in saved.events] == ["prompt", "correction", "accepted"]

    # a new tab continues from the saved history: same masks where the user acted
    other = AppSession(tmp_path / "root2")
    try:
        h.open_sample(other, SYNTHETIC, TOUR, CFG, models)
        view = h.import_history(other, str(next(f for f in files if f.name == "history.json")))
        assert len(other.lit.history.corrections()) == 1 and len(other.lit.history.accepted()) == 1
        # replayed as a mask prompt, which SAM2 resamples to its 256 px input and back: close, not exact
        assert iou(other.lit.mask(1, 1), app.lit.mask(1, 1)) > 0.8
        assert other.lit.learners[1].trained
        assert cell_colour(view["timeline"], 1, 3) == render.TIMELINE_COLOURS["corrected"]
    finally:
        other.close()


def test_objects_box_undo_clear(app, models):
    h.open_sample(app, SYNTHETIC, ModelChoice(mode="sam2", untrained=True), CFG, models)
    gt = app.sample.gt[1][0]
    ys, xs = np.nonzero(gt)
    h.set_tool(app, "box")
    s = render.display_scale(*gt.shape)
    view = h.click(app, xs.min() * s, ys.min() * s)
    assert "opposite corner" in view["frame_info"] and app.lit.obj_ids == []
    h.click(app, xs.max() * s, ys.max() * s)
    event = app.lit.history.events[-1]
    assert app.lit.mask(0, 1).any() and event.source == "box"
    assert np.allclose(event.box, [xs.min(), ys.min(), xs.max(), ys.max()], atol=1)  # back in video pixels

    view = h.add_object(app)
    assert app.obj_id == 2 and view["objects"]["value"] == 2
    h.set_tool(app, "negative")
    h.set_tool(app, "positive")
    h.click(app, 5.0, 5.0)
    assert app.lit.obj_ids == [1, 2]
    h.undo(app)
    assert app.lit.mask(0, 2) is None
    view = h.clear_frame(app)
    assert not any(m.any() for m in app.lit.masks.get(0, {}).values())
    h.remove_object(app)
    assert app.objects == [1] and app.obj_id == 1
    assert "SAM2 alone makes no suggestions" in h.goto(app, 1)["suggestion_info"]
    with pytest.raises(h.UserError, match="no suggestions"):
        h.accept(app)


def test_timeline_click_jumps_to_frame(app, models):
    h.open_sample(app, SYNTHETIC, TOUR, CFG, models)
    cell = render.timeline_cell(3)
    view = h.timeline_click(app, 2 * cell + cell // 2)
    assert app.frame == 2 and view["frame"]["value"] == 2
    strip = view["timeline"]
    assert strip.shape[1] == 3 * cell and strip[-1, 2 * cell].tolist() == [0, 0, 0]  # marker under frame 2
    assert strip[-1, cell].tolist() == [255, 255, 255]
    assert render.timeline_frame_at(10_000, 3) == 2 and render.timeline_frame_at(-5, 3) == 0


def test_bad_inputs_give_messages_and_the_session_stays_usable(app, models, tmp_path):
    with pytest.raises(h.UserError, match="Load a video first"):
        h.click(app, 3, 3)
    h.open_sample(app, SYNTHETIC, TOUR, CFG, models)
    with pytest.raises(h.UserError, match="nothing to correct"):
        h.correct(app)
    with pytest.raises(h.UserError, match="Click on the object first"):
        list(h.propagate(app))
    lit = app.lit

    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    with pytest.raises(VideoError, match="not a supported upload"):
        h.open_upload(app, str(text), "notes.txt", TOUR, CFG, models)
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00" * 2048)
    with pytest.raises(VideoError, match="could not be opened"):
        h.open_upload(app, str(fake), "fake.mp4", TOUR, CFG, models)
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\x00" * int(1.5 * 2**20))
    with pytest.raises(VideoError, match="above the 1 MB limit"):
        h.open_upload(app, str(big), "big.mp4", TOUR, CFG, models)
    empty_zip = tmp_path / "frames.zip"
    with zipfile.ZipFile(empty_zip, "w") as zf:
        zf.writestr("readme.txt", "no frames here")
    with pytest.raises(VideoError, match="no JPEG/PNG frames"):
        h.open_upload(app, str(empty_zip), "frames.zip", TOUR, CFG, models)
    with pytest.raises(h.UserError, match="Choose a file"):
        h.open_upload(app, None, "", TOUR, CFG, models)
    with pytest.raises(VideoError):
        h.open_upload(app, str(zero_frame_mp4(tmp_path)), "zero.mp4", TOUR, CFG, models)

    # none of that touched the open session: clicking still works
    assert app.lit is lit
    h.click(app, *centre(app.sample.gt[1][0]))
    assert app.lit.mask(0, 1).any()


def test_uploads_are_copied_under_generated_names(app, models, tmp_path):
    frames = (np.random.default_rng(0).random((3, 48, 64, 3)) * 255).astype(np.uint8)
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i, frame in enumerate(frames):
            png = tmp_path / f"{i}.png"
            Image.fromarray(frame).save(png)
            zf.write(png, f"../../escape_{i}.png")  # a hostile member name
    view = h.open_upload(app, str(archive), "../../../evil name.zip", TOUR, CFG, models, stride=1)
    assert app.video.num_frames == 3 and view["frame"]["maximum"] == 2
    np.testing.assert_array_equal(app.video.frames, frames)
    written = [p for p in app.workdir.rglob("*") if p.is_file()]
    assert sorted(p.name for p in written) == ["00000.png", "00001.png", "00002.png"]
    assert not list(tmp_path.parent.glob("escape_*")) and not (tmp_path / "root").with_name("escape_0.png").exists()
    assert app.video.name == "video_1"

    # subsampling on request
    h.open_upload(app, str(archive), "x.zip", TOUR, CFG, models, stride=2)
    assert app.video.num_frames == 2 and any("every 2" in n for n in app.video.notes)


def test_tabs_are_isolated_and_cleaned_up(models, tmp_path):
    a, b = AppSession(tmp_path / "root"), AppSession(tmp_path / "root")
    h.open_sample(a, SYNTHETIC, TOUR, CFG, models)
    h.open_sample(b, SYNTHETIC, TOUR, CFG, models)
    h.click(a, 10, 10)
    assert a.lit.obj_ids == [1] and b.lit.obj_ids == [] and a.lit is not b.lit
    assert a.lit.predictor is b.lit.predictor  # the model is shared, the sessions are not
    folders = a.folder(), b.folder()
    assert folders[0] != folders[1] and all(f.is_dir() for f in folders)
    close_session(a)
    close_session(None)
    assert not folders[0].exists() and folders[1].exists() and a.lit is None
    b.close()
    assert not folders[1].exists()


def test_missing_weights_offer_the_untrained_tour(app, models, monkeypatch, tmp_path):
    monkeypatch.setenv("LITDEMO_SAM2_CHECKPOINT", str(tmp_path / "missing.pt"))
    with pytest.raises(h.UserError, match="Untrained model \\(offline tour\\)"):
        h.open_sample(app, SYNTHETIC, ModelChoice(untrained=False), CFG, models)
    assert app.lit is None
    assert h.mode_choices(True)[2][0] == h.UNTRAINED_FT_LABEL and h.default_mode(True) == "lit-ft"
    assert h.default_mode(False) == "lit-lora"


def test_simulate_needs_ground_truth(app, models):
    assert "synthetic_two_objects.mp4" in sample_names()
    h.open_sample(app, "synthetic_two_objects.mp4", TOUR, CFG, models)
    assert app.sample is None and app.video.num_frames == 20  # cut to max_frames
    with pytest.raises(h.UserError, match="ground truth"):
        h.simulate(app, CFG)
    with pytest.raises(ValueError, match="Unknown sample"):
        h.open_sample(app, "../app.py", TOUR, CFG, models)


def test_simulate_compares_sam2_and_lit_on_ground_truth(app, models):
    from dataclasses import replace

    cfg = replace(CFG, sample_frames=2)  # frame 0 gets the GT mask, frame 1 is judged: the cheapest real run
    h.open_sample(app, SYNTHETIC, TOUR, cfg, models)
    seen = []
    view = h.simulate(app, cfg, progress=lambda f, desc: seen.append(f))
    assert list(app.simulation) == ["sam2", "lit-ft"]
    for run in app.simulation.values():
        assert len(run["states"]) == 2 and run["corrections"] == run["states"].count("corrected")
    assert "corrections saved" in view["simulation_info"] and "untrained" in view["simulation_info"]
    assert [a.get_title() for a in view["simulation_plot"].axes][0].endswith("[untrained model]")
    labels = [line.get_label() for line in view["cumulative_plot"].axes[0].lines]
    assert any(lab.startswith("simulated sam2") for lab in labels) and any("simulated lit-ft" in lab for lab in labels)
    assert seen and 0 <= min(seen) and max(seen) <= 1


def test_app_config_reads_the_environment():
    cfg = AppConfig.from_env({"LITDEMO_APP_IMAGE_SIZE": "256", "LITDEMO_APP_PRETRAINED": "0",
                              "LITDEMO_APP_MAX_UPLOAD_MB": "5"})
    assert (cfg.image_size, cfg.pretrained, cfg.max_upload_mb) == (256, False, 5.0)
    with pytest.raises(ValueError, match="LITDEMO_APP_PRETRAINED"):
        AppConfig.from_env({"LITDEMO_APP_PRETRAINED": "maybe"})
    with pytest.raises(ValueError, match="multiple of 64"):
        AppConfig(image_size=100)
    with pytest.raises(ValueError, match="train_max_seconds"):
        AppConfig(train_max_seconds=-1)


def test_training_time_cap_reaches_the_session(app, models):
    capped = AppConfig.from_env({"LITDEMO_APP_TRAIN_MAX_SECONDS": "1.5"}, image_size=256, pretrained=False,
                                sample_frames=3, sample_height=64, sample_width=80)
    h.open_sample(app, SYNTHETIC, TOUR, capped, models)
    assert app.lit.config.max_train_seconds == 1.5
    h.open_sample(app, SYNTHETIC, TOUR, CFG, models)   # 0 = no cap, the paper's schedule
    assert app.lit.config.max_train_seconds is None


def test_build_demo_wires_every_view():
    demo = build_demo(CFG)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"lit-frame", "lit-timeline", "lit-propagate", "lit-correct", "lit-accept", "lit-stop"} <= ids
    assert len(demo.fns) >= 20  # every button, the image, the timeline, the slider and the timer are wired


def _queues(demo) -> dict:
    fns = demo.fns.values() if isinstance(demo.fns, dict) else demo.fns
    return {f.api_name: (f.concurrency_id, f.concurrency_limit) for f in fns if f.api_name}


def test_training_jobs_get_their_own_queue_when_asked():
    shared = _queues(build_demo(CFG))
    assert shared["correct"] == shared["propagate"] == ("model", 1)      # default: one queue for every model step
    own = _queues(build_demo(AppConfig(**{**CFG.__dict__, "training_concurrency_limit": 1})))
    assert own["propagate"] == own["click_at"] == ("model", 1)
    assert own["correct"] == own["simulate"] == ("training", 1)         # long jobs never block a click
    with pytest.raises(ValueError, match="training_concurrency_limit"):
        AppConfig(training_concurrency_limit=-1)


def zero_frame_mp4(folder: Path) -> Path:
    import subprocess

    import imageio_ffmpeg

    out = folder / "zero.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=black:s=64x64:d=1", "-frames:v", "0", str(out)], check=False)
    if not out.exists():
        out.write_bytes(b"")
    return out


def test_clip_tab_predict_correct_and_plots():
    from litdemo.app.clip_tab import ClipTab, clip_correct, clip_next, clip_start

    tab = ClipTab()
    with pytest.raises(ValueError, match="Start first"):
        clip_next(tab)
    view = clip_start(tab, "tiny-untrained", "lit-lora")
    assert "untrained" in view["clip_status"] and view["labels"]["choices"] == tab.images.class_names
    assert abs(sum(view["clip_scores"].values()) - 1) < 0.05 or len(view["clip_scores"]) < len(tab.images.class_names)
    truth = view["clip_info"].split("ground truth: ")[1].split(")")[0]
    view = clip_correct(tab, truth)
    assert len(tab.session.history.corrections) == 1
    assert view["clip_curve"] is not None and view["clip_cumulative"] is not None
    with pytest.raises(ValueError, match="Pick the right class"):
        clip_correct(tab, None)
    other = ClipTab()
    clip_start(other, "tiny-untrained", "zero-shot")
    assert len(other.session.history.corrections) == 0  # tabs do not share sessions
