"""The evidence of a sending scenario (``conformance.drivers.sending.story``)."""

from __future__ import annotations

from conformance.drivers.sending import story
from conformance.world.observe import ObservationLog, SmtpSession, TranscriptLine


def session(host: str, *commands: str) -> SmtpSession:
    lines = tuple(TranscriptLine("c2s", c, False, float(i)) for i, c in enumerate(commands))
    return SmtpSession(host, "127.0.0.1:1", lines, None, None, None, (), 0.0, 1.0, "quit")


def test_the_certificate_offered_is_shown_once_per_host_after_starttls() -> None:
    log = ObservationLog()
    log.add(session("mx1.d.test", "EHLO sut", "STARTTLS"))
    log.add(session("mx1.d.test", "EHLO sut", "STARTTLS"))
    log.add(session("mx2.d.test", "EHLO sut", "MAIL FROM:<a@s.test>"))  # never asked for TLS
    lines = story(log, {"mx1.d.test": "CN=mx1; expired", "mx2.d.test": "CN=mx2"})
    offered = [line for line in lines if "certificate offered" in line]
    assert offered == ["  certificate offered by mx1.d.test: CN=mx1; expired"]
    assert not [line for line in story(log) if "certificate offered" in line]
