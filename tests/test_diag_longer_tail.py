"""benchmarks/diag_longer_tail.py, the diagnostic behind docs/micro.md's "A longer tail", cannot rot:
it continues a model with the next tail steps, writes its snapshots, and reruns to the same file."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import diag_longer_tail  # noqa: E402

from litdemo.models import file_sha256, model_spec, shipped_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_continuing_the_tail_moves_the_weights_and_reruns_byte_for_byte(tmp_path):
    shipped = shipped_checkpoint(model_spec("micro"))
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        losses = diag_longer_tail.continue_tail(shipped, diag_longer_tail.SHIPPED_STEPS, 2, out, save_every=1)
        assert len(losses) == 2 and all(0 < v < 100 for v in losses)
    assert sorted(p.name for p in runs[0].glob("*.pt")) == ["plus1.pt", "plus2.pt"]
    assert file_sha256(runs[0] / "plus2.pt") == file_sha256(runs[1] / "plus2.pt")
    before = torch.load(shipped, weights_only=True)["model"]
    after = torch.load(runs[0] / "plus2.pt", weights_only=True)["model"]
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # two AdamW steps changed something


def test_a_start_before_the_tail_is_refused(tmp_path):
    shipped = shipped_checkpoint(model_spec("micro"))
    with pytest.raises(SystemExit, match="inside the tail"):
        diag_longer_tail.continue_tail(shipped, 100, 2, tmp_path)
