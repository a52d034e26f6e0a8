"""The MTA state TLSRPT adds: the sending-ip column, the report-mail flag of the queue, the TLS
decision for report mail (RFC 8460 section 3), the configuration and the daily schedule."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_impl.mta import delivery
from reference_impl.mta.__main__ import build_parser, tlsrpt_config
from reference_impl.mta.clock import ManualClock
from reference_impl.mta.delivery import TlsAction, TlsSituation, TlsStage
from reference_impl.mta.errors import MtaConfigError
from reference_impl.mta.queue import MessageQueue, Recipient, RetryPolicy
from reference_impl.mta.records import TlsRecordStore, TlsResultType, TlsSessionRecord
from reference_impl.mta.reporting import TlsRptConfig, next_daily_run
from reference_impl.mtasts.policy import Mode
from reference_impl.tlsrpt.model import day_window

# -- records: sending-mta-ip (RFC 8460 section 4.4) ------------------------------------------------


def record(at: float, sending_ip: str = "127.0.0.1") -> TlsSessionRecord:
    return TlsSessionRecord(
        "d.test", "mx.d.test", "127.0.0.2", TlsResultType.SUCCESS, "TLSv1.3", "c", at, sending_ip=sending_ip
    )


def test_records_keep_the_sending_ip_and_select_a_window(tmp_path: Path) -> None:
    with TlsRecordStore(tmp_path / "r.sqlite3") as store:
        for at in (10.0, 20.0, 30.0):
            store.add(record(at))
        assert [r.at for r in store.between(10.0, 30.0)] == [10.0, 20.0]
        assert {r.sending_ip for r in store.all()} == {"127.0.0.1"}


def test_an_old_record_file_gains_the_sending_ip_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE tls_sessions (id INTEGER PRIMARY KEY AUTOINCREMENT, policy_domain TEXT NOT NULL,"
        " mx_host TEXT NOT NULL, ip TEXT NOT NULL, result_type TEXT NOT NULL, tls_version TEXT, cipher TEXT,"
        " at REAL NOT NULL, failure_reason TEXT, mx_helo TEXT)"
    )
    db.execute(
        "INSERT INTO tls_sessions (policy_domain, mx_host, ip, result_type, at) VALUES ('d', 'm', 'i', 'success', 1)"
    )
    db.commit()
    db.close()
    with TlsRecordStore(path) as store:
        [old] = store.all()
        assert (old.sending_ip, old.policy_type) == ("", "no-policy-found")
        store.add(record(2.0, "10.0.0.1"))
        assert [r.sending_ip for r in store.all()] == ["", "10.0.0.1"]


# -- the queue's report flag (RFC 8460 section 3) --------------------------------------------------


def test_report_mail_is_flagged_through_claim_and_reopen(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "q.sqlite3"
    with MessageQueue(path, clock=clock, retry=RetryPolicy(), reporting_mta="m") as queue:
        plain = queue.enqueue("a@s.test", [Recipient("x@d.test")], b"x")
        report = queue.enqueue("r@s.test", [Recipient("y@d.test")], b"y", tlsrpt_report=True)
        jobs = {job.message_id: job.tlsrpt_report for job in queue.claim_due()}
        assert jobs == {plain: False, report: True}
    with MessageQueue(path, clock=clock, retry=RetryPolicy(), reporting_mta="m") as reopened:
        assert [m.tlsrpt_report for m in reopened.messages()] == [False, True]


def test_an_old_queue_file_gains_the_report_flag(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL,"
        " mail_params TEXT NOT NULL, data BLOB NOT NULL, received_at REAL NOT NULL, dsn_of INTEGER)"
    )
    db.execute("INSERT INTO messages (sender, mail_params, data, received_at) VALUES ('a@s.test', '[]', x'00', 1)")
    db.commit()
    db.close()
    with MessageQueue(path, clock=ManualClock(), retry=RetryPolicy(), reporting_mta="m") as queue:
        [old] = queue.messages()
        assert not old.tlsrpt_report


# -- report mail TLS (RFC 8460 sections 3 and 5.3.1) -----------------------------------------------


@pytest.mark.parametrize(
    ("stage", "action"),
    [
        (TlsStage.NOT_OFFERED, TlsAction.CONTINUE_PLAINTEXT),
        (TlsStage.REFUSED, TlsAction.CONTINUE_PLAINTEXT),
        (TlsStage.CERTIFICATE_INVALID, TlsAction.RETRY_UNVERIFIED),
        (TlsStage.HANDSHAKE_FAILED, TlsAction.CONTINUE_PLAINTEXT),
        (TlsStage.PROTOCOL_TOO_OLD, TlsAction.CONTINUE_PLAINTEXT),
    ],
)
def test_report_mail_never_gives_a_host_up_for_tls(stage: TlsStage, action: TlsAction) -> None:
    situation = TlsSituation(stage, "d.test", "mx.d.test", TlsResultType.VALIDATION_FAILURE, None, False, Mode.ENFORCE)
    assert delivery.report_mail_tls(situation) is action
    assert action is not TlsAction.NEXT_HOST


# -- configuration and schedule --------------------------------------------------------------------


def test_tlsrpt_config_checks() -> None:
    config = TlsRptConfig("Org", "tlsrpt@Reporter.Test", "reporter.test")
    assert (config.submitter, config.mail_sender) == ("reporter.test", "tlsrpt-noreply@reporter.test")
    for bad in (
        {"contact_info": "nobody"},
        {"reporting_domain": ""},
        {"post_timeout_s": 0.0},
    ):
        values: dict[str, object] = {
            "organization_name": "Org",
            "contact_info": "t@r.test",
            "reporting_domain": "r.test",
        }
        values.update(bad)
        with pytest.raises(MtaConfigError):
            TlsRptConfig(**values)  # type: ignore[arg-type]


def test_command_line_options(tmp_path: Path) -> None:
    base = [
        "--hostname",
        "m.test",
        "--state-dir",
        str(tmp_path),
        "--resolver",
        "127.0.0.1:53",
        "--submission",
        "127.0.0.1:0",
    ]
    parser = build_parser()
    assert tlsrpt_config(parser.parse_args(base), parser) is None
    args = parser.parse_args(
        [
            *base,
            "--tlsrpt-org",
            "Org",
            "--tlsrpt-contact",
            "tlsrpt@r.test",
            "--tlsrpt-domain",
            "r.test",
            "--tlsrpt-dkim-key",
            str(tmp_path / "k.pem"),
            "--tlsrpt-https-port",
            "8443",
        ]
    )
    config = tlsrpt_config(args, parser)
    assert config == TlsRptConfig("Org", "tlsrpt@r.test", "r.test", "tlsrpt", tmp_path / "k.pem", 8443, 60.0)
    with pytest.raises(SystemExit):
        tlsrpt_config(parser.parse_args([*base, "--tlsrpt-org", "Org"]), parser)


def test_daily_run_is_shortly_after_midnight_for_the_day_before() -> None:
    now = datetime(2026, 11, 28, 15, 0, tzinfo=UTC).timestamp()
    at, day = next_daily_run(now, 300)
    assert datetime.fromtimestamp(at, UTC) == datetime(2026, 11, 29, 0, 5, tzinfo=UTC)
    assert day == date(2026, 11, 28)
    early = datetime(2026, 11, 29, 0, 1, tzinfo=UTC).timestamp()
    assert next_daily_run(early, 300) == (datetime(2026, 11, 29, 0, 5, tzinfo=UTC).timestamp(), date(2026, 11, 28))


@given(st.floats(1e9, 4e9), st.floats(0, 4 * 3600))
def test_daily_run_is_within_a_day_and_reports_the_day_that_just_ended(now: float, delay: float) -> None:
    at, day = next_daily_run(now, delay)
    assert now < at <= now + 86400 + 1e-3
    start, end = day_window(day)
    assert end.timestamp() + delay == pytest.approx(at)  # delay seconds after the day ended
    assert start.timestamp() < now  # the day reported had begun when the run was planned
