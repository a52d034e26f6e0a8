"""DANE for SMTP, the sans-IO core: TLSA records (RFC 6698 section 2, RFC 7671) and matching a
presented certificate chain against them (RFC 7672 section 3).

:mod:`.tlsa` reads and writes TLSA RDATA in presentation form and matches chains; :mod:`.der`
pulls the SubjectPublicKeyInfo out of a certificate; :mod:`.chain` holds the DANE-TA(2) checks
(issuer links, reference identifiers). Nothing here does I/O: the TLSA lookup and the TLS
handshake are the reference MTA's (:mod:`reference_impl.mta.danediscover`,
:mod:`reference_impl.mta.securing`).
"""
