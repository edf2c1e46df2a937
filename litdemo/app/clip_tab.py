"""The CLIP tab: see an image, read the prediction, correct the label, and watch CLIP learn.

Built on `litdemo.clip.ClipLitSession`; handlers are plain functions over a per-tab `ClipTab`
(tested without a browser), `build_clip_tab` lays out and wires the components.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Optional

import gradio as gr
import numpy as np

from ..clip import ClipLitConfig, ClipLitSession, SyntheticFineGrained, list_models
from ..clip.plots import plot_cumulative_corrections, plot_training_curve
from ..clip.session import MODE_LABELS
from . import pictures
from .config import AppConfig


@dataclass
class ClipTab:
    session: Optional[ClipLitSession] = None
    images: Optional[SyntheticFineGrained] = None  # the built-in stream of synthetic birds
    order: list = field(default_factory=list)       # a seeded shuffle of the stream's indices
    cursor: int = 0                                 # position in `order` of the next image
    image_id: Optional[str] = None                  # image on screen (what a correction refers to)
    uploads: int = 0                                # counter for generated ids of uploaded images
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)


def clip_start(tab: ClipTab, model: str, mode: str, num_classes: Optional[int] = None) -> dict:
    """A fresh CLIP session on the synthetic fine-grained birds (class names are theirs): the micro
    CLIP's held-out classes, attribute combinations it never saw in training, so its zero-shot
    guesses are good but mix up near-twins (all 12 classes unless `num_classes` asks for fewer)."""
    tab.images = SyntheticFineGrained(num_classes=num_classes, classes="heldout", images_per_class=30,
                                      image_size=64, seed=0)
    tab.session = ClipLitSession.create(tab.images.class_names, model=model, config=ClipLitConfig(mode=mode))
    # a seeded order that mixes the classes, so look-alikes come up early
    tab.order = np.random.default_rng(0).permutation(len(tab.images.labels)).tolist()
    tab.cursor, tab.image_id = 0, None
    return {**clip_next(tab), "labels": {"choices": tab.images.class_names, "value": None}}


def clip_next(tab: ClipTab) -> dict:
    s = _need(tab)
    index = tab.order[tab.cursor % len(tab.order)]
    tab.cursor += 1
    image = tab.images.image(index)
    tab.image_id = f"{tab.images.image_id(index)}-{tab.cursor}"
    pred = s.predict(image, tab.image_id)
    truth = tab.images.class_names[tab.images.labels[index]]
    return _view(tab, image, pred, f"(ground truth: {truth})")


def clip_upload(tab: ClipTab, image) -> dict:
    s = _need(tab)
    if image is None:
        raise ValueError("Upload an image first.")
    tab.uploads += 1
    tab.image_id = f"upload-{tab.uploads}"  # our own id; the file name is never used
    pred = s.predict(image, tab.image_id)
    return _view(tab, image, pred, "")


def clip_correct(tab: ClipTab, true_label: Optional[str]) -> dict:
    s = _need(tab)
    if tab.image_id is None:
        raise ValueError("Show an image first (Next image or upload), then correct its label.")
    if not true_label:
        raise ValueError("Pick the right class in the list, then press Correct.")
    event = s.correct(tab.image_id, true_label)
    info = (f"Corrected to **{true_label}**: P(true class) {event.true_prob_before:.2f} → "
            f"{event.true_prob_after:.2f}" + ("" if event.curve else " (zero-shot never trains)") + ".")
    return {"clip_info": info, **_plots(tab)}


def _view(tab: ClipTab, image, pred, note: str) -> dict:
    scores = {name: float(p) for name, p in pred.top_k}
    return {"clip_image": image, "clip_scores": scores,
            "clip_info": f"Predicted **{pred.predicted}** {note}. Wrong? pick the right class and press Correct.",
            "clip_status": tab.session.description, **_plots(tab)}


def _plots(tab: ClipTab) -> dict:
    data = tab.session.plot_data()
    out = {"clip_curve": None, "clip_cumulative": None}
    if data.last_losses:
        out["clip_curve"] = plot_training_curve(data.last_losses, data.last_true_prob)
    if data.cumulative_corrections:
        out["clip_cumulative"] = plot_cumulative_corrections({tab.session.mode: [data.cumulative_corrections]},
                                                             title=f"corrections vs images ({tab.session.description})")
    return out


def _need(tab: ClipTab) -> ClipLitSession:
    if tab.session is None:
        raise ValueError("Press Start first.")
    return tab.session


def build_clip_tab(cfg: AppConfig) -> None:
    gr.Markdown("Show CLIP an image; when its label is wrong, pick the right one. Each correction trains a "
                "LoRA on CLIP's image encoder right away, so similar images are labelled right sooner. "
                "Offline the model is **micro CLIP, trained on synthetic images** (it knows these birds only); "
                "the birds shown are classes it never saw in training.")
    state = gr.State(lambda: ClipTab())  # a factory: each tab gets its own
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            model = gr.Dropdown(list_models(), value="micro", label="CLIP model")
            mode = gr.Radio([(label, key) for key, label in MODE_LABELS.items()], value="lit-lora", label="Mode")
            start = gr.Button("Start", variant="primary", elem_id="clip-start")
            status = gr.Markdown("")
            upload = gr.Image(type="pil", label="…or upload an image", sources=["upload"])
        with gr.Column(scale=3, min_width=300):
            image = gr.Image(type="pil", label="Image", interactive=False, height=256)
            scores = gr.Label(label="Prediction (top classes)", num_top_classes=5)
            info = gr.Markdown("")
            with gr.Row():
                nxt = gr.Button("Next image", elem_id="clip-next")
                labels = gr.Dropdown([], label="Right class", allow_custom_value=False)
                correct = gr.Button("Correct", variant="primary", elem_id="clip-correct")
    with gr.Row():
        curve = gr.Plot(show_label=False)
        cumulative = gr.Plot(show_label=False)
    comps = {"clip_image": image, "clip_scores": scores, "clip_info": info, "clip_status": status,
             "clip_curve": curve, "clip_cumulative": cumulative, "labels": labels}
    outs = [state] + list(comps.values())
    run = functools.partial(_run, state=state, comps=comps)
    heavy = dict(concurrency_limit=cfg.concurrency_limit, concurrency_id="model")
    start.click(lambda t, m, md: run(t, clip_start, m, md), [state, model, mode], outs, **heavy)
    nxt.click(lambda t: run(t, clip_next), state, outs, **heavy)
    upload.upload(lambda t, img: run(t, clip_upload, img), [state, upload], outs, **heavy)
    correct.click(lambda t, lab: run(t, clip_correct, lab), [state, labels], outs, **heavy)


def _run(tab: ClipTab, fn, *args, state, comps) -> dict:
    with tab.lock:
        try:
            view = fn(tab, *args)
        except Exception as err:  # noqa: BLE001 - a message, never a traceback
            raise gr.Error(str(err) or type(err).__name__, title="Cannot do that", print_exception=False) from err
    out = {state: tab}
    for key, value in view.items():
        value = pictures.as_served(comps[key], value)  # written whole: tabs may show the same image
        out[comps[key]] = gr.update(**value) if isinstance(value, dict) and key == "labels" else value
    return out
