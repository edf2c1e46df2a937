"""The paper protocol (the LIT author's evaluation code) beside the interactive one.

Each numbered rule of issue 11 has a test that fails if `paper` silently behaves like
`interactive`: the same calls are made under both protocols and the outcomes must differ where
the rule says so. Real sessions use the untrained SAM2.1 tiny at 128 px (conftest.py).
"""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from litdemo.benchmark import BenchmarkError, run_benchmark
from litdemo.config import LitConfig
from litdemo.datasets import VideoSample
from litdemo.decoder import DecoderInputs
from litdemo.learner import Adapter, ObjectLearner
from litdemo.metrics import iou
from litdemo.paper_learner import PaperAdapter, PaperLearner
from litdemo.paper_training import (PAPER_SCHEDULE, BufferedSample, PaperSchedule, replay_set, sample_iou,
                                    stop_reason, train_paper_update)
from litdemo.session import LitSession
from litdemo.simulated_user import ProtocolConfig, objects_to_run, run_protocol
from litdemo.training import TrainingSample

from test_simulated_user import ScriptedSession, square_sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

PROTOCOLS = ("interactive", "paper")


# ------------------------------------------------------------------------------------ helpers
def session_on(predictor, video, protocol, mode="lit-lora", **cfg):
    """A session on the moving-square video, prompted with the GT on frame 0, GT known for the paper oracle."""
    frames, masks = video
    s = LitSession(predictor, frames, LitConfig(mode=mode, protocol=protocol, **cfg))
    s.set_ground_truth(1, dict(enumerate(masks)))
    s.prompt(0, 1, mask=masks[0])
    return s


def track_to(session, frame, start=None):
    for f, _ in session.propagate(start_frame=start):
        if f == frame:
            return


def click_towards(session, frame, gt, times=1):
    from litdemo.clicks import next_click

    shown = session.mask(frame, 1)
    for _ in range(times):
        c = next_click(shown, gt)
        shown = session.click(frame, 1, c.x, c.y, positive=c.positive)
    return shown


def conditioning_frames(session, obj_idx=0):
    out = session.state["output_dict_per_obj"][obj_idx]
    temp = session.state["temp_output_dict_per_obj"][obj_idx]
    return set(out["cond_frame_outputs"]) | set(temp["cond_frame_outputs"])


class FakeDecoder(torch.nn.Module):
    """A mask decoder that always shows `mask` (shifted by a trainable offset), with a fixed confidence."""

    def __init__(self, mask, confidence):
        super().__init__()
        self.register_buffer("base", torch.where(torch.as_tensor(mask), 5.0, -5.0))
        self.offset = torch.nn.Parameter(torch.zeros(()))
        self.confidence = confidence

    def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
                multimask_output, repeat_image, high_res_features):
        b, m = image_embeddings.shape[0], 3 if multimask_output else 1
        masks = (self.base + self.offset + 0 * image_embeddings.mean()).expand(b, m, *self.base.shape)
        return masks, torch.full((b, m), self.confidence), None, torch.full((b, 1), 10.0)


def fake_prompt():
    return SimpleNamespace(sparse=torch.zeros(1, 1, 4), dense=torch.zeros(1, 4, 2, 2),
                           image_pe=torch.zeros(1, 4, 2, 2), multimask=False)


def fake_inputs():
    return DecoderInputs(torch.zeros(1, 4, 2, 2), (torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 4, 4)))


def square(cells):
    """An 8x8 mask with the first `cells` pixels (row-major) set."""
    m = np.zeros(64, bool)
    m[:cells] = True
    return m.reshape(8, 8)


def buffered(truth, score):
    target = torch.from_numpy(truth.astype(np.float32))[None, None]
    return BufferedSample(TrainingSample(0, fake_inputs(), target), truth, None, iou=score)


# ------------------------------------------------------------------------------------ 1. training target
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_1_target_after_successful_clicks_is_gt_under_paper_and_the_clicked_mask_interactively(
        predictor, square_video, protocol):
    frames, masks = square_video
    s = session_on(predictor, square_video, protocol, steps_first=10)   # interactive: a short update will do
    track_to(s, 3)
    clicked = click_towards(s, 3, masks[3])
    s.correct(3, 1)  # the clicks are the correction; no mask given
    assert not np.array_equal(s._decoder_target(clicked), s._decoder_target(masks[3]))  # the two targets differ
    learner = s.learners[1]
    target = (learner.adapters[0].buffer[0].sample.target if protocol == "paper"
              else learner.adapters[0].samples[0].target)
    expected = masks[3] if protocol == "paper" else clicked
    assert torch.equal(target, s._decoder_target(expected))


