"""Lifecycle commands for Debian's Postfix (with postfix-mta-sts-resolver) as an external SUT.

``postfix_sut.py start [SUBMISSION]`` renders main.cf, master.cf and the policy daemon's YAML
from the templates beside this file into MAILTLS_STATE_DIR, then runs inside.sh in a private
mount namespace whose /etc/resolv.conf names the world's DNS: there mta-sts-daemon runs in
the background and Postfix in the foreground. It exits 0 once the submission listener greets
with 220 and the policy daemon accepts connections.

``postfix_sut.py stop`` stops that Postfix (``postfix -c STATE/etc stop``: its master signals
only its own children) and then every process start recorded, by PID (checked against the
process start time, so a reused PID is never signalled).

Start and stop share one file because the target's lifecycle commands are run as scripts
from this folder, and a second ``start.py``/``stop.py`` pair beside interop/reference's
would give mypy two top-level modules of the same name.

The PIDs are also written to ``.state/running.json`` beside this file (gitignored), which
outlives the run's state dir: a start after a crashed run ends what that run left behind
(the submission port would otherwise stay taken) before it starts anew.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import trustme

HERE = Path(__file__).resolve().parent
LEDGER = HERE / ".state" / "running.json"
KEEP_LOGS = HERE / ".state" / "last-run"  # the run's state dir is deleted after stop
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def _fail(message: str) -> int:
    print(f"postfix_sut: {message}", file=sys.stderr)
    return 1


# --- processes ---------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None when PID is gone.
    A PID plus its start time names one process for good, even after the PID is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _alive(proc: tuple[int, str]) -> bool:
    return _start_time(proc[0]) == proc[1]


def _record(pid: int) -> tuple[int, str] | None:
    started = _start_time(pid)
    return None if started is None else (pid, started)


def _end(processes: list[tuple[int, str]], timeout_s: float) -> None:
    """SIGTERM each recorded process still alive, wait (bounded), then SIGKILL what is left."""
    for pid, _ in (p for p in processes if _alive(p)):
        with contextlib.suppress(ProcessLookupError):  # it may end between the check and the kill
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(p) for p in processes):
        time.sleep(0.05)
    for pid, _ in (p for p in processes if _alive(p)):
        with contextlib.suppress(ProcessLookupError):  # it may end between the check and the kill
            os.kill(pid, signal.SIGKILL)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _load_ledger() -> dict[str, object]:
    try:
        data = json.loads(LEDGER.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _ledger_processes(data: dict[str, object]) -> list[tuple[int, str]]:
    raw = data.get("processes", [])
    out: list[tuple[int, str]] = []
    if isinstance(raw, list):
        for item in raw:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[0], int) and isinstance(item[1], str):
                out.append((item[0], item[1]))
    return out


def _write_ledger(state: Path, processes: list[tuple[int, str]], runner: tuple[int, str] | None) -> None:
    LEDGER.parent.mkdir(exist_ok=True)
    body = {
        "state_dir": str(state),
        "processes": [list(p) for p in processes],
        "runner": list(runner) if runner else None,
    }
    LEDGER.write_text(json.dumps(body), encoding="utf-8")


def _postfix_stop(etc: Path) -> None:
    """Ask the master to stop (it signals its own children), bounded; harmless when it is
    not running or the config is gone."""
    if (etc / "main.cf").exists():
        subprocess.run(  # noqa: S603
            ["postfix", "-c", str(etc), "stop"],  # noqa: S607
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=STOP_TIMEOUT_S,
            check=False,
        )


def _runner_alive(data: dict[str, object]) -> bool:
    runner = data.get("runner")
    if isinstance(runner, list) and len(runner) == 2 and isinstance(runner[0], int) and isinstance(runner[1], str):
        return _alive((runner[0], runner[1]))
    return False


def _stop_recorded(data: dict[str, object]) -> None:
    state = data.get("state_dir")
    if isinstance(state, str):
        _postfix_stop(Path(state) / "etc")
    _end(_ledger_processes(data), STOP_TIMEOUT_S)


# --- network ------------------------------------------------------------------------------


def _free_port() -> int:
    """A port nobody listens on. Bound without SO_REUSEPORT, so a leftover mta-sts-daemon
    (which listens with SO_REUSEPORT) is not mistaken for a free port and silently shared."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _greets_220(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.settimeout(2)
            banner = sock.recv(512)
            sock.sendall(b"QUIT\r\n")
            return banner.startswith(b"220")
    except OSError:
        return False


# --- start ---------------------------------------------------------------------------------


def _daemon_program() -> str | None:
    """mta-sts-daemon: $MTA_STS_DAEMON, else beside the suite's interpreter (tox or a venv
    with postfix-mta-sts-resolver installed), else on PATH."""
    named = os.environ.get("MTA_STS_DAEMON")
    if named:
        return named
    beside = Path(sys.executable).parent / "mta-sts-daemon"
    if beside.exists():
        return str(beside)
    return shutil.which("mta-sts-daemon")


def _render(template: str, target: Path, fields: dict[str, str]) -> None:
    text = (HERE / template).read_text(encoding="utf-8")
    for key, value in fields.items():
        text = text.replace(f"@{key}@", value)
    if "@" in "".join(line.split("#")[0] for line in text.splitlines()):
        raise ValueError(f"{template}: a @FIELD@ was left unfilled")
    target.write_text(text, encoding="utf-8")


