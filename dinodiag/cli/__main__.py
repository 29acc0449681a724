"""``python -m dinodiag.cli``: the same as ``python -m dinodiag``."""

import sys

from dinodiag.cli.commands import main

sys.exit(main())