# ------------------------------------------------------------------------------------ 2. and 6. accepting
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_2_and_6_an_accepted_suggestion_joins_the_buffer_and_memory_as_the_author_does(
        predictor, square_video, protocol):
    """Paper: the accepted frame joins the adapter's buffer with the GT as target, and enters
    SAM2's memory as an ordinary frame holding the adapter's own logits. Interactive: not
    buffered; its mask becomes a conditioning frame."""
    frames, masks = square_video
    s = session_on(predictor, square_video, protocol, mode="lit-ft")
    track_to(s, 2)
    s.correct(2, 1, mask=masks[2])
    track_to(s, 5, start=3)
    suggestion = s.suggest(5, 1)
    s.accept(5, 1)
    learner = s.learners[1]
    assert (5 in conditioning_frames(s)) == (protocol == "interactive")
    if protocol == "interactive":
        assert [x.frame_idx for x in learner.adapters[0].samples] == [2]
        return
    buffer = learner.adapters[0].buffer
    assert [b.sample.frame_idx for b in buffer] == [2, 5]
    assert torch.equal(buffer[1].sample.target, s._decoder_target(masks[5]))   # GT, not the suggestion
    assert buffer[1].iou == pytest.approx(iou(suggestion, masks[5]))            # ranked by its own IoU
    stored = s.state["output_dict_per_obj"][0]["non_cond_frame_outputs"][5]["pred_masks"]
    out = s._paper_match(5, 1, s.captures.get(1, 5)).output   # accepting trains nothing: the same output
    assert out.object_score.item() > 0
    assert torch.allclose(stored.float(), out.mask_logits)    # the adapter's logits, not a re-encoded mask
    assert np.array_equal(s.mask(5, 1), suggestion)


# ------------------------------------------------------------------------------------ 3. replay and schedule
def test_3_replay_takes_the_five_best_by_stored_iou_plus_the_new_sample():
    truth = square(10)
    buffer = [buffered(truth, v) for v in (0.3, 0.9, 0.1, 0.8, 0.95, 0.2, 0.85)]
    new = buffered(truth, 0.0)
    chosen = replay_set(buffer, new)
    assert [b.iou for b in chosen] == [0.95, 0.9, 0.85, 0.8, 0.3, 0.0] and chosen[-1] is new
    assert replay_set([], new) == [new]


class CountingAdamW(torch.optim.AdamW):
    made: list = []

    def __init__(self, params, lr, weight_decay):
        super().__init__(params, lr=lr, weight_decay=weight_decay)
        self.steps = 0
        CountingAdamW.made.append(self)

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


@pytest.mark.parametrize("first, lr, epochs", [(True, 1e-4, 100), (False, 5e-5, 20)])
def test_3_an_update_is_epochs_of_batch_one_steps_at_the_authors_rates(monkeypatch, first, lr, epochs):
    monkeypatch.setattr("litdemo.paper_training.torch.optim.AdamW", CountingAdamW)
    CountingAdamW.made = []
    truth = square(20)
    samples = [buffered(truth, 0.5) for _ in range(3)]
    decoder = FakeDecoder(square(5), 0.5)  # far from the truth: the IoU keeps improving, no early stop
    curve, best = train_paper_update(decoder, fake_prompt(), samples, first, LitConfig(mode="lit-ft", protocol="paper"))
    opt = CountingAdamW.made[0]
    assert opt.param_groups[0]["lr"] == lr and opt.param_groups[0]["weight_decay"] == 0
    assert opt.steps == 3 * len(curve.iou)       # one step per sample per epoch (batch 1)
    assert len(curve.iou) <= epochs and curve.batch_size == 3
    assert best == max(curve.iou)


# ------------------------------------------------------------------------------------ 4. early stopping
def test_4_the_authors_early_stopping_rules():
    s = PAPER_SCHEDULE
    assert stop_reason(30, 0.61, 10) == "plateau" and stop_reason(30, 0.6, 10) == ""   # needs IoU > 0.6
    assert stop_reason(30, 0.9, 9) == ""
    assert stop_reason(s.low_iou_epoch, 0.19, 0) == "low_iou" and stop_reason(s.low_iou_epoch + 1, 0.19, 0) == ""
    assert stop_reason(s.zero_iou_epoch, 0.0, 0) == "zero_iou" and stop_reason(s.zero_iou_epoch, 0.01, 0) == ""


