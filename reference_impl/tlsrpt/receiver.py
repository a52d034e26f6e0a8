"""The reference TLSRPT report receiver (RFC 8460 sections 3, 5.3, 5.4, 5.6).

What a Policy Domain's operator runs behind its ``rua`` URIs (section 3): an HTTPS endpoint
that accepts POSTed reports (section 5.4) and, optionally, an SMTP listener for emailed ones
(section 5.3). Both verify (DKIM for mail, section 3), validate (the report validator of
``reference_impl.tlsrpt.validate``) and store (``receiver_store``) what they accept.

The parts: ``receiver_http`` (the sans-IO decisions of the endpoint), ``receiver_server``
(h11 over asyncio TLS), ``receiver_mail`` (the mail intake), ``receiver_dkim``,
``receiver_smtp`` (the SMTP handler), ``receiver_store``; ``receiver_variant`` holds the
behaviour knobs the negative controls of ``receiver_mutants`` turn.

Only loopback addresses are served: this receiver is a test peer and a reference, not a
production service.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType

from reference_impl.smtp.aio_server import SmtpServerHandle, start_smtp_server
from reference_impl.tlsrpt.receiver_http import DEFAULT_BODY_LIMIT, ReportEndpoint
from reference_impl.tlsrpt.receiver_judges import (
    MailJudge,
    PayloadJudge,
    TxtLookup,
    default_mail_judge,
    default_payload_judge,
)
from reference_impl.tlsrpt.receiver_mail import MailIntake, MailVerdict
from reference_impl.tlsrpt.receiver_server import HttpsReportServer
from reference_impl.tlsrpt.receiver_smtp import ReportMailHandler
from reference_impl.tlsrpt.receiver_store import LogEntry, ReportStore, StoredReport
from reference_impl.tlsrpt.receiver_variant import ReceiverVariant

__all__ = [
    "MailVerdict",
    "ReceiverVariant",
    "ReportReceiver",
    "StoredReport",
    "server_tls_context",
]


def server_tls_context(certfile: Path, keyfile: Path | None = None) -> ssl.SSLContext:
    """A TLS server context holding the given certificate chain and key (TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


def _loopback(host: str) -> str:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"{host!r} is not a loopback address: the receiver serves 127.0.0.0/8 or ::1 only")
    return host


class ReportReceiver:
    """The HTTPS report endpoint, the optional SMTP intake and the store behind both.

    ``tls`` is the HTTPS server context (see :func:`server_tls_context`). With
    ``report_domain`` an SMTP listener accepts mail for any address in that domain, offering
    STARTTLS when ``smtp_tls`` is given. ``txt_lookup`` finds DKIM keys. The validator is
    ``reference_impl.tlsrpt.validate`` unless ``payload_judge`` / ``mail_judge`` are given.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        tls: ssl.SSLContext,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/tlsrpt",
        variant: ReceiverVariant | None = None,
        payload_judge: PayloadJudge | None = None,
        mail_judge: MailJudge | None = None,
        txt_lookup: TxtLookup | None = None,
        report_domain: str | None = None,
        smtp_port: int = 0,
        smtp_tls: ssl.SSLContext | None = None,
        smtp_hostname: str = "tlsrpt-receiver.invalid",
        ignore_keys_without_tlsrpt: bool = False,
        max_body_bytes: int = DEFAULT_BODY_LIMIT,
        request_timeout_s: float = 10.0,
        keep_alive: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.host = _loopback(host)
        self.variant = variant if variant is not None else ReceiverVariant()
        self.store = ReportStore(store_dir) if clock is None else ReportStore(store_dir, clock=clock)
        judge = payload_judge if payload_judge is not None else default_payload_judge()
        if mail_judge is None and payload_judge is None:
            mail_judge = default_mail_judge()
        self.endpoint = ReportEndpoint(path, judge=judge, variant=self.variant, max_body_bytes=max_body_bytes)
        self.intake = MailIntake(
            payload_judge=judge,
            mail_judge=mail_judge,
            txt_lookup=txt_lookup,
            variant=self.variant,
            ignore_keys_without_tlsrpt=ignore_keys_without_tlsrpt,
            store=self.store,
        )
        self._https = HttpsReportServer(
            self.endpoint, self.store, tls=tls, request_timeout_s=request_timeout_s, keep_alive=keep_alive
        )
        self._port = port
        self._report_domain = report_domain
        self._smtp_port = smtp_port
        self._smtp_tls = smtp_tls
        self._smtp_hostname = smtp_hostname
        self._request_timeout_s = request_timeout_s
        self._smtp: SmtpServerHandle | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (HTTPS, and SMTP with a report domain); port 0 picks a free port."""
        await self._https.start(self.host, self._port)
        if self._report_domain is None:
            return
        handler = ReportMailHandler(self.intake, report_domain=self._report_domain)
        try:
            self._smtp = await start_smtp_server(
                handler,
                self.host,
                self._smtp_port,
                hostname=self._smtp_hostname,
                tls_context=self._smtp_tls,
                idle_timeout_s=max(self._request_timeout_s, 30.0),
            )
        except BaseException:
            await self._https.stop()
            raise

    async def stop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            await smtp.close()
        await self._https.stop()

    async def __aenter__(self) -> ReportReceiver:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- what callers use ----------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """The HTTPS listener's (host, port)."""
        return self._https.address

    @property
    def url(self) -> str:
        """The ``https:`` rua URI of the endpoint (by address; the certificate decides the name)."""
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        return f"https://{shown}:{port}{self.endpoint.path}"

    @property
    def smtp_address(self) -> tuple[str, int] | None:
        """The SMTP listener's (host, port), or None without one."""
        return self._smtp.address if self._smtp is not None else None

    def received(self) -> list[StoredReport]:
        """Every report stored so far (from disk), oldest first."""
        return self.store.received()

    def log(self) -> list[LogEntry]:
        """Every decision logged so far: stored, duplicate, ignored, refused."""
        return self.store.log()

    def accept_mail(self, message: bytes) -> MailVerdict:
        """Take one report message as the SMTP listener would (blocking: DKIM lookups, store)."""
        return self.intake.accept_mail(message)

    def check_errors(self) -> None:
        """Re-raise the first unexpected failure inside a listener (a bug), if any."""
        errors = list(self._https.errors)
        if self._smtp is not None:
            errors.extend(self._smtp.errors)
        if errors:
            raise RuntimeError(f"report receiver failed: {errors[0]!r}") from errors[0]
