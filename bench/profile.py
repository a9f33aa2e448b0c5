"""Where our time goes: pyinstrument on ``predict_sliced`` (or a peer) for one image.

Usage::

    .venv/bin/python -m bench.profile                       # detection, 3200x2400
    .venv/bin/python -m bench.profile --task seg --density 100
    .venv/bin/python -m bench.profile --tool sahi --size 1600 1200
"""

from __future__ import annotations

import argparse
import os

from .peers import Settings, build_tool
from .run import DET_MODEL, SEG_MODEL, _class_names
from .scenes import generate


def main(argv: list[str] | None = None) -> None:
    """Profiles a few runs of one tool after a warm-up and prints the call tree."""
    from pyinstrument import Profiler

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["det", "seg"], default="det")
    parser.add_argument("--tool", default="ours")
    parser.add_argument("--size", nargs=2, type=int, default=[3200, 2400])
    parser.add_argument("--density", type=float, help="small objects per megapixel")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--html", help="also write an HTML report here")
    args = parser.parse_args(argv)

    os.environ.setdefault("YOLO_OFFLINE", "1")
    model = DET_MODEL if args.task == "det" else SEG_MODEL
    settings = Settings(batch_size=args.batch_size, device=args.device)
    tool = build_tool(args.tool, model, settings)
    options = {} if args.density is None else {"density": args.density}
    image = generate(7, *args.size, _class_names(model), **options)
    prepared = tool.prepare(image.image)
    settings.pin_threads()
    tool.run(prepared)
    settings.pin_threads()
    profiler = Profiler(interval=0.001)
    profiler.start()
    for _ in range(args.runs):
        tool.run(prepared)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False))
    if args.html:
        with open(args.html, "w") as handle:
            handle.write(profiler.output_html())


if __name__ == "__main__":
    main()
