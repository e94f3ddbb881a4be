"""Entry script for `mitmdump -s addon/ai_proxy.py` / `mitmweb -s addon/ai_proxy.py`.

mitmproxy's -s takes a file, so this file only makes the package importable and names the addon.
"""

import sys
from pathlib import Path

try:
    from addon.proxy import AIProxy
except ImportError:  # not installed: run from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from addon.proxy import AIProxy

addons = [AIProxy()]
