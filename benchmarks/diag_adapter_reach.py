"""Which part of micro's mask decoder has to move for a correction to stick? A diagnostic, not a method.

    python benchmarks/diag_adapter_reach.py                       # every variant, hard-20 .. hard-39, seed 0
    python benchmarks/diag_adapter_reach.py --variants lora:qkv ft:transformer --videos 20 21

LIT-LoRA with the paper's defaults barely fits the frame it trains on in micro's decoder (docs/micro.md).
This runs the simulated user (interactive protocol, the paper's training schedule and learning rates) with
the learned part moved around, everything else as LitConfig() has it:
- `lora:<where>`: a rank-4 LoRA (alpha 4, dropout 0.1) on other layers than q/k/v;
- `ft:<part>`: LIT-FT (the whole decoder copy trains) with only one part of it trainable.
Per variant it prints corrections and accepted suggestions per video, the median batch IoU of an
update at step 0 and at its best step ("fit"), and how far the update moved the mask logits of the
corrected frame: the median |logit| of its wrong pixels before the update (how confidently wrong the
decoder was; the mask flips at 0), the median change of those logits, and the share of them it fixed.
`--lr-scale 10` multiplies both learning rates (a diagnostic, as in bench_micro's lr-x10 part).
`--moved-from-init` instead prints how far `litdemo train-micro` moved each group of the mask decoder's
weights from their initialisation (cosine similarity with the seed-0 init the command starts from). The defaults use held-out validation videos that the
reported benchmark does not use (hard-20 .. hard-39), so nothing here is chosen on reported numbers.
LitConfig's defaults are never changed by this: the variants are patched in for this process only.
"""
from __future__ import annotations

import argparse
import statistics

import torch

import litdemo.adapters as adapters
import litdemo.learner as learner_module
from litdemo.decoder import run_decoder
from litdemo.datasets.procedural import make_procedural_video
from litdemo.methods import method_config
from litdemo.models import load_sam2
from litdemo.simulated_user import ProtocolConfig, run_simulated_user

# Where a LoRA goes (peft target regex over the decoder's module names).
LORA_TARGETS = {
    "qkv": r"^transformer\..*\.(q_proj|k_proj|v_proj)$",                      # the paper's (LitConfig's default)
    "qkv+out": r"^transformer\..*\.(q_proj|k_proj|v_proj|out_proj)$",
    "mlp": r"^transformer\..*\.mlp\.layers\.\d$",                             # the two-way blocks' MLPs
    "transformer": r"^transformer\..*\.(q_proj|k_proj|v_proj|out_proj|mlp\.layers\.\d)$",
    "hypernet": r"^output_hypernetworks_mlps\..*\.layers\.\d$",                # token -> mask weights
}
# Which part of the decoder LIT-FT may train (parameter name prefixes).
FT_PARTS = {
    "all": ("",),                                                            # LIT-FT itself
    "transformer": ("transformer.",),
    "upscaling": ("output_upscaling.",),
    "hypernet": ("output_hypernetworks_mlps.",),
    "tokens": ("mask_tokens", "iou_token", "obj_score_token"),
}
VARIANTS = ["sam2"] + [f"lora:{k}" for k in LORA_TARGETS] + [f"ft:{k}" for k in FT_PARTS]  # sam2: the baseline


def patch_variant(variant: str) -> str:
    """Patch litdemo.adapters for `variant`; returns the method ("sam2", "lit-lora" or "lit-ft") to run."""
    if variant == "sam2":
        return "sam2"
    kind, where = variant.split(":")
    if kind == "lora":
        make_config = adapters.lora_config

        def lora_config(cfg):
            config = make_config(cfg)
            config.target_modules = LORA_TARGETS[where]
            return config

        adapters.lora_config = lora_config
        return "lit-lora"
    make_decoder = adapters.make_adapted_decoder

    def make_adapted_decoder(base, cfg):
        decoder = make_decoder(base, cfg)
        for name, p in decoder.named_parameters():
            p.requires_grad_(p.requires_grad and name.startswith(FT_PARTS[where]))
        return decoder

    adapters.make_adapted_decoder = make_adapted_decoder
    return "lit-ft"


class LogitWatch:
    """Patches ObjectLearner.learn to compare the corrected frame's mask logits before and after each update."""

    def __init__(self):
        self.confidence, self.moved, self.fixed = [], [], []
        self._learn = learner_module.ObjectLearner.learn
        watch = self

        def learn(learner, sample, on_step=None):
            before = watch._logits(learner, sample, None)
            curve, index = watch._learn(learner, sample, on_step=on_step)
            watch._record(before, watch._logits(learner, sample, index), sample.target)
            return curve, index

        learner_module.ObjectLearner.learn = learn

    def restore(self) -> None:
        learner_module.ObjectLearner.learn = self._learn

    @staticmethod
    @torch.no_grad()
    def _logits(learner, sample, index):
        # before an update: the adapter it will train, or (none yet) the model's own decoder, which a new adapter equals
        decoder = learner.adapters[index].decoder if index is not None else learner.tracking_decoder()
        decoder = learner.base_decoder if decoder is None else decoder
        return run_decoder(decoder, learner.prompt, sample.inputs.to(learner.prompt.image_pe.device))

    def _record(self, before, after, target) -> None:
        truth = target > 0.5
        wrong = before.binary() != truth
        if not wrong.any():
            return
        self.confidence.append(before.mask_logits[wrong].abs().median().item())
        self.moved.append((after.mask_logits - before.mask_logits)[wrong].abs().median().item())
        self.fixed.append((after.binary() == truth)[wrong].float().mean().item())


