"""LIT demo app: `python app.py`, then open http://127.0.0.1:7860 (also the Hugging Face Space entry point).

Settings come from the environment: GRADIO_SERVER_NAME / GRADIO_SERVER_PORT for where to
listen (a Space sets them), LITDEMO_APP_* for the app (see litdemo/app/config.py), e.g.
LITDEMO_APP_PRETRAINED=0 LITDEMO_APP_IMAGE_SIZE=256 for an offline tour on the untrained model.
"""
import os

from litdemo.app import AppConfig, build_demo, launch_options, stop_cleanly_on_sigterm

cfg = AppConfig.from_env()
demo = build_demo(cfg)

if __name__ == "__main__":
    stop_cleanly_on_sigterm()  # a Space stops the container with SIGTERM: clean the temp root then too
    demo.queue(default_concurrency_limit=cfg.concurrency_limit, max_size=64).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        **launch_options(cfg),
    )
