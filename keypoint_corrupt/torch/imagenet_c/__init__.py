"""The ImageNet-C corruptions as batched torch kernels, looked up by name.

Each kernel has the signature ``name(images, severity, rngs=None)`` (see ``docs/torch.md``) and
equals ``keypoint_corrupt.functional.imagenet_c.<name>`` sample by sample. The kernels live in
one module per group (``noise``, ``color``, ``digital``, ``elastic``, ``blur``, ``weather``) and
are imported on first use by :func:`get_kernel`, so importing this package costs nothing and a
group that is missing fails only when one of its kernels is asked for, with a clear message.

Examples
--------
>>> len(NAMES), NAMES[0]
(19, 'gaussian_noise')
>>> module_of("fog")
'keypoint_corrupt.torch.imagenet_c.weather'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["KERNELS", "NAMES", "available", "get_kernel", "module_of"]

#: ImageNet-C name -> the module (under ``keypoint_corrupt.torch.imagenet_c``) that defines it;
#: the function has the name of ``keypoint_corrupt.functional.imagenet_c``'s kernel.
KERNELS: dict[str, str] = {
    # the 15 standard corruptions, in imagecorruptions' order
    "gaussian_noise": "noise",
    "shot_noise": "noise",
    "impulse_noise": "noise",
    "defocus_blur": "blur",
    "glass_blur": "blur",
    "motion_blur": "blur",
    "zoom_blur": "blur",
    "snow": "weather",
    "frost": "weather",
    "fog": "weather",
    "brightness": "color",
    "contrast": "color",
    "elastic_transform": "elastic",
    "pixelate": "digital",
    "jpeg_compression": "digital",
    # the 4 extras
    "speckle_noise": "noise",
    "gaussian_blur": "blur",
    "spatter": "weather",
    "saturate": "color",
}
#: Every name :func:`get_kernel` knows: the 15 standard corruptions, then the 4 extras.
NAMES: tuple[str, ...] = tuple(KERNELS)


def module_of(name: str) -> str:
    """Return the full name of the module defining kernel ``name`` (ValueError for an unknown name)."""
    if name not in KERNELS:
        raise ValueError(
            f"name must be one of the {len(NAMES)} ImageNet-C corruptions ({', '.join(NAMES)}), got {name!r}"
        )
    return f"{__name__}.{KERNELS[name]}"


def get_kernel(name: str) -> Callable[..., Any]:
    """Return the torch kernel of ImageNet-C corruption ``name``, importing its module on first use.

    Raises
    ------
    ValueError
        ``name`` is not an ImageNet-C corruption.
    NotImplementedError
        Its module, or the function in it, does not exist (yet).

    Examples
    --------
    >>> try:
    ...     get_kernel("no_such")
    ... except ValueError as exc:
    ...     print(str(exc)[:40])
    name must be one of the 19 ImageNet-C co
    """
    module_name = module_of(name)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the module exists and something it imports is missing: show that
        raise NotImplementedError(
            f"no torch kernel for ImageNet-C {name!r}: module {module_name} does not exist "
            "(use the CPU kernel keypoint_corrupt.functional.imagenet_c." + name + ")"
        ) from None
    kernel = getattr(module, name, None)
    if not callable(kernel):
        raise NotImplementedError(
            f"no torch kernel for ImageNet-C {name!r}: {module_name} defines no function {name!r}"
        )
    return kernel


def available() -> tuple[str, ...]:
    """Return the names whose kernel is there now (a module or function not yet written is left out).

    Examples
    --------
    >>> set(available()) <= set(NAMES)
    True
    """
    found = []
    for name in NAMES:
        try:
            get_kernel(name)
        except NotImplementedError:
            continue
        found.append(name)
    return tuple(found)
