"""What a server's administrator decides for runs started from the App.

Two settings, read from FiftyOne's App config (``~/.fiftyone/app_config.json``,
or the file ``FIFTYONE_APP_CONFIG_PATH`` names) under
``plugins["@slicer/sliced-inference"]``::

    {"plugins": {"@slicer/sliced-inference": {
        "model_dirs": ["/srv/models"],
        "allow_unsafe_pickle": false
    }}}

- ``model_dirs``: when set, the App's operators load only models inside these
  directories (and the plugin's bundled ones); the environment variable
  ``SLICED_INFERENCE_MODEL_DIRS`` (paths joined by ``os.pathsep``) does the
  same when the App config does not set it. Paths are resolved (``..`` and
  symbolic links) before they are compared, and Hugging Face hub ids are
  refused, so a form cannot reach a file elsewhere on the server.
- ``allow_unsafe_pickle``: fully unpickle ``.pt`` files that safe loading
  refuses. Off by default: a crafted ``.pt`` would run code on the server.

They are never read from operator parameters or a dataset's App config: anyone
who can open the App can send parameters, and anyone who can edit a dataset
can change its App config. The SDK is not restricted by them (a Python caller
already runs code of their choice); it has its own ``allow_unsafe_pickle``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fiftyone as fo

#: The plugin's name: its key in the App config's ``plugins``.
PLUGIN_NAME = "@slicer/sliced-inference"
#: Environment variable with the allowed model directories (``os.pathsep``-joined).
MODEL_DIRS_ENV = "SLICED_INFERENCE_MODEL_DIRS"
#: Models shipped with the plugin: always allowed.
BUNDLED_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


def plugin_settings() -> dict[str, Any]:
    """The plugin's settings in FiftyOne's App config (empty when none are set)."""
    plugins = getattr(fo.app_config, "plugins", None) or {}
    return dict(plugins.get(PLUGIN_NAME) or {})


def allow_unsafe_pickle() -> bool:
    """Whether the administrator allowed full unpickling of ``.pt`` files (default: no)."""
    return plugin_settings().get("allow_unsafe_pickle") is True


def allowed_model_dirs() -> list[Path] | None:
    """The directories App runs may load models from, resolved; ``None``: anywhere.

    Example::

        >>> allowed_model_dirs()  # doctest: +SKIP
        [PosixPath('/srv/models'), PosixPath('.../sliced_inference/models')]
    """
    configured = plugin_settings().get("model_dirs")
    if configured is None:
        configured = os.environ.get(MODEL_DIRS_ENV) or None
    if configured is None:
        return None
    if isinstance(configured, str):
        configured = configured.split(os.pathsep)
    dirs = _resolved(configured)
    return [*dirs, BUNDLED_MODELS_DIR.resolve()]


def model_location_problem(spec: Any) -> str | None:
    """Why the App may not load ``spec`` under the allow-list; ``None`` if it may.

    Example::

        >>> model_location_problem("/tmp/evil.pt")  # doctest: +SKIP
        'This server runs only models in /srv/models, ...; /tmp/evil.pt is outside them'
    """
    dirs = allowed_model_dirs()
    if dirs is None or not isinstance(spec, str) or not spec.strip():
        return None
    path = Path(os.path.expanduser(spec.strip()))
    where = ", ".join(str(d) for d in dirs)
    if not path.exists():
        return (
            f"This server runs only models in {where}; {spec.strip()!r} is not "
            "a file or directory there (hub ids are not allowed)"
        )
    real = path.resolve()
    if any(real == d or d in real.parents for d in dirs):
        return None
    return f"This server runs only models in {where}; {real} is outside them"


def _resolved(paths: Sequence[Any]) -> list[Path]:
    return [
        Path(os.path.expanduser(str(p).strip())).resolve()
        for p in paths
        if str(p).strip()
    ]
