"""SAM2's video predictor with the three hooks LIT needs.

We subclass `sam2.sam2_video_predictor.SAM2VideoPredictor` rather than patch it, and add:

1. `init_state_from_frames`: start a session from frames already in memory. sam2's own
   `init_state` only reads a JPEG folder or an mp4 path; we build the same inference-state
   dict ourselves and hand SAM2 a lazy frame sequence (exactly what sam2's async JPEG loader
   does), so no frames are ever written to disk.
2. A capture hook: while tracking, every decoder call that produced a frame's output is
   reported (memory-conditioned image embedding + high-res features) to a callback stored in
   the inference state. A correction on that frame later trains on exactly these inputs.
3. A decoder hook: the inference state may name another mask decoder (the LIT-adapted copy)
   for plain tracking calls; the model itself is never modified.
4. A backbone feature cache: the inference state may hold a `FeatureCache`, and then each
   frame's image-encoder output is computed once and reused by every later call on that frame
   (re-propagation after a correction, recomputed captures), where sam2 keeps only the last one.

State lives in the inference-state dict, never on the shared model, so one loaded model can
serve several sessions (e.g. browser tabs). The two things a call must remember while it runs
(which object it tracks, which decoder it uses) are kept per thread, so sessions may even run
at the same time in different threads (the app's `concurrency_limit` > 1).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from sam2.sam2_video_predictor import SAM2VideoPredictor

# ImageNet statistics, the normalisation SAM2 was trained with (sam2/utils/misc.py).
IMG_MEAN = (0.485, 0.456, 0.406)
IMG_STD = (0.229, 0.224, 0.225)

# Per-thread, per-predictor state of the call running right now (see `_running`, `sam_mask_decoder`).
_CALLS = threading.local()

# Inference-state keys added by litdemo (sam2 ignores keys it does not know).
CAPTURE_KEY = "lit_capture"          # callable(obj_idx, frame_idx, image_embed, high_res_feats)
DECODER_KEY = "lit_tracking_decoder"  # callable(obj_idx) -> Optional[nn.Module]
FEATURE_CACHE_KEY = "lit_feature_cache"  # FeatureCache: backbone features of many frames


class ResizedFrames(Sequence):
    """Frames resized to the model's square input, kept as uint8 and normalised on access.

    uint8 storage is 4x smaller than sam2's float32 frame tensor; the resize uses PIL's default
    filter exactly like sam2's JPEG loader, so both routes give identical model inputs.
    """

    def __init__(self, frames: np.ndarray, image_size: int, device: torch.device):
        resized = [np.asarray(Image.fromarray(f).resize((image_size, image_size))) for f in frames]
        self._data = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).contiguous()  # (T, 3, S, S) uint8
        self._data = self._data.to(device)
        self._mean = torch.tensor(IMG_MEAN, device=device)[:, None, None]
        self._std = torch.tensor(IMG_STD, device=device)[:, None, None]

    def __len__(self) -> int:
        return self._data.shape[0]

    def __getitem__(self, idx: int) -> torch.Tensor:
        img = self._data[idx].float() / 255.0  # (3, S, S) in [0, 1]
        return (img - self._mean) / self._std


class LitVideoPredictor(SAM2VideoPredictor):
    """SAM2VideoPredictor + in-memory frames + decoder-input capture + decoder override."""

    def __init__(self, add_all_frames_to_correct_as_cond: bool = True, **kwargs):
        # Corrections become conditioning frames: re-propagating from a corrected frame then
        # keeps the correction instead of recomputing (and overwriting) it.
        super().__init__(add_all_frames_to_correct_as_cond=add_all_frames_to_correct_as_cond, **kwargs)
        self.model_name = "custom"   # set by litdemo.models.load_sam2
        self.untrained = False       # True when built without weights (random init)
        self.model_label = "SAM2.1 (custom)"  # how the UI names it; micro says it is not SAM2.1
        # (loader, args) when the app shares this model between processes (app/state.py): pickling
        # then sends only the name, and the other process uses its own copy. None: pickled by value.
        self.shared_as: Optional[tuple] = None

    def __reduce_ex__(self, protocol):
        if getattr(self, "shared_as", None) is not None:
            return self.shared_as
        return super().__reduce_ex__(protocol)

    # ------------------------------------------------------------------ per-call state, per thread
    # Two tabs may track at the same time on this one model (two threads). What one call must
    # remember while it runs lives in a thread-local slot keyed by the predictor, never on `self`.
    def _call_slot(self) -> dict:
        slots = getattr(_CALLS, "slots", None)
        if slots is None:
            slots = _CALLS.slots = {}
        return slots.setdefault(id(self), {})

    @property
    def _running(self) -> Optional[tuple[dict, int]]:
        """(inference_state, obj_idx) of the single-frame inference this thread is running."""
        return self._call_slot().get("running")

    @_running.setter
    def _running(self, value: Optional[tuple[dict, int]]) -> None:
        self._call_slot()["running"] = value

    @property
    def sam_mask_decoder(self) -> torch.nn.Module:
        """SAM2's own mask decoder, or the adapted copy this thread's tracking call uses.

        sam2 reads `self.sam_mask_decoder` deep inside `_forward_sam_heads`; answering per thread
        lets one call use an adapted copy while another thread's call sees SAM2's own. Assignment
        still goes to `nn.Module`'s registry, so state dicts and checkpoints are unchanged."""
        override = self._call_slot().get("decoder")
        return override if override is not None else self._modules["sam_mask_decoder"]

    # ------------------------------------------------------------------ state from frames
    @torch.inference_mode()
    def init_state_from_frames(
        self,
        frames: np.ndarray,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
    ) -> dict:
        """Like `init_state`, but from an in-memory (T, H, W, 3) uint8 RGB array."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be a (T, H, W, 3) uint8 array, got {frames.shape} {frames.dtype}.")
        device = self.device
        storage = torch.device("cpu") if offload_video_to_cpu else device
        state: dict = {
            "images": ResizedFrames(frames, self.image_size, storage),
            "num_frames": int(frames.shape[0]),
            "offload_video_to_cpu": offload_video_to_cpu,
            "offload_state_to_cpu": offload_state_to_cpu,
            "video_height": int(frames.shape[1]),
            "video_width": int(frames.shape[2]),
            "device": device,
            "storage_device": torch.device("cpu") if offload_state_to_cpu else device,
            # the remaining keys are the ones sam2's init_state creates (sam2 1.1.0)
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": OrderedDict(),
            "obj_idx_to_id": OrderedDict(),
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }
        self._get_image_feature(state, frame_idx=0, batch_size=1)  # warm up, as sam2 does
        return state

    # ------------------------------------------------------------------ hooks
    def _get_image_feature(self, inference_state, frame_idx, batch_size):
        # sam2 reads features from its one-frame `cached_features` when the frame is there, so
        # we put our cached copy there first, and keep whatever sam2 computed on a miss.
        cache = inference_state.get(FEATURE_CACHE_KEY)
        if cache is None or not cache.enabled:
            return super()._get_image_feature(inference_state, frame_idx, batch_size)
        device = inference_state["device"]
        if frame_idx not in inference_state["cached_features"]:
            backbone_out = cache.get(frame_idx, device)
            if backbone_out is not None:
                # the normalised image is part of sam2's entry, though tracking never reads it
                image = inference_state["images"][frame_idx].to(device).float().unsqueeze(0)
                inference_state["cached_features"] = {frame_idx: (image, backbone_out)}
        features = super()._get_image_feature(inference_state, frame_idx, batch_size)
        if frame_idx not in cache:
            cache.put(frame_idx, inference_state["cached_features"][frame_idx][1], inference_state["storage_device"])
        return features

    def _run_single_frame_inference(self, **kwargs):
        # Remember which object this call is for: `_track_step` below only sees its output dict.
        state, output_dict = kwargs["inference_state"], kwargs["output_dict"]
        obj_idx = next(i for i, d in state["output_dict_per_obj"].items() if d is output_dict)
        self._running = (state, obj_idx)
        try:
            return super()._run_single_frame_inference(**kwargs)
        finally:
            self._running = None

    def _track_step(self, frame_idx, is_init_cond_frame, current_vision_feats, current_vision_pos_embeds,
                    feat_sizes, point_inputs, mask_inputs, *args, **kwargs):
        # Plain tracking = no clicks and no mask on this frame: the only calls LIT cares about.
        tracking = self._running is not None and point_inputs is None and mask_inputs is None
        decoder = None
        if tracking and not is_init_cond_frame:
            state, obj_idx = self._running
            pick = state.get(DECODER_KEY)
            decoder = pick(obj_idx) if pick is not None else None
        with self._using_decoder(decoder):
            current_out, sam_outputs, high_res_features, pix_feat = super()._track_step(
                frame_idx, is_init_cond_frame, current_vision_feats, current_vision_pos_embeds,
                feat_sizes, point_inputs, mask_inputs, *args, **kwargs)
        if tracking:
            state, obj_idx = self._running
            sink: Optional[Callable] = state.get(CAPTURE_KEY)
            if sink is not None:
                # pix_feat: (1, 256, S/16, S/16); high_res_features: [(1, 32, S/4, S/4), (1, 64, S/8, S/8)]
                sink(obj_idx, frame_idx, pix_feat, high_res_features)
        return current_out, sam_outputs, high_res_features, pix_feat

    @contextmanager
    def _using_decoder(self, decoder: Optional[torch.nn.Module]):
        """Run one tracking call with another mask decoder, then put SAM2's own back."""
        if decoder is None:
            yield
            return
        slot = self._call_slot()
        outer, slot["decoder"] = slot.get("decoder"), decoder
        try:
            yield
        finally:
            slot["decoder"] = outer

    # ------------------------------------------------------------------ helpers for LIT
    @torch.inference_mode()
    def recompute_decoder_inputs(self, state: dict, frame_idx: int, obj_id: int) -> None:
        """Re-run tracking on one frame (nothing stored) so the capture hook sees its inputs.

        Used when a correction lands on a frame whose captured inputs were dropped to save memory.
        """
        obj_idx = state["obj_id_to_idx"][obj_id]
        self._run_single_frame_inference(
            inference_state=state,
            output_dict=state["output_dict_per_obj"][obj_idx],
            frame_idx=frame_idx,
            batch_size=1,
            is_init_cond_frame=False,
            point_inputs=None,
            mask_inputs=None,
            reverse=False,
            run_mem_encoder=False,
        )

    def tracking_uses_multimask(self) -> bool:
        """Whether SAM2 asks its decoder for 3 masks on a tracked frame (it keeps the best)."""
        return self._use_multimask(is_init_cond_frame=False, point_inputs=None)
