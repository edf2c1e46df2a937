"""benchmarks/bench_micro.py measures the model it is given: the silhouettes part once always loaded
the shipped micro whatever --checkpoint said, and crashed on an --out folder that did not exist yet."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from litdemo import load_sam2, models

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_micro.py"


@pytest.fixture
def one_video_davis(tmp_path, davis_root):
    """A DAVIS root with blackswan only, linked to the shared copy (read in place, never copied)."""
    root = tmp_path / "davis"
    for kind in ("JPEGImages", "Annotations"):
        (root / kind / "480p").mkdir(parents=True)
        (root / kind / "480p" / "blackswan").symlink_to(davis_root / kind / "480p" / "blackswan")
    return root


def _silhouettes(out: Path, davis: Path, checkpoint=None) -> list[dict]:
    cmd = [sys.executable, str(SCRIPT), "--parts", "silhouettes", "--out", str(out), "--workers", "1"]
    if checkpoint:
        cmd += ["--checkpoint", str(checkpoint)]
    done = subprocess.run(cmd, env={**os.environ, "LITDEMO_DAVIS_ROOT": str(davis),
                                    "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((out / "silhouettes.json").read_text())


def test_the_silhouettes_part_measures_the_checkpoint_it_is_given(tmp_path, one_video_davis):
    shipped = _silhouettes(tmp_path / "new" / "shipped", one_video_davis)  # a folder that does not exist yet
    random_weights = models.save_checkpoint(load_sam2("micro", pretrained=False, device="cpu"), tmp_path / "r.pt")
    untrained = _silhouettes(tmp_path / "new" / "random", one_video_davis, random_weights)
    assert [r["video"] for r in shipped] == [r["video"] for r in untrained] == ["blackswan"]
    assert shipped[0]["corrections"] <= 2 and shipped[0]["jf"] > 0.8  # the card: 0 corrections on blackswan
    # random weights track nothing: every judged frame corrected (their J&F is high only because of that)
    assert untrained[0]["corrections"] == untrained[0]["judged"] > 20
    assert (tmp_path / "new" / "random" / "report.md").read_text().count("blackswan") == 1


def test_the_speed_part_times_whole_first_passes_per_condition():
    # what the part measures, not how fast it is (speed is read from the script's report, never asserted)
    sys.path.insert(0, str(SCRIPT.parent))
    import bench_micro

    records = bench_micro.propagation_speed(videos=("easy-1",), rounds=2, threads=(1,), modes=("sam2", "lit-lora"))
    assert [(r["round"], r["mode"]) for r in records] == [(0, "sam2"), (0, "lit-lora"), (1, "sam2"), (1, "lit-lora")]
    assert all(r["frames"] == 32 and r["seconds"] > 0 and r["threads"] == 1 for r in records)  # every frame tracked
    report = "\n".join(bench_micro.speed_report(records))
    assert report.count("| sam2 | 1 |") == report.count("| lit-lora | 1 |") == 1 and "floor 20 frames/s" in report
