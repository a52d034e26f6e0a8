"""The world's DKIM key: it signs the TLSRPT report mail the world sends to a report receiver.

RFC 8460 section 3: "Reports sent via SMTP MUST contain a valid DomainKeys Identified Mail
(DKIM) [RFC6376] signature by the reporting domain", and the key record "SHOULD contain the
appropriate service type declaration, s=tlsrpt". The world's reporting domain is each
scenario's sender domain; every stage publishes the key under ``tlsrpt._domainkey`` there.
One RSA key per world: generating it costs tens of milliseconds, once.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

DKIM_SELECTOR = "tlsrpt"
_TXT_CHUNK = 255  # a TXT character-string holds at most 255 octets (RFC 1035 3.3)


@dataclass(frozen=True, slots=True)
class WorldDkimKey:
    private_pem: bytes
    public_der: bytes

    @classmethod
    def generate(cls) -> WorldDkimKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(private, public)

    def record_strings(self, service: str = "tlsrpt") -> tuple[str, ...]:
        """The key record (RFC 6376 3.6.1) split into TXT character-strings."""
        text = f"v=DKIM1; k=rsa; s={service}; p={base64.b64encode(self.public_der).decode()}"
        return tuple(text[i : i + _TXT_CHUNK] for i in range(0, len(text), _TXT_CHUNK))


def key_record_name(domain: str, selector: str = DKIM_SELECTOR) -> str:
    return f"{selector}._domainkey.{domain}"
