"""The ``find_slice_settings`` operator: a form over ``evaluation.find_slice_settings``.

It runs inference on a sample of the target many times, so the App offers it
as a delegated operation by default (``fiftyone delegated launch`` runs it);
when it runs immediately it opens the "Slice settings" panel on the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..evaluation.sweep import (
    DEFAULT_MERGES,
    DEFAULT_OVERLAPS,
    find_slice_settings,
    parse_merge,
)
from ..evaluation.sweep_results import DEFAULT_SWEEP_KEY
from ..slicer import ConfigError, PredictOptions
from . import forms
from .compare_operator import detection_fields

#: ``config.name`` of the panel that shows sweeps.
SWEEP_PANEL_NAME = "sliced_inference_sweep"
#: Value of the ground-truth choice that means "no ground truth".
NO_GROUND_TRUTH = "(none: compare with the whole image)"
_FULL_PASS_CHOICES = {"both": [False, True], "without": [False], "with": [True]}
#: Merge settings offered: ``strategy/metric`` -> description.
MERGE_CHOICES = {
    "provenance": "tile-aware (the default)",
    "nms/iou": "NMS, IoU (supervision's default)",
    "nms/ios": "NMS, IoS",
    "greedy_nmm/ios": "greedy NMM, IoS (SAHI's default)",
    "greedy_nmm/iou": "greedy NMM, IoU",
    "nmm/ios": "NMM, IoS",
}


class FindSliceSettings(foo.Operator):
    """Tries slice settings on a sample of the target and recommends one."""

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="find_slice_settings",
            label="Find slice settings",
            description=(
                "Try slice sizes, overlaps, the full-image pass and merge "
                "strategies on a sample; recommend the most accurate within a "
                "time budget"
            ),
            icon="tune",
            dynamic=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            default_choice_to_delegated=True,
        )

    def resolve_placement(self, ctx: Any) -> types.Placement:
        return forms.grid_button(self.config)

    def resolve_delegation(self, ctx: Any) -> bool | None:
        return ctx.params.get("delegate")

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        count = forms.target_inputs(ctx, inputs)
        ready = forms.model_inputs(ctx, inputs)
        ready = _ground_truth_input(ctx, inputs) and ready
        if count == 0:
            inputs.view("empty", types.Warning(label="The target has no samples"))
        elif ready:
            _sweep_inputs(ctx, inputs)
            forms.device_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Find slice settings"))

    def execute(self, ctx: Any) -> dict[str, Any]:
        params = ctx.params
        report = None
        if ctx.delegated:

            def report(fraction: float, label: str) -> None:
                ctx.set_progress(progress=fraction, label=label)

        gt_field = params.get("gt_field")
        sweep = find_slice_settings(
            ctx.target_view(),
            params["model"],
            None if gt_field in (None, NO_GROUND_TRUTH) else gt_field,
            slice_sizes=_sizes(params.get("slice_sizes")) or None,
            overlaps=_overlaps(params.get("overlaps")) or list(DEFAULT_OVERLAPS),
            full_image_pass=_FULL_PASS_CHOICES[params.get("full_image_pass", "both")],
            merges=params.get("merges") or list(DEFAULT_MERGES),
            num_samples=int(params.get("num_samples", 8)),
            time_budget=float(params.get("time_budget", 1.5)),
            confidence=float(params.get("confidence", PredictOptions.confidence)),
            device=forms.device_param(params.get("device")),
            key=params.get("sweep_key") or DEFAULT_SWEEP_KEY,
            progress=report,
        )
        if not ctx.delegated:
            ctx.ops.close_panel(name=SWEEP_PANEL_NAME)
            ctx.ops.open_panel(SWEEP_PANEL_NAME, layout="horizontal")
        best = sweep.recommendation
        return {
            "sweep_key": sweep.key,
            "mode": sweep.mode,
            "recommended": None if best is None else best.params,
            "reason": sweep.reason,
            "points": len(sweep.points),
        }

    def resolve_output(self, ctx: Any) -> types.Property:
        outputs = types.Object()
        outputs.str("reason", label="Recommendation")
        outputs.str("sweep_key", label="Stored as")
        return types.Property(outputs, view=types.View(label="Slice settings"))

    def __call__(
        self,
        sample_collection: fo.core.collections.SampleCollection,
        model: str,
        gt_field: str | None = None,
        *,
        delegate: bool = False,
        **keywords: Any,
    ) -> Any:
        """Runs the operator from Python, like ``sliced_inference.find_slice_settings``.

        Args:
            sample_collection: the dataset or view to sample from.
            model: a model path or hub id.
            gt_field: the ground-truth field, or ``None``.
            delegate: queue a delegated operation instead of running now.
            **keywords: ``slice_sizes``, ``overlaps``, ``full_image_pass``
                (``"both"``, ``"with"``, ``"without"``), ``merges``,
                ``num_samples``, ``time_budget``, ``confidence``, ``device``,
                ``sweep_key``.

        Returns:
            an ``ExecutionResult``; ``.result`` holds ``sweep_key``,
            ``recommended`` (the setting's keywords) and ``reason``.

        Example::

            import fiftyone.operators as foo

            op = foo.get_operator("@slicer/sliced-inference/find_slice_settings")
            op(dataset, "models/small-objects-det.pt", "ground_truth", delegate=True)
        """
        known = {
            "slice_sizes",
            "overlaps",
            "full_image_pass",
            "merges",
            "num_samples",
            "time_budget",
            "confidence",
            "device",
            "sweep_key",
        }
        unknown = set(keywords) - known
        if unknown:
            raise TypeError(
                f"find_slice_settings got unknown keyword(s) {sorted(unknown)}; "
                f"it takes {sorted(known)}"
            )
        params = {
            "model": str(model),
            "gt_field": gt_field or NO_GROUND_TRUTH,
            "full_image_pass": "both",  # the form's default: a required choice
            **{k: list(v) if isinstance(v, tuple) else v for k, v in keywords.items()},
        }
        for name in ("slice_sizes", "overlaps"):  # the form types them as text
            if params.get(name) is not None:
                params[name] = [str(v) for v in params[name]]
        return foo.execute_operator(
            self.uri,
            ctx={"view": sample_collection.view(), "params": params},
            request_delegation=delegate,
        )


def _ground_truth_input(ctx: Any, inputs: types.Object) -> bool:
    fields = detection_fields(ctx.target_view())
    default = "ground_truth" if "ground_truth" in fields else NO_GROUND_TRUTH
    forms.choice_input(
        inputs,
        "gt_field",
        [*fields, NO_GROUND_TRUTH],
        default,
        label="Ground truth",
        description=(
            "Settings are scored by AP50 against it; without it, against the "
            "model on the whole image at native resolution (small images only)"
        ),
    )
    return ctx.params.get("gt_field", default) in (*fields, NO_GROUND_TRUTH)


def _sweep_inputs(ctx: Any, inputs: types.Object) -> None:
    """Sample size, budget and the settings to try."""
    inputs.int(
        "num_samples",
        default=8,
        min=1,
        label="Images to sample",
        description="The sweep runs on this many images, never the whole dataset",
    )
    inputs.float(
        "time_budget",
        default=1.5,
        min=1.0,
        label="Time budget (x the default setting)",
        description="The recommendation takes at most this multiple of the "
        "default setting's time",
    )
    sizes = inputs.list(
        "slice_sizes",
        types.String(),
        label="Slice sizes (px)",
        description="Empty: multiples of the model's input size that the "
        "objects' sizes allow",
        view=types.AutocompleteView(allow_user_input=True, allow_duplicates=False),
    )
    try:
        _sizes(ctx.params.get("slice_sizes"))
    except ConfigError as error:
        sizes.invalid, sizes.error_message = True, str(error)
    overlaps = inputs.list(
        "overlaps",
        types.String(),
        default=[str(v) for v in DEFAULT_OVERLAPS],
        label="Overlaps",
        description="Ratios of the slice size, e.g. 0.2",
        view=types.AutocompleteView(allow_user_input=True, allow_duplicates=False),
    )
    try:
        _overlaps(ctx.params.get("overlaps"))
    except ConfigError as error:
        overlaps.invalid, overlaps.error_message = True, str(error)
    forms.choice_input(
        inputs,
        "full_image_pass",
        list(_FULL_PASS_CHOICES),
        "both",
        label="Full-image pass",
        description="Try without it, with it, or both",
    )
    merges = inputs.list(
        "merges",
        types.String(),
        default=list(DEFAULT_MERGES),
        label="Merge strategies",
        view=types.AutocompleteView(
            choices=[
                types.Choice(k, label=k, description=v)
                for k, v in MERGE_CHOICES.items()
            ],
            allow_user_input=False,
            allow_duplicates=False,
        ),
    )
    try:
        [parse_merge(m) for m in ctx.params.get("merges") or []]
    except ConfigError as error:
        merges.invalid, merges.error_message = True, str(error)
    forms.settings_inputs(ctx, inputs, PredictOptions, ("confidence",))
    inputs.str(
        "sweep_key",
        default=DEFAULT_SWEEP_KEY,
        label="Store as",
        description="Run key of the stored sweep (an earlier one is replaced)",
    )


def _overlaps(values: Sequence[Any] | None) -> list[float]:
    """Overlap ratios typed in the form."""
    overlaps = []
    for value in values or []:
        try:
            overlap = float(str(value).strip())
        except ValueError:
            raise ConfigError(f"overlap {value!r} is not a number") from None
        if not 0.0 <= overlap < 1.0:
            raise ConfigError(f"overlap {overlap} is not a ratio in [0, 1)")
        overlaps.append(overlap)
    return overlaps


def _sizes(values: Sequence[Any] | None) -> list[int]:
    """Slice sizes typed in the form as whole pixels."""
    sizes = []
    for value in values or []:
        try:
            size = int(str(value).strip())
        except ValueError:
            raise ConfigError(f"slice size {value!r} is not a whole number") from None
        if size < 32:
            raise ConfigError(f"slice size {size} is below 32 px")
        sizes.append(size)
    return sizes
