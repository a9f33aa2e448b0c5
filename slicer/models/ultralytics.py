"""Ultralytics YOLO detection, segmentation and oriented boxes behind the ``TileModel`` protocol.

Standard YOLO detect/segment/OBB networks run through our own batch pipeline
(stack same-shaped tiles, pad to the stride, one forward, Ultralytics' NMS,
masks decoded only inside each box, rotated boxes with Ultralytics' rotated
NMS): no per-image letterboxing, no ``Results`` objects, and a tile's
detections never depend on its batch. Other Ultralytics models (RT-DETR,
exported files, ...) go through ``YOLO.predict``.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ModelLoadError
from ..predictions import Predictions
from .base import bounded_map, input_scale, select_device, torch_runtime

#: Batches read ahead of the forward passes (two run at once on a CPU).
MAX_BATCHES_AHEAD = 3
#: Suffixes Ultralytics loads (weights, architectures, exported models).
ULTRALYTICS_SUFFIXES = (".pt", ".yaml", ".yml", ".onnx", ".torchscript", ".engine")

_PAD_VALUE = (
    114  # Ultralytics' letterbox grey, so padded borders look familiar to the model
)


def load_yolo(path: str | Path, *, allow_unsafe_pickle: bool = False) -> Any:
    """Loads ``ultralytics.YOLO`` from a local file, with errors that say what went wrong.

    Safe by default: a ``.pt`` file is read with ``torch.load(weights_only=True)``
    against Ultralytics' allow-list of its own model classes (Ultralytics'
    ``ULTRALYTICS_SAFE_LOAD`` mode, here for this load only), and a model YAML
    is built without ``eval``, so a crafted file cannot run code. Official and
    self-trained Ultralytics checkpoints load this way.

    Args:
        path: a local ``.pt`` / ``.yaml`` / exported model file.
        allow_unsafe_pickle: fully unpickle the file (legacy checkpoints that
            hold other Python objects). Unpickling runs any code the file
            holds: only for files you trust.

    Raises:
        ModelLoadError: no such file, not an Ultralytics model, or (safe
            loading) the file references Python objects outside the allow-list.

    Example::

        >>> load_yolo("models/small-objects-det.pt").task
        'detect'
    """
    from ultralytics import YOLO

    path = Path(path)
    local = path.exists()
    if not local and path.parent != Path("."):
        raise ModelLoadError(f"model file not found: {path}")
    try:
        with _ultralytics_loading(safe=not allow_unsafe_pickle):
            return YOLO(str(path))
    except ModelLoadError:
        raise
    except Exception as error:
        if not local:
            raise ModelLoadError(
                f"could not load {str(path)!r}: it is not a local file, and Ultralytics "
                f"could not download it (no network here?): {error}"
            ) from error
        refused = _refused_global(error)
        if refused:
            raise ModelLoadError(
                f"{path} was not loaded: safe loading refused it because it "
                f"references {refused}, which is not part of an Ultralytics model. "
                "Fully unpickling it would run whatever code it holds. If you "
                "trust this file (e.g. a legacy checkpoint), pass "
                "allow_unsafe_pickle=True (SDK) or set the plugin setting "
                "allow_unsafe_pickle (App)."
            ) from error
        raise ModelLoadError(f"{path} is not an Ultralytics model: {error}") from error


@contextlib.contextmanager
def _ultralytics_loading(*, safe: bool) -> Iterator[None]:
    """Ultralytics' safe (``weights_only``) loading on or off for one load.

    ``ULTRALYTICS_SAFE_LOAD=1`` in the environment keeps it on even for
    ``safe=False``: an administrator's switch wins over a caller's opt-in.
    """
    import torch
    from ultralytics.nn import tasks
    from ultralytics.utils import SAFE_LOAD as SAFE_LOAD_FROM_ENV

    safe_load = getattr(tasks, "_SafeLoad", None)
    if safe_load is None or not safe_load.SUPPORTED:
        if safe:
            raise ModelLoadError(
                "safe loading of .pt files needs ultralytics with ULTRALYTICS_SAFE_LOAD "
                f"support and torch >= 2.6 (found torch {torch.__version__}): upgrade "
                "them, or pass allow_unsafe_pickle=True for files you trust"
            )
        yield
        return
    # One Ultralytics load at a time: the switch is a module global of
    # ultralytics. The lock lives there too, so that every copy of this module
    # (the SDK's and the one FiftyOne imports as a plugin) shares it.
    lock = tasks.__dict__.setdefault("_sliced_inference_load_lock", threading.Lock())
    with lock:
        before = tasks.SAFE_LOAD
        tasks.SAFE_LOAD = safe or SAFE_LOAD_FROM_ENV
        try:
            yield
        finally:
            tasks.SAFE_LOAD = before


def _refused_global(error: BaseException) -> str | None:
    """The Python global that ``weights_only`` unpickling refused, if that is what failed."""
    seen: BaseException | None = error
    while seen is not None:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(seen))
        if found:
            return found.group(1)
        seen = seen.__cause__ or seen.__context__
    return None


class UltralyticsModel:
    """A YOLO model as a ``TileModel``.

    Args:
        yolo: an ``ultralytics.YOLO`` object.
        device: torch device; ``None`` picks cuda, mps or cpu.
        half: run in float16 (GPU only).
        iou: IoU of the model's own per-tile NMS.
        max_det: most detections per input of the size the model was trained
            at; a larger input (a whole image at native resolution) keeps
            proportionally more, so a whole-image run is not capped where the
            same image in tiles is not.
        parallel: on a CPU, run two batches at once on half the cores each
            (see ``predict_batches``).

    Example::

        >>> from ultralytics import YOLO
        >>> model = UltralyticsModel(YOLO("yolov8n.yaml"), device="cpu")
        >>> preds = model.predict_tiles([np.zeros((64, 64, 3), np.uint8)])
        >>> len(preds)
        1
    """

    def __init__(
        self,
        yolo: Any,
        *,
        device: str | None = None,
        half: bool = False,
        iou: float = 0.7,
        max_det: int = 300,
        parallel: bool = True,
    ) -> None:
        if yolo.task not in ("detect", "segment", "obb"):
            raise ModelLoadError(
                f"Ultralytics task {yolo.task!r} is not supported; use a detect, "
                "segment or obb model"
            )
        self.yolo = yolo
        self.device = select_device(device)
        self.runtime = torch_runtime(self.device, half)
        self.half = self.runtime.applied["half"]
        self.iou = iou
        self.max_det = max_det
        self.segments = yolo.task == "segment"
        self.rotated = yolo.task == "obb"
        self.class_names = {int(k): str(v) for k, v in yolo.names.items()}
        self.default_imgsz = _trained_imgsz(yolo)
        self._net = self._prepare_network()
        self.parallel = parallel
        self._pool: ThreadPoolExecutor | None = None
        self._pool_threads = 0

    def _prepare_network(self) -> Any | None:
        """The fused torch network for the fast path, or None to use ``YOLO.predict``."""
        from ultralytics.nn.tasks import DetectionModel, OBBModel, SegmentationModel

        net = self.yolo.model
        if type(net) not in (DetectionModel, SegmentationModel, OBBModel):
            return None
        import torch

        net = net.fuse(verbose=False) if hasattr(net, "fuse") else net
        net = net.to(self.device).eval()
        net = net.half() if self.half else net.float()
        # NHWC convolutions: faster on CPU (oneDNN) and on recent GPUs, and our
        # uint8 NHWC tiles need no transposing copy to get there.
        return net.to(memory_format=torch.channels_last)

    def predict_tiles(
        self,
        tiles: Sequence[np.ndarray],
        *,
        imgsz: int | None = None,
        confidence: float = 0.25,
    ) -> list[Predictions]:
        """Predicts on same-shaped RGB tiles; see ``TileModel``."""
        if not len(tiles):
            return []
        if self._net is None:
            return self._predict_with_ultralytics(tiles, imgsz, confidence)
        from ultralytics.utils.nms import non_max_suppression

        tile_h, tile_w = tiles[0].shape[:2]
        x, scale = self.prepare_batch(tiles, imgsz)
        output = self.forward(x)
        if self.rotated:
            return self._rotated_predictions(
                output, confidence, scale, (tile_h, tile_w)
            )
        if self.segments:
            # Mirrors SegmentationPredictor: protos sit in a nested tuple for
            # PyTorch models and beside the boxes otherwise.
            protos = output[0][1] if isinstance(output[0], tuple) else output[1]
            output = output[0]
        detections = non_max_suppression(
            output,
            confidence,
            self.iou,
            max_det=self.max_detections(x.shape[2:]),
            nc=len(self.class_names) if self.segments else 0,
            end2end=bool(getattr(self._net, "end2end", False)),
        )
        results = []
        for i, det in enumerate(detections):
            det = det.float().cpu().numpy()
            proto = (
                protos[i].float().cpu().contiguous().numpy() if self.segments else None
            )
            results.append(
                self._to_predictions(det, proto, scale, (tile_h, tile_w), x.shape[2:])
            )
        return results

    def max_detections(self, input_hw: tuple[int, int]) -> int:
        """Most detections kept for one input of ``input_hw`` pixels.

        ``max_det`` per trained input area: a 2400x1800 image at native
        resolution holds as many objects as the 40 tiles of 320 px that cover
        it, and Ultralytics' fixed 300 per image would cut it short.
        """
        trained = float(self.default_imgsz) ** 2
        return max(
            self.max_det, math.ceil(self.max_det * input_hw[0] * input_hw[1] / trained)
        )

    def predict_batches(
        self,
        batches: Iterable[Sequence[np.ndarray]],
        *,
        imgsz: int | None = None,
        confidence: float = 0.25,
    ) -> Iterator[list[Predictions]]:
        """``predict_tiles`` on each batch, in order; on a multi-core CPU two
        batches run at once, each on half the cores.

        Two forward passes side by side keep both halves of the CPU busy
        through the many small layers where one pass on all cores waits at
        thread barriers. Each pass always runs with the same thread count, so
        the results do not depend on the order batches finish in.
        """
        run = partial(self.predict_tiles, imgsz=imgsz, confidence=confidence)
        yield from self.map_batches(run, batches)

    def map_batches(
        self, fn: Callable[[Any], Any], items: Iterable[Any]
    ) -> Iterator[Any]:
        """``map(fn, items)`` in order, two at a time on a multi-core CPU (see above)."""
        pool = self._cpu_pool()
        if pool is None:
            yield from map(fn, items)
        else:
            yield from bounded_map(pool, fn, items, MAX_BATCHES_AHEAD)

    def __getstate__(self) -> dict[str, Any]:
        # A thread pool cannot be copied or pickled; a copy makes its own.
        return {**self.__dict__, "_pool": None, "_pool_threads": 0}

    def _cpu_pool(self) -> ThreadPoolExecutor | None:
        """Two workers with half the torch threads each, or None (GPU, one core)."""
        if not self.parallel or self._net is None or self.device != "cpu":
            return None
        import torch

        threads = torch.get_num_threads()
        if threads < 2:
            return None
        if self._pool is None or self._pool_threads != threads:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            per_worker = threads // 2
            self._pool = ThreadPoolExecutor(
                2,
                thread_name_prefix="sliced-inference",
                initializer=torch.set_num_threads,  # thread-local in OpenMP
                initargs=(per_worker,),
            )
            self._pool_threads = threads
        return self._pool

    def prepare_batch(
        self, tiles: Sequence[np.ndarray], imgsz: int | None = None
    ) -> tuple[Any, float]:
        """Same-shaped RGB tiles -> the network's input tensor and the tile-to-input scale."""
        tile_h, tile_w = tiles[0].shape[:2]
        scale = input_scale((tile_h, tile_w), imgsz)
        return self._to_input(_stack_resized(tiles, scale)), scale

    def forward(self, x: Any) -> Any:
        """The network's raw output for an input from ``prepare_batch``."""
        import torch

        with torch.inference_mode():
            return self._net(x)

    def _to_input(self, batch: np.ndarray) -> Any:
        """uint8 NHWC batch -> normalised NCHW tensor padded to the network stride."""
        import torch
        import torch.nn.functional as F

        stride = int(max(self._net.stride))
        h, w = batch.shape[1:3]
        pad_h, pad_w = (
            math.ceil(h / stride) * stride - h,
            math.ceil(w / stride) * stride - w,
        )
        # NHWC uint8 viewed as NCHW: already channels-last in memory, no copy.
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)
        if pad_h or pad_w:
            # Bottom/right padding keeps tile coordinates unchanged.
            x = F.pad(x, (0, pad_w, 0, pad_h), value=_PAD_VALUE)
        x = x.contiguous(memory_format=torch.channels_last)
        x = x.half() if self.half else x.float()
        return x.div_(255.0)

    def _to_predictions(
        self,
        det: np.ndarray,
        proto: np.ndarray | None,
        scale: float,
        tile_hw: tuple[int, int],
        input_hw: tuple[int, int],
    ) -> Predictions:
        tile_h, tile_w = tile_hw
        boxes = det[:, :4] / scale
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, tile_w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, tile_h)
        # Detections that lie wholly in the stride padding have no area left.
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        det, boxes = det[keep], boxes[keep]
        preds = Predictions(
            boxes, det[:, 4], det[:, 5].astype(np.int64), self.class_names
        )
        if proto is None:
            return preds
        masks, mask_boxes = decode_masks(
            det[:, 6:], proto, boxes, scale, input_hw, tile_hw
        )
        nonempty = np.array([m.any() for m in masks], dtype=bool)
        preds.masks, preds.mask_boxes = masks, mask_boxes.reshape(-1, 4)
        return preds.select(nonempty)

    def _rotated_predictions(
        self, output: Any, confidence: float, scale: float, tile_hw: tuple[int, int]
    ) -> list[Predictions]:
        """Rotated boxes from an OBB network's output, like Ultralytics' ``OBBPredictor``."""
        from ultralytics.utils.nms import non_max_suppression

        detections = non_max_suppression(
            output,
            confidence,
            self.iou,
            max_det=self.max_det,
            nc=len(self.class_names),
            rotated=True,
            end2end=bool(getattr(self._net, "end2end", False)),
        )
        return [
            rotated_tile_predictions(
                det.float().cpu().numpy(), scale, tile_hw, self.class_names
            )
            for det in detections
        ]

    def _predict_with_ultralytics(
        self, tiles: Sequence[np.ndarray], imgsz: int | None, confidence: float
    ) -> list[Predictions]:
        """Fallback for networks our pipeline does not know (boxes only)."""
        tile_h, tile_w = tiles[0].shape[:2]
        size = imgsz or max(tile_h, tile_w)
        results = self.yolo.predict(
            [
                np.ascontiguousarray(t[..., ::-1]) for t in tiles
            ],  # YOLO.predict wants BGR
            imgsz=size,
            conf=confidence,
            iou=self.iou,
            max_det=self.max_detections((size, size)),
            device=self.device,
            half=self.half,
            verbose=False,
        )
        if self.rotated:
            return [
                Predictions.from_rotated(
                    r.obb.xywhr.cpu().numpy(),
                    r.obb.conf.cpu().numpy(),
                    r.obb.cls.cpu().numpy().astype(np.int64),
                    self.class_names,
                    clip_wh=(tile_w, tile_h),
                )
                for r in results
            ]
        return [
            Predictions(
                r.boxes.xyxy.cpu().numpy(),
                r.boxes.conf.cpu().numpy(),
                r.boxes.cls.cpu().numpy().astype(np.int64),
                self.class_names,
            )
            for r in results
        ]