def test_4_best_epoch_kept_by_default_last_epoch_with_author_quirks():
    truth = square(20)
    for quirks in (False, True):
        torch.manual_seed(0)
        decoder = FakeDecoder(square(12), 0.5)
        samples = [buffered(truth, 0.5)]
        cfg = LitConfig(mode="lit-ft", protocol="paper", author_quirks=quirks)
        curve, best = train_paper_update(decoder, fake_prompt(), samples, True, cfg,
                                         PaperSchedule(epochs_first=30))
        kept = sample_iou(decoder, fake_prompt(), samples[0])
        if quirks:
            assert curve.best_step == len(curve.iou) - 1 and kept == pytest.approx(curve.iou[-1])
        else:
            assert kept == pytest.approx(best) and curve.iou[curve.best_step] == best


def test_4_author_quirks_scale_the_focal_term_by_the_image_size():
    from litdemo.paper_training import _loss_config

    target = torch.zeros(1, 1, 64, 64)  # a 256 px model's decoder resolution
    plain = LitConfig(protocol="paper")
    assert _loss_config(plain, target).focal_weight == plain.focal_weight
    assert _loss_config(LitConfig(protocol="paper", author_quirks=True), target).focal_weight == 20.0 * 256
    with pytest.raises(ValueError, match="paper"):
        LitConfig(author_quirks=True)   # an interactive session has no author quirks to copy


# ------------------------------------------------------------------------------------ 5. multi-LoRA
def test_5_the_suggestion_comes_from_the_adapter_closest_to_the_gt_under_paper(predictor, square_video):
    frames, masks = square_video
    shown = {}
    for protocol in PROTOCOLS:
        s = session_on(predictor, square_video, protocol)
        track_to(s, 4)
        h = predictor.image_size // 4
        good = torch.from_numpy(s._decoder_target(masks[4])[0, 0].numpy() > 0.5)
        confident_but_wrong, right_but_shy = FakeDecoder(~good, 0.9), FakeDecoder(good, 0.1)
        assert good.shape == (h, h)
        if protocol == "paper":
            learner = PaperLearner(predictor.sam_mask_decoder, s._prompt, s.config)
            learner.adapters = [PaperAdapter(confident_but_wrong, [None]), PaperAdapter(right_but_shy, [None])]
        else:
            learner = ObjectLearner(predictor.sam_mask_decoder, s._prompt, s.config)
            learner.adapters = [Adapter(confident_but_wrong, [None]), Adapter(right_but_shy, [None])]
        s.learners[1] = learner
        shown[protocol] = s.suggest(4, 1)
    assert iou(shown["paper"], masks[4]) > 0.9          # the user picks the best of the shown suggestions
    assert iou(shown["interactive"], masks[4]) < 0.1    # the most confident adapter suggests


@pytest.mark.parametrize("score, adapters_after", [(0.4, 2), (0.45, 1), (0.5, 1)])
def test_5_a_new_adapter_starts_when_the_best_scores_at_most_0_4(score, adapters_after):
    truth = square(20)
    cfg = LitConfig(mode="lit-ft", protocol="paper", max_adapters=3)
    learner = PaperLearner(FakeDecoder(square(1), 0.5), fake_prompt(), cfg)
    learner.adapters = [PaperAdapter(FakeDecoder(square(int(round(20 * score))), 0.5))]  # IoU = score
    sample = buffered(truth, 0.0).sample
    curve, idx = learner.learn(sample, truth, None)
    assert len(learner.adapters) == adapters_after and idx == adapters_after - 1
    assert learner.adapters[idx].buffer[-1].iou == max(curve.iou)   # ranked by the update's best epoch score
    # the interactive learner's rule differs at 0.45: below its 0.5 threshold it starts a new adapter
    interactive = ObjectLearner(FakeDecoder(square(1), 0.5), fake_prompt(), LitConfig(mode="lit-ft", max_adapters=3))
    interactive.adapters = [Adapter(FakeDecoder(square(int(round(20 * score))), 0.5), [sample])]
    assert (interactive._choose_adapter(sample) == 1) == (score < 0.5)