def run_variant(variant: str, videos: list[int], lr_scale: float, checkpoint=None) -> None:
    saved = adapters.lora_config, adapters.make_adapted_decoder
    method = patch_variant(variant)
    watch = LogitWatch()
    try:
        predictor = load_sam2("micro", checkpoint=checkpoint, device="cpu")
        corrections = accepted = 0
        fit_start, fit_best = [], []
        base = method_config(method)
        config = (base if method == "sam2" else
                  method_config(method, lr_first=base.lr_first * lr_scale, lr_later=base.lr_later * lr_scale))
        for index in videos:
            run = run_simulated_user(predictor, make_procedural_video("hard", index), 1, method,
                                     protocol=ProtocolConfig(), lit_config=config)
            corrections, accepted = corrections + run.corrections, accepted + run.accepted
            for curve in run.train_curves:
                fit_start.append(curve["iou"][0])
                fit_best.append(max(curve["iou"]))
        fit = (f"{statistics.median(fit_start):.3f} -> {statistics.median(fit_best):.3f}" if fit_start else "-")
        margins = (f"{statistics.median(watch.confidence):>9.2f} {statistics.median(watch.moved):>9.2f} "
                   f"{statistics.mean(watch.fixed):>7.0%}" if watch.moved else f"{'-':>9} {'-':>9} {'-':>7}")
        print(f"{variant:>16} {corrections / len(videos):>11.2f} {accepted / len(videos):>9.2f} {fit:>15} "
              f"{len(fit_start):>7} {margins}", flush=True)
    finally:
        adapters.lora_config, adapters.make_adapted_decoder = saved
        watch.restore()


WEIGHT_GROUPS = {  # mask-decoder weight matrices, grouped by role
    "self-attention q/k/v": r"transformer\.layers\.\d\.self_attn\.[qkv]_proj\.weight",
    "cross-attention q/k/v": r"transformer\.(layers\.\d\.cross_attn_\w+|final_attn_token_to_image)\.[qkv]_proj\.weight",
    "attention outputs": r"transformer\..*out_proj\.weight",
    "MLP first layers": r"transformer\.layers\.\d\.mlp\.layers\.0\.weight",
    "MLP second layers": r"transformer\.layers\.\d\.mlp\.layers\.1\.weight",
    "hypernetwork MLPs": r"output_hypernetworks_mlps\..*\.weight",
}


def moved_from_init(checkpoint=None) -> None:
    import re

    from litdemo.micro.train import MicroTrainConfig, build_training_model

    cfg = MicroTrainConfig()
    torch.manual_seed(cfg.seed)  # as `litdemo train-micro` does before building the model
    init = build_training_model(torch.device("cpu"), cfg.point_prompts).sam_mask_decoder.state_dict()
    trained = load_sam2("micro", checkpoint=checkpoint, device="cpu").sam_mask_decoder.state_dict()
    print(f"{'weights':>22} {'cos(init, trained)':>19}  (1.00: never moved; 0: unrelated)")
    for group, pattern in WEIGHT_GROUPS.items():
        names = [n for n in trained if re.fullmatch(pattern, n)]
        cos = [torch.nn.functional.cosine_similarity(init[n].flatten(), trained[n].flatten(), dim=0).item()
               for n in names]
        print(f"{group:>22} {min(cos):>8.2f} .. {max(cos):.2f}   ({len(cos)} matrices)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    ap.add_argument("--videos", nargs="+", type=int, default=list(range(20, 40)),
                    help="hard-split indices (default 20..39: validation videos, not the reported 0..19)")
    ap.add_argument("--lr-scale", type=float, default=1.0, help="multiplies both learning rates (diagnostic)")
    ap.add_argument("--checkpoint", default=None, help="a micro checkpoint other than the shipped one")
    ap.add_argument("--moved-from-init", action="store_true", help="print how far training moved the decoder's weights")
    args = ap.parse_args()
    if args.moved_from_init:
        return moved_from_init(args.checkpoint)
    if not args.lr_scale > 0:
        raise SystemExit("--lr-scale must be > 0.")
    print(f"{'variant':>16} {'corr/video':>11} {'acc/video':>9} {'fit (median)':>15} {'updates':>7} "
          f"{'|wrong|':>9} {'moved':>9} {'fixed':>7}")
    for variant in args.variants:
        run_variant(variant, args.videos, args.lr_scale, args.checkpoint)


if __name__ == "__main__":
    main()
