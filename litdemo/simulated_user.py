"""The simulated user: the paper's protocol for counting corrections on one object of one video.

    run = run_simulated_user(predictor, sample, obj_id=1, method="lit-lora")
    run.corrections, run.accepted, run.clicks, run.mask_fallbacks, run.jf

Protocol (defaults are the paper's; see docs/benchmark.md):
1. The object starts from its ground-truth mask on its first annotated frame t0.
2. Tracking runs forward. Every frame that has ground truth is judged: IoU(tracked, GT) >= tau
   is "fine"; frames without ground truth are tracked but never judged.
3. A frame below tau needs fixing. LIT methods first show the adapter's suggestion: if its IoU
   reaches tau the user accepts it ("accepted", not a correction). Otherwise the user clicks, up
   to `max_clicks` times, each click placed by SAM2's own rule (`litdemo.clicks.next_click`),
   checking the IoU after each; if it is still below tau the full GT mask is given (a "mask
   fallback"). Either way that frame counts one correction, and LIT trains on it.
4. Tracking restarts from the fixed frame, and so on to the end of the video.

One object per pass, in a fresh session, so objects never help or hurt each other.

`ProtocolConfig(name="paper")` follows the LIT author's evaluation code instead
(litdemo/protocols.py lists the session rules): the user is an oracle that trains the adapter on
the GT mask, takes the best of the shown suggestions when its IoU is above tau, and is never
asked about a frame it already fixed (tracking goes on from the next frame); VOST-style void
pixels are left out of every IoU; objects absent from frame 0 are skipped unless
`include_late_objects`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Optional

import numpy as np

from .clicks import next_click
from .config import LitConfig
from .datasets.base import VideoSample
from .methods import method_config
from .metrics import iou, j_and_f

RUN_FORMAT = "litdemo-object-run"
RUN_VERSION = 1


@dataclass
class ProtocolConfig:
    # Which protocol: "interactive" (litdemo's, a person's session) or "paper" (the LIT author's
    # evaluation code, tools/online_eval.py); see litdemo/protocols.py and docs/benchmark.md.
    name: str = "interactive"
    # Objects that first appear after frame 0: tracked from their first annotated frame (True), or
    # skipped (False), as the author's --track_object_appearing_later_in_video flag does.
    # None: the protocol's own rule (interactive: tracked; paper: skipped, the author's default).
    include_late_objects: Optional[bool] = None
    # IoU below which a frame needs fixing (paper: 0.5; it also reports 0.7).
    tau: float = 0.5
    # Clicks a user tries before giving the full mask (paper: 3, as in SAM2's interactive evaluation).
    max_clicks: int = 3
    # --- cost model for the estimated annotation time (settings: change them to your own study) ----
    # One click: 2.4 s, the measured time to click one object instance in Bearman et al.,
    # "What's the Point", ECCV 2016 (https://arxiv.org/abs/1506.02106).
    seconds_per_click: float = 2.4
    # Drawing a full mask: 79 s, COCO's polygon annotation time per instance (22 worker hours per
    # 1,000 segmentations; Lin et al., "Microsoft COCO", ECCV 2014, https://arxiv.org/abs/1405.0312).
    seconds_per_mask: float = 79.0
    # Accepting a suggestion is a yes/no check: 1.6 s, the box-verification time measured by
    # Papadopoulos et al., "We don't need no bounding-boxes", CVPR 2016 (https://arxiv.org/abs/1602.08405).
    seconds_per_accept: float = 1.6
    # Looking at one judged frame to decide whether it is fine: 0.5 s, our assumption (no study
    # measures it for this task); it is paid equally by every method. Set 0 to leave it out.
    seconds_per_frame_review: float = 0.5

    def __post_init__(self) -> None:
        from .protocols import check_protocol

        check_protocol(self.name)
        if self.include_late_objects is None:
            self.include_late_objects = self.name == "interactive"
        self.include_late_objects = bool(self.include_late_objects)
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1] (got {self.tau}); the paper uses 0.5 and 0.7.")
        if self.max_clicks < 0 or int(self.max_clicks) != self.max_clicks:
            raise ValueError(f"max_clicks must be an integer >= 0 (got {self.max_clicks}); 0 means masks only.")
        for name in ("seconds_per_click", "seconds_per_mask", "seconds_per_accept", "seconds_per_frame_review"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 seconds (got {getattr(self, name)}).")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def paper(self) -> bool:
        return self.name == "paper"


def objects_to_run(sample: VideoSample, protocol: ProtocolConfig) -> list[int]:
    """The objects a protocol evaluates: all, or (without include_late_objects) only those
    visible on frame 0, as the author's evaluation takes its inputs from the first frame only."""
    if protocol.include_late_objects:
        return sample.object_ids()
    return [k for k in sample.object_ids() if sample.first_annotated_frame(k) == 0]


