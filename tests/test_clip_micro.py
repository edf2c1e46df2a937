"""The micro CLIP that ships with litdemo: hash-checked offline loading, zero-shot on classes it
never saw, LIT-LoRA with its defaults against zero-shot, and the training command itself."""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil

import numpy as np
import pytest
import torch

from litdemo.clip import WeightsHashError, ZeroShotClassifier, build_clip, run_clip_benchmark
from litdemo.clip import models as clip_models
from litdemo.clip.cli import main as clip_cli
from litdemo.clip.micro import (CHECKPOINT_FILE, METRICS_FILE, WEIGHTS_FILE, MicroTrainConfig, training_batch,
                                train_micro_clip, zero_shot_accuracy)
from litdemo.clip.synthetic import ALL_CLASSES, HELDOUT_CLASSES, TRAIN_CLASSES, SyntheticFineGrained, class_name

logging.getLogger().setLevel(logging.ERROR)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

# Floors stated in docs/clip.md ("Model card: micro CLIP"); chance among the 12 held-out classes is 1/12.
HELDOUT_ZERO_SHOT_FLOOR = 0.5


@pytest.fixture(scope="module")
def micro():
    return build_clip("micro")


@pytest.fixture(scope="module")
def heldout():
    # The benchmark's images (docs/clip.md): held-out classes only, dataset seed 0.
    return SyntheticFineGrained(classes="heldout", images_per_class=20, image_size=64, seed=0)


def test_the_split_keeps_heldout_classes_out_of_training():
    assert len(HELDOUT_CLASSES) == 12 and len(TRAIN_CLASSES) == 48
    assert not set(HELDOUT_CLASSES) & set(TRAIN_CLASSES)
    assert sorted(HELDOUT_CLASSES + TRAIN_CLASSES) == sorted(ALL_CLASSES)
    for attributes in HELDOUT_CLASSES:   # a near-twin of trained classes: same but for one attribute
        assert any(sum(a != b for a, b in zip(attributes, t)) == 1 for t in TRAIN_CLASSES)
    for position in range(3):            # every word of a held-out class name was seen in training
        assert {c[position] for c in HELDOUT_CLASSES} <= {c[position] for c in TRAIN_CLASSES}


def test_micro_clip_loads_offline_from_the_package_with_its_hash_checked(micro):
    spec = clip_models.get_spec("micro")
    path = clip_models.shipped_weights(spec)
    assert clip_models.sha256_of(path) == spec.sha256
    assert path.stat().st_size <= 8 * 1024 * 1024
    assert not spec.untrained and "micro CLIP, trained on synthetic images" in micro.label
    saved = torch.load(path, map_location="cpu", weights_only=True)
    state = micro.model.state_dict()
    assert saved.keys() == state.keys()
    assert all(torch.equal(saved[k].float(), state[k]) for k in saved)   # the file is what got loaded
    assert micro.preprocess.transforms[0].size in (32, [32], (32, 32))   # the registered config's 32 px


