"""Small builders of operator forms, shared by the inference operators.

Each ``*_inputs(ctx, inputs, ...)`` helper adds one group of inputs to a
``types.Object`` and returns whether that group is complete and valid, so a
form can stop growing at the first group that needs the user's attention.
Invalid inputs carry ``invalid=True`` and an ``error_message`` the App shows
next to them (and that blocks execution, from the App and from Python).
Checks here are cheap (no model is loaded): the real load happens in
``execute``, where a failure becomes the run's error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import fiftyone.operators.types as types

from ..slicer.merge import METRICS, STRATEGIES
from ..slicer.models.ultralytics import ULTRALYTICS_SUFFIXES
from .inference import label_field_problem

#: Bundled models, offered as choices for the model input.
BUNDLED_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
#: Targets with more samples default to delegated execution in the App.
DELEGATE_ABOVE = 50
#: Devices offered; any torch device string may be typed in.
DEVICES = ("auto", "cpu", "cuda", "cuda:0", "mps")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def target_inputs(ctx: Any, inputs: types.Object) -> int:
    """Adds the standard target choice (dataset / current view / selected samples).

    Returns:
        the number of samples in the chosen target.
    """
    inputs.view_target(ctx)
    return len(ctx.target_view())


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
            "or a Hugging Face hub id (org/name). Loading a .pt file unpickles "
            "it: use weights you trust."
        ),
        view=types.AutocompleteView(
            choices=[types.Choice(p, label=Path(p).name) for p in bundled],
            allow_user_input=True,
        ),
    )
    problem = model_spec_problem(ctx.params.get("model", default))
    if problem:
        prop.invalid = True
        prop.error_message = problem
    return problem is None


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
        description="The Detections field the predictions are written to",
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
    problem = label_field_problem(
        target,
        params.get("label_field", default),
        bool(params.get("overwrite", False)),
        bool(params.get("skip_existing", False)),
    )
    if problem:
        prop.invalid = True
        prop.error_message = problem
    return problem is None


def slicing_inputs(inputs: types.Object) -> None:
    """Tile size, overlap, tile input size and the optional full-image pass."""
    inputs.int(
        "slice_wh",
        default=640,
        min=32,
        label="Slice size (px)",
        description="Width and height of each tile",
    )
    inputs.float(
        "overlap",
        default=0.2,
        min=0.0,
        max=0.95,
        label="Overlap",
        description="Fraction of a tile shared with its neighbour",
    )
    inputs.int(
        "imgsz",
        min=32,
        label="Tile input size (px)",
        description="Model input size for each tile; empty runs tiles at their own size",
    )
    inputs.bool(
        "full_image_pass",
        default=False,
        label="Add a full-image pass",
        description="Also predict on the whole image and merge (helps large objects)",
    )


def merge_inputs(inputs: types.Object) -> None:
    """How duplicates across tiles are merged."""
    _choice(
        inputs,
        "merge",
        STRATEGIES,
        "provenance",
        "Merge strategy",
        "How duplicates across tile borders become one detection",
    )
    _choice(
        inputs,
        "merge_metric",
        METRICS,
        "iou",
        "Match metric",
        "Overlap measure of nms / nmm / greedy_nmm (provenance uses IoU)",
    )
    inputs.float(
        "merge_threshold",
        default=0.5,
        min=0.01,
        max=1.0,
        label="Merge threshold",
        description="Overlap above which two detections are the same object",
    )
    inputs.bool(
        "class_agnostic",
        default=False,
        label="Merge across classes",
        description="Also merge duplicates labelled with different classes",
    )


def prediction_inputs(ctx: Any, inputs: types.Object, batching: bool = True) -> bool:
    """Confidence, classes, detections per image, batch size, device."""
    inputs.float(
        "confidence",
        default=0.25,
        min=0.0,
        max=1.0,
        label="Confidence threshold",
        description="Detections scoring lower are dropped",
    )
    inputs.list(
        "classes",
        types.String(),
        label="Classes",
        description="Keep only these labels (empty keeps all)",
        view=types.AutocompleteView(allow_user_input=True, allow_duplicates=False),
    )
    inputs.int(
        "max_detections",
        min=1,
        label="Max detections per image",
        description="Keep the best N per image; empty keeps all",
    )
    if batching:
        inputs.int(
            "batch_size",
            default=1,
            min=1,
            max=256,
            label="Batch size",
            description="Tiles per forward pass (a GPU gains from more)",
        )
    prop = inputs.str(
        "device",
        default="auto",
        label="Device",
        description="auto picks cuda, then mps, then cpu",
        view=types.AutocompleteView(
            choices=[types.Choice(d, label=d) for d in DEVICES],
            allow_user_input=True,
        ),
    )
    device = ctx.params.get("device") or "auto"
    if not re.match(r"^(auto|cpu|mps|cuda(:\d+)?)$", str(device)):
        prop.invalid = True
        prop.error_message = (
            f"Unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps"
        )
        return False
    return True


def prelabel_inputs(inputs: types.Object) -> None:
    """Tags for the samples a run labels (pre-labelling for review)."""
    inputs.list(
        "tags",
        types.String(),
        label="Tag labelled samples",
        description="Tags added to every sample the run labels, e.g. 'to_review'",
        view=types.AutocompleteView(allow_user_input=True, allow_duplicates=False),
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
    if not isinstance(num_shards, int) or num_shards < 1:
        prop.invalid = True
        prop.error_message = "Shards must be a positive whole number"
        return False
    return True


def device_param(value: Any) -> str | None:
    """The SDK's ``device`` for the form's value (``"auto"`` and empty -> ``None``)."""
    return None if value in (None, "", "auto") else str(value)


def _choice(
    inputs: types.Object,
    name: str,
    choices: dict[str, str],
    default: str,
    label: str,
    description: str,
) -> None:
    """A dropdown whose options carry their own one-line description."""
    view = types.DropdownView()
    for value, text in choices.items():
        view.add_choice(value, label=value, description=text)
    inputs.enum(
        name,
        view.values(),
        default=default,
        label=label,
        description=description,
        view=view,
    )
