"""Speed of the LIT core against raw SAM2, measured in one process.

    python benchmarks/bench_core.py                         # every part, tiny at 1024 and 512 px
    python benchmarks/bench_core.py --parts profile cache --sizes 1024 --frames 8

Parts (--parts; ratios are always against a baseline run in the same process):
  profile      per-frame seconds split into image encoder, memory attention, mask decoder and
               memory encoder, for frame 1 (one memory) and once SAM2's memory bank is full
               (frame >= 7: the prompt frame + 6 previous frames), first pass, no feature cache;
  cache        re-propagation from a corrected frame (the backbone feature cache on) vs the
               first pass over the same frames (target >= 2x at 1024 px), and vs re-propagation
               with the cache off; the masks of both re-propagations must be equal;
  cpu          CPU-path variants (threads, bf16 autocast, channels-last, torch.compile of the
               image encoder) per stage against float32 with 1 thread, and the mask IoU of each
               against float32 (adopt only >= 20% saved with IoU >= 0.99);
  overhead     propagation seconds/frame of a LitSession (LIT-LoRA: decoder inputs captured) vs
               raw sam2 `propagate_in_video` on the same frames and weights (target <= 1.05);
  steps        one training step split into forward, loss, backward and AdamW, with the paper's
               LoRA dropout and without it, at batch 1 (first correction) and 6 (later ones);
  corrections  one correction's training time for the first correction (up to 100 steps) and
               the median of later ones (up to 20 steps, batch = new sample + replay), under the
               paper's schedule with early stopping and with every step, LIT-LoRA capped by
               `max_train_seconds` (--cap), LIT-FT, and the latency candidates of issue 13
               (no LoRA dropout, fewer replayed samples, shorter patience): timings only, they
               are not defaults unless shown not to cost corrections on real videos.
Random weights are used (no download needed): step times do not depend on the weights, but
when early stopping ends training does. A random decoder gives a rank-4 LoRA nothing to fit,
so its early stopping rarely fires here; LIT-FT can fit, so its row shows what early stopping
does when the decoder learns the correction. On a shared CPU run with few frames and repeats.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from litdemo.config import LitConfig
from litdemo.datasets import make_synthetic_video
from litdemo.learner import ObjectLearner
from litdemo.metrics import iou
from litdemo.models import build_architecture, load_sam2, pick_device
from litdemo.session import LitSession
from litdemo.training import TrainingSample


def raw_sam2_predictor(model, image_size, device):
    """sam2's own video predictor class with the same weights (the baseline)."""
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = compose(config_name="configs/sam2.1/sam2.1_hiera_t.yaml", overrides=[
        f"++model.image_size={image_size}", "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
        "++model.binarize_mask_from_pts_for_mem_enc=true",
        "++model.add_all_frames_to_correct_as_cond=true"])
    OmegaConf.resolve(cfg)
    raw = instantiate(cfg.model, _recursive_=True)
    raw.load_state_dict(model.state_dict())
    return raw.to(device).eval()


def time_raw(raw, jpeg_dir, first_mask):
    state = raw.init_state(str(jpeg_dir))
    raw.add_new_mask(state, 0, 1, first_mask)
    start = time.perf_counter()
    n = sum(1 for _ in raw.propagate_in_video(state))
    return (time.perf_counter() - start) / n


def time_lit(model, frames, first_mask, cfg):
    session = LitSession(model, frames, cfg)
    session.prompt(0, 1, mask=first_mask)
    start = time.perf_counter()
    n = sum(1 for _ in session.propagate())
    return (time.perf_counter() - start) / n, session


def correction_times(session, masks, cfg, n_later):
    """Train on a first correction, then `n_later` more, on the session's captured inputs."""
    learner = ObjectLearner(session.predictor.sam_mask_decoder, session._prompt, cfg)
    curves = []
    frames = sorted(f for (_, f) in session.captures._items)
    for frame in frames[: n_later + 1]:
        sample = TrainingSample(frame, session.captures.get(1, frame), session._decoder_target(masks[frame]))
        curve, _ = learner.learn(sample)
        curves.append(curve)
    return curves


# ---------------------------------------------------------------------------- profile
# SAM2's four stages of a tracked frame, as the methods of SAM2Base that run them.
STAGES = (("image encoder", "forward_image"),
          ("memory attention", "_prepare_memory_conditioned_features"),
          ("mask decoder", "_forward_sam_heads"),
          ("memory encoder", "_encode_new_memory"))
BANK_FULL = 7  # num_maskmem of SAM2.1: from frame 7 on a frame attends to 7 memories


