"""Functional core: pure NumPy/OpenCV corruptions, NumPy in, NumPy out.

One module per corruption family: :mod:`.blur` (defocus, motion), :mod:`.occlusion`
(keypoint-aware occluder) and :mod:`.noise` (Gaussian, salt and pepper). Every function
accepts uint8 or float32 ([0, 1]) images of shape HxW, HxWx1, HxWx3 or HxWx4, returns a new
array of the same dtype and shape, and never modifies its input.
"""

from keypoint_corrupt.functional.blur import defocus_blur, defocus_sigma, motion_blur
from keypoint_corrupt.functional.noise import bernoulli_positions, gaussian_noise, salt_pepper_noise
from keypoint_corrupt.functional.occlusion import (
    fill_box,
    keypoint_roi,
    occlude,
    occluder_box,
    occlusion_center,
    square_box,
)

__all__ = [
    "bernoulli_positions",
    "defocus_blur",
    "defocus_sigma",
    "fill_box",
    "gaussian_noise",
    "keypoint_roi",
    "motion_blur",
    "occlude",
    "occluder_box",
    "occlusion_center",
    "salt_pepper_noise",
    "square_box",
]
