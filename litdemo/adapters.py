"""Adapted copies of SAM2's mask decoder: a peft LoRA (LIT-LoRA) or a full copy (LIT-FT).

The base model is never touched: we deep-copy `sam_mask_decoder`, freeze the copy, and let
peft inject LoRA into the two-way transformer's q/k/v projections. Saved adapters use peft's
standard layout (adapter_model.safetensors + adapter_config.json) so `PeftModel.from_pretrained`
can load them on any copy of the SAM2.1 mask decoder.

Randomness is the adapter's own: a `torch.Generator` seeded with `LitConfig.seed` draws LoRA A's
initial weights and every LoRA dropout mask, so the process-wide generator (shared by every tab
of the app, and by whoever else runs in the process) is neither reseeded nor drawn from.
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Union

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft.tuners.lora import LoraLayer
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import LitConfig
from .files import atomic_dir

# The decoder's own projections that feed features in, not through, the transformer: SAM2 calls
# them in `forward_image`, so they never see a gradient from the decoder's forward pass.
_NOT_IN_DECODER_FORWARD = ("conv_s0", "conv_s1")


class AdapterError(ValueError):
    """A saved adapter that cannot be loaded as it is; the message names the file and what is wrong."""


class SeededDropout(torch.nn.Module):
    """Dropout whose masks come from its own generator (peft's `nn.Dropout` draws from the global one).

    `seed` starts the stream; a generator is made on the device of the first input (and again
    if the decoder moves), so the masks stay on the device without a copy.
    """

    def __init__(self, p: float, seed: int):
        super().__init__()
        self.p, self.seed = float(p), int(seed)
        self._generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self._generator is None or self._generator.device != x.device:
            self._generator = torch.Generator(device=x.device).manual_seed(self.seed)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self._generator)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, seed={self.seed}"


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
        decoder = _inject_lora(decoder, lora_config(cfg))
        _seed_lora(decoder, torch.Generator().manual_seed(cfg.seed), init=True)
    elif cfg.mode == "lit-ft":
        for name, p in decoder.named_parameters():
            p.requires_grad_(not name.startswith(_NOT_IN_DECODER_FORWARD))
    else:
        raise ValueError(f"mode {cfg.mode!r} has no adapter; use 'lit-lora' or 'lit-ft'.")
    # Eval mode everywhere, as in SAM2's tracking (it decides e.g. dynamic multimask selection);
    # only LoRA's dropout is switched to training mode while we train (see `training_mode`).
    decoder.eval()
    return decoder


def make_expert_decoder(base_decoder: torch.nn.Module, cfg: LitConfig, index: int,
                        device: torch.device) -> torch.nn.Module:
    """The `index`-th adapted decoder of one object's learner, on `device`. It is seeded with
    cfg.seed + index, so the experts of a multi-LoRA learner do not start identical."""
    seeded = type(cfg)(**{**cfg.to_dict(), "seed": cfg.seed + index})
    return make_adapted_decoder(base_decoder, seeded).to(device)


def _inject_lora(decoder: torch.nn.Module, config: LoraConfig) -> PeftModel:
    # peft initialises LoRA A from the global generator; fork_rng puts the global state back
    # afterwards (those draws are replaced from the adapter's own generator by `_seed_lora`).
    with torch.random.fork_rng(devices=[]):
        return get_peft_model(decoder, config)


def _seed_lora(decoder: torch.nn.Module, generator: torch.Generator, init: bool) -> None:
    """Give every LoRA layer its dropout seed from `generator` and (init=True) draw LoRA A from it.

    A is drawn as peft draws it by default (Kaiming-uniform, a=sqrt(5)); B stays zero, so a new
    adapter still changes nothing until it has trained.
    """
    for module in decoder.modules():
        if not isinstance(module, LoraLayer):
            continue
        for name, dropout in list(module.lora_dropout.items()):
            if init:
                with torch.no_grad():
                    torch.nn.init.kaiming_uniform_(module.lora_A[name].weight, a=math.sqrt(5), generator=generator)
            p = dropout.p if isinstance(dropout, (torch.nn.Dropout, SeededDropout)) else 0.0
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            module.lora_dropout[name] = SeededDropout(p, seed)


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
    """Rebuild an adapted decoder saved by `save_adapter` on top of a fresh copy of `base_decoder`.

    Every tensor of the file must be one the decoder has, of its shape and finite, and every
    trainable tensor must be in the file; otherwise AdapterError names the file and what is wrong
    (a partial or mismatched load would silently give another model). `cfg.seed` seeds dropout.
    """
    folder = Path(folder)
    if (folder / "adapter_config.json").is_file():
        return _load_lora(base_decoder, folder, cfg)
    if (folder / "model.safetensors").is_file():
        decoder = make_adapted_decoder(base_decoder, LitConfig(**{**cfg.to_dict(), "mode": "lit-ft"}))
        weights = _read_tensors(folder / "model.safetensors")
        _check_tensors(folder / "model.safetensors", weights, trainable_state(decoder))
        load_trainable_state(decoder, weights)
        return decoder
    raise FileNotFoundError(f"{folder} holds no adapter (expected adapter_config.json + adapter_model.safetensors "
                            f"for LIT-LoRA or model.safetensors for LIT-FT).")


def _load_lora(base_decoder: torch.nn.Module, folder: Path, cfg: LitConfig) -> PeftModel:
    config_file = folder / "adapter_config.json"
    try:
        json.loads(config_file.read_text())  # a clear error for a broken file before peft reads it
        config = LoraConfig.from_pretrained(str(folder))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as err:
        raise AdapterError(f"{config_file} is not a readable peft LoRA config ({type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else 'no details'}); "
                           f"export the adapter again.") from None
    if not isinstance(config, LoraConfig):
        raise AdapterError(f"{config_file} describes a {type(config).__name__}, not a LoRA adapter.")
    config.inference_mode = False  # trainable after loading, as a fresh adapter
    weights = _read_tensors(folder / "adapter_model.safetensors")
    try:
        decoder = _inject_lora(copy.deepcopy(base_decoder).requires_grad_(False), config)
    except (ValueError, TypeError, KeyError) as err:
        raise AdapterError(f"{config_file} does not fit this SAM2 mask decoder ({str(err).splitlines()[0]}); "
                           f"was it saved from another model?") from None
    _check_tensors(folder / "adapter_model.safetensors", weights, get_peft_model_state_dict(decoder),
                   needs=f"the decoder with the LoRA that {config_file.name} describes (r={config.r})")
    set_peft_model_state_dict(decoder, weights)
    _seed_lora(decoder, torch.Generator().manual_seed(cfg.seed), init=False)
    decoder.eval()
    return decoder


def _read_tensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(file)
    except (OSError, SafetensorError) as err:
        raise AdapterError(f"{file} is damaged or not a safetensors file ({err}); export the adapter again.") from None


def _check_tensors(file: Path, found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor],
                   needs: str = "the decoder") -> None:
    """Refuse unless `found` has exactly the names and shapes of `expected`, all finite."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of its {len(expected)} tensors are missing (e.g. '{missing[0]}')")
        if unexpected:
            parts.append(f"{len(unexpected)} tensors are not in this decoder (e.g. '{unexpected[0]}')")
        raise AdapterError(f"{file} does not match the decoder: {' and '.join(parts)}; it was saved from another "
                           f"model or edited. Export the adapter again.")
    for name, tensor in found.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise AdapterError(f"{file}: tensor '{name}' has shape {tuple(tensor.shape)} but {needs} needs "
                               f"{tuple(expected[name].shape)}; the weights and the config do not belong together "
                               f"(was the LoRA rank changed?). Export the adapter again.")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise AdapterError(f"{file}: tensor '{name}' holds NaN or infinite values; such weights are never "
                               f"loaded. Export the adapter again from a healthy session.")
