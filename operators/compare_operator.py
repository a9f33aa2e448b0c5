"""The ``compare_runs`` operator: a form over ``evaluation.compare_runs`` that opens the panel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..evaluation import compare_runs
from . import forms
from .forms import choice_input

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

    def execute(self, ctx: Any) -> dict[str, Any]:
        params = ctx.params
        pred_fields = [params["baseline_field"], *params["compare_fields"]]
        comparison = compare_runs(
            ctx.target_view(),
            params["gt_field"],
            pred_fields,
            iou=float(params.get("iou", 0.5)),
            use_masks=_MASK_CHOICES[params.get("use_masks", "auto")],
            max_preds=int(params.get("max_preds", 1000)),
        )
        if not ctx.delegated:
            open_comparison_panel(ctx)
            ctx.trigger("reload_dataset")
        return {
            "comparison_key": comparison.key,
            "eval_keys": comparison.eval_keys,
            "table": comparison.to_table(),
        }

    def __call__(
        self,
        sample_collection: fo.core.collections.SampleCollection,
        gt_field: str,
        pred_fields: Sequence[str],
        iou: float = 0.5,
        use_masks: bool | None = None,
        max_preds: int = 1000,
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
        fields = detection_fields(sample_collection)
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


def detection_fields(samples: fo.core.collections.SampleCollection) -> list[str]:
    """Names of the ``Detections`` fields of ``samples``, sorted (of a video
    collection, its frame fields too, as ``frames.<field>``)."""
    fields = list(samples.get_field_schema(embedded_doc_type=fo.Detections))
    if samples.media_type == "video":
        frames = samples.get_frame_field_schema(embedded_doc_type=fo.Detections)
        fields += [f"frames.{name}" for name in frames or {}]
    return sorted(fields)


def open_comparison_panel(ctx: Any) -> None:
    """(Re)opens the comparison panel, so that it loads the newest comparison."""
    ctx.ops.close_panel(name=PANEL_NAME)
    ctx.ops.open_panel(PANEL_NAME, layout="horizontal")


def _field_inputs(ctx: Any, inputs: types.Object, fields: list[str]) -> bool:
    """Ground truth, baseline and compared fields; True once they are valid.

    Values that are not on the dataset are flagged in words that list the
    valid choices, before FiftyOne's own check of the choices could answer
    with a bare "Invalid enum value".
    """
    params = ctx.params
    gt_default = "ground_truth" if "ground_truth" in fields else None
    gt_field = params.get("gt_field") or gt_default
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
    gt = choice_input(inputs, "gt_field", fields, gt_default, label="Ground truth")
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
        default=0.5,
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
        default=1000,
        min=1,
        label="Most predictions per image",
        description="For mAP; sliced runs often produce more than FiftyOne's default 100",
    )
