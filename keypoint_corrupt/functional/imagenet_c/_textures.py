"""The six frost photographs of ImageNet-C, found on disk (never downloaded, never bundled).

They ship inside the ``imagecorruptions`` package (``imagecorruptions/frost/``). This module
finds that folder without importing the package (its import needs ``pkg_resources``, gone
from recent setuptools), or takes a folder from the caller or from the environment variable
``KEYPOINT_CORRUPT_FROST_DIR``. Decoded textures and their resized versions per image size
are cached.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["ENV_VAR", "FILENAMES", "configured_frost_folder", "frost_folder", "resized_texture"]

#: Environment variable naming a folder that holds the frost textures.
ENV_VAR = "KEYPOINT_CORRUPT_FROST_DIR"
#: The texture files, in imagecorruptions' order (its ``randint(5)`` picks among the first five).
FILENAMES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


def _how_to(with_argument: bool) -> str:
    # A command line has no textures= to pass: its users get the install and the variable only.
    argument = "pass textures=DIR or " if with_argument else ""
    return (
        "install them with `pip install --no-deps imagecorruptions==1.1.2`, or "
        f"{argument}set {ENV_VAR}=DIR for a folder holding {', '.join(FILENAMES)}"
    )


def _installed_folder() -> Path | None:
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "frost"


def frost_folder(textures: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder of the frost textures.

    ``textures`` if given, else ``$KEYPOINT_CORRUPT_FROST_DIR`` if set, else the installed
    ``imagecorruptions`` package's ``frost/`` folder. Raises ``FileNotFoundError``, saying how
    to get them, when the chosen folder lacks a file.

    Examples
    --------
    >>> frost_folder("/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: frost texture /nonexistent/frost1.png not found (from textures=...); install them ...
    """
    if textures is None:
        return _find(with_argument=True)
    if not isinstance(textures, (str, os.PathLike)):
        kind = type(textures).__name__
        raise TypeError(f"textures must be a folder path (str or os.PathLike), got {kind}")
    return _checked(Path(os.fspath(textures)), "textures=", _how_to(with_argument=True))


def configured_frost_folder() -> Path:
    """Return the folder that ``frost`` reads without ``textures=``: the environment's, else the package's.

    ``$KEYPOINT_CORRUPT_FROST_DIR`` if set, else the installed ``imagecorruptions`` package's
    ``frost/`` folder. What a command checks before any work: its ``FileNotFoundError`` names
    the missing texture (or says none was found) and how to get them, the install command or
    the environment variable.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {ENV_VAR: "/nonexistent"}):
    ...     configured_frost_folder()
    Traceback (most recent call last):
    ...
    FileNotFoundError: frost texture /nonexistent/frost1.png not found (from $KEYPOINT_CORRUPT_FROST_DIR); ...
    """
    return _find(with_argument=False)


def _find(with_argument: bool) -> Path:
    how_to = _how_to(with_argument)
    if os.environ.get(ENV_VAR):
        return _checked(Path(os.environ[ENV_VAR]), f"${ENV_VAR}", how_to)
    installed = _installed_folder()
    if installed is None:
        raise FileNotFoundError(f"frost needs the ImageNet-C frost textures and none were found; {how_to}")
    return _checked(installed, "the installed imagecorruptions package", how_to)


def _checked(folder: Path, origin: str, how_to: str) -> Path:
    for name in FILENAMES:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"frost texture {folder / name} not found (from {origin}); {how_to}")
    return folder


@functools.lru_cache(maxsize=12)
def _decoded(path: str) -> npt.NDArray[np.uint8]:
    # imdecode of the file's bytes reads the same pixels as the reference's cv2.imread (BGR),
    # also from non-ASCII paths; reversed to RGB here, as the reference does after its crop.
    bgr: npt.NDArray[Any] | None = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"frost texture {path} could not be decoded as an image")
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    rgb.setflags(write=False)
    return rgb


def _scale(texture_hw: tuple[int, int], image_hw: tuple[int, int]) -> float:
    # imagecorruptions' rule: grow the texture until it covers the image (the larger factor
    # when both sides are short), then by 1.1 more, so that a random crop always fits.
    (th, tw), (ih, iw) = texture_hw, image_hw
    factor = 1.0
    if th < ih and tw >= iw:
        factor = ih / th
    elif th >= ih and tw < iw:
        factor = iw / tw
    elif th < ih and tw < iw:
        factor = max(ih / th, iw / tw)
    return factor * 1.1


# Bounded by count: each entry covers one image size (1.1x, ~7 MB for 1080p); two sizes of the
# five textures stay cached, so a run over images of mixed sizes holds tens of MB, not hundreds.
@functools.lru_cache(maxsize=10)
def resized_texture(path: str, height: int, width: int) -> npt.NDArray[np.uint8]:
    """Texture ``path`` (RGB) resized, bicubic, to cover an image of ``height`` x ``width`` (cached).

    The result is read-only and at least one row and column larger than the image.
    """
    texture = _decoded(path)
    factor = _scale(texture.shape[:2], (height, width))
    size = (math.ceil(texture.shape[1] * factor), math.ceil(texture.shape[0] * factor))
    resized: npt.NDArray[Any] = cv2.resize(texture, dsize=size, interpolation=cv2.INTER_CUBIC)
    resized.setflags(write=False)
    return resized
