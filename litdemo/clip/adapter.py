"""LIT-LoRA on CLIP's attention: which weights get LoRA, injecting it once, saving it peft's way.

Placement. CLIP-LoRA (https://github.com/MaxZanella/CLIP-LoRA) puts rank-2 LoRA on q, k, v of
both towers. open_clip's ViT blocks use torch's nn.MultiheadAttention, whose q/k/v live in one
packed (3*width, width) parameter `in_proj_weight`; there is no q/k/v nn.Linear to wrap. peft
offers two ways in:
  * target_modules=["attn"]: peft's lora.MultiheadAttention. It always adapts in_proj AND
    out_proj, and it works by merging W + BA into the weight before every forward and
    subtracting it after, so the stored base weights drift by float rounding (not bit-identical).
  * target_parameters=[".../attn.in_proj_weight"]: peft's lora.ParamWrapper (a
    torch parametrization, W + BA computed on access). The base tensor is never written; we wrap
    in_proj (q/k/v packed: one A shared by q, k and v, one B each). out_proj cannot be reached
    this way: nn.MultiheadAttention reads `out_proj.weight` without calling `out_proj`.
We use the second. Default: in_proj of every image-encoder block (config.lora_* fields).
peft docs: https://huggingface.co/docs/peft/developer_guides/lora#targeting-nn-parameter-directly

Prediction speed. ParamWrapper registers and removes a torch parametrization on every wrapped
block at every forward; at batch 1 on CPU that bookkeeping, not W + BA, costs most of the
slowdown. `merged_lora(model)` (used for every no-grad prediction) swaps in W + BA as a new
tensor for the length of the call and then puts the original tensor object back, so the base
weights are the same tensors, bit for bit, before and after; training keeps the parametrization.
"""
from __future__ import annotations

import os
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

import torch
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model, set_peft_model_state_dict
from peft.tuners.lora.layer import ParamWrapper
from peft.tuners.tuners_utils import BaseTunerLayer
from safetensors.torch import load_file, save_file
from torch import nn

from ..files import atomic_dir
from .config import ClipLitConfig

ADAPTER_NAME = "default"
CONFIG_FILE = "adapter_config.json"        # peft's file names, so PeftModel tooling can read them
WEIGHTS_FILE = "adapter_model.safetensors"
_TOWER_PREFIX = {"vision": "visual.transformer.", "text": "transformer."}
_PROJECTION_SUFFIX = {"in_proj": "in_proj_weight"}


def lora_target_parameters(model: nn.Module, cfg: ClipLitConfig) -> list[str]:
    """Full names of the attention weights that get LoRA, e.g.
    'visual.transformer.resblocks.0.attn.in_proj_weight'."""
    names = []
    for tower in cfg.lora_encoders:
        prefix = _TOWER_PREFIX[tower]
        # Once LoRA is in, peft has moved each attention module to '<name>.base_layer'.
        found = [n.replace(".base_layer", "") for n, m in model.named_modules()
                 if n.startswith(prefix) and isinstance(m, nn.MultiheadAttention)]
        if not found:
            raise ValueError(f"no nn.MultiheadAttention under '{prefix}' in this {type(model).__name__}: the "
                             f"{tower} tower is not an open_clip transformer (timm/HF towers are not supported). "
                             "Use a ViT-* model from litdemo.clip.models.list_models().")
        names += [f"{n}.{_PROJECTION_SUFFIX[p]}" for n in found for p in cfg.lora_projections]
    return names


def lora_config(model: nn.Module, cfg: ClipLitConfig) -> LoraConfig:
    return LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=[],                                   # nothing by module name ...
        target_parameters=lora_target_parameters(model, cfg),  # ... only these weights
        bias="none",
    )


def has_lora(model: nn.Module) -> bool:
    return any(isinstance(m, BaseTunerLayer) for m in model.modules())


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for n, p in model.named_parameters() if "lora_" in n]


def add_lora(model: nn.Module, cfg: ClipLitConfig) -> LoraConfig:
    """Inject LoRA in place and freeze everything else. Calling it again with the same settings
    (a re-run notebook cell) returns the existing adapter instead of stacking a second one."""
    wanted = lora_config(model, cfg)
    if has_lora(model):
        existing = model.peft_config[ADAPTER_NAME]
        same = (existing.r, existing.lora_alpha, sorted(existing.target_parameters)) == \
               (wanted.r, wanted.lora_alpha, sorted(wanted.target_parameters))
        if not same:
            raise ValueError("this model already carries a different LoRA adapter; build a fresh classifier "
                             "(build_classifier) instead of injecting a second one.")
        return existing
    inject_adapter_in_model(wanted, model, adapter_name=ADAPTER_NAME)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    return wanted


def any_merged(model: nn.Module) -> bool:
    """True while some LoRA of `model` is folded into its base weight (inside merged_lora)."""
    return any(isinstance(m, ParamWrapper) and m.merged for m in model.modules())


# W + BA per ParamWrapper, reused by merged_lora until the LoRA (or base) tensors change: building
# it (fresh 7 MB tensors per ViT-B block, ~90 ms for ViT-B/32 on 2 CPU cores) costs about what
# merging saves per batch-1 forward. Keyed weakly by the wrapper: it dies with the model, and a
# deepcopy does not carry it. Any forward through the parametrization (every training step) also
# bumps the base parameter's version counter, so training always invalidates it.
_MERGED: "weakref.WeakKeyDictionary[ParamWrapper, tuple[tuple, torch.Tensor]]" = weakref.WeakKeyDictionary()


