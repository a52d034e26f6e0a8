"""Errors of the reference MTA (``reference_impl.mta``): one base class for the package.

A parser here raises only a subclass of :class:`MtaError` on bad input; anything else is a
bug. Delivery failures are not exceptions: they are outcomes recorded in the queue.
"""

from __future__ import annotations


class MtaError(Exception):
    """Base of every error the reference MTA raises on purpose."""


class DsnParameterError(MtaError):
    """An RFC 3461 parameter (NOTIFY, ORCPT, RET, ENVID, xtext) is malformed."""

    def __init__(self, message: str, *, section: str) -> None:
        super().__init__(f"{message} (RFC 3461 section {section})")
        self.section = section


class QueueError(MtaError):
    """The durable queue was asked for something it cannot do (unknown id, closed queue)."""


class MtaConfigError(MtaError):
    """The MTA configuration is inconsistent (e.g. a non-loopback listen address in tests)."""
