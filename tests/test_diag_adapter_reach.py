"""benchmarks/diag_adapter_reach.py's `--gauge`, behind docs/micro.md's "the same decoder in another gauge":
the rescaling must leave what the decoder computes unchanged (else its LIT-LoRA numbers would compare two
different models), and it must really move the weights (else it would compare the model with itself)."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import diag_adapter_reach  # noqa: E402

from litdemo.datasets.procedural import make_procedural_video  # noqa: E402
from litdemo.methods import method_config  # noqa: E402
from litdemo.models import load_sam2  # noqa: E402
from litdemo.session import LitSession  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tracked_masks(predictor, video, obj_id):
    session = LitSession(predictor, video.frames, method_config("sam2"))
    session.prompt(0, obj_id, mask=video.gt[obj_id][0])
    return [masks[obj_id] for _, masks in session.propagate()]


def test_a_gauge_rescales_the_attention_weights_but_not_a_single_tracked_pixel(micro):
    video = make_procedural_video("hard", 20, num_frames=12)
    obj_id = min(video.gt)
    gauged = load_sam2("micro", device="cpu")  # a copy of its own: the session's `micro` is shared
    before = {k: v.clone() for k, v in gauged.sam_mask_decoder.state_dict().items()}
    assert diag_adapter_reach.rescale_attention(gauged.sam_mask_decoder, 0.1) == 7  # micro's attention blocks

    after = gauged.sam_mask_decoder.state_dict()
    name = "transformer.layers.0.self_attn"
    torch.testing.assert_close(after[f"{name}.q_proj.weight"], before[f"{name}.q_proj.weight"] * 0.1)
    torch.testing.assert_close(after[f"{name}.k_proj.bias"], before[f"{name}.k_proj.bias"] * 10)
    torch.testing.assert_close(after[f"{name}.out_proj.weight"], before[f"{name}.out_proj.weight"] * 10)
    torch.testing.assert_close(after[f"{name}.out_proj.bias"], before[f"{name}.out_proj.bias"])  # untouched

    masks, masks_gauged = tracked_masks(micro, video, obj_id), tracked_masks(gauged, video, obj_id)
    assert len(masks) == 12 and sum(int(m.sum()) for m in masks) > 0  # it tracked something
    assert all((a == b).all() for a, b in zip(masks, masks_gauged))


def test_decoder_heads_split_the_attention_differently_and_keep_every_weight(micro):
    """`--decoder-heads`, behind docs/micro.md's head-width diagnostic: the same weights, another function."""
    video = make_procedural_video("hard", 20, num_frames=12)
    obj_id = min(video.gt)
    split = load_sam2("micro", device="cpu")
    before = {k: v.clone() for k, v in split.sam_mask_decoder.state_dict().items()}
    assert diag_adapter_reach.set_decoder_heads(split.sam_mask_decoder, 2) == 7
    from sam2.modeling.sam.transformer import Attention
    assert {m.num_heads for m in split.sam_mask_decoder.modules() if isinstance(m, Attention)} == {2}
    after = split.sam_mask_decoder.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)

    masks, masks_split = tracked_masks(micro, video, obj_id), tracked_masks(split, video, obj_id)
    changed = sum(int((a != b).sum()) for a, b in zip(masks, masks_split))
    assert changed > 0  # two heads of 32 channels attend differently from eight of 8
    with pytest.raises(SystemExit, match="must divide"):
        diag_adapter_reach.set_decoder_heads(split.sam_mask_decoder, 3)  # 64 and 32 channels
