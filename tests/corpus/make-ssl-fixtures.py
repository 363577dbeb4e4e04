#!/usr/bin/env python3
"""Writes the certificate fixtures of tests/corpus/bad-manifests/ssl-bad-certificates/tls/.

The corpus compares exact diagnostics, so the fixtures are checked in (with fixed validity dates,
2020-2099) rather than made at each run; this script is how they were made (python3-cryptography):
    python3 tests/corpus/make-ssl-fixtures.py tests/corpus/bad-manifests/ssl-bad-certificates/tls
tests/corpus/bad-manifests/etcd-tls-bad-files/tls/ holds copies of the same files (an EtcdCluster's
spec.tls files must lie below its manifest's directory, so that case cannot point at this one's);
after running this script, copy the files that directory has over again.
"""
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

out = sys.argv[1]
UTC = datetime.timezone.utc


def day(year, month=1, d=1):
    return datetime.datetime(year, month, d, tzinfo=UTC)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def certificate(cn, key, issuer_cn, issuer_key, start, end, ca):
    builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(issuer_cn))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return builder.sign(issuer_key, hashes.SHA256())


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def write(filename, text):
    with open(os.path.join(out, filename), "w") as f:
        f.write(text)


ca_key, other_ca_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
ca = certificate("corpus CA", ca_key, "corpus CA", ca_key, day(2020), day(2099, 12, 31), True)
write("ca.crt", pem(ca))


def leaf(filename, cn, start, end, issuer=("corpus CA", ca_key), chain=True):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate(cn, key, issuer[0], issuer[1], start, end, False)
    write(filename + ".crt", pem(cert) + (pem(ca) if chain else ""))
    write(filename + ".key", key_pem(key))


leaf("good", "pg-good", day(2020), day(2099))
leaf("expired", "pg-expired", day(2020), day(2021))
leaf("future", "pg-future", day(2098), day(2099))
leaf("wrong-ca", "pg-wrong-ca", day(2020), day(2099), issuer=("other CA", other_ca_key))
leaf("lone", "pg-lone", day(2020), day(2099), chain=False)
write("other.key", key_pem(ec.generate_private_key(ec.SECP256R1())))
write("garbage.crt", "this is not a certificate\n")
write("garbage.key", "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
