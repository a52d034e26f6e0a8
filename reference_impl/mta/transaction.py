"""One mail transaction with the MX, once the session is as secure as it will get (RFC 5321 3.3, 4.2.1).

MAIL, RCPT per recipient and DATA, with the ESMTP parameters the next server can take
(:func:`reference_impl.mta.delivery.outbound_mail_params`); each recipient gets exactly one
outcome from the reply classes of RFC 5321 section 4.2.1, and a connection that breaks midway
leaves every undecided recipient temporarily failed (4.4.2). Split from
:mod:`reference_impl.mta.sender`, which runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from reference_impl.mta import delivery as decide
from reference_impl.mta.mxplan import MxHost
from reference_impl.mta.queue import DeliveryJob, OutcomeKind, RecipientOutcome
from reference_impl.smtp.errors import LocalProtocolError, SmtpError
from reference_impl.smtp.replies import Reply

__all__ = ["TransactionClient", "run_transaction"]


class TransactionClient(Protocol):
    """What a transaction needs of an SMTP client session (``AsyncSmtpClient`` fits)."""

    extensions: dict[str, str]

    async def mail(self, sender: str, params: Sequence[str] = ()) -> Reply: ...
    async def rcpt(self, recipient: str, params: Sequence[str] = ()) -> Reply: ...
    async def data(self, message: bytes) -> Reply: ...
    async def quit(self) -> None: ...


async def run_transaction(client: TransactionClient, job: DeliveryJob, host: MxHost) -> tuple[RecipientOutcome, ...]:
    """MAIL, RCPT per recipient, DATA; one outcome per recipient, always."""
    remote = host.name
    addresses = [r.address for r in job.recipients]
    decided: dict[str, RecipientOutcome] = {}
    extensions: Mapping[str, str] = client.extensions
    try:
        params = decide.outbound_mail_params(job.mail_params, extensions, len(job.data))
        reply = await client.mail(job.sender, params)
        if not 200 <= reply.code < 300:
            await client.quit()
            return tuple(decide.outcome_for_reply(a, reply.code, reply.lines, remote) for a in addresses)
        accepted: list[str] = []
        for rcpt in job.recipients:
            rcpt_params = decide.outbound_rcpt_params(rcpt.params, extensions)
            reply = await client.rcpt(rcpt.address, rcpt_params)
            if 200 <= reply.code < 300:
                accepted.append(rcpt.address)
            else:
                decided[rcpt.address] = decide.outcome_for_reply(rcpt.address, reply.code, reply.lines, remote)
        if accepted:
            try:
                reply = await client.data(job.data)
            except LocalProtocolError as exc:
                # The content breaks an SMTP limit (e.g. a line over 1000 octets): no
                # later try can succeed (RFC 5321 section 4.5.3.1.6).
                for a in accepted:
                    decided[a] = RecipientOutcome(a, OutcomeKind.PERMANENT, "5.6.0", str(exc))
            else:
                for a in accepted:
                    decided[a] = decide.outcome_for_reply(a, reply.code, reply.lines, remote)
        await client.quit()
    except SmtpError as exc:
        # The connection broke mid-transaction: whatever is not decided is retried later.
        for a in addresses:
            decided.setdefault(
                a,
                RecipientOutcome(
                    a,
                    OutcomeKind.TEMPORARY,
                    "4.4.2",
                    f"connection with {remote} failed: {exc}",
                    remote,
                ),
            )
    return tuple(decided[a] for a in addresses)
