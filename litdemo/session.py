"""A LIT session over one video: prompt, propagate, correct, suggest, accept, export.

    session = LitSession(load_sam2("tiny"), load_video("bear.mp4"), LitConfig(mode="lit-lora"))
    session.prompt(0, obj_id=1, points=[[320, 240]], labels=[1])
    for frame_idx, masks in session.propagate():
        ...                                    # masks: {obj_id: (H, W) bool}
    session.correct(17, obj_id=1, mask=fixed)  # SAM2 takes it into memory, the adapter learns from it
    session.suggest(18, obj_id=1)              # the adapter's mask for a later frame
    session.accept(18, obj_id=1)               # ...taken as is: an accepted suggestion, not a correction
    session.suggestions(19, obj_id=1)          # multi-LoRA: one suggestion per adapter, with predicted IoU
    session.accept(19, obj_id=1, adapter=2)    # ...the one the user picked (history records the adapter)
    session.export("out/")                     # PNG masks, overlay.mp4, history.json, adapters

SAM2 does the tracking exactly as usual; LIT adds a capture of the decoder inputs of every
tracked frame (`CaptureStore`) and one `ObjectLearner` per object that trains on corrections.
With mode "sam2" nothing learns and the same code is the baseline.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from .config import LitConfig
from .decoder import CaptureStore, EmptyPrompt, to_video_mask
from .history import Event, History, encode_mask
from .learner import ObjectLearner
from .metrics import iou
from .feature_cache import FeatureCache
from .paper_learner import PaperLearner
from .predictor import CAPTURE_KEY, DECODER_KEY, FEATURE_CACHE_KEY, LitVideoPredictor
from .protocols import conditioning, is_conditioning_frame, remember_suggestion
from .training import TrainingSample
from .validation import bool_mask, is_whole
from .video_io import Video, load_video


@dataclass
class Suggestion:
    """One adapter's mask for a frame, with the decoder's own estimate of its IoU."""
    adapter: int                # index of the adapter in the object's learner
    mask: np.ndarray            # (H, W) bool
    predicted_iou: float        # SAM2's IoU head on the adapted decoder: its confidence in the mask


@dataclass
class PendingCorrection:
    """Clicks given on an already tracked frame, not yet committed with `correct`."""
    tracked_mask: np.ndarray                    # what tracking showed before the first click
    clicks: list = field(default_factory=list)  # [[x, y, label], ...]


class LitSession:
    def __init__(self, predictor: LitVideoPredictor, video: Union[Video, np.ndarray, str, Path],
                 config: Optional[LitConfig] = None, *, offload_video_to_cpu: bool = False,
                 offload_state_to_cpu: bool = False):
        self.predictor = predictor
        self.video = video if isinstance(video, Video) else load_video(video)
        self.config = config or LitConfig()
        self.state = predictor.init_state_from_frames(self.video.frames, offload_video_to_cpu=offload_video_to_cpu,
                                                      offload_state_to_cpu=offload_state_to_cpu)
        # decoder inputs of each tracked (object, frame), captured by the predictor's hook
        self.captures = CaptureStore(self.config.capture_budget_mb, self.config.capture_dtype)
        self.state[CAPTURE_KEY] = self._on_capture
        # each frame's image-encoder output, reused when tracking passes over the frame again
        self.features = self.state[FEATURE_CACHE_KEY] = FeatureCache(self.config.feature_cache_mb)
        if self.config.use_adapter_in_propagation:
            self.state[DECODER_KEY] = self._tracking_decoder
        self._prompt = EmptyPrompt(predictor) if self.config.learns else None
        self.learners: dict[int, ObjectLearner | PaperLearner] = {}  # obj_id -> its adapters and corrections
        # the paper protocol's oracle: obj_id -> {frame: GT mask}, and {frame: void pixels}
        self.ground_truth: dict[int, dict[int, np.ndarray]] = {}
        self.void: dict[int, np.ndarray] = {}
        self.masks: dict[int, dict[int, np.ndarray]] = {}  # frame -> {obj_id: (H, W) bool}, latest shown
        self.pending: dict[tuple[int, int], PendingCorrection] = {}
        self.history = History(
            video=dict(name=self.video.name, num_frames=self.num_frames, height=self.video.height,
                       width=self.video.width, fps=self.video.fps),
            model=dict(name=predictor.model_name, image_size=predictor.image_size, untrained=predictor.untrained,
                       label=predictor.model_label),
            config=self.config.to_dict())

    # ------------------------------------------------------------------ facts
    @property
    def num_frames(self) -> int:
        return self.video.num_frames

    @property
    def obj_ids(self) -> list[int]:
        return list(self.state["obj_ids"])

    # ---------------------------------------------------------------- pickling (the app on ZeroGPU)
    # Learners keep the model's own mask decoder as the base of their next adapter. It belongs to
    # the model, which a shared predictor pickles by name (app/state.py), so it is left out here
    # and re-attached on load instead of travelling as a copy of the weights. The image features
    # SAM2 and litdemo cache are left behind too (feature_cache.py says why).
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["state"] = {**self.state, "cached_features": {}}
        own = self.predictor._modules["sam_mask_decoder"]
        state["learners"] = {obj_id: _without_base(learner, own) for obj_id, learner in self.learners.items()}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        for learner in self.learners.values():
            if learner.base_decoder is None:
                learner.base_decoder = self.predictor._modules["sam_mask_decoder"]

    @property
    def untrained(self) -> bool:
        return self.predictor.untrained

    def mask(self, frame_idx: int, obj_id: int) -> Optional[np.ndarray]:
        """The latest mask shown for an object on a frame (None if never computed)."""
        return self.masks.get(frame_idx, {}).get(obj_id)

    def is_tracked(self, frame_idx: int, obj_id: int) -> bool:
        obj_idx = self.state["obj_id_to_idx"].get(obj_id)
        return obj_idx is not None and frame_idx in self.state["frames_tracked_per_obj"][obj_idx]

    def is_conditioning_frame(self, frame_idx: int, obj_id: int) -> bool:
        """Whether SAM2 keeps this frame's mask as is when propagation passes it again."""
        return is_conditioning_frame(self.state, frame_idx, obj_id)

    @property
    def paper(self) -> bool:
        """True when this session follows the LIT author's evaluation rules (litdemo/protocols.py)."""
        return self.config.protocol == "paper"

    def set_ground_truth(self, obj_id: int, masks: dict, void: Optional[dict] = None) -> None:
        """Give the paper protocol its oracle: {frame: (H, W) GT mask} of an object, and optionally
        {frame: (H, W) void pixels} left out of every IoU. Under the paper protocol corrections then
        train on the GT, accepted suggestions join the buffer with the GT, and suggestions come
        from the adapter that best matches the GT; the interactive protocol never reads it."""
        self.ground_truth[int(obj_id)] = {int(t): self._check_mask(m) for t, m in masks.items()}
        self.void.update({int(t): self._check_mask(m) for t, m in (void or {}).items()})

    # ------------------------------------------------------------------ prompt
    def prompt(self, frame_idx: int, obj_id: int, points=None, labels=None, box=None,
               mask: Optional[np.ndarray] = None) -> np.ndarray:
        """Start (or restart) an object on a frame with clicks, a box or a mask. Returns its mask."""
        self._check_frame(frame_idx)
        obj_id = self._check_obj_id(obj_id, allow_new=True)
        if self.is_tracked(frame_idx, obj_id):
            raise ValueError(f"Object {obj_id} is already tracked on frame {frame_idx}; fix it with "
                             f"click()/correct() so LIT can learn from it, or clear_frame() first.")
        start = time.perf_counter()
        if mask is not None:
            if points is not None or box is not None:
                raise ValueError("Give either a mask or clicks/box, not both.")
            shown = self._sam2_mask(frame_idx, obj_id, mask=self._check_mask(mask))
            source = "mask"
        else:
            pts, lbl = self._check_clicks(points, labels, allow_empty=box is not None)
            bx = self._check_box(box) if box is not None else None
            shown = self._sam2_clicks(frame_idx, obj_id, pts, lbl, box=bx, clear=True)
            source = "box" if box is not None else "clicks"
        self.history.add(Event(kind="prompt", frame_idx=frame_idx, obj_id=obj_id, source=source,
                               clicks=_clicks_list(points, labels), box=None if box is None else list(map(float, box)),
                               mask=encode_mask(shown), wall_seconds=time.perf_counter() - start))
        return shown

    def click(self, frame_idx: int, obj_id: int, x: float, y: float, positive: bool = True) -> np.ndarray:
        """One interactive click. On an untracked frame it refines the prompt; on a tracked frame it
        starts/extends a correction that `correct()` (or the next `propagate()`) commits."""
        self._check_frame(frame_idx)
        obj_id = self._check_obj_id(obj_id, allow_new=True)
        pts, lbl = self._check_clicks([[x, y]], [int(positive)])
        key = (frame_idx, obj_id)
        if self.is_tracked(frame_idx, obj_id) or key in self.pending:
            if key not in self.pending:
                self._ensure_captured(frame_idx, obj_id)  # before SAM2's state sees the correction
                self.pending[key] = PendingCorrection(tracked_mask=self.mask(frame_idx, obj_id).copy())
            self.pending[key].clicks.append([float(x), float(y), int(positive)])
            # paper protocol: each click replaces the earlier ones (SAM2 still gets the previous mask logits)
            replace = self.paper or len(self.pending[key].clicks) == 1
            return self._sam2_clicks(frame_idx, obj_id, pts, lbl, clear=replace)
        # a prompt being built click by click: one prompt event per frame, updated in place
        shown = self._sam2_clicks(frame_idx, obj_id, pts, lbl, clear=False)
        event = self._last_prompt_event(frame_idx, obj_id)
        if event is None:
            event = self.history.add(Event(kind="prompt", frame_idx=frame_idx, obj_id=obj_id, source="clicks"))
        event.clicks.append([float(x), float(y), int(positive)])
        event.mask = encode_mask(shown)
        return shown

    def undo_click(self, frame_idx: int, obj_id: int) -> Optional[np.ndarray]:
        """Remove the last click on a frame; returns the mask shown afterwards."""
        key = (frame_idx, obj_id)
        if key in self.pending:
            pending = self.pending[key]
            pending.clicks.pop()
            if not pending.clicks:
                del self.pending[key]
                self._sam2_clear(frame_idx, obj_id)
                self.masks.setdefault(frame_idx, {})[obj_id] = pending.tracked_mask
                return pending.tracked_mask
            return self._sam2_clicks(frame_idx, obj_id, *_split(pending.clicks), clear=True)
        event = self._last_prompt_event(frame_idx, obj_id)
        if event is None or not event.clicks:
            raise ValueError(f"There is no click to undo on frame {frame_idx} for object {obj_id}.")
        event.clicks.pop()
        if not event.clicks:
            self.history.events.remove(event)
            self._sam2_clear(frame_idx, obj_id)
            self.masks.get(frame_idx, {}).pop(obj_id, None)
            return None
        shown = self._sam2_clicks(frame_idx, obj_id, *_split(event.clicks), clear=True)
        event.mask = encode_mask(shown)
        return shown

    # ------------------------------------------------------------------ propagate
    def propagate(self, start_frame: Optional[int] = None, reverse: bool = False,
                  max_frames: Optional[int] = None) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
        """Track all objects frame by frame; yields (frame_idx, {obj_id: (H, W) bool}).

        Clicks still pending on a frame are committed as corrections first, so LIT learns from them.
        Stopping the loop early is fine: frames already tracked keep their results.
        """
        if not self.obj_ids:
            raise RuntimeError("No object yet: prompt an object (click, box or mask) before propagating.")
        if start_frame is not None:
            self._check_frame(start_frame)
        for frame_idx, obj_id in list(self.pending):
            self.correct(frame_idx, obj_id)
        for frame_idx, obj_ids, logits in self.predictor.propagate_in_video(
                self.state, start_frame_idx=start_frame, max_frame_num_to_track=max_frames, reverse=reverse):
            masks = {oid: (logits[i, 0] > 0).cpu().numpy() for i, oid in enumerate(obj_ids)}
            self.masks.setdefault(frame_idx, {}).update(masks)
            yield frame_idx, masks

    def propagate_all(self, **kwargs) -> dict[int, dict[int, np.ndarray]]:
        """Run `propagate` to the end and return every frame's masks."""
        return {f: m for f, m in self.propagate(**kwargs)}

    # ------------------------------------------------------------------ correct
    def correct(self, frame_idx: int, obj_id: int, mask: Optional[np.ndarray] = None,
                points=None, labels=None, on_step: Optional[Callable[[int, float, float], None]] = None) -> Event:
        """Fix an object on a tracked frame and let LIT learn from it.

        Give a mask, or clicks (resolved to a mask by SAM2), or nothing to commit the clicks made
        with `click()`. A mask is bool, 0/1 integers, or float probabilities thresholded at 0.5
        (NaN refused); the same holds for `prompt(mask=...)`. A mask given after clicks counts as
        a mask fall-back (clicks not enough).
        on_step(step, loss, iou) follows the training live.
        """
        self._check_frame(frame_idx)
        obj_id = self._check_obj_id(obj_id)
        key = (frame_idx, obj_id)
        if key not in self.pending and not self.is_tracked(frame_idx, obj_id):
            raise ValueError(f"Frame {frame_idx} has not been tracked for object {obj_id} yet: propagate first "
                             f"(or use prompt() to start the object there).")
        if mask is not None:
            mask = self._check_mask(mask)
        if points is not None:
            pts, lbl = self._check_clicks(points, labels)
        if mask is None and points is None and key not in self.pending:
            raise ValueError("Nothing to correct with: give a mask or clicks, or click() on the frame first.")
        start = time.perf_counter()
        if key not in self.pending:
            self._ensure_captured(frame_idx, obj_id)
            self.pending[key] = PendingCorrection(tracked_mask=self.mask(frame_idx, obj_id).copy())
        pending = self.pending.pop(key)
        if points is not None:
            for (x, y), l in zip(pts, lbl):
                pending.clicks.append([float(x), float(y), int(l)])
            final = self._sam2_clicks(frame_idx, obj_id, *_split(pending.clicks), clear=True)
        if mask is not None:
            self._sam2_mask(frame_idx, obj_id, mask=mask)
            final = mask  # the user's mask is the target; SAM2 shows it after its own resize
        elif points is None:
            final = self.mask(frame_idx, obj_id)
        event = Event(kind="correction", frame_idx=frame_idx, obj_id=obj_id,
                      source="mask" if mask is not None else "clicks", clicks=pending.clicks,
                      mask_fallback=mask is not None and bool(pending.clicks), mask=encode_mask(final),
                      iou_before=iou(pending.tracked_mask, final))
        self._learn(event, final, on_step)
        event.wall_seconds = time.perf_counter() - start
        return self.history.add(event)

    # ------------------------------------------------------------------ suggest / accept
    def suggest(self, frame_idx: int, obj_id: int) -> Optional[np.ndarray]:
        """The adapter's mask for a tracked frame, or None when nothing has been learned yet."""
        self._check_frame(frame_idx)
        obj_id = self._check_obj_id(obj_id)
        learner = self.learners.get(obj_id)
        if learner is None or not learner.trained:
            return None
        if not self.is_tracked(frame_idx, obj_id):
            raise ValueError(f"Frame {frame_idx} has not been tracked for object {obj_id}; propagate to it first.")
        inputs = self._ensure_captured(frame_idx, obj_id)
        match = self._paper_match(frame_idx, obj_id, inputs)
        if match is not None:  # paper protocol: the user picks the suggestion closest to the GT
            return match.mask
        out, _ = learner.predict(inputs)
        return to_video_mask(out, self.video.height, self.video.width)[0].cpu().numpy()

    def suggestions(self, frame_idx: int, obj_id: int) -> list[Suggestion]:
        """One suggestion per trained adapter (multi-LoRA: up to `max_adapters`), in adapter order.

        The interactive form of the paper's multi-LoRA evaluation, where the best adapter's mask is
        taken: the user sees every adapter's mask with its predicted IoU and picks one (`accept(...,
        adapter=k)`). Empty when nothing has been learned yet.
        """
        self._check_frame(frame_idx)
        obj_id = self._check_obj_id(obj_id)
        learner = self.learners.get(obj_id)
        if learner is None or not learner.trained:
            return []
        if not self.is_tracked(frame_idx, obj_id):
            raise ValueError(f"Frame {frame_idx} has not been tracked for object {obj_id}; propagate to it first.")
        inputs = self._ensure_captured(frame_idx, obj_id)
        return [Suggestion(adapter=i, mask=to_video_mask(out, self.video.height, self.video.width)[0].cpu().numpy(),
                           predicted_iou=float(out.iou_pred.item()))
                for out, i in learner.predict_each(inputs)]

    def accept(self, frame_idx: int, obj_id: int, adapter: Optional[int] = None) -> Event:
        """Take the suggestion on a frame as is: into SAM2's memory, recorded as accepted (not a correction).

        `adapter=k` takes adapter k's suggestion (see `suggestions`); by default the most confident
        adapter's. The event records which adapter suggested the mask (`adapter_idx`).
        """
        start = time.perf_counter()
        offered = {s.adapter: s for s in self.suggestions(frame_idx, obj_id)}
        if not offered:
            raise ValueError(f"There is no suggestion for object {obj_id} yet: LIT suggests after the first "
                             f"correction (and never in mode 'sam2').")
        if adapter is None:  # as suggest(): the adapter whose decoder is most confident
            adapter = max(offered.values(), key=lambda s: s.predicted_iou).adapter
        if adapter not in offered:
            raise ValueError(f"Adapter {adapter} has no suggestion for object {obj_id}; the trained adapters "
                             f"are {sorted(offered)}.")
        suggestion = offered[adapter].mask
        tracked = self.mask(frame_idx, obj_id)
        self.pending.pop((frame_idx, obj_id), None)
        if self.paper:
            suggestion = self._paper_accept(frame_idx, obj_id)
        else:
            self._sam2_mask(frame_idx, obj_id, mask=suggestion)
        return self.history.add(Event(kind="accepted", frame_idx=frame_idx, obj_id=obj_id, source="suggestion",
                                      mask=encode_mask(suggestion), iou_before=iou(tracked, suggestion),
                                      adapter_idx=adapter, wall_seconds=time.perf_counter() - start))

    # ------------------------------------------------------------------ housekeeping
    def clear_frame(self, frame_idx: int, obj_id: Optional[int] = None) -> None:
        """Drop the clicks/mask given on a frame (for one object or all)."""
        self._check_frame(frame_idx)
        for oid in ([self._check_obj_id(obj_id)] if obj_id is not None else self.obj_ids):
            self.pending.pop((frame_idx, oid), None)
            self._sam2_clear(frame_idx, oid)
            if not self.is_tracked(frame_idx, oid):  # it was only prompted here: nothing is shown any more
                self.masks.get(frame_idx, {}).pop(oid, None)
                prompt = self._last_prompt_event(frame_idx, oid)
                if prompt is not None:
                    self.history.events.remove(prompt)

    def remove_object(self, obj_id: int) -> None:
        obj_id = self._check_obj_id(obj_id)
        self.predictor.remove_object(self.state, obj_id)
        self.learners.pop(obj_id, None)
        self.captures.drop_object(obj_id)
        for frame_masks in self.masks.values():
            frame_masks.pop(obj_id, None)
        self.pending = {k: v for k, v in self.pending.items() if k[1] != obj_id}

    def reset(self) -> None:
        """Forget everything about this video: prompts, tracking, adapters, history."""
        self.predictor.reset_state(self.state)
        self.learners.clear()
        self.captures.clear()
        self.features.clear()
        self.masks.clear()
        self.pending.clear()
        self.history.events.clear()

    # ------------------------------------------------------------------ continue a saved session
    def replay(self, history: History, progress: Optional[Callable[[int, int], None]] = None) -> None:
        """Continue a saved session: apply its prompts, corrections and accepted suggestions again, in order.

        Each event is applied with the mask it recorded (what the user saw, whatever the model), and
        tracking runs to each event's frame first. Corrections train the adapters again on the same
        masks, so the session ends where the saved one stood, up to the randomness of training.
        The video must be the one the history was recorded on; call on a fresh (or reset) session.
        """
        saved = history.video
        if (saved.get("num_frames"), saved.get("height"), saved.get("width")) != \
                (self.num_frames, self.video.height, self.video.width):
            raise ValueError(f"This history was recorded on a {saved.get('num_frames')}-frame "
                             f"{saved.get('width')}x{saved.get('height')} video, but this one has {self.num_frames} "
                             f"frames of {self.video.width}x{self.video.height}; open the same video first.")
        if self.history.events:
            raise ValueError("replay() continues a saved session on a fresh one: call reset() first.")
        history.check_fits(self.num_frames, self.video.height, self.video.width)  # before decoding any mask
        for i, saved_event in enumerate(history.events):
            if progress is not None:
                progress(i, len(history.events))
            self._replay_event(saved_event)

    def _replay_event(self, saved: Event) -> None:
        mask, frame, obj = saved.mask_array((self.video.height, self.video.width)), saved.frame_idx, saved.obj_id
        if mask is None:
            raise ValueError(f"The {saved.kind} on frame {frame} has no mask recorded; the history is incomplete.")
        if saved.kind == "prompt":
            if self.is_tracked(frame, obj):
                self.clear_frame(frame, obj)  # the user restarted the object here
            self.prompt(frame, obj, mask=mask)
            self.history.events[-1].source, self.history.events[-1].clicks = saved.source, saved.clicks
            return
        self.track_to(frame, obj)
        if saved.kind == "correction":
            event = self.correct(frame, obj, mask=mask)
            event.source, event.clicks, event.mask_fallback = saved.source, saved.clicks, saved.mask_fallback
        else:
            tracked = self.mask(frame, obj)
            self._sam2_mask(frame, obj, mask=mask)
            self.history.add(Event(kind="accepted", frame_idx=frame, obj_id=obj, source="suggestion",
                                   mask=encode_mask(mask), iou_before=iou(tracked, mask),
                                   adapter_idx=saved.adapter_idx))

    def track_to(self, frame_idx: int, obj_id: int) -> None:
        """Propagate from the nearest frame with a mask (before it, else after it) until `frame_idx` is tracked."""
        if self.is_tracked(frame_idx, obj_id):
            return
        before = [t for t in range(frame_idx - 1, -1, -1) if self.mask(t, obj_id) is not None]
        after = [t for t in range(frame_idx + 1, self.num_frames) if self.mask(t, obj_id) is not None]
        if not before and not after:
            raise ValueError(f"Object {obj_id} has no prompt to track from to frame {frame_idx}; prompt it first.")
        start, reverse = (before[0], False) if before else (after[0], True)
        for f, _ in self.propagate(start_frame=start, reverse=reverse):
            if f == frame_idx:
                break

    # ------------------------------------------------------------------ export
    def export(self, out_dir: Union[str, Path], overlay_video: bool = True, overwrite: bool = False) -> dict[str, Path]:
        """Write masks/ (DAVIS palette PNGs), overlay.mp4, history.json and adapters/ into out_dir."""
        from .export import export_session

        return export_session(self, out_dir, overlay_video=overlay_video, overwrite=overwrite)

    def save_adapters(self, folder: Union[str, Path]) -> list[Path]:
        from .export import save_session_adapters

        return save_session_adapters(self, folder)

    # ------------------------------------------------------------------ internals
    def _on_capture(self, obj_idx: int, frame_idx: int, image_embed: torch.Tensor, high_res) -> None:
        if self.config.learns:
            self.captures.put(self.state["obj_idx_to_id"][obj_idx], frame_idx, image_embed, high_res)

    def _tracking_decoder(self, obj_idx: int):
        learner = self.learners.get(self.state["obj_idx_to_id"][obj_idx])
        return learner.tracking_decoder() if learner is not None else None

    def _ensure_captured(self, frame_idx: int, obj_id: int):
        if not self.config.learns:
            return None
        inputs = self.captures.get(obj_id, frame_idx)
        if inputs is None:  # dropped for memory (or never tracked): recompute from SAM2's memory
            self.predictor.recompute_decoder_inputs(self.state, frame_idx, obj_id)
            inputs = self.captures.get(obj_id, frame_idx)
        return inputs

    def _learn(self, event: Event, final: np.ndarray, on_step=None) -> None:
        if not self.config.learns:
            return
        inputs = self._ensure_captured(event.frame_idx, event.obj_id)
        learner = self.learners.get(event.obj_id)
        if learner is None:
            kind = PaperLearner if self.paper else ObjectLearner
            learner = self.learners[event.obj_id] = kind(self.predictor.sam_mask_decoder, self._prompt, self.config)
        if self.paper:  # the paper protocol trains on the ground truth, also after clicks that reached tau
            final = self._truth(event.frame_idx, event.obj_id)
        void = self.void.get(event.frame_idx) if self.paper else None
        before = self.suggest(event.frame_idx, event.obj_id)
        event.suggestion_iou_before = None if before is None else iou(before, final, void=void)
        sample = TrainingSample(event.frame_idx, inputs, self._decoder_target(final))
        if self.paper:
            curve, adapter_idx = learner.learn(sample, final, void, on_step)
        else:
            curve, adapter_idx = learner.learn(sample, on_step)
        event.train_curve, event.adapter_idx, event.train_seconds = curve.to_dict(), adapter_idx, curve.seconds
        event.suggestion_iou_after = iou(self.suggest(event.frame_idx, event.obj_id), final, void=void)

    def _decoder_target(self, mask: np.ndarray) -> torch.Tensor:
        """(1, 1, S/4, S/4) float {0, 1}: the mask resized the way SAM2 resizes mask prompts."""
        size = self.predictor.image_size // 4
        m = torch.from_numpy(mask.astype(np.float32))[None, None]
        m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return (m >= 0.5).float()

    def _sam2_clicks(self, frame_idx, obj_id, points, labels, box=None, clear=True) -> np.ndarray:
        # on a tracked frame clicks are a correction: memory frame kind by the protocol's rule
        with conditioning(self.predictor, self._fixes_as_conditioning("clicks")):
            _, obj_ids, logits = self.predictor.add_new_points_or_box(
                self.state, frame_idx, obj_id, points=points, labels=labels, box=box, clear_old_points=clear)
        return self._store_shown(frame_idx, obj_id, obj_ids, logits)

    def _sam2_mask(self, frame_idx, obj_id, mask) -> np.ndarray:
        with conditioning(self.predictor, self._fixes_as_conditioning("mask")):
            _, obj_ids, logits = self.predictor.add_new_mask(self.state, frame_idx, obj_id, mask)
        return self._store_shown(frame_idx, obj_id, obj_ids, logits)

    def _fixes_as_conditioning(self, kind: str) -> bool:
        """Whether a fix on a tracked frame becomes a SAM2 conditioning frame. Interactive: the
        config says (clicks and masks alike). Paper: click fixes are ordinary memory frames and
        mask fall-backs conditioning frames, as in the author's evaluation code. (A frame never
        tracked before is always a conditioning frame: that is SAM2's rule for prompts.)"""
        if self.paper:
            return kind == "mask"
        return self.config.corrections_as_conditioning

    # ------------------------------------------------------------------ the paper protocol's oracle
    def _truth(self, frame_idx: int, obj_id: int) -> np.ndarray:
        truth = self.ground_truth.get(obj_id, {}).get(frame_idx)
        if truth is None:
            raise ValueError(f"The paper protocol trains on the ground truth, but none was given for object {obj_id} "
                             f"on frame {frame_idx}; call set_ground_truth() first (the simulated user does).")
        return truth

    def _paper_match(self, frame_idx: int, obj_id: int, inputs):
        """Under the paper protocol with GT on this frame: the adapter closest to the GT, else None."""
        learner = self.learners.get(obj_id)
        if not self.paper or frame_idx not in self.ground_truth.get(obj_id, {}) or learner is None:
            return None
        return learner.best_match(inputs, self._truth(frame_idx, obj_id), self.void.get(frame_idx))

    def _paper_accept(self, frame_idx: int, obj_id: int) -> np.ndarray:
        """Accept as the author's code does: the suggestion's own logits into SAM2's memory as an
        ordinary frame, and the frame into the suggesting adapter's buffer with the GT as target."""
        inputs = self._ensure_captured(frame_idx, obj_id)
        match = self._paper_match(frame_idx, obj_id, inputs)
        if match is None:
            raise ValueError(f"The paper protocol accepts a suggestion only where the ground truth is known; "
                             f"call set_ground_truth() with frame {frame_idx} first.")
        shown = remember_suggestion(self.predictor, self.state, frame_idx, obj_id, match.output)
        self.masks.setdefault(frame_idx, {})[obj_id] = shown
        truth = self._truth(frame_idx, obj_id)
        sample = TrainingSample(frame_idx, inputs, self._decoder_target(truth))
        self.learners[obj_id].remember_accepted(sample, truth, self.void.get(frame_idx), match)
        return shown

    def _sam2_clear(self, frame_idx, obj_id) -> None:
        if obj_id in self.state["obj_id_to_idx"]:
            self.predictor.clear_all_prompts_in_frame(self.state, frame_idx, obj_id, need_output=False)

    def _store_shown(self, frame_idx, obj_id, obj_ids, logits) -> np.ndarray:
        shown = (logits[obj_ids.index(obj_id), 0] > 0).cpu().numpy()
        self.masks.setdefault(frame_idx, {})[obj_id] = shown
        return shown

    def _last_prompt_event(self, frame_idx, obj_id) -> Optional[Event]:
        for e in reversed(self.history.events):
            if e.kind == "prompt" and e.frame_idx == frame_idx and e.obj_id == obj_id:
                return e
        return None

    # ------------------------------------------------------------------ input checks
    def _check_frame(self, frame_idx: int) -> None:
        if not is_whole(frame_idx):  # bools too: True would be frame 1 to Python
            raise IndexError(f"frame index {frame_idx!r} is not a whole number; give a frame number in "
                             f"0..{self.num_frames - 1}.")
        if not 0 <= frame_idx < self.num_frames:
            raise IndexError(f"frame index {frame_idx!r} is out of range: this video has frames 0..{self.num_frames - 1}.")

    def _check_obj_id(self, obj_id, allow_new: bool = False) -> int:
        if not isinstance(obj_id, (int, np.integer)) or isinstance(obj_id, bool):
            raise ValueError(f"object ids are integers (got {obj_id!r}).")
        obj_id = int(obj_id)
        if not allow_new and obj_id not in self.state["obj_id_to_idx"]:
            raise KeyError(f"unknown object id {obj_id}; known objects: {self.obj_ids or 'none yet (prompt one first)'}.")
        return obj_id

    def _check_mask(self, mask) -> np.ndarray:
        return bool_mask(mask, (self.video.height, self.video.width))

    def _check_clicks(self, points, labels, allow_empty: bool = False):
        if points is None or len(points) == 0:
            if allow_empty:
                return None, None
            raise ValueError("give at least one click as points=[[x, y]], labels=[1 (positive) or 0 (negative)].")
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        lbl = np.ones(len(pts), np.int32) if labels is None else np.asarray(labels, dtype=np.int32).reshape(-1)
        if len(lbl) != len(pts):
            raise ValueError(f"{len(pts)} points but {len(lbl)} labels; give one label per point.")
        if not np.isin(lbl, (0, 1)).all():
            raise ValueError(f"labels must be 1 (positive) or 0 (negative), got {lbl.tolist()}.")
        w, h = self.video.width, self.video.height
        outside = ~((pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h))
        if outside.any():
            raise ValueError(f"click {pts[outside][0].tolist()} is outside the {w}x{h} frame; x must be in [0, {w}) "
                             f"and y in [0, {h}) (pixels, x = column).")
        return pts, lbl

    def _check_box(self, box) -> np.ndarray:
        b = np.asarray(box, dtype=np.float32).reshape(-1)
        if b.shape != (4,) or not (b[0] < b[2] and b[1] < b[3]):
            raise ValueError(f"box must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got {np.asarray(box).tolist()}.")
        w, h = self.video.width, self.video.height
        if b.min() < 0 or b[2] > w or b[3] > h:
            raise ValueError(f"box {b.tolist()} leaves the {w}x{h} frame; keep 0 <= x <= {w} and 0 <= y <= {h}.")
        return b


def _split(clicks: list) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(clicks, dtype=np.float32).reshape(-1, 3)
    return arr[:, :2], arr[:, 2].astype(np.int32)


def _clicks_list(points, labels) -> list:
    if points is None:
        return []
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    lbl = np.ones(len(pts), int) if labels is None else np.asarray(labels).reshape(-1)
    return [[float(x), float(y), int(l)] for (x, y), l in zip(pts, lbl)]


def _without_base(learner, decoder: torch.nn.Module):
    """A shallow copy of `learner` without its base decoder when that is the model's own `decoder`."""
    if learner.base_decoder is not decoder:
        return learner
    light = copy.copy(learner)
    light.base_decoder = None
    return light
