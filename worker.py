"""`python worker.py`: the worker from a checkout (installed, it is `seedance-worker`)."""

from seedance_pipeline.worker import main

if __name__ == "__main__":
    main()