def forget_merged(model: nn.Module) -> None:
    """Drop merged_lora's cached W + BA of `model` (training and load_adapter call it; the cache
    also checks the tensors' version counters, this covers edits those miss, e.g. via `.data`)."""
    for module in model.modules():
        _MERGED.pop(module, None)


def _merge_key(module: ParamWrapper, param: nn.Parameter, adapters: list[str]) -> tuple:
    """What W + BA depends on: the base tensor, each active adapter's A, B and scaling."""
    key: list = [param.data_ptr(), param._version, tuple(param.shape), param.dtype, param.device, tuple(adapters)]
    for a in adapters:
        for w in (module.lora_A[a].weight, module.lora_B[a].weight):
            key += [w.data_ptr(), w._version]
        key.append(module.scaling[a])
    return tuple(key)


@contextmanager
def merged_lora(model: nn.Module) -> Iterator[None]:
    """Run inference with W + BA folded into each LoRA-wrapped weight, then restore W exactly.

        with torch.no_grad(), merged_lora(clf.model.visual):
            logits = clf.logits(pixels)

    For each peft ParamWrapper under `model` it keeps the base parameter's tensor, lets peft merge
    with safe_merge=True (which builds W + BA as a NEW tensor and assigns it to `param.data`, so
    the kept tensor is never written) and, on exit (exceptions included), assigns the kept tensor
    back and clears peft's merged flag. peft's unmerge() is not used: it subtracts BA again, which
    is off by float rounding. The forward then reads a plain weight, skipping the per-forward
    parametrization, and computes the same W + BA the parametrization would. The merged tensor is
    cached (see _MERGED) until A, B or W change, so repeated predictions only swap tensors.

    A no-op when gradients are enabled (training must go through the parametrization so the LoRA
    tensors get gradients), for wrappers already merged (a nested call leaves them to the outer
    one), for disabled adapters, and for a wrapper peft refuses to merge (non-finite W + BA: that one keeps the parametrization, so
    the output is what it was without merging). Not thread-safe: calls on one model must not
    overlap, nor overlap training (the app holds a per-session lock).
    """
    if torch.is_grad_enabled():
        yield
        return
    modules = list(model.modules())   # walked once: this runs at every prediction
    done: list[tuple[ParamWrapper, nn.Parameter, torch.Tensor]] = []
    try:
        for module in modules:
            if not isinstance(module, ParamWrapper) or module.merged or module.disable_adapters:
                continue
            param = module.get_param()
            adapters = [a for a in module.active_adapters if a in module.lora_A]
            key = _merge_key(module, param, adapters)
            done.append((module, param, param.data))   # before merging: a failure half-way is undone too
            cached = _MERGED.get(module)
            if cached is not None and cached[0] == key:
                param.data = cached[1]
                module.merged_adapters[:] = adapters
                continue
            try:
                module.merge(safe_merge=True)   # param.data = W.clone() + BA; W itself untouched
            except ValueError:   # "NaNs detected in the merged weights": keep the unmerged path
                _MERGED.pop(module, None)
                continue
            if module.merged:
                _MERGED[module] = (key, param.data)
        yield
    finally:
        for module, param, original in reversed(done):
            param.data = original
            module.merged_adapters.clear()


def base_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's own weights under their original names, without LoRA tensors (peft renames a
    wrapped module's weights to '<module>.base_layer.<name>')."""
    return {k.replace("base_layer.", ""): v for k, v in model.state_dict().items() if "lora_" not in k}


def save_adapter(model: nn.Module, directory: Union[str, os.PathLike]) -> Path:
    """Write adapter_config.json + adapter_model.safetensors (peft's layout) to `directory`,
    via a temporary folder renamed into place so a crash never leaves half an adapter."""
    if not has_lora(model):
        raise ValueError("the model has no LoRA adapter to save; use mode 'lit-lora' (add_lora) first.")
    directory = Path(directory)
    with atomic_dir(directory, overwrite=True) as tmp:
        model.peft_config[ADAPTER_NAME].save_pretrained(str(tmp))
        weights = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()}
        save_file(weights, str(tmp / WEIGHTS_FILE))
    return directory


def load_adapter(model: nn.Module, directory: Union[str, os.PathLike]) -> LoraConfig:
    """Load a saved adapter into `model` (injecting LoRA first if it has none)."""
    directory = Path(directory)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"adapter folder {str(directory)!r} lacks {name}; save one with "
                                    "ClipLitSession.save_adapter(path) or adapter.save_adapter(model, path).")
    saved = LoraConfig.from_pretrained(str(directory))
    if has_lora(model):
        existing = model.peft_config[ADAPTER_NAME]
        if sorted(existing.target_parameters) != sorted(saved.target_parameters) or existing.r != saved.r:
            raise ValueError(f"adapter in {str(directory)!r} targets other weights or rank than the model's LoRA; "
                             "load it into a fresh classifier.")
    else:
        inject_adapter_in_model(saved, model, adapter_name=ADAPTER_NAME)
        for name, p in model.named_parameters():
            p.requires_grad_("lora_" in name)
    forget_merged(model)
    result = set_peft_model_state_dict(model, load_file(str(directory / WEIGHTS_FILE)), adapter_name=ADAPTER_NAME)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if result.unexpected_keys or missing:
        raise ValueError(f"adapter in {str(directory)!r} does not fit this model (unexpected "
                         f"{result.unexpected_keys[:3]}, missing {missing[:3]}); was it saved from another "
                         "architecture?")
    return saved