FRAME_STATES = ("corrected", "accepted", "fine", "unannotated")


@dataclass
class ObjectRun:
    """Everything the simulated user did on one object of one video with one method."""
    video: str
    obj_id: int
    method: str
    seed: int                    # model seed (untrained models) and adapter seed
    num_frames: int
    start_frame: int             # t0: the first annotated frame, where the GT mask was given
    states: list[str]            # per frame: corrected / accepted / fine / unannotated (not judged)
    corrections: int             # frames fixed by the user (clicks and/or a mask)
    accepted: int                # frames where the LIT suggestion was taken as is
    clicks: int                  # all clicks, over all corrections
    mask_fallbacks: int          # corrections where clicks were not enough and the GT mask was given
    iou_before: list[Optional[float]]   # per frame: tracked mask vs GT (None: not judged)
    iou_after: list[Optional[float]]    # per frame: final mask vs GT (None: no GT / before t0)
    j: float                     # DAVIS region J of the final masks (first/last annotated frame skipped)
    f: float                     # DAVIS boundary F
    jf: float                    # (J + F) / 2
    seconds_propagation: float   # wall time inside SAM2's propagation
    seconds_training: float      # wall time of LIT training (sum of event.train_seconds)
    seconds_total: float         # the whole pass, including clicks and suggestions
    annotation_seconds: float    # estimated human time from the cost model
    clicks_per_correction: list[int] = field(default_factory=list)
    train_curves: list[dict] = field(default_factory=list)      # one {"loss", "iou", ...} per correction
    suggestion_iou: list[Optional[float]] = field(default_factory=list)  # adapter's IoU at each correction
    protocol: dict = field(default_factory=dict)   # ProtocolConfig.to_dict()
    model: dict = field(default_factory=dict)      # name, image_size, untrained, label

    @property
    def key(self) -> str:
        """Unique name of this run inside a benchmark (used for its results file)."""
        return f"{self.video}__obj{self.obj_id}__{self.method}__seed{self.seed}"

    def corrections_per_frame(self) -> list[int]:
        return [int(s == "corrected") for s in self.states]

    def to_dict(self) -> dict:
        return {"format": RUN_FORMAT, "version": RUN_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "ObjectRun":
        if data.get("format") != RUN_FORMAT:
            raise ValueError(f"not an object run (format={data.get('format')!r}, expected {RUN_FORMAT!r}).")
        if data.get("version", 0) > RUN_VERSION:
            raise ValueError(f"object run version {data['version']} is newer than this litdemo reads "
                             f"({RUN_VERSION}); upgrade litdemo.")
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"object run lacks fields {missing}; the file is damaged, delete it to recompute.")
        return cls(**{k: v for k, v in data.items() if k in names})


