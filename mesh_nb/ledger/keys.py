"""The owner's Ed25519 signing key, kept in the owner's directory (never in the ledger).

``dir/ed25519.key`` holds the private key (PKCS#8 PEM, mode 0600, directory mode 0700) and
``dir/ed25519.pub`` its public key for whoever audits. Signatures are always checked against the
public half of the key in the owner's directory, so a key an attacker stores elsewhere is useless.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)

from ..errors import LedgerError

KEY_FILE = "ed25519.key"
PUB_FILE = "ed25519.pub"


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a fresh file created with ``mode`` (never widened by a later chmod)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(path: Path, data: bytes, mode: int, *, replace: bool) -> None:
    """Put ``data`` at ``path`` atomically; without ``replace`` a file already there wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    _write_new(tmp, data, mode)
    try:
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic create-if-absent: racing creators keep one key
            except FileExistsError:
                pass
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class OwnerKey:
    """The owner's Ed25519 key pair. Get it with :meth:`load_or_create`."""

    directory: Path
    _private: Ed25519PrivateKey = field(repr=False, compare=False)
    _public: Ed25519PublicKey = field(repr=False, compare=False)

    @classmethod
    def load_or_create(cls, directory: Path | str, *, create: bool = True) -> "OwnerKey":
        """Load ``directory/ed25519.key``, generating it (and the directory) on first use.

        ``create=False`` (a ledger that has entries) refuses to generate a key: a new key would
        silently disown every entry. A key that no longer matches the published
        ``ed25519.pub`` is refused too (LedgerError), never papered over.
        """
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_path = directory / KEY_FILE
        pub_path = directory / PUB_FILE
        if not key_path.exists():
            if not create:
                raise LedgerError(
                    f"the owner's key {key_path} is missing but the ledger has entries: it was "
                    "deleted or moved — put the owner's key back (from the owner's backup); "
                    "a new key would disown every entry, so none is made")
            os.chmod(directory, 0o700)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())
            _publish(key_path, pem, 0o600, replace=False)
        try:
            private = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError):
            private = None
        if not isinstance(private, Ed25519PrivateKey):
            raise LedgerError(f"{key_path} is not an Ed25519 private key (damaged or replaced) — "
                              "put the owner's key back from the owner's backup")
        key = cls(directory, private, private.public_key())
        if not pub_path.exists():
            _publish(pub_path, key.public_pem, 0o644, replace=False)
        elif pub_path.read_bytes() != key.public_pem:
            raise LedgerError(
                f"the owner's key {key_path} does not match the published {pub_path} (the key "
                "was replaced) — put the owner's key back; if the owner really changed keys, "
                "move the old ed25519.pub away (entries signed by the old key no longer verify)")
        return key

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half, the only key signatures are checked against."""
        return self._public

    @property
    def public_pem(self) -> bytes:
        """The public key as SubjectPublicKeyInfo PEM."""
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)

    @property
    def fingerprint(self) -> str:
        """Short hex id of the public key (sha256 of its raw bytes, 16 hex digits)."""
        raw = self.public_key.public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
        return hashlib.sha256(raw).hexdigest()[:16]

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature of ``data``."""
        return self._private.sign(data)

    def verify(self, signature: bytes | str, data: bytes) -> bool:
        """Whether ``signature`` (bytes or hex) is the owner's over ``data``."""
        try:
            sig = bytes.fromhex(signature) if isinstance(signature, str) else signature
            self._public.verify(sig, data)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True
