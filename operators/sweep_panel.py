"""The "Slice settings" panel: a stored sweep's table, its recommendation, and one click to run it.

It shows the sweeps ``find_slice_settings`` stored on the dataset (the newest
by default), and its button opens the ``run_sliced_inference`` form on the
whole dataset, filled with the recommended setting.
"""

from __future__ import annotations

from typing import Any

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..evaluation.sweep_results import MODES, SweepResult, list_sweeps, load_sweep
from ..evaluation.table import Table
from . import PLUGIN_NAME
from .find_settings import SWEEP_PANEL_NAME
from .forms import add_table

_FIND_URI = f"{PLUGIN_NAME}/find_slice_settings"
_RUN_URI = f"{PLUGIN_NAME}/run_sliced_inference"


class SliceSettingsPanel(foo.Panel):
    """Slice-settings sweeps: every setting tried, the recommended one, run it."""

    @property
    def config(self) -> foo.PanelConfig:
        return foo.PanelConfig(
            name=SWEEP_PANEL_NAME,
            label="Slice settings",
            icon="tune",
            category=foo.Categories.ANALYZE,
            help_markdown=(
                "Sweeps stored by `find_slice_settings`: AP50 by object size and "
                "on seams, and time, of every setting tried on a sample."
            ),
        )

    def on_load(self, ctx: Any) -> None:
        """Loads the selected (else newest) stored sweep into panel state."""
        keys = list_sweeps(ctx.dataset)
        key = ctx.panel.get_state("sweep_key")
        if key not in keys:
            key = keys[0] if keys else None
        sweep = load_sweep(ctx.dataset, key) if key else None
        ctx.panel.set_state("sweep_keys", keys)
        ctx.panel.set_state("sweep_key", key)
        if sweep is None:
            ctx.panel.set_state("has_sweep", False)
            return
        table = sweep.table()
        ctx.panel.set_state(
            {
                "has_sweep": True,
                "summary": summary_markdown(sweep),
                "has_recommendation": sweep.recommendation is not None,
                "sweep_columns": table.columns,
                "sweep_table": table.rows,
            }
        )

    def on_change_dataset(self, ctx: Any) -> None:
        self.on_load(ctx)

    def refresh(self, ctx: Any) -> None:
        """Reloads the stored sweeps."""
        self.on_load(ctx)

    def select_sweep(self, ctx: Any) -> None:
        """Shows another stored sweep."""
        ctx.panel.set_state("sweep_key", ctx.params.get("value"))
        self.on_load(ctx)

    def prompt_sweep(self, ctx: Any) -> None:
        """Opens the ``find_slice_settings`` form."""
        ctx.prompt(_FIND_URI, on_success=self.refresh)

    def run_recommended(self, ctx: Any) -> None:
        """Opens the sliced-inference form on the whole dataset, filled with the recommendation."""
        sweep = load_sweep(ctx.dataset, ctx.panel.get_state("sweep_key"))
        if sweep is None or sweep.recommendation is None:
            ctx.ops.notify("This sweep has no recommendation", variant="warning")
            return
        ctx.prompt(_RUN_URI, params=recommended_run_params(sweep))

    def render(self, ctx: Any) -> types.Property:
        panel = types.Object()
        if not ctx.panel.get_state("has_sweep"):
            _empty_state(panel, self)
        else:
            _header(panel, ctx, self)
            columns = ctx.panel.get_state("sweep_columns") or {}
            add_table(panel, Table("sweep", "Slice settings sweep", columns))
        return types.Property(
            panel, view=types.GridView(orientation="vertical", gap=2, padding=2)
        )


def summary_markdown(sweep: SweepResult) -> str:
    """What was swept, on what, and the recommendation."""
    objects = f", {sweep.num_objects} objects" if sweep.num_objects else ""
    images = len(sweep.sample_ids)
    return (
        f"**{sweep.reason}**\n\n"
        f"{len(sweep.points)} settings of `{sweep.model}` on {images} sampled "
        f"image{'s' if images != 1 else ''}{objects}, scored by "
        f"{MODES[sweep.mode]}. Time budget {sweep.budget:.2f}x the default "
        f"setting's time; criterion {sweep.criterion}."
    )


def recommended_run_params(sweep: SweepResult) -> dict[str, Any]:
    """Parameters of ``run_sliced_inference`` for the recommended setting, on the whole dataset.

    Example::

        >>> recommended_run_params(sweep)["slice_wh"]  # doctest: +SKIP
        640
    """
    best = sweep.recommendation
    if best is None:
        raise ValueError("the sweep has no recommendation")
    return {
        "view_target": "DATASET",
        "model": sweep.model,
        "label_field": f"sliced_{best.params['slice_wh']}",
        **best.params,
    }


def _empty_state(panel: types.Object, owner: SliceSettingsPanel) -> None:
    panel.md(
        "### No sweep yet\n\n"
        "Find the slice size, overlap and merge that suit your data: the sweep "
        "tries them on a sample and recommends one (in Python: "
        '`si.find_slice_settings(dataset, "model.pt", "ground_truth")`).',
        name="empty",
    )
    row = panel.h_stack("empty_actions", gap=2, align_x="left")
    row.btn(
        "find",
        label="Find slice settings",
        icon="tune",
        variant="contained",
        on_click=owner.prompt_sweep,
    )
    row.btn("refresh", label="Refresh", icon="refresh", on_click=owner.refresh)


def _header(panel: types.Object, ctx: Any, owner: SliceSettingsPanel) -> None:
    keys = ctx.panel.get_state("sweep_keys") or []
    if len(keys) > 1:
        panel.enum(
            "sweep_key",
            keys,
            label="Sweep",
            default=ctx.panel.get_state("sweep_key"),
            view=types.DropdownView(),
            on_change=owner.select_sweep,
        )
    panel.md(ctx.panel.get_state("summary") or "", name="summary")
    row = panel.h_stack("actions", gap=2, align_x="left")
    if ctx.panel.get_state("has_recommendation"):
        row.btn(
            "run_recommended",
            label="Run the recommended setting on the whole dataset",
            icon="play_arrow",
            variant="contained",
            on_click=owner.run_recommended,
        )
    row.btn(
        "sweep_again", label="Sweep again", icon="tune", on_click=owner.prompt_sweep
    )
    row.btn("refresh", label="Refresh", icon="refresh", on_click=owner.refresh)
