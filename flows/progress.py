"""Progress lines of long commands: on stderr, with the seconds since the command started, so that
stdout holds only the result (``--json`` output stays parseable)."""

from __future__ import annotations

import sys
import time

_T0 = time.monotonic()


def progress(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)
