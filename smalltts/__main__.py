"""`python -m smalltts ...`: the same CLI as the `smalltts` script."""

import sys

from smalltts.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
