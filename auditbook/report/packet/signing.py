"""Signing a packet's manifest: Ed25519 key files (`auditbook keygen`) or an AWS KMS asymmetric key
(ECC_NIST_P256, ECDSA_SHA_256). The signature file is JSON: algorithm, key id, base64 signature.

Ed25519 signs the manifest's exact bytes. KMS limits a RAW message to 4 KB, so a KMS signature is
over the statement `auditbook-manifest-sha256:<hex digest of the manifest's exact bytes>` (RAW, the
same on AWS and moto); anyone with the public key can check it offline too."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Optional

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from auditbook.errors import UserError, one_line, shown
from auditbook.report.packet.tree import Refused, read_bounded

ED25519 = "ed25519"
KMS_ECDSA = "kms-ecdsa-sha256"
MAX_KEY_BYTES = 64 * 2**10


def kms_statement(manifest: bytes) -> bytes:
    return b"auditbook-manifest-sha256:" + hashlib.sha256(manifest).hexdigest().encode()


def keygen(prefix: str) -> tuple[Path, Path]:
    """PREFIX.key (private, PEM, mode 0600) and PREFIX.pub (public, PEM). Never overwrites."""
    if not prefix or prefix.endswith(("/", os.sep)) or Path(prefix).name in ("", ".", "..") or Path(prefix).is_dir():
        example = Path(prefix or "keys") / "auditbook"  # never `.key`, `.pub`: hidden files in a folder
        raise UserError(f"--out: {shown(prefix)} is a folder, not a file name prefix: give one such as "
                        f"{example} (writes {example}.key and {example}.pub)")
    private, public = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for path in (private, public):
        if path.exists():
            raise UserError(f"--out: {path} already exists (keygen never overwrites a key)")
    if not private.parent.is_dir():
        raise UserError(f"--out: folder {private.parent} does not exist")
    key = ed25519.Ed25519PrivateKey.generate()
    try:
        _write_pair(key, private, public)
    except (OSError, ValueError) as exc:  # an unwritable folder, a full disk, a NUL in the name
        if private.is_file() and not public.exists():
            private.unlink()  # this half pair is the one just made: leave nothing half-written
        raise UserError(f"--out: cannot write {shown(getattr(exc, 'filename', None) or prefix)}: "
                        f"{getattr(exc, 'strerror', None) or exc}") from None
    return private, public


def _write_pair(key, private: Path, public: Path) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))


def key_id(public_key) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


class Ed25519Signer:
    algorithm = ED25519

    def __init__(self, keyfile: Path):
        data = read_key_file(keyfile, "--signer")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise UserError(f"--signer: {keyfile}: not an unencrypted PEM private key")
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise UserError(f"--signer: {keyfile}: not an Ed25519 key (make one with `auditbook keygen`)")
        self.key = key
        self.key_id = key_id(key.public_key())

    def sign(self, manifest: bytes) -> dict:
        return {"algorithm": ED25519, "key_id": self.key_id,
                "signature": base64.b64encode(self.key.sign(manifest)).decode()}


KMS_ARN = re.compile(r"arn:aws[a-z-]*:kms:(?P<region>[a-z]{2}(-[a-z0-9]+)+):[0-9]{12}:"
                     r"(key|alias)/[A-Za-z0-9/_+=.@-]{1,256}")
KMS_NAME = re.compile(r"alias/[A-Za-z0-9/_-]{1,250}|[A-Za-z0-9-]{1,128}")  # a key id (or mrk-…) or an alias name


def kms_client_for(key: str, option: str):
    """A KMS client for KEY (a key or alias ARN, which names its region, or a key id or alias name in
    the configured region), made now: a malformed key, region or AWS configuration is a one-line
    UserError before any work is done."""
    from auditbook.collect.clients import aws_client
    arn = KMS_ARN.fullmatch(key)
    if arn is None and not KMS_NAME.fullmatch(key):
        raise UserError(f"{option}: {shown(key)} is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), "
                        "key id or alias/NAME")
    try:  # a key id or alias is in the configured region: no silent default
        return aws_client("kms", arn["region"] if arn else None, default_region=None)
    except UserError as exc:  # no or a malformed region configured, no such profile
        raise UserError(f"{option}: {shown(key)}: {exc} (a key ARN names its region)") from None


class KmsSigner:
    algorithm = KMS_ECDSA

    def __init__(self, key_arn: str, client=None):
        if not key_arn:
            raise UserError("--signer: kms: needs a key ARN or id (kms:arn:aws:kms:…)")
        self.key_arn = key_arn
        self.client = client or kms_client_for(key_arn, "--signer: kms")

    def sign(self, manifest: bytes) -> dict:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            resp = self.client.sign(KeyId=self.key_arn, Message=kms_statement(manifest), MessageType="RAW",
                                    SigningAlgorithm="ECDSA_SHA_256")
        except (ClientError, BotoCoreError) as exc:
            raise UserError(f"--signer: kms:{self.key_arn}: cannot sign: {one_line(str(exc))}")
        return {"algorithm": KMS_ECDSA, "key_id": resp["KeyId"],
                "signature": base64.b64encode(resp["Signature"]).decode()}


def parse_signer(text: str):
    kind, _, rest = (text or "").partition(":")
    if kind == "ed25519" and rest:
        return Ed25519Signer(Path(rest))
    if kind == "kms" and rest:
        return KmsSigner(rest)
    raise UserError(f"--signer: {text!r} is not ed25519:KEYFILE or kms:KEY_ARN")


def read_key_file(path: Path, option: str) -> bytes:
    """A key file's bytes: a regular file (a FIFO or device would block or never end), at most
    MAX_KEY_BYTES. A symlink is followed (the key is the user's own file, not the packet's)."""
    try:
        return read_bounded(str(path), MAX_KEY_BYTES, follow_symlinks=True)
    except Refused as why:
        raise UserError(f"{option}: {path}: not usable as a key file ({why})")
    except OSError as exc:
        raise UserError(f"{option}: {path}: cannot read: {exc.strerror}")


def load_public_key(path: Path):
    data = read_key_file(path, "--public-key")
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise UserError(f"--public-key: {path}: not a PEM public key")


def check_signature(manifest: bytes, sig: dict, *, public_key=None, kms_key: Optional[str] = None,
                    kms_client=None) -> Optional[str]:
    """None when the signature is good; otherwise why not, in one line. `sig` comes from the packet:
    nothing of it is printed unescaped."""
    algorithm, encoded = sig.get("algorithm"), sig.get("signature")
    if not isinstance(algorithm, str) or not isinstance(encoded, str):
        return "signature: 'manifest.sig' is malformed (needs the strings algorithm and signature)"
    if algorithm not in (ED25519, KMS_ECDSA):
        return f"signature: unknown algorithm {algorithm[:40]!r} in 'manifest.sig'"
    try:
        signature = base64.b64decode(encoded, validate=True)
    except ValueError:
        return "signature: 'manifest.sig' is malformed (the signature is not base64)"
    if kms_key is not None:
        if algorithm != KMS_ECDSA:
            return f"signature: made with {algorithm}, not a KMS key"
        from botocore.exceptions import BotoCoreError, ClientError
        client = kms_client or kms_client_for(kms_key, "--kms")
        try:
            ok = client.verify(KeyId=kms_key, Message=kms_statement(manifest), MessageType="RAW",
                               Signature=signature, SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "KMSInvalidSignatureException":
                return "signature: does not match the manifest under this KMS key"
            return f"signature: KMS verify failed: {exc}"
        except BotoCoreError as exc:
            return f"signature: KMS verify failed: {exc}"
        return None if ok else "signature: does not match the manifest under this KMS key"
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            if algorithm != ED25519:
                return f"signature: made with {algorithm}, not an Ed25519 key"
            public_key.verify(signature, manifest)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            if algorithm != KMS_ECDSA:
                return f"signature: made with {algorithm}, not an ECDSA (KMS) key"
            public_key.verify(signature, kms_statement(manifest), ec.ECDSA(hashes.SHA256()))
        else:
            return "signature: the public key is neither Ed25519 nor ECDSA P-256"
    except InvalidSignature:
        return "signature: does not match the manifest under this public key"
    return None


def dumps_signature(sig: dict) -> bytes:
    return (json.dumps(sig, sort_keys=True, indent=1) + "\n").encode()