def rotated_tile_predictions(
    det: np.ndarray,
    scale: float,
    tile_hw: tuple[int, int],
    class_names: dict[int, str],
) -> Predictions:
    """Rotated NMS output ``(N, 7)`` (``cx, cy, w, h, conf, cls, angle`` in input
    pixels) -> ``Predictions`` in tile pixels, envelopes clipped to the tile.

    Boxes whose envelope lies wholly in the stride padding are dropped.

    Example::

        >>> det = np.array([[20, 10, 8, 4, 0.9, 1, 0.3]], np.float32)
        >>> rotated_tile_predictions(det, 2.0, (64, 64), {1: "ship"}).rboxes.round(2).tolist()
        [[10.0, 5.0, 4.0, 2.0, 0.3]]
    """
    tile_h, tile_w = tile_hw
    rboxes = np.concatenate([det[:, :4] / scale, det[:, 6:7]], axis=1)
    preds = Predictions.from_rotated(
        rboxes, det[:, 4], det[:, 5].astype(np.int64), class_names, (tile_w, tile_h)
    )
    b = preds.boxes
    return preds.select((b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))


def decode_masks(
    coefficients: np.ndarray,
    proto: np.ndarray,
    boxes: np.ndarray,
    scale: float,
    input_hw: tuple[int, int],
    tile_hw: tuple[int, int],
) -> tuple[list[np.ndarray], np.ndarray]:
    """Instance masks of YOLO-seg detections, decoded only inside each box.

    Samples ``coefficients @ proto`` bilinearly at the tile pixels of each
    box (as Ultralytics' upsampling does at input resolution). Only the proto
    cells under the box (plus the one neighbour bilinear sampling reads) are
    combined, so a mask costs its box's area, never the tile's or the image's.

    Returns:
        one bool mask per detection and the int ``xyxy`` tile-pixel box it covers.
    """
    n_coef, proto_h, proto_w = proto.shape
    tile_h, tile_w = tile_hw
    # tile pixel u -> proto coordinate (u + 0.5) * step - 0.5 (half-pixel centres)
    step_x = scale * proto_w / input_hw[1]
    step_y = scale * proto_h / input_hw[0]
    mask_boxes = np.stack(
        [
            np.floor(boxes[:, 0]),
            np.floor(boxes[:, 1]),
            np.ceil(boxes[:, 2]),
            np.ceil(boxes[:, 3]),
        ],
        axis=1,
    ).astype(np.int32)
    mask_boxes[:, [0, 2]] = mask_boxes[:, [0, 2]].clip(0, tile_w)
    mask_boxes[:, [1, 3]] = mask_boxes[:, [1, 3]].clip(0, tile_h)
    # The proto cells each box's samples read: [floor(first), floor(last) + 1].
    first_x = (mask_boxes[:, 0] + 0.5) * step_x - 0.5
    last_x = (mask_boxes[:, 2] - 0.5) * step_x - 0.5
    first_y = (mask_boxes[:, 1] + 0.5) * step_y - 0.5
    last_y = (mask_boxes[:, 3] - 0.5) * step_y - 0.5
    cell_x0 = np.clip(np.floor(first_x).astype(np.int64) - 1, 0, proto_w - 1)
    cell_x1 = np.clip(np.floor(last_x).astype(np.int64) + 2, 1, proto_w)
    cell_y0 = np.clip(np.floor(first_y).astype(np.int64) - 1, 0, proto_h - 1)
    cell_y1 = np.clip(np.floor(last_y).astype(np.int64) + 2, 1, proto_h)
    masks = []
    for i, (x0, y0, x1, y1) in enumerate(mask_boxes):
        if x1 <= x0 or y1 <= y0:
            masks.append(np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), bool))
            continue
        cx0, cx1, cy0, cy1 = cell_x0[i], cell_x1[i], cell_y0[i], cell_y1[i]
        window = proto[:, cy0:cy1, cx0:cx1]
        logit = (coefficients[i] @ window.reshape(n_coef, -1)).reshape(
            cy1 - cy0, cx1 - cx0
        )
        affine = np.array(
            [
                [step_x, 0, (x0 + 0.5) * step_x - 0.5 - cx0],
                [0, step_y, (y0 + 0.5) * step_y - 0.5 - cy0],
            ],
            dtype=np.float64,
        )
        sampled = cv2.warpAffine(
            logit,
            affine,
            (int(x1 - x0), int(y1 - y0)),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        mask = sampled > 0
        # Like Ultralytics' crop_mask: pixels whose index falls outside the float box are off.
        box = boxes[i]
        mask &= ((np.arange(y0, y1) >= box[1]) & (np.arange(y0, y1) < box[3]))[:, None]
        mask &= ((np.arange(x0, x1) >= box[0]) & (np.arange(x0, x1) < box[2]))[None, :]
        masks.append(mask)
    return masks, mask_boxes


def _stack_resized(tiles: Sequence[np.ndarray], scale: float) -> np.ndarray:
    if scale == 1.0:
        return np.stack(tiles)
    h, w = tiles[0].shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(t, size, interpolation=interpolation) for t in tiles])


def _trained_imgsz(yolo: Any) -> int:
    """The input size the checkpoint was trained at (Ultralytics' predict default)."""
    imgsz = yolo.overrides.get("imgsz") or 640
    return int(max(imgsz) if isinstance(imgsz, (list, tuple)) else imgsz)
