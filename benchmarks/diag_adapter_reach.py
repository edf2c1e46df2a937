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
decoder was; the mask flips at 0), the median change of those logits, and the share of them it fixed;
for a LoRA also how large the adapter's change is next to the layers it adapts (|dW|/|W|: the median over
updates of the median over layers of ||scaling * B A||_2 / ||W||_2, the adapter so far, after the update).
`--lr-scale 10` multiplies both learning rates (a diagnostic, as in bench_micro's lr-x10 part).
`--moved-from-init` instead prints how far `litdemo train-micro` moved each group of the mask decoder's
weights from the seed-0 initialisation the command starts from: the cosine between them, and the change
itself (trained - init) as a matrix: its largest singular value against the init's (a change as large as
the layer's own strongest direction reshapes what the layer does) and the share of its energy in its top 4
directions (21-29% for random matrices of the attention layers' shapes, near 100% for a learned low-rank
change). A cosine over all entries alone hides such a change: a rank-1 change as large as the init's
largest singular value leaves the cosine at ~0.97 for a 64 x 64 layer.
`--gauge C` first rescales every attention block of the decoder without changing what it computes (q and v
projections x C, k projections and the output projection's weight / C: each attention score q.k and each output
is the same number) and runs the variants on that decoder. SAM2 alone gives the same corrections; a LoRA trained
with Adam at a fixed learning rate does not: its update to q or v now counts 1/C times as much in the scores and
outputs, its update to k C times. So whether the paper's rates "reach" a decoder depends on the scale its own
training left in these layers, not on what the decoder computes.
`--decoder-heads N` splits every attention block of the decoder into N heads instead of sam2's fixed 8 (the
weights stay as they are; the function changes): micro's 64 channels make heads of 8 (4 in the cross-attention,
which halves its width), where SAM2.1's 256 make heads of 32 (16). Only for a checkpoint trained with N heads
(`diag_longer_tail.py --decoder-heads N`), whose file cannot say so itself.
`--width W` loads a `--checkpoint` that `litdemo train-micro --width W` wrote (neck, memory attention and decoder
W wide; 256 is SAM2.1's width and heads of 32, a diagnostic model over the micro issue's 3 M parameters).
`--norms` prints the largest singular value of each attention block's q, k, v and output projections, in
the gauge training left them (0.86-1.90 on the shipped micro, where the seed-0 initialisation has 0.91-1.34:
within a block they stay of one size).
`--attention` prints how sharp the decoder's attention is while tracking (SAM2 alone), shipped weights
against that init: per attention block, the entropy of each query's weights over log(keys) (1: uniform),
the mean largest weight, and the spread (std) of the scaled scores over the keys.
The defaults use held-out validation videos that the reported benchmark does not use (hard-20 .. hard-39),
so nothing here is chosen on reported numbers.
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
from litdemo.micro.train import SHIPPED_WIDTH, width_overrides
from litdemo.models import build_architecture, load_checkpoint, load_sam2
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
        self.confidence, self.moved, self.fixed, self.size = [], [], [], []
        self._learn = learner_module.ObjectLearner.learn
        watch = self

        def learn(learner, sample, on_step=None):
            before = watch._logits(learner, sample, None)
            curve, index = watch._learn(learner, sample, on_step=on_step)
            watch._record(before, watch._logits(learner, sample, index), sample.target)
            watch._record_size(learner.adapters[index].decoder)
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

    @torch.no_grad()
    def _record_size(self, decoder) -> None:
        # how large the adapter's change is next to the layer it adapts: ||scaling * B A||_2 / ||W||_2
        ratios = [(torch.linalg.matrix_norm(module.get_delta_weight("default"), 2)
                   / torch.linalg.matrix_norm(module.base_layer.weight, 2)).item()
                  for module in decoder.modules() if "default" in getattr(module, "lora_A", {})]
        if ratios:
            self.size.append(statistics.median(ratios))

    def _record(self, before, after, target) -> None:
        truth = target > 0.5
        wrong = before.binary() != truth
        if not wrong.any():
            return
        self.confidence.append(before.mask_logits[wrong].abs().median().item())
        self.moved.append((after.mask_logits - before.mask_logits)[wrong].abs().median().item())
        self.fixed.append((after.binary() == truth)[wrong].float().mean().item())


