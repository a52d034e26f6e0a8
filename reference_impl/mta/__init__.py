"""The reference MTA: durable queue, MX routing, opportunistic STARTTLS delivery, DSNs.

RFC 5321 (sections 4.5.4.1, 5.1, 6.1), RFC 3207, RFC 7505, RFC 3461/3464, RFC 8460 section 4.3,
MTA-STS (RFC 8461) and DANE (RFC 7672, :mod:`.danepolicy`).
Entry point: :class:`reference_impl.mta.mta.ReferenceMta`; mutants in :mod:`.mutants`.
"""
