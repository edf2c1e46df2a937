"""Loading SAM2.1 video models: one registry, one `load_sam2` function.

    predictor = load_sam2("tiny")                          # weights from the Hugging Face hub
    predictor = load_sam2("tiny", checkpoint="sam2.1_hiera_tiny.pt")   # a local file
    predictor = load_sam2("tiny", pretrained=False, image_size=256)    # random init (loading tests)
    predictor = load_sam2("micro")                         # litdemo's own trained micro model, shipped inside

`micro` is not SAM2.1: it is SAM2.1's architecture shrunk to 1.8 M parameters and trained by litdemo
on its synthetic videos (`litdemo train-micro`, docs/micro.md). It works offline, so the tours, the
notebooks, `litdemo demo` and the tests use it wherever the real weights cannot be had.

Checkpoints are sam2's own format ({"model": state_dict}) and are read with
`torch.load(..., weights_only=True)`, so a checkpoint file cannot run code.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from .files import save_torch_atomically
from .predictor import LitVideoPredictor

# Where a user can drop checkpoints so nothing needs the network: $LITDEMO_CHECKPOINT_DIR/<file>.
CHECKPOINT_DIR_ENV = "LITDEMO_CHECKPOINT_DIR"
# A single explicit checkpoint path (wins over the directory and the hub).
CHECKPOINT_ENV = "LITDEMO_SAM2_CHECKPOINT"


PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelSpec:
    name: str
    config_file: str   # sam2's hydra config for the architecture (or a YAML file inside litdemo)
    hub_repo: str      # Hugging Face repository holding the weights ("" for a model shipped inside litdemo)
    filename: str      # checkpoint file inside that repository (or inside litdemo)
    image_size: int = 1024  # the input size the weights were trained at: load_sam2's default
    sha256: str = ""   # for a shipped checkpoint: its hash, checked on every load
    label: str = ""    # how the UI, plots and histories name the model
    tag: str = ""      # short tag on plot titles and tables; "" for SAM2.1's own weights

    @property
    def shipped(self) -> bool:
        """True for a checkpoint that ships inside the litdemo package (no download, hash-checked)."""
        return not self.hub_repo

    @property
    def display_name(self) -> str:
        return self.label or f"SAM2.1 {self.name}"


MICRO_LABEL = "micro: trained on litdemo's synthetic videos, not SAM2.1"
MICRO_TAG = "[micro: synthetic-trained, not SAM2.1]"
UNTRAINED_TAG = "[untrained model]"
# The shipped micro checkpoint's sha256; `litdemo train-micro` prints the hash of what it writes.
MICRO_SHA256 = "52e00d1c7f21c4d38422901f5fe4a1097b37a0072930514c400a5562312df56a"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("micro", "micro/sam2.1_hiera_micro.yaml", "", "micro/sam2.1_hiera_micro.pt", image_size=128,
                  sha256=MICRO_SHA256, label=MICRO_LABEL, tag=MICRO_TAG),
        ModelSpec("tiny", "configs/sam2.1/sam2.1_hiera_t.yaml", "facebook/sam2.1-hiera-tiny", "sam2.1_hiera_tiny.pt"),
        ModelSpec("small", "configs/sam2.1/sam2.1_hiera_s.yaml", "facebook/sam2.1-hiera-small", "sam2.1_hiera_small.pt"),
        ModelSpec("base_plus", "configs/sam2.1/sam2.1_hiera_b+.yaml", "facebook/sam2.1-hiera-base-plus",
                  "sam2.1_hiera_base_plus.pt"),
        ModelSpec("large", "configs/sam2.1/sam2.1_hiera_l.yaml", "facebook/sam2.1-hiera-large", "sam2.1_hiera_large.pt"),
    )
}


def model_label(name: str, untrained: bool = False) -> str:
    """How outputs name a model: its registry label, or what it is when its weights are random."""
    spec = MODELS.get(name)
    if untrained:
        architecture = f"SAM2.1 {name}" if spec is None or not spec.shipped else name
        return f"{architecture} architecture, UNTRAINED (random weights)"
    return spec.display_name if spec is not None else f"SAM2.1 {name}"


def model_tag(name: str, untrained: bool = False) -> str:
    """The short tag plots and tables carry, so no figure passes a micro or random model off as SAM2.1."""
    if untrained:
        return UNTRAINED_TAG
    spec = MODELS.get(name)
    return spec.tag if spec is not None else ""


class WeightsUnavailableError(RuntimeError):
    """The checkpoint could not be found locally nor fetched from the hub."""


def model_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"Unknown SAM2 model {name!r}; available models: {', '.join(MODELS)}.")
    return MODELS[name]


def pick_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """The given device, else CUDA, else Apple MPS, else CPU."""
    if device is not None:
        device = torch.device(device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but no CUDA GPU is visible; use device='cpu'.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("device='mps' was asked for but MPS is not available; use device='cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def build_architecture(name: str, image_size: int = 1024, device: Union[str, torch.device] = "cpu",
                       apply_postprocessing: bool = True, extra_overrides: Sequence[str] = ()) -> LitVideoPredictor:
    """The SAM2.1 video model with random weights, configured as sam2's own video predictor.

    The overrides are the post-processing sam2's `build_sam2_video_predictor` applies by
    default (`apply_postprocessing=False` leaves them out, as the LIT author's evaluation does);
    hole filling is only asked for on CUDA because its extension does not exist on CPU.
    `extra_overrides` change the architecture itself (a diagnostic's wider micro, micro/train.py).
    """
    if image_size % 64 != 0 or image_size < 128:
        raise ValueError(f"image_size must be a multiple of 64 and >= 128 (got {image_size}); 1024 is SAM2's own.")
    spec = model_spec(name)
    device = torch.device(device)
    overrides = [
        "++model._target_=litdemo.predictor.LitVideoPredictor",
        f"++model.image_size={image_size}",
    ]
    if apply_postprocessing:
        overrides += [
            "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
            "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
            "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
            "++model.binarize_mask_from_pts_for_mem_enc=true",
            f"++model.fill_hole_area={8 if device.type == 'cuda' else 0}",
        ]
    cfg = model_config(spec, overrides + list(extra_overrides))
    model: LitVideoPredictor = instantiate(cfg.model, _recursive_=True)
    model.model_name = name
    model.model_label = spec.display_name
    return model


def model_config(spec: ModelSpec, overrides: list[str]):
    """The resolved OmegaConf config of `spec` with hydra-style `++key=value` overrides applied.

    sam2's own sizes are composed by hydra from sam2's config module; a YAML shipped inside
    litdemo (micro) is read directly, since hydra only searches the module it was started on.
    """
    if spec.config_file.startswith("configs/"):
        _ensure_hydra()
        cfg = compose(config_name=spec.config_file, overrides=overrides)
    else:
        cfg = OmegaConf.load(PACKAGE_DIR / spec.config_file)
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([o.removeprefix("++") for o in overrides]))
    OmegaConf.resolve(cfg)
    return cfg


def load_sam2(
    name: str = "tiny",
    checkpoint: Optional[Union[str, Path]] = None,
    device: Optional[Union[str, torch.device]] = None,
    image_size: Optional[int] = None,
    pretrained: bool = True,
    apply_postprocessing: bool = True,
) -> LitVideoPredictor:
    """Build a SAM2.1 video predictor for LIT.

    Weights come from, in order: `checkpoint`, $LITDEMO_SAM2_CHECKPOINT,
    $LITDEMO_CHECKPOINT_DIR/<file>, the Hugging Face hub; `micro` reads the checkpoint shipped
    inside litdemo (hash-checked) unless `checkpoint` names another. With `pretrained=False` the
    model keeps its random initialisation and is marked `untrained` (the UI and plots say so).
    `image_size` defaults to the size the weights were trained at (1024; micro: 128).
    `apply_postprocessing` as in sam2's `build_sam2_video_predictor` (the paper protocol: False).
    """
    device = pick_device(device)
    image_size = image_size or model_spec(name).image_size
    model = build_architecture(name, image_size=image_size, device="cpu", apply_postprocessing=apply_postprocessing)
    if pretrained or checkpoint is not None:
        path = resolve_checkpoint(name, checkpoint)
        load_checkpoint(model, path)
    else:
        model.untrained = True
        model.model_label = model_label(name, untrained=True)
    model = model.to(device).eval()
    return model


def resolve_checkpoint(name: str, checkpoint: Optional[Union[str, Path]] = None) -> Path:
    """Find the checkpoint file for `name`, downloading it from the hub as a last resort."""
    spec = model_spec(name)
    if spec.shipped and not checkpoint:
        return shipped_checkpoint(spec)
    explicit = checkpoint or os.environ.get(CHECKPOINT_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsUnavailableError(f"SAM2 checkpoint {path} does not exist; check the path "
                                          f"(given as checkpoint= or ${CHECKPOINT_ENV}).")
        return path
    folder = os.environ.get(CHECKPOINT_DIR_ENV)
    if folder and (Path(folder).expanduser() / spec.filename).is_file():
        return Path(folder).expanduser() / spec.filename
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=spec.hub_repo, filename=spec.filename))
    except Exception as err:  # no network, no such repo, auth, ...: one clear message for all
        raise WeightsUnavailableError(
            f"Could not get the weights of SAM2.1 '{name}' ({spec.hub_repo}/{spec.filename}): "
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}\n"
            f"Download {spec.filename} on a machine with network access and either pass "
            f"checkpoint='path/to/{spec.filename}', set {CHECKPOINT_ENV}=path/to/{spec.filename}, "
            f"or put it in the folder named by {CHECKPOINT_DIR_ENV}. "
            f"To work offline use load_sam2('micro') (shipped inside litdemo; trained on its synthetic videos, "
            f"not SAM2.1), or pretrained=False for random weights (loading tests only)."
        ) from err


def shipped_checkpoint(spec: ModelSpec) -> Path:
    """The checkpoint that ships inside litdemo, after checking its sha256 (a damaged or
    half-copied install must fail loudly, not track badly)."""
    path = PACKAGE_DIR / spec.filename
    if not path.is_file():
        raise WeightsUnavailableError(
            f"The '{spec.name}' checkpoint should ship inside litdemo at {path} but is missing; reinstall "
            f"litdemo, or train it again with `litdemo train-micro --out DIR` and pass checkpoint=DIR/...pt.")
    digest = file_sha256(path)
    if digest != spec.sha256:
        raise WeightsUnavailableError(
            f"{path} has sha256 {digest[:16]}..., not the {spec.sha256[:16]}... this litdemo shipped: the file is "
            f"damaged or was replaced. Reinstall litdemo; to use a model you trained yourself pass checkpoint=PATH.")
    return path


def file_sha256(path: Union[str, Path]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_checkpoint(model: torch.nn.Module, path: Union[str, Path]) -> None:
    """Load a sam2-format checkpoint ({"model": state_dict}) strictly, with readable errors."""
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsUnavailableError(f"{path} is not a readable PyTorch checkpoint ({err}).") from err
    state_dict = blob.get("model") if isinstance(blob, dict) else None
    if state_dict is None:
        raise WeightsUnavailableError(f"{path} has no 'model' entry; SAM2 checkpoints store their weights under 'model'.")
    try:
        missing, unexpected = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as err:  # tensors of the wrong shape
        raise WeightsUnavailableError(
            f"{path} does not match the '{getattr(model, 'model_name', '?')}' architecture (tensor shapes differ: "
            f"{str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else err}). "
            f"Is it the checkpoint of another model size?") from err
    if missing or unexpected:
        raise WeightsUnavailableError(
            f"{path} does not match the '{getattr(model, 'model_name', '?')}' architecture: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}). "
            f"Is it the checkpoint of another model size?")


def save_checkpoint(model: torch.nn.Module, path: Union[str, Path]) -> Path:
    """Write `model` in sam2's checkpoint format (used by tests and for fine-tuned models)."""
    return save_torch_atomically(path, {"model": model.state_dict()})


def _ensure_hydra() -> None:
    # `import sam2` initialises hydra on its config module; another library may have cleared it.
    if not GlobalHydra.instance().is_initialized():
        from hydra import initialize_config_module

        initialize_config_module("sam2", version_base="1.2")
