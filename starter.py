"""`python starter.py ...`: the CLI from a checkout (installed, it is the `seedance` command)."""

from seedance_pipeline.cli import main

if __name__ == "__main__":
    main()
