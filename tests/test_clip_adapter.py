"""LoRA placement, base weights, save/load and parity with raw open_clip, on a tiny untrained CLIP."""
from __future__ import annotations

import logging
import random

import pytest
import torch
import torch.nn.functional as F

from litdemo.clip import ClipLitConfig, ClipLitSession, build_classifier, near_duplicate
from litdemo.clip.adapter import (CONFIG_FILE, WEIGHTS_FILE, add_lora, any_merged, base_state_dict, has_lora,
                                  lora_parameters, load_adapter, merged_lora, save_adapter)
from litdemo.clip.training import Example, train_on_correction
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
    (("vision", "text"), ("in_proj",)),              # CLIP-LoRA's towers
])
def test_lora_touches_only_the_chosen_projections(data, encoders, projections):
    clf = build_classifier(data.class_names)
    cfg = ClipLitConfig(lora_rank=2, lora_encoders=encoders, lora_projections=projections)
    add_lora(clf.model, cfg)
    prefixes = {"vision": "visual.transformer.", "text": "transformer."}
    # A rank-r LoRA on a (out, in) weight holds r * (in + out) numbers; in_proj is (3w, w).
    per_proj = {"in_proj": lambda w: 2 * (w + 3 * w)}
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
    assert not any_merged(session.classifier.model)   # prediction's merged weights were put back
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


def base_tensors(model):
    """name -> (the tensor object's storage address, a copy of its values) for every base weight."""
    return {k: (v.data_ptr(), v.clone()) for k, v in base_state_dict(model).items()}


def assert_same_base(model, before):
    after = base_state_dict(model)
    assert after.keys() == before.keys()
    for k, (ptr, values) in before.items():   # the very same tensors, bit for bit
        assert after[k].data_ptr() == ptr and torch.equal(after[k], values), k


def unmerged_logits(clf, pixels):
    """The peft parametrization path (W + BA recomputed inside every forward)."""
    with torch.no_grad():
        clf.model.eval()
        return clf.logits(pixels)


@pytest.mark.parametrize("encoders", [("vision",), ("vision", "text")])
def test_merged_prediction_matches_the_parametrization_and_restores_the_base(data, encoders):
    cfg = ClipLitConfig(lr=1e-2, lora_encoders=encoders)
    session = ClipLitSession.create(data.class_names, config=cfg)
    clf = session.classifier
    pixels = clf.to_pixels([data.image(i) for i in range(6)])
    before = base_tensors(clf.model)
    for i in (0, 7, 14):   # predict (merged) -> correct (parametrization) -> predict: the cache must follow
        session.predict(data.image(i), data.image_id(i))
        session.correct(data.image_id(i), data.label_name(i))
        with torch.no_grad(), merged_lora(clf.model):
            assert any_merged(clf.model)
            merged = clf.logits(pixels)
        assert not any_merged(clf.model)
        torch.testing.assert_close(merged, unmerged_logits(clf, pixels), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(clf.probabilities(pixels), unmerged_logits(clf, pixels).softmax(-1),
                                   rtol=1e-5, atol=1e-6)
        assert_same_base(clf.model, before)
    zero = unmerged_logits(build_classifier(data.class_names, templates=cfg.templates), pixels)
    assert not torch.allclose(merged, zero, atol=1e-3)   # the LoRA did learn, so merging did something

    clf.probabilities(pixels)   # W + BA cached ...
    with torch.no_grad():       # ... then an in-place edit of B (as an optimizer step makes) must reach the next one
        next(p for n, p in clf.model.named_parameters() if "lora_B" in n and n.startswith("visual.")).add_(0.05)
    probs = clf.probabilities(pixels)
    torch.testing.assert_close(probs, unmerged_logits(clf, pixels).softmax(-1), rtol=1e-5, atol=1e-6)
    assert_same_base(clf.model, before)


def test_merged_lora_restores_the_base_on_errors_nesting_and_training(data):
    session = ClipLitSession.create(data.class_names, config=ClipLitConfig(lr=1e-2))
    clf, model = session.classifier, session.classifier.model
    session.predict(data.image(0), "a")
    session.correct("a", data.label_name(0))
    pixels = clf.to_pixels([data.image(1)])
    before = base_tensors(model)

    with pytest.raises(RuntimeError, match="boom"):   # an exception inside: weights back, bit for bit
        with torch.no_grad(), merged_lora(model):
            assert any_merged(model)
            raise RuntimeError("boom")
    assert not any_merged(model)
    assert_same_base(model, before)

    with torch.no_grad(), merged_lora(model):          # nested: the inner exit leaves the outer's merge
        with merged_lora(model.visual):
            clf.logits(pixels)
        assert any_merged(model)
    assert not any_merged(model)
    assert_same_base(model, before)

    with merged_lora(model):                           # gradients on (training): no merging at all
        assert not any_merged(model)
        clf.logits(pixels).sum().backward()
    assert all(p.grad is not None for p in lora_parameters(model))
    for p in lora_parameters(model):
        p.grad = None

    example = Example(pixels=pixels[0], label=1)       # training inside a prediction context is refused
    with pytest.raises(RuntimeError, match="merged_lora"):
        with torch.no_grad(), merged_lora(model):
            train_on_correction(clf, session._params, example, [], session.config, random.Random(0))
    assert not any_merged(model)
    assert_same_base(model, before)
    session.correct("a", data.label_name(1))           # and training afterwards still works, still unmerged
    assert not any_merged(model)
    assert_same_base(model, before)


def test_out_proj_is_refused_because_its_lora_would_never_apply():
    # nn.MultiheadAttention reads out_proj.weight without calling out_proj: a peft LoRA there is inert.
    with pytest.raises(ValueError, match="never change an output"):
        ClipLitConfig(lora_projections=("out_proj",))


def test_a_non_finite_lora_is_left_to_the_parametrization(data):
    # peft's safe merge refuses W + BA with inf/NaN; that wrapper then keeps the unmerged path,
    # so the prediction is what it was before merging existed (NaN), not an exception.
    clf = build_classifier(data.class_names)
    pixels = clf.to_pixels([data.image(0)])
    add_lora(clf.model, ClipLitConfig())
    before = base_tensors(clf.model)
    with torch.no_grad():
        next(p for n, p in clf.model.named_parameters() if "lora_B" in n).fill_(float("inf"))
    torch.testing.assert_close(clf.probabilities(pixels), unmerged_logits(clf, pixels).softmax(-1), equal_nan=True)
    assert not any_merged(clf.model)
    assert_same_base(clf.model, before)
