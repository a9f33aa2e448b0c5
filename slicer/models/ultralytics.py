"""Ultralytics YOLO detection, segmentation and oriented boxes behind the ``TileModel`` protocol.

Standard YOLO detect/segment/OBB networks run through our own batch pipeline
(stack same-shaped tiles, pad to the stride, one forward, Ultralytics' NMS,
masks decoded only inside each box, rotated boxes with Ultralytics' rotated
NMS): no per-image letterboxing, no ``Results`` objects, and a tile's
detections never depend on its batch. Other Ultralytics models (RT-DETR,
exported files, ...) go through ``YOLO.predict``.

Only the forward pass depends on the backend: ``TorchNetwork`` (the fused
PyTorch module) or ``openvino_network.OpenVINONetwork`` (the same weights
exported to OpenVINO on a CPU; detect and segment models).
Both take the same uint8 batches and feed the same NMS and mask decoding, so
they agree. Oriented-box models run on PyTorch (``backend="auto"`` picks it).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from ..errors import ConfigError, ModelLoadError
from ..predictions import Predictions
from .base import Runtime, bounded_map, input_scale, select_device, torch_runtime

logger = logging.getLogger(__name__)

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


class Network(Protocol):
    """A forward pass: our uint8 NHWC batch in, ``(predictions, protos)`` out."""

    #: ``"torch"`` or ``"openvino"``: what runs the network.
    backend: str
    #: ``"fp32"``, ``"bf16"`` or ``"int8"``: the numbers it runs with (float16: ``half``).
    precision: str

    def to_input(self, batch: np.ndarray) -> Any:
        """A stride-padded uint8 ``NHWC`` batch as this network's input."""
        ...

    def __call__(self, x: Any) -> tuple[Any, Any | None]:
        """Raw predictions (torch tensor) and mask prototypes (or ``None``)."""
        ...


