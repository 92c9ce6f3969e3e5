import sys

from tfcomp.cli import main

sys.exit(main())
