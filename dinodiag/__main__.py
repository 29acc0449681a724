import sys

from dinodiag.cli import main

sys.exit(main())