class TorchNetwork:
    """The fused PyTorch network, channels-last, on ``device``.

    Args:
        net: an Ultralytics ``DetectionModel`` or ``SegmentationModel``.
        device: torch device.
        half: float16 (CUDA).
    """

    backend = "torch"

    def __init__(self, net: Any, device: str, half: bool) -> None:
        import torch

        net = net.fuse(verbose=False) if hasattr(net, "fuse") else net
        net = net.to(device).eval()
        net = net.half() if half else net.float()
        # NHWC convolutions: faster on CPU (oneDNN) and on recent GPUs, and our
        # uint8 NHWC tiles need no transposing copy to get there.
        self.net = net.to(memory_format=torch.channels_last)
        self.device = device
        self.half = half
        self.precision = "fp32"  # float16 is the separate ``half`` setting

    def to_input(self, batch: np.ndarray) -> Any:
        """uint8 NHWC batch -> normalised NCHW tensor (channels-last memory)."""
        import torch

        # NHWC uint8 viewed as NCHW: already channels-last in memory, no copy.
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2)
        x = x.contiguous(memory_format=torch.channels_last)
        x = x.half() if self.half else x.float()
        return x.div_(255.0)

    def __call__(self, x: Any) -> tuple[Any, Any | None]:
        import torch

        with torch.inference_mode():
            output = self.net(x)
        head = output[0] if isinstance(output, (tuple, list)) else output
        # Segmentation heads give (predictions, protos); protos sit in a nested
        # tuple for PyTorch models (as SegmentationPredictor reads them).
        if isinstance(head, tuple):
            return head[0], head[1]
        return head, None


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
            (see ``predict_batches``); ``None`` (default) does so on PyTorch
            only, where it pays (on OpenVINO one stream on all cores measured
            faster).
        backend: ``"auto"`` (OpenVINO for detect/segment models on a CPU,
            PyTorch on a GPU and for oriented boxes), ``"torch"`` or
            ``"openvino"``; ``runtime`` says what runs.
        precision: ``"fp32"``, ``"bf16"`` (OpenVINO, where the CPU has
            native bfloat16; float32 elsewhere, with a warning) or ``"int8"``
            (OpenVINO, calibrated on the first ``calibration_tiles`` tiles it
            is given, see ``calibrate``).
        calibration_tiles: how many tiles calibrate an INT8 model.

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
        parallel: bool | None = None,
        backend: str = "auto",
        precision: str = "fp32",
        calibration_tiles: int = 32,
    ) -> None:
        if yolo.task not in ("detect", "segment", "obb"):
            raise ModelLoadError(
                f"Ultralytics task {yolo.task!r} is not supported; use a detect, "
                "segment or obb model"
            )
        self.yolo = yolo
        self.device = select_device(device)
        self._torch_runtime = torch_runtime(self.device, half)
        self.half = self._torch_runtime.applied["half"]
        self.iou = iou
        self.max_det = max_det
        self.segments = yolo.task == "segment"
        self.rotated = yolo.task == "obb"
        self.class_names = {int(k): str(v) for k, v in yolo.names.items()}
        self.default_imgsz = _trained_imgsz(yolo)
        self.calibration_tiles = calibration_tiles
        self._calibrated_on: str | None = None  # digest of the INT8 calibration tiles
        net = yolo.model
        #: the network's stride (inputs are padded to a multiple of it)
        self.stride = int(max(net.stride)) if hasattr(net, "stride") else 32
        self._end2end = bool(getattr(net, "end2end", False))
        #: what runs the forward pass, or None (``YOLO.predict`` does it all)
        self.network: Network | None = self._choose_network(backend, precision)
        self.parallel = parallel
        self._pool: ThreadPoolExecutor | None = None
        self._pool_threads = 0

    @property
    def backend(self) -> str:
        """What runs the network: ``"openvino"`` or ``"torch"``."""
        return self.network.backend if self.network is not None else "torch"

    @property
    def precision(self) -> str:
        """The network's numbers: ``"fp32"``, ``"bf16"`` or ``"int8"`` (float16 is ``half``)."""
        if self._int8_pending:
            return "int8"  # quantized on the first tiles it is given
        return self.network.precision if self.network is not None else "fp32"

    @property
    def runtime(self) -> Runtime:
        """What this model runs with: device, half, backend and precision.

        ``backend`` is ``"torch"`` where ``"auto"`` picked PyTorch (a GPU, an
        oriented-box model) or fell back to it (OpenVINO missing or its
        export failed: logged once, as a warning that says why).
        """
        applied = {
            **self._torch_runtime.applied,
            "backend": self.backend,
            "precision": self.precision,
        }
        return Runtime(applied, self._torch_runtime.ignored)

    @property
    def needs_calibration(self) -> bool:
        """True while an INT8 model waits for its calibration tiles (``calibrate``)."""
        return self._int8_pending

    def _choose_network(self, backend: str, precision: str) -> Network | None:
        """The network for ``backend``: OpenVINO or torch, falling back as ``auto`` allows."""
        from ultralytics.nn.tasks import DetectionModel, OBBModel, SegmentationModel

        if backend not in ("auto", "torch", "openvino"):
            raise ConfigError(
                f"backend must be auto, torch or openvino; got {backend!r}"
            )
        standard = type(self.yolo.model) in (DetectionModel, SegmentationModel)
        self._int8_pending = False
        if backend == "openvino":
            if self.device != "cpu":
                raise ConfigError(
                    f"the OpenVINO backend runs on the CPU; device is {self.device!r} "
                    "(use device='cpu', or backend='torch' on a GPU)"
                )
            if not standard:
                raise ModelLoadError(
                    "the OpenVINO backend runs Ultralytics YOLO detect/segment "
                    f"networks; this model is a {type(self.yolo.model).__name__} "
                    "(use backend 'auto' or 'torch': it runs on PyTorch)"
                )
        use_openvino = backend == "openvino" or (
            backend == "auto" and standard and self.device == "cpu"
        )
        if precision != "fp32" and not use_openvino:
            raise ConfigError(
                f"precision {precision!r} runs on the OpenVINO backend (a CPU and an "
                f"Ultralytics detect/segment model); here the backend is torch on "
                f"{self.device}"
            )
        if use_openvino and precision == "int8":
            _require_nncf()
        if use_openvino:
            try:
                network = _openvino_network(self.yolo, precision)
            except Exception as error:
                if backend == "openvino":
                    raise ModelLoadError(
                        f"cannot run this model on OpenVINO: {_reason(error)}"
                    ) from error
                _warn_fallback(_reason(error))
            else:
                self._int8_pending = precision == "int8"
                return network
        if type(self.yolo.model) not in (DetectionModel, SegmentationModel, OBBModel):
            return None
        return TorchNetwork(self.yolo.model, self.device, self.half)

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
        if self.network is None:
            return self._predict_with_ultralytics(tiles, imgsz, confidence)
        if self._int8_pending:
            self.calibrate(tiles, imgsz=imgsz)
        tile_h, tile_w = tiles[0].shape[:2]
        scale = input_scale((tile_h, tile_w), imgsz)
        batch = self._input_batch(tiles, scale)
        output, protos = self.forward(self.network.to_input(batch))
        detections = self._nms(output, confidence, batch.shape[1:3])
        if self.rotated:
            return [
                rotated_tile_predictions(
                    det.float().cpu().numpy(), scale, (tile_h, tile_w), self.class_names
                )
                for det in detections
            ]
        results = []
        for i, det in enumerate(detections):
            det = det.float().cpu().numpy()
            proto = (
                protos[i].float().cpu().contiguous().numpy() if self.segments else None
            )
            results.append(
                self._to_predictions(
                    det, proto, scale, (tile_h, tile_w), batch.shape[1:3]
                )
            )
        return results

    def _nms(
        self, output: Any, confidence: float, input_hw: tuple[int, int]
    ) -> list[Any]:
        """Ultralytics' NMS per image (rotated for OBB), on one torch thread
        and its candidates only.

        The candidates are the anchors whose best class score passes
        ``confidence``, which is the first thing Ultralytics' NMS keeps anyway
        (so the result is the same), minus the work on the thousands of
        anchors it would drop. The tensors are small: more threads only wait
        on each other (on a busy CPU, several times slower).
        """
        from ultralytics.utils.nms import non_max_suppression

        nms = partial(
            non_max_suppression,
            conf_thres=confidence,
            iou_thres=self.iou,
            # Rotated boxes keep Ultralytics' OBBPredictor cap.
            max_det=self.max_det if self.rotated else self.max_detections(input_hw),
            nc=len(self.class_names) if self.segments or self.rotated else 0,
            rotated=self.rotated,
        )
        with _one_torch_thread():
            if self._end2end:
                return nms(output, end2end=True)
            scores = output[:, 4 : 4 + len(self.class_names)]
            candidates = scores.amax(1) > confidence
            return [
                nms(pred[None, :, _candidate_columns(keep)])[0]
                for pred, keep in zip(output, candidates, strict=True)
            ]

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

    def calibrate(
        self, tiles: Iterable[np.ndarray], *, imgsz: int | None = None
    ) -> None:
        """Quantizes an INT8 model on the first ``calibration_tiles`` of ``tiles``.

        Tiles are RGB uint8 arrays (as ``predict_tiles`` takes them; they may
        differ in shape). The quantized model is cached by the tiles' digest,
        so the same tiles never quantize twice. Without this call, an INT8
        model calibrates on the first tiles it predicts on (the SDK passes the
        first tiles of the run, across images, see ``sliced.calibrate``). A
        no-op for FP32 models, and while ``tiles`` is empty.

        Example::

            >>> model = UltralyticsModel(YOLO("models/small-objects-det.pt"), precision="int8")  # doctest: +SKIP
            >>> model.calibrate(tiles_of_my_images)  # doctest: +SKIP
        """
        if not self._int8_pending and self.precision != "int8":
            return
        from .openvino_network import (
            OpenVINONetwork,
            calibration_digest,
            exported_dir,
            quantized_dir,
        )

        chosen = list(itertools.islice(tiles, self.calibration_tiles))
        if not chosen:
            return  # nothing to calibrate on yet: stays pending
        batches = [
            self._input_batch([t], input_scale(t.shape[:2], imgsz)) for t in chosen
        ]
        digest = calibration_digest(batches)
        # A run over the same first tiles (an App re-run, a resumed run) keeps
        # the network those tiles made, without hashing the weights again.
        if digest != self._calibrated_on:
            folder = quantized_dir(self.yolo, exported_dir(self.yolo), batches)
            if getattr(self.network, "folder", None) != folder:
                self.network = OpenVINONetwork(folder, precision="int8")
            self._calibrated_on = digest
        self._int8_pending = False

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
        if self._int8_pending:
            batches = self._calibrated_on_first(batches, imgsz)
        run = partial(self.predict_tiles, imgsz=imgsz, confidence=confidence)
        yield from self.map_batches(run, batches)

    def _calibrated_on_first(
        self, batches: Iterable[Sequence[np.ndarray]], imgsz: int | None
    ) -> Iterator[Sequence[np.ndarray]]:
        """Calibrates on the first batches' tiles, then yields every batch."""
        batches = iter(batches)
        first: list[Sequence[np.ndarray]] = []
        for batch in batches:
            first.append(batch)
            if sum(len(b) for b in first) >= self.calibration_tiles:
                break
        self.calibrate((t for b in first for t in b), imgsz=imgsz)
        return itertools.chain(first, batches)

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
        # Two streams pay on PyTorch; on OpenVINO they measured slower than
        # one stream on all cores (docs/benchmarks.md, OpenVINO quick run).
        parallel = self.backend == "torch" if self.parallel is None else self.parallel
        if not parallel or self.network is None or self.device != "cpu":
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
        """Same-shaped RGB tiles -> the network's input and the tile-to-input scale."""
        scale = input_scale(tiles[0].shape[:2], imgsz)
        return self.network.to_input(self._input_batch(tiles, scale)), scale

    def forward(self, x: Any) -> tuple[Any, Any | None]:
        """``(predictions, mask protos or None)`` for an input from ``prepare_batch``."""
        return self.network(x)

    def _input_batch(self, tiles: Sequence[np.ndarray], scale: float) -> np.ndarray:
        """Tiles resized by ``scale``, stacked (uint8 NHWC) and padded to the stride."""
        batch = _stack_resized(tiles, scale)
        h, w = batch.shape[1:3]
        pad_h = math.ceil(h / self.stride) * self.stride - h
        pad_w = math.ceil(w / self.stride) * self.stride - w
        if pad_h or pad_w:
            # Bottom/right padding keeps tile coordinates unchanged.
            batch = np.pad(
                batch,
                ((0, 0), (0, pad_h), (0, pad_w), (0, 0)),
                constant_values=_PAD_VALUE,
            )
        return batch

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


