"""`python -m switchman` runs the command line interface."""

from switchman.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
