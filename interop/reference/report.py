"""Report command: ask the reference MTA that start.py started to send today's TLSRPT reports.

The standalone MTA (``python -m reference_impl.mta``) sends them on SIGUSR1 (RFC 8460 reports
are daily; a test cannot wait for the daily run). Signals only the PID start.py recorded.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def main() -> int:
    pid_file = Path(os.environ["MAILTLS_STATE_DIR"]) / "pid"
    if not pid_file.exists():
        print("no reference MTA was started (no pid file)", file=sys.stderr)
        return 1
    pid = int(pid_file.read_text(encoding="utf-8"))
    os.kill(pid, signal.SIGUSR1)
    print(f"sent SIGUSR1 to {pid} for {os.environ.get('MAILTLS_DOMAIN', 'every domain')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
