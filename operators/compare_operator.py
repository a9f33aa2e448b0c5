"""The ``compare_runs`` operator: a form over ``evaluation.compare_runs`` that opens the panel.

Run now from the App, it streams progress (one step per image of each run);
delegated, it reports progress on the delegated operation; from Python
(``foo.execute_operator`` or the operator's ``__call__``), it returns the
result.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..evaluation import Comparison
from ..evaluation.compare import ComparisonSettings, iter_compare_runs, run_comparison
from ..evaluation.fields import evaluated_fields, label_type_of
from ..evaluation.frame_fields import frame_label_fields
from . import forms
from .forms import choice_input
from .run_inference import PROGRESS_INTERVAL_S, _throttled, streams_progress

#: ``config.name`` of the comparison panel the operator opens.
PANEL_NAME = "sliced_inference_comparison"
_MASK_CHOICES = {"auto": None, "boxes": False, "masks": True}


class CompareRuns(foo.Operator):
    """Evaluates two or more prediction fields against ground truth and compares them.

    The first prediction field (the baseline) is compared with the others overall
    and by object size; evaluations are stored under ``si_<field>`` and the
    comparison panel opens on the result.
    """

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="compare_runs",
            label="Compare baseline and sliced predictions",
            description=(
                "Evaluate prediction fields against ground truth (COCO mAP, "
                "precision, recall, by object size) and compare them"
            ),
            icon="compare_arrows",
            dynamic=True,
            execute_as_generator=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        fields = detection_fields(ctx.target_view())
        if _field_inputs(ctx, inputs, fields):
            _option_inputs(inputs)
            forms.queue_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Compare runs"))

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        return foo.ExecutionOptions(
            allow_immediate_execution=True,
            allow_delegated_execution=forms.can_delegate(ctx),
        )

    def execute(self, ctx: Any) -> Any:
        params = ctx.params
        steps = iter_compare_runs(
            ctx.target_view(),
            params["gt_field"],
            [params["baseline_field"], *params["compare_fields"]],
            _settings(params),
        )
        if ctx.delegated:
            report = _throttled(
                lambda f, label: ctx.set_progress(progress=f, label=label)
            )
            return _result(run_comparison(steps, report))
        if not streams_progress(ctx):
            # A Python caller: return the result rather than stream to an App.
            comparison = run_comparison(steps, progress=False)
            open_comparison_panel(ctx)
            ctx.trigger("reload_dataset")
            return _result(comparison)
        return _streamed(ctx, steps)

    def __call__(
        self,
        sample_collection: fo.core.collections.SampleCollection,
        gt_field: str,
        pred_fields: Sequence[str],
        iou: float = ComparisonSettings.iou,
        use_masks: bool | None = ComparisonSettings.use_masks,
        max_preds: int = ComparisonSettings.max_preds,
        delegate: bool = False,
    ) -> Any:
        """Runs the operator from Python, like ``sliced_inference.compare_runs``.

        Args:
            sample_collection: the dataset or view to evaluate.
            gt_field: the ground-truth ``Detections`` field.
            pred_fields: two or more prediction fields, the baseline first.
            iou: IoU threshold for TP / FP / FN.
            use_masks: mask IoU (True), box IoU (False) or automatic (None).
            max_preds: most predictions per image used for mAP.
            delegate: queue a delegated operation instead of running now.

        Returns:
            an ``ExecutionResult`` whose ``result`` holds ``comparison_key``,
            ``eval_keys`` and the text ``table``.

        Example::

            import fiftyone.operators as foo

            compare = foo.get_operator("@slicer/sliced-inference/compare_runs")
            result = compare(dataset, "ground_truth", ["baseline", "sliced"])
            print(result.result["table"])
        """
        if len(pred_fields) < 2:
            raise ValueError("pred_fields needs a baseline and at least one more field")
        # What the form would refuse, in the caller's words rather than FiftyOne's.
        fields = same_type_fields(
            sample_collection, detection_fields(sample_collection), gt_field
        )
        problems = field_problems(fields, gt_field, pred_fields[0], pred_fields[1:])
        if problems:
            raise ValueError(next(iter(problems.values())))
        dataset = sample_collection._root_dataset
        if delegate and not dataset.persistent:
            raise ValueError(forms.not_persistent_message(dataset.name))
        mask_choice = {v: k for k, v in _MASK_CHOICES.items()}[use_masks]
        params = {
            "gt_field": gt_field,
            "baseline_field": pred_fields[0],
            "compare_fields": list(pred_fields[1:]),
            "iou": iou,
            "use_masks": mask_choice,
            "max_preds": max_preds,
        }
        return foo.execute_operator(
            self.uri,
            ctx={"view": sample_collection.view(), "params": params},
            request_delegation=delegate,
        )


def _settings(params: dict[str, Any]) -> ComparisonSettings:
    """``compare_runs`` settings from the form's parameters."""
    return ComparisonSettings(
        iou=float(params.get("iou", ComparisonSettings.iou)),
        use_masks=_MASK_CHOICES[params.get("use_masks", "auto")],
        max_preds=int(params.get("max_preds", ComparisonSettings.max_preds)),
    )


