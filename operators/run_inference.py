"""The ``run_sliced_inference`` and ``run_baseline_inference`` operators.

Each is a form (``forms``) over one SDK call (``inference``). They run
immediately with progress in the App, or delegated (the App defaults to
delegated above ``forms.DELEGATE_ABOVE`` samples) with progress on the run's
page. With ``num_shards = N > 1`` an invocation only queues N delegated
operations, one per disjoint shard of the target (``inference.shard_views``),
for N ``fiftyone delegated launch`` workers to run in parallel.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from . import forms
from .inference import InferenceRun, baseline_run, sliced_run

PLUGIN = "@slicer/sliced-inference"
#: Least seconds between two progress updates sent to the App or the database.
PROGRESS_INTERVAL_S = 0.5


class _InferenceOperator(foo.Operator):
    """What both inference operators share: execution, progress, sharding."""

    kind = ""
    default_field = ""

    def resolve_placement(self, ctx: Any) -> types.Placement:
        return types.Placement(
            types.Places.SAMPLES_GRID_SECONDARY_ACTIONS,
            types.Button(label=self.config.label, icon=self.config.icon, prompt=True),
        )

    def resolve_delegation(self, ctx: Any) -> bool | None:
        # A shard dispatcher only queues work: always immediate. Otherwise the
        # caller's explicit choice, else the user's (resolve_execution_options).
        if _is_dispatcher(ctx.params):
            return False
        return ctx.params.get("delegate")

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        forced = self.resolve_delegation(ctx)
        if forced is not None:
            return foo.ExecutionOptions(
                allow_immediate_execution=not forced,
                allow_delegated_execution=forced,
            )
        try:
            large = len(ctx.target_view()) > forms.DELEGATE_ABOVE
        except Exception:  # no dataset yet while the App builds the form
            large = False
        return foo.ExecutionOptions(
            allow_immediate_execution=True,
            allow_delegated_execution=True,
            default_choice_to_delegated=large,
        )

    def resolve_run_name(self, ctx: Any) -> str:
        shard = ctx.params.get("shard_index")
        name = f"{self.config.label}: {ctx.params.get('label_field', '')}"
        if shard is not None:
            name += f" (shard {shard + 1}/{ctx.params.get('num_shards')})"
        return name

    def execute(self, ctx: Any) -> Any:
        if _is_dispatcher(ctx.params):
            return queue_shards(ctx, self)
        run = self.build_run(ctx)
        if ctx.delegated:
            report = _throttled(
                lambda f, label: ctx.set_progress(progress=f, label=label)
            )
            return run.execute(progress=report).to_dict()
        if not ctx.params.get("stream_progress", True):
            return run.execute().to_dict()  # a Python caller: return the summary
        return _streamed(ctx, run)

    def resolve_output(self, ctx: Any) -> types.Property | None:
        results = ctx.results or {}
        outputs = types.Object()
        if "queued" in results:
            outputs.list("queued", types.String(), label="Queued shard operations")
        else:
            for key, label in (
                ("processed", "Samples labelled"),
                ("skipped", "Samples skipped (already labelled)"),
                ("num_errors", "Samples with unreadable images"),
                ("num_detections", "Detections written"),
                ("seconds", "Seconds"),
                ("images_per_second", "Images per second"),
            ):
                outputs.float(key, label=label)
        return types.Property(outputs, view=types.View(label="Inference run"))

    def build_run(self, ctx: Any) -> InferenceRun:
        """The SDK run the form's parameters describe (on the target view)."""
        raise NotImplementedError

    def _run_options(self, ctx: Any) -> dict[str, Any]:
        params = ctx.params
        shard = params.get("shard_index")
        return {
            "device": forms.device_param(params.get("device")),
            "half": bool(params.get("half", False)),
            "overwrite": bool(params.get("overwrite", False)),
            "skip_existing": bool(params.get("skip_existing", False)),
            "tags": params.get("tags") or None,
            "token": _secret(ctx, "HF_TOKEN"),
            "shard": None if shard is None else (shard, params["num_shards"]),
            "run_id": params.get("run_id"),
        }

    def _common_inputs(self, ctx: Any, inputs: types.Object) -> bool:
        """Target, model and output field; True once all three are valid."""
        count = forms.target_inputs(ctx, inputs)
        ready = forms.model_inputs(ctx, inputs)
        target = ctx.target_view()
        ready = (
            forms.label_field_inputs(ctx, inputs, target, self.default_field) and ready
        )
        if count == 0:
            inputs.view("empty", types.Warning(label="The target has no samples"))
            return False
        return ready


