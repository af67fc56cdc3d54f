"""``python -m converters.worker TARGET RUN_DIR OUT_DIR OPTIONS_JSON`` (used by :mod:`converters.isolate`)."""

import sys

from converters.isolate import run_worker

if __name__ == "__main__":
    sys.exit(run_worker(sys.argv[1:]))
