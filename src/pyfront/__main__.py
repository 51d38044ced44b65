import sys

from pyfront.cli import main

sys.exit(main())
