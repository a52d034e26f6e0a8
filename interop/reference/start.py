"""Lifecycle start command: run the reference MTA as an external SUT of the world.

Reads the world's facts from the MAILTLS_* environment, starts ``python -m reference_impl.mta``
in the background with its state in MAILTLS_STATE_DIR, waits until it accepts connections,
and exits 0 (the runner then starts the scenarios). Usage: start.py SUBMISSION_HOST:PORT
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    submission = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:10587"
    state = Path(os.environ["MAILTLS_STATE_DIR"])
    ready = state / "ready"
    log = (state / "mta.log").open("wb")
    argv = [
        sys.executable,
        "-m",
        "reference_impl.mta",
        "--hostname",
        "mx.external-reference.test",
        "--state-dir",
        str(state / "mta"),
        "--resolver",
        f"{os.environ['MAILTLS_DNS_HOST']}:{os.environ['MAILTLS_DNS_PORT']}",
        "--mx-port",
        os.environ["MAILTLS_SMTP_PORT"],
        "--sts-port",
        os.environ["MAILTLS_HTTPS_PORT"],
        "--ca-file",
        os.environ["MAILTLS_CA_FILE"],
        "--submission",
        submission,
        "--ready-file",
        str(ready),
        # RFC 8460: reports over HTTPS (no DKIM key: no report mail); report.py triggers a run.
        "--tlsrpt-org",
        "MailTLS reference, external",
        "--tlsrpt-contact",
        "tlsrpt@external-reference.test",
        "--tlsrpt-domain",
        "external-reference.test",
        "--tlsrpt-https-port",
        os.environ["MAILTLS_HTTPS_PORT"],
        "--tlsrpt-post-timeout",
        "5",
    ]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
    (state / "pid").write_text(str(proc.pid), encoding="utf-8")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ready.exists():
            return 0
        if proc.poll() is not None:
            print((state / "mta.log").read_text(encoding="utf-8", errors="replace"), file=sys.stderr)
            return 1
        time.sleep(0.05)
    proc.terminate()
    print("the reference MTA did not become ready within 30 s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
