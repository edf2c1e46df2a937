"""Which model the app starts on, decided once before the page is built, and fast without network.

A first start on a machine that cannot reach the Hugging Face hub used to wait through the hub
client's retries (~23 s) and then fail the first load. Instead, before anything is loaded:

1. weights already on this machine (an explicit checkpoint, $LITDEMO_CHECKPOINT_DIR, or the hub
   client's own cache) mean the configured SAM2.1 model starts as usual;
2. otherwise one TCP connection to the hub with a short timeout says whether a download can work
   ($HF_HUB_OFFLINE=1 skips even that);
3. if it cannot, the app starts on `micro` (shipped inside litdemo, at its own 128 px) and shows a
   banner saying why, once, and what to do for SAM2.1; the hub client is switched to offline mode
   for this process so no later call waits on it either.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional
from urllib.parse import urlparse

from ..models import CHECKPOINT_DIR_ENV, CHECKPOINT_ENV, MODELS, PACKAGE_DIR, WeightsUnavailableError, model_spec

OFFLINE_MODEL = "micro"
DEFAULT_ENDPOINT = "https://huggingface.co"
# One connection attempt: long enough for a slow but working link, short enough not to be noticed.
PROBE_TIMEOUT_S = 2.0
# A probe's answer is reused this long, so a page full of clicks costs one probe, not one each.
PROBE_TTL_S = 60.0
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class StartModel:
    """The model the page opens with, and the banner explaining a fallback ('' when none)."""
    name: str
    image_size: int
    banner: str = ""

    @property
    def fell_back(self) -> bool:
        return bool(self.banner)


def hub_offline_flag(environ: Optional[Mapping[str, str]] = None) -> bool:
    """$HF_HUB_OFFLINE (or $TRANSFORMERS_OFFLINE) set: the user asked for no hub at all."""
    environ = os.environ if environ is None else environ
    return any(environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def probe_hub(environ: Optional[Mapping[str, str]] = None, timeout: float = PROBE_TIMEOUT_S) -> Optional[str]:
    """None when the hub accepts a TCP connection, else why not (one attempt, `timeout` seconds)."""
    environ = os.environ if environ is None else environ
    if hub_offline_flag(environ):
        return "HF_HUB_OFFLINE is set"
    url = urlparse(environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as err:  # DNS failure, refused, unreachable, timeout
        return f"{host}:{port} cannot be reached ({type(err).__name__})"


class HubProbe:
    """`probe_hub` with its answer kept for PROBE_TTL_S (thread-safe); tests pass their own `probe`."""

    def __init__(self, probe: Callable[[], Optional[str]] = probe_hub, ttl_s: float = PROBE_TTL_S):
        self._probe, self._ttl = probe, ttl_s
        self._answer: Optional[str] = None
        self._at = -float("inf")
        self._lock = threading.Lock()

    def why_unreachable(self) -> Optional[str]:
        with self._lock:
            if time.monotonic() - self._at > self._ttl:
                self._answer, self._at = self._probe(), time.monotonic()
            return self._answer


HUB = HubProbe()


def local_weights(name: str, environ: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """The checkpoint of `name` already on this machine (no network), or None."""
    environ = os.environ if environ is None else environ
    spec = model_spec(name)
    if spec.shipped:
        path = PACKAGE_DIR / spec.filename
        return path if path.is_file() else None
    explicit = environ.get(CHECKPOINT_ENV)
    if explicit:
        return Path(explicit).expanduser() if Path(explicit).expanduser().is_file() else None
    folder = environ.get(CHECKPOINT_DIR_ENV)
    if folder and (Path(folder).expanduser() / spec.filename).is_file():
        return Path(folder).expanduser() / spec.filename
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(spec.hub_repo, spec.filename)
    except Exception:  # noqa: BLE001 - a broken cache is the same as no cache here
        return None
    return Path(cached) if isinstance(cached, str) and Path(cached).is_file() else None


def ensure_obtainable(name: str, probe: HubProbe = HUB, environ: Optional[Mapping[str, str]] = None) -> None:
    """Raise WeightsUnavailableError at once when `name`'s weights are neither here nor downloadable."""
    if local_weights(name, environ) is not None:
        return
    spec = model_spec(name)
    if spec.shipped:
        return  # load_sam2 says what is wrong with a missing or damaged shipped file
    why = probe.why_unreachable()
    if why is not None:
        go_offline()
        raise WeightsUnavailableError(
            f"The SAM2.1 '{name}' weights are not on this machine and the Hugging Face hub cannot be reached "
            f"({why}).\nPut {spec.filename} in the folder named by ${CHECKPOINT_DIR_ENV} (or set "
            f"${CHECKPOINT_ENV}) and restart, or use the '{OFFLINE_MODEL}' model, which ships with litdemo.")


def go_offline() -> None:
    """Put the hub client in offline mode for this process: cached files still load, nothing waits on the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True  # read at import; the client asks constants.is_offline_mode() per call
    except ImportError:
        pass


def choose_start_model(name: str, image_size: int, pretrained: bool, probe: HubProbe = HUB,
                       environ: Optional[Mapping[str, str]] = None) -> StartModel:
    """The configured model when its weights can be had (or the untrained tour was asked for), else micro."""
    if not pretrained or model_spec(name).shipped:
        return StartModel(name, model_spec(name).image_size if model_spec(name).shipped else image_size)
    try:
        ensure_obtainable(name, probe, environ)
    except WeightsUnavailableError as err:
        micro = MODELS[OFFLINE_MODEL]
        reason = str(err).splitlines()[0]
        return StartModel(OFFLINE_MODEL, micro.image_size, banner=(
            f"**Offline start: the app runs on the `{OFFLINE_MODEL}` model** ({micro.display_name}), at its own "
            f"{micro.image_size} px. {reason} The tour samples work as they should; for your own videos put "
            f"`{model_spec(name).filename}` in the folder named by `${CHECKPOINT_DIR_ENV}` and restart."))
    return StartModel(name, image_size)
