"""``python -m helpers train ...``: see :mod:`helpers.cli`."""

import sys

from helpers.cli import main

sys.exit(main())
