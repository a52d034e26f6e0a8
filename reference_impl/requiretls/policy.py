"""The replaceable decisions of RFC 8689 in the reference MTA (what a mutant swaps).

* Relaying a REQUIRETLS message (section 4.2.1): the MX name check before connecting
  (:func:`~reference_impl.requiretls.nexthop.check_mx_name`), the TLS decision at each TLS
  failure (:func:`requiretls_tls`: the host is given up, never plaintext, never unverified),
  whether the certificate chain is verified, the session check after TLS
  (:func:`~reference_impl.requiretls.nexthop.check_session`), the stored MAIL parameters the
  delivery works from (REQUIRETLS kept, :func:`keep_params`), and the outcome when no MX
  qualifies (:func:`bounce_at_once`).
* ``TLS-Required: No`` (sections 4.1, 4.2.2): :func:`header_makes_tls_optional` says whether a
  message is sent with TLS optional (only without the REQUIRETLS MAIL parameter: "If the
  REQUIRETLS MAIL FROM parameter is specified, the TLS-Required header field MUST be ignored");
  STARTTLS is still attempted ("Attempt to negotiate STARTTLS if possible").
* Non-delivery messages (section 5): :class:`~reference_impl.requiretls.bounce.BounceRules`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reference_impl.mta.delivery import TlsAction, TlsDecision, TlsSituation
from reference_impl.mta.queue import OutcomeKind, RecipientOutcome
from reference_impl.requiretls.bounce import BounceRules, has_requiretls
from reference_impl.requiretls.header import TlsRequired, find_tls_required
from reference_impl.requiretls.nexthop import (
    NextHop,
    NextHopFailure,
    QualifyOptions,
    check_mx_name,
    check_session,
    failure_status,
)

__all__ = [
    "MxNameCheck",
    "NoHopOutcome",
    "RequireTlsParts",
    "SessionCheck",
    "as_given",
    "bounce_at_once",
    "header_makes_tls_optional",
    "keep_params",
    "requiretls_tls",
]

log = logging.getLogger(__name__)

MxNameCheck = Callable[[NextHop, QualifyOptions], NextHopFailure | None]
SessionCheck = Callable[[NextHop], NextHopFailure | None]
NoHopOutcome = Callable[[NextHopFailure], tuple[OutcomeKind, str]]
TlsOptional = Callable[[Sequence[str], bytes], bool]


def requiretls_tls(situation: TlsSituation) -> TlsAction:
    """Section 4.2.1: any TLS failure (not offered, refused, handshake or verification failed,
    an old protocol) ends the attempt with this host: QUIT and the next MX."""
    return TlsAction.NEXT_HOST


def keep_params(mail_params: Sequence[str]) -> tuple[str, ...]:
    """The stored MAIL parameters as they are: REQUIRETLS goes on to a qualifying hop."""
    return tuple(mail_params)


def bounce_at_once(failure: NextHopFailure) -> tuple[OutcomeKind, str]:
    """Section 4.2.1: "the client MUST NOT transmit the message to the domain" and "MUST send a
    non-delivery notification": a permanent failure, 5.7.30 or 5.7.10."""
    return OutcomeKind.PERMANENT, failure_status(failure)


def as_given(outcomes: tuple[RecipientOutcome, ...]) -> tuple[RecipientOutcome, ...]:
    """Section 4.2.2: "A non-delivery notification MUST be returned to the sender if message
    relay fails due to an inability to negotiate STARTTLS when required by the server": the
    server's 5xx stays a permanent failure (a bounce), as for any message."""
    return outcomes


def header_makes_tls_optional(mail_params: Sequence[str], data: bytes) -> bool:
    """Sections 4.1 and 4.2.2: a message with one well-formed ``TLS-Required: No`` and no
    REQUIRETLS MAIL parameter is relayed with TLS optional."""
    if has_requiretls(mail_params):
        return False  # section 4.1: the header field MUST be ignored
    found = find_tls_required(data)
    if found.state is TlsRequired.INVALID:
        log.info("TLS-Required field not honoured: %s", found.problem)
    return found.tls_optional


@dataclass(frozen=True, slots=True)
class RequireTlsParts:
    """RFC 8689 in the sender and the queue, part by part; the default is the reference."""

    mx_name_check: MxNameCheck = check_mx_name
    tls_decision: TlsDecision = requiretls_tls
    verify_certificate: bool = True  # handshake with a chain-verifying context
    session_check: SessionCheck = check_session
    relay_params: Callable[[Sequence[str]], tuple[str, ...]] = keep_params  # the tag of the stored message
    no_hop_outcome: NoHopOutcome = bounce_at_once
    tls_optional: TlsOptional = header_makes_tls_optional
    optional_attempts_starttls: bool = True  # section 4.2.2: still try STARTTLS
    # Section 4.2.2: the outcomes of a TLS-optional message as the transaction gave them; a
    # server that insists on STARTTLS (530) makes them permanent, so an NDN is returned.
    optional_outcomes: Callable[[tuple[RecipientOutcome, ...]], tuple[RecipientOutcome, ...]] = as_given
    bounce: BounceRules = field(default_factory=BounceRules)
    # Section 5: the NDN of a REQUIRETLS message is protected like the original (the 4.2.1
    # conditions) but not held back for a next hop that lacks the REQUIRETLS keyword.
    ndn_protected: bool = True
    ndn_needs_keyword: bool = False