def _streamed(ctx: Any, steps: Iterator[Any]) -> Iterator[Any]:
    """Runs a comparison's steps as a generator that streams progress to the App."""
    last = 0.0
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:
            comparison: Comparison = stop.value
            break
        now = time.monotonic()
        if now - last >= PROGRESS_INTERVAL_S:
            last = now
            yield ctx.trigger(
                "set_progress", {"progress": step.fraction, "label": step.label}
            )
    yield ctx.trigger("set_progress", {"progress": 1.0, "label": "Compared"})
    yield from open_comparison_panel(ctx)
    yield ctx.trigger("reload_dataset")
    variant = "warning" if any(run.unfinished for run in comparison.runs) else "success"
    yield ctx.trigger(
        "notify", {"message": _done_message(comparison), "variant": variant}
    )


def _result(comparison: Comparison) -> dict[str, Any]:
    return {
        "comparison_key": comparison.key,
        "eval_keys": comparison.eval_keys,
        "table": comparison.to_table(),
    }


def _done_message(comparison: Comparison) -> str:
    unfinished = [run.field for run in comparison.runs if run.unfinished]
    message = f"Compared {', '.join(comparison.fields)}"
    if unfinished:
        message += f" (unfinished runs: {', '.join(unfinished)})"
    return message


def detection_fields(samples: fo.core.collections.SampleCollection) -> list[str]:
    """Names of the ``Detections`` and ``Polylines`` (rotated boxes) fields of
    ``samples``, sorted (of a video collection, its ``Detections`` frame fields
    too, as ``frames.<field>``)."""
    return sorted(evaluated_fields(samples) + frame_label_fields(samples))


def same_type_fields(
    samples: fo.core.collections.SampleCollection,
    fields: Sequence[str],
    gt_field: str | None,
) -> list[str]:
    """``fields`` of the ground truth's label type (all of them while it is unknown):
    boxes compare with boxes, rotated boxes (``Polylines``) with rotated boxes."""
    if gt_field not in fields:
        return list(fields)
    gt_type = label_type_of(samples, gt_field)
    return [f for f in fields if label_type_of(samples, f) is gt_type]


def open_comparison_panel(ctx: Any) -> list[Any]:
    """(Re)opens the comparison panel, so that it loads the newest comparison.

    Returns the App messages, for a generator operator to yield.
    """
    return [
        ctx.ops.close_panel(name=PANEL_NAME),
        ctx.ops.open_panel(PANEL_NAME, layout="horizontal"),
    ]


