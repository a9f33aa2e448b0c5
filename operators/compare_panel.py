"""The comparison panel: metrics, AP by object size, speed, and review views of a comparison.

It shows the comparisons ``compare_runs`` stored on the dataset (the newest, or
the one the ``compare_runs`` operator opened it on), notices when the stored
evaluations changed since and offers to re-run, and loads the "recovered" and
"lost" objects or FiftyOne's Model Evaluation panel in compare mode.
"""

from __future__ import annotations

from typing import Any

import fiftyone.operators as foo
import fiftyone.operators.types as types

from ..evaluation import (
    Comparison,
    is_current,
    list_comparisons,
    load_comparison,
    lost_view,
    recovered_view,
    rerun_comparison,
    seam_view,
)
from ..evaluation.results import SEAM_TABLE, SIZE_METRICS, TABLES
from ..evaluation.sizes import SIZES
from ..evaluation.table import fmt
from . import PLUGIN_NAME
from .compare_operator import PANEL_NAME
from .forms import add_table

#: Name of FiftyOne's built-in Model Evaluation panel.
MODEL_EVALUATION_PANEL = "model_evaluation_panel_builtin"
#: Metrics the AP-by-size plot can show: attribute -> axis title.
PLOT_METRICS = SIZE_METRICS
_OPERATOR_URI = f"{PLUGIN_NAME}/compare_runs"


class ComparisonPanel(foo.Panel):
    """Baseline vs sliced: metrics, AP by object size, speed and review views."""

    @property
    def config(self) -> foo.PanelConfig:
        return foo.PanelConfig(
            name=PANEL_NAME,
            label="Sliced vs baseline",
            icon="compare_arrows",
            category=foo.Categories.ANALYZE,
            help_markdown=(
                "Compares prediction runs stored by `compare_runs`: COCO mAP, "
                "AP50, precision, recall and counts, overall and by object size."
            ),
        )

    def on_load(self, ctx: Any) -> None:
        """Loads the selected (else newest) stored comparison into panel state."""
        keys = list_comparisons(ctx.dataset)
        key = ctx.panel.get_state("comparison_key")
        if key not in keys:
            key = keys[0] if keys else None
        comparison = load_comparison(ctx.dataset, key) if key else None
        ctx.panel.set_state("comparison_keys", keys)
        ctx.panel.set_state("comparison_key", key)
        if comparison is None:
            ctx.panel.set_state("has_comparison", False)
            ctx.panel.set_state("eval_keys", ctx.dataset.list_evaluations())
            return
        focus = ctx.panel.get_state("focus_field")
        if focus not in comparison.fields[1:]:
            focus = comparison.fields[-1]  # usually the newest setting
        metric = ctx.panel.get_state("plot_metric") or "mAP"
        ctx.panel.set_state(
            {
                "has_comparison": True,
                "stale": not is_current(ctx.dataset, comparison),
                "unfinished": comparison.unfinished_lines(),
                "summary": summary_markdown(comparison),
                "fields": comparison.fields,
                "sliced_fields": [r.field for r in comparison.runs if r.seams],
                "focus_field": focus,
                "plot_metric": metric,
                f"{SEAM_TABLE.name}_table": [],  # no seams unless a run is sliced
                **{f"{t.name}_table": t.rows for t in comparison.tables()},
            }
        )
        ctx.panel.set_data("ap_by_size", plot_traces(comparison, metric))

    def on_change_dataset(self, ctx: Any) -> None:
        """Reloads: the dataset (and its evaluations) may have changed."""
        self.on_load(ctx)

    def refresh(self, ctx: Any) -> None:
        """Reloads the stored comparisons and evaluations."""
        self.on_load(ctx)

    def prompt_compare(self, ctx: Any) -> None:
        """Opens the ``compare_runs`` form; the panel reloads when it succeeds.

        The operator's own re-opening of this panel only re-activates a panel
        that is already open, so the reload must come from here.
        """
        ctx.prompt(_OPERATOR_URI, on_success=self.refresh)

    def select_comparison(self, ctx: Any) -> None:
        """Shows another stored comparison."""
        ctx.panel.set_state("comparison_key", ctx.params.get("value"))
        self.on_load(ctx)

    def select_focus(self, ctx: Any) -> None:
        """Chooses the run the review buttons compare with the baseline."""
        ctx.panel.set_state("focus_field", ctx.params.get("value"))

    def select_metric(self, ctx: Any) -> None:
        """Chooses the metric of the AP-by-size plot."""
        metric = ctx.params.get("value") or "mAP"
        ctx.panel.set_state("plot_metric", metric)
        comparison = self._comparison(ctx)
        if comparison is not None:
            ctx.panel.set_data("ap_by_size", plot_traces(comparison, metric))

    def show_recovered(self, ctx: Any) -> None:
        """Loads the objects the focused run found and the baseline missed."""
        comparison = self._comparison(ctx)
        if comparison is not None:
            baseline, other = comparison.baseline.field, self._focus(ctx, comparison)
            ctx.ops.set_view(
                recovered_view(ctx.dataset, comparison.gt_field, baseline, other)
            )

    def show_lost(self, ctx: Any) -> None:
        """Loads the objects the baseline found and the focused run missed."""
        comparison = self._comparison(ctx)
        if comparison is not None:
            baseline, other = comparison.baseline.field, self._focus(ctx, comparison)
            ctx.ops.set_view(
                lost_view(ctx.dataset, comparison.gt_field, baseline, other)
            )

    def show_seam_misses(self, ctx: Any) -> None:
        """Loads the seam objects the focused run missed or detected twice."""
        comparison = self._comparison(ctx)
        if comparison is not None:
            focus = self._focus(ctx, comparison)
            ctx.ops.set_view(seam_view(ctx.dataset, focus, comparison.gt_field))

    def clear_view(self, ctx: Any) -> None:
        """Shows the whole dataset again."""
        ctx.ops.clear_view()

    def open_model_evaluation(self, ctx: Any) -> None:
        """Opens FiftyOne's Model Evaluation panel comparing baseline and focused run."""
        comparison = self._comparison(ctx)
        if comparison is None:
            return
        focus = self._focus(ctx, comparison)
        ctx.ops.set_spaces(
            spaces=evaluation_spaces(
                ctx.dataset,
                model_evaluation_state(
                    ctx.dataset,
                    comparison.baseline.eval_key,
                    comparison.run(focus).eval_key,
                ),
                {"comparison_key": comparison.key, "focus_field": focus},
            )
        )

    def rerun(self, ctx: Any) -> None:
        """Runs the shown comparison again with its stored settings."""
        key = ctx.panel.get_state("comparison_key")
        if not key:
            return
        rerun_comparison(ctx.dataset, key)
        self.on_load(ctx)
        ctx.ops.notify("Comparison updated", variant="success")

    def render(self, ctx: Any) -> types.Property:
        panel = types.Object()
        if not ctx.panel.get_state("has_comparison"):
            _empty_state(panel, ctx.panel.get_state("eval_keys") or [], self)
        else:
            _header(panel, ctx, self)
            _review_buttons(panel, ctx, self)
            metrics, sizes, speed = TABLES
            add_table(panel, metrics)
            _plot(panel, ctx, self)
            add_table(panel, sizes)
            if ctx.panel.get_state(f"{SEAM_TABLE.name}_table"):
                _seams(panel, ctx, self)
            add_table(panel, speed)
        return types.Property(
            panel, view=types.GridView(orientation="vertical", gap=2, padding=2)
        )

    def _comparison(self, ctx: Any) -> Comparison | None:
        return load_comparison(ctx.dataset, ctx.panel.get_state("comparison_key"))

    def _focus(self, ctx: Any, comparison: Comparison) -> str:
        focus = ctx.panel.get_state("focus_field")
        return focus if focus in comparison.fields[1:] else comparison.fields[-1]


