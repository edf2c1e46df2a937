"""The backbone feature cache: same masks as without it, fewer encoder runs, a budget that holds."""
import numpy as np
import pytest
import torch

from litdemo.config import LitConfig
from litdemo.feature_cache import FeatureCache
from litdemo.session import LitSession


@pytest.fixture
def encoder_calls(predictor, monkeypatch):
    """Counts the frames the image encoder really runs on (SAM2Base.forward_image)."""
    calls = []
    original = predictor.forward_image

    def counted(img_batch):
        calls.append(img_batch.shape[0])
        return original(img_batch)

    monkeypatch.setattr(predictor, "forward_image", counted)
    return calls


def correct_and_repropagate(predictor, video, feature_cache_mb):
    """Prompt, track, correct frame 5, track again from it, then ask for a suggestion and a capture."""
    frames, masks = video
    s = LitSession(predictor, frames, LitConfig(mode="lit-lora", feature_cache_mb=feature_cache_mb,
                                                capture_budget_mb=0.5))  # small: captures get recomputed
    s.prompt(0, 1, mask=masks[0])
    first = {f: m[1].copy() for f, m in s.propagate()}
    s.correct(5, 1, mask=masks[5])
    again = {f: m[1].copy() for f, m in s.propagate(start_frame=5)}
    suggestion = s.suggest(2, 1)   # frame 2's capture was dropped: recomputed from SAM2's memory
    capture = s.captures.get(1, 2)
    return s, first, again, suggestion, capture


def test_masks_with_the_cache_equal_masks_without_it(predictor, square_video, encoder_calls, one_torch_thread):
    off, *without = correct_and_repropagate(predictor, square_video, feature_cache_mb=0)
    runs_without = len(encoder_calls)
    encoder_calls.clear()
    on, *with_cache = correct_and_repropagate(predictor, square_video, feature_cache_mb=64)
    runs_with = len(encoder_calls)

    (first0, again0, sugg0, cap0), (first1, again1, sugg1, cap1) = without, with_cache
    assert first0.keys() == first1.keys() and again0.keys() == again1.keys()
    assert all(np.array_equal(first0[f], first1[f]) for f in first0)
    assert all(np.array_equal(again0[f], again1[f]) for f in again0)
    assert np.array_equal(sugg0, sugg1) and sugg0.any()
    assert torch.equal(cap0.image_embed, cap1.image_embed)
    assert all(torch.equal(a, b) for a, b in zip(cap0.high_res, cap1.high_res))
    num_frames = len(square_video[0])
    # with the cache every frame is encoded once; without it re-propagation and the recomputed
    # capture run the encoder again (frame 5 for its capture, 6-9 tracked again, frame 2)
    assert runs_with == num_frames
    assert runs_without >= num_frames + 6
    assert off.features.hits == 0 and len(off.features) == 0
    assert on.features.hits > 0 and len(on.features) == num_frames


def test_budget_evicts_least_recently_used_and_recomputes_equal_features(predictor, square_video, encoder_calls,
                                                                          one_torch_thread):
    frames, masks = square_video
    s = LitSession(predictor, frames, LitConfig(mode="lit-lora"))
    s.prompt(0, 1, mask=masks[0])
    s.propagate_all()
    per_frame = s.features.nbytes // len(s.features)
    full_frames = {f: s.features.get(f, predictor.device)["backbone_fpn"] for f in range(len(frames))}

    # a second session whose budget holds 3 frames
    small = LitSession(predictor, frames, LitConfig(mode="lit-lora", feature_cache_mb=3.5 * per_frame / 2**20))
    small.prompt(0, 1, mask=masks[0])
    small.propagate_all()
    assert len(small.features) == 3 and small.features.nbytes <= small.features.budget_bytes
    assert small.features.frames() == [7, 8, 9]
    encoder_calls.clear()
    predictor.recompute_decoder_inputs(small.state, 8, 1)   # a hit: 8 becomes the most recent
    assert encoder_calls == [] and small.features.frames() == [7, 9, 8]
    predictor.recompute_decoder_inputs(small.state, 2, 1)   # a miss: recomputed, 7 (least recent) evicted
    assert encoder_calls == [1] and small.features.frames() == [9, 8, 2]
    recomputed = small.features.get(2, predictor.device)["backbone_fpn"]
    assert all(torch.equal(a, b) for a, b in zip(recomputed, full_frames[2]))
    small.reset()
    assert len(small.features) == 0 and small.features.nbytes == 0


def test_cache_off_and_bad_budget():
    assert not FeatureCache(0).enabled
    with pytest.raises(ValueError, match="feature_cache_mb"):
        LitConfig(feature_cache_mb=-1)
    cache = FeatureCache(0)
    level = torch.zeros(1, 4, 2, 2)
    cache.put(0, {"backbone_fpn": [level], "vision_pos_enc": [level]}, torch.device("cpu"))
    assert len(cache) == 0 and cache.get(0, torch.device("cpu")) is None