def attention_blocks(decoder) -> list:
    """The decoder's sam2 Attention modules (7 in micro's: two blocks of three, and the final one)."""
    from sam2.modeling.sam.transformer import Attention

    return [m for m in decoder.modules() if isinstance(m, Attention)]


@torch.no_grad()
def rescale_attention(decoder, gauge: float) -> int:
    """Rescale each attention block of `decoder` in place so that it computes the same function:
    q_proj and v_proj x gauge, k_proj / gauge, out_proj's weight / gauge (its bias stays).
    Returns the number of blocks rescaled."""
    blocks = attention_blocks(decoder)
    for block in blocks:
        for layer, factor in ((block.q_proj, gauge), (block.v_proj, gauge), (block.k_proj, 1 / gauge)):
            layer.weight.mul_(factor)
            layer.bias.mul_(factor)
        block.out_proj.weight.div_(gauge)
    return len(blocks)


def set_decoder_heads(decoder, heads: int) -> int:
    """Split each attention block of the mask decoder into `heads` heads (sam2 builds it with 8). The weights
    are untouched; what the decoder computes changes. Returns the number of blocks changed."""
    blocks = attention_blocks(decoder)
    widths = sorted({block.internal_dim for block in blocks})
    if heads < 1 or any(width % heads for width in widths):
        raise SystemExit(f"--decoder-heads must divide every attention width of the decoder {widths}; got {heads}.")
    for block in blocks:
        block.num_heads = heads
    return len(blocks)


def load_micro(checkpoint=None, gauge: float = 1.0, heads: int | None = None, width: int = SHIPPED_WIDTH):
    """The micro predictor (shipped, or `checkpoint`), its decoder's attention in `gauge` (1: as trained),
    split into `heads` heads (None: sam2's 8); `width` for a checkpoint `train-micro --width` made."""
    if width == SHIPPED_WIDTH:
        predictor = load_sam2("micro", checkpoint=checkpoint, device="cpu")
    else:  # load_sam2 builds the shipped yaml's width; a wider file needs its architecture built first
        if checkpoint is None:
            raise SystemExit("--width needs the --checkpoint that `litdemo train-micro --width` wrote.")
        predictor = build_architecture("micro", image_size=128, extra_overrides=width_overrides(width))
        load_checkpoint(predictor, checkpoint)
        predictor.eval()
    if gauge != 1.0:
        rescale_attention(predictor.sam_mask_decoder, gauge)
    if heads is not None:
        set_decoder_heads(predictor.sam_mask_decoder, heads)
    return predictor


def print_norms(checkpoint=None, gauge: float = 1.0, width: int = SHIPPED_WIDTH) -> None:
    from sam2.modeling.sam.transformer import Attention

    decoder = load_micro(checkpoint, gauge, width=width).sam_mask_decoder
    print(f"{'attention block (largest singular value)':>46} {'q':>6} {'k':>6} {'v':>6} {'out':>6}")
    for name, block in decoder.named_modules():
        if isinstance(block, Attention):
            norms = [torch.linalg.matrix_norm(layer.weight, 2).item()
                     for layer in (block.q_proj, block.k_proj, block.v_proj, block.out_proj)]
            print(f"{name:>46} " + " ".join(f"{n:>6.2f}" for n in norms))


