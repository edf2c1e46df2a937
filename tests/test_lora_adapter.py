"""The adapter itself: what peft injects, what trains, what stays frozen."""
import torch
from peft.tuners.lora import LoraLayer

from litdemo.adapters import count_trainable, load_adapter, make_adapted_decoder, save_adapter
from litdemo.config import LitConfig
from litdemo.decoder import DecoderInputs, EmptyPrompt, run_decoder
from litdemo.models import build_architecture


def random_decoder_inputs(predictor, batch, generator=None):
    """Decoder inputs shaped for this predictor's input size: image embedding at 1/16, high-res features at 1/4, 1/8."""
    side = predictor.image_size
    return DecoderInputs(torch.randn(batch, 256, side // 16, side // 16, generator=generator),
                         (torch.randn(batch, 32, side // 4, side // 4, generator=generator),
                          torch.randn(batch, 64, side // 8, side // 8, generator=generator)))


def expected_lora_params(decoder, rank):
    """r * (in + out) for every q/k/v Linear inside the two-way transformer, counted from the module tree."""
    total = 0
    for name, module in decoder.transformer.named_modules():
        if name.split(".")[-1] in ("q_proj", "k_proj", "v_proj"):
            total += rank * (module.in_features + module.out_features)
    return total


def test_lora_counts_and_targets_for_every_size():
    for size in ("tiny", "large"):
        base = build_architecture(size, image_size=256).sam_mask_decoder
        adapted = make_adapted_decoder(base, LitConfig())
        expected = expected_lora_params(base, rank=4)
        assert count_trainable(adapted) == expected
        assert 30_000 < expected < 40_000  # "about 35K" as the paper says
        lora_layers = [n for n, m in adapted.named_modules() if isinstance(m, LoraLayer)]
        assert len(lora_layers) == 2 * 3 * 3 + 3  # 2 blocks x 3 attentions x q/k/v + final attention q/k/v
        assert all(".transformer." in n and n.split(".")[-1] in ("q_proj", "k_proj", "v_proj") for n in lora_layers)
        trainable = [n for n, p in adapted.named_parameters() if p.requires_grad]
        assert all("lora_" in n for n in trainable)
        # the base decoder itself is untouched: no LoRA layer, nothing made trainable by us
        assert not any(isinstance(m, LoraLayer) for m in base.modules())


def test_fresh_lora_equals_base_decoder_and_refuses_double_wrap(predictor):
    base = predictor.sam_mask_decoder
    adapted = make_adapted_decoder(base, LitConfig())
    prompt = EmptyPrompt(predictor)
    g = torch.Generator().manual_seed(0)
    inputs = random_decoder_inputs(predictor, 2, g)
    with torch.no_grad():
        a, b = run_decoder(base, prompt, inputs), run_decoder(adapted, prompt, inputs)
    # peft initialises LoRA B to zero: before training the adapter changes nothing
    assert torch.equal(a.mask_logits, b.mask_logits)
    assert torch.equal(a.object_score, b.object_score)
    try:
        make_adapted_decoder(adapted, LitConfig())
    except ValueError as err:
        assert "already carries LoRA" in str(err)
    else:
        raise AssertionError("wrapping an adapted decoder twice must fail")


def test_lit_ft_trains_the_whole_decoder_but_not_its_feature_projections(predictor):
    base = predictor.sam_mask_decoder
    adapted = make_adapted_decoder(base, LitConfig(mode="lit-ft"))
    total = sum(p.numel() for p in base.parameters())
    skipped = sum(p.numel() for n, p in base.named_parameters() if n.startswith(("conv_s0", "conv_s1")))
    assert count_trainable(adapted) == total - skipped


def test_adapter_saves_in_peft_format_and_loads_back(predictor, tmp_path):
    base = predictor.sam_mask_decoder
    adapted = make_adapted_decoder(base, LitConfig())
    with torch.no_grad():
        for n, p in adapted.named_parameters():
            if "lora_B" in n:
                p.normal_()
    folder = save_adapter(adapted, tmp_path / "a")
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    loaded = load_adapter(base, folder, LitConfig())
    prompt = EmptyPrompt(predictor)
    inputs = random_decoder_inputs(predictor, 1)
    with torch.no_grad():
        assert torch.allclose(run_decoder(adapted, prompt, inputs).mask_logits,
                              run_decoder(loaded, prompt, inputs).mask_logits)
        assert not torch.allclose(run_decoder(base, prompt, inputs).mask_logits,
                                  run_decoder(loaded, prompt, inputs).mask_logits)
