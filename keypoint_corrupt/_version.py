# 0.2.0: keypoint-aware corruptions target one person per image; COCO-C keeps the source's ids and
# fields and every image. Outputs of 0.1.0 differ, so resuming one is refused (the manifest's version).
__version__ = "0.2.0"
