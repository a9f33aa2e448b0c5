"""A ``RunMatch`` stored as FiftyOne's own COCO evaluation, written in bulk by label id.

What ``evaluate_detections(method="coco", compute_mAP=True, eval_key=...)``
leaves on a dataset, made from a match that is already computed: the same
evaluation config and run registration (FiftyOne's ``COCOEvaluation`` object
does them), the same ``COCODetectionResults`` (matches and PR curves), the same
per-object ``<eval_key>``, ``<eval_key>_id``, ``<eval_key>_iou`` attributes and
per-sample ``<eval_key>_tp`` / ``_fp`` / ``_fn`` counts. So the Model Evaluation
panel, its compare mode, ``load_evaluation_results``, ``load_evaluation_view``
and the App's TP / FP / FN filters work on it as on FiftyOne's.

What differs is how the attributes are written. FiftyOne saves every sample
with ``sample.save()``, whose change tracking walks the whole label lists
(masks included): 82 of its 92 s on the demo dataset. Here each sample gets one
database update per field that merges the attributes into the labels **by
label id**: a label that is not there (deleted or replaced by a run meanwhile)
is not written, and no label is ever created.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import fiftyone as fo
import fiftyone.core.fields as fof
import fiftyone.core.odm as foodm
import numpy as np
from bson import ObjectId
from fiftyone.utils.eval.coco import COCODetectionResults, COCOEvaluationConfig
from pymongo import UpdateMany, UpdateOne

from .objects import CROWD_ATTRIBUTE, Objects
from .pr_curves import RECALL_POINTS
from .run_match import COCO_IOU_THRESHOLDS, RunMatch


def evaluation_config(
    pred_field: str,
    gt_field: str,
    *,
    iou: float,
    classwise: bool,
    use_masks: bool,
    tolerance: float | None,
    max_preds: int,
) -> COCOEvaluationConfig:
    """The config ``evaluate_detections(method="coco", compute_mAP=True, ...)`` would store."""
    return COCOEvaluationConfig(
        pred_field,
        gt_field,
        iou=iou,
        classwise=classwise,
        iscrowd=CROWD_ATTRIBUTE,
        use_masks=use_masks,
        use_boxes=False,
        tolerance=tolerance if use_masks else None,
        compute_mAP=True,
        iou_threshs=list(COCO_IOU_THRESHOLDS),
        max_preds=max_preds,
    )


def store_evaluation(
    samples: fo.core.collections.SampleCollection,
    match: RunMatch,
    eval_key: str,
    config: COCOEvaluationConfig,
    sample_ids: Sequence[str],
) -> COCODetectionResults:
    """Registers ``match`` under ``eval_key`` as a FiftyOne COCO evaluation of ``samples``.

    An evaluation already stored under ``eval_key`` must have been deleted.

    Args:
        samples: the dataset or view that was evaluated.
        match: the run's match.
        eval_key: the evaluation key.
        config: from ``evaluation_config``.
        sample_ids: the samples of ``match`` (``Images.ids``), in order.

    Returns:
        the stored ``COCODetectionResults`` (as ``load_evaluation_results``
        returns them).
    """
    method = config.build()
    method.ensure_requirements()
    method.register_run(samples, eval_key)
    declare_fields(samples, eval_key, config)
    write_object_results(samples, match, eval_key, sample_ids)
    results = COCODetectionResults(
        samples,
        config,
        eval_key,
        result_matches(match),
        match.curves.precision,
        RECALL_POINTS,
        config.iou_threshs,
        match.curves.classes,
        recall_sweep=match.curves.recall_sweep,
        thresholds=match.curves.thresholds,
        backend=method,
    )
    method.save_run_results(samples, eval_key, results)
    method.add_fields_to_sidebar_group(
        samples, eval_key, omit_fields=(config.pred_field, config.gt_field)
    )
    return results


def declare_fields(
    samples: fo.core.collections.SampleCollection,
    eval_key: str,
    config: COCOEvaluationConfig,
) -> None:
    """Adds the evaluation's fields to the dataset schema, as ``register_samples`` does.

    The same nine fields, in one schema merge: FiftyOne's ``register_samples``
    adds them one at a time, and each addition reloads the dataset document
    with all its stored runs (about a second per evaluation on the demo).
    """
    schema = {f"{eval_key}_{n}": fof.IntField for n in ("tp", "fp", "fn")}
    for name in (config.gt_field, config.pred_field):
        _, prefix = samples._get_label_field_path(name)
        schema[f"{prefix}.{eval_key}"] = fof.StringField
        schema[f"{prefix}.{eval_key}_id"] = fof.StringField
        schema[f"{prefix}.{eval_key}_iou"] = fof.FloatField
    fields = {
        path: foodm.create_field(path.rsplit(".", 1)[-1], ftype)
        for path, ftype in schema.items()
    }
    samples._dataset._merge_sample_field_schema(fields)


def result_matches(match: RunMatch) -> list[tuple]:
    """FiftyOne's ``(gt_label, pred_label, iou, confidence, gt_id, pred_id)`` tuples.

    One per prediction (matched or not) and one per unmatched ground-truth
    object, at the comparison IoU.
    """
    gt, preds, m = match.gt, match.preds, match.gt_match
    gt_ids, pred_ids = gt.str_ids, preds.str_ids
    tuples = []
    for p in match.order.tolist():
        g = int(m.pred_gt[p])
        conf = _number(preds.confidence[p])
        if g >= 0:
            iou = float(m.pred_iou[p])
            tuples.append(
                (gt.labels[g], preds.labels[p], iou, conf, gt_ids[g], pred_ids[p])
            )
        else:
            tuples.append((None, preds.labels[p], None, conf, None, pred_ids[p]))
    for g in (m.gt_pred < 0).nonzero()[0].tolist():
        tuples.append((gt.labels[g], None, None, None, gt_ids[g], None))
    return tuples


def write_object_results(
    samples: fo.core.collections.SampleCollection,
    match: RunMatch,
    eval_key: str,
    sample_ids: Sequence[str],
) -> None:
    """Writes the per-object results and per-sample counts of ``match``, by label id."""
    dataset = samples._dataset
    m = match.gt_match
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    gt_docs = _object_docs(
        eval_key, match.gt_found, "fn", m.gt_pred, m.gt_iou, match.preds
    )
    pred_docs = _object_docs(
        eval_key, match.pred_found, "fp", m.pred_gt, m.pred_iou, match.gt
    )
    ops: list[Any] = []
    for objects, docs in ((match.gt, gt_docs), (match.preds, pred_docs)):
        ops += _label_updates(objects, docs, sample_ids, now)
    ops += _count_updates(eval_key, match, sample_ids)
    foodm.bulk_write(ops, dataset._sample_collection)
    # Samples already in memory see the new attributes, as after FiftyOne's own.
    fo.core.sample.Sample._reload_docs(dataset._sample_collection_name)


def _object_docs(
    eval_key: str,
    found: Any,
    miss: str,
    partner: Any,
    iou: Any,
    other: Objects,
) -> list[dict[str, Any]]:
    """``{<key>: tp|fn|fp, <key>_id: matched id or "", <key>_iou: IoU or None}`` per object."""
    other_ids = other.str_ids
    docs = []
    for is_tp, p, value in zip(
        found.tolist(), partner.tolist(), iou.tolist(), strict=True
    ):
        matched = p >= 0
        docs.append(
            {
                eval_key: "tp" if is_tp else miss,
                f"{eval_key}_id": other_ids[p] if matched else "",
                f"{eval_key}_iou": value if matched else None,
            }
        )
    return docs


def _label_updates(
    objects: Objects,
    docs: list[dict[str, Any]],
    sample_ids: Sequence[str],
    now: datetime,
) -> list[UpdateOne]:
    """One update per sample that merges ``docs`` into its labels, matched by id."""
    path = objects.path
    ops = []
    for i, sample_id in enumerate(sample_ids):
        start, end = int(objects.bounds[i]), int(objects.bounds[i + 1])
        if start == end:
            continue
        ids = list(objects.ids[start:end])
        merged = _merged_by_id(path, ids, docs[start:end])
        ops.append(
            UpdateOne(
                {"_id": ObjectId(sample_id), path: {"$type": "array"}},
                [{"$set": {path: merged, "last_modified_at": now}}],
            )
        )
    return ops


def _merged_by_id(path: str, ids: list[Any], docs: list[dict[str, Any]]) -> dict:
    """A database expression: the labels at ``path`` with ``docs`` merged in by label id.

    When the stored ids are exactly ``ids`` (the usual case) the lists are
    zipped; otherwise each stored label looks its id up in ``ids`` and is
    left as it is when absent. Either way, no label is added.
    """
    stored = "$" + path
    by_position = {
        "$map": {
            "input": {"$zip": {"inputs": [stored, {"$literal": docs}]}},
            "as": "pair",
            "in": {"$mergeObjects": [{"$first": "$$pair"}, {"$last": "$$pair"}]},
        }
    }
    lookup = {"$indexOfArray": [{"$literal": ids}, "$$label._id"]}
    by_id = {
        "$map": {
            "input": stored,
            "as": "label",
            "in": {
                "$let": {
                    "vars": {"i": lookup},
                    "in": {
                        "$cond": [
                            {"$lt": ["$$i", 0]},
                            "$$label",
                            {
                                "$mergeObjects": [
                                    "$$label",
                                    {"$arrayElemAt": [{"$literal": docs}, "$$i"]},
                                ]
                            },
                        ]
                    },
                }
            },
        }
    }
    same = {"$eq": [f"{stored}._id", {"$literal": ids}]}
    return {"$cond": [same, by_position, by_id]}


def _count_updates(
    eval_key: str, match: RunMatch, sample_ids: Sequence[str]
) -> list[UpdateMany]:
    """``<key>_tp/_fp/_fn`` of every sample, one update per distinct triple.

    Counted as FiftyOne counts them per sample: a match between different
    classes is one FP and one FN.
    """
    counts = _sample_counts(match, len(sample_ids))
    by_value: dict[tuple[int, int, int], list[Any]] = defaultdict(list)
    for sample_id, triple in zip(sample_ids, counts, strict=True):
        by_value[triple].append(ObjectId(sample_id))
    return [
        UpdateMany(
            {"_id": {"$in": ids}},
            {
                "$set": {
                    f"{eval_key}_tp": tp,
                    f"{eval_key}_fp": fp,
                    f"{eval_key}_fn": fn,
                }
            },
        )
        for (tp, fp, fn), ids in by_value.items()
    ]


def _sample_counts(match: RunMatch, num_samples: int) -> list[tuple[int, int, int]]:
    preds, gt, m = match.preds, match.gt, match.gt_match
    matched = m.pred_gt >= 0
    same = match.pred_found
    mismatched = matched & ~same
    unmatched_pred = m.pred_gt < 0
    unmatched_gt = m.gt_pred < 0
    tp = np.bincount(preds.sample[same], minlength=num_samples)
    fp = np.bincount(preds.sample[unmatched_pred | mismatched], minlength=num_samples)
    fn = np.bincount(gt.sample[unmatched_gt], minlength=num_samples)
    fn = fn + np.bincount(preds.sample[mismatched], minlength=num_samples)
    return list(zip(tp.tolist(), fp.tolist(), fn.tolist(), strict=True))


def _number(value: float) -> float | None:
    return None if value != value else float(value)  # NaN -> None
