import sys

from aneforge.cli import main

sys.exit(main())
