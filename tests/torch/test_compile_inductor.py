"""``torch.compile`` with its default backend (inductor) gives the eager results, draws included.

The host draws are graph breaks (``torch.compiler.disable``); what inductor compiles is the
batched arithmetic, which must stay bit-exact. One configuration of each kind keeps this cheap:
a reference blur and an ImageNet-C colour kernel, uint8 and float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from keypoint_corrupt.torch import Corruption


@pytest.mark.parametrize("name", ["motion-15", "imagenet-c.contrast-3"])
def test_inductor_equals_eager(name):
    torch._dynamo.reset()
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 3, 24, 40), dtype=np.uint8))
    module = Corruption(name)
    compiled = torch.compile(module)  # the default backend: inductor, C++ on the CPU
    for batch in (x, x.to(torch.float32) / 255.0):
        want = module(batch, rngs=[1, 2, 3])
        assert torch.equal(compiled(batch, rngs=[1, 2, 3]), want)
        assert torch.equal(compiled(batch, rngs=[1, 2, 3]), want)  # the cached graph too
