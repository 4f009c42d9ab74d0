"""How long-running training steps report progress: one line per step on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    print(f"[civicrisk] {message}", file=sys.stderr, flush=True)
