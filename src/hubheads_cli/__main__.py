"""`python -m hubheads_cli ARGS`: the `hubheads` command."""

import sys

from hubheads_cli import main

sys.exit(main())
