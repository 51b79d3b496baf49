"""``python -m maskprep``: the ``maskprep`` command."""

import sys

from maskprep import main

sys.exit(main())
