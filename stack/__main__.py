import sys

from stack.embedded import main

sys.exit(main(sys.argv[1:]))
