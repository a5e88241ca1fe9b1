"""The browser tests run only when asked for (``make test-browser`` sets ``WORKSHOP_BROWSER=1``).

They need Debian's Chromium and take a few minutes, so ``make test`` leaves them out.
"""

import os

if os.environ.get("WORKSHOP_BROWSER") != "1":
    collect_ignore_glob = ["test_*.py"]