def start(submission: str) -> int:
    env = os.environ
    state = Path(env["MAILTLS_STATE_DIR"]).resolve()
    # A real MTA resolves through resolv.conf (port 53 only) and delivers to MX port 25.
    if env["MAILTLS_DNS_PORT"] != "53" or env["MAILTLS_SMTP_PORT"] != "25":
        return _fail("Postfix can only use DNS on port 53 and MX port 25: run `mailtls run --privileged`")
    for tool in ("postfix", "unshare", "mount"):
        if shutil.which(tool) is None:
            return _fail(f"{tool} is not installed (apt-get install postfix; see README.md)")
    daemon = _daemon_program()
    if daemon is None:
        return _fail("mta-sts-daemon not found: pip install postfix-mta-sts-resolver (or set MTA_STS_DAEMON)")

    # Leftovers of a crashed earlier run (its runner, the mailtls process that ran start, is
    # gone): end what its ledger names, then start afresh. A run whose runner is still alive
    # is left alone; the submission port check below then reports the clash.
    leftover = _load_ledger()
    if leftover and not _runner_alive(leftover):
        _stop_recorded(leftover)
        LEDGER.unlink(missing_ok=True)
    host, _, port_text = submission.rpartition(":")
    if _listening(host, int(port_text)):
        return _fail(f"{submission} is already taken (a live run of this target, or a process it did not start)")

    policy_port = _free_port()
    etc = state / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    # The one directory to make by hand: postfix chdirs into the queue before anything else.
    # `postfix check` then creates its subdirectories and data_directory with the owners and
    # modes of postfix-files (post-install create-missing), and nothing outside them.
    (state / "spool").mkdir(exist_ok=True)
    # The daemons drop to the postfix user and chdir into the queue below the state dir,
    # which mkdtemp made 0700.
    state.chmod(0o755)
    # STARTTLS on the injection listener: the suite submits a REQUIRETLS message only over TLS
    # (RFC 8689 4.1), so Postfix's own answer to the parameter is what gets judged. The
    # suite does not verify this certificate; a throwaway CA makes it.
    submission_pem = state / "submission.pem"
    trustme.CA().issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(submission_pem))
    fields = {
        "STATE": str(state),
        "CA_FILE": env["MAILTLS_CA_FILE"],
        "POLICY_PORT": str(policy_port),
        "SUBMISSION": submission,
        "SUBMISSION_PEM": str(submission_pem),
    }
    _render("main.cf.in", etc / "main.cf", fields)
    _render("master.cf.in", etc / "master.cf", fields)
    _render("mta-sts-daemon.yml.in", state / "mta-sts-daemon.yml", fields)
    # Short timeouts: a scenario that drops DNS must not stall every lookup for long.
    resolv = f"nameserver {env['MAILTLS_DNS_HOST']}\noptions timeout:2 attempts:2\n"
    (state / "resolv.conf").write_text(resolv, encoding="utf-8")

    check = subprocess.run(  # noqa: S603
        ["postfix", "-c", str(etc), "check"],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check.returncode != 0:
        return _fail("postfix check failed:\n" + check.stdout + check.stderr + "\n".join(_logs(state)))

    log = (state / "namespace.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603
        ["unshare", "--mount", "--propagation", "private", "--", "bash", str(HERE / "inside.sh"), str(state), daemon],  # noqa: S607
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # not in the runner's process group: its signals are not ours
    )
    recorded: list[tuple[int, str]] = []
    runner = _record(os.getppid())

    def remember(pid: int | None) -> None:
        entry = None if pid is None else _record(pid)
        if entry is not None and entry not in recorded:
            recorded.append(entry)
            _write_ledger(state, recorded, runner)

    remember(proc.pid)
    (state / "namespace.pid").write_text(str(proc.pid), encoding="ascii")

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        remember(_read_pid(state / "mta-sts.pid"))
        remember(_read_pid(state / "spool" / "pid" / "master.pid"))
        if proc.poll() is not None:
            break
        if _greets_220(host, int(port_text)) and _listening("127.0.0.1", policy_port):
            remember(_read_pid(state / "spool" / "pid" / "master.pid"))
            return 0
        time.sleep(0.2)
    reason = "exited" if proc.poll() is not None else f"was not ready within {READY_TIMEOUT_S:.0f} s"
    output = "\n".join(_logs(state))
    stop()
    return _fail(f"Postfix {reason}:\n{output}")


def _logs(state: Path) -> list[str]:
    lines: list[str] = []
    for name in ("namespace.log", "maillog", "mta-sts.log"):
        path = state / name
        if path.exists():
            tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-10:]
            lines += [f"--- {name}", *tail]
    return lines


# --- stop ----------------------------------------------------------------------------------


def stop() -> int:
    state = Path(os.environ["MAILTLS_STATE_DIR"]).resolve()
    data = _load_ledger()
    if data.get("state_dir") == str(state):
        _stop_recorded(data)
        LEDGER.unlink(missing_ok=True)
    else:
        _postfix_stop(state / "etc")
    # Keep the logs of the last run for a post-mortem (the runner deletes the state dir).
    shutil.rmtree(KEEP_LOGS, ignore_errors=True)
    KEEP_LOGS.mkdir(parents=True, exist_ok=True)
    for name in ("maillog", "mta-sts.log", "namespace.log", "etc/main.cf", "etc/master.cf", "mta-sts-daemon.yml"):
        if (state / name).exists():
            shutil.copy(state / name, KEEP_LOGS / Path(name).name)
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("start", "stop"):
        return _fail("usage: postfix_sut.py start [HOST:PORT] | stop")
    if sys.argv[1] == "start":
        return start(sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1:10587")
    return stop()


if __name__ == "__main__":
    sys.exit(main())
