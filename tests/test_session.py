"""The LIT session end to end on a random-init SAM2.1 tiny (128 px; two tests at 256 px) and a synthetic video."""
import numpy as np
import pytest
import torch

from litdemo.config import LitConfig
from litdemo.history import History
from litdemo.metrics import iou
from litdemo.session import LitSession


def tracked_until(session, frame):
    for f, _ in session.propagate():
        if f == frame:
            return


def make_session(predictor, video, mode, **cfg):
    frames, masks = video
    s = LitSession(predictor, frames, LitConfig(mode=mode, **cfg))
    s.prompt(0, 1, mask=masks[0])
    return s


def test_lit_ft_fits_the_corrected_frame_and_base_weights_stay_identical(predictor, square_video):
    frames, masks = square_video
    before = {k: v.clone() for k, v in predictor.state_dict().items()}
    s = make_session(predictor, square_video, "lit-ft")
    tracked_until(s, 4)
    assert s.suggest(4, 1) is None  # nothing learned yet
    event = s.correct(4, 1, mask=masks[4])
    assert iou(s.suggest(4, 1), masks[4]) >= 0.9
    curve = event.train_curve
    assert min(curve["loss"]) < curve["loss"][0]
    assert event.suggestion_iou_after >= 0.9 and event.kind == "correction" and event.source == "mask"
    after = predictor.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_lora_training_lowers_the_loss_and_changes_later_suggestions(predictor, square_video):
    frames, masks = square_video
    s = make_session(predictor, square_video, "lit-lora")
    tracked_until(s, 6)
    learner_inputs = s.captures.get(1, 6)
    live = []
    event = s.correct(3, 1, mask=masks[3], on_step=lambda step, loss, iou: live.append((step, loss)))
    assert live and [l for _, l in live] == event.train_curve["loss"][:len(live)]
    curve = event.train_curve
    assert curve["loss"][curve["best_step"]] < curve["loss"][0]
    assert len(curve["loss"]) <= LitConfig().steps_first + 1
    # a later, similar frame: base decoder and adapter now disagree there
    from litdemo.decoder import run_decoder
    learner = s.learners[1]
    x = learner_inputs.to("cpu")
    with torch.no_grad():
        base = run_decoder(predictor.sam_mask_decoder, learner.prompt, x).mask_logits
        adapted = run_decoder(learner.adapters[0].decoder, learner.prompt, x).mask_logits
    assert not torch.allclose(base, adapted)


def test_replay_and_later_learning_rate_on_the_second_correction(predictor, square_video):
    frames, masks = square_video
    s = make_session(predictor, square_video, "lit-ft")
    tracked_until(s, 3)
    first = s.correct(3, 1, mask=masks[3])
    for f, _ in s.propagate(start_frame=3):
        if f == 7:
            break
    second = s.correct(7, 1, mask=masks[7])
    assert first.train_curve["batch_size"] == 1 and second.train_curve["batch_size"] == 2
    assert len(second.train_curve["loss"]) <= LitConfig().steps_later + 1
    assert second.suggestion_iou_before is not None  # the adapter already had a guess
    assert [e.frame_idx for e in s.history.corrections()] == [3, 7]


def test_accepting_a_suggestion_enters_sam2_memory(predictor, square_video):
    frames, masks = square_video

    def next_frame_mask(accept):
        s = make_session(predictor, square_video, "lit-ft")
        tracked_until(s, 3)
        s.correct(3, 1, mask=masks[3])
        for f, _ in s.propagate(start_frame=3):
            if f == 5:
                break
        if accept:
            suggestion = s.suggest(5, 1)
            assert not np.array_equal(suggestion, s.mask(5, 1))  # the test needs them to differ
            event = s.accept(5, 1)
            assert event.kind == "accepted" and len(s.history.corrections()) == 1
            # SAM2 holds the suggestion as this frame's mask input (at its own square resolution)
            held = s.state["mask_inputs_per_obj"][0][5][0, 0].numpy() > 0.5
            small = torch.nn.functional.interpolate(torch.from_numpy(suggestion).float()[None, None],
                                                    size=held.shape, mode="bilinear", antialias=True)[0, 0] >= 0.5
            assert np.array_equal(held, small.numpy())
        for f, m in s.propagate(start_frame=5):
            if f == 6:
                return m[1]

    assert not np.array_equal(next_frame_mask(True), next_frame_mask(False))


