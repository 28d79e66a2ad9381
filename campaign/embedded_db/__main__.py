import sys

from campaign.embedded_db import main

sys.exit(main(sys.argv))
