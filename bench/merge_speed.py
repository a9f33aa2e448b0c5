"""How fast duplicates across tiles are merged: ours vs SAHI's and supervision's merging.

The detections are made, not predicted (``sliced_detections``): objects on a
jittered grid, each detected by every 640-px tile that sees part of it, whole
where the tile holds it and as the visible, truncated part where a tile edge
cuts it. The merge has a known answer (one detection per object), and every
tool gets the same detections. Timings are medians of interleaved runs
(``bench.timing``); compare tools only as ratios from one run.

- ours: ``merge_detections`` with its default (provenance) merge, and with
  classic per-class NMS at IoU 0.5;
- SAHI: ``sahi.postprocess.combine.batched_nms`` and ``batched_greedy_nmm``
  (IOS 0.5, its default) on the same ``N x 6`` table; these return which
  detections to keep or merge (SAHI builds the merged boxes afterwards, not
  timed here);
- supervision: ``box_non_max_suppression`` (per class, IoU 0.5). It builds a
  dense ``N x N`` IoU matrix, so it runs only up to ``--dense-limit``
  detections.

Usage::

    .venv/bin/python -m bench.merge_speed                 # 4000x3000 and 8000x6000
    .venv/bin/python -m bench.merge_speed --repeats 1 --sizes 4000x3000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sliced_inference.slicer import MergeConfig, Predictions, merge_detections
from sliced_inference.slicer.tiles import interior_edges, tile_boxes

from .report import load_average, machine_info
from .timing import time_interleaved

#: Tile size and overlap the detections are cut by.
TILE, OVERLAP = 640, 0.2
#: Class names of the made-up detections.
NAMES = {0: "car", 1: "truck", 2: "person"}


def sliced_detections(
    seed: int = 0, image_wh: tuple[int, int] = (4000, 3000)
) -> tuple[Predictions, np.ndarray, tuple[int, int], np.ndarray]:
    """What a detector would return on every tile of a dense image, before merging.

    Objects of 12-40 px sit on a jittered 60-px grid. A tile that sees all of
    an object returns it whole (with 0.5 px of noise); one that sees part of
    it returns the visible part, truncated; slivers under 6 px are missed.
    About 5600 detections of 3200 objects at 4000x3000.

    Returns:
        ``(predictions, tiles, image_wh, objects)``: the tile detections (in
        image pixels, with their tile and truncation), the tile boxes, the
        image size and the true ``xyxy`` boxes.

    Example::

        >>> preds, tiles, image_wh, objects = sliced_detections()
        >>> len(merge_detections(preds, tiles, image_wh)) == len(objects)
        True
    """
    rng = np.random.default_rng(seed)
    width, height = image_wh
    tiles = tile_boxes(image_wh, TILE, OVERLAP)
    gx, gy = np.meshgrid(np.arange(20, width - 40, 60), np.arange(20, height - 40, 60))
    xy = np.stack([gx.ravel(), gy.ravel()], axis=1) + rng.uniform(0, 15, (gx.size, 2))
    objects = np.concatenate([xy, xy + rng.uniform(12, 40, xy.shape)], axis=1)
    interior = interior_edges(tiles, image_wh)
    obj, tile = np.nonzero(
        (objects[:, None, 0] < tiles[None, :, 2])
        & (objects[:, None, 2] > tiles[None, :, 0])
        & (objects[:, None, 1] < tiles[None, :, 3])
        & (objects[:, None, 3] > tiles[None, :, 1])
    )
    seen = np.concatenate(
        [
            np.maximum(objects[obj, :2], tiles[tile, :2]),
            np.minimum(objects[obj, 2:], tiles[tile, 2:]),
        ],
        axis=1,
    )
    visible = (seen[:, 2:] - seen[:, :2]).min(axis=1) >= 6
    obj, tile, seen = obj[visible], tile[visible], seen[visible]
    cut = (interior[tile] & (seen == tiles[tile])).any(axis=1)
    preds = Predictions(
        boxes=seen + rng.normal(0, 0.5, seen.shape) * ~cut[:, None],
        scores=rng.uniform(0.3, 1.0, len(obj)),
        class_ids=obj % 3,
        class_names=NAMES,
        tile_index=tile,
        truncated=cut,
    )
    return preds, tiles, image_wh, objects


def merge_calls(
    preds: Predictions,
    tiles: np.ndarray,
    image_wh: tuple[int, int],
    dense_limit: int,
) -> dict[str, Callable[[], Any]]:
    """Each tool's merge of the same detections, as calls to time."""
    table = np.concatenate(
        [preds.boxes, preds.scores[:, None], preds.class_ids[:, None]], axis=1
    ).astype(np.float32)
    nms = MergeConfig(strategy="nms", metric="iou")
    calls: dict[str, Callable[[], Any]] = {
        "ours (provenance)": lambda: merge_detections(preds, tiles, image_wh),
        "ours (nms)": lambda: merge_detections(preds, tiles, image_wh, nms),
    }
    try:
        from sahi.postprocess import combine
    except ImportError:
        combine = None
    if combine is not None:
        calls["SAHI nms"] = lambda: combine.batched_nms(
            table, match_metric="IOU", match_threshold=0.5
        )
        calls["SAHI greedy_nmm"] = lambda: combine.batched_greedy_nmm(
            table, match_metric="IOS", match_threshold=0.5
        )
    if len(preds) <= dense_limit:
        try:
            import supervision as sv
        except ImportError:
            sv = None
        if sv is not None:
            calls["supervision nms"] = lambda: sv.box_non_max_suppression(table, 0.5)
    return calls


def main(argv: Sequence[str] | None = None) -> int:
    """Times every tool's merge at each size and prints a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["4000x3000", "8000x6000"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--dense-limit",
        type=int,
        default=10_000,
        help="most detections given to tools that build an N x N matrix",
    )
    args = parser.parse_args(argv)
    meta = machine_info(argv or [], "cpu")
    print(f"CPU: {meta['cpu']}, {meta['cores']} cores; load {load_average()}")
    print(f"command: .venv/bin/python -m bench.merge_speed {' '.join(argv or [])}\n")
    rows = []
    for size in args.sizes:
        image_wh = tuple(int(v) for v in size.split("x"))
        preds, tiles, image_wh, objects = sliced_detections(0, image_wh)
        calls = merge_calls(preds, tiles, image_wh, args.dense_limit)
        timings, _ = time_interleaved(calls, repeats=args.repeats)
        rows.append((size, len(preds), len(objects), timings))
    tools = list(dict.fromkeys(name for row in rows for name in row[3]))
    print("| image | detections | objects | " + " | ".join(tools) + " |")
    print("|---" * (3 + len(tools)) + "|")
    for size, n, objects, timings in rows:
        cells = [
            f"{timings[t].median:.3f} s" if t in timings else "not run" for t in tools
        ]
        print(f"| {size} | {n} | {objects} | " + " | ".join(cells) + " |")
    print(f"\nmedian of {args.repeats} runs; load at the end {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