def test_corrections_survive_repropagation(predictor, square_video):
    frames, masks = square_video
    s = make_session(predictor, square_video, "sam2")
    tracked_until(s, 5)
    s.correct(3, 1, mask=masks[3])
    shown = s.mask(3, 1).copy()
    assert iou(shown, masks[3]) > 0.9
    s.propagate_all(start_frame=0)
    assert np.array_equal(s.mask(3, 1), shown)  # a conditioning frame: kept, not recomputed


def test_object_score_follows_the_correction(predictor, square_video):
    frames, masks = square_video
    s = make_session(predictor, square_video, "lit-ft")
    tracked_until(s, 4)
    empty = np.zeros_like(masks[4])
    s.correct(4, 1, mask=empty)  # "the object is gone here"
    learner = s.learners[1]
    out, _ = learner.predict(s.captures.get(1, 4))
    assert out.object_score.item() <= 0 and not s.suggest(4, 1).any()
    s2 = make_session(predictor, square_video, "lit-ft")
    tracked_until(s2, 4)
    s2.correct(4, 1, mask=masks[4])
    out2, _ = s2.learners[1].predict(s2.captures.get(1, 4))
    assert out2.object_score.item() > 0


def test_adapter_used_in_propagation_changes_tracking(predictor, square_video):
    frames, masks = square_video

    def frame5(use):
        s = make_session(predictor, square_video, "lit-ft", use_adapter_in_propagation=use)
        tracked_until(s, 3)
        s.correct(3, 1, mask=masks[3])
        for f, m in s.propagate(start_frame=3):
            if f == 5:
                return m[1], s.suggest(5, 1)

    plain, _ = frame5(False)
    adapted, suggestion = frame5(True)
    # with the option on, SAM2 tracks with the adapted decoder: its output *is* the suggestion
    assert np.array_equal(adapted, suggestion)
    assert not np.array_equal(plain, adapted)


def test_multi_object_remove_and_reset(predictor, square_video):
    frames, masks = square_video
    s = LitSession(predictor, frames, LitConfig(mode="lit-ft"))
    s.prompt(0, 1, mask=masks[0])
    s.prompt(0, 2, points=[[10, 10]], labels=[1])
    out = s.propagate_all()
    assert len(out) == len(frames) and set(out[len(frames) - 1]) == {1, 2}
    s.correct(5, 2, mask=np.zeros_like(masks[5]))
    assert set(s.learners) == {2}
    s.remove_object(2)
    assert s.obj_ids == [1] and 2 not in s.learners and all(2 not in m for m in s.masks.values())
    s.reset()
    assert s.obj_ids == [] and s.history.events == [] and len(s.captures) == 0
    s.prompt(2, 7, mask=masks[2])
    assert s.obj_ids == [7]


def test_clicks_then_commit_and_undo(predictor, square_video):
    frames, masks = square_video
    s = LitSession(predictor, frames, LitConfig(mode="lit-ft"))
    s.click(0, 1, 30, 45, positive=True)
    s.click(0, 1, 100, 10, positive=False)
    assert s.history.events[0].clicks == [[30.0, 45.0, 1], [100.0, 10.0, 0]]
    s.undo_click(0, 1)
    assert len(s.history.events[0].clicks) == 1
    tracked_until(s, 4)
    tracked = s.mask(4, 1).copy()
    s.click(4, 1, 40, 45, positive=True)
    assert (4, 1) in s.pending
    s.undo_click(4, 1)
    assert (4, 1) not in s.pending and np.array_equal(s.mask(4, 1), tracked)
    s.click(4, 1, 40, 45, positive=True)
    event = s.correct(4, 1)  # commit the click
    assert event.source == "clicks" and event.clicks == [[40.0, 45.0, 1]] and not event.mask_fallback


def test_mask_after_clicks_is_a_fallback(predictor, square_video):
    frames, masks = square_video
    s = make_session(predictor, square_video, "sam2")
    tracked_until(s, 4)
    s.click(4, 1, 40, 45)
    event = s.correct(4, 1, mask=masks[4])
    assert event.mask_fallback and event.source == "mask" and len(event.clicks) == 1
    assert event.train_curve is None  # the baseline does not learn