class RunSlicedInference(_InferenceOperator):
    """Runs a detector on overlapping tiles of each image and merges the results."""

    kind = "sliced"
    default_field = "sliced"

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="run_sliced_inference",
            label="Run sliced inference",
            description="Find small objects: predict on overlapping tiles and merge",
            icon="grid_on",
            dynamic=True,
            execute_as_generator=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        if self._common_inputs(ctx, inputs):
            forms.slicing_inputs(inputs)
            forms.merge_inputs(inputs)
            forms.prediction_inputs(ctx, inputs, batching=True)
            forms.prelabel_inputs(inputs)
            forms.sharding_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Run sliced inference"))

    def build_run(self, ctx: Any) -> InferenceRun:
        p = ctx.params
        return sliced_run(
            ctx.target_view(),
            p["model"],
            p["label_field"],
            slice_wh=p.get("slice_wh") or 640,
            overlap=p.get("overlap", 0.2),
            imgsz=p.get("imgsz"),
            full_image_pass=bool(p.get("full_image_pass", False)),
            full_image_imgsz=p.get("full_image_imgsz"),
            batch_size=p.get("batch_size") or 1,
            confidence=p.get("confidence", 0.25),
            classes=p.get("classes") or None,
            max_detections=p.get("max_detections"),
            merge=p.get("merge") or "provenance",
            merge_metric=p.get("merge_metric") or "iou",
            merge_threshold=p.get("merge_threshold", 0.5),
            class_agnostic=bool(p.get("class_agnostic", False)),
            **self._run_options(ctx),
        )

    def __call__(
        self,
        sample_collection: fo.core.collections.SampleCollection,
        model: str,
        label_field: str,
        *,
        slice_wh: int = 640,
        overlap: float = 0.2,
        imgsz: int | None = None,
        full_image_pass: bool = False,
        batch_size: int = 1,
        confidence: float = 0.25,
        classes: Sequence[str] | None = None,
        max_detections: int | None = None,
        merge: str = "provenance",
        merge_metric: str = "iou",
        merge_threshold: float = 0.5,
        class_agnostic: bool = False,
        device: str | None = None,
        overwrite: bool = False,
        skip_existing: bool = False,
        tags: Sequence[str] | None = None,
        num_shards: int = 1,
        delegate: bool = False,
    ) -> Any:
        """Runs the operator from Python, like ``sliced_inference.apply_sliced_model``.

        Parameters are those of the form (and of the SDK function); ``model``
        must be a path or hub id, since operator parameters are JSON.

        Args:
            sample_collection: the dataset or view to label.
            model: a model path or Hugging Face hub id.
            label_field: the ``Detections`` field to write.
            delegate: queue a delegated operation instead of running now.
            num_shards: with N > 1, queue N delegated operations, one per
                disjoint shard of ``sample_collection``.

        Returns:
            an ``ExecutionResult``; ``.result`` is the run's summary dict when
            it ran immediately, the queued operation otherwise.

        Example::

            import fiftyone.operators as foo

            op = foo.get_operator("@slicer/sliced-inference/run_sliced_inference")
            result = op(dataset, "models/small-objects-det.pt", "sliced", slice_wh=512)
            print(result.result["processed"])
        """
        params = {
            "model": str(model),
            "label_field": label_field,
            "slice_wh": slice_wh,
            "overlap": overlap,
            "imgsz": imgsz,
            "full_image_pass": full_image_pass,
            "batch_size": batch_size,
            "confidence": confidence,
            "classes": list(classes) if classes else None,
            "max_detections": max_detections,
            "merge": merge,
            "merge_metric": merge_metric,
            "merge_threshold": merge_threshold,
            "class_agnostic": class_agnostic,
            "device": device or "auto",
            "overwrite": overwrite,
            "skip_existing": skip_existing,
            "tags": list(tags) if tags else None,
            "num_shards": num_shards,
        }
        return _call(self, sample_collection, params, delegate)


class RunBaselineInference(_InferenceOperator):
    """Runs the same detector on each whole image, for comparison with sliced runs."""

    kind = "baseline"
    default_field = "baseline"

    @property
    def config(self) -> foo.OperatorConfig:
        return foo.OperatorConfig(
            name="run_baseline_inference",
            label="Run baseline inference",
            description="Predict on each whole image (optionally at a higher resolution)",
            icon="crop_free",
            dynamic=True,
            execute_as_generator=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        if self._common_inputs(ctx, inputs):
            inputs.int(
                "imgsz",
                min=32,
                label="Input size (px)",
                description="Model input size; empty uses the model's own (e.g. 1280 to see more)",
            )
            forms.prediction_inputs(ctx, inputs, batching=False)
            forms.prelabel_inputs(inputs)
            forms.sharding_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label="Run baseline inference"))

    def build_run(self, ctx: Any) -> InferenceRun:
        p = ctx.params
        return baseline_run(
            ctx.target_view(),
            p["model"],
            p["label_field"],
            imgsz=p.get("imgsz"),
            confidence=p.get("confidence", 0.25),
            classes=p.get("classes") or None,
            max_detections=p.get("max_detections"),
            **self._run_options(ctx),
        )

    def __call__(
        self,
        sample_collection: fo.core.collections.SampleCollection,
        model: str,
        label_field: str,
        *,
        imgsz: int | None = None,
        confidence: float = 0.25,
        classes: Sequence[str] | None = None,
        max_detections: int | None = None,
        device: str | None = None,
        overwrite: bool = False,
        skip_existing: bool = False,
        tags: Sequence[str] | None = None,
        num_shards: int = 1,
        delegate: bool = False,
    ) -> Any:
        """Runs the operator from Python, like ``sliced_inference.apply_baseline_model``.

        Args:
            sample_collection: the dataset or view to label.
            model: a model path or Hugging Face hub id.
            label_field: the ``Detections`` field to write.
            imgsz: model input size; ``None`` uses the model's own.
            delegate: queue a delegated operation instead of running now.
            num_shards: with N > 1, queue N delegated operations (one per shard).

        Returns:
            an ``ExecutionResult`` (see ``RunSlicedInference.__call__``).

        Example::

            import fiftyone.operators as foo

            op = foo.get_operator("@slicer/sliced-inference/run_baseline_inference")
            op(dataset, "models/small-objects-det.pt", "baseline", imgsz=1280)
        """
        params = {
            "model": str(model),
            "label_field": label_field,
            "imgsz": imgsz,
            "confidence": confidence,
            "classes": list(classes) if classes else None,
            "max_detections": max_detections,
            "device": device or "auto",
            "overwrite": overwrite,
            "skip_existing": skip_existing,
            "tags": list(tags) if tags else None,
            "num_shards": num_shards,
        }
        return _call(self, sample_collection, params, delegate)


