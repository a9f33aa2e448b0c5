"""The ``run_sliced_inference`` and ``run_baseline_inference`` operators.

Each is a form (``forms``) over one SDK call (``sdk.inference``). They run
immediately with progress in the App, or delegated (the App defaults to
delegated above ``forms.DELEGATE_ABOVE`` samples) with progress on the run's
page. With ``num_shards = N > 1`` an invocation only queues N delegated
operations, one per disjoint shard of the target (``sdk.shard_views``),
for N ``fiftyone delegated launch`` workers to run in parallel.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fiftyone as fo
import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..sdk import (
    InferenceRun,
    absolute_model_path,
    baseline_run,
    check_label_field,
    sliced_run,
)
from ..sdk.sample_scope import collection_problem
from ..slicer import (
    ConfigError,
    MergeConfig,
    ModelLoadError,
    ModelOptions,
    PredictOptions,
    SliceOptions,
    VideoOptions,
)
from . import forms, plugin_settings

#: Keywords of ``__call__`` besides the settings of ``options_cls``. Never
#: ``allow_unsafe_pickle``: that is the administrator's plugin setting.
_CALL_KEYWORDS = {
    "device",
    "half",
    "backend",
    "precision",
    "calibration_tiles",
    "overwrite",
    "skip_existing",
    "allow_mixed_settings",
    "tags",
}
#: Keywords only sliced runs take.
_SLICED_KEYWORDS = {"store_tiles"}
#: Model settings the forms show besides the device (``ModelOptions``).
_MODEL_SETTINGS = ("backend", "precision", "calibration_tiles")
#: Least seconds between two progress updates sent to the App or the database.
PROGRESS_INTERVAL_S = 0.5


class _InferenceOperator(foo.Operator):
    """What both inference operators share: execution, progress, sharding."""

    #: ``SliceOptions`` or ``PredictOptions``: the settings the form shows.
    options_cls: type[PredictOptions] = PredictOptions
    default_field = ""
    #: The operator's name, label, description and icon (its ``config``).
    identity: tuple[str, str, str, str] = ("", "", "", "")

    @property
    def config(self) -> foo.OperatorConfig:
        name, label, description, icon = self.identity
        return foo.OperatorConfig(
            name=name,
            label=label,
            description=description,
            icon=icon,
            dynamic=True,
            execute_as_generator=True,
            allow_immediate_execution=True,
            allow_delegated_execution=True,
        )

    def resolve_input(self, ctx: Any) -> types.Property:
        inputs = types.Object()
        if self._common_inputs(ctx, inputs):
            self._settings_inputs(ctx, inputs)
            if ctx.target_view().media_type == "video":
                forms.video_inputs(ctx, inputs)
            self._delegation_notice(ctx, inputs)
            self._run_inputs(ctx, inputs)
        return types.Property(inputs, view=types.View(label=self.config.label))

    def _settings_inputs(self, ctx: Any, inputs: types.Object) -> None:
        """The run's own settings, between the common inputs and the run inputs."""
        raise NotImplementedError

    def resolve_placement(self, ctx: Any) -> types.Placement:
        return forms.grid_button(self.config)

    def resolve_delegation(self, ctx: Any) -> bool | None:
        # A shard dispatcher only queues work: always immediate. A run whose
        # inputs need a lot of memory never runs inside the App server.
        # Otherwise the caller's explicit choice, else the user's
        # (resolve_execution_options).
        if forms.is_shard_dispatcher(ctx.params):
            return False
        if self._needs_worker(ctx):
            return True
        return ctx.params.get("delegate")

    def _needs_worker(self, ctx: Any) -> bool:
        """Whether the run's largest forward pass is estimated above ``forms.IMMEDIATE_MAX_BYTES``."""
        settings = {
            k: v for k, v in ctx.params.items() if k in self.options_cls.settings()
        }
        try:
            options = self.options_cls.from_params(settings)
        except (ConfigError, TypeError):
            return False  # the form flags the bad value
        return options.peak_input_bytes() > forms.IMMEDIATE_MAX_BYTES

    def resolve_execution_options(self, ctx: Any) -> foo.ExecutionOptions:
        forced = self.resolve_delegation(ctx)
        if forced is not None:
            return foo.ExecutionOptions(
                allow_immediate_execution=not forced,
                allow_delegated_execution=forced,
            )
        if not forms.can_delegate(ctx):
            return foo.ExecutionOptions(
                allow_immediate_execution=True, allow_delegated_execution=False
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
        if forms.is_shard_dispatcher(ctx.params):
            return queue_shards(ctx, self)
        run = self.build_run(ctx)
        if ctx.delegated:
            report = _throttled(
                lambda f, label: ctx.set_progress(progress=f, label=label)
            )
            return run.execute(progress=report).to_dict()
        if not streams_progress(ctx):
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
                ("frames_processed", "Frames labelled (videos)"),
                ("skipped", "Samples skipped (already labelled)"),
                ("num_errors", "Samples with unreadable images"),
                ("num_detections", "Detections written"),
                ("seconds", "Seconds"),
                ("images_per_second", "Images per second"),
                ("frames_per_second", "Frames per second (videos)"),
            ):
                if key in results or not key.startswith("frames"):
                    outputs.float(key, label=label)
        return types.Property(outputs, view=types.View(label="Inference run"))

    def build_run(self, ctx: Any) -> InferenceRun:
        """The SDK run the form's parameters describe (on the target view).

        The administrator's plugin settings apply here, whatever the form
        sent: the model must be in the allowed directories, and ``.pt``
        files are loaded safely unless ``allow_unsafe_pickle`` is set.
        """
        params = ctx.params
        problem = plugin_settings.model_location_problem(params["model"])
        if problem:
            raise ModelLoadError(problem)
        shard = params.get("shard_index")
        target = ctx.target_view()
        settings = {k: params[k] for k in self.options_cls.settings() if k in params}
        settings.update({k: params[k] for k in _MODEL_SETTINGS if k in params})
        if target.media_type == "video":
            settings.update(forms.video_params(params))
        sliced = self.options_cls is SliceOptions
        extra = {"store_tiles": bool(params.get("store_tiles"))} if sliced else {}
        make = sliced_run if sliced else baseline_run
        return make(
            target,
            params["model"],
            params["label_field"],
            **settings,
            device=forms.device_param(params.get("device")),
            half=bool(params.get("half", False)),
            allow_unsafe_pickle=plugin_settings.allow_unsafe_pickle(),
            overwrite=bool(params.get("overwrite", False)),
            skip_existing=bool(params.get("skip_existing", False)),
            allow_mixed_settings=bool(params.get("allow_mixed_settings", False)),
            tags=params.get("tags") or None,
            token=_secret(ctx, "HF_TOKEN"),
            shard=None if shard is None else (shard, params["num_shards"]),
            run_id=params.get("run_id"),
            **extra,
        )

    def _run_inputs(self, ctx: Any, inputs: types.Object) -> None:
        """Device, backend, tags and shards: what every run form ends with."""
        forms.device_inputs(ctx, inputs)
        forms.backend_inputs(ctx, inputs)
        forms.prelabel_inputs(inputs)
        forms.sharding_inputs(ctx, inputs)
        forms.queue_inputs(ctx, inputs)

    def _call(
        self,
        sample_collection: fo.core.collections.SampleCollection,
        model: str,
        label_field: str,
        num_shards: int,
        delegate: bool,
        keywords: dict[str, Any],
    ) -> Any:
        """``__call__``: checks the keywords, then runs the operator on their JSON form."""
        settings = self.options_cls.settings()
        allowed = (
            _CALL_KEYWORDS
            | set(VideoOptions.settings())
            | (_SLICED_KEYWORDS if self.options_cls is SliceOptions else set())
        )
        unknown = set(keywords) - set(settings) - allowed
        if unknown:
            raise TypeError(
                f"{self.config.name} got unknown keyword(s) {sorted(unknown)}; it "
                f"takes {', '.join([*settings, *sorted(allowed)])}"
            )
        # Bad values fail here, in the caller's words, not in the operator.
        self.options_cls.from_params(
            {k: keywords[k] for k in settings if k in keywords}
        )
        ModelOptions.from_params(
            {k: keywords[k] for k in _MODEL_SETTINGS if k in keywords}
        )
        VideoOptions.from_params(
            {k: keywords[k] for k in VideoOptions.settings() if k in keywords}
        )
        model = absolute_model_path(str(model))
        _check_call(
            sample_collection, model, label_field, num_shards, delegate, keywords
        )
        params = {
            "model": model,
            "label_field": label_field,
            "num_shards": num_shards,
            **{k: _json_value(v) for k, v in keywords.items() if v is not None},
            # From Python, return the summary rather than stream progress to an App.
            "stream_progress": False,
        }
        return foo.execute_operator(
            self.uri,
            ctx={"view": sample_collection.view(), "params": params},
            request_delegation=delegate,
        )

    def _common_inputs(self, ctx: Any, inputs: types.Object) -> bool:
        """Target, model and output field; True once all three are valid."""
        count = forms.target_inputs(ctx, inputs)
        ready = forms.model_inputs(ctx, inputs)
        target = ctx.target_view()
        ready = (
            forms.label_field_inputs(ctx, inputs, target, self.default_field) and ready
        )
        if count == 0:
            if not collection_problem(target):
                inputs.view("empty", types.Warning(label="The target has no samples"))
            return False
        return ready

    def _delegation_notice(self, ctx: Any, inputs: types.Object) -> None:
        """Says when the run's inputs are too large to run inside the App server."""
        if self._needs_worker(ctx):
            inputs.view(
                "runs_delegated",
                types.Notice(
                    label="These input sizes need more than "
                    f"{forms.IMMEDIATE_MAX_BYTES / 2**30:.0f} GiB of memory per "
                    "forward pass (estimated): the run is queued for a delegated "
                    "worker (`fiftyone delegated launch`)"
                ),
            )


