"""Benchmarks of sliced inference against SAHI and supervision.

One command runs everything and writes ``docs/benchmarks.md``::

    .venv/bin/python -m bench.run            # full run (about half an hour on 2 CPU cores)
    .venv/bin/python -m bench.run --quick --out /tmp/bench.md   # smoke test

Modules: ``peers`` (the three tools behind one interface), ``evaluate`` (one
COCO-style AP50 evaluator), ``timing`` (interleaved medians), ``floor`` (the
bare network forward), ``memory`` (peak RSS per tool in a child process),
``scenes`` (synthetic benchmark images), ``report`` (the Markdown), ``run``
(the command line), ``profile`` (pyinstrument on our pipeline).
"""
