"""``python -m ferrogym.agents`` is the ``ferrogym`` command."""

import sys

from .cli import main

sys.exit(main())
