"""Defocus (Gaussian) and horizontal motion blur."""

from __future__ import annotations

import cv2

from keypoint_corrupt._validation import ImageArray, check_image, check_int

__all__ = ["defocus_blur", "defocus_sigma", "motion_blur"]


def _restore_shape(result: ImageArray, like: ImageArray) -> ImageArray:
    # OpenCV drops a trailing singleton channel (HxWx1 -> HxW).
    return result.reshape(like.shape) if result.shape != like.shape else result


def defocus_sigma(kernel_size: int) -> float:
    """Gaussian sigma that OpenCV derives from a kernel size when sigma is 0.

    Parameters
    ----------
    kernel_size : int
        Odd kernel size.

    Returns
    -------
    float
        ``0.3 * ((kernel_size - 1) / 2 - 1) + 0.8``.

    Examples
    --------
    >>> defocus_sigma(7)
    1.4
    """
    return 0.3 * ((kernel_size - 1) / 2 - 1) + 0.8


def defocus_blur(image: ImageArray, kernel_size: int) -> ImageArray:
    """Simulate a defocused lens with a ``k x k`` Gaussian blur.

    Bit-identical to ``cv2.GaussianBlur(image, (k, k), 0)`` (sigma derived from ``k`` as
    OpenCV does, see :func:`defocus_sigma`; borders reflected, ``BORDER_REFLECT_101``).
    Note that for ``k <= 9`` OpenCV replaces the formula by fixed tables (for ``k = 7``:
    ``[1, 3.5, 7, 9, 7, 3.5, 1] / 32``, within 0.01 of the sigma-1.4 Gaussian per tap; for
    ``k = 9``: ``[4, 13, 30, 51, 60, 51, 30, 13, 4] / 256``); defocus-7 follows OpenCV, as the
    reference protocol ran OpenCV.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    kernel_size : int
        Odd, positive kernel size (the reference configurations use 7, 13, 21).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((48, 64, 3), np.uint8)
    >>> defocus_blur(img, 7).shape
    (48, 64, 3)
    """
    check_image(image)
    k = check_int(kernel_size, "kernel_size")
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd for a Gaussian (defocus) blur, got {kernel_size!r}")
    out: ImageArray = cv2.GaussianBlur(image, (k, k), 0)
    return _restore_shape(out, image)


def motion_blur(image: ImageArray, kernel_size: int) -> ImageArray:
    """Simulate horizontal camera or hand motion: average over ``k`` pixels of each row.

    Equivalent (within one grey level on uint8, because OpenCV's box filter rounds integer
    sums while ``filter2D`` rounds float products) to
    ``cv2.filter2D(image, -1, K, anchor=(k // 2, 0))`` with ``K`` a ``1 x k`` row of ``1/k``,
    which is the same as a ``k x k`` kernel whose middle row is ``1/k``. It is computed as a
    separable box filter, so the cost does not grow with ``k``. Borders are reflected
    (``BORDER_REFLECT_101``). There is never a vertical shift.

    Even kernel sizes are supported (the reference protocol uses 30). With ``k`` even the
    window covers ``x - k/2 .. x + k/2 - 1``: its centre lies half a pixel to the left of
    the output pixel, so the blurred content moves half a pixel to the right. Keypoints are
    left unchanged; the half-pixel offset is well below annotation noise.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 or float32 (values in [0, 1]) image, HxW, HxWx1, HxWx3 or HxWx4.
    kernel_size : int
        Positive length of the motion in pixels (``1`` returns a copy).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((48, 64), np.uint8); img[:, 32] = 255
    >>> out = motion_blur(img, 15)
    >>> int(out[0, 25]), int(out[0, 32]), int(out[0, 40])
    (17, 17, 0)
    """
    check_image(image)
    k = check_int(kernel_size, "kernel_size")
    if k == 1:
        copy: ImageArray = image.copy()
        return copy
    out: ImageArray = cv2.blur(image, (k, 1), anchor=(k // 2, 0), borderType=cv2.BORDER_REFLECT_101)
    return _restore_shape(out, image)
