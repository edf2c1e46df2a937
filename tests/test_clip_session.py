"""ClipLitSession on a tiny untrained CLIP: learning from a correction, history, bad inputs."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from litdemo.clip import (ClassListError, ClipHistory, ClipLitConfig, ClipLitSession, UnknownImageError,
                          UnknownLabelError, UnreadableImageError, WeightsUnavailableError, build_classifier,
                          build_clip, near_duplicate)
from litdemo.clip.synthetic import SyntheticFineGrained

logging.getLogger().setLevel(logging.ERROR)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def data():
    return SyntheticFineGrained(num_classes=5, images_per_class=6, seed=1)


def true_logit(session, image, label):
    clf = session.classifier
    with torch.no_grad():
        return float(clf.logits(clf.to_pixels([image]))[0, clf.label_index(label)])


@pytest.mark.parametrize("mode", ["lit-lora", "lit-ft"])
def test_a_correction_raises_the_true_logit_for_the_image_and_a_near_duplicate(data, mode):
    session = ClipLitSession.create(data.class_names, config=ClipLitConfig(mode=mode))
    index = next(i for i in range(len(data)) if session.predict(data.image(i), data.image_id(i)).predicted
                 != data.label_name(i))   # an image the model gets wrong
    image, label = data.image(index), data.label_name(index)
    twin = near_duplicate(image, np.random.default_rng(5))
    before = true_logit(session, image, label), true_logit(session, twin, label)
    event = session.correct(data.image_id(index), label)
    after = true_logit(session, image, label), true_logit(session, twin, label)
    assert after[0] > before[0] and after[1] > before[1]
    assert event.true_prob_after > event.true_prob_before
    assert event.curve.steps >= 1 and event.curve.losses[-1] < event.curve.losses[0]


def test_zero_shot_baseline_records_but_never_learns(data):
    session = ClipLitSession.create(data.class_names, config=ClipLitConfig(mode="zero-shot"))
    pred = session.predict(data.image(0), "a")
    event = session.correct("a", data.label_name(0))
    assert event.curve is None and event.true_prob_after == event.true_prob_before
    assert session.predict(data.image(0), "a").top_k == pred.top_k


def test_history_round_trips_and_feeds_the_plots(data, tmp_path):
    session = ClipLitSession.create(data.class_names, config=ClipLitConfig(top_k=3))
    wrong = 0
    for i in range(8):
        pred = session.predict(np.asarray(data.image(i)), data.image_id(i))   # numpy in works too
        assert len(pred.top_k) == 3 and pred.top_k[0][0] == pred.predicted
        if pred.predicted != data.label_name(i):
            session.correct(data.image_id(i), data.label_name(i))
            wrong += 1
    history = session.history
    assert len(history.predictions) == 8 and len(history.corrections) == wrong
    assert ClipHistory.from_json(history.to_json()) == history
    path = history.save(tmp_path / "runs" / "history.json")
    assert ClipHistory.load(path) == history
    assert "untrained" in history.model
    plot = session.plot_data(window=4)
    assert plot.images_seen == list(range(1, 9)) and plot.cumulative_corrections[-1] == wrong
    assert plot.cumulative_corrections == sorted(plot.cumulative_corrections)
    if wrong:
        assert plot.last_losses == history.corrections[-1].curve.losses


def test_bad_inputs_give_clear_errors(data, tmp_path):
    session = ClipLitSession.create(data.class_names)
    session.predict(data.image(0), "x")
    with pytest.raises(UnknownLabelError, match="'pelican'.*one of the classifier's classes"):
        session.correct("x", "pelican")
    with pytest.raises(UnknownImageError, match="'never-shown'.*predict"):
        session.correct("never-shown", data.class_names[0])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(UnreadableImageError, match="broken.jpg"):
        session.predict(broken, "b")
    with pytest.raises(UnreadableImageError, match="does not exist"):
        session.predict(tmp_path / "missing.png", "m")
    with pytest.raises(UnreadableImageError, match=r"shape \(4, 4, 2\)"):
        session.predict(np.zeros((4, 4, 2), dtype=np.uint8), "c")
    with pytest.raises(ClassListError, match="empty"):
        build_classifier([])
    with pytest.raises(ClassListError, match="duplicate class name 'sparrow '"):
        build_classifier(["Sparrow", "finch", "sparrow "])
    with pytest.raises(ValueError, match="available models"):
        build_clip("vit-z-99")
    with pytest.raises(ValueError, match="mode='fancy'"):
        ClipLitConfig(mode="fancy")
    with pytest.raises(ValueError, match="exactly one"):
        ClipLitConfig(templates=("a photo",))


def test_missing_pretrained_weights_name_the_model_and_the_way_out(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)   # as on a machine without network
    with pytest.raises(WeightsUnavailableError) as err:
        build_clip("vit-b-32", cache_dir=str(tmp_path))
    assert all(s in str(err.value) for s in ("'vit-b-32'", "'openai'", "weights_path", "cache_dir"))
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        build_clip("vit-b-32", weights_path=str(tmp_path / "nope.bin"))


def test_a_local_weights_file_is_loaded(tmp_path):
    saved = build_clip("tiny-untrained", seed=0)
    torch.save(saved.model.state_dict(), tmp_path / "tiny.pt")
    loaded = build_clip("tiny-untrained", seed=1, weights_path=str(tmp_path / "tiny.pt"))
    other = build_clip("tiny-untrained", seed=1)
    name = "visual.conv1.weight"
    assert torch.equal(loaded.model.state_dict()[name], saved.model.state_dict()[name])
    assert not torch.equal(other.model.state_dict()[name], saved.model.state_dict()[name])
    assert "untrained" not in loaded.weights and "untrained" in other.weights
