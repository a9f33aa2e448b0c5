"""The physical floor: only the network's forward passes on our tile batches.

The inputs are prepared before timing (the same batches ``predict_sliced``
makes: same tiles, same batch size, same dtype, layout and padding) and run the
way ``predict_sliced`` runs them (on a CPU, two batches at a time on half the
cores each), so the timed call is the network and nothing else. Our overhead
is then ``total time / floor``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sliced_inference.slicer import SliceOptions, tile_boxes
from sliced_inference.slicer.models.ultralytics import UltralyticsModel
from sliced_inference.slicer.sliced import iter_tile_batches


def forward_only(
    model: UltralyticsModel, image: np.ndarray, options: SliceOptions
) -> Callable[[], None]:
    """A call that runs only the forward passes of ``predict_sliced`` on ``image``."""
    import torch

    if getattr(model, "network", None) is None:
        raise TypeError("the floor needs an Ultralytics detect/segment network")
    height, width = image.shape[:2]
    tiles = tile_boxes((width, height), options.slice_wh, options.overlap)
    inputs = [
        model.prepare_batch(crops, options.imgsz)[0]
        for _, crops in iter_tile_batches(image, tiles, options.batch_size)
    ]

    def run() -> None:
        # The same execution as predict_sliced: batches two at a time on a CPU.
        for _ in model.map_batches(model.forward, inputs):
            pass
        if model.device.startswith("cuda"):
            torch.cuda.synchronize()

    return run
