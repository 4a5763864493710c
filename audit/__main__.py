"""`python -m audit` is the same as the `model-audit` command."""

import sys

from audit.cli import main

sys.exit(main())
