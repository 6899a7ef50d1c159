"""The ``keypoint-corrupt`` command line."""
