"""Pictures reach Gradio as files written whole into its cache (litdemo/app/pictures.py): thirty tabs showing
the same tour frame must never serve a file another tab is rewriting."""
import os
import threading
from io import BytesIO

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from litdemo.app import pictures


def picture(seed=0, side=96):
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def test_a_picture_lands_in_the_components_cache_in_its_format(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    frame, strip = gr.Image(format="jpeg"), gr.Image(format="png")
    a = picture(0)
    png = pictures.for_component(strip, a)
    assert png.startswith(str(strip.GRADIO_CACHE)) and png.endswith("image.png")
    assert np.array_equal(np.asarray(Image.open(png)), a)                      # lossless where it must be exact
    jpeg = pictures.for_component(frame, a)
    assert jpeg.endswith("image.jpeg") and Image.open(jpeg).format == "JPEG"
    assert pictures.for_component(strip, picture(1)) != png                     # other content, other file
    with pytest.raises(TypeError, match="uint8"):
        pictures.for_component(strip, a / 255.0)                                # never cast silently to black


def test_the_same_picture_again_reuses_the_file_without_rewriting_it(tmp_path):
    data = pictures.encode(picture(2), "png")
    first = pictures.cached_file(data, tmp_path, "image.png")
    inode = os.stat(first).st_ino
    os.utime(first, (1, 1))                                  # as if written long ago
    again = pictures.cached_file(data, tmp_path, "image.png")
    assert again == first and os.stat(again).st_ino == inode  # not rewritten (a rename would change the inode)
    assert os.stat(again).st_mtime > 1                         # but touched: delete_cache ages it from now
    assert [p.name for p in (tmp_path).rglob("*")] == [os.path.basename(os.path.dirname(first)), "image.png"]


def test_readers_never_see_a_partly_written_file_while_tabs_write_the_same_picture(tmp_path):
    # writers race to publish the same bytes (first-time writes: the file is removed before each round),
    # while a reader keeps reading it: every read must be the whole file
    data = pictures.encode(picture(3, side=256), "png")
    target = pictures.cached_file(data, tmp_path, "image.png")
    partial, reads, stop = [], [0], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                with open(target, "rb") as f:
                    got = f.read()
            except FileNotFoundError:
                continue
            reads[0] += 1
            if got != data:
                partial.append(len(got))

    def writer():
        for _ in range(100):
            pictures.cached_file(data, tmp_path, "image.png")

    threads = [threading.Thread(target=reader)] + [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(100):
        try:
            os.unlink(target)           # the next writer publishes it anew
        except FileNotFoundError:
            pass
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert reads[0] > 0 and partial == []
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["image.png"]  # no temporary file left behind


def test_a_gallery_keeps_its_captions_and_gets_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    gallery = gr.Gallery(format="png")
    items = pictures.for_gallery(gallery, [(picture(4), "adapter 1"), (picture(5), "adapter 2")])
    assert [c for _, c in items] == ["adapter 1", "adapter 2"]
    assert all(isinstance(p, str) and os.path.isfile(p) for p, _ in items)
    img = Image.open(BytesIO(open(items[0][0], "rb").read()))
    assert np.array_equal(np.asarray(img), picture(4))


def test_the_apps_views_send_their_pictures_through_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    from litdemo.app import layout
    from litdemo.app.state import AppSession

    comps = {"state": gr.State(), "image": gr.Image(format="jpeg"), "timeline": gr.Image(format="png"),
             "picker_gallery": gr.Gallery(format="png"), "frame_info": gr.Markdown()}
    view = {"image": picture(6), "timeline": picture(7), "picker_gallery": [(picture(8), "adapter 1")],
            "frame_info": "Frame **0**"}
    out = layout._updates(AppSession(tmp_path / "root"), view, comps)
    assert out[comps["image"]].endswith("image.jpeg") and os.path.isfile(out[comps["image"]])
    assert np.array_equal(np.asarray(Image.open(out[comps["timeline"]])), picture(7))
    assert out[comps["picker_gallery"]][0][1] == "adapter 1" and os.path.isfile(out[comps["picker_gallery"]][0][0])
    assert out[comps["frame_info"]] == "Frame **0**"


def test_the_app_sends_its_frame_as_jpeg_and_its_timeline_as_png():
    from litdemo.app import AppConfig, build_demo

    demo = build_demo(AppConfig(pretrained=False, image_size=256))
    formats = {b.elem_id: b.format for b in demo.blocks.values() if isinstance(b, gr.Image) and b.elem_id}
    assert formats["lit-frame"] == "jpeg" and formats["lit-timeline"] == "png"