def summary_markdown(comparison: Comparison) -> str:
    """The comparison's heading, recovered / lost counts and track scores, as markdown."""
    lines = comparison.review_lines() + comparison.identity_lines()
    review = [f"- {line}" for line in lines]
    return "\n\n".join(comparison.heading()) + "\n\n" + "\n".join(review)


def plot_traces(comparison: Comparison, metric: str = "mAP") -> list[dict[str, Any]]:
    """Plotly bar traces of ``metric`` for all objects and per size, one per run."""
    x = ["all", *[f"{s} ({n})" for s, n in comparison.size_counts().items()]]
    traces = []
    for run in comparison.runs:
        values = [getattr(run.overall, metric)]
        values += [getattr(run.by_size[s], metric) for s in SIZES if s in run.by_size]
        traces.append(
            {
                "type": "bar",
                "name": run.field,
                "x": x,
                "y": [None if v is None else round(v, 4) for v in values],
                "text": [fmt(v) for v in values],
                "textposition": "outside",
            }
        )
    return traces


def model_evaluation_state(
    dataset: Any, eval_key: str, compare_key: str
) -> dict[str, Any]:
    """State of FiftyOne's Model Evaluation panel showing ``eval_key`` vs ``compare_key``.

    The built-in panel reads ``view.page``, ``view.key``, ``view.id`` and
    ``view.compareKey``, and skips its own reset when ``view.init`` is set.
    """
    return {
        "view": {
            "page": "evaluation",
            "key": eval_key,
            "id": str(dataset._doc.evaluations[eval_key].id),
            "compareKey": compare_key,
            "init": True,
        }
    }


def evaluation_spaces(
    dataset: Any, evaluation_state: dict[str, Any], comparison_state: dict[str, Any]
) -> Any:
    """App layout: samples on the left; this panel and Model Evaluation (shown) on the right.

    Python panels take their initial state from a space's ``Panel.state`` under
    the key ``"state"``; ``ctx.ops.open_panel(..., state=...)`` does not reach
    them in the grid (FiftyOne 1.x), hence a whole layout rather than one panel.
    """
    import fiftyone as fo

    samples = fo.Panel(type="Samples", pinned=True)
    ours = fo.Panel(type=PANEL_NAME, state={"state": comparison_state})
    evaluation = fo.Panel(
        type=MODEL_EVALUATION_PANEL, state={"state": evaluation_state}
    )
    return fo.Space(
        children=[
            fo.Space(children=[samples], active_child=samples.component_id),
            fo.Space(children=[ours, evaluation], active_child=evaluation.component_id),
        ],
        orientation="horizontal",
    )


