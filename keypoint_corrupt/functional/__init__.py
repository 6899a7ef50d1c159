"""Functional core: pure NumPy/OpenCV corruptions, NumPy in, NumPy out.

One module per corruption family: :mod:`.blur` (defocus, motion), :mod:`.occlusion`
(keypoint-aware occluder) and :mod:`.noise` (Gaussian, salt and pepper). Every function
accepts uint8 or float32 ([0, 1]) images of shape HxW, HxWx1, HxWx3 or HxWx4, returns a new
array of the same dtype and shape, and never modifies its input.

Each module lists its public names in its own ``__all__``; this package re-exports them, so
a new function needs no edit here (a new module needs one import line and one ``__all__``
line below).

The published suites live in their own namespaces, reached as attributes and not re-exported
here, because their names (``gaussian_noise``, ``motion_blur``, ...) are those of the suites'
own definitions, not of the functions above: :mod:`.imagenet_c` (the 19 ImageNet-C
corruptions) and :mod:`.posebench` (PoseBench's 10).

Examples
--------
>>> import numpy as np
>>> from keypoint_corrupt import functional as F
>>> F.motion_blur(np.zeros((8, 8), np.uint8), 3).shape
(8, 8)
>>> F.imagenet_c.motion_blur is F.motion_blur, F.posebench.NAMES[-1]
(False, 'mask')
"""

# imagenet_c and posebench are namespaces only: star-importing them would shadow the functions above.
from keypoint_corrupt.functional import blur, imagenet_c, noise, occlusion, posebench  # noqa: F401
from keypoint_corrupt.functional.blur import *  # noqa: F403  (re-exports blur.__all__)
from keypoint_corrupt.functional.noise import *  # noqa: F403  (re-exports noise.__all__)
from keypoint_corrupt.functional.occlusion import *  # noqa: F403  (re-exports occlusion.__all__)

__all__: list[str] = []
__all__ += blur.__all__
__all__ += noise.__all__
__all__ += occlusion.__all__
