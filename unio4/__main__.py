import sys

from unio4.cli import main

sys.exit(main())
