"""``python -m xds`` runs the command line."""

import sys

from xds.cli import main

sys.exit(main())