def _empty_state(
    panel: types.Object, eval_keys: list[str], owner: ComparisonPanel
) -> None:
    stored = (
        f"Stored evaluations: {', '.join(f'`{k}`' for k in eval_keys)}."
        if eval_keys
        else "This dataset has no stored evaluations yet."
    )
    panel.md(
        "### No comparison yet\n\n"
        "Run baseline and sliced inference into two label fields, then compare "
        "them with the button below (or in Python: "
        '`si.compare_runs(dataset, "ground_truth", ["baseline", "sliced"])`). '
        f"{stored}",
        name="empty",
    )
    buttons = panel.h_stack("empty_actions", gap=2, align_x="left")
    buttons.btn(
        "compare",
        label="Compare runs",
        icon="compare_arrows",
        variant="contained",
        on_click=owner.prompt_compare,
    )
    buttons.btn("refresh", label="Refresh", icon="refresh", on_click=owner.refresh)


def _header(panel: types.Object, ctx: Any, owner: ComparisonPanel) -> None:
    keys = ctx.panel.get_state("comparison_keys") or []
    if len(keys) > 1:
        panel.enum(
            "comparison_key",
            keys,
            label="Comparison",
            default=ctx.panel.get_state("comparison_key"),
            view=types.DropdownView(),
            on_change=owner.select_comparison,
        )
    if ctx.panel.get_state("stale"):
        panel.view(
            "stale",
            types.Warning(
                label="The compared fields or evaluations changed since this comparison",
                description="Re-run it to refresh the numbers.",
            ),
        )
        panel.btn(
            "rerun", label="Re-run comparison", icon="refresh", on_click=owner.rerun
        )
    unfinished = ctx.panel.get_state("unfinished") or []
    if unfinished:
        panel.view(
            "unfinished_runs",
            types.Warning(
                label="Some runs did not process every image (starred)",
                description=" ".join(unfinished),
            ),
        )
    panel.md(ctx.panel.get_state("summary") or "", name="summary")


def _seams(panel: types.Object, ctx: Any, owner: ComparisonPanel) -> None:
    """The seam table and a button that loads the focused run's seam mistakes."""
    add_table(panel, SEAM_TABLE)
    focus = ctx.panel.get_state("focus_field")
    sliced = ctx.panel.get_state("sliced_fields") or []
    if focus in sliced:
        panel.btn(
            "seam_misses",
            label=f"Seam objects {focus} missed or found twice",
            icon="grid_on",
            variant="outlined",
            on_click=owner.show_seam_misses,
        )


def _plot(panel: types.Object, ctx: Any, owner: ComparisonPanel) -> None:
    metric = ctx.panel.get_state("plot_metric") or "mAP"
    panel.enum(
        "plot_metric",
        list(PLOT_METRICS),
        label="Plot",
        default=metric,
        view=types.DropdownView(),
        on_change=owner.select_metric,
    )
    panel.plot(
        "ap_by_size",
        layout={
            "title": {"text": f"{PLOT_METRICS.get(metric, metric)} by object size"},
            "barmode": "group",
            "showlegend": True,  # FiftyOne's PlotlyView defaults to no legend
            # plotly.js 3 (in the App) takes axis titles as objects only.
            "yaxis": {
                "title": {"text": PLOT_METRICS.get(metric, metric)},
                "range": [0, 1.05],
            },
            "xaxis": {"title": {"text": "objects (ground truth count)"}},
            "height": 360,
            "margin": {"t": 48, "b": 48, "l": 56, "r": 16},
        },
        config={"displayModeBar": False},
    )


def _review_buttons(panel: types.Object, ctx: Any, owner: ComparisonPanel) -> None:
    fields = ctx.panel.get_state("fields") or []
    focus = ctx.panel.get_state("focus_field")
    if len(fields) > 2:
        panel.enum(
            "focus_field",
            fields[1:],
            label="Review against the baseline",
            default=focus,
            view=types.DropdownView(),
            on_change=owner.select_focus,
        )
    base = fields[0] if fields else "baseline"
    row = panel.h_stack("review", gap=2, align_x="left")
    row.btn(
        "recovered",
        label=f"Recovered by {focus}",
        icon="add_circle_outline",
        variant="contained",
        on_click=owner.show_recovered,
    )
    row.btn(
        "lost",
        label=f"Lost by {focus}",
        icon="remove_circle_outline",
        variant="outlined",
        on_click=owner.show_lost,
    )
    row.btn(
        "model_evaluation",
        label=f"Model Evaluation: {base} vs {focus}",
        icon="ssid_chart",
        variant="outlined",
        on_click=owner.open_model_evaluation,
    )
    row.btn("clear", label="Clear view", icon="clear", on_click=owner.clear_view)
    row.btn("refresh", label="Refresh", icon="refresh", on_click=owner.refresh)
