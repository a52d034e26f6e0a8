"""MX host validation against a policy's ``mx`` patterns (RFC 8461 section 4.1).

Section 4.1: matching follows RFC 6125 "with the restriction that the wildcard character '*'
may only be used to match the entire left-most label"; "*.example.com" matches
"mail.example.com" but not "example.com" or "foo.bar.example.com".

Decisions:

* Comparison is ASCII case-insensitive (DNS names, RFC 4343); non-ASCII characters compare
  exactly. MX targets come from DNS as A-labels and policies hold A-labels (section 3.2), so
  no IDNA conversion happens here: a U-label host never matches an A-label pattern.
* One trailing dot on the MX host (the absolute form DNS answers use) is ignored. Patterns are
  taken as written: a valid pattern (see :mod:`.policy`) has no trailing dot.
* :func:`policy_allows_mx` is pure matching and ignores the mode: what a mismatch means
  (enforce: do not deliver; testing: deliver and report; none: nothing) is section 5's
  business and the caller's.
"""

from __future__ import annotations

from reference_impl.mtasts.policy import Policy

__all__ = ["mx_pattern_matches", "policy_allows_mx"]

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold(name: str) -> str:
    return name.translate(_ASCII_LOWER)


def mx_pattern_matches(pattern: str, mx_host: str) -> bool:
    """Whether the MX host name ``mx_host`` matches one ``mx`` pattern (section 4.1)."""
    host = _fold(mx_host.removesuffix("."))
    wanted = _fold(pattern)
    if not host or not wanted:
        return False
    if wanted.startswith("*."):
        # 4.1: '*' matches exactly the whole left-most label: one non-empty label, no dots.
        suffix = wanted[1:]
        label = host.removesuffix(suffix) if host.endswith(suffix) else None
        return label is not None and label != "" and "." not in label
    # 4.1 (RFC 6125 section 6.4.1): a name without a wildcard matches only itself.
    return host == wanted


def policy_allows_mx(policy: Policy, mx_host: str) -> bool:
    """Whether any of the policy's ``mx`` patterns matches ``mx_host`` (section 4.1; mode not consulted)."""
    return any(mx_pattern_matches(pattern, mx_host) for pattern in policy.mx)