def run_variant(variant: str, videos: list[int], lr_scale: float, checkpoint=None, gauge: float = 1.0,
                seeds: tuple[int, ...] = (0,), heads: int | None = None, width: int = SHIPPED_WIDTH) -> None:
    saved = adapters.lora_config, adapters.make_adapted_decoder
    method = patch_variant(variant)
    watch = LogitWatch()
    try:
        predictor = load_micro(checkpoint, gauge, heads, width)
        corrections = accepted = 0
        fit_start, fit_best = [], []
        base = method_config(method)
        rates = {} if method == "sam2" else dict(lr_first=base.lr_first * lr_scale, lr_later=base.lr_later * lr_scale)
        runs = [(index, seed) for seed in seeds for index in videos]
        for index, seed in runs:
            run = run_simulated_user(predictor, make_procedural_video("hard", index), 1, method,
                                     protocol=ProtocolConfig(), lit_config=method_config(method, seed=seed, **rates))
            corrections, accepted = corrections + run.corrections, accepted + run.accepted
            for curve in run.train_curves:
                fit_start.append(curve["iou"][0])
                fit_best.append(max(curve["iou"]))
        fit = (f"{statistics.median(fit_start):.3f} -> {statistics.median(fit_best):.3f}" if fit_start else "-")
        margins = (f"{statistics.median(watch.confidence):>9.2f} {statistics.median(watch.moved):>9.2f} "
                   f"{statistics.mean(watch.fixed):>7.0%}" if watch.moved else f"{'-':>9} {'-':>9} {'-':>7}")
        size = f"{statistics.median(watch.size):>8.3f}" if watch.size else f"{'-':>8}"
        print(f"{variant:>16} {corrections / len(runs):>11.2f} {accepted / len(runs):>9.2f} {fit:>15} "
              f"{len(fit_start):>7} {margins} {size}", flush=True)
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


def initial_weights() -> dict:
    """The state dict `litdemo train-micro` starts from (seed 0), with load_sam2's key names."""
    from litdemo.micro.train import MicroTrainConfig, initial_model

    return initial_model(MicroTrainConfig(), torch.device("cpu")).state_dict()


def moved_from_init(checkpoint=None) -> None:
    import re

    prefix = "sam_mask_decoder."
    init = {k[len(prefix):]: v for k, v in initial_weights().items() if k.startswith(prefix)}
    trained = load_micro(checkpoint).sam_mask_decoder.state_dict()
    print(f"{'weights':>22} {'cos(init, trained)':>19} {'top sv: change / init':>22} {'top-4 share':>12}")
    for group, pattern in WEIGHT_GROUPS.items():
        names = [n for n in trained if re.fullmatch(pattern, n)]
        cos, ratio, share = [], [], []
        for n in names:
            start, change = init[n].float(), trained[n].float() - init[n].float()
            cos.append(torch.nn.functional.cosine_similarity(start.flatten(), trained[n].flatten(), dim=0).item())
            sv = torch.linalg.svdvals(change)
            ratio.append((sv[0] / torch.linalg.matrix_norm(start, 2)).item())
            share.append((sv[:4].square().sum() / sv.square().sum()).item())
        print(f"{group:>22} {min(cos):>8.2f} .. {max(cos):.2f} {min(ratio):>11.2f} .. {max(ratio):.2f} "
              f"{min(share):>5.0%} .. {max(share):.0%}   ({len(names)} matrices)")


@torch.no_grad()
def attention_sharpness(predictor, videos: list[int]) -> dict[str, list[float]]:
    """Per attention block of the decoder: [entropy / log(keys), largest weight, score std, keys], averaged
    over every query, head and decoder call while SAM2 alone tracks hard-<videos>."""
    import math

    from sam2.modeling.sam.transformer import Attention

    from litdemo.session import LitSession

    seen: dict[str, list] = {}

    def watch(name):
        def hook(attention, args, kwargs):
            q, k = kwargs["q"] if "q" in kwargs else args[0], kwargs["k"] if "k" in kwargs else args[1]
            q = attention._separate_heads(attention.q_proj(q), attention.num_heads)
            k = attention._separate_heads(attention.k_proj(k), attention.num_heads)
            scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # as scaled_dot_product_attention
            weights, keys = scores.softmax(-1), scores.shape[-1]
            entropy = -(weights * weights.clamp_min(1e-12).log()).sum(-1) / math.log(keys)
            seen.setdefault(name, []).append(
                [entropy.mean().item(), weights.amax(-1).mean().item(), scores.std(-1).mean().item(), keys])
        return hook

    hooks = [m.register_forward_pre_hook(watch(n), with_kwargs=True)
             for n, m in predictor.sam_mask_decoder.transformer.named_modules() if isinstance(m, Attention)]
    try:
        for index in videos:
            video = make_procedural_video("hard", index)
            first = min(video.gt)
            session = LitSession(predictor, video.frames, method_config("sam2"))
            session.prompt(0, first, mask=video.gt[first][0])
            session.propagate_all()
    finally:
        for hook in hooks:
            hook.remove()
    return {name: [statistics.mean(column) for column in zip(*rows)] for name, rows in seen.items()}


