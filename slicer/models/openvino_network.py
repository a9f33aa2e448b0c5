"""Ultralytics detect/segment networks on OpenVINO: export once, compile per shape.

- **Export**: the network goes through Ultralytics' own exporter
  (``format="openvino"``, dynamic input shape) into the export cache
  (``export_cache``), keyed by the weights' content hash, the task, the input
  shape, the precision and the OpenVINO and Ultralytics versions. Every later
  load, in any process, reads that entry; the entry is a normal Ultralytics
  OpenVINO directory (``YOLO(<entry>)`` loads it).
- **INT8**: the FP32 export quantized with NNCF, calibrated on tiles of the
  user's own images, cached by the same key plus a digest of those tiles.
  The detection head stays in floating point (as Ultralytics' INT8 export
  keeps it).
- **Input**: our uint8 RGB ``NHWC`` batches go in as they are; OpenVINO's
  pre-processing (in the compiled graph) turns them into the ``NCHW`` floats
  the network takes, so no transposing copy is made in Python.
- **Shapes and threads**: each input shape is compiled once (static shapes
  run fastest) and kept, per calling thread, with that thread's torch thread
  count (``torch.get_num_threads()``, which follows ``OMP_NUM_THREADS`` and
  ``torch.set_num_threads``). Our two-stream CPU scheme then gives each of its
  two workers its own compiled model on half the cores.

Pre- and post-processing (resizing, stride padding, NMS, mask decoding) stay
in ``ultralytics.UltralyticsModel``: only the forward pass runs here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import shutil
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .export_cache import cached_entry

logger = logging.getLogger(__name__)

#: Compiled (thread, shape) pairs kept (a baseline over images of many
#: aspect ratios has one shape per ratio; two-stream workers one each).
COMPILED_SHAPES = 24
#: Input size the dynamic export is traced at (any shape runs afterwards).
TRACE_IMGSZ = 640
#: Bumped when the layout of an export entry changes.
ENTRY_FORMAT = 1
#: How Ultralytics recognises an OpenVINO directory (so ``YOLO(<entry>)`` loads it).
ULTRALYTICS_SUFFIX = "_openvino_model"


def openvino_version() -> str:
    """The installed OpenVINO version; raises ``ImportError`` when it is not installed."""
    import openvino

    return openvino.__version__


@functools.cache
def openvino_core() -> Any:
    """The process's one ``openvino.Core``.

    One, not one per model: each Core loads its own CPU plugin, which gives
    the calling thread an alternate signal stack and puts the previous one
    back when it is released; Cores released out of order leave a freed
    stack installed, and the next signal (a child process exiting) kills
    the process.
    """
    import openvino as ov

    core = ov.Core()
    # Read weights into memory rather than map the files: a cache entry may
    # be rebuilt (or damaged) while this process runs.
    core.set_property({"ENABLE_MMAP": False})
    # OpenVINO's bindings set up their numpy API on first use; two threads
    # doing it at once (our two streams' first inference) deadlocked: one
    # waits for the GIL inside the set-up while the other holds the GIL and
    # waits for the set-up. Done here, once, in the loading thread.
    ov.Tensor(np.zeros(1, np.float32)).data.sum()
    return core


def cpu_has_bf16() -> bool:
    """True where OpenVINO's CPU plugin computes in bfloat16 natively (AVX-512 BF16, AMX)."""
    return "BF16" in openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def weights_digest(net: Any) -> str:
    """SHA-256 of a torch module's parameters and buffers (names, shapes and bytes)."""
    import torch

    sha = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        sha.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        sha.update(flat.view(torch.uint8).numpy())
    return sha.hexdigest()


def export_key(yolo: Any, precision: str = "fp32") -> dict[str, Any]:
    """What an export entry is made from (its cache key)."""
    import ultralytics

    return {
        "format": ENTRY_FORMAT,
        "weights": weights_digest(yolo.model),
        "task": yolo.task,
        "input": "dynamic [N, 3, H, W]",
        "precision": precision,
        "openvino": openvino_version(),
        "ultralytics": ultralytics.__version__,
    }


