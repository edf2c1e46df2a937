"""The two evaluation protocols a LitSession can follow: `interactive` (litdemo's) and `paper`.

    LitConfig(protocol="interactive")   # a person's session (the default; see docs/core.md)
    LitConfig(protocol="paper")         # the LIT author's evaluation code, rule by rule

Both run through the same `LitSession`; the protocol only changes a handful of rules, each
named here and tested in tests/test_paper_protocol.py. docs/benchmark.md has the full
fidelity table (paper text / author's code / each protocol).

| rule                                   | interactive                        | paper (the author's code)                         |
|----------------------------------------|------------------------------------|---------------------------------------------------|
| training target of a correction        | the mask the user ended with       | the ground-truth mask, also after good clicks     |
| accepted suggestion                    | into SAM2's memory only            | also into the adapter's buffer, GT as target      |
| update                                 | litdemo's steps (training.py)      | epochs of batch-1 passes (paper_training.py)      |
| which adapter suggests                 | the most confident one             | the one that best matches GT (the user picks)     |
| click fix in SAM2's memory             | conditioning frame (configurable)  | ordinary (non-conditioning) frame                 |
| mask fall-back in SAM2's memory        | conditioning frame (configurable)  | conditioning frame                                |
| accepted suggestion in SAM2's memory   | its mask, like a mask correction   | its own logits, non-conditioning frame            |
| each new click                         | added to the earlier ones          | replaces them (previous mask logits still given)  |
| SAM2 post-processing                   | sam2's default (on)                | off (`apply_postprocessing=False`)                |

The paper protocol needs the ground truth (the author's simulated user is an oracle): give it
with `LitSession.set_ground_truth` before correcting.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

PROTOCOLS: tuple[str, ...] = ("interactive", "paper")

# LitConfig fields the paper protocol does not read: it uses the author's fixed values
# instead (litdemo.paper_training.PaperSchedule, and the memory rules above). Setting one of
# them with the paper protocol is refused rather than silently ignored.
PAPER_FIXED_FIELDS: tuple[str, ...] = (
    "lr_first", "steps_first", "lr_later", "steps_later", "replay_size", "early_stop_iou",
    "early_stop_patience", "new_adapter_below_iou", "max_train_seconds", "train_all_candidates",
    "corrections_as_conditioning",
)

# SAM2's "no object" logit, used to blank a mask whose object score says the object is absent.
NO_OBJECT_LOGIT = -1024.0


def check_protocol(name: str) -> str:
    if name not in PROTOCOLS:
        raise ValueError(f"protocol={name!r} is not known; use one of {PROTOCOLS} "
                         f"('interactive': litdemo's own session, 'paper': the LIT author's evaluation code).")
    return name


def uses_postprocessing(protocol: str) -> bool:
    """Whether SAM2 is built with sam2's post-processing (dynamic multimask by stability,
    binarised click masks for memory, hole filling). The author builds it with
    `apply_postprocessing=False` (tools/online_eval.py, its default)."""
    return check_protocol(protocol) != "paper"


@contextmanager
def conditioning(predictor, as_conditioning: bool):
    """Run one SAM2 call that adds clicks or a mask on a tracked frame, storing the result as a
    conditioning frame (kept by every later propagation) or as an ordinary memory frame.

    sam2 reads `add_all_frames_to_correct_as_cond` when the input is added; the model is shared
    between sessions, so the flag is set for this call only and restored afterwards.
    """
    before = predictor.add_all_frames_to_correct_as_cond
    predictor.add_all_frames_to_correct_as_cond = bool(as_conditioning)
    try:
        yield
    finally:
        predictor.add_all_frames_to_correct_as_cond = before


def is_conditioning_frame(state: dict, frame_idx: int, obj_id: int) -> bool:
    """Whether SAM2 holds `frame_idx` as a conditioning frame of `obj_id` (committed or not yet
    consolidated): propagation then reuses it instead of tracking it again."""
    obj_idx = state["obj_id_to_idx"].get(obj_id)
    if obj_idx is None:
        return False
    return (frame_idx in state["output_dict_per_obj"][obj_idx]["cond_frame_outputs"]
            or frame_idx in state["temp_output_dict_per_obj"][obj_idx]["cond_frame_outputs"])


@torch.inference_mode()
def remember_suggestion(predictor, state: dict, frame_idx: int, obj_id: int, out) -> np.ndarray:
    """Put an accepted suggestion into SAM2's memory as the author does: an ordinary
    (non-conditioning) frame whose memory is encoded from the adapter's own logits, with the
    adapter's object score and the object pointer tracking computed on that frame.

    `out` is the adapter's `DecoderOutput` on the frame (batch 1). Returns the (H, W) bool mask
    shown at the video's resolution.
    """
    obj_idx = state["obj_id_to_idx"][obj_id]
    memory = state["output_dict_per_obj"][obj_idx]["non_cond_frame_outputs"]
    tracked = memory.get(frame_idx)
    if tracked is None:
        raise ValueError(f"Frame {frame_idx} of object {obj_id} is not an ordinary tracked frame; "
                         f"an accepted suggestion replaces what tracking computed there, so propagate to it first.")
    device = state["device"]
    score = out.object_score.to(device)
    # the low-res logits SAM2 keeps for a frame are already blanked where the object is absent
    low_res = out.mask_logits.to(device).masked_fill(score[:, :, None, None] <= 0, NO_OBJECT_LOGIT)
    high_res = F.interpolate(low_res, size=(predictor.image_size, predictor.image_size), mode="bilinear",
                             align_corners=False)
    _, _, vision_feats, _, feat_sizes = predictor._get_image_feature(state, frame_idx, batch_size=1)
    features, pos_enc = predictor._encode_new_memory(current_vision_feats=vision_feats, feat_sizes=feat_sizes,
                                                     pred_masks_high_res=high_res, object_score_logits=score,
                                                     is_mask_from_pts=False)
    storage = state["storage_device"]
    memory[frame_idx] = {
        "maskmem_features": features.to(torch.bfloat16).to(storage, non_blocking=True),  # as sam2 stores it
        "maskmem_pos_enc": predictor._get_maskmem_pos_enc(state, {"maskmem_pos_enc": pos_enc}),
        "pred_masks": low_res.to(storage, non_blocking=True),
        "obj_ptr": tracked["obj_ptr"],
        "object_score_logits": score,
    }
    _, video_res = predictor._get_orig_video_res_output(state, low_res)
    return (video_res[0, 0] > 0).cpu().numpy()


def single_mask_prompt(prompt):
    """The author's adapter reads SAM2's first mask token (multimask_output=False), not the best
    of the 3 candidates that tracking shows: the same empty prompt with that one change."""
    single = copy.copy(prompt)
    single.multimask = False
    return single


def first_token_only(decoder: torch.nn.Module) -> torch.nn.Module:
    """Make an adapted decoder copy always return its first mask token when asked for one mask.

    The author's decoder stays in training mode, where SAM2's mask decoder skips its "dynamic
    multimask by stability" switch; ours predicts in eval mode, so the switch is turned off on
    the copy instead (SAM2's own decoder is untouched)."""
    for module in decoder.modules():
        if hasattr(module, "dynamic_multimask_via_stability"):
            module.dynamic_multimask_via_stability = False
    return decoder

