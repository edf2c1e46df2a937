"""The Gradio app: `build_demo()` gives the page; `python app.py` serves it (also as a HF Space)."""
from .config import AppConfig
from .layout import build_demo, launch_options

__all__ = ["AppConfig", "build_demo", "launch_options"]
