"""Peak memory of one forward pass by model input size: the figure behind ``imgsz``'s bound.

``slicer.options.BYTES_PER_INPUT_PIXEL`` (the estimate the options give when
they refuse an input size, and the App's rule for running a job delegated)
comes from this measurement. Each (model, size) runs in a fresh process: the
model is loaded and warmed up at 320 px, the kernel's peak (``VmHWM``) is
reset, then one whole-image prediction runs on a 400x300 image scaled to
``imgsz`` (longer side). Peak minus the resident size before it, per input
pixel, is the figure.

    .venv/bin/python -m bench.input_memory            # both bundled models, 1280-5120 px
    .venv/bin/python -m bench.input_memory --sizes 640 1280
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MODELS = ("small-objects-det.pt", "small-objects-seg.pt")
#: The image predicted on (height, width); imgsz scales its longer side.
IMAGE_HW = (300, 400)

_CHILD = """
import json, sys
import numpy as np
from sliced_inference.slicer import PredictOptions, load_model, predict_full_image

def status_mb(key):
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith(key)).split()[1]) / 1024

model = load_model(sys.argv[1], device="cpu")
image = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
predict_full_image(image, model, PredictOptions(imgsz=320))
before = status_mb("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM: loading peaked higher than what we measure
predict_full_image(image, model, PredictOptions(imgsz=int(sys.argv[2])))
print(json.dumps({"peak_mb": status_mb("VmHWM") - before}))
"""


def measure(model: Path, imgsz: int) -> dict[str, float]:
    """Peak memory (MiB) above the loaded model of one prediction at ``imgsz``, and bytes per input pixel."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(model), str(imgsz)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    peak_mb = json.loads(result.stdout.strip().splitlines()[-1])["peak_mb"]
    height, width = IMAGE_HW[0] * imgsz // IMAGE_HW[1], imgsz
    return {"peak_mb": peak_mb, "bytes_per_pixel": peak_mb * 2**20 / (width * height)}


def main(argv: list[str] | None = None) -> None:
    """Prints one line per (model, size)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1280, 2560, 5120])
    args = parser.parse_args(argv)
    for name in MODELS:
        for size in args.sizes:
            figures = measure(REPO_ROOT / "models" / name, size)
            print(
                f"{name:22} imgsz {size:5}  peak +{figures['peak_mb']:7.0f} MiB  "
                f"{figures['bytes_per_pixel']:5.0f} bytes per input pixel"
            )


if __name__ == "__main__":
    main()
