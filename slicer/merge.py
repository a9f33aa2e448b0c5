"""Where duplicates are merged: the detections of overlapping tiles (and the full-image pass) become one set.

Two families of strategies:

- ``provenance`` (the default) uses where each detection came from: its tile
  (or the full-image pass) and whether it touches an interior tile edge
  (``truncated``). It never matches two detections of one tile, compares
  detections of two tiles only inside the region both tiles saw, keeps the
  best complete detection of an object rather than a union, reassembles
  objects cut into fragments across tiles, and merges across classes only at
  high overlap.
- ``nms``, ``greedy_nmm``, ``nmm`` reproduce SAHI's and supervision's
  settings: box IoU or IoS, per class unless ``class_agnostic``, every pair
  compared (the same tile included). ``none`` keeps everything.

Candidate pairs come from a sort-and-sweep (``candidates.overlapping_pairs``),
metrics are vectorised, and clustering walks the detections once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .candidates import (
    box_areas,
    intersect_boxes,
    intersection_areas,
    overlapping_pairs,
    pair_ios,
    pair_iou,
)
from .errors import ConfigError
from .masks import paste_union
from .predictions import FULL_IMAGE, Predictions
from .rotated import (
    NO_CLIP,
    clipped_rotated_iou,
    enclosing_rbox,
    pair_rotated_ios,
    pair_rotated_iou,
    rbox_corners,
    rbox_envelopes,
)
from .settings import setting
from .tiles import interior_edges

#: Merge strategies, with what each does to a cluster of matching detections.
STRATEGIES = {
    "provenance": "tile-aware: keeps the best complete detection of each object",
    "nms": "keeps the top-scoring detection, drops the others",
    "greedy_nmm": "each top-scoring detection absorbs its matches: union box, max score",
    "nmm": "connected matches merge transitively: union box, max score",
    "none": "keeps every detection",
}
#: Box overlap metrics of the classic strategies.
METRICS = {"iou": "intersection over union", "ios": "intersection over smaller area"}

# Same tolerance as ``sliced.EDGE_MARGIN`` (importing it would be circular):
# how close to a tile edge a box counts as touching it.
_EDGE_MARGIN = 2.0


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(
        value, (bool, np.bool_)
    )


@dataclass(frozen=True)
class MergeConfig:
    """How duplicates across tiles are merged; validated when built.

    Strategies (names are case-insensitive):

    - ``provenance`` (default): never matches two detections of one tile;
      compares a pair where both tiles could see it (a box is clipped to the
      other's tile when the other is truncated) by IoU, at ``threshold`` for
      one class and ``cross_class_threshold`` across classes. A truncated
      detection (a fragment) also matches a complete one of another tile
      when ``fragment_cover`` of its box lies inside that detection as the
      fragment's tile saw it, whatever the classes. Each cluster
      keeps its best complete detection (box, mask, class) with the
      cluster's best score; a cluster of fragments only becomes their union
      box with the masks ORed. With a full-image pass, large objects prefer
      the full-image detection and small ones the tile's.
    - ``nms``: by decreasing score, each kept detection drops its remaining
      matches (SAHI's NMS, supervision's default).
    - ``greedy_nmm``: by decreasing score, each kept detection absorbs its
      unassigned matches, matched against its own box; union box, max score,
      keeper's class, masks ORed. SAHI's GREEDYNMM forms the same clusters
      but re-checks each member against the growing union and silently
      drops the ones that no longer match; here they are merged.
    - ``nmm``: connected components of the match graph merge (transitive);
      union box, max score, top-scoring member's class.
    - ``none``: every detection is kept.

    The classic strategies match on box ``metric`` (IoU or IoS) per class
    unless ``class_agnostic``, comparing every pair, the same tile included.

    Attributes:
        strategy: ``"provenance"``, ``"nms"``, ``"nmm"``, ``"greedy_nmm"`` or
            ``"none"``.
        metric: box overlap of the classic strategies, ``"iou"`` or ``"ios"``
            (``provenance`` always uses IoU of the parts both tiles saw).
        threshold: overlap in ``(0, 1]`` at which two detections match (for
            ``provenance``: two detections of the same class).
        class_agnostic: classic strategies match across classes too.
        cross_class_threshold: ``provenance`` matches detections of different
            classes only at this overlap (one object, two labels).
        fragment_cover: ``provenance`` matches a fragment (truncated) with a
            complete detection of another tile when at least this share of
            the fragment's box lies inside the complete one clipped to the
            fragment's tile. A model's box of a cut object is often shorter
            than what its tile shows, or labelled otherwise (half a plane
            looks like a car), so IoU alone leaves it as a duplicate.
        large_object_size: ``provenance`` with a full-image pass prefers the
            full-image detection of objects whose longer side exceeds this
            fraction of the slice's longer side, and the tile detection of
            smaller ones.

    Example::

        >>> MergeConfig(strategy="greedy_nmm", metric="ios").threshold
        0.5
    """

    strategy: str = setting(
        "provenance",
        label="Merge strategy",
        help="How duplicates across tile borders become one detection; "
        "nms / greedy_nmm reproduce SAHI's and supervision's settings.",
        kind="choice",
        choices=STRATEGIES,
        param="merge",
    )
    metric: str = setting(
        "iou",
        label="Match metric",
        help="Overlap measure of nms / nmm / greedy_nmm (provenance uses IoU "
        "of the region both tiles saw).",
        kind="choice",
        choices=METRICS,
        param="merge_metric",
    )
    threshold: float = setting(
        0.5,
        label="Merge threshold",
        help="Overlap above which two detections are the same object; lower it "
        "if duplicates remain at tile borders.",
        kind="float",
        minimum=0.01,
        maximum=1.0,
        param="merge_threshold",
    )
    class_agnostic: bool = setting(
        False,
        label="Merge across classes",
        help="Classic strategies also merge duplicates labelled with different "
        "classes (provenance does so above cross_class_threshold).",
        kind="bool",
    )
    cross_class_threshold: float = 0.8
    fragment_cover: float = 0.5
    large_object_size: float = 0.5

    def __post_init__(self) -> None:
        for name, choices in (("strategy", STRATEGIES), ("metric", METRICS)):
            value = getattr(self, name)
            key = value.lower() if isinstance(value, str) else value
            if key not in choices:
                raise ConfigError(
                    f"unknown merge {name} {value!r}; choose one of "
                    + ", ".join(repr(c) for c in choices)
                )
            object.__setattr__(self, name, key)
        for name in ("threshold", "cross_class_threshold", "fragment_cover"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 < value <= 1.0:
                raise ConfigError(f"merge {name} must be in (0, 1], got {value!r}")
        if not _is_number(self.large_object_size) or self.large_object_size <= 0:
            raise ConfigError(
                f"large_object_size must be a positive fraction of the slice, "
                f"got {self.large_object_size!r}"
            )
        if not isinstance(self.class_agnostic, (bool, np.bool_)):
            raise ConfigError(
                f"class_agnostic must be True or False, got {self.class_agnostic!r}"
            )


@dataclass(frozen=True)
class _Clusters:
    """Clusters of matching detections: ``keepers[c]`` leads cluster ``c``."""

    keepers: np.ndarray  # (K,) detection index of each cluster's keeper
    cluster_of: np.ndarray  # (N,) cluster of each detection
    union: np.ndarray  # (K,) bool: output the union of the members, not the keeper


def merge_detections(
    predictions: Predictions,
    tiles: np.ndarray,
    image_wh: tuple[int, int],
    config: MergeConfig = MergeConfig(),
    slice_wh: tuple[int, int] | None = None,
) -> Predictions:
    """Merges the duplicates that overlapping tiles (and a full-image pass) create.

    Args:
        predictions: detections in full-image pixels, with ``tile_index``
            (``FULL_IMAGE`` for the full-image pass) and ``truncated`` set.
        tiles: int ``(T, 4)`` ``xyxy`` tile boxes that ``tile_index`` refers to.
        image_wh: image ``(width, height)``; the full-image pass's "tile".
        config: the strategy and its thresholds (see ``MergeConfig``).
        slice_wh: the slice size, for ``large_object_size``; ``None`` takes
            the largest tile.

    Returns:
        merged ``Predictions`` by decreasing score; ties are broken by content
        (never by input order), so the result does not depend on the order of
        the input. A merged detection takes the keeper's class, tile and (for
        a kept box) mask; its score is the cluster's maximum.

    Example::

        >>> from sliced_inference.slicer.tiles import tile_boxes
        >>> tiles = tile_boxes((900, 500), 512, 0.2)  # x 0-512 and 388-900
        >>> preds = Predictions(
        ...     boxes=[[480, 200, 512, 260], [479, 201, 561, 259]],
        ...     scores=[0.85, 0.8], class_ids=[0, 0],
        ...     tile_index=[0, 1], truncated=[True, False])
        >>> merged = merge_detections(preds, tiles, (900, 500))
        >>> merged.boxes.tolist(), merged.truncated.tolist()
        ([[479.0, 201.0, 561.0, 259.0]], [False])
    """
    if not isinstance(config, MergeConfig):
        raise ConfigError(f"config must be a MergeConfig, got {type(config).__name__}")
    tiles = np.asarray(tiles, dtype=np.float64).reshape(-1, 4)
    bad = (predictions.tile_index < FULL_IMAGE) | (predictions.tile_index >= len(tiles))
    if bad.any():
        raise ValueError(
            f"tile_index {int(predictions.tile_index[bad][0])} does not name one of "
            f"the {len(tiles)} tiles (or FULL_IMAGE = {FULL_IMAGE})"
        )
    if config.strategy == "none" or len(predictions) < 2:
        return predictions.select(_ranking(predictions, "none", config, tiles, None))
    order = _ranking(predictions, config.strategy, config, tiles, slice_wh)
    if config.strategy == "provenance":
        first, second = _provenance_matches(predictions, tiles, image_wh, config)
    else:
        first, second = _classic_matches(predictions, config)
    fragments = predictions.truncated if config.strategy == "provenance" else None
    keepers, cluster_of = _cluster(
        order, first, second, _transitive(predictions, config.strategy), fragments
    )
    if config.strategy == "nms":
        union = np.zeros(len(keepers), dtype=bool)
    elif config.strategy == "provenance":
        # A truncated keeper means no complete detection matched: reassemble.
        union = predictions.truncated[keepers]
    else:
        union = np.ones(len(keepers), dtype=bool)
    clusters = _Clusters(keepers, cluster_of, union)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return _assemble(predictions, clusters, rank, tiles, image_wh)


def _ranking(
    preds: Predictions,
    strategy: str,
    config: MergeConfig,
    tiles: np.ndarray,
    slice_wh: tuple[int, int] | None,
) -> np.ndarray:
    """Detections in the order they become keepers; content breaks every tie."""
    b = preds.boxes
    keys = [b[:, 3], b[:, 2], b[:, 1], b[:, 0], preds.class_ids, preds.tile_index]
    if strategy == "provenance":
        # Complete detections first (a fragment never represents an object a
        # whole detection covers), then the source that sees the object best.
        keys += [-preds.scores, _source_rank(preds, config, tiles, slice_wh)]
        keys.append(preds.truncated)
    else:
        keys += [preds.truncated, -preds.scores]
    return np.lexsort(keys)


def _source_rank(
    preds: Predictions,
    config: MergeConfig,
    tiles: np.ndarray,
    slice_wh: tuple[int, int] | None,
) -> np.ndarray:
    """0 for the preferred source of each detection, 1 otherwise.

    Large objects are better seen whole by the full-image pass; small ones at
    the tiles' higher resolution.
    """
    full = preds.tile_index == FULL_IMAGE
    if full.all() or not full.any():
        return np.zeros(len(preds), dtype=np.int8)
    if slice_wh is not None:
        longest = float(max(slice_wh))
    else:
        longest = float((tiles[:, 2:] - tiles[:, :2]).max())
    size = (preds.boxes[:, 2:] - preds.boxes[:, :2]).max(axis=1)
    large = size > config.large_object_size * longest
    return np.where(large, ~full, full).astype(np.int8)


def _classic_matches(
    preds: Predictions, config: MergeConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose boxes overlap by ``config.metric`` >= threshold, per class unless agnostic."""
    first, second = overlapping_pairs(preds.boxes)
    if not config.class_agnostic:
        same = preds.class_ids[first] == preds.class_ids[second]
        first, second = first[same], second[same]
    hit = _pair_overlap(preds, first, second, config.metric) >= config.threshold
    return first[hit], second[hit]


