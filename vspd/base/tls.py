"""The private CA of the frontend -> voter link, and the certificates it signs.

Also the self-signed pairs of local peers and tests, and the check that a
certificate and key belong together (config's tlscert/tlskey).

`vspadmin gencerts` makes a CA, one client certificate for the frontend
(clientAuth only) and one server certificate per voter (serverAuth only,
its name as SAN), so a voter's certificate cannot pose as the frontend.
"""

import datetime
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FRONTEND_CN = "frontend"
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
DEFAULT_DAYS = 825


class CertError(Exception):
    pass


@dataclass
class Issued:
    cert_pem: bytes
    key_pem: bytes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vspd"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(days: int = 3650, cn: str = "vspd voter-link CA") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem(key))


def issue(ca: Issued, cn: str, *, server: bool, hosts: list[str] = (), days: int = DEFAULT_DAYS,
          not_before: datetime.datetime | None = None) -> Issued:
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, None)
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    sans: list[x509.GeneralName] = [x509.DNSName(cn)]
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem(key))


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise CertError(f"voter name {name!r} must be lower-case letters, digits and '-' (a DNS label)")
    return name


def days_left(cert_pem: bytes) -> float:
    cert = x509.load_pem_x509_certificate(cert_pem)
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)
    return left.total_seconds() / 86400


def write(path: Path, issued: Issued, stem: str) -> tuple[Path, Path]:
    path.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = path / f"{stem}.pem", path / f"{stem}.key"
    for p in (cert_path, key_path):
        if p.exists():
            raise CertError(f"{p} already exists; not overwriting it")
    cert_path.write_bytes(issued.cert_pem)
    key_path.touch(mode=0o600)
    key_path.write_bytes(issued.key_pem)
    return cert_path, key_path


def self_signed(common_name: str, hosts: list[str], days: int = 3650) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) for a P-256 CA-style self-signed certificate, as exccd makes."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def pair_problem(cert_pem: bytes, key_pem: bytes) -> str | None:
    """Why this key cannot serve this certificate (unreadable, or another key's), or None.

    grpc finds out only when it starts its server or first connects, and
    then says 'failed to bind' or nothing useful.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        return f"its certificate cannot be read: {e}"
    try:
        key = serialization.load_pem_private_key(key_pem, None)
    except (ValueError, TypeError) as e:
        return f"the key cannot be read: {e}"
    pub = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*pub) != cert.public_key().public_bytes(*pub):
        return "the key is not the key of tlscert"
    return None
