"""Named corruption configurations, as data.

The eleven reference configurations of Costa et al. are rows of :data:`_REFERENCE`; further
built-in configurations (beyond the published protocol) are rows of :data:`_EXTRA`: the
ImageNet-C corruptions at 5 severities (``imagenet-c.<corruption>-<severity>``, e.g.
``imagenet-c.gaussian_noise-3``, labels as published: ``move_keypoints=False``) and PoseBench's
(``posebench.<corruption>-<severity>``, e.g. ``posebench.mask-5``); users add their own with
:func:`register_config`. A configuration names a transform class and its parameters, plus an
``rng_stream``: configurations sharing a stream draw from the same per-image generator, which
is how occlusion-10/20/30 share their centre on each image (and each suite corruption's five
severities their draws).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy.typing as npt

from keypoint_corrupt import functional as F
from keypoint_corrupt import transforms as T
from keypoint_corrupt._validation import ImageArray, KeypointsLike, Seed, VisibilityLike
from keypoint_corrupt.transforms import CorruptionInfo, CorruptionTransform

__all__ = [
    "CONFIGS",
    "CorruptionConfig",
    "apply_corruption",
    "available_configs",
    "format_parameter",
    "get_config",
    "make_corruption",
    "register_config",
    "summarize_names",
    "unregister_config",
]

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class CorruptionConfig:
    """One named corruption: a transform class with fixed parameters.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"motion-30"``.
    family : str
        Corruption family (``defocus``, ``motion``, ``occlusion``, ``noise``, a suite's
        ``<suite>.<corruption>`` such as ``imagenet-c.fog``, or a user's own).
    transform : type
        A :class:`~keypoint_corrupt.transforms.CorruptionTransform` subclass.
    params : Mapping
        Keyword arguments for ``transform``.
    rng_stream : str
        Key of the per-image random stream (defaults to ``name``).
    description : str
        One line for listings.
    """

    name: str
    family: str
    transform: type[CorruptionTransform]
    params: Mapping[str, Any] = field(default_factory=dict)
    rng_stream: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        if not self.rng_stream:
            object.__setattr__(self, "rng_stream", self.name)

    def build(self, **overrides: Any) -> CorruptionTransform:
        """Instantiate the transform, ``overrides`` replacing the stored parameters."""
        return self.transform(**{**self.params, **overrides})

    @functools.cached_property
    def _shared(self) -> CorruptionTransform:
        # One instance for apply_corruption: building one runs albumentations' pydantic
        # validation (~0.5 ms, 5% of writing an image), and corrupt() keeps no state.
        return self.build()


def _ref(
    name: str,
    family: str,
    transform: type[CorruptionTransform],
    description: str,
    rng_stream: str = "",
    **params: Any,
) -> CorruptionConfig:
    return CorruptionConfig(name, family, transform, params, rng_stream, description)


_REFERENCE: tuple[CorruptionConfig, ...] = (
    _ref("defocus-7", "defocus", T.DefocusBlur, "Gaussian blur, 7x7 kernel, sigma 1.4", kernel_size=7),
    _ref("defocus-13", "defocus", T.DefocusBlur, "Gaussian blur, 13x13 kernel, sigma 2.3", kernel_size=13),
    _ref("defocus-21", "defocus", T.DefocusBlur, "Gaussian blur, 21x21 kernel, sigma 3.5", kernel_size=21),
    _ref("motion-15", "motion", T.HorizontalMotionBlur, "horizontal motion blur over 15 px", kernel_size=15),
    _ref("motion-30", "motion", T.HorizontalMotionBlur, "horizontal motion blur over 30 px", kernel_size=30),
    _ref("motion-45", "motion", T.HorizontalMotionBlur, "horizontal motion blur over 45 px", kernel_size=45),
    _ref(
        "occlusion-10",
        "occlusion",
        T.KeypointOcclusion,
        "black square, 10% of the keypoint ROI",
        "occlusion",
        area=0.10,
        margin=0.15,
    ),
    _ref(
        "occlusion-20",
        "occlusion",
        T.KeypointOcclusion,
        "black square, 20% of the keypoint ROI",
        "occlusion",
        area=0.20,
        margin=0.15,
    ),
    _ref(
        "occlusion-30",
        "occlusion",
        T.KeypointOcclusion,
        "black square, 30% of the keypoint ROI",
        "occlusion",
        area=0.30,
        margin=0.15,
    ),
    _ref(
        "noise-gaussian",
        "noise",
        T.GaussianNoise,
        "additive Gaussian noise, var 0.01 on [0, 1]",
        var=0.01,
        mean=0.0,
    ),
    _ref(
        "noise-saltpepper",
        "noise",
        T.SaltPepperNoise,
        "salt and pepper per channel, 5% of values",
        amount=0.05,
        salt_vs_pepper=0.5,
        per_channel=True,
    ),
)


def format_parameter(value: Any) -> str:
    """Format one parameter value for listings: floats short, long tuples as a range.

    Examples
    --------
    >>> format_parameter(0.30000000000000004), format_parameter((1.0, 1.01, 1.02, 1.03, 1.04))
    ('0.3', '1..1.04 (5 values)')
    """
    if isinstance(value, tuple) and len(value) > 4:  # zoom_blur's zoom factors
        return f"{value[0]:g}..{value[-1]:g} ({len(value)} values)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _suite_row(
    prefix: str,
    title: str,
    transform: type[T.ImageNetC | T.PoseBench],
    corruption: str,
    severity: int,
    **extra: Any,
) -> CorruptionConfig:
    """``<prefix>.<corruption>-<severity>``: family and random stream ``<prefix>.<corruption>``."""
    values = transform.severity_parameters(corruption, severity)
    described = ", ".join(f"{k}={format_parameter(v)}" for k, v in values.items())
    stream = f"{prefix}.{corruption}"
    return _ref(
        f"{stream}-{severity}",
        stream,
        transform,
        f"{title} {corruption}, severity {severity}: {described}",
        stream,
        corruption=corruption,
        severity=severity,
        **extra,
    )


#: ImageNet-C (the 15 standard corruptions, then the 4 extras) at severities 1-5, labels as
#: published: COCO-C's protocol leaves the keypoints where they were under elastic_transform.
_IMAGENET_C: tuple[CorruptionConfig, ...] = tuple(
    _suite_row("imagenet-c", "ImageNet-C", T.ImageNetC, c, s, move_keypoints=False)
    for c in (*F.imagenet_c.STANDARD, *F.imagenet_c.EXTRA)
    for s in range(1, 6)
)
#: PoseBench's 10 corruptions at severities 1-5.
_POSEBENCH: tuple[CorruptionConfig, ...] = tuple(
    _suite_row("posebench", "PoseBench", T.PoseBench, c, s) for c in F.posebench.NAMES for s in range(1, 6)
)

#: Built-in configurations beyond the reference protocol: a new corruption's rows go here.
#: They are listed by :func:`available_configs` and used by name everywhere, but are not part
#: of :data:`CONFIGS`, so the reference datasets and tables do not change.
_EXTRA: tuple[CorruptionConfig, ...] = (*_IMAGENET_C, *_POSEBENCH)

#: The eleven reference configuration names, in the order of the reference study's tables.
CONFIGS: tuple[str, ...] = tuple(c.name for c in _REFERENCE)
_BUILTIN: frozenset[str] = frozenset(c.name for c in (*_REFERENCE, *_EXTRA))

_lock = threading.Lock()
_registry: dict[str, CorruptionConfig] = {c.name: c for c in (*_REFERENCE, *_EXTRA)}


def _builtin_kind(name: str) -> str:
    return "reference" if name in CONFIGS else "built-in"


def available_configs() -> tuple[str, ...]:
    """All registered names: the reference eleven, the other built-ins, then user registrations."""
    return tuple(_registry)


def summarize_names(names: tuple[str, ...] | None = None) -> str:
    """List configuration names readably: plain names one by one, dotted ones by prefix.

    Names like ``imagenet-c.fog-3`` are counted under their prefix (``imagenet-c.*``), so an
    error message stays short however many suite configurations are registered.

    Parameters
    ----------
    names : tuple of str, optional
        Default: every registered name.

    Examples
    --------
    >>> summarize_names(("defocus-7", "imagenet-c.fog-1", "imagenet-c.fog-2"))
    'defocus-7, imagenet-c.* (2 names, e.g. imagenet-c.fog-1)'
    """
    plain: list[str] = []
    groups: dict[str, list[str]] = {}
    for name in available_configs() if names is None else names:
        prefix, dot, _ = name.partition(".")
        if dot:
            groups.setdefault(prefix, []).append(name)
        else:
            plain.append(name)
    grouped = [f"{p}.* ({len(v)} name{'s' * (len(v) > 1)}, e.g. {v[0]})" for p, v in groups.items()]
    return ", ".join(plain + grouped)


def get_config(name: str) -> CorruptionConfig:
    """Look up a configuration by name.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the valid names.

    Examples
    --------
    >>> get_config("motion-30").params["kernel_size"]
    30
    """
    try:
        return _registry[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown corruption configuration {name!r}; valid names: {summarize_names()} "
            "(all of them: keypoint-corrupt list --json)"
        ) from None


def make_corruption(name: str, **overrides: Any) -> CorruptionTransform:
    """Build the albumentations transform of a named configuration.

    Parameters
    ----------
    name : str
        A registered name, e.g. ``"defocus-13"``.
    **overrides
        Parameters replacing the configuration's, e.g. ``p=0.5`` or ``fill=127``.

    Returns
    -------
    CorruptionTransform
        An ``albumentations.ImageOnlyTransform``.

    Examples
    --------
    >>> make_corruption("occlusion-20", fill=127)
    KeypointOcclusion(area=0.2, margin=0.15, fill=127.0, visibility_label=None, instance_label=None, p=1.0)
    """
    return get_config(name).build(**overrides)


def apply_corruption(
    name: str,
    image: ImageArray,
    keypoints: KeypointsLike | None = None,
    *,
    visibility: VisibilityLike | None = None,
    instances: npt.ArrayLike | None = None,
    rng: Seed = None,
    **overrides: Any,
) -> tuple[ImageArray, CorruptionInfo]:
    """Apply a named configuration to one image with an explicit generator (no albumentations).

    Returns the corrupted image and what was drawn (``{"box": ..., "center": ...}`` for
    occlusion, ``{}`` otherwise). ``instances`` (each keypoint's person index, for an image
    with several) makes a keypoint-aware configuration target one person and report it as
    ``target_instance`` (see :meth:`~keypoint_corrupt.transforms.CorruptionTransform.corrupt`).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((64, 64, 3), 200, np.uint8)
    >>> out, info = apply_corruption("occlusion-30", img, [[10, 10], [50, 50]], rng=0)
    >>> sorted(info)
    ['box', 'center']
    """
    cfg = get_config(name)
    transform = cfg.build(**overrides) if overrides else cfg._shared
    return transform.corrupt(image, keypoints=keypoints, visibility=visibility, instances=instances, rng=rng)


def register_config(
    name: str,
    transform: type[CorruptionTransform],
    params: Mapping[str, Any] | None = None,
    *,
    family: str | None = None,
    rng_stream: str | None = None,
    description: str = "",
    replace: bool = False,
) -> CorruptionConfig:
    """Register a named configuration so every part of the package can use it by name.

    The parameters are checked by building the transform once.

    Parameters
    ----------
    name : str
        Lower-case name (letters, digits, ``-``, ``_``, ``.``).
    transform : type
        A :class:`~keypoint_corrupt.transforms.CorruptionTransform` subclass.
    params : Mapping, optional
        Its keyword arguments.
    family : str, optional
        Defaults to the transform's ``family``.
    rng_stream : str, optional
        Share a per-image random stream with other configurations (default: ``name``).
    description : str
        One line for listings.
    replace : bool, default False
        Allow replacing a user registration (the reference eleven can never be replaced).

    Examples
    --------
    >>> from keypoint_corrupt import DefocusBlur
    >>> cfg = register_config("defocus-31", DefocusBlur, {"kernel_size": 31})
    >>> make_corruption("defocus-31").kernel_size
    31
    >>> unregister_config("defocus-31")
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"name must be lower-case letters, digits, '-', '_' or '.', got {name!r}")
    if not (isinstance(transform, type) and issubclass(transform, CorruptionTransform)):
        raise TypeError(f"transform must be a CorruptionTransform subclass, got {transform!r}")
    cfg = CorruptionConfig(
        name, family or transform.family, transform, dict(params or {}), rng_stream or "", description
    )
    cfg.build()  # fail now, not in the middle of a dataset build
    with _lock:
        if name in _BUILTIN:
            raise ValueError(f"{name!r} is a {_builtin_kind(name)} configuration and cannot be replaced")
        if name in _registry and not replace:
            raise ValueError(f"configuration {name!r} is already registered (pass replace=True)")
        _registry[name] = cfg
    return cfg


def unregister_config(name: str) -> None:
    """Remove a user registration (reference configurations cannot be removed)."""
    with _lock:
        if name in _BUILTIN:
            raise ValueError(f"{name!r} is a {_builtin_kind(name)} configuration and cannot be removed")
        if name not in _registry:
            raise ValueError(f"configuration {name!r} is not registered")
        del _registry[name]
