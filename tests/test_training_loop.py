"""The LIT training loop's stopping rules and best-step bookkeeping, on one captured frame."""
import pytest
import torch

from litdemo.adapters import make_adapted_decoder, trainable_state
from litdemo.config import LitConfig
from litdemo.decoder import EmptyPrompt, run_decoder
from litdemo.session import LitSession
from litdemo.training import TrainingSample, batch_iou, train_on_correction

from conftest import moving_square


@pytest.fixture(scope="module")
def sample(predictor):
    frames, masks = moving_square()
    session = LitSession(predictor, frames, LitConfig(mode="lit-ft"))
    session.prompt(0, 1, mask=masks[0])
    for frame, _ in session.propagate():
        if frame == 3:
            break
    return TrainingSample(3, session.captures.get(1, 3), session._decoder_target(masks[3]))


def train(predictor, sample, **cfg):
    cfg = LitConfig(**{"mode": "lit-ft", **cfg})
    decoder = make_adapted_decoder(predictor.sam_mask_decoder, cfg)
    curve = train_on_correction(decoder, EmptyPrompt(predictor), sample, [], cfg, first=True)
    return decoder, curve


def test_schedule_runs_out_and_the_last_update_is_scored(predictor, sample):
    _, curve = train(predictor, sample, steps_first=3, early_stop_iou=1.0, early_stop_patience=100)
    assert curve.stop_reason == "steps" and not curve.stopped_early
    assert len(curve.loss) == len(curve.iou) == 4 and curve.updates == 3


def test_time_cap_stops_after_one_update_when_tiny(predictor, sample):
    _, curve = train(predictor, sample, max_train_seconds=1e-6, early_stop_iou=1.0)
    assert curve.stop_reason == "time" and curve.stopped_early
    assert curve.updates == 1   # one update always happens, then the cap ends training


def test_time_cap_leaves_the_schedule_alone_when_generous(predictor, sample):
    _, capped = train(predictor, sample, steps_first=4, early_stop_iou=1.0, early_stop_patience=100,
                      max_train_seconds=3600.0)
    assert capped.stop_reason == "steps" and capped.updates == 4


def test_fit_stops_training_and_the_best_step_is_kept(predictor, sample):
    decoder, curve = train(predictor, sample, early_stop_iou=0.9)
    assert curve.stop_reason == "fit" and curve.iou[-1] >= 0.9
    assert curve.best_step == len(curve.iou) - 1
    prompt = EmptyPrompt(predictor)
    with torch.no_grad():
        kept = batch_iou(run_decoder(decoder, prompt, sample.inputs.to("cpu")), sample.target)
    assert kept == pytest.approx(curve.iou[curve.best_step])


def test_plateau_stops_and_restores_the_best_weights(predictor, sample):
    # lr 0: the loss never improves, so patience ends training; the kept weights are step 0's.
    decoder, curve = train(predictor, sample, lr_first=1e-12, early_stop_iou=1.0, early_stop_patience=3)
    assert curve.stop_reason == "plateau" and curve.best_step == 0
    fresh = make_adapted_decoder(predictor.sam_mask_decoder, LitConfig(mode="lit-ft"))
    kept, base = trainable_state(decoder), trainable_state(fresh)
    assert all(torch.equal(kept[k], base[k]) for k in base)


def test_time_cap_must_be_positive():
    with pytest.raises(ValueError, match="max_train_seconds"):
        LitConfig(max_train_seconds=0)


def test_lit_ft_trains_every_candidate_mask_lora_only_the_shown_one(predictor, sample):
    # SAM2 shows the candidate its IoU head rates best; LIT-FT moves that head too, so it trains all
    # candidates on the correction and whichever is picked is right.
    assert LitConfig(mode="lit-ft").trains_all_candidates and not LitConfig(mode="lit-lora").trains_all_candidates
    decoder, curve = train(predictor, sample, early_stop_iou=0.95)
    assert curve.stop_reason == "fit"
    with torch.no_grad():
        out = run_decoder(decoder, EmptyPrompt(predictor), sample.inputs.to("cpu"))
    assert out.candidates.shape[1] == 3
    for k in range(3):
        candidate = out.candidates[:, k:k + 1] > 0
        inter = (candidate & (sample.target > 0.5)).sum().item()
        union = (candidate | (sample.target > 0.5)).sum().item()
        assert inter / union >= 0.8, f"candidate {k} was not trained: IoU {inter / union:.2f}"


@pytest.mark.parametrize("rule, kept", [("iou", 0), ("iou-loss", 3), ("loss", 3), ("last", 4)])
def test_best_step_rules_when_the_batch_iou_stays_flat(rule, kept):
    """The issue's case: the batch IoU stays flat while the loss falls (then rises at the end).
    "iou" keeps step 0, i.e. throws the update away; the other rules keep an update."""
    from litdemo.training import replaces, step_score

    ious, losses = [0.5, 0.5, 0.5, 0.5, 0.5], [4.2, 3.9, 3.5, 3.2, 3.3]
    best, best_score = 0, step_score(rule, ious[0], losses[0])
    for step in range(1, 5):   # as train_on_correction walks its scored steps
        score = step_score(rule, ious[step], losses[step])
        if replaces(rule, score, best_score):
            best, best_score = step, score
    assert best == kept


def test_iou_still_decides_before_the_loss():
    from litdemo.training import step_score

    assert step_score("iou-loss", 0.6, 9.0) > step_score("iou-loss", 0.5, 0.1)
    assert step_score("iou-loss", 0.5, 0.1) > step_score("iou-loss", 0.5, 0.2)