@contextmanager
def stage_timer(model):
    """Seconds spent in each stage while the block runs (instance attributes wrap the methods)."""
    seconds = defaultdict(float)

    def timed(name, method):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - start
        return run

    for name, attr in STAGES:
        setattr(model, attr, timed(name, getattr(model, attr)))
    try:
        yield seconds
    finally:
        for _, attr in STAGES:
            delattr(model, attr)


def profiled_frames(session, seconds, frames_iter):
    """{frame: {"total": s, stage: s, ...}} for each frame the iterator yields."""
    rows, before, start = {}, dict(seconds), time.perf_counter()
    for frame_idx, _ in frames_iter:
        row = {"total": time.perf_counter() - start}
        row.update({name: seconds[name] - before.get(name, 0.0) for name, _ in STAGES})
        rows[frame_idx] = row
        before, start = dict(seconds), time.perf_counter()
    return rows


def median_row(rows):
    keys = rows[0].keys()
    return {k: statistics.median(r[k] for r in rows) for k in keys}


def print_profile_rows(named_rows):
    names = ["total"] + [n for n, _ in STAGES]
    print("    " + f"{'':26s}" + "".join(f"{n:>18s}" for n in names + ["other"]))
    for label, row in named_rows:
        other = row["total"] - sum(row[n] for n, _ in STAGES)
        cells = [f"{row[n]:7.3f} s ({100 * row[n] / row['total']:3.0f}%)" for n in names[1:]]
        print(f"    {label:26s}{row['total']:16.3f} s" + "".join(f"{c:>18s}" for c in cells) + f"{other:16.3f} s")


def profile(model, frames, first_mask, size):
    session = LitSession(model, frames, LitConfig(mode="lit-lora", feature_cache_mb=0))
    session.prompt(0, 1, mask=first_mask)
    with stage_timer(model) as seconds:
        rows = profiled_frames(session, seconds, session.propagate())
    full = [rows[f] for f in rows if f >= BANK_FULL]
    print(f"profile at {size} px (seconds per frame, first pass, no feature cache):")
    named = [("frame 1 (1 memory)", rows[1])]
    if full:
        named.append((f"bank full (median of {len(full)})", median_row(full)))
    else:
        print(f"    (use --frames > {BANK_FULL} to see a full memory bank)")
    print_profile_rows(named)
    return named[-1][1]


