"""Write assets/synthetic_two_objects.mp4: a sample the app lists beside the built-in synthetic video.

Rendered by litdemo's own synthetic generator (two objects, seed 1), so it carries no third-party
content. Re-run after changing the generator:  python assets/make_sample_video.py
"""
from pathlib import Path

import imageio.v2 as imageio

from litdemo.datasets.synthetic import make_synthetic_video

OUT = Path(__file__).with_name("synthetic_two_objects.mp4")


def main() -> None:
    sample = make_synthetic_video(num_frames=48, height=240, width=320, num_objects=2, seed=1)
    tmp = OUT.with_name(OUT.stem + ".tmp.mp4")
    with imageio.get_writer(str(tmp), format="ffmpeg", fps=sample.fps, codec="libx264", quality=7,
                            macro_block_size=16, ffmpeg_log_level="error") as writer:
        for frame in sample.frames:
            writer.append_data(frame)
    tmp.replace(OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KB, {len(sample.frames)} frames)")


if __name__ == "__main__":
    main()
