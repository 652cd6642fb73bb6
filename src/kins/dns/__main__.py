"""``python -m kins.dns``: the cluster DNS server."""

import sys

from .server import main

sys.exit(main())