def print_attention(videos: list[int], checkpoint=None) -> None:
    predictor = load_micro(checkpoint)
    trained = attention_sharpness(predictor, videos)
    predictor.load_state_dict(initial_weights())
    untrained = attention_sharpness(predictor, videos)
    print(f"{'attention block':>34} {'keys':>4} | trained: {'H/log n':>7} {'max w':>6} {'score sd':>8} "
          f"| init: {'H/log n':>7} {'max w':>6} {'score sd':>8}")
    for name, (h, top, sd, keys) in trained.items():
        h0, top0, sd0, _ = untrained[name]
        print(f"{name:>34} {keys:>4.0f} |          {h:>7.2f} {top:>6.2f} {sd:>8.2f} |       {h0:>7.2f} {top0:>6.2f} {sd0:>8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    ap.add_argument("--videos", nargs="+", type=int, default=list(range(20, 40)),
                    help="hard-split indices (default 20..39: validation videos, not the reported 0..19)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="LIT seeds; per-video numbers pool them")
    ap.add_argument("--lr-scale", type=float, default=1.0, help="multiplies both learning rates (diagnostic)")
    ap.add_argument("--checkpoint", default=None, help="a micro checkpoint other than the shipped one")
    ap.add_argument("--gauge", type=float, default=1.0,
                    help="rescale the decoder's attention blocks without changing its function (diagnostic)")
    ap.add_argument("--decoder-heads", type=int, default=None,
                    help="attention heads in the decoder (sam2: 8); for a checkpoint trained with that many")
    ap.add_argument("--width", type=int, default=SHIPPED_WIDTH,
                    help="for a --checkpoint `litdemo train-micro --width W` wrote (default 64, the shipped width)")
    ap.add_argument("--moved-from-init", action="store_true", help="print how far training moved the decoder's weights")
    ap.add_argument("--attention", action="store_true", help="print how sharp the decoder's attention is while tracking")
    ap.add_argument("--norms", action="store_true", help="print the size of each attention block's projections")
    args = ap.parse_args()
    if args.width != SHIPPED_WIDTH and (args.moved_from_init or args.attention):
        raise SystemExit("--width works with the variants and --norms; --moved-from-init and --attention compare "
                         "with the shipped width's initialisation only.")
    if args.moved_from_init:
        return moved_from_init(args.checkpoint)
    if not (args.lr_scale > 0 and args.gauge > 0):
        raise SystemExit("--lr-scale and --gauge must be > 0.")
    if args.attention:
        return print_attention(args.videos, args.checkpoint)
    if args.norms:
        return print_norms(args.checkpoint, args.gauge, args.width)
    print(f"{'variant':>16} {'corr/video':>11} {'acc/video':>9} {'fit (median)':>15} {'updates':>7} "
          f"{'|wrong|':>9} {'moved':>9} {'fixed':>7} {'|dW|/|W|':>8}")
    for variant in args.variants:
        run_variant(variant, args.videos, args.lr_scale, args.checkpoint, args.gauge, tuple(args.seeds),
                    args.decoder_heads, args.width)


if __name__ == "__main__":
    main()
