"""Certificate facts shared by the `tls` and `http` probes: expiry, names, issuer, hostname matching.

Pure functions over DER bytes and strings: they never open a socket, read a file or look at the
system trust store (chain verification is the probe's job, done by OpenSSL in a handshake). Every
probe that reports a certificate goes through here, so `days_remaining` of a `tls` check and
`cert_days_remaining` of an `http` check are the same number for the same certificate.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.x509.oid import NameOID

__all__ = ["CertificateFacts", "certificate_facts", "expiry_sentence", "hostname_matches", "leaf_days_remaining"]

_SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class CertificateFacts:
    """What a certificate says about itself, in the JSON-able forms the metrics use.

    days_remaining  days until notAfter, rounded to 2 decimals; negative once expired
    not_after       notAfter as ISO 8601 UTC with a `Z` (`2026-11-23T08:00:00Z`)
    not_before      notBefore, same format
    issuer, subject RFC 4514 strings (`CN=R11,O=Let's Encrypt,C=US`)
    sans            DNS names and IP addresses of the subjectAltName extension, in certificate order
    common_name     the subject's first CN, or None
    self_signed     issuer equals subject and the certificate's own key verifies its signature
    """

    days_remaining: float
    not_after: str
    not_before: str
    issuer: str
    subject: str
    sans: list[str] = field(default_factory=list)
    self_signed: bool = False
    common_name: str | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise ValueError(f"the server's certificate could not be parsed as DER X.509: {exc}") from None


def _days_remaining(cert: x509.Certificate, now: datetime | None) -> float:
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round((cert.not_valid_after_utc - moment).total_seconds() / _SECONDS_PER_DAY, 2)


def _sans(cert: x509.Certificate) -> list[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names: list[str] = []
    for general_name in extension.value:
        if isinstance(general_name, x509.DNSName):
            names.append(general_name.value)
        elif isinstance(general_name, x509.IPAddress):
            names.append(str(general_name.value))
    return names


def _common_name(cert: x509.Certificate) -> str | None:
    attributes = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return None
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # InvalidSignature, unsupported key types, mismatched algorithms: not self-signed
        return False
    return True


def certificate_facts(der: bytes, now: datetime | None = None) -> CertificateFacts:
    """Read a DER certificate; `now` (UTC, default the current time) fixes `days_remaining`.

    Raises ValueError with a readable sentence when `der` is not a certificate.
    """
    cert = _load(der)
    return CertificateFacts(
        days_remaining=_days_remaining(cert, now),
        not_after=_iso(cert.not_valid_after_utc),
        not_before=_iso(cert.not_valid_before_utc),
        issuer=cert.issuer.rfc4514_string(),
        subject=cert.subject.rfc4514_string(),
        sans=_sans(cert),
        self_signed=_self_signed(cert),
        common_name=_common_name(cert),
    )


def leaf_days_remaining(der: bytes, now: datetime | None = None) -> float:
    """Days until the certificate's notAfter, rounded to 2 decimals; negative when expired."""
    return _days_remaining(_load(der), now)


def _as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _normalise_dns(name: str) -> str | None:
    """Lower-case A-label form without a trailing dot; None for names that cannot be DNS names."""
    name = name.strip().rstrip(".")
    if not name:
        return None
    try:
        name = name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return None
    return name.lower()


def _dns_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125 §6.4: exact match, or `*` as the whole left-most label standing for exactly one label."""
    normal = _normalise_dns(pattern)
    if normal is None:
        return False
    if "*" not in normal:
        return normal == hostname
    first, _, rest = normal.partition(".")
    # Only a bare `*` left-most label, never in the registrable part (`*.com`) or deeper (`a.*.com`).
    if first != "*" or "*" in rest or rest.count(".") < 1:
        return False
    host_first, _, host_rest = hostname.partition(".")
    return bool(host_first) and host_rest == rest


def hostname_matches(sans: list[str], subject_cn: str | None, hostname: str) -> bool:
    """Whether a certificate with these SANs (and subject CN) is valid for `hostname`.

    DNS names compare case-insensitively, with wildcards as RFC 6125 allows (one whole left-most
    label: `*.example.com` matches `a.example.com`, not `example.com` or `a.b.example.com`). An IP
    address compares as an address against IP SANs only, never against wildcards. The subject CN is
    consulted only when the certificate has no SANs at all (the legacy rule OpenSSL still follows).
    """
    host_ip = _as_ip(hostname)
    candidates = list(sans) if sans else ([subject_cn] if subject_cn else [])
    if host_ip is not None:
        return any(_as_ip(candidate) == host_ip for candidate in candidates)
    host = _normalise_dns(hostname)
    if host is None:
        return False
    return any(_as_ip(candidate) is None and _dns_matches(candidate, host) for candidate in candidates)


def expiry_sentence(days: object, condition: str) -> str | None:
    """The failure sentence for a days-remaining condition once the certificate has expired."""
    if isinstance(days, int | float) and not isinstance(days, bool) and days < 0:
        ago = -float(days)
        when = f"{ago:.0f} days ago" if ago >= 1.5 else ("1 day ago" if ago >= 1 else f"{ago * 24:.0f} hours ago")
        return f"certificate expired {when} (days_remaining {float(days):g}, expected {condition})"
    return None
