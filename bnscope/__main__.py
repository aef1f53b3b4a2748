"""`python -m bnscope` runs the command-line tool."""

import sys

from bnscope.cli import main

if __name__ == "__main__":
    sys.exit(main())
