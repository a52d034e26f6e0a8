"""RFC 8689 (SMTP Require TLS Option): the sans-IO parts the reference MTA uses.

:mod:`.header` parses the ``TLS-Required`` header field (sections 3, 4.1, 4.2.2),
:mod:`.nexthop` decides whether a next hop qualifies for a REQUIRETLS message (section 4.2.1),
:mod:`.policy` holds the replaceable decisions (the parts a conformance mutant swaps) for
relaying, the TLS-Required header and non-delivery messages (section 5).
"""
