"""MTA-STS (RFC 8461): sans-IO parsing, matching and linting, plus discovery, fetch and cache.

Parsing core: :mod:`.record` (section 3.1, the ``_mta-sts`` TXT record), :mod:`.policy`
(section 3.2, the policy file), :mod:`.matching` (section 4.1, ``mx`` patterns), :mod:`.lint`
(every rule a record or policy breaks, for the operator validator) and :mod:`.errors` (one error
base, :class:`~.errors.MtaStsError`, with rule id, RFC section and line number).
"""
