"""The Gradio app: `build_demo()` gives the page; `python app.py` serves it (also as a HF Space)."""
from .config import AppConfig
from .layout import build_demo, launch_options, stop_cleanly_on_sigterm

__all__ = ["AppConfig", "build_demo", "launch_options", "stop_cleanly_on_sigterm"]
