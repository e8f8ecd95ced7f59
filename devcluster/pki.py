"""Certificates and keys for the local control plane, made with `cryptography`.

The set kubeadm makes for a single control-plane node, minus what a cluster
without kubelets does not need (https://kubernetes.io/docs/setup/best-practices/certificates/):

- a CA, which also signs CSRs for the controller manager's CSR signer;
- the API server's serving certificate for 127.0.0.1, localhost and the
  in-cluster names;
- client certificates: `admin` (group system:masters, for people, tests, kwok
  and the executor), `kube-controller-manager` and `kube-scheduler` (users the
  RBAC bootstrap policy already grants exactly what those components need);
- the service-account token signing key pair;
- a separate front-proxy CA and its `front-proxy-client` certificate, with
  which the API server authenticates to aggregated API servers (and which
  the controller manager and scheduler read to authenticate requests).

Everything stays in the state directory, readable by its owner only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Client identities: file stem -> (common name = user, organization = group).
CLIENTS = {
    "admin": ("bodypose-admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", None),
    "kube-scheduler": ("system:kube-scheduler", None),
}
# The first address of the API server's --service-cluster-ip-range: the
# `kubernetes` Service's ClusterIP, which a real serving certificate names.
SERVICE_IP = "10.96.0.1"


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate | None,
    ca_key: ec.EllipticCurvePrivateKey | None,
    *,
    is_ca: bool = False,
    server: bool = False,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject if ca_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Five minutes of slack for clocks that disagree by a little.
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key or key, hashes.SHA256())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def make_pki(directory: Path) -> dict[str, Path]:
    """Write every certificate and key; returns their paths by file name."""
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    paths: dict[str, Path] = {}

    def save(stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        paths[f"{stem}.crt"] = _write(directory / f"{stem}.crt", cert.public_bytes(pem))
        paths[f"{stem}.key"] = _write(directory / f"{stem}.key", _key_pem(key))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(_name("bodypose-local-ca"), ca_key, None, None, is_ca=True)
    save("ca", ca, ca_key)

    server_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address(SERVICE_IP)),
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"),
        x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("kubernetes.default.svc.cluster.local"),
    ]
    save(
        "apiserver",
        _issue(_name("kube-apiserver"), server_key, ca, ca_key, server=True, sans=sans),
        server_key,
    )

    for stem, (user, group) in CLIENTS.items():
        key = ec.generate_private_key(ec.SECP256R1())
        save(stem, _issue(_name(user, group), key, ca, ca_key), key)

    # Its own CA, as kubeadm does: a certificate from the cluster CA must never
    # pass for the proxy that asserts other users' identities.
    proxy_ca_key = ec.generate_private_key(ec.SECP256R1())
    proxy_ca = _issue(_name("front-proxy-ca"), proxy_ca_key, None, None, is_ca=True)
    save("front-proxy-ca", proxy_ca, proxy_ca_key)
    proxy_key = ec.generate_private_key(ec.SECP256R1())
    save(
        "front-proxy-client",
        _issue(_name("front-proxy-client"), proxy_key, proxy_ca, proxy_ca_key),
        proxy_key,
    )

    # Service-account tokens are RS256 JWTs: the API server signs them with this
    # key (TokenRequest) and verifies them with its public half.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths["sa.key"] = _write(directory / "sa.key", _key_pem(sa_key))
    paths["sa.pub"] = _write(
        directory / "sa.pub",
        sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    return paths


def issue_certificate(
    directory: Path,
    cert_path: Path,
    key_path: Path,
    common_name: str,
    *,
    server: bool = False,
    ip_addresses: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    organization: str | None = None,
) -> tuple[Path, Path]:
    """One more certificate from the CA `make_pki(directory)` wrote: for a server the
    API server calls (a webhook on loopback; it trusts this CA as the webhook's
    caBundle) or for a client. Returns (certificate, key)."""
    ca_cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{directory / 'ca.key'} is not the EC key make_pki writes")
    sans: list[x509.GeneralName] = [
        *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses),
        *(x509.DNSName(name) for name in dns_names),
    ]
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(
        _name(common_name, organization), key, ca_cert, ca_key, server=server, sans=sans or None
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    _write(key_path, _key_pem(key))
    return cert_path, key_path
