"""Would a longer tail of 16-frame clips help micro? A diagnostic, not the training command.

    python benchmarks/diag_longer_tail.py --out runs/longer-tail --steps 1200        # shipped weights + 1,200 steps
    python benchmarks/diag_longer_tail.py --out runs/reset --from runs/longer-tail/plus400.pt --first-step 10200 --steps 400
    python benchmarks/diag_longer_tail.py --out runs/heads2 --decoder-heads 2 --steps 1200  # the decoder in 2 heads

`litdemo train-micro` ends with a tail of `tail_steps` steps at lr/10 on 16-frame clips. This script
continues a finished model with the *next* tail steps a longer `--tail-steps` run would take (the same
clips, the same learning rate), but with a fresh AdamW: the shipped run's optimizer state is not kept,
so this is a cheap hint (minutes, not a two-hour run from scratch), never a model to ship. It writes
plusN.pt every `--save-every` steps; measure them with `bench_micro.py --checkpoint ... --validation-jf`
and `litdemo bench ... --checkpoint ... --sequences hard-20 ... hard-59` (docs/micro.md, "A longer tail").
`--decoder-heads N` first splits the decoder's attention into N heads instead of sam2's 8 (weights kept, the
function changed: docs/micro.md, "SAM2.1's head width, measured") and trains on from there; N is written to the folder's
settings.json, since the weights' file cannot carry it, and must be given again to measure them
(`diag_adapter_reach.py --decoder-heads N`).
Deterministic for the same torch version and thread count (one thread by default).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from diag_adapter_reach import set_decoder_heads  # the same benchmarks/ folder
from litdemo.micro.train import MicroTrainConfig, build_loss, initial_model, save_weights, training_step
from litdemo.models import model_spec, shipped_checkpoint

SHIPPED_STEPS = MicroTrainConfig().total_steps  # where the shipped model's run ended (9,000 + its tail)


def continue_tail(start_from: Path, first_step: int, steps: int, out: Path, frames: int = 16,
                  save_every: int = 400, decoder_heads: int | None = None) -> list[float]:
    main_steps = MicroTrainConfig().steps
    if first_step < main_steps:
        raise SystemExit(f"--first-step must be inside the tail (>= {main_steps}); got {first_step}.")
    cfg = MicroTrainConfig(tail_steps=first_step + steps - main_steps, tail_num_frames=frames)
    model = initial_model(cfg, torch.device("cpu")).train()
    model.load_state_dict(torch.load(start_from, map_location="cpu", weights_only=True)["model"], strict=True)
    if decoder_heads is not None:
        set_decoder_heads(model.sam_mask_decoder, decoder_heads)
    model.rng = np.random.default_rng(cfg.seed + 1000)  # SAM2Train's prompt sampler (mask prompts: barely used)
    loss_fn = build_loss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)  # fresh: see above
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps({"from": str(start_from), "first_step": first_step, "steps": steps,
                                                    "frames": frames, "decoder_heads": decoder_heads}))
    losses = []
    for done, step in enumerate(range(first_step, first_step + steps), start=1):
        # the step a longer --tail-steps run would take here: its clips, its constant lr / 10
        losses.append(round(training_step(model, loss_fn, optimizer, step, cfg, torch.device("cpu")), 4))
        if done % 50 == 0:
            print(f"step {step + 1}: mean loss of the last 50 {np.mean(losses[-50:]):.3f}", flush=True)
        if done % save_every == 0 or done == steps:
            save_weights(out / f"plus{done}.pt", model)
            (out / "losses.json").write_text(json.dumps(losses))
    return losses


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--from", dest="start_from", default=None,
                   help="weights to continue (default: the shipped micro, its hash checked)")
    p.add_argument("--first-step", type=int, default=SHIPPED_STEPS,
                   help=f"the tail step to start at (default {SHIPPED_STEPS}: right after the shipped run)")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--frames", type=int, default=16, help="frames per clip (16: the shipped tail's)")
    p.add_argument("--save-every", type=int, default=400)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--decoder-heads", type=int, default=None,
                   help="split the decoder's attention into this many heads first (sam2: 8)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start_from = Path(args.start_from) if args.start_from else shipped_checkpoint(model_spec("micro"))
    continue_tail(start_from, args.first_step, args.steps, Path(args.out), args.frames, args.save_every,
                  args.decoder_heads)


if __name__ == "__main__":
    main()
