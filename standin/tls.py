"""A throwaway certificate authority for the stand-ins that must speak HTTPS (standin/salesforce.py).

`TestCA(directory)` makes, in that directory, a CA key and certificate and a server key and certificate for
127.0.0.1 and localhost (SubjectAlternativeName IP and DNS entries) signed by it, valid from yesterday for 30
days, and writes:
  ca.pem          the CA certificate: the bundle a client trusts (`requests.Session().verify = ca_file`)
  server.pem      the server certificate followed by the CA certificate (the chain the server presents)
  server-key.pem  the server's private key (unencrypted, PKCS#8)
`server_context()` is an `ssl.SSLContext` serving that chain. Nothing is cached between instances: every
stand-in gets its own CA, so a client that trusts one stand-in trusts no other. EC keys (P-256) keep it fast.
"""
from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTS = ("127.0.0.1", "localhost")
VALID_DAYS = 30


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Handoff stand-in"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_names(hosts) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


class TestCA:
    """A CA and one server certificate signed by it, written to `directory` (created if missing)."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, directory: Path | str, hosts=HOSTS):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hosts = tuple(hosts)
        start = datetime.now(UTC) - timedelta(days=1)
        end = start + timedelta(days=VALID_DAYS)

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name("Handoff stand-in test CA")
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ca_ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )

        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = (
            x509.CertificateBuilder()
            .subject_name(_name(self.hosts[0])).issuer_name(ca_name)
            .public_key(server_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(_alt_names(self.hosts)), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256())
        )

        ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
        self.ca_file = self.directory / "ca.pem"
        self.cert_file = self.directory / "server.pem"
        self.key_file = self.directory / "server-key.pem"
        self.ca_file.write_bytes(ca_pem)
        self.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
        self.key_file.write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
        self.key_file.chmod(0o600)

    def server_context(self) -> ssl.SSLContext:
        return server_context(self.cert_file, self.key_file)


def server_context(cert_file: Path | str, key_file: Path | str) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) presenting `cert_file`'s chain with `key_file`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    return context
