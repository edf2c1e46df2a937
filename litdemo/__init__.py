"""litdemo: Live Interactive Training (LIT) for SAM2 video segmentation and CLIP, made visible.

The SAM2 story in five names:
    load_sam2    -> a SAM2.1 video predictor (hub, local file, or untrained for offline tours)
    load_video   -> a Video from an mp4/webm/mov, a folder of frames, or an array
    LitConfig    -> the paper's hyper-parameters (mode: "lit-lora", "lit-ft" or the "sam2" baseline)
    LitSession   -> prompt, propagate, correct, suggest, accept, export
    History      -> every prompt, correction and accepted suggestion, as JSON
"""
from importlib import import_module

# Imported on first use, so `import litdemo.datasets` or `litdemo.metrics` does not pay for torch + sam2.
_LAZY = {
    "LitConfig": "config", "Event": "history", "History": "history", "MODELS": "models",
    "WeightsUnavailableError": "models", "load_sam2": "models", "pick_device": "models",
    "LitSession": "session", "Video": "video_io", "VideoError": "video_io", "load_video": "video_io",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'litdemo' has no attribute {name!r}")


__version__ = "0.1.0"
__all__ = ["LitConfig", "LitSession", "History", "Event", "MODELS", "WeightsUnavailableError", "load_sam2",
           "pick_device", "Video", "VideoError", "load_video"]