def run_simulated_user(predictor, sample: VideoSample, obj_id: int, method: str,
                       protocol: Optional[ProtocolConfig] = None, lit_config: Optional[LitConfig] = None,
                       progress: Optional[Callable[[int, int], None]] = None) -> ObjectRun:
    """Run the protocol on one object in a fresh LitSession; `progress(frames_done, num_frames)`
    is called as tracking advances.

    `lit_config` replaces the method's own config (its `seed` is the run's seed); `method`
    then only names the run.
    """
    from .session import LitSession  # torch + sam2: imported when a run is really made
    from .video_io import Video

    protocol = protocol or ProtocolConfig()
    config = lit_config or method_config(method)
    if config.protocol != protocol.name:  # the session follows the protocol the user is simulated with
        config = replace(config, protocol=protocol.name)
    if obj_id not in sample.gt:
        raise KeyError(f"{sample.name}: no object {obj_id}; objects are {sample.object_ids()}.")
    # No global seeding: an adapter draws its LoRA init and dropout from its own generator seeded
    # with config.seed (see adapters.py), so a run gives the same result in any process or tab.
    session = LitSession(predictor, Video(sample.frames, fps=sample.fps, name=sample.name), config)
    return run_protocol(session, sample, obj_id, method, protocol, learns=config.learns, seed=config.seed,
                        progress=progress)


def run_protocol(session, sample: VideoSample, obj_id: int, method: str, protocol: Optional[ProtocolConfig] = None,
                 learns: bool = True, seed: int = 0,
                 progress: Optional[Callable[[int, int], None]] = None) -> ObjectRun:
    """The protocol itself, on any object with LitSession's verbs (prompt, propagate, suggest,
    accept, click, correct, mask); `learns` says whether suggestions are checked."""
    protocol = protocol or ProtocolConfig()
    gt = sample.gt[obj_id]
    void = sample.void if protocol.paper else {}   # interactive: void counts as background, as before
    start_clock = time.perf_counter()
    t0 = sample.first_annotated_frame(obj_id)
    if protocol.paper:
        session.set_ground_truth(obj_id, gt, void)
    session.prompt(t0, obj_id, mask=gt[t0])

    T = sample.num_frames
    states = ["unannotated"] * T
    states[t0] = "fine"  # the reference frame: given to every method alike, never a correction
    iou_before: list[Optional[float]] = [None] * T
    prop_clock = [0.0]
    corrections, clicks_per_correction, accepted, fallbacks = [], [], 0, 0
    start = done = t0   # done: the frame just given or fixed, never judged again
    while True:
        to_fix = None
        for t, masks in _timed(session.propagate(start_frame=start), prop_clock):
            if progress is not None:
                progress(t + 1, T)
            if t == done or t not in gt:  # the fixed/reference frame itself, or nothing to judge
                continue
            iou_before[t] = iou(masks[obj_id], gt[t], void=void.get(t))
            if iou_before[t] < protocol.tau:
                to_fix = t
                break
            states[t] = "fine"
        if to_fix is None:
            break
        outcome, event, n_clicks = _fix_frame(session, to_fix, obj_id, gt[to_fix], void.get(to_fix), protocol, learns)
        states[to_fix] = outcome
        if outcome == "accepted":
            accepted += 1
        else:
            corrections.append(event)
            clicks_per_correction.append(n_clicks)
            fallbacks += int(event.source == "mask")
        done, start = to_fix, _restart_frame(session, to_fix, obj_id)
        if start >= T:
            break

    final = {t: session.mask(t, obj_id) for t in range(t0, T)}
    judged = {t: m for t, m in gt.items() if t >= t0}
    scores = j_and_f(final, judged, void=void)
    num_clicks = sum(clicks_per_correction)
    cost = (protocol.seconds_per_click * num_clicks + protocol.seconds_per_mask * fallbacks
            + protocol.seconds_per_accept * accepted
            + protocol.seconds_per_frame_review * sum(1 for t in judged if t != t0))
    predictor = getattr(session, "predictor", None)
    return ObjectRun(
        video=sample.name, obj_id=int(obj_id), method=method, seed=int(seed), num_frames=T, start_frame=t0,
        states=states, corrections=len(corrections), accepted=accepted, clicks=num_clicks, mask_fallbacks=fallbacks,
        iou_before=[_num(v) for v in iou_before],
        iou_after=[_num(iou(final[t], gt[t], void=void.get(t))) if t in judged else None for t in range(T)],
        j=scores["J"], f=scores["F"], jf=scores["JF"],
        seconds_propagation=prop_clock[0], seconds_training=float(sum(e.train_seconds for e in corrections)),
        seconds_total=time.perf_counter() - start_clock, annotation_seconds=float(cost),
        clicks_per_correction=clicks_per_correction,
        train_curves=[_curve(e.train_curve) for e in corrections if e.train_curve],
        suggestion_iou=[_num(e.suggestion_iou_before) for e in corrections],
        protocol=protocol.to_dict(),
        model=dict(name=getattr(predictor, "model_name", "?"), image_size=int(getattr(predictor, "image_size", 0)),
                   untrained=bool(getattr(predictor, "untrained", False)), label=getattr(predictor, "model_label", "?")),
    )