def test_5_one_adapter_variant_never_starts_a_second():
    truth = square(20)
    learner = PaperLearner(FakeDecoder(square(1), 0.5), fake_prompt(),
                           LitConfig(mode="lit-ft", protocol="paper", max_adapters=1))
    learner.adapters = [PaperAdapter(FakeDecoder(~square(20), 0.5))]   # IoU 0 with the truth
    learner.learn(buffered(truth, 0.0).sample, truth, None)
    assert len(learner.adapters) == 1 and len(learner.adapters[0].buffer) == 1


# ------------------------------------------------------------------------------------ 6. SAM2 memory
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_6_click_fixes_and_mask_fallbacks_in_sam2_memory(predictor, square_video, protocol):
    frames, masks = square_video
    s = session_on(predictor, square_video, protocol, mode="sam2")
    track_to(s, 5)
    click_towards(s, 3, masks[3])
    s.correct(3, 1)
    s.correct(5, 1, mask=masks[5])
    cond = conditioning_frames(s)
    assert 5 in cond                                      # a mask fall-back: conditioning under both
    assert (3 in cond) == (protocol == "interactive")     # a click fix: ordinary memory under paper
    assert s.is_conditioning_frame(3, 1) == (protocol == "interactive")


@pytest.mark.parametrize("as_cond", [True, False])
def test_6_corrections_as_conditioning_decides_the_interactive_memory(predictor, square_video, as_cond):
    """--set corrections_as_conditioning=false used to be ignored (the predictor hard-coded True)."""
    frames, masks = square_video
    s = session_on(predictor, square_video, "interactive", mode="sam2", corrections_as_conditioning=as_cond)
    track_to(s, 4)
    click_towards(s, 2, masks[2])
    s.correct(2, 1)
    s.correct(4, 1, mask=masks[4])
    assert {2, 4} <= conditioning_frames(s) if as_cond else not ({2, 4} & conditioning_frames(s))
    assert predictor.add_all_frames_to_correct_as_cond is True   # the shared model is left as it was


def test_6_the_paper_user_never_tracks_over_an_ordinary_memory_frame():
    """A click fix under paper is an ordinary memory frame: tracking resumes on the next frame, so
    the fix is not overwritten (the author's single pass); a conditioning fix resumes on itself."""
    sample = square_sample()

    class Session(ScriptedSession):
        def __init__(self, *a, cond, **k):
            super().__init__(*a, **k)
            self.cond, self.starts = cond, []

        def set_ground_truth(self, obj, masks, void=None):
            pass

        def is_conditioning_frame(self, t, obj):
            return self.cond

        def propagate(self, start_frame):
            self.starts.append(start_frame)
            return super().propagate(start_frame)

    for cond, expected in ((False, [0, 4]), (True, [0, 3])):
        session = Session(sample, wrong={3}, cond=cond)
        r = run_protocol(session, sample, 1, "scripted", ProtocolConfig(name="paper"), learns=False)
        assert session.starts == expected and r.corrections == 1 and r.states[4] == "fine"


# ------------------------------------------------------------------------------------ 7. clicks
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_7_each_paper_click_replaces_the_earlier_ones(predictor, square_video, protocol):
    frames, masks = square_video
    s = session_on(predictor, square_video, protocol, mode="sam2")
    track_to(s, 3)
    click_towards(s, 3, masks[3], times=2)
    points = s.state["point_inputs_per_obj"][0][3]["point_labels"].shape[1]
    assert points == (1 if protocol == "paper" else 2)


# ------------------------------------------------------------------------------------ 8. post-processing
def test_8_the_paper_protocol_builds_sam2_without_post_processing():
    from litdemo.benchmark import _model
    from litdemo.protocols import uses_postprocessing

    assert uses_postprocessing("interactive") and not uses_postprocessing("paper")
    plain = _model("tiny", 0, 128, "cpu", False, None, uses_postprocessing("paper"))
    assert plain.sam_mask_decoder.dynamic_multimask_via_stability is False
    assert plain.binarize_mask_from_pts_for_mem_enc is False


# ------------------------------------------------------------------------------------ 9. void and late objects
def test_9_void_pixels_are_left_out_of_every_iou_under_paper():
    sample = square_sample()
    void = np.zeros((32, 32), bool)
    void[10:20, 5:9] = True                     # the square's first 4 columns on frame 3 are void
    sample.void = {3: void}
    tracked = sample.gt[1][3] & ~void           # wrong exactly on the void pixels
    assert iou(tracked, sample.gt[1][3]) == pytest.approx(0.6) and iou(tracked, sample.gt[1][3], void=void) == 1.0
    results = {}
    for protocol in PROTOCOLS:
        session = ScriptedSession(sample, partial={3: tracked})
        session.set_ground_truth = lambda *a, **k: None
        r = run_protocol(session, sample, 1, "scripted", ProtocolConfig(name=protocol, tau=0.7), learns=False)
        results[protocol] = (r.corrections, r.iou_before[3])
    assert results["paper"] == (0, 1.0) and results["interactive"] == (1, pytest.approx(0.6))
    from litdemo.metrics import j_and_f
    assert j_and_f({3: tracked}, {3: sample.gt[1][3]}, void={3: void})["J"] == 1.0   # J leaves void out too