def _field_inputs(ctx: Any, inputs: types.Object, fields: list[str]) -> bool:
    """Ground truth, baseline and compared fields; True once they are valid.

    Values that are not on the dataset are flagged in words that list the
    valid choices, before FiftyOne's own check of the choices could answer
    with a bare "Invalid enum value".
    """
    params = ctx.params
    gt_default = "ground_truth" if "ground_truth" in fields else None
    gt_field = params.get("gt_field") or gt_default
    gt_choices = fields
    fields = same_type_fields(ctx.target_view(), fields, gt_field)
    preds = [f for f in fields if f != gt_field]
    baseline = params.get("baseline_field") or (preds[0] if preds else None)
    chosen = params.get("compare_fields") or []
    problems = field_problems(fields, gt_field, baseline, chosen)
    if len(fields) < 3:
        message = "\n".join(
            problems[k] for k in ("gt_field", "no_fields") if k in problems
        )
        notice = inputs.view(
            "no_fields",
            types.Error(label="Not enough Detections fields", description=message),
        )
        return forms.flag(notice, message)
    gt = choice_input(inputs, "gt_field", gt_choices, gt_default, label="Ground truth")
    forms.flag(gt, problems.get("gt_field"))
    base = choice_input(
        inputs,
        "baseline_field",
        preds,
        preds[0],
        label="Baseline predictions",
        description="The run the others are compared with, e.g. full-image inference",
    )
    forms.flag(base, problems.get("baseline_field"))
    others = [f for f in preds if f != baseline]
    prop = inputs.list(
        "compare_fields",
        types.String(),
        required=True,
        label="Compare with",
        description="One or more prediction fields, e.g. sliced runs with different settings",
        view=types.AutocompleteView(
            choices=[types.Choice(f, label=f) for f in others],
            allow_user_input=False,
            allow_duplicates=False,
        ),
    )
    forms.flag(prop, problems.get("compare_fields"))
    return bool(chosen) and not problems


def field_problems(
    fields: Sequence[str],
    gt_field: str | None,
    baseline: str | None,
    compare: Sequence[str],
) -> dict[str, str]:
    """What is wrong with the chosen fields, by input name, in the user's words.

    Args:
        fields: the ``Detections`` fields of the dataset.
        gt_field: the chosen ground truth.
        baseline: the chosen baseline prediction field.
        compare: the prediction fields compared with the baseline.

    Example::

        >>> field_problems(["baseline", "sliced"], "ground_truth", "baseline", ["sliced"])["gt_field"]
        "no ground-truth field 'ground_truth'; Detections fields on this dataset: baseline, sliced"
    """
    listed = ", ".join(fields) or "none"
    problems = {}
    if gt_field not in fields:
        problems["gt_field"] = (
            f"no ground-truth field {gt_field!r}; Detections fields on this "
            f"dataset: {listed}"
            if gt_field
            else f"choose the ground-truth field; Detections fields on this dataset: {listed}"
        )
    if len(fields) < 3:
        problems["no_fields"] = (
            "Comparing needs a ground-truth field and two prediction fields; "
            f"Detections fields on this dataset: {listed}. Import ground truth "
            "(e.g. COCO labels) and run baseline and sliced inference first."
        )
    preds = [f for f in fields if f != gt_field]
    if baseline not in preds:
        problems["baseline_field"] = (
            f"no prediction field {baseline!r} other than the ground truth; "
            f"choose from: {', '.join(preds) or 'none'}"
        )
    wrong = [f for f in compare if f not in preds or f == baseline]
    if wrong:
        others = [f for f in preds if f != baseline]
        problems["compare_fields"] = (
            f"not a prediction field other than the baseline: {', '.join(wrong)}; "
            f"choose from: {', '.join(others) or 'none'}"
        )
    return problems


def _option_inputs(inputs: types.Object) -> None:
    """IoU threshold, mask or box IoU, most predictions per image."""
    inputs.float(
        "iou",
        default=ComparisonSettings.iou,
        min=0.05,
        max=0.95,
        label="IoU threshold",
        description="For true / false positives, precision and recall (mAP sweeps 0.50:0.95)",
    )
    choice_input(
        inputs,
        "use_masks",
        list(_MASK_CHOICES),
        "auto",
        label="IoU of",
        description="auto: instance masks where ground truth and predictions both have them",
        required=False,
    )
    inputs.int(
        "max_preds",
        default=ComparisonSettings.max_preds,
        min=1,
        label="Most predictions per image",
        description="For mAP; sliced runs often produce more than FiftyOne's default 100",
    )
