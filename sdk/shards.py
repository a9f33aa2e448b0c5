"""Disjoint shards of a collection, the same in every process, for parallel workers."""

from __future__ import annotations

import hashlib

import fiftyone as fo

from ..slicer import ConfigError


def shard_views(
    samples: fo.core.collections.SampleCollection, num_shards: int
) -> list[fo.DatasetView]:
    """Splits ``samples`` into ``num_shards`` disjoint views that cover it.

    A sample's shard depends only on its id (a hash), so the split is the same
    in every process and in every later call, even after other samples are
    added: N workers given shards ``0..N-1`` never write the same sample.

    Example::

        >>> views = shard_views(dataset, 2)  # doctest: +SKIP
        >>> sum(len(v) for v in views) == len(dataset)  # doctest: +SKIP
        True
    """
    if not isinstance(num_shards, int) or num_shards < 1:
        raise ConfigError(f"num_shards must be a positive int, got {num_shards!r}")
    buckets: list[list[str]] = [[] for _ in range(num_shards)]
    for sample_id in samples.values("id"):
        buckets[shard_of(sample_id, num_shards)].append(sample_id)
    return [samples.select(b, ordered=False) for b in buckets]


def shard_view(
    samples: fo.core.collections.SampleCollection, index: int, num_shards: int
) -> fo.DatasetView:
    """Shard ``index`` of ``shard_views(samples, num_shards)``.

    Example::

        >>> first = shard_view(dataset, 0, 4)  # doctest: +SKIP
    """
    if not 0 <= index < num_shards:
        raise ConfigError(f"shard index must be in [0, {num_shards}), got {index}")
    ids = [i for i in samples.values("id") if shard_of(i, num_shards) == index]
    return samples.select(ids, ordered=False)


def shard_of(sample_id: str, num_shards: int) -> int:
    """The shard (``0..num_shards-1``) a sample id belongs to; stable everywhere.

    Example::

        >>> shard_of("65f0c0ffee0000000000abcd", 1)
        0
    """
    digest = hashlib.blake2b(str(sample_id).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards
