"""`python -m orchestrator` is the `orchestrate` command."""

import sys

from orchestrator.front.cli import main

sys.exit(main())