def exported_dir(yolo: Any) -> Path:
    """The FP32 OpenVINO export of ``yolo`` in the cache (exported on first use).

    Example::

        >>> from ultralytics import YOLO
        >>> folder = exported_dir(YOLO("models/small-objects-det.pt"))  # doctest: +SKIP
        >>> YOLO(str(folder), task="detect")  # Ultralytics runs it too  # doctest: +SKIP
    """
    return cached_entry(
        "openvino", export_key(yolo), partial(_export, yolo), ULTRALYTICS_SUFFIX
    )


def calibration_digest(calibration: Sequence[np.ndarray]) -> str:
    """SHA-256 of INT8 calibration batches (shapes and pixels): what an INT8 model is made from."""
    sha = hashlib.sha256()
    for batch in calibration:
        sha.update(str(batch.shape).encode())
        sha.update(np.ascontiguousarray(batch))
    return sha.hexdigest()


def quantized_dir(yolo: Any, fp32_dir: Path, calibration: Sequence[np.ndarray]) -> Path:
    """The INT8 model of ``yolo`` calibrated on ``calibration`` (uint8 NHWC batches).

    Cached by the FP32 key plus a digest of the calibration batches, so the
    same tiles give the same model without quantizing again.
    """
    key = {
        **export_key(yolo, "int8"),
        "calibration": calibration_digest(calibration),
        "calibration_tiles": int(sum(len(b) for b in calibration)),
    }
    return cached_entry(
        "openvino",
        key,
        partial(_quantize, fp32_dir, list(calibration)),
        ULTRALYTICS_SUFFIX,
    )


class OpenVINONetwork:
    """The forward pass of an exported Ultralytics network, compiled per input shape.

    Args:
        folder: an export entry (``exported_dir`` or ``quantized_dir``).
        precision: what runs, reported as such: ``"fp32"`` or ``"int8"``
            (what the entry holds), or ``"bf16"`` (an FP32 entry computed in
            bfloat16: the caller checks ``cpu_has_bf16`` first). float32 is
            pinned otherwise, though OpenVINO would pick bfloat16 by itself
            on such CPUs: runs then give PyTorch's numbers.

    Example::

        >>> net = OpenVINONetwork(exported_dir(yolo))  # doctest: +SKIP
        >>> preds, protos = net(np.zeros((1, 640, 640, 3), np.uint8))  # doctest: +SKIP
    """

    backend = "openvino"

    def __init__(self, folder: Path, precision: str = "fp32") -> None:
        self.folder = folder
        self.precision = precision
        self._core = openvino_core()
        self._model = _with_uint8_nhwc_input(self._core.read_model(str(_xml(folder))))
        self._requests: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def to_input(self, batch: np.ndarray) -> np.ndarray:
        """Our uint8 ``NHWC`` batch, as the compiled model takes it (no copy)."""
        return np.ascontiguousarray(batch)

    def __call__(self, x: np.ndarray) -> tuple[Any, Any | None]:
        """``(predictions, mask prototypes or None)`` as torch tensors, for NMS."""
        import torch

        request = self._request(tuple(x.shape))
        # Outputs are copied out of the request's buffers (reused next call).
        results = request.infer({0: x}, share_inputs=True, share_outputs=False)
        tensors = [torch.from_numpy(o) for o in results.to_tuple()]
        protos = next((t for t in tensors if t.ndim == 4), None)
        preds = next(t for t in tensors if t.ndim == 3)
        return preds, protos

    def _request(self, shape: tuple[int, ...]) -> Any:
        """This thread's infer request for ``shape`` at its thread count (compiled once).

        Kept here, not in thread-local storage, so that compiled models are
        released with this object, never while a worker thread exits.
        """
        import torch

        threads = torch.get_num_threads()
        key = (threading.get_ident(), shape, threads)
        with self._lock:
            request = self._requests.get(key)
            if request is not None:
                self._requests.move_to_end(key)
                return request
        model = self._model.clone()
        model.reshape({model.inputs[0]: list(shape)})
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            # The same float32 numbers as PyTorch (CPUs with bf16 would
            # otherwise run bf16 by default).
            "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
        }
        request = self._core.compile_model(model, "CPU", config).create_infer_request()
        with self._lock:
            self._requests[key] = request
            while len(self._requests) > COMPILED_SHAPES:
                self._requests.popitem(last=False)
        return request

    def __getstate__(self) -> dict[str, Any]:
        # Compiled models stay with their process and threads; a copy recompiles.
        return {"folder": self.folder, "precision": self.precision}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["folder"], state["precision"])


