"""The App: FiftyOne operators, forms and the comparison panel.

Each operator is a form over one SDK or evaluation call; nothing here is needed
to use the package from Python.
"""

from __future__ import annotations

from typing import Any

#: The plugin's name, the prefix of its operators' URIs.
PLUGIN_NAME = "@slicer/sliced-inference"


def register_plugin(plugin: Any) -> None:
    """Registers every operator and panel of the plugin on ``plugin``."""
    from .compare_operator import CompareRuns
    from .compare_panel import ComparisonPanel
    from .find_settings import FindSliceSettings
    from .run_inference import RunBaselineInference, RunSlicedInference
    from .sweep_panel import SliceSettingsPanel

    plugin.register(RunSlicedInference)
    plugin.register(RunBaselineInference)
    plugin.register(CompareRuns)
    plugin.register(ComparisonPanel)
    plugin.register(FindSliceSettings)
    plugin.register(SliceSettingsPanel)