def test_a_wrong_hash_or_a_corrupt_file_is_refused(tmp_path, monkeypatch):
    spec = clip_models.get_spec("micro")
    monkeypatch.setitem(clip_models.MODELS, "micro", dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(WeightsHashError, match="refusing to load .*sha256.*Reinstall litdemo"):
        build_clip("micro")
    corrupt = tmp_path / "micro_clip.pt"
    shutil.copy(clip_models.shipped_weights(spec), corrupt)
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(WeightsHashError, match=str(corrupt)):
        clip_models.shipped_weights(dataclasses.replace(spec, weights_file=str(corrupt)))   # absolute path wins


def test_zero_shot_on_heldout_classes_is_above_the_floor(micro, heldout):
    # All 240 benchmark images, through the same classifier the sessions use.
    classifier = ZeroShotClassifier(micro, heldout.class_names, templates=heldout.templates)
    predicted = []
    for start in range(0, len(heldout), 60):
        pixels = classifier.to_pixels([heldout.image(i) for i in range(start, min(start + 60, len(heldout)))])
        predicted += classifier.probabilities(pixels).argmax(dim=-1).tolist()
    accuracy = float(np.mean(np.array(predicted) == np.array(heldout.labels)))
    assert accuracy >= HELDOUT_ZERO_SHOT_FLOOR, accuracy
    assert accuracy < 1.0   # and it still makes mistakes for LIT to fix
    # The metrics' own pictures (another generator) tell the same story.
    assert zero_shot_accuracy(micro.model, micro.preprocess, micro.tokenizer, HELDOUT_CLASSES, seed=1,
                              per_class=5) >= HELDOUT_ZERO_SHOT_FLOOR


def test_lit_lora_with_defaults_needs_fewer_corrections_than_zero_shot(heldout, tmp_path):
    # The benchmark's own streams (docs/clip.md), three of its five seeds, default ClipLitConfig.
    seeds = (0, 1, 2)
    result = run_clip_benchmark(heldout, model="micro", modes=("zero-shot", "lit-lora"), seeds=seeds,
                                stream_length=60, eval_size=100)
    by = {(r["mode"], r["seed"]): r for r in result.rows}
    for seed in seeds:
        zero, lit = by[("zero-shot", seed)], by[("lit-lora", seed)]
        assert 0 < lit["corrections"] < zero["corrections"], (seed, zero["corrections"], lit["corrections"])
        assert zero["stream_accuracy"] > 2 / 12   # well above chance (1/12)
    assert not result.info["untrained"] and "micro CLIP" in result.to_markdown()


def test_the_training_command_runs_and_writes_loadable_weights(tmp_path, capsys):
    out = tmp_path / "run"
    code = clip_cli(["clip-train-micro", "--out", str(out), "--steps", "3", "--warmup-steps", "2",
                     "--checkpoint-every", "2", "--eval-images-per-class", "1", "--no-progress"])
    assert code == 0
    metrics = json.loads((out / METRICS_FILE).read_text())
    assert metrics["config"]["steps"] == 3 and metrics["torch_threads"] == 1
    assert metrics["sha256"] in capsys.readouterr().out
    assert np.isfinite(metrics["loss_first_20_mean"])
    state = torch.load(out / CHECKPOINT_FILE, weights_only=True)
    assert state["step"] == 3 and len(state["losses"]) == 3
    loaded = build_clip("micro", weights_path=str(out / WEIGHTS_FILE))   # open_clip's own file loading
    saved = torch.load(out / WEIGHTS_FILE, weights_only=True)
    assert torch.equal(loaded.model.state_dict()["visual.conv1.weight"], saved["visual.conv1.weight"].float())
    assert str(out / WEIGHTS_FILE) in loaded.label


def test_training_is_deterministic_and_a_killed_run_resumes_to_the_same_weights(tmp_path):
    cfg = MicroTrainConfig(steps=4, warmup_steps=2, checkpoint_every=2, eval_images_per_class=1)
    straight = train_micro_clip(tmp_path / "straight", cfg, progress=False)
    assert train_micro_clip(tmp_path / "killed", cfg, progress=False, stop_after=2) is None   # "killed" at step 2
    assert torch.load(tmp_path / "killed" / CHECKPOINT_FILE, weights_only=True)["step"] == 2
    resumed = train_micro_clip(tmp_path / "killed", cfg, progress=False)
    assert resumed.weights.read_bytes() == straight.weights.read_bytes()
    assert resumed.metrics["sha256"] == straight.metrics["sha256"]
    other = train_micro_clip(tmp_path / "seed1", dataclasses.replace(cfg, seed=1), progress=False)
    assert other.metrics["sha256"] != straight.metrics["sha256"]
    with pytest.raises(ValueError, match="other settings.*steps"):
        train_micro_clip(tmp_path / "killed", dataclasses.replace(cfg, steps=5), progress=False)


def test_training_batches_cover_the_training_classes_and_differ_by_step():
    from litdemo.clip.micro import build_untrained

    _, preprocess, tokenizer = build_untrained(0)
    pixels, tokens = training_batch(0, 0, preprocess, tokenizer)
    assert pixels.shape == (len(TRAIN_CLASSES), 3, 32, 32) and tokens.shape[0] == len(TRAIN_CLASSES)
    again, _ = training_batch(0, 0, preprocess, tokenizer)
    later, _ = training_batch(0, 1, preprocess, tokenizer)
    assert torch.equal(pixels, again) and not torch.equal(pixels, later)


def test_the_app_clip_tab_offers_the_micro_clip_on_heldout_classes():
    from litdemo.app.clip_tab import ClipTab, clip_correct, clip_start

    tab = ClipTab()
    view = clip_start(tab, "micro", "lit-lora")
    assert "micro CLIP, trained on synthetic images" in view["clip_status"]
    assert view["labels"]["choices"] == [class_name(c) for c in HELDOUT_CLASSES]
    truth = view["clip_info"].split("ground truth: ")[1].split(")")[0]
    event_view = clip_correct(tab, truth)
    assert "P(true class)" in event_view["clip_info"] and len(tab.session.history.corrections) == 1