class RunSlicedInference(_InferenceOperator):
    """Runs a detector on overlapping tiles of each image and merges the results."""

    options_cls = SliceOptions
    default_field = "sliced"
    identity = (
        "run_sliced_inference",
        "Run sliced inference",
        "Find small objects: predict on overlapping tiles and merge",
        "grid_on",
    )

    def _settings_inputs(self, ctx: Any, inputs: types.Object) -> None:
        for group in (forms.SLICING, forms.MERGING, forms.FILTERING, forms.RASTERS):
            forms.settings_inputs(ctx, inputs, SliceOptions, group)
        forms.settings_inputs(ctx, inputs, SliceOptions, ("batch_size",))
        if ctx.target_view().media_type != "video":  # frames have no tile grid field
            forms.store_tiles_input(inputs, ctx.params.get("label_field") or "sliced")

    def __call__(
        self,
        sample_collection: fo.core.collections.SampleCollection,
        model: str,
        label_field: str,
        *,
        num_shards: int = 1,
        delegate: bool = False,
        **keywords: Any,
    ) -> Any:
        """Runs the operator from Python, like ``sliced_inference.apply_sliced_model``.

        Args:
            sample_collection: the dataset or view to label.
            model: a model path or Hugging Face hub id (operator parameters
                are JSON, so no model objects).
            label_field: the field to write (``Detections``, or ``Polylines``
                for an oriented-box model).
            num_shards: with N > 1, queue N delegated operations, one per
                disjoint shard of ``sample_collection``.
            delegate: queue a delegated operation instead of running now.
            **keywords: the settings of ``apply_sliced_model`` (``slice_wh``,
                ``overlap``, ``merge``, ..., ``device``, ``overwrite``,
                ``skip_existing``, ``tags``, ``store_tiles``).

        Returns:
            an ``ExecutionResult``; ``.result`` is the run's summary dict when
            it ran immediately, the queued operation otherwise (a local model
            path is queued as an absolute path, for workers started anywhere).

        Raises:
            ValueError: no such model file, or a delegated or sharded run on a
                dataset that is not persistent (its worker would find nothing).
            LabelFieldError: the field exists and neither ``overwrite`` nor
                ``skip_existing`` is set, or it holds another label type.
            ConfigError: a setting is out of range.

        Example::

            import fiftyone.operators as foo

            op = foo.get_operator("@slicer/sliced-inference/run_sliced_inference")
            result = op(dataset, "models/small-objects-det.pt", "sliced", slice_wh=512)
            print(result.result["processed"])
        """
        return self._call(
            sample_collection, model, label_field, num_shards, delegate, keywords
        )


