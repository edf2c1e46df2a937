"""LoRA placement, base weights, save/load and parity with raw open_clip, on a tiny untrained CLIP."""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from litdemo.clip import ClipLitConfig, ClipLitSession, build_classifier, near_duplicate
from litdemo.clip.adapter import (CONFIG_FILE, WEIGHTS_FILE, add_lora, base_state_dict, has_lora,
                                  lora_parameters, load_adapter, save_adapter)
from litdemo.clip.synthetic import SyntheticFineGrained

logging.getLogger().setLevel(logging.ERROR)   # open_clip logs "no pretrained weights" for every build


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def data():
    return SyntheticFineGrained(num_classes=5, images_per_class=6, seed=3)


def attention_widths(model, prefix):
    return [m.embed_dim for n, m in model.named_modules()
            if n.startswith(prefix) and isinstance(m, torch.nn.MultiheadAttention)]


@pytest.mark.parametrize("encoders,projections", [
    (("vision",), ("in_proj",)),                     # the default
    (("vision",), ("out_proj",)),
    (("vision", "text"), ("in_proj",)),              # CLIP-LoRA's towers
])
def test_lora_touches_only_the_chosen_projections(data, encoders, projections):
    clf = build_classifier(data.class_names)
    cfg = ClipLitConfig(lora_rank=2, lora_encoders=encoders, lora_projections=projections)
    add_lora(clf.model, cfg)
    prefixes = {"vision": "visual.transformer.", "text": "transformer."}
    # A rank-r LoRA on a (out, in) weight holds r * (in + out) numbers; in_proj is (3w, w), out_proj (w, w).
    per_proj = {"in_proj": lambda w: 2 * (w + 3 * w), "out_proj": lambda w: 2 * (w + w)}
    expected = sum(per_proj[p](w) for e in encoders for w in attention_widths(clf.model, prefixes[e])
                   for p in projections)
    trainable = {n: p for n, p in clf.model.named_parameters() if p.requires_grad}
    assert sum(p.numel() for p in trainable.values()) == expected
    assert all("lora_" in n for n in trainable)
    for name in trainable:   # every LoRA tensor sits on an attention block of a chosen tower
        assert ".attn." in name and any(name.startswith(prefixes[e]) for e in encoders)
    if "text" not in encoders:
        assert not any(n.startswith("transformer.") for n in trainable)


def test_lora_injection_is_guarded(data):
    clf = build_classifier(data.class_names)
    cfg = ClipLitConfig()
    add_lora(clf.model, cfg)
    count = len(lora_parameters(clf.model))
    add_lora(clf.model, cfg)        # a re-run notebook cell: no second adapter
    ClipLitSession(clf, cfg)        # nor when a session is made on the same classifier
    assert len(lora_parameters(clf.model)) == count
    with pytest.raises(ValueError, match="already carries a different LoRA"):
        add_lora(clf.model, ClipLitConfig(lora_rank=4))


def test_base_weights_stay_bit_identical_after_training(data):
    session = ClipLitSession.create(data.class_names, config=ClipLitConfig(lr=1e-2))
    before = {k: v.clone() for k, v in base_state_dict(session.classifier.model).items()}
    for i in range(0, len(data), 5):
        session.predict(data.image(i), data.image_id(i))
        session.correct(data.image_id(i), data.label_name(i))
    after = base_state_dict(session.classifier.model)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(float(p.detach().abs().sum()) > 0 for n, p in session.classifier.model.named_parameters() if "lora_B" in n)


def test_adapter_save_load_round_trip(data, tmp_path):
    session = ClipLitSession.create(data.class_names, config=ClipLitConfig(lr=1e-2))
    for i in (0, 7, 14):
        session.predict(data.image(i), data.image_id(i))
        session.correct(data.image_id(i), data.label_name(i))
    out = session.save_adapter(tmp_path / "adapter")
    assert (out / CONFIG_FILE).is_file() and (out / WEIGHTS_FILE).is_file()
    pixels = session.classifier.to_pixels([data.image(i) for i in range(4)])

    fresh = ClipLitSession.create(data.class_names, config=ClipLitConfig(mode="zero-shot"))
    zero_shot = fresh.classifier.probabilities(pixels)
    load_adapter(fresh.classifier.model, out)   # injects LoRA into a model that had none
    assert has_lora(fresh.classifier.model)
    torch.testing.assert_close(fresh.classifier.probabilities(pixels), session.classifier.probabilities(pixels))
    assert not torch.allclose(zero_shot, session.classifier.probabilities(pixels))

    other = build_classifier(data.class_names)
    add_lora(other.model, ClipLitConfig(lora_rank=4))
    with pytest.raises(ValueError, match="other weights or rank"):
        load_adapter(other.model, out)
    with pytest.raises(FileNotFoundError, match=WEIGHTS_FILE):
        (out / WEIGHTS_FILE).unlink()
        load_adapter(build_classifier(data.class_names).model, out)


def test_classifier_matches_raw_open_clip_and_fresh_lora_changes_nothing(data):
    clf = build_classifier(data.class_names, templates=("a photo of a {}.", "a drawing of a {}."))
    pixels = clf.to_pixels([data.image(0), near_duplicate(data.image(1))])
    model, tok = clf.clip.model, clf.clip.tokenizer
    with torch.no_grad():   # CLIP's zero-shot recipe written out by hand
        text = torch.stack([F.normalize(F.normalize(model.encode_text(tok([t.format(n) for t in clf.templates])),
                                                    dim=-1).mean(0), dim=0) for n in clf.class_names])
        image = F.normalize(model.encode_image(pixels), dim=-1)
        raw = (model.logit_scale.exp() * image @ text.t()).softmax(-1)
    torch.testing.assert_close(clf.probabilities(pixels), raw)
    add_lora(clf.model, ClipLitConfig())   # LoRA's B starts at zero: outputs must not move
    torch.testing.assert_close(clf.probabilities(pixels), raw)