def test_9_late_objects_are_skipped_under_paper_unless_asked():
    frames = np.zeros((4, 8, 8, 3), np.uint8)
    early, late = square(10), square(20)
    sample = VideoSample("two", frames, {1: {0: early, 1: early}, 2: {0: np.zeros((8, 8), bool), 2: late}})
    assert objects_to_run(sample, ProtocolConfig(name="paper")) == [1]
    assert objects_to_run(sample, ProtocolConfig(name="paper", include_late_objects=True)) == [1, 2]
    assert objects_to_run(sample, ProtocolConfig()) == [1, 2]          # interactive: as before


def test_9_void_labels_are_kept_by_the_folder_loader(tmp_path):
    from PIL import Image

    from litdemo.datasets.base import davis_palette
    from litdemo.datasets.davis import load_label_folder

    (tmp_path / "f").mkdir()
    (tmp_path / "a").mkdir()
    labels = np.zeros((8, 8), np.uint8)
    labels[:4, :4], labels[6:, 6:] = 1, 255
    for t in range(2):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "f" / f"{t:05d}.jpg")
        png = Image.fromarray(labels, mode="P")
        png.putpalette(davis_palette().flatten().tolist())
        png.save(tmp_path / "a" / f"{t:05d}.png")
    sample = load_label_folder(tmp_path / "f", tmp_path / "a", "v", fps=24.0)
    assert sample.void[0].sum() == 4 and not sample.gt[1][0][6:, 6:].any()   # void: not the object


# ------------------------------------------------------------------------------------ benchmark settings
def test_paper_refuses_settings_it_would_ignore_and_protocols_never_share_a_folder(tmp_path):
    kw = dict(methods=("sam2",), sequences=["synthetic-0"], image_size=128, pretrained=False, max_frames=2,
              plots=False, threads=1)
    with pytest.raises(BenchmarkError, match="steps_first"):
        run_benchmark("synthetic", protocol="paper", lit_overrides={"steps_first": 5}, **kw)
    with pytest.raises(BenchmarkError, match="protocol"):
        run_benchmark("synthetic", lit_overrides={"protocol": "paper"}, **kw)
    with pytest.raises(BenchmarkError, match="author_quirks"):
        run_benchmark("synthetic", lit_overrides={"author_quirks": True}, **kw)


def test_both_protocols_end_to_end_write_distinct_settings_and_results(tmp_path):
    """A small run of each protocol (untrained tiny model, 128 px, 4 frames of a synthetic video)."""
    kw = dict(methods=("sam2", "lit-lora"), sequences=["synthetic-0"], image_size=128, pretrained=False,
              max_frames=4, plots=False, threads=1)
    results = {p: run_benchmark("synthetic", protocol=p, out=tmp_path / p, **kw) for p in PROTOCOLS}
    for protocol, result in results.items():
        settings = json.loads((tmp_path / protocol / "settings.json").read_text())
        assert settings["protocol"]["name"] == protocol
        assert settings["protocol"]["include_late_objects"] == (protocol == "interactive")
        saved = json.loads((tmp_path / protocol / "results.json").read_text())
        assert {r["protocol"]["name"] for r in saved["runs"]} == {protocol}
        assert len(result.runs) == 2 and f"{protocol} protocol" in result.to_markdown()
        lora = next(r for r in result.runs if r.method == "lit-lora")
        assert lora.corrections + lora.accepted == sum(s in ("corrected", "accepted") for s in lora.states) >= 1
    paper_curves = next(r for r in results["paper"].runs if r.method == "lit-lora").train_curves
    assert all(c["stop_reason"] in ("plateau", "low_iou", "zero_iou", "steps") for c in paper_curves)
    with pytest.raises(BenchmarkError, match="protocol"):   # runs of the two never mix
        run_benchmark("synthetic", protocol="paper", out=tmp_path / "interactive", **kw)
