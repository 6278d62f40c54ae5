"""``python -m helpers train ...``: see :mod:`helpers.cli`."""

import sys

try:
    from helpers.cli import main
except KeyboardInterrupt:  # Ctrl-C while the stack is still importing: nothing has started
    print("interrupted: nothing was written", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