# ---------------------------------------------------------------------------- feature cache
def cache_speedup(model, frames, masks, size, repeats, full_row=None):
    """First pass vs re-propagation from a corrected frame, with the cache and without it."""
    correct_at = max(1, len(frames) // 2 - 1)
    # one update: training time is not what this part measures (see `corrections`)
    session = LitSession(model, frames, LitConfig(mode="lit-lora", steps_first=1))
    session.prompt(0, 1, mask=masks[0])
    first = timed_frames(session.propagate())
    session.correct(correct_at, 1, mask=masks[correct_at])
    budget, runs = session.features.budget_bytes, defaultdict(list)
    for _ in range(repeats):  # interleaved, best of N: the machine's noise hits both alike
        for label, on in (("with", True), ("without", False)):
            session.features.budget_bytes = budget if on else 0   # 0: the predictor bypasses the cache
            runs[label].append(timed_frames(session.propagate(start_frame=correct_at), keep_masks=True))
    same = all(np.array_equal(m[f], runs["with"][0][1][f]) for t, m in runs["without"] for f in m)
    later = [f for f in first if f > correct_at]

    def per_frame(times):
        return statistics.mean(times[f] for f in later)

    s_first = per_frame(first)
    s_with = min(per_frame(t) for t, _ in runs["with"])
    s_without = min(per_frame(t) for t, _ in runs["without"])
    print(f"re-propagation from corrected frame {correct_at} at {size} px over frames {later[0]}..{later[-1]} "
          f"(s/frame; re-propagations best of {repeats}):\n"
          f"    first pass {s_first:.3f}, again without cache {s_without:.3f}, again with cache {s_with:.3f}\n"
          f"    speed-up with cache: {s_first / s_with:.2f}x vs first pass (target >= 2x at 1024 px), "
          f"{s_without / s_with:.2f}x vs no cache; masks equal with and without cache: {same}")
    if full_row is not None:
        cap = full_row["total"] / (full_row["total"] - full_row["image encoder"])
        print(f"    ceiling from the profile (bank full: all but the image encoder still runs): {cap:.2f}x")


def timed_frames(frames_iter, keep_masks=False):
    times, masks, start = {}, {}, time.perf_counter()
    for frame_idx, m in frames_iter:
        times[frame_idx] = time.perf_counter() - start
        masks[frame_idx] = m[1].copy()
        start = time.perf_counter()
    return (times, masks) if keep_masks else times


# ---------------------------------------------------------------------------- CPU path
def cpu_variants(model, frames, first_mask, size, repeats, compile_encoder=True, iou_frames=5):
    """The image encoder and memory attention (bank full) timed alone under each variant, against
    float32 with 1 thread; then each variant's masks over `iou_frames` frames vs float32's.

    Each variant's call is timed right after a baseline call, repeat after repeat, and the saving
    is the median of those paired ratios: on a shared CPU a load that comes and goes then slows
    both sides of a pair alike instead of whichever variant happened to run during it."""
    threads = torch.get_num_threads()
    variants = [("float32, 2 threads", dict(threads=2)),
                ("bf16 autocast, 1 thread", dict(threads=1, bf16=True)),
                ("channels-last encoder, 1 thread", dict(threads=1, channels_last=True))]
    notes = {}
    if compile_encoder:
        label = "torch.compile encoder, 1 thread"
        try:  # compiled once, outside the timed pairs
            torch.set_num_threads(1)
            start = time.perf_counter()
            compiled = torch.compile(model.image_encoder, dynamic=False)
            with torch.inference_mode():
                compiled(torch.zeros(1, 3, model.image_size, model.image_size))
            notes[label] = f"; compiling took {time.perf_counter() - start:.0f} s"
            variants.append((label, dict(threads=1, encoder=compiled)))
        except Exception as err:  # e.g. no C++ compiler: report it, go on
            notes[label] = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
    encoder_call, attention_call = last_stage_calls(model, frames, first_mask)
    stages = (("image encoder", encoder_call), ("memory attention", attention_call))

    def one_call(method, args, kwargs):
        start = time.perf_counter()
        with torch.inference_mode():
            getattr(model, method)(*args, **kwargs)
        return time.perf_counter() - start

    ratios = defaultdict(lambda: defaultdict(list))
    base_seconds = defaultdict(list)
    for _ in range(repeats):
        for label, v in variants:
            for stage, call in stages:
                with cpu_variant(model, threads=1):
                    base = one_call(*call)
                with cpu_variant(model, **v):
                    ratios[label][stage].append(one_call(*call) / base)
                base_seconds[stage].append(base)
    with cpu_variant(model, threads=1):
        base_masks = short_run_masks(model, frames[:iou_frames], first_mask)
    ious = {}
    for label, v in variants:
        with cpu_variant(model, **v):
            masks = short_run_masks(model, frames[:iou_frames], first_mask)
        ious[label] = min(iou(masks[f], base_masks[f]) for f in base_masks if f > 0)
    torch.set_num_threads(threads)
    print(f"CPU path at {size} px: one call of each stage (bank full), each timed right after float32 with "
          f"1 thread ({repeats} pairs; saving = 1 - median ratio); masks over frames 1..{iou_frames - 1}:")
    print(f"    {'float32, 1 thread':34s} " + "; ".join(
        f"{stage} {statistics.median(base_seconds[stage]):6.3f} s" for stage, _ in stages))
    for label, _ in variants:
        cells = [f"{stage} {1 - statistics.median(ratios[label][stage]):+4.0%} saved" for stage, _ in stages]
        print(f"    {label:34s} " + "; ".join(cells) + f"; min mask IoU vs float32 {ious[label]:.4f}"
              + notes.get(label, ""))
    for label, note in notes.items():
        if note.startswith("failed"):
            print(f"    {label:34s} {note}")


def last_stage_calls(model, frames, first_mask):
    """(method, args, kwargs) of the last image-encoder and memory-attention calls of a propagation.

    Calling them again recomputes the same frame against the same memory bank (state is untouched)."""
    calls = {}
    for _, attr in STAGES[:2]:
        method = getattr(model, attr)

        def record(*args, _attr=attr, _method=method, **kwargs):
            calls[_attr] = (_attr, args, kwargs)
            return _method(*args, **kwargs)
        setattr(model, attr, record)
    try:
        session = LitSession(model, frames, LitConfig(mode="lit-lora", feature_cache_mb=0))
        session.prompt(0, 1, mask=first_mask)
        session.propagate_all()
    finally:
        for _, attr in STAGES[:2]:
            delattr(model, attr)
    return calls[STAGES[0][1]], calls[STAGES[1][1]]


def short_run_masks(model, frames, first_mask):
    session = LitSession(model, frames, LitConfig(mode="sam2", feature_cache_mb=0))
    session.prompt(0, 1, mask=first_mask)
    return {f: m[1] for f, m in session.propagate()}


@contextmanager
def cpu_variant(model, threads=1, bf16=False, channels_last=False, encoder=None):
    """Apply one CPU-path variant to `model` for the block (`encoder`: e.g. a compiled image encoder)."""
    torch.set_num_threads(threads)
    own = model.image_encoder
    try:
        if channels_last:
            model.image_encoder = own.to(memory_format=torch.channels_last)
        if encoder is not None:
            model.image_encoder = encoder
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            yield
    finally:
        model.image_encoder = own.to(memory_format=torch.contiguous_format)


# ---------------------------------------------------------------------------- main
PARTS = ("profile", "cache", "cpu", "overhead", "steps", "corrections")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--model", choices=("tiny", "micro"), default="tiny",
                        help="tiny: SAM2.1 tiny, random weights; micro: litdemo's trained micro model (shipped)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="default: 1024 512 (tiny), 128 (micro)")
    parser.add_argument("--frames", type=int, default=9, help="frames of the synthetic video (> 7 for a full bank)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--cap", type=float, default=1.0, help="max_train_seconds for the capped schedule")
    parser.add_argument("--schedules", nargs="+", choices=list(schedules(1.0)), default=list(schedules(1.0)),
                        help="the training schedules part corrections times")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant in part cpu")
    args = parser.parse_args()
    if args.model == "micro" and "overhead" in args.parts:
        parser.error("part overhead builds raw sam2 from the tiny config; leave it out with --model micro")
    sizes = args.sizes or ([128] if args.model == "micro" else [1024, 512])
    device = pick_device(args.device)
    weights = "trained micro" if args.model == "micro" else "random-init sam2.1 tiny"
    print(f"device: {device}, torch threads: {torch.get_num_threads()}, {weights}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    sample = make_synthetic_video(num_frames=args.frames, height=480, width=854, seed=0)
    frames, masks = sample.frames, [sample.gt_mask(1, t) for t in range(args.frames)]
    for size in sizes:
        torch.manual_seed(0)
        if args.model == "micro":
            model = load_sam2("micro", image_size=size, device=device)
        else:
            model = build_architecture("tiny", image_size=size).to(device).eval()
            model.untrained = True
        print(f"\n== {size} px ==")
        full_row = profile(model, frames, masks[0], size) if "profile" in args.parts else None
        if "cache" in args.parts:
            cache_speedup(model, frames, masks, size, args.repeats, full_row)
        if "cpu" in args.parts:
            cpu_variants(model, frames, masks[0], size, args.repeats, compile_encoder=not args.no_compile)
        session = None
        if "overhead" in args.parts:
            session = overhead(model, frames, masks, size, device, args.repeats)
        if session is None and {"steps", "corrections"} & set(args.parts):
            session = LitSession(model, frames, LitConfig(mode="lit-lora"))
            session.prompt(0, 1, mask=masks[0])
            session.propagate_all()
        if "steps" in args.parts:
            step_breakdown(session, masks, args.repeats)
        if "corrections" in args.parts:
            corrections(session, masks, args.frames, args.cap, args.schedules)


def overhead(model, frames, masks, size, device, repeats):
    raw = raw_sam2_predictor(model, size, device)
    with tempfile.TemporaryDirectory() as tmp:
        for t, f in enumerate(frames):
            Image.fromarray(f).save(Path(tmp) / f"{t:05d}.jpg", quality=95)
        raw_times, lit_times = [], []
        for _ in range(repeats):  # interleaved, best of N: the machine's noise hits both alike
            raw_times.append(time_raw(raw, tmp, masks[0]))
            lit_s, session = time_lit(model, frames, masks[0], LitConfig(mode="lit-lora"))
            lit_times.append(lit_s)
    r, l = min(raw_times), min(lit_times)
    mb = session.captures.nbytes / max(1, len(session.captures)) / 2**20
    print(f"propagation s/frame: raw sam2 {r:.3f}, LIT session {l:.3f}, ratio {l / r:.3f} (target <= 1.05)")
    print(f"captured decoder inputs: {mb:.2f} MB/frame (float16) -> {100 * mb:.0f} MB for 100 frames; "
          f"backbone feature cache: {session.features.nbytes / max(1, len(session.features)) / 2**20:.2f} MB/frame")
    return session


def step_breakdown(session, masks, repeats, batch_sizes=(1, 6), steps=3):
    """Where one training step's time goes (forward, loss, backward, AdamW), with the paper's LoRA
    dropout (p = 0.1) and without it, for a first correction (batch 1) and a later one (batch 6).
    The two decoders take turns step by step, so the machine's noise hits both alike."""
    from litdemo.adapters import make_adapted_decoder, trainable_parameters, training_mode
    from litdemo.decoder import DecoderInputs, run_decoder
    from litdemo.training import lit_loss

    frames = sorted(f for (_, f) in session.captures._items)
    print(f"one LIT-LoRA training step, best of {repeats * steps} steps (ms):")
    for batch in batch_sizes:
        picked = [frames[i % len(frames)] for i in range(batch)]
        inputs = DecoderInputs.cat([session.captures.get(1, f) for f in picked]).to("cpu")
        target = torch.cat([session._decoder_target(masks[f]) for f in picked])
        runs = []
        for dropout in (0.1, 0.0):
            cfg = LitConfig(lora_dropout=dropout)
            decoder = make_adapted_decoder(session.predictor.sam_mask_decoder, cfg)
            optimizer = torch.optim.AdamW(trainable_parameters(decoder), lr=cfg.lr_first)
            runs.append((dropout, cfg, decoder, optimizer, defaultdict(list)))
        with torch.enable_grad():
            for _ in range(repeats * steps):
                for dropout, cfg, decoder, optimizer, parts in runs:
                    with training_mode(decoder):
                        t0 = time.perf_counter()
                        out = run_decoder(decoder, session._prompt, inputs)
                        t1 = time.perf_counter()
                        loss = lit_loss(out, target, cfg)
                        t2 = time.perf_counter()
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        t3 = time.perf_counter()
                        optimizer.step()
                        t4 = time.perf_counter()
                    for name, a, b in (("forward", t0, t1), ("loss", t1, t2), ("backward", t2, t3),
                                       ("AdamW", t3, t4), ("step", t0, t4)):
                        parts[name].append(1000 * (b - a))
        for dropout, _, _, _, parts in runs:
            best = {k: min(v) for k, v in parts.items()}
            print(f"    batch {batch}, LoRA dropout {dropout:.1f}: step {best['step']:6.0f} = forward {best['forward']:.0f}"
                  f" + loss {best['loss']:.0f} + backward {best['backward']:.0f} + AdamW {best['AdamW']:.0f}")


def schedules(cap):
    """name -> (label, LitConfig) of the schedules part `corrections` can time."""
    return {
        "paper": ("LIT-LoRA, paper schedule, early stopping", LitConfig()),
        "all-steps": ("LIT-LoRA, paper schedule, all steps", LitConfig(early_stop_iou=1.0, early_stop_patience=10**6)),
        "capped": (f"LIT-LoRA, capped at {cap:g} s", LitConfig(max_train_seconds=cap)),
        "ft": ("LIT-FT (can fit a random decoder), early stopping", LitConfig(mode="lit-ft")),
        # latency candidates (issue 13): measured here, not defaults
        "no-dropout": ("candidate: LIT-LoRA, no LoRA dropout", LitConfig(lora_dropout=0.0)),
        "replay2": ("candidate: LIT-LoRA, replay 2 instead of 5", LitConfig(replay_size=2)),
        "patience5": ("candidate: LIT-LoRA, patience 5 instead of 10", LitConfig(early_stop_patience=5)),
    }


def corrections(session, masks, num_frames, cap, names):
    for name in names:
        label, cfg = schedules(cap)[name]
        report(label, correction_times(session, masks, cfg, n_later=min(4, num_frames - 3)))


def report(label, curves):
    """One schedule's line: first and later corrections, why they stopped, time per sample-step."""
    first, later = curves[0], curves[1:]
    per_sample_step = statistics.median(c.seconds / len(c.loss) / c.batch_size for c in curves)
    stops = ", ".join(sorted({c.stop_reason for c in curves}))
    print(f"{label}:\n"
          f"    first correction {first.seconds:.2f} s ({first.updates} updates, batch IoU {max(first.iou):.2f}); "
          f"later median {statistics.median(c.seconds for c in later):.2f} s "
          f"({statistics.median(c.updates for c in later):.0f} updates, batch up to {later[-1].batch_size}); "
          f"median over all {statistics.median(c.seconds for c in curves):.2f} s (target <= 1.0 s at 1024)\n"
          f"    {per_sample_step * 1000:.0f} ms per step and sample; stopped by: {stops}")


if __name__ == "__main__":
    main()
