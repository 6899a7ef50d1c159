"""Model registry and checkpoints: a state dict plus a self-describing header.

A checkpoint is a ``torch.save`` file holding a plain dict::

    {"header": {...}, "state_dict": {...}, "training_state": {...} or None}

The header names the model (``"posenet-dense"``, ``"posenet-depthwise"`` or ``"nerpe"``),
its variant, the constructor arguments (``config``), the training set, the seed, the
package and torch versions and a UTC timestamp, plus any extra ``**info`` given to
:func:`save`. Everything in it is a plain Python value, so checkpoints load with
``torch.load(..., weights_only=True)`` and never run pickled code.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keypoint_corrupt._model_names import MODEL_NAMES
from keypoint_corrupt._version import __version__
from keypoint_corrupt.models._torch import nn, torch
from keypoint_corrupt.models.nerpe import NerPE
from keypoint_corrupt.models.posenet import PoseNet

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_NAMES",
    "build_model",
    "load",
    "model_name",
    "read_checkpoint",
    "save",
]

CHECKPOINT_FORMAT = "keypoint-corrupt/checkpoint"
_FORMAT_VERSION = 1
_PLAIN = (str, int, float, bool, type(None))


def build_model(name: str, **kwargs: Any) -> PoseNet | NerPE:
    """Construct a model by registry name.

    Parameters
    ----------
    name : {"posenet-dense", "posenet-depthwise", "nerpe"}
        Registry name.
    **kwargs
        Constructor arguments (:class:`PoseNet` without ``variant``, or :class:`NerPE`).

    Examples
    --------
    >>> build_model("posenet-depthwise", depth_multiplier=2).depth_multiplier
    2
    """
    if name in ("posenet-dense", "posenet-depthwise"):
        variant = name.split("-", 1)[1]
        if kwargs.get("variant", variant) != variant:
            raise ValueError(f"model {name!r} conflicts with variant={kwargs['variant']!r}")
        kwargs["variant"] = variant
        return PoseNet(**kwargs)
    if name == "nerpe":
        return NerPE(**kwargs)
    raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")


def model_name(model: nn.Module) -> str:
    """Registry name of a model built by this package."""
    name = getattr(model, "model_name", None)
    if not isinstance(name, str):
        raise TypeError(f"{type(model).__name__} is not a keypoint_corrupt model (no `model_name`)")
    return name


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be strings, got {key!r}")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where} must be a plain value (str, int, float, bool, None, list, dict), got {type(value).__name__}"
    )


def save(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    training_state: Mapping[str, Any] | None = None,
    **info: Any,
) -> Path:
    """Write a checkpoint: the model's state dict and a header describing it.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`PoseNet` or :class:`NerPE`.
    path : str or path-like
        Output file (parents are created; written atomically).
    training_state : mapping, optional
        Optimizer / scaler state, epoch, step, loss history... for resuming training
        (tensors and plain values only).
    **info
        Header fields (plain values): ``train_set`` and ``seed`` are the conventional
        ones; anything else is stored as given (``epoch``, ``val_epe``, ``data``...).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> path = save(PoseNet(), tempfile.mkdtemp() + "/m.pt", train_set="S-train", seed=0)
    >>> load(path).checkpoint_header["train_set"]
    'S-train'
    """
    name = model_name(model)
    get_config = getattr(model, "config", None)
    config = get_config() if callable(get_config) else {}
    for key, value in info.items():
        _check_plain(value, f"info[{key!r}]")
    header: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": _FORMAT_VERSION,
        "model": name,
        "variant": getattr(model, "variant", None),
        "config": dict(config),
        "train_set": info.pop("train_set", None),
        "seed": info.pop("seed", None),
        "package_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    header.update(info)
    # Contiguous CPU copies: loads anywhere, whatever memory format training used.
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    payload = {"header": header, "state_dict": state, "training_state": training_state}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind
    return path


def read_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint file as a dict (``header``, ``state_dict``, ``training_state``).

    Uses ``torch.load(weights_only=True)``: no arbitrary code runs.

    Raises
    ------
    FileNotFoundError
        If the file is missing (other ``OSError`` such as permission denied passes through).
    ValueError
        If the file is not a keypoint_corrupt checkpoint (not a ``torch.save`` file, a file
        holding pickled objects that ``weights_only`` refuses, or one without our header), or
        one newer than this package understands; the message names the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> junk = pathlib.Path(tempfile.mkdtemp()) / "junk.pt"
    >>> _ = junk.write_bytes(b"not a checkpoint")
    >>> read_checkpoint(junk)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../junk.pt is not a keypoint_corrupt checkpoint (not a file torch.load can read: ...)
    """
    try:
        payload = torch.load(Path(path), map_location=map_location, weights_only=True)
    except OSError:
        raise
    except Exception as exc:  # torch.load raises whatever its unpickler meets in a junk file
        raise ValueError(f"{path} is not a keypoint_corrupt checkpoint ({_load_failure(exc)})") from exc
    header = payload.get("header") if isinstance(payload, dict) else None
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a keypoint_corrupt checkpoint (no header)")
    if header.get("format_version", 0) > _FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format {header['format_version']}, newer than this package "
            f"understands ({_FORMAT_VERSION}); upgrade keypoint-corrupt"
        )
    return payload


def _load_failure(exc: Exception) -> str:
    """One line on why ``torch.load`` could not read a file."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if "Unsupported global" in text:  # a real pickle, of objects other than tensors and plain values
        return (
            "it holds pickled objects that a weights-only load refuses, e.g. a whole model saved "
            "with torch.save(model); save it with keypoint_corrupt.models.save"
        )
    if first.startswith("Weights only load failed"):  # junk the unpickler stumbles on
        first = ""
    detail = f"{type(exc).__name__} {first}".strip() if len(first) <= 80 else type(exc).__name__
    return f"not a file torch.load can read: {detail}"


def load(
    path: str | os.PathLike[str], *, map_location: Any = "cpu", encoder: nn.Module | None = None
) -> PoseNet | NerPE:
    """Rebuild a model from a checkpoint written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
        Checkpoint file.
    map_location : optional
        Passed to ``torch.load``.
    encoder : torch.nn.Module, optional
        For a NerPE saved with a custom encoder: an instance of that encoder.

    Returns
    -------
    torch.nn.Module
        The model in eval mode, with the header as ``model.checkpoint_header``.
    """
    payload = read_checkpoint(path, map_location)
    header = payload["header"]
    config = dict(header.get("config") or {})
    name = header["model"]
    if name == "nerpe" and config.get("encoder") == "custom":
        if encoder is None:
            raise ValueError(f"{path} holds a NerPE with a custom encoder: pass encoder=<an instance of it>")
        config["encoder"] = encoder
    model = build_model(name, **config)
    model.load_state_dict(payload["state_dict"])
    model.checkpoint_header = header
    return model.eval()
