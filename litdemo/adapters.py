"""Adapted copies of SAM2's mask decoder: a peft LoRA (LIT-LoRA) or a full copy (LIT-FT).

The base model is never touched: we deep-copy `sam_mask_decoder`, freeze the copy, and let
peft inject LoRA into the two-way transformer's q/k/v projections. Saved adapters use peft's
standard layout (adapter_model.safetensors + adapter_config.json) so `PeftModel.from_pretrained`
can load them on any copy of the SAM2.1 mask decoder.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Union

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from safetensors.torch import load_file, save_file

from .config import LitConfig
from .files import atomic_dir

# The decoder's own projections that feed features in, not through, the transformer: SAM2 calls
# them in `forward_image`, so they never see a gradient from the decoder's forward pass.
_NOT_IN_DECODER_FORWARD = ("conv_s0", "conv_s1")


def lora_config(cfg: LitConfig) -> LoraConfig:
    # The regex keeps LoRA inside the two-way transformer (`transformer.layers.*` and its final
    # token->image attention); a bare "q_proj" would also match any future head of the decoder.
    targets = "|".join(cfg.lora_targets)
    return LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=rf"^transformer\..*\.({targets})$",
        bias="none",
    )


def make_adapted_decoder(base_decoder: torch.nn.Module, cfg: LitConfig) -> torch.nn.Module:
    """A trainable copy of `base_decoder` for cfg.mode ('lit-lora' or 'lit-ft')."""
    if isinstance(base_decoder, PeftModel) or any(isinstance(m, LoraLayer) for m in base_decoder.modules()):
        raise ValueError("This decoder already carries LoRA layers; adapt SAM2's own `sam_mask_decoder`, "
                         "not an adapted copy (was a notebook cell run twice?).")
    decoder = copy.deepcopy(base_decoder)
    decoder.requires_grad_(False)
    if cfg.mode == "lit-lora":
        torch.manual_seed(cfg.seed)  # LoRA A is random: seed it for reproducible runs
        decoder = get_peft_model(decoder, lora_config(cfg))
    elif cfg.mode == "lit-ft":
        for name, p in decoder.named_parameters():
            p.requires_grad_(not name.startswith(_NOT_IN_DECODER_FORWARD))
    else:
        raise ValueError(f"mode {cfg.mode!r} has no adapter; use 'lit-lora' or 'lit-ft'.")
    # Eval mode everywhere, as in SAM2's tracking (it decides e.g. dynamic multimask selection);
    # only LoRA's dropout is switched to training mode while we train (see `training_mode`).
    decoder.eval()
    return decoder


def trainable_parameters(decoder: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in decoder.parameters() if p.requires_grad]


def count_trainable(decoder: torch.nn.Module) -> int:
    return sum(p.numel() for p in trainable_parameters(decoder))


class training_mode:
    """Context: LoRA dropout on, everything else of the decoder in eval mode (as at inference)."""

    def __init__(self, decoder: torch.nn.Module):
        self.dropouts = [m for name, m in decoder.named_modules() if "lora_dropout" in name]

    def __enter__(self):
        for m in self.dropouts:
            m.train()

    def __exit__(self, *exc):
        for m in self.dropouts:
            m.eval()


def trainable_state(decoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the trainable tensors (to remember the best training step)."""
    return {n: p.detach().clone() for n, p in decoder.named_parameters() if p.requires_grad}


def load_trainable_state(decoder: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(decoder.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


def save_adapter(decoder: torch.nn.Module, folder: Union[str, Path], extra: dict | None = None) -> Path:
    """Save one adapted decoder; written to a temp folder first so a crash leaves nothing half-written.

    LIT-LoRA: peft's format. LIT-FT: the decoder's trainable weights as model.safetensors.
    """
    folder = Path(folder)
    with atomic_dir(folder, overwrite=True) as tmp:
        if isinstance(decoder, PeftModel):
            decoder.save_pretrained(tmp)
        else:
            save_file({n: t.contiguous() for n, t in trainable_state(decoder).items()}, tmp / "model.safetensors")
        (tmp / "litdemo.json").write_text(json.dumps(extra or {}, indent=2))
    return folder


def load_adapter(base_decoder: torch.nn.Module, folder: Union[str, Path], cfg: LitConfig) -> torch.nn.Module:
    """Rebuild an adapted decoder saved by `save_adapter` on top of a fresh copy of `base_decoder`."""
    folder = Path(folder)
    if (folder / "adapter_config.json").is_file():
        decoder = PeftModel.from_pretrained(copy.deepcopy(base_decoder).requires_grad_(False), folder,
                                            is_trainable=True)
        decoder.eval()
        return decoder
    if (folder / "model.safetensors").is_file():
        decoder = make_adapted_decoder(base_decoder, LitConfig(**{**cfg.to_dict(), "mode": "lit-ft"}))
        load_trainable_state(decoder, load_file(folder / "model.safetensors"))
        return decoder
    raise FileNotFoundError(f"{folder} holds no adapter (expected adapter_config.json + adapter_model.safetensors "
                            f"for LIT-LoRA or model.safetensors for LIT-FT).")
