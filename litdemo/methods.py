"""The benchmark's methods: one registry mapping a short name to the LitConfig that runs it.

    method_config("lit-lora")              -> LitConfig(mode="lit-lora")
    method_config("lit-lora-3", seed=1)    -> LitConfig(mode="lit-lora", max_adapters=3, seed=1)

Every method runs through the same `LitSession` code; only the config differs, so a difference
in corrections comes from what is learned, never from a different code path.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .config import LitConfig


@dataclass(frozen=True)
class MethodSpec:
    name: str
    description: str                                # one line for tables, the CLI help and errors
    settings: dict = field(default_factory=dict)    # LitConfig fields that differ from the paper's defaults


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("sam2", "plain SAM2 (the baseline): nothing learns", {"mode": "sam2"}),
        MethodSpec("lit-lora", "LIT-LoRA, the paper's method: one LoRA on the mask decoder",
                   {"mode": "lit-lora"}),
        MethodSpec("lit-lora-3", "LIT-LoRA with up to 3 adapters per object (the most confident suggests)",
                   {"mode": "lit-lora", "max_adapters": 3}),
        MethodSpec("lit-lora-prop", "LIT-LoRA whose adapted decoder is also used while propagating",
                   {"mode": "lit-lora", "use_adapter_in_propagation": True}),
        MethodSpec("lit-ft", "LIT-FT, the paper's ablation: the whole copied mask decoder is fine-tuned",
                   {"mode": "lit-ft"}),
    )
}

BASELINE = "sam2"  # what reductions are measured against


def method_spec(name: str) -> MethodSpec:
    if name not in METHODS:
        valid = "; ".join(f"{k} ({v.description})" for k, v in METHODS.items())
        raise ValueError(f"Unknown method {name!r}. Valid methods: {valid}.")
    return METHODS[name]


def method_config(name: str, **overrides) -> LitConfig:
    """The LitConfig of method `name`; `overrides` (e.g. seed=1, steps_first=50) are applied on top."""
    spec = method_spec(name)
    return LitConfig(**{**spec.settings, **overrides})


def check_methods(names) -> tuple[str, ...]:
    """Validate a list of method names (no duplicates, all known) before any work starts."""
    names = tuple(names)
    if not names:
        raise ValueError(f"No method given; choose from {', '.join(METHODS)}.")
    for name in names:
        method_spec(name)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"Method(s) {dupes} listed twice; list each method once.")
    return names