def queue_shards(ctx: Any, operator: foo.Operator) -> dict[str, Any]:
    """Queues one delegated operation per shard of the target; returns their ids.

    Every shard gets the same target and parameters plus ``shard_index`` and a
    shared ``run_id``; each resolves its own disjoint part of the target when
    it runs. A shard never overwrites another's samples: without
    ``overwrite`` the shards write only empty samples (``skip_existing``),
    which also lets them pass the "field exists" check once a sibling has
    created the field.
    """
    from fiftyone.operators.delegated import DelegatedOperationService

    params = dict(ctx.params)
    num_shards = int(params["num_shards"])
    run_id = uuid.uuid4().hex
    if not params.get("overwrite"):
        params["skip_existing"] = True
    request = {
        k: v
        for k, v in ctx.request_params.items()
        if k not in ("run_doc", "results", "request_delegation", "params")
    }
    service = DelegatedOperationService()
    queued = []
    for index in range(num_shards):
        shard_params = {
            **params,
            "shard_index": index,
            "run_id": run_id,
            "delegate": True,
        }
        context = {
            "request_params": {**request, "params": shard_params, "delegated": True}
        }
        label = (
            f"{operator.config.label}: {params.get('label_field')} "
            f"(shard {index + 1}/{num_shards})"
        )
        doc = service.queue_operation(
            operator=operator.uri,
            label=label,
            context=context,
            delegation_target=ctx.delegation_target,
            rerunnable=True,
        )
        queued.append(str(doc.id))
    if not ctx.delegated:
        ctx.trigger(
            "notify",
            {
                "message": f"Queued {num_shards} shards; run `fiftyone delegated launch` workers",
                "variant": "info",
            },
        )
    return {"queued": queued, "run_id": run_id}


def _is_dispatcher(params: dict[str, Any]) -> bool:
    return (params.get("num_shards") or 1) > 1 and params.get("shard_index") is None


def _call(
    operator: _InferenceOperator,
    sample_collection: fo.core.collections.SampleCollection,
    params: dict[str, Any],
    delegate: bool,
) -> Any:
    params = {k: v for k, v in params.items() if v is not None}
    # From Python, return the summary rather than stream progress to an App.
    params["stream_progress"] = False
    return foo.execute_operator(
        operator.uri,
        ctx={"view": sample_collection.view(), "params": params},
        request_delegation=delegate,
    )


def _streamed(ctx: Any, run: InferenceRun) -> Iterator[Any]:
    """Runs ``run`` as a generator that streams progress to the App."""
    last = 0.0
    for fraction, label in run.iter_execute():
        now = time.monotonic()
        if fraction >= 1.0 or now - last >= PROGRESS_INTERVAL_S:
            last = now
            yield ctx.trigger("set_progress", {"progress": fraction, "label": label})
    summary = run.summary
    message = f"{summary.processed} samples labelled in {summary.seconds:.1f} s"
    if summary.errors:
        message += f"; {summary.num_errors} skipped (unreadable image)"
    yield ctx.trigger(
        "notify",
        {"message": message, "variant": "warning" if summary.errors else "success"},
    )
    yield ctx.trigger("reload_dataset")


def _throttled(report: Callable[[float, str], None]) -> Callable[[float, str], None]:
    last = [0.0]

    def callback(fraction: float, label: str) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - last[0] >= PROGRESS_INTERVAL_S:
            last[0] = now
            report(fraction, label)

    return callback


def _secret(ctx: Any, key: str) -> str | None:
    try:
        return ctx.secret(key) or None
    except Exception:  # secrets unavailable (e.g. no secrets backend)
        return None
