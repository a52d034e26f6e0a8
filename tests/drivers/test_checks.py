"""Checks judged on hand-made observation logs."""

from __future__ import annotations

from pydantic import TypeAdapter

from conformance.catalog.model import AnyOf
from conformance.drivers.checks import Context, evaluate_sending
from conformance.world.observe import DeliveredMessage, ObservationLog

READINGS = TypeAdapter(AnyOf).validate_python(
    {
        "check": "any-of",
        "readings": [
            {"name": "cap", "expect": [{"check": "not-delivered"}, {"check": "not-bounced"}]},
            {"name": "reject", "expect": [{"check": "delivered", "host": "mx1.d.test"}]},
        ],
    }
)


def ctx(settled: str | None = None) -> Context:
    return Context(expand=lambda s: s, sut_records=None, settled=settled, smtp_hosts=frozenset({"mx1.d.test"}))


def delivered(host: str) -> DeliveredMessage:
    return DeliveredMessage(
        host=host,
        mail_from="a@s.test",
        mail_options=(),
        rcpt_tos=("b@d.test",),
        data=b"x",
        tls=True,
        tls_version="TLSv1.3",
        cipher=None,
        at=1.0,
    )


def test_any_of_waits_then_names_the_reading_followed() -> None:
    log = ObservationLog()
    assert evaluate_sending(READINGS, log, ctx(), final=False) is None
    log.add(delivered("mx1.d.test"))
    decision = evaluate_sending(READINGS, log, ctx(), final=False)
    assert decision is not None and decision.ok and "'reject'" in decision.detail


def test_any_of_passes_on_the_other_reading_when_settled() -> None:
    decision = evaluate_sending(READINGS, ObservationLog(), ctx(settled="deferred"), final=False)
    assert decision is not None and decision.ok and "'cap'" in decision.detail


def test_any_of_fails_when_no_reading_holds() -> None:
    log = ObservationLog()
    log.add(delivered("mailbox.world.test"))  # a bounce, and no delivery to mx1
    decision = evaluate_sending(READINGS, log, ctx(settled="bounced"), final=True)
    assert decision is not None and not decision.ok and "none of the readings" in decision.detail