def _with_uint8_nhwc_input(model: Any) -> Any:
    """The model with uint8 NHWC input, converted to NCHW float / 255 inside the graph."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0)
    return ppp.build()


def _xml(folder: Path) -> Path:
    found = sorted(folder.glob("*.xml"))
    if not found:
        raise FileNotFoundError(f"no OpenVINO model (.xml) in {folder}")
    return found[0]


def _export(yolo: Any, folder: Path) -> None:
    """Ultralytics' OpenVINO export of ``yolo`` with a dynamic input, into ``folder``."""
    import copy

    from ultralytics.engine.exporter import Exporter

    from .ultralytics import _ultralytics_loading

    logger.info(
        "exporting the %s model to OpenVINO in %s (once: later loads reuse it)",
        yolo.task,
        folder.parent,
    )

    net = copy.copy(yolo.model)  # the exporter copies it again before changing it
    # The exporter writes next to the weights it was loaded from: here.
    net.pt_path = str(folder / "model.pt")
    args = {
        **yolo.overrides,
        "format": "openvino",
        "imgsz": TRACE_IMGSZ,
        "dynamic": True,
        "batch": 1,
        "quantize": None,  # float32: INT8 is ours (calibrated on the user's tiles)
        "nms": False,
        "data": None,
        "device": "cpu",
        "verbose": False,
        "mode": "export",
    }
    # The network was loaded safely (``load_yolo``); anything the exporter
    # loads itself goes through Ultralytics' safe loading too.
    with (
        _ultralytics_loading(safe=True),
        _quiet_ultralytics(),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's notice
        produced = Path(Exporter(overrides=args)(model=net))
    for item in produced.iterdir():
        shutil.move(str(item), folder / item.name)
    produced.rmdir()


def _quantize(fp32_dir: Path, calibration: list[np.ndarray], folder: Path) -> None:
    """NNCF post-training INT8 quantization of the FP32 export, into ``folder``."""
    import nncf
    import openvino as ov

    logger.info(
        "quantizing to INT8 on %d calibration tiles (once for these tiles)",
        sum(len(b) for b in calibration),
    )
    model = openvino_core().read_model(str(_xml(fp32_dir)))
    inputs = [
        np.ascontiguousarray(b.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
        for b in calibration
    ]
    # NNCF prints an INFO line per float op and its own progress bars to
    # stdout: noise inside a run's progress bar (its warnings still show).
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantized = nncf.quantize(
                model,
                nncf.Dataset(inputs),
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=len(inputs),
                ignored_scope=_float_head(model),
            )
    finally:
        nncf_logger.setLevel(level)
    xml = _xml(fp32_dir)
    ov.save_model(quantized, str(folder / xml.name), compress_to_fp16=False)
    for extra in fp32_dir.glob("*.yaml"):  # Ultralytics' metadata
        shutil.copy(extra, folder / extra.name)


def _float_head(model: Any) -> Any:
    """Keeps the head's box decoding (DFL) and sigmoids in float, as Ultralytics does."""
    import nncf

    operations = model.get_ordered_ops()
    sigmoids = [
        op.get_friendly_name() for op in operations if op.get_type_name() == "Sigmoid"
    ]
    if not sigmoids:
        return None
    head = sigmoids[-1].split("/", 1)[0]
    return nncf.IgnoredScope(
        names=[
            op.get_friendly_name()
            for op in operations
            if op.get_type_name() == "Sigmoid"
            or op.get_friendly_name().startswith((f"{head}/", f"{head}.dfl"))
        ]
    )


@contextlib.contextmanager
def _quiet_ultralytics() -> Iterator[None]:
    """Ultralytics' export log silenced but for errors (our own log says what happens)."""
    from ultralytics.utils import LOGGER

    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        yield
    finally:
        LOGGER.setLevel(level)
