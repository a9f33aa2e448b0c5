"""Small builders of operator forms, shared by the operators.

Inputs for run settings are made from their ``Setting`` (``SliceOptions``,
``MergeConfig``, ``ModelOptions``): defaults, labels, bounds and choices are
read there, never written here. Each ``*_inputs(ctx, inputs, ...)`` helper adds
one group of inputs to a ``types.Object`` and returns whether that group is
complete and valid, so a form can stop growing at the first group that needs
the user's attention. Invalid inputs carry ``invalid=True`` and an
``error_message`` the App shows next to them (and that blocks execution, from
the App and from Python). Checks here are cheap (no model is loaded): the real
load happens in ``execute``, where a failure becomes the run's error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import fiftyone.operators.types as types

from ..sdk import absolute_model_path, label_field_problem
from ..sdk.sample_scope import collection_problem
from ..slicer import ConfigError, ModelOptions, PredictOptions, Setting, VideoOptions
from ..slicer.models.ultralytics import ULTRALYTICS_SUFFIXES
from .plugin_settings import BUNDLED_MODELS_DIR, model_location_problem

#: Targets with more samples default to delegated execution in the App.
DELEGATE_ABOVE = 50
#: Runs whose largest forward pass is estimated above this many bytes
#: (``options.peak_input_bytes()``) run only delegated, never inside the App
#: server: e.g. ``imgsz`` above about 4600 px, or more than 52 tiles of 640 px
#: per batch.
IMMEDIATE_MAX_BYTES = 2 * 1024**3
#: Devices offered; any torch device string may be typed in.
DEVICES = ("auto", "cpu", "cuda", "cuda:0", "mps")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: The settings each group of inputs shows, in order.
SLICING = ("slice_wh", "overlap", "imgsz", "full_image_pass")
MERGING = ("merge", "merge_metric", "merge_threshold", "class_agnostic")
FILTERING = ("confidence", "classes", "max_detections")
#: Video targets only: which frames, and the tracker.
FRAMES = ("frame_step", "first_frame", "last_frame", "tracker")
#: Shown once a tracker is chosen (``gmc_method`` for BoT-SORT only).
TRACKING = (
    "track_high_thresh",
    "track_low_thresh",
    "new_track_thresh",
    "track_buffer",
    "match_thresh",
)
RASTERS = ("bands", "scaling")


def grid_button(config: Any) -> types.Placement:
    """A button for an operator (its label and icon) above the samples grid."""
    return types.Placement(
        types.Places.SAMPLES_GRID_SECONDARY_ACTIONS,
        types.Button(label=config.label, icon=config.icon, prompt=True),
    )


def add_table(panel: types.Object, table: Any) -> None:
    """A ``TableView`` of a ``Table`` whose rows live in panel state ``<name>_table``."""
    view = types.TableView()
    for key, label in table.columns.items():
        view.add_column(key, label=label)
    panel.list(f"{table.name}_table", types.Object(), view=view, label=table.title)


def target_inputs(ctx: Any, inputs: types.Object) -> int:
    """Adds the standard target choice (dataset / current view / selected samples).

    A target the run cannot label (a patches or frames view, ...) gets an
    error notice and counts as empty, so the form stops there.

    Returns:
        the number of samples in the chosen target.
    """
    inputs.view_target(ctx)
    target = ctx.target_view()
    problem = collection_problem(target)
    if problem:
        inputs.view("target_problem", types.Error(label=problem))
        return 0
    return len(target)


def model_inputs(ctx: Any, inputs: types.Object, default: str | None = None) -> bool:
    """The model: a path or Hugging Face hub id, bundled models offered as choices."""
    bundled = bundled_models()
    default = default or (bundled[0] if bundled else None)
    prop = inputs.str(
        "model",
        required=True,
        default=default,
        label="Model",
        description=(
            "An Ultralytics weights file (.pt), a Transformers model directory, "
            "or a Hugging Face hub id (org/name). .pt files are loaded safely "
            "(weights only): files holding other Python objects are refused."
        ),
        view=types.AutocompleteView(
            choices=[types.Choice(p, label=Path(p).name) for p in bundled],
            allow_user_input=True,
        ),
    )
    spec = ctx.params.get("model", default)
    problem = model_spec_problem(spec) or model_location_problem(spec)
    if problem is None and "model" in ctx.params:
        # The params are what a delegated run is queued with, and its worker
        # may run in another directory: a relative path must not travel.
        ctx.params["model"] = absolute_model_path(spec.strip())
    return flag(prop, problem)


def model_spec_problem(spec: Any) -> str | None:
    """Why ``spec`` cannot be a model, from a cheap look (no loading); ``None`` if it may.

    Example::

        >>> model_spec_problem("/no/such/model.pt")
        'No model file at /no/such/model.pt'
        >>> model_spec_problem("facebook/detr-resnet-50") is None
        True
    """
    if not isinstance(spec, str) or not spec.strip():
        return "Give a model: a weights file, a model directory or a hub id"
    path = Path(os.path.expanduser(spec.strip()))
    if path.is_dir():
        if not (path / "config.json").is_file():
            return f"{path} has no config.json: not a Transformers model directory"
        return None
    if path.is_file():
        if path.suffix.lower() not in ULTRALYTICS_SUFFIXES:
            return (
                f"{path.name} is not a model file this plugin reads "
                f"({', '.join(ULTRALYTICS_SUFFIXES)})"
            )
        return None
    if _HUB_ID.match(spec.strip()) and path.suffix.lower() not in ULTRALYTICS_SUFFIXES:
        return None  # a hub id: checked when the run loads it
    return f"No model file at {spec.strip()}"


def bundled_models() -> list[str]:
    """Paths of the models shipped with the plugin (``models/*.pt``)."""
    return sorted(str(p) for p in BUNDLED_MODELS_DIR.glob("*.pt"))


def label_field_inputs(
    ctx: Any, inputs: types.Object, target: Any, default: str
) -> bool:
    """Output field, overwrite, and "only samples where it is empty" (resume, pre-label)."""
    prop = inputs.str(
        "label_field",
        required=True,
        default=default,
        label="Output field",
        description="The field the predictions are written to (Detections; Polylines for oriented-box models)",
    )
    inputs.bool(
        "overwrite",
        default=False,
        label="Overwrite",
        description="Replace the field's values on these samples if it exists",
    )
    inputs.bool(
        "skip_existing",
        default=False,
        label="Only samples where the field is empty",
        description=(
            "Label only samples without a value in the field: resume an "
            "interrupted run, or pre-label what is not labelled yet"
        ),
    )
    params = ctx.params
    if params.get("skip_existing"):
        inputs.bool(
            "allow_mixed_settings",
            default=False,
            label="Allow other settings than the field's labels",
            description=(
                "Add labels even if the field's labels came from another model "
                "or other settings (refused otherwise: one field, one run's labels)"
            ),
        )
    problem = label_field_problem(
        target,
        params.get("label_field", default),
        bool(params.get("overwrite", False)),
        bool(params.get("skip_existing", False)),
    )
    return flag(prop, problem)


def settings_inputs(
    ctx: Any,
    inputs: types.Object,
    options_cls: type[PredictOptions] | type[ModelOptions] | type[VideoOptions],
    names: Sequence[str],
) -> bool:
    """Inputs for the named settings of ``options_cls``, checked as the options check them.

    Each value is validated with the ones before it (``overlap`` needs
    ``slice_wh``), so the error shows next to the input that causes it.
    """
    settings = options_cls.settings()
    given = {}
    ok = True
    for name in names:
        prop = setting_input(inputs, settings[name])
        value = ctx.params.get(name)
        if value is None:
            continue
        given[name] = value
        try:
            options_cls.from_params(given)
        except ConfigError as error:
            ok = flag(prop, str(error)) and ok
            del given[name]
    return ok


def setting_input(inputs: types.Object, setting: Setting) -> Any:
    """One input for a ``Setting``: its kind, default, label, help, bounds and choices."""
    common = {"label": setting.label, "description": setting.help}
    if setting.kind == "choice":
        return choice_input(
            inputs,
            setting.name,
            setting.choices or {},
            setting.default,
            required=False,  # empty means the default
            **common,
        )
    if setting.kind == "list":
        return inputs.list(
            setting.name,
            types.String(),
            view=types.AutocompleteView(allow_user_input=True, allow_duplicates=False),
            **common,
        )
    if setting.kind == "bool":
        return inputs.bool(setting.name, default=setting.default, **common)
    if setting.kind == "str":
        return inputs.str(setting.name, default=setting.default, **common)
    bounds = {
        k: v
        for k, v in (("min", setting.minimum), ("max", setting.maximum))
        if v is not None
    }
    make = inputs.int if setting.kind == "int" else inputs.float
    return make(setting.name, default=setting.default, **bounds, **common)


def video_inputs(ctx: Any, inputs: types.Object) -> bool:
    """Frame range and step, tracker and its settings: for video targets only."""
    inputs.view(
        "video_header",
        types.Header(
            label="Frames",
            description="The target holds videos: each labelled frame is sliced "
            "like an image and written to frames.<output field>",
            divider=True,
        ),
    )
    names = list(FRAMES)
    tracker = ctx.params.get("tracker")
    if tracker not in (None, "", "none"):
        names += TRACKING
        if tracker == "botsort":
            names.append("gmc_method")
    return settings_inputs(ctx, inputs, VideoOptions, names)


def video_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``VideoOptions`` keywords among a form's values (empty ones left out)."""
    return {
        name: params[name]
        for name in VideoOptions.settings()
        if params.get(name) not in (None, "")
    }


def device_inputs(ctx: Any, inputs: types.Object) -> bool:
    """The device, from ``ModelOptions`` (``auto`` for its default)."""
    setting = ModelOptions.settings()["device"]
    prop = inputs.str(
        "device",
        default="auto",
        label=setting.label,
        description=setting.help,
        view=types.AutocompleteView(
            choices=[types.Choice(d, label=d) for d in DEVICES],
            allow_user_input=True,
        ),
    )
    device = str(ctx.params.get("device") or "auto")
    problem = None
    if not _DEVICE.match(device):
        problem = f"Unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps"
    return flag(prop, problem)


def backend_inputs(ctx: Any, inputs: types.Object) -> bool:
    """Backend and precision (from ``ModelOptions``); calibration tiles for int8."""
    names = ["backend", "precision"]
    if ctx.params.get("precision") == "int8":
        names.append("calibration_tiles")
    return settings_inputs(ctx, inputs, ModelOptions, names)


def prelabel_inputs(inputs: types.Object) -> None:
    """Tags for the samples a run labels (pre-labelling for review)."""
    inputs.list(
        "tags",
        types.String(),
        label="Tag labelled samples",
        description="Tags added to every sample the run labels, e.g. 'to_review'",
        view=types.AutocompleteView(allow_user_input=True, allow_duplicates=False),
    )


def store_tiles_input(inputs: types.Object, label_field: str) -> None:
    """Whether a sliced run also writes its tile grid, for the App to draw the seams."""
    inputs.bool(
        "store_tiles",
        default=False,
        label="Draw the tile grid",
        description=f"Also write each image's tiles to '{label_field}_tiles' "
        "(polylines), so the App shows where the seams are",
        view=types.CheckboxView(),
    )


def sharding_inputs(ctx: Any, inputs: types.Object) -> bool:
    """How many delegated workers share the run (one disjoint shard each)."""
    prop = inputs.int(
        "num_shards",
        default=1,
        min=1,
        max=64,
        label="Shards",
        description=(
            "Split the samples into N disjoint shards, each queued as its own "
            "delegated operation, for N `fiftyone delegated launch` workers"
        ),
    )
    num_shards = ctx.params.get("num_shards") or 1
    problem = None
    if not isinstance(num_shards, int) or num_shards < 1:
        problem = "Shards must be a positive whole number"
    return flag(prop, problem)


def choice_input(
    inputs: types.Object,
    name: str,
    choices: Mapping[str, str] | Sequence[str],
    default: str | None,
    *,
    label: str,
    description: str | None = None,
    required: bool = True,
) -> Any:
    """A dropdown; ``choices`` maps each value to a one-line description, or lists values."""
    view = types.DropdownView()
    described = choices if isinstance(choices, Mapping) else dict.fromkeys(choices)
    for value, text in described.items():
        view.add_choice(value, label=value, description=text)
    return inputs.enum(
        name,
        view.values(),
        default=default,
        required=required,
        label=label,
        description=description,
        view=view,
    )


def queue_problem(ctx: Any) -> str | None:
    """Why this request may not be queued for a worker; ``None`` if it may (or runs now).

    A queued operation only names its dataset: a non-persistent dataset is
    deleted when the process that made it exits, and the worker then finds
    nothing. Making it persistent silently would surprise the user, so the
    request is refused with what to do.

    Example::

        >>> queue_problem(ctx)  # doctest: +SKIP
        "Dataset 'x' is not persistent: ..."
    """
    if ctx.delegated or not is_queuing(ctx):
        return None
    dataset = ctx.dataset
    if dataset is None or dataset.persistent:
        return None
    return not_persistent_message(dataset.name)


def is_queuing(ctx: Any) -> bool:
    """Whether this request queues work for delegated workers (rather than running it)."""
    params = ctx.params
    return bool(
        ctx.requesting_delegated_execution
        or params.get("delegate")
        or is_shard_dispatcher(params)
    )


def is_shard_dispatcher(params: Mapping[str, Any]) -> bool:
    """Whether a run's parameters ask to queue N > 1 shards (rather than be one of them)."""
    shards = params.get("num_shards")
    many = isinstance(shards, int) and not isinstance(shards, bool) and shards > 1
    return many and params.get("shard_index") is None


def not_persistent_message(name: str) -> str:
    """What to do when a run is queued on a dataset that will not outlive its process."""
    return (
        f"Dataset {name!r} is not persistent, so it is deleted when this process "
        "exits and a delegated worker would find nothing to run on. Make it "
        "persistent first (dataset.persistent = True), or run now (delegate=False)."
    )


def can_delegate(ctx: Any) -> bool:
    """Whether the App should offer delegated execution: only on persistent datasets."""
    try:
        return bool(ctx.dataset.persistent)
    except Exception:  # no dataset yet while the App builds the form
        return True


def queue_inputs(ctx: Any, inputs: types.Object) -> bool:
    """An error in the form when the request would queue work a worker cannot run."""
    problem = queue_problem(ctx)
    if problem is None:
        return True
    prop = inputs.view(
        "not_persistent", types.Error(label="Cannot delegate", description=problem)
    )
    return flag(prop, problem)


def device_param(value: Any) -> str | None:
    """The SDK's ``device`` for the form's value (``"auto"`` and empty -> ``None``)."""
    return None if value in (None, "", "auto") else str(value)


def flag(prop: Any, problem: str | None) -> bool:
    """Marks ``prop`` invalid with ``problem`` (when there is one); True if valid."""
    if problem:
        prop.invalid = True
        prop.error_message = problem
    return problem is None