def _fix_frame(session, t: int, obj_id: int, gt: np.ndarray, void: Optional[np.ndarray], protocol: ProtocolConfig,
               learns: bool):
    """The user's turn on a frame below tau: accept the suggestion, or click, or draw the mask.

    Returns ("accepted" | "corrected", the session event, clicks made).
    """
    if learns:
        suggestion = session.suggest(t, obj_id)
        if suggestion is not None and _good_suggestion(iou(suggestion, gt, void=void), protocol):
            return "accepted", session.accept(t, obj_id), 0
    shown, n_clicks = session.mask(t, obj_id), 0
    while n_clicks < protocol.max_clicks and iou(shown, gt, void=void) < protocol.tau:
        click = next_click(shown, gt)
        if click is None:  # identical masks: cannot happen below tau, but never loop on it
            break
        shown = session.click(t, obj_id, click.x, click.y, positive=click.positive)
        n_clicks += 1
    if iou(shown, gt, void=void) < protocol.tau:
        return "corrected", session.correct(t, obj_id, mask=gt), n_clicks  # the mask fallback
    return "corrected", session.correct(t, obj_id), n_clicks


def _good_suggestion(score: float, protocol: ProtocolConfig) -> bool:
    """Interactive: a suggestion reaching tau is accepted. Paper: it must exceed tau, as the
    author's `lora_predict` tests it (a tracked frame at exactly tau is fine under both)."""
    return score > protocol.tau if protocol.paper else score >= protocol.tau


def _restart_frame(session, fixed: int, obj_id: int) -> int:
    """Where tracking resumes after a fix: on the fixed frame when SAM2 keeps it as a
    conditioning frame (propagation reuses it), else on the next frame, so an ordinary memory
    frame (the paper protocol's click fixes and accepted suggestions) is never tracked over.
    That is the author's single forward pass."""
    keeps = getattr(session, "is_conditioning_frame", None)
    return fixed if keeps is None or keeps(fixed, obj_id) else fixed + 1


def _timed(frames: Iterator, clock: list) -> Iterator:
    """Yield from `frames`, adding the time spent producing each item to clock[0]."""
    frames = iter(frames)
    try:
        while True:
            tic = time.perf_counter()
            try:
                item = next(frames)
            except StopIteration:
                return
            finally:
                clock[0] += time.perf_counter() - tic
            yield item
    finally:
        frames.close()  # the caller stopped early: end SAM2's propagation now, not at garbage collection


def _num(value) -> Optional[float]:
    return None if value is None else float(value)


def _curve(curve: dict) -> dict:
    """The parts of a training curve a plot or a reader needs, as plain values (its wall time is in
    seconds_training): losses, IoUs, the step kept and why training ended."""
    return {"loss": [float(v) for v in curve.get("loss", [])], "iou": [float(v) for v in curve.get("iou", [])],
            "best_step": int(curve.get("best_step", -1)), "stop_reason": str(curve.get("stop_reason", ""))}
