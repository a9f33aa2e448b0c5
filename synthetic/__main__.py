"""``python -m sliced_inference.synthetic``: see ``cli``."""

import sys

from .cli import main

sys.exit(main())
