"""``python -m ttdm`` is the ``ttdm`` command."""

import sys

from ttdm.cli import main

sys.exit(main())
