import sys

from seedance_pipeline.stack.embedded import main

sys.exit(main(sys.argv[1:]))