def test_multi_adapter_starts_a_new_expert_for_a_new_appearance(predictor, square_video):
    frames, masks = square_video
    s = make_session(predictor, square_video, "lit-ft", max_adapters=3)
    tracked_until(s, 8)
    s.correct(3, 1, mask=masks[3])
    s.correct(8, 1, mask=np.zeros_like(masks[8]))  # the first expert predicts the square: IoU 0 here
    assert len(s.learners[1].adapters) == 2
    assert [e.adapter_idx for e in s.history.corrections()] == [0, 1]


def test_small_capture_budget_drops_frames_and_recomputes_them(predictor_256, square_video):
    frames, masks = square_video
    s = make_session(predictor_256, square_video, "lit-ft", capture_budget_mb=0.5)
    s.propagate_all()
    one = s.captures.get(1, 9).nbytes
    assert len(s.captures) == max(1, int(0.5 * 2**20 // one)) < len(frames) - 1
    assert s.captures.get(1, 1) is None
    event = s.correct(1, 1, mask=masks[1])  # dropped frame: recomputed from SAM2's memory
    assert event.suggestion_iou_after >= 0.9


def test_history_round_trips(predictor, square_video, tmp_path):
    frames, masks = square_video
    s = make_session(predictor, square_video, "lit-ft")
    tracked_until(s, 4)
    s.correct(4, 1, mask=masks[4])
    s.propagate_all(start_frame=4)
    s.accept(6, 1)
    path = s.history.save(tmp_path / "h.json")
    loaded = History.load(path)
    assert loaded.to_dict() == s.history.to_dict()
    assert [e.kind for e in loaded.events] == ["prompt", "correction", "accepted"]
    assert np.array_equal(loaded.events[1].mask_array(), masks[4])
    assert loaded.model["untrained"] is True
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        History.load(tmp_path / "bad.json")


def test_sam2_mode_reproduces_raw_sam2_exactly(predictor, square_video, tmp_path):
    """Parity: our session (any mode, no corrections) gives SAM2's own outputs bit for bit."""
    from PIL import Image

    from litdemo.video_io import load_video

    frames, masks = square_video
    folder = tmp_path / "jpg"
    folder.mkdir()
    for t, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{t:05d}.jpg", quality=95)
    state = predictor.init_state(str(folder))  # sam2's own JPEG route
    predictor.add_new_mask(state, 0, 1, masks[0])
    raw = {f: (m[0, 0] > 0).numpy() for f, _, m in predictor.propagate_in_video(state)}
    video = load_video(folder)  # our route: decoded once, kept in memory
    for mode in ("sam2", "lit-lora"):
        s = LitSession(predictor, video, LitConfig(mode=mode))
        s.prompt(0, 1, mask=masks[0])
        ours = {f: m[1] for f, m in s.propagate()}
        assert all(np.array_equal(ours[f], raw[f]) for f in raw)


def test_replaying_a_saved_history_continues_the_session(predictor_256, square_video, tmp_path):
    frames, masks = square_video
    s = make_session(predictor_256, square_video, "lit-ft")
    tracked_until(s, 3)
    s.correct(3, 1, mask=masks[3])
    tracked_until_from = [f for f, _ in s.propagate(start_frame=3)]
    s.accept(6, 1)
    saved = History.load(s.history.save(tmp_path / "h.json"))
    fresh = LitSession(predictor_256, frames, LitConfig(mode="lit-ft"))
    fresh.replay(saved)
    assert [(e.kind, e.frame_idx) for e in fresh.history.events] == [("prompt", 0), ("correction", 3), ("accepted", 6)]
    assert fresh.learners[1].trained and iou(fresh.suggest(3, 1), masks[3]) >= 0.9
    with pytest.raises(ValueError, match="reset"):
        fresh.replay(saved)
    other = LitSession(predictor_256, frames[:5], LitConfig(mode="lit-ft"))
    with pytest.raises(ValueError, match="10-frame"):
        other.replay(saved)


def test_backward_propagation_from_a_later_prompt(predictor, square_video):
    frames, masks = square_video
    s = LitSession(predictor, frames, LitConfig(mode="lit-lora"))
    s.prompt(9, 1, mask=masks[9])
    order = [f for f, _ in s.propagate(reverse=True)]
    assert order == list(range(9, -1, -1))
    assert all(s.is_tracked(f, 1) for f in range(10)) and len(s.captures) == 9  # every tracked frame captured
