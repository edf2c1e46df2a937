"""What SAM2's mask decoder saw on a tracked frame, and how to run a decoder on it again.

A LIT training sample is "this frame's decoder inputs, no prompt, target = corrected mask".
`DecoderInputs` holds those inputs; `CaptureStore` keeps them for recent frames inside a
memory budget; `run_decoder` replays SAM2's tracking call of the decoder (`_forward_sam_heads`
with no clicks) on any decoder: SAM2's own, a LoRA copy or a fully fine-tuned copy.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass
class DecoderInputs:
    image_embed: torch.Tensor          # (B, 256, S/16, S/16) memory-conditioned image embedding
    high_res: tuple[torch.Tensor, ...]  # ((B, 32, S/4, S/4), (B, 64, S/8, S/8)) projected backbone features

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.image_embed, *self.high_res))

    def to(self, device, dtype=torch.float32) -> "DecoderInputs":
        # `.clone()` turns tensors captured under torch.inference_mode into ordinary tensors that
        # autograd accepts; it must happen outside inference mode (we are called from training).
        return DecoderInputs(self.image_embed.to(device=device, dtype=dtype).clone(),
                             tuple(t.to(device=device, dtype=dtype).clone() for t in self.high_res))

    @staticmethod
    def cat(items: list["DecoderInputs"]) -> "DecoderInputs":
        return DecoderInputs(torch.cat([i.image_embed for i in items]),
                             tuple(torch.cat(level) for level in zip(*(i.high_res for i in items))))


@dataclass
class DecoderOutput:
    mask_logits: torch.Tensor   # (B, 1, S/4, S/4) logits of the mask SAM2 would keep (before object gating)
    object_score: torch.Tensor  # (B, 1) object-present logit; SAM2 blanks the mask when it is <= 0
    iou_pred: torch.Tensor      # (B,) the decoder's own quality estimate of that mask
    # (B, M, S/4, S/4) logits of every candidate the decoder produced (M = 3 with multimask output),
    # among which SAM2 picks the shown one by predicted IoU; None where only one mask is known.
    candidates: Optional[torch.Tensor] = None

    def binary(self) -> torch.Tensor:
        """(B, 1, S/4, S/4) bool: the mask SAM2 would show, object gating included."""
        return (self.mask_logits > 0) & (self.object_score[:, :, None, None] > 0)


class CaptureStore:
    """Decoder inputs per (object, frame), in half precision on the CPU, inside a byte budget.

    Budget: at 1024 px one frame is ~16 MB in float32 and ~8 MB in float16, so a 100-frame
    video costs ~0.8 GB at the default settings; at 512 px a quarter of that. The oldest
    entries go first; a correction on a dropped frame recomputes it from SAM2's memory.
    """

    def __init__(self, budget_mb: float = 1024.0, dtype: str = "float16"):
        self.budget_bytes = int(budget_mb * 2**20)
        self.dtype = getattr(torch, dtype)
        self._items: OrderedDict[tuple[int, int], DecoderInputs] = OrderedDict()
        self.nbytes = 0

    def put(self, obj_id: int, frame_idx: int, image_embed: torch.Tensor, high_res) -> None:
        key = (obj_id, frame_idx)
        self.drop(key)
        item = DecoderInputs(image_embed.detach().to("cpu", self.dtype),
                             tuple(t.detach().to("cpu", self.dtype) for t in high_res))
        self._items[key] = item
        self.nbytes += item.nbytes
        while self.nbytes > self.budget_bytes and len(self._items) > 1:
            self.drop(next(iter(self._items)))

    def get(self, obj_id: int, frame_idx: int) -> Optional[DecoderInputs]:
        return self._items.get((obj_id, frame_idx))

    def drop(self, key: tuple[int, int]) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes

    def drop_object(self, obj_id: int) -> None:
        for key in [k for k in self._items if k[0] == obj_id]:
            self.drop(key)

    def clear(self) -> None:
        self._items.clear()
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._items)


class EmptyPrompt:
    """The prompt-encoder outputs SAM2 uses on a tracked frame (no clicks, no mask).

    They depend only on the (frozen) prompt encoder, so we compute them once per model.
    """

    def __init__(self, predictor):
        enc = predictor.sam_prompt_encoder
        device = predictor.device
        with torch.no_grad():
            coords = torch.zeros(1, 1, 2, device=device)
            labels = -torch.ones(1, 1, dtype=torch.int32, device=device)  # -1 = padding point
            sparse, dense = enc(points=(coords, labels), boxes=None, masks=None)
            # copies: `dense` is a view of the encoder's no-mask weight, and a prompt must not
            # carry the model's tensors along when a session is pickled (the app on ZeroGPU)
            self.sparse, self.dense = sparse.clone(), dense.clone()
            self.image_pe = enc.get_dense_pe()  # (1, 256, S/16, S/16)
        self.multimask = predictor.tracking_uses_multimask()


def run_decoder(decoder: torch.nn.Module, prompt: EmptyPrompt, inputs: DecoderInputs) -> DecoderOutput:
    """Replay SAM2's tracking call of the mask decoder on `inputs` (batch B).

    Mirrors `SAM2Base._forward_sam_heads` with no clicks: with multimask output SAM2 keeps the
    candidate with the highest predicted IoU, and so do we, so the mask we train is the mask
    SAM2 would show. Object gating is left to `DecoderOutput.binary` so losses keep gradients.
    """
    batch = inputs.image_embed.shape[0]
    masks, ious, _, object_score = decoder(
        image_embeddings=inputs.image_embed,
        image_pe=prompt.image_pe,
        sparse_prompt_embeddings=prompt.sparse.expand(batch, -1, -1),
        dense_prompt_embeddings=prompt.dense.expand(batch, -1, -1, -1),
        multimask_output=prompt.multimask,
        repeat_image=False,
        high_res_features=list(inputs.high_res),
    )  # masks: (B, M, S/4, S/4), ious: (B, M)
    best = ious.argmax(dim=1)
    rows = torch.arange(batch, device=masks.device)
    return DecoderOutput(masks[rows, best].unsqueeze(1).float(), object_score.float(), ious[rows, best],
                         candidates=masks.float())


def most_confident(outputs: list[tuple[DecoderOutput, int]]) -> Optional[tuple[DecoderOutput, int]]:
    """Of (output, adapter index) pairs, the one whose predicted IoU is highest (the first on ties),
    or None when there is none: how a learner picks its suggestion without ground truth."""
    return max(outputs, key=lambda o: o[0].iou_pred.item()) if outputs else None


def to_video_mask(out: DecoderOutput, height: int, width: int) -> torch.Tensor:
    """(B, H, W) bool at the video's resolution, resized as SAM2 resizes its own outputs."""
    logits = out.mask_logits.masked_fill(out.object_score[:, :, None, None] <= 0, -1024.0)
    return F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)[:, 0] > 0
