"""Help texts shared by several commands; imports nothing heavy, so ``--help`` stays fast."""

from __future__ import annotations

DATA_HELP = (
    "an STB root (with labels/), a COCO keypoint .json file, MMPose's MPII .json, or a "
    "'keypoint-corrupt materialize' output folder (default: the bundled STB-layout sample)"
)
