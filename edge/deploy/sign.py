"""Sign bundles: an SSHSIG (``ssh-keygen -Y sign`` format) over the exact bytes of ``manifest.json``.

Ed25519 from ``cryptography``; this module only lays out the SSHSIG wire format
(PROTOCOL.sshsig: magic, version, public key, namespace, reserved, hash, signature).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
from dataclasses import replace
from pathlib import Path

from edge.board.verify import ReleaseInfo, bundle_files, load_manifest, verify_files
from edge.bundle import MANIFEST, SIGNATURE, SIGNATURE_NAMESPACE, write_manifest
from edge.errors import DeployError

_MAGIC = b"SSHSIG"
_HASH = "sha512"


def _string(data: bytes | str) -> bytes:
    data = data.encode() if isinstance(data, str) else data
    return struct.pack(">I", len(data)) + data


def _load_private(path: Path):  # -> Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    try:
        key = load_ssh_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise DeployError("E_KEY", f"{path}: no such key file") from None
    except (ValueError, TypeError) as exc:
        raise DeployError("E_KEY", f"{path}: not an unencrypted OpenSSH private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise DeployError("E_KEY", f"{path}: not an Ed25519 key (make one with `hybrid-edge keygen` or `ssh-keygen -t ed25519`)")
    return key


def _public_blob(key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _string("ssh-ed25519") + _string(raw)


def fingerprint(key) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(_public_blob(key)).digest()).decode().rstrip("=")


def sshsig(key, message: bytes, namespace: str = SIGNATURE_NAMESPACE) -> str:
    """The armored SSHSIG of ``message`` in ``namespace``."""
    digest = hashlib.sha512(message).digest()
    signed = _MAGIC + _string(namespace) + _string(b"") + _string(_HASH) + _string(digest)
    signature = _string("ssh-ed25519") + _string(key.sign(signed))
    blob = _MAGIC + struct.pack(">I", 1) + _string(_public_blob(key)) + _string(namespace) + _string(b"") + _string(_HASH) + _string(signature)
    text = base64.b64encode(blob).decode()
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "-----BEGIN SSH SIGNATURE-----\n" + "\n".join(lines) + "\n-----END SSH SIGNATURE-----\n"


def keygen(out: Path, comment: str = "hybrid-edge") -> Path:
    """Write a new Ed25519 key: ``out`` (OpenSSH private key, mode 0600) and ``out.pub``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    if out.exists():
        raise DeployError("E_KEY", f"{out} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
    Path(f"{out}.pub").write_bytes(pub + f" {comment}\n".encode())
    return out


def sign_bundle(bundle: Path, key_path: Path, seq: int | None = None, namespace: str = SIGNATURE_NAMESPACE) -> ReleaseInfo:
    """Add the ``release`` section (``seq``, key fingerprint) to ``manifest.json`` and write ``manifest.json.sig``.

    Raises:
        DeployError: E_KEY for an unusable key; E_HASH when a file differs from the manifest or is not listed.
    """
    key = _load_private(key_path)
    manifest = load_manifest(bundle)
    stale = bundle / SIGNATURE
    if stale.exists():
        stale.unlink()
    verify_files(bundle, manifest)  # refuses unlisted files too
    release = ReleaseInfo(int(time.time()) if seq is None else seq, fingerprint(key))
    if release.seq < 0:
        raise DeployError("E_SEQ", "--seq must be a non-negative integer")
    write_manifest(bundle, replace(manifest, release=release))  # through the format's one writer
    data = (bundle / MANIFEST).read_bytes()  # the signature covers exactly these bytes
    from edge.status import write_atomic

    write_atomic(bundle / SIGNATURE, sshsig(key, data, namespace).encode())
    return release


__all__ = ["bundle_files", "fingerprint", "keygen", "sign_bundle", "sshsig"]
