"""FiftyOne operators, panels and the SDK functions they share."""

from __future__ import annotations

from typing import Any


def register_plugin(plugin: Any) -> None:
    """Registers every operator and panel of the plugin on ``plugin``."""
    from .compare_operator import CompareRuns
    from .compare_panel import ComparisonPanel
    from .run_inference import RunBaselineInference, RunSlicedInference

    plugin.register(RunSlicedInference)
    plugin.register(RunBaselineInference)
    plugin.register(CompareRuns)
    plugin.register(ComparisonPanel)