class RunBaselineInference(_InferenceOperator):
    """Runs the same detector on each whole image, for comparison with sliced runs."""

    options_cls = PredictOptions
    default_field = "baseline"
    identity = (
        "run_baseline_inference",
        "Run baseline inference",
        "Predict on each whole image (optionally at a higher resolution)",
        "crop_free",
    )

    def _settings_inputs(self, ctx: Any, inputs: types.Object) -> None:
        settings = ("imgsz", *forms.FILTERING, *forms.RASTERS)
        forms.settings_inputs(ctx, inputs, PredictOptions, settings)

    def __call__(
        self,
        sample_collection: fo.core.collections.SampleCollection,
        model: str,
        label_field: str,
        *,
        num_shards: int = 1,
        delegate: bool = False,
        **keywords: Any,
    ) -> Any:
        """Runs the operator from Python, like ``sliced_inference.apply_baseline_model``.

        Args:
            sample_collection: the dataset or view to label.
            model: a model path or Hugging Face hub id.
            label_field: the field to write (``Detections``, or ``Polylines``
                for an oriented-box model).
            num_shards: with N > 1, queue N delegated operations (one per shard).
            delegate: queue a delegated operation instead of running now.
            **keywords: the settings of ``apply_baseline_model`` (``imgsz``,
                ``confidence``, ..., ``device``, ``overwrite``, ``tags``).

        Returns:
            an ``ExecutionResult`` (see ``RunSlicedInference.__call__``).

        Example::

            import fiftyone.operators as foo

            op = foo.get_operator("@slicer/sliced-inference/run_baseline_inference")
            op(dataset, "models/small-objects-det.pt", "baseline", imgsz=1280)
        """
        return self._call(
            sample_collection, model, label_field, num_shards, delegate, keywords
        )


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


