"""``python -m helpers train ...``: see :mod:`helpers.cli`."""

import signal
import sys

try:
    from helpers.cli import main
except KeyboardInterrupt:  # Ctrl-C while the stack is still importing: nothing has started
    print("interrupted: nothing was written", file=sys.stderr)
    sys.exit(130)

status = 130  # a Ctrl-C in the instant between main's return and the next line: main has reported
try:
    status = main()
except KeyboardInterrupt:
    pass
finally:
    # The run is over and reported. From here on a Ctrl-C would only interrupt the interpreter's exit
    # (JAX's atexit clean-up, clear_backends) and print "Exception ignored in atexit callback" with a
    # traceback: ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
sys.exit(status)
