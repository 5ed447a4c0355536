"""``python -m scene3d.cli``: the same as the ``scene3d`` command."""

import sys

from scene3d.cli import main

sys.exit(main())
