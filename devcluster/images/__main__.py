"""`python -m devcluster.images`: the command line of devcluster/images/cli.py."""

import sys

from devcluster.images.cli import main

sys.exit(main())