def streams_progress(ctx: Any) -> bool:
    """Whether an immediate run streams progress (the App) or returns its summary (Python).

    ``foo.execute_operator`` exhausts a generator and drops what it returns, so
    a Python caller would get ``result=None``. The App's requests always name
    the operator (``operator_uri``); ``execute_operator``'s do not. An explicit
    ``stream_progress`` parameter wins.
    """
    explicit = ctx.params.get("stream_progress")
    if explicit is not None:
        return bool(explicit)
    return "operator_uri" in ctx.request_params


def _check_call(
    samples: fo.core.collections.SampleCollection,
    model: str,
    label_field: str,
    num_shards: int,
    delegate: bool,
    keywords: dict[str, Any],
) -> None:
    """What the form would refuse, raised in the caller's words before the operator runs."""
    problem = forms.model_spec_problem(model)
    if problem:
        raise ValueError(problem)
    # Shards write only empty samples unless told to overwrite (queue_shards).
    check_label_field(
        samples,
        label_field,
        bool(keywords.get("overwrite")),
        bool(keywords.get("skip_existing")) or num_shards > 1,
    )
    dataset = samples._root_dataset
    if (delegate or num_shards > 1) and not dataset.persistent:
        raise ValueError(forms.not_persistent_message(dataset.name))


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


def _json_value(value: Any) -> Any:
    """A keyword's value as operator parameters carry it (JSON)."""
    if isinstance(value, MergeConfig):
        raise TypeError(
            "operator parameters are JSON: pass merge=<strategy name> and the "
            "merge_* keywords instead of a MergeConfig"
        )
    if isinstance(value, tuple):
        return list(value)
    return value
