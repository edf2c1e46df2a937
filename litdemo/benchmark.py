"""The corrections benchmark: the simulated user over a dataset, methods and seeds, resumable.

    result = run_benchmark("davis", root="data/DAVIS", model="tiny", methods=("sam2", "lit-lora"),
                           out="results/davis")
    print(result.to_markdown())       # avg corrections per video per method, reduction vs sam2, ...
    result.summary()                  # the same as a list of dicts

One run = one (video, object, method, seed) pass of `run_simulated_user`. Each run is written to
out/runs/<video>/obj<k>__<method>__seed<s>.json (temp file + rename) the moment it finishes, so
an interrupted benchmark loses nothing written, and a rerun only computes the missing runs.
Videos can be spread over worker processes (backend="process") or a Ray cluster
(backend="ray"); every run seeds its own randomness, so the results equal a serial run's.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .datasets import DatasetError, VideoSample, iter_videos, list_sequences
from .files import atomic_dir, atomic_file, sweep_stale_temps, write_text_atomically
from .methods import BASELINE, METHODS, check_methods, method_config
from .protocols import PAPER_FIXED_FIELDS, uses_postprocessing
from .simulated_user import ObjectRun, ProtocolConfig, objects_to_run, run_simulated_user

BACKENDS = ("serial", "process", "ray")
# Per-run numbers in the CSV and in the per-method summary (timing fields are not compared
# between backends: they are the only values that legitimately differ from run to run).
COUNT_FIELDS = ("corrections", "accepted", "clicks", "mask_fallbacks")
TIME_FIELDS = ("seconds_propagation", "seconds_training", "seconds_total")


class BenchmarkError(ValueError):
    """Bad benchmark settings or an out/ folder that does not match them; the message says what to do."""


@dataclass(frozen=True)
class Task:
    """One video for one seed: everything a worker needs, picklable (no arrays, no models)."""
    dataset: str
    root: Optional[str]
    sequence: str
    seed: int
    methods: tuple[str, ...]
    settings: dict               # the result-deciding settings (see _settings)
    device: Optional[str]
    out: Optional[str]
    progress: bool = False


# ------------------------------------------------------------------------------------ results
@dataclass
class BenchmarkResult:
    """All runs of a benchmark plus the settings that made them; a table-like object."""
    runs: list[ObjectRun]
    methods: tuple[str, ...]
    settings: dict = field(default_factory=dict)
    computed: int = 0   # runs computed by this call
    reused: int = 0     # runs read back from out/runs (already done by an earlier call)

    def rows(self) -> list[dict]:
        """One flat dict per (video, object, method, seed), in a stable order."""
        out = []
        for r in sorted(self.runs, key=_run_order(self.methods)):
            judged = sum(1 for v in r.iou_before if v is not None)
            out.append(dict(video=r.video, obj_id=r.obj_id, method=r.method, seed=r.seed, num_frames=r.num_frames,
                            frames_judged=judged, **{k: getattr(r, k) for k in COUNT_FIELDS},
                            j=r.j, f=r.f, jf=r.jf, annotation_seconds=r.annotation_seconds,
                            **{k: getattr(r, k) for k in TIME_FIELDS}))
        return out

    def per_video(self) -> list[dict]:
        """Objects of a video summed: one row per (video, method, seed); J&F averaged over objects."""
        groups: dict[tuple, list[dict]] = {}
        for row in self.rows():
            groups.setdefault((row["video"], row["method"], row["seed"]), []).append(row)
        out = []
        for (video, method, seed), rows in groups.items():
            summed = {k: sum(r[k] for r in rows) for k in (*COUNT_FIELDS, "annotation_seconds", *TIME_FIELDS)}
            out.append(dict(video=video, method=method, seed=seed, objects=len(rows), **summed,
                            jf=float(np.mean([r["jf"] for r in rows]))))
        return out

    def summary(self, by_seed: bool = False) -> list[dict]:
        """Per method (and seed): averages per video, and the reduction of corrections vs sam2 in %."""
        videos = self.per_video()
        keys = sorted({(v["method"], v["seed"] if by_seed else None) for v in videos}, key=_method_order(self.methods))
        base = {k: _mean_per_video(videos, BASELINE, k[1]) for k in keys}
        out = []
        for method, seed in keys:
            mine = [v for v in videos if v["method"] == method and (seed is None or v["seed"] == seed)]
            row = dict(method=method, **({"seed": seed} if by_seed else {}), videos=len({v["video"] for v in mine}))
            for k in (*COUNT_FIELDS, "annotation_seconds", *TIME_FIELDS):
                row[f"{k}_per_video"] = float(np.mean([v[k] for v in mine]))
            row["jf"] = float(np.mean([v["jf"] for v in mine]))
            b = base[(method, seed)]
            row["reduction_pct"] = (None if method == BASELINE or b is None or b == 0
                                    else 100.0 * (1.0 - row["corrections_per_video"] / b))
            out.append(row)
        return out

    @property
    def untrained(self) -> bool:
        return not self.settings.get("pretrained", True)

    @property
    def model_tag(self) -> str:
        """"[untrained model]", "[micro: synthetic-trained, not SAM2.1]" or "": carried by every plot title."""
        from .models import model_tag

        return model_tag(self.settings.get("model", "?"), self.untrained)

    def to_markdown(self, by_seed: bool = False) -> str:
        """A table like the paper's: average corrections per video per method and the reduction."""
        head = ["method"] + (["seed"] if by_seed else []) + [
            "corrections / video", f"vs {BASELINE}", "accepted / video", "clicks / video",
            "mask fallbacks / video", "J&F", "est. annotation / video", "propagation s / video", "training s / video"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.summary(by_seed=by_seed):
            red = "-" if r["reduction_pct"] is None else f"{0.0 - r['reduction_pct']:+.1f}%"
            cells = [r["method"]] + ([str(r["seed"])] if by_seed else []) + [
                f"{r['corrections_per_video']:.2f}", red, f"{r['accepted_per_video']:.2f}",
                f"{r['clicks_per_video']:.2f}", f"{r['mask_fallbacks_per_video']:.2f}", f"{100 * r['jf']:.1f}",
                _minutes(r["annotation_seconds_per_video"]), f"{r['seconds_propagation_per_video']:.1f}",
                f"{r['seconds_training_per_video']:.1f}"]
            lines.append("| " + " | ".join(cells) + " |")
        s = self.settings
        videos = len({r.video for r in self.runs})
        seeds = sorted({r.seed for r in self.runs})
        from .models import model_label

        name = s.get("model", "?")
        note = (f"\n{s.get('dataset', '?')}: {videos} videos, seeds {seeds}, {model_label(name, self.untrained)} at "
                f"{s.get('image_size', '?')} px, {s.get('protocol', {}).get('name', 'interactive')} protocol, "
                f"tau={s.get('protocol', {}).get('tau', '?')}.")
        if self.untrained:
            note += (" UNTRAINED model (random weights): a check of the loop's mechanics, not the paper's result.")
        elif self.model_tag:  # micro: litdemo's own small model
            note += (f" {self.model_tag} It knows litdemo's synthetic shapes only: these numbers say nothing about "
                     f"SAM2.1 on real video.")
        return "\n".join(lines) + "\n" + note

    def _repr_markdown_(self) -> str:  # notebooks show the table
        return self.to_markdown()

    def to_csv(self, path: Union[str, Path]) -> Path:
        rows = self.rows()
        if not rows:
            raise BenchmarkError("no runs to write; the benchmark produced nothing.")

        with atomic_file(path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return Path(path)

    def to_dict(self) -> dict:
        return {"format": "litdemo-benchmark", "version": 1, "settings": self.settings, "methods": list(self.methods),
                "summary": self.summary(), "summary_by_seed": self.summary(by_seed=True),
                "runs": [r.to_dict() for r in sorted(self.runs, key=_run_order(self.methods))]}

    def to_json(self, path: Union[str, Path]) -> Path:
        return write_text_atomically(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_json(cls, path: Union[str, Path]) -> "BenchmarkResult":
        data = _read_json(Path(path), "benchmark results")
        if data.get("format") != "litdemo-benchmark":
            raise BenchmarkError(f"{path} is not a litdemo benchmark result (format={data.get('format')!r}).")
        return cls(runs=[ObjectRun.from_dict(r) for r in data["runs"]], methods=tuple(data["methods"]),
                   settings=data.get("settings", {}))

    def write_plots(self, folder: Union[str, Path]) -> list[Path]:
        """Timelines, cumulative corrections and LoRA training curves as PNGs (first seed only)."""
        from .plots import (plot_cumulative_corrections, plot_suggestion_iou, plot_timeline, plot_training_curves,
                            tagged)

        folder = Path(folder)
        tag = self.model_tag  # no figure passes a micro or random-weight model off as SAM2.1
        seed = min(r.seed for r in self.runs)
        runs = [r for r in self.runs if r.seed == seed]
        by_video: dict[str, list[ObjectRun]] = {}
        for r in sorted(runs, key=_run_order(self.methods)):
            by_video.setdefault(r.video, []).append(r)
        with atomic_dir(folder, overwrite=True) as tmp:
            for video, vruns in by_video.items():
                name = _safe(video)
                for obj in sorted({r.obj_id for r in vruns}):
                    mine = [r for r in vruns if r.obj_id == obj]
                    fig = plot_timeline({r.method: r.states for r in mine},
                                        title=tagged(f"{video}, object {obj} (seed {seed})", tag))
                    _save(fig, tmp / f"timeline_{name}_obj{obj}.png")
                    for r in mine:
                        if r.train_curves:
                            title = tagged(f"{r.method} training, {video} obj {obj}", tag)
                            _save(plot_training_curves(r.train_curves, title=title),
                                  tmp / f"training_{name}_obj{obj}_{r.method}.png")
                        values = [v for v in r.suggestion_iou if v is not None]
                        if values:
                            title = tagged(f"{r.method} suggestion IoU, {video} obj {obj}", tag)
                            _save(plot_suggestion_iou(values, title=title),
                                  tmp / f"suggestion_iou_{name}_obj{obj}_{r.method}.png")
                per_method: dict[str, np.ndarray] = {}
                for r in vruns:  # objects of a video summed per frame
                    per_method[r.method] = per_method.get(r.method, 0) + np.asarray(r.corrections_per_frame())
                fig = plot_cumulative_corrections({m: v.tolist() for m, v in per_method.items()},
                                                  title=tagged(f"cumulative corrections, {video} (seed {seed})", tag))
                _save(fig, tmp / f"cumulative_{name}.png")
        return sorted(folder.glob("*.png"))

    def save(self, out: Union[str, Path], plots: bool = True) -> dict[str, Path]:
        """results.json, results.csv, table.md (and plots/) into `out`."""
        out = Path(out)
        written = {"json": self.to_json(out / "results.json"), "csv": self.to_csv(out / "results.csv")}
        table = self.to_markdown() + "\n\nPer seed:\n\n" + self.to_markdown(by_seed=True) + "\n"
        written["markdown"] = write_text_atomically(out / "table.md", table)
        if plots:
            self.write_plots(out / "plots")
            written["plots"] = out / "plots"
        return written


# ------------------------------------------------------------------------------------ the benchmark
def run_benchmark(
    dataset: str,
    root: Optional[Union[str, Path]] = None,
    model: str = "tiny",
    methods: Sequence[str] = ("sam2", "lit-lora"),
    sequences: Optional[Sequence[str]] = None,
    out: Optional[Union[str, Path]] = None,
    image_size: Optional[int] = None,
    device: Optional[str] = None,
    pretrained: bool = True,
    checkpoint: Optional[Union[str, Path]] = None,
    tau: float = 0.5,
    seeds: Sequence[int] = (0,),
    workers: int = 1,
    backend: str = "serial",
    max_videos: Optional[int] = None,
    max_frames: Optional[int] = None,
    max_side: Optional[int] = None,
    stride: int = 1,
    protocol: Union[str, ProtocolConfig, None] = None,
    include_late_objects: Optional[bool] = None,
    dataset_options: Optional[dict] = None,
    lit_overrides: Optional[dict] = None,
    progress: bool = False,
    plots: bool = True,
    threads: Optional[int] = None,
) -> BenchmarkResult:
    """Run the simulated user on every (video, object, method, seed) and return the table.

    pretrained=False uses a fresh random-init model per seed (torch.manual_seed(seed)): a
    mechanics check needing no weights. `seed` is also the adapter seed. max_frames/stride cut
    and subsample each video (stride first); max_side downscales frames (not for synthetic).
    dataset_options go to the loader (e.g. split="val", or num_frames=20 for synthetic);
    lit_overrides to every method's LitConfig (e.g. steps_first=50). `protocol`: "interactive"
    (default) or "paper" (the LIT author's evaluation code, docs/benchmark.md), or a whole
    ProtocolConfig, which then wins over `tau` and `include_late_objects`.
    With `out`, runs are saved as they finish and a rerun skips them; results.json/.csv,
    table.md and plots/ are written at the end. `threads` caps torch's CPU threads (serial: in
    this process, restored afterwards; process backend: per worker, default cores // workers);
    on a busy shared CPU, 1 thread is often several times faster than torch's default.
    """
    methods = _checked(check_methods, methods)
    if image_size is None:  # the size the model's weights were trained at (SAM2.1: 1024, micro: 128)
        from .models import model_spec

        image_size = _checked(model_spec, model).image_size
    if backend not in BACKENDS:
        raise BenchmarkError(f"backend={backend!r} is not known; use one of {BACKENDS}.")
    if int(workers) < 1:
        raise BenchmarkError(f"workers must be >= 1 (got {workers}).")
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise BenchmarkError(f"seeds must be a non-empty list of distinct integers (got {list(seeds)}).")
    if int(stride) < 1:
        raise BenchmarkError(f"stride must be >= 1 (got {stride}).")
    if max_frames is not None and int(max_frames) < 2:
        raise BenchmarkError(f"max_frames must be >= 2 (got {max_frames}): the protocol needs frames to track.")
    if not isinstance(protocol, ProtocolConfig):
        protocol = _checked(ProtocolConfig, name=protocol or "interactive", tau=tau,
                            include_late_objects=include_late_objects)
    _check_lit_overrides(lit_overrides or {}, protocol)
    settings = _settings(dataset, model, image_size, pretrained, checkpoint, protocol, max_frames, max_side, stride,
                         dataset_options, lit_overrides)
    root = None if root is None else str(Path(root).expanduser())
    if root is not None and not Path(root).exists():
        raise DatasetError(f"dataset root {root} does not exist; pass the folder you downloaded {dataset!r} to.")
    names = list(sequences) if sequences is not None else list_sequences(dataset, root, **_list_options(dataset_options))
    names = names[:max_videos] if max_videos is not None else names
    if not names:
        raise DatasetError(f"no videos found for dataset {dataset!r} under {root}; check the root and the split.")
    if out is not None:
        _claim_out_dir(Path(out), settings)
        sweep_stale_temps(out)  # what a killed earlier run left half-written (e.g. .plots.*): never read

    tasks = [Task(dataset, root, name, seed, methods, settings, device, None if out is None else str(out),
                  progress=progress and backend == "serial")
             for seed in seeds for name in names]
    results = [_finished_runs(t) for t in tasks]  # None: something still to compute
    reused = sum(len(r) for r in results if r is not None)
    todo = {i: t for i, t in enumerate(tasks) if results[i] is None}
    if backend == "serial" or not todo:
        fresh = _run_serial(todo, threads)
    elif backend == "process":
        fresh = _run_processes(todo, int(workers), progress, threads)
    else:
        fresh = _run_ray(todo, int(workers), progress)
    computed = 0
    for i, done in fresh.items():  # workers wrote them already; write again for remote workers without out/
        results[i] = [ObjectRun.from_dict(d) for d in done["runs"]]
        computed += done["computed"]
        reused += len(done["runs"]) - done["computed"]
        if out is not None:
            for run in results[i]:
                _save_run(Path(out), run)
    all_runs = [r for runs in results for r in runs]
    result = BenchmarkResult(all_runs, methods, settings, computed=computed, reused=reused)
    if out is not None:
        result.save(out, plots=plots)
    return result


def _check_lit_overrides(lit_overrides: dict, protocol: ProtocolConfig) -> None:
    """Refuse overrides that would be ignored or that belong to another option, before any work."""
    for key, why in (("mode", "each method sets its own; pick them with methods="),
                     ("protocol", "choose it with protocol= (--protocol)")):
        if key in lit_overrides:
            raise BenchmarkError(f"lit_overrides may not set {key!r}: {why}.")
    fixed = sorted(set(lit_overrides) & set(PAPER_FIXED_FIELDS)) if protocol.paper else []
    if fixed:
        raise BenchmarkError(f"the paper protocol uses the author's fixed values for {fixed} (see docs/benchmark.md), "
                             f"so these settings would be ignored; drop them or use --protocol interactive.")
    for key in lit_overrides:  # unknown field / bad value: fail now
        _checked(method_config, BASELINE, protocol=protocol.name, **{key: lit_overrides[key]})


def _run_task(task: Task) -> dict:
    """Every object x method of one video for one seed; each run saved the moment it is done.

    Returns {"runs": [ObjectRun.to_dict(), ...], "computed": how many were not already in out/}.
    """
    sample = load_sample(task.dataset, task.root, task.sequence, task.settings)
    protocol = ProtocolConfig(**task.settings["protocol"])
    objects = objects_to_run(sample, protocol)
    if task.out is not None:
        _write_json(_video_file(Path(task.out), task.sequence, task.seed),
                    {"video": sample.name, "objects": objects, "num_frames": sample.num_frames})
    bar = _video_bar(task, sample)
    out, computed = [], 0
    for obj_id in objects:
        for method in task.methods:
            path = None if task.out is None else _run_file(Path(task.out), sample.name, obj_id, method, task.seed)
            if path is not None and path.is_file():
                run = _load_run(path)
                if bar is not None:
                    bar.update(sample.num_frames)
            else:
                predictor = _model(task.settings["model"], task.seed if not task.settings["pretrained"] else None,
                                   task.settings["image_size"], task.device, task.settings["pretrained"],
                                   task.settings["checkpoint"], uses_postprocessing(protocol.name))
                config = method_config(method, **{**(task.settings["lit_overrides"] or {}), "seed": task.seed,
                                                  "protocol": protocol.name})
                step = None if bar is None else _bar_step(bar, f"obj {obj_id} {method}")
                run = run_simulated_user(predictor, sample, obj_id, method, protocol, config, progress=step)
                computed += 1
                if step is not None:
                    step(sample.num_frames, sample.num_frames)
                if path is not None:
                    _save_run(Path(task.out), run)
            out.append(run.to_dict())
    if bar is not None:
        bar.close()
    return {"runs": out, "computed": computed}


def load_sample(dataset: str, root: Optional[str], sequence: str, settings: dict) -> VideoSample:
    """One video as the benchmark sees it: cut to max_frames after subsampling by stride."""
    options = dict(settings.get("dataset_options") or {})
    stride, max_frames = settings.get("stride", 1), settings.get("max_frames")
    if max_frames is not None:
        options["max_frames"] = max_frames * stride
    if settings.get("max_side") is not None:
        options["max_side"] = settings["max_side"]
    sample = next(iter_videos(dataset, root, sequences=[sequence], **options))
    return subsample(sample, stride, max_frames)


def subsample(sample: VideoSample, stride: int = 1, max_frames: Optional[int] = None) -> VideoSample:
    """Every stride-th frame (GT re-indexed), at most max_frames; objects left without GT dropped."""
    if stride == 1 and (max_frames is None or sample.num_frames <= max_frames):
        return sample
    keep = list(range(0, sample.num_frames, stride))[:max_frames]
    new_index = {t: i for i, t in enumerate(keep)}
    gt = {obj: {new_index[t]: m for t, m in per_frame.items() if t in new_index}
          for obj, per_frame in sample.gt.items()}
    gt = {obj: masks for obj, masks in gt.items() if any(m.any() for m in masks.values())}
    if not gt:
        raise DatasetError(f"{sample.name}: no object is visible on the frames kept (stride {stride}, "
                           f"max_frames {max_frames}); use a smaller stride or more frames.")
    void = {new_index[t]: m for t, m in sample.void.items() if t in new_index}
    return VideoSample(sample.name, sample.frames[keep], gt, fps=sample.fps / stride, void=void)


@lru_cache(maxsize=1)
def _model(name: str, seed: Optional[int], image_size: int, device: Optional[str], pretrained: bool,
           checkpoint: Optional[str], postprocessing: bool = True):
    """The predictor for a seed, loaded once per process (runs never change its weights);
    `postprocessing=False` as the paper protocol builds it (sam2's apply_postprocessing)."""
    import torch

    from .models import load_sam2

    if seed is not None:
        torch.manual_seed(seed)  # random init: the seed *is* the model
    return load_sam2(name, checkpoint=checkpoint, device=device, image_size=image_size, pretrained=pretrained,
                     apply_postprocessing=postprocessing)


# ------------------------------------------------------------------------------------ backends
def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)  # workers share the cores instead of each taking all of them


def _run_serial(tasks: dict[int, Task], threads: Optional[int]) -> dict[int, dict]:
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return {i: _run_task(t) for i, t in tasks.items()}
    finally:
        torch.set_num_threads(before)


def _run_processes(tasks: dict[int, Task], workers: int, progress: bool,
                   threads: Optional[int] = None) -> dict[int, dict]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    workers = min(workers, len(tasks))
    threads = int(threads) if threads is not None else max(1, (os.cpu_count() or 1) // workers)
    # spawn: a fresh interpreter per worker; fork would copy torch's thread pools and any CUDA context
    ctx = multiprocessing.get_context("spawn")
    bar = _tasks_bar(len(tasks), progress)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,)) as pool:
        futures = {pool.submit(_run_task, t): i for i, t in tasks.items()}
        results = {}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return results


def _run_ray(tasks: dict[int, Task], workers: int, progress: bool) -> dict[int, dict]:
    try:
        import ray
    except ImportError:
        raise BenchmarkError('backend="ray" needs Ray, an optional extra: pip install "litdemo[cluster]" '
                             '(or use backend="process" on one machine).') from None
    if not ray.is_initialized():
        ray.init()  # joins $RAY_ADDRESS when set, else starts a local Ray
    gpus = ray.cluster_resources().get("GPU", 0)
    # one GPU per video when the cluster has GPUs; else one CPU (plus its torch threads) per video
    options = {"num_gpus": 1} if gpus > 0 else {"num_cpus": 1}
    remote = ray.remote(**options)(_ray_task)
    bar = _tasks_bar(len(tasks), progress)
    pending, results, queue = {}, {}, list(tasks.items())
    while queue or pending:
        while queue and len(pending) < workers:
            i, task = queue.pop(0)
            pending[remote.remote(task)] = i
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            results[pending.pop(ref)] = ray.get(ref)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return results


def _ray_task(task: Task) -> dict:
    _worker_init(1)  # Ray gives a CPU task one core; on GPU workers the CPU side is light
    return _run_task(task)


# ------------------------------------------------------------------------------------ out/ folder
def _settings(dataset, model, image_size, pretrained, checkpoint, protocol, max_frames, max_side, stride,
              dataset_options, lit_overrides) -> dict:
    """What decides a run's numbers (not where the data lies, nor the device or the backend)."""
    return dict(dataset=dataset, model=model, image_size=int(image_size), pretrained=bool(pretrained),
                checkpoint=None if checkpoint is None else str(checkpoint), protocol=protocol.to_dict(),
                max_frames=max_frames, max_side=max_side, stride=int(stride),
                dataset_options=dict(dataset_options or {}), lit_overrides=dict(lit_overrides or {}))


def _claim_out_dir(out: Path, settings: dict) -> None:
    """Record the settings in out/settings.json, or check they match the runs already there."""
    path = out / "settings.json"
    if path.is_file():
        old = _read_json(path, "benchmark settings")
        if isinstance(old.get("protocol"), dict) and "name" not in old["protocol"]:
            # written before protocols had names: those runs were all made with the interactive one
            old["protocol"] = {**ProtocolConfig(**old["protocol"]).to_dict(), **old["protocol"]}
        diff = {k: (old.get(k), v) for k, v in json.loads(json.dumps(settings)).items() if old.get(k) != v}
        if diff:
            listed = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
            raise BenchmarkError(f"{out} holds runs made with other settings ({listed}). Use another --out "
                                 f"folder, or delete {out} to start over.")
        return
    _write_json(path, settings)


def _finished_runs(task: Task) -> Optional[list[ObjectRun]]:
    """All runs of a task read back from out/, or None if any is missing (the task must run)."""
    if task.out is None:
        return None
    video_file = _video_file(Path(task.out), task.sequence, task.seed)
    if not video_file.is_file():
        return None
    info = _read_json(video_file, "video record")
    paths = [_run_file(Path(task.out), info["video"], obj, m, task.seed) for obj in info["objects"] for m in task.methods]
    if not all(p.is_file() for p in paths):
        return None
    return [_load_run(p) for p in paths]


def _run_file(out: Path, video: str, obj_id: int, method: str, seed: int) -> Path:
    return out / "runs" / _safe(video) / f"obj{obj_id}__{method}__seed{seed}.json"


def _video_file(out: Path, video: str, seed: int) -> Path:
    return out / "runs" / _safe(video) / f"video__seed{seed}.json"


def _save_run(out: Path, run: ObjectRun) -> Path:
    return _write_json(_run_file(out, run.video, run.obj_id, run.method, run.seed), run.to_dict())


def _load_run(path: Path) -> ObjectRun:
    try:
        return ObjectRun.from_dict(_read_json(path, "run"))
    except (TypeError, ValueError) as err:
        raise BenchmarkError(f"run file {path} is damaged ({err}); delete it and rerun to recompute it.") from err


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BenchmarkError(f"cannot read {what} {path}: {err}; delete it and rerun to recompute it.") from err


def _write_json(path: Path, data) -> Path:
    return write_text_atomically(path, json.dumps(data))


# ------------------------------------------------------------------------------------ small helpers
def _checked(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as err:
        raise BenchmarkError(str(err)) from err


def _list_options(dataset_options: Optional[dict]) -> dict:
    return {k: v for k, v in (dataset_options or {}).items() if k in ("split", "resolution", "num_videos")}


def _mean_per_video(videos: list[dict], method: str, seed: Optional[int]) -> Optional[float]:
    rows = [v["corrections"] for v in videos if v["method"] == method and (seed is None or v["seed"] == seed)]
    return float(np.mean(rows)) if rows else None


def _method_order(methods: Sequence[str]):
    rank = {m: i for i, m in enumerate(methods)}
    return lambda key: (rank.get(key[0], len(rank)), -1 if key[1] is None else key[1])


def _run_order(methods: Sequence[str]):
    rank = {m: i for i, m in enumerate(methods)}
    return lambda r: (r.video, r.obj_id, r.seed, rank.get(r.method, len(rank)))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _safe(name: str) -> str:
    """A video name usable as a file name (SA-V/MOSE ids are already safe; this guards the rest)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=90)


def _video_bar(task: Task, sample: VideoSample):
    if not task.progress:
        return None
    from tqdm.auto import tqdm

    total = len(sample.object_ids()) * len(task.methods) * sample.num_frames
    # disable=False: shown even when TQDM_DISABLE hides sam2's own per-propagation bars
    return tqdm(total=total, desc=f"{sample.name} (seed {task.seed})", unit="frame", leave=True, disable=False)


def _bar_step(bar, label: str):
    """A progress(done, total) callback moving `bar` forward as one run reaches later frames."""
    bar.set_postfix_str(label)
    furthest = [0]

    def step(done: int, total: int) -> None:
        if done > furthest[0]:  # tracking restarts at each fixed frame: only count new frames
            bar.update(done - furthest[0])
            furthest[0] = done
    return step


def _tasks_bar(n: int, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=n, desc="videos", unit="video", disable=False)


__all__ = ["BACKENDS", "BenchmarkError", "BenchmarkResult", "METHODS", "load_sample", "run_benchmark", "subsample"]