def _pair_overlap(
    preds: Predictions, first: np.ndarray, second: np.ndarray, metric: str
) -> np.ndarray:
    """IoU or IoS of pairs: of their rotated boxes when they have them."""
    if preds.rotated:
        overlap = pair_rotated_iou if metric == "iou" else pair_rotated_ios
        return overlap(preds.rboxes[first], preds.rboxes[second])
    overlap = pair_iou if metric == "iou" else pair_ios
    return overlap(preds.boxes[first], preds.boxes[second])


def _regions(
    preds: Predictions, tiles: np.ndarray, image_wh: tuple[int, int]
) -> np.ndarray:
    """The box each detection's model saw: its tile, or the whole image."""
    whole = np.array([0, 0, image_wh[0], image_wh[1]], dtype=np.float64)
    regions = np.tile(whole, (len(preds), 1))
    on_tile = preds.tile_index != FULL_IMAGE
    regions[on_tile] = tiles[preds.tile_index[on_tile]]
    return regions


def _provenance_matches(
    preds: Predictions,
    tiles: np.ndarray,
    image_wh: tuple[int, int],
    config: MergeConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs from different sources that overlap where both sources could see the object.

    When ``j`` is truncated, ``j`` shows only what its tile saw, so ``i`` is
    clipped to that tile before comparing (and symmetrically): a border
    fragment then matches the whole object from the neighbouring tile (IoU
    near 1), while a small object inside a bigger one stays apart (IoU of
    whole boxes stays low). A fragment next to a complete detection also
    matches when it lies mostly inside the clipped complete box
    (``fragment_cover``), in any class: the complete detection keeps its box
    and class, so at worst a duplicate view of another object goes.
    """
    first, second = overlapping_pairs(preds.boxes)
    apart = preds.tile_index[first] != preds.tile_index[second]
    first, second = first[apart], second[apart]
    regions = _regions(preds, tiles, image_wh)
    cut_a, cut_b = preds.truncated[first], preds.truncated[second]
    same = preds.class_ids[first] == preds.class_ids[second]
    needed = np.where(same, config.threshold, config.cross_class_threshold)
    if preds.rotated:
        overlap = clipped_rotated_iou(
            preds.rboxes[first],
            preds.rboxes[second],
            np.where(cut_b[:, None], regions[second], NO_CLIP),
            np.where(cut_a[:, None], regions[first], NO_CLIP),
        )
        hit = overlap >= needed
        return first[hit], second[hit]
    a = preds.boxes[first].astype(np.float64)
    b = preds.boxes[second].astype(np.float64)
    seen_a = np.where(cut_b[:, None], intersect_boxes(a, regions[second]), a)
    seen_b = np.where(cut_a[:, None], intersect_boxes(b, regions[first]), b)
    hit = pair_iou(seen_a, seen_b) >= needed
    # A fragment cut by its tile's edge that the other tile's whole box covers
    # is the same object, however small the fragment's IoU.
    fragment = np.where(cut_a[:, None], a, b)
    complete = np.where(cut_a[:, None], seen_b, seen_a)
    covered = intersection_areas(fragment, complete) >= config.fragment_cover * (
        box_areas(fragment)
    )
    hit |= (cut_a != cut_b) & covered
    return first[hit], second[hit]


def _transitive(preds: Predictions, strategy: str) -> np.ndarray:
    """Whether a keeper at each detection keeps absorbing its members' matches."""
    if strategy == "nmm":
        return np.ones(len(preds), dtype=bool)
    if strategy == "provenance":
        # Fragments of one large object chain across tiles.
        return preds.truncated.copy()
    return np.zeros(len(preds), dtype=bool)


def _cluster(
    order: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    transitive: np.ndarray,
    fragments: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy clustering: the first unassigned detection in ``order`` absorbs its unassigned matches.

    Returns the keeper of each cluster and the cluster of each detection.

    A keeper whose ``transitive`` flag is set goes on absorbing the matches
    of what it absorbed (a breadth-first walk). Every detection is visited
    once; work per keeper is vectorised over its matches.

    ``fragments`` (provenance: the truncated detections): a keeper also
    absorbs the unassigned fragments matched to the complete detections it
    absorbed. A fragment at one tile's edge matches the object's complete
    view in the neighbouring tile; when that view joins a keeper from a third
    source (e.g. the same object whole in the fragment's own tile), the
    fragment belongs to that cluster too, not to a cluster of its own.

    With provenance, every complete detection precedes every truncated one,
    so by the time a truncated keeper starts, all complete detections are
    taken and its walk only follows truncated-truncated matches.
    """
    n = len(order)
    nodes = np.concatenate([first, second])
    indices = np.concatenate([second, first])
    indptr = np.concatenate([[0], np.cumsum(np.bincount(nodes, minlength=n))])
    indices = indices[np.argsort(nodes, kind="stable")]
    cluster_of = np.full(n, -1, dtype=np.int64)
    keepers = []
    for i in order[np.diff(indptr)[order] > 0].tolist():
        if cluster_of[i] >= 0:
            continue
        c = len(keepers)
        keepers.append(i)
        cluster_of[i] = c
        frontier = indices[indptr[i] : indptr[i + 1]]
        while frontier.size:
            fresh = np.unique(frontier[cluster_of[frontier] < 0])
            cluster_of[fresh] = c
            if not transitive[i]:
                if fragments is not None:
                    around = _neighbours(indptr, indices, fresh[~fragments[fresh]])
                    cluster_of[around[(cluster_of[around] < 0) & fragments[around]]] = c
                break
            frontier = _neighbours(indptr, indices, fresh)
    # Detections with no match are clusters of their own.
    lone = np.flatnonzero(cluster_of < 0)
    cluster_of[lone] = len(keepers) + np.arange(len(lone))
    return np.concatenate([np.asarray(keepers, dtype=np.int64), lone]), cluster_of


def _neighbours(
    indptr: np.ndarray, indices: np.ndarray, nodes: np.ndarray
) -> np.ndarray:
    """All matches of ``nodes`` (CSR rows gathered without a Python loop)."""
    starts, stops = indptr[nodes], indptr[nodes + 1]
    counts = stops - starts
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return indices[np.repeat(starts, counts) + offsets]


def _assemble(
    preds: Predictions,
    clusters: _Clusters,
    rank: np.ndarray,
    tiles: np.ndarray,
    image_wh: tuple[int, int],
) -> Predictions:
    """One detection per cluster, by decreasing score (keeper rank breaks ties)."""
    keepers, cluster_of = clusters.keepers, clusters.cluster_of
    k = len(keepers)
    scores = np.full(k, -np.inf, dtype=np.float32)
    np.maximum.at(scores, cluster_of, preds.scores)
    hull = np.concatenate([preds.boxes[keepers, :2], preds.boxes[keepers, 2:]], axis=1)
    for axis in (0, 1):
        np.minimum.at(hull[:, axis], cluster_of, preds.boxes[:, axis])
        np.maximum.at(hull[:, axis + 2], cluster_of, preds.boxes[:, axis + 2])
    sizes = np.bincount(cluster_of, minlength=k)
    union = clusters.union & (sizes > 1)
    boxes = np.where(union[:, None], hull, preds.boxes[keepers])
    truncated = preds.truncated[keepers].copy()
    truncated[union] = _still_cut(preds, clusters, hull, tiles, image_wh)[union]
    masks, mask_boxes = None, None
    if preds.has_masks:
        masks, mask_boxes = _cluster_masks(preds, keepers, cluster_of, union)
    rboxes = None
    if preds.rotated:
        rboxes = _cluster_rboxes(preds, keepers, cluster_of, union)
        width, height = image_wh
        boxes[union] = rbox_envelopes(rboxes[union]).clip(0, [width, height] * 2)
    final = np.lexsort((rank[keepers], -scores))
    return Predictions(
        boxes=boxes[final],
        scores=scores[final],
        class_ids=preds.class_ids[keepers][final],
        class_names=dict(preds.class_names),
        masks=None if masks is None else [masks[i] for i in final],
        mask_boxes=None if mask_boxes is None else mask_boxes[final],
        tile_index=preds.tile_index[keepers][final],
        truncated=truncated[final],
        rboxes=None if rboxes is None else rboxes[final],
    )


def _still_cut(
    preds: Predictions,
    clusters: _Clusters,
    hull: np.ndarray,
    tiles: np.ndarray,
    image_wh: tuple[int, int],
) -> np.ndarray:
    """Per cluster: whether its union box may still be a fragment.

    It is when every member is truncated and some member touches an interior
    edge of its tile that the union does not reach beyond (no neighbouring
    tile contributed the rest of the object there).
    """
    k, cluster_of = len(clusters.keepers), clusters.cluster_of
    regions = _regions(preds, tiles, image_wh)
    interior = np.zeros((len(preds), 4), dtype=bool)
    on_tile = preds.tile_index != FULL_IMAGE
    if len(tiles):
        interior[on_tile] = interior_edges(tiles, image_wh)[preds.tile_index[on_tile]]
    box, u = preds.boxes, hull[cluster_of]
    m = _EDGE_MARGIN
    touches = np.stack(
        [
            box[:, 0] <= regions[:, 0] + m,
            box[:, 1] <= regions[:, 1] + m,
            box[:, 2] >= regions[:, 2] - m,
            box[:, 3] >= regions[:, 3] - m,
        ],
        axis=1,
    )
    inside = np.stack(
        [
            u[:, 0] > regions[:, 0] - m,
            u[:, 1] > regions[:, 1] - m,
            u[:, 2] < regions[:, 2] + m,
            u[:, 3] < regions[:, 3] + m,
        ],
        axis=1,
    )
    cut = (touches & interior & inside).any(axis=1)
    any_cut = np.zeros(k, dtype=bool)
    np.logical_or.at(any_cut, cluster_of, cut)
    all_truncated = np.ones(k, dtype=bool)
    np.logical_and.at(all_truncated, cluster_of, preds.truncated)
    return any_cut & all_truncated


def _cluster_masks(
    preds: Predictions, keepers: np.ndarray, cluster_of: np.ndarray, union: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """The keeper's mask, or for union clusters the members' masks ORed on their union box."""
    masks = [preds.masks[i] for i in keepers]
    mask_boxes = preds.mask_boxes[keepers].copy()
    for c, members in _union_members(keepers, cluster_of, union):
        masks[c], mask_boxes[c] = paste_union(
            [preds.masks[i] for i in members], preds.mask_boxes[members]
        )
    return masks, mask_boxes


def _cluster_rboxes(
    preds: Predictions, keepers: np.ndarray, cluster_of: np.ndarray, union: np.ndarray
) -> np.ndarray:
    """The keeper's rotated box, or for union clusters the smallest rotated box
    around all members' corners (fragments of one object become one box)."""
    rboxes = preds.rboxes[keepers].copy()
    for c, members in _union_members(keepers, cluster_of, union):
        rboxes[c] = enclosing_rbox(rbox_corners(preds.rboxes[members]))
    return rboxes


def _union_members(
    keepers: np.ndarray, cluster_of: np.ndarray, union: np.ndarray
) -> list[tuple[int, np.ndarray]]:
    """``(cluster, member indices)`` of each cluster that outputs a union."""
    by_cluster = np.argsort(cluster_of, kind="stable")
    bounds = np.searchsorted(cluster_of[by_cluster], np.arange(len(keepers) + 1))
    return [
        (c, by_cluster[bounds[c] : bounds[c + 1]])
        for c in np.flatnonzero(union).tolist()
    ]
