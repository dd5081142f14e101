"""`python -m seedance_pipeline.stack up|down|demo` (the Makefile's up, down and demo)."""

import os
import sys

from seedance_pipeline.stack.embedded import main

code = main(sys.argv[1:])
sys.stdout.flush()
sys.stderr.flush()
# Skip interpreter teardown: the SDK's native runtime (used to wait for the worker's pollers)
# has been seen to abort with "PyGILState_Release" during finalisation, turning a clean exit
# into a crash code.
os._exit(code)
