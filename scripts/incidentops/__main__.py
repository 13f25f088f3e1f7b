import sys

from incidentops.cli import main

sys.exit(main())