def _candidate_columns(keep: Any) -> Any:
    """The indices of the candidate anchors (``keep``), never exactly six of them.

    Ultralytics' NMS reads an output whose last dimension is 6 as an
    end-to-end model's ``(x1, y1, x2, y2, score, class)`` rows: six candidate
    columns would come back as garbage boxes and class ids. A seventh column,
    an anchor below the threshold, is dropped by the NMS's first filter.
    """
    import torch

    index = keep.nonzero().squeeze(1)
    if len(index) == 6:
        spare = (~keep).nonzero().squeeze(1)[:1]
        index = torch.cat([index, spare])
    return index


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Torch on one thread (in this thread) for the block, then as it was."""
    import torch

    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


def _openvino_network(yolo: Any, precision: str) -> Network:
    """The OpenVINO network of ``yolo`` (the FP32 export, cached once).

    INT8 starts from it (quantized on the first tiles, see ``calibrate``);
    bf16 compiles it in bfloat16 where the CPU has native bfloat16.
    """
    from .openvino_network import OpenVINONetwork, cpu_has_bf16, exported_dir

    runs = "fp32"
    if precision == "bf16":
        if cpu_has_bf16():
            runs = "bf16"
        else:
            logger.warning(
                "precision 'bf16': this CPU has no native bfloat16, running "
                "float32 (the run record says 'fp32')"
            )
    return OpenVINONetwork(exported_dir(yolo), precision=runs)


def _require_nncf() -> None:
    try:
        import nncf  # noqa: F401
    except ImportError as error:
        raise ModelLoadError(
            f"precision 'int8' quantizes with NNCF, which is not installed ({error}); "
            "pip install nncf, or use precision 'fp32'"
        ) from error


#: Fallback reasons already warned about in this process (one warning each).
_WARNED: set[str] = set()


def _warn_fallback(reason: str) -> None:
    if reason not in _WARNED:
        _WARNED.add(reason)
        logger.warning(
            "backend 'auto': OpenVINO cannot run this model (%s); running it on "
            "PyTorch (fp32) instead. Install openvino (and nncf for int8) to get "
            "the faster CPU backend, or pass backend='torch' to silence this.",
            reason,
        )


def _reason(error: BaseException) -> str:
    if isinstance(error, ImportError):
        return f"the openvino package is not installed ({error})"
    return f"{type(error).__name__}: {error}"


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
