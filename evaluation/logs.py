"""FiftyOne's evaluation log lines, kept out of a comparison's output.

Each ``evaluate_detections`` logs "Evaluating detections..." and "Performing
IoU sweep..." at INFO; the old comparison path made four evaluations per run,
so a plain call printed a column of them. ``compare_runs`` no longer calls
``evaluate_detections`` (it matches each run once); the reference path that
does (``bench.legacy_compare``) hides these lines while it runs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

#: The logger FiftyOne's evaluation modules log under (``fiftyone.utils.eval.*``).
EVALUATION_LOGGER = "fiftyone.utils.eval"


@contextlib.contextmanager
def quiet_evaluation_logs() -> Iterator[None]:
    """Hides FiftyOne's INFO lines from evaluations inside the block (warnings still show).

    Example::

        >>> with quiet_evaluation_logs():  # doctest: +SKIP
        ...     dataset.evaluate_detections("sliced", gt_field="ground_truth")
    """
    logger = logging.getLogger(EVALUATION_LOGGER)
    previous = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)
