"""``python -m numvault``: the ``numvault`` command."""

import sys

from .cli import main

sys.exit(main())
