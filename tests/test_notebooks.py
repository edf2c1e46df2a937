"""The notebooks in notebooks/, executed top to bottom the way CI runs them: offline, headless.

Each notebook runs in a fresh "python3" kernel (the venv's ipykernel, installed by scripts/setup.sh
with `python -m ipykernel install --sys-prefix --name python3`) from a temporary copy of notebooks/,
with LITDEMO_PRETRAINED unset (litdemo's shipped micro SAM2, trained on its synthetic videos and
labelled "not SAM2.1"; held-out procedural videos; nothing downloaded) and MPLBACKEND=Agg. Then
we read what the notebook printed and assert on the numbers: LIT-LoRA needs fewer corrections
than plain SAM2, the LoRA has rank 4 on q/k/v's parameter count, the widget's callbacks left the
timeline we drove it to, every model-naming line says micro, and no cell (nor a widget callback) raised.

A structural test (not executing anything) checks that the committed files carry no outputs and
follow the house layout: the switch first, "What you saw" and exercises last.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 1200  # per cell; a whole notebook takes 15-45 s on 2 idle CPU cores, minutes on busy ones
KERNEL_START_TIMEOUT_S = 300  # nbclient's default of 60 s is too short on busy shared cores


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5, f"expected the five workshop notebooks in {NOTEBOOK_DIR}, found {NOTEBOOKS}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean_and_follows_the_layout(name):
    nb = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    nbformat.validate(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    dirty = [i for i, c in enumerate(code_cells) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{name}: code cells {dirty} carry outputs; strip them (outputs are not committed)"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    first = code_cells[0].source
    assert "LITDEMO_PRETRAINED" in first and "PRETRAINED =" in first, f"{name}: the first code cell must be the switch"
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and "What you saw" in last.source and "Exercises" in last.source, \
        f"{name}: end with a 'What you saw' summary and workshop exercises"


# ------------------------------------------------------------------------------------------ execution
@pytest.fixture(scope="module")
def kernel_ready():
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        pytest.fail("no 'python3' Jupyter kernel: run `python -m ipykernel install --sys-prefix --name python3` "
                    "in the venv (scripts/setup.sh does it)")


def execute(name: str, workdir: Path, monkeypatch) -> tuple[object, float]:
    """Run notebooks/<name> from a copy in workdir; returns the executed notebook and its wall time."""
    from nbclient import NotebookClient

    copy = workdir / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, copy)
    monkeypatch.delenv("LITDEMO_PRETRAINED", raising=False)  # offline: the micro model, procedural data
    monkeypatch.setenv("MPLBACKEND", "Agg")                    # headless
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")                  # and nothing may reach the network
    monkeypatch.setenv("TQDM_DISABLE", "1")
    monkeypatch.setenv("TMPDIR", str(workdir))                 # notebooks' temp folders die with the test's
    nb = nbformat.read(copy / name, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=CELL_TIMEOUT_S, startup_timeout=KERNEL_START_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(copy)}}).execute()
    return nb, time.perf_counter() - start


def outputs(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def printed(nb) -> str:
    return "".join(o.get("text", "") for o in outputs(nb) if o.output_type == "stream")


def count_mime(nb, mime: str) -> int:
    return sum(1 for o in outputs(nb) if mime in o.get("data", {}))


def find(pattern: str, text: str) -> re.Match:
    match = re.search(pattern, text)
    assert match, f"the notebook did not print a line matching {pattern!r}; it printed:\n{text[-3000:]}"
    return match


MICRO = "micro: trained on litdemo's synthetic videos, not SAM2.1"


def check_01(nb, text):
    find(re.escape(MICRO) + r", 128 px on \w+; LIT mode 'lit-lora'; video tour-263", text)  # tour.summary()
    # tour-263 is the appearance video where LIT-LoRA saves the most (tour.py). Measured on the shipped micro: sam2 21,
    # lit-lora 17 (+4 accepted), lit-ft 5 (+12 accepted); the notebook's prose says so.
    m = find(r"corrections: sam2 (\d+), lit-lora (\d+), lit-ft (\d+)", text)
    sam2, lora, ft = int(m[1]), int(m[2]), int(m[3])
    assert sam2 >= 2, f"plain SAM2 needed {sam2} corrections: the tour's video should need repeated fixes"
    assert lora < sam2 and ft < sam2, m[0]  # the paper's method saves corrections here
    assert int(find(r"the session now has (\d+) correction\(s\) and (\d+) accepted", text)[2]) == 1
    assert count_mime(nb, "image/png") >= 6  # frames, tracking, training curve, suggestions, timeline, cumulative


def check_02(nb, text):
    find(re.escape(MICRO) + r", 128 px on \w+; LIT mode 'lit-lora'; video tour-263", text)
    # rank 4 on q/k/v of micro's decoder (width 64, cross-attention downsampled to 32): 2 blocks x
    # (self-attn 3 x 4*(64+64) + 2 cross-attn x 3 x 4*(64+32)) + final attn 3 x 4*(64+32). SAM2.1 tiny: 35,328.
    expected = 2 * (3 * 4 * 128 + 6 * 4 * 96) + 3 * 4 * 96
    assert int(find(r"LIT-LoRA trains ([\d,]+) parameters", text)[1].replace(",", "")) == expected
    find(r"1\. all \d+ SAM2 tensors are bit-identical", text)
    # the rank sweep's r=4 and the learning-rate sweep's lr=1e-4 are the same LitConfig: a fresh learner trained
    # twice on the same sample must give the same curve (training is seeded)
    same = [find(pattern + r"\s+final training IoU ([\d.]+)  suggestion IoU on frames \[[\d, ]+\]: ([\d.]+)", text)
            for pattern in (r"learning rate \(lit-lora\) lr=0\.0001", r"rank \(lit-lora\)\s+r=4")]
    assert (same[0][1], same[0][2]) == (same[1][1], same[1][2]), (same[0][0], same[1][0])
    assert count_mime(nb, "image/png") >= 4  # parameter bars, the training sample, its curve, the sweeps


def check_03(nb, text):
    find(re.escape(MICRO) + r", 128 px on \w+; LIT mode 'lit-lora'; video tour-263", text)
    assert count_mime(nb, "application/vnd.jupyter.widget-view+json") >= 1, "the widget was not displayed"
    assert "click registered through the canvas: True" in text
    m = find(r"widget: prompted \[(.*?)\] corrected \[(.*?)\] accepted \[(.*?)\]", text)
    assert (m[1], m[2], m[3]) == ("0", "3", "4"), m[0]


def check_04(nb, text):
    # Offline: LIT-LoRA with its defaults on the shipped micro CLIP, the classes it never saw in training.
    assert "micro CLIP, trained on synthetic images" in text
    m = find(r"corrections: zero-shot ([\d.]+), lit-lora ([\d.]+)", text)
    assert float(m[2]) < float(m[1]), m[0]
    acc = find(r"held-out accuracy: zero-shot ([\d.]+)%, lit-lora ([\d.]+)%", text)
    assert float(acc[2]) > float(acc[1]) > 100 / 12, acc[0]   # better than zero-shot, which beats chance (1/12)
    assert count_mime(nb, "image/png") >= 5


def check_05(nb, text):
    find(re.escape(MICRO) + r" at 128 px; methods \('sam2', 'lit-lora'\); videos: procedural", text)
    m = find(r"corrections: sam2 (\d+), lit-lora (\d+) over (\d+) videos", text)
    davis = os.environ.get("LITDEMO_DAVIS_ROOT")
    assert int(m[3]) == (5 if davis and Path(davis).is_dir() else 4), m[0]  # 3 hard + 1 SA-V style (+ 1 DAVIS)
    # measured on the shipped micro at 32 frames: LIT-LoRA saves no correction on hard-0..2 (0/0, 1/1, 30/30)
    assert int(m[2]) <= int(m[1]), m[0]
    resumed = find(r"second call: (\d+) runs computed, (\d+) read back", text)
    assert int(resumed[1]) == 0 and int(resumed[2]) == 6  # 3 videos x 2 methods
    tables = [o["data"]["text/markdown"] for o in outputs(nb) if "text/markdown" in o.get("data", {})]
    assert any("[micro: synthetic-trained, not SAM2.1]" in t for t in tables)
    assert count_mime(nb, "text/markdown") >= 2 and count_mime(nb, "image/png") >= 3


CHECKS = {"01": check_01, "02": check_02, "03": check_03, "04": check_04, "05": check_05}


@pytest.mark.notebook
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_offline_and_shows_what_it_claims(name, tmp_path, monkeypatch, kernel_ready):
    nb, seconds = execute(name, tmp_path, monkeypatch)
    errors = [f"{o.ename}: {o.evalue}" for o in outputs(nb) if o.output_type == "error"]
    # a widget callback that raises does not stop the cell: it shows up as an error output
    assert not errors, f"{name} raised: {errors}"
    check = CHECKS.get(name[:2])
    assert check is not None, f"{name}: add a check of its printed results to CHECKS"
    check(nb, printed(nb))
    print(f"{name}: executed in {seconds:.0f} s")
