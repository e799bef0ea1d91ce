"""``python -m ttdm`` is the ``ttdm`` command."""

import sys

from ttdm.launcher import main

sys.exit(main())
