import sys

from .controller import main

sys.exit(main())
