"""The store's data key, and how the node obtains the passphrase that unlocks it.

A random 32-byte data key encrypts the sensitive columns. It is kept in ``DATA_DIR/store.key``,
locked with the node passphrase by :mod:`federation.secretbox` (Argon2id + ChaCha20-Poly1305), so
copying the data directory without the passphrase reveals no case content. Changing the passphrase
rewraps the key; the database itself is untouched.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from federation.secretbox import (
    DEFAULT_PARAMS,
    Argon2Params,
    MalformedBox,
    WrongPassphrase,
    lock,
    unlock,
)
from node.core.store.errors import StoreLocked

KEY_FILE_NAME = "store.key"
PASSPHRASE_ENV = "MINGA_PASSPHRASE"
CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"
"""Set by systemd for a unit with ``LoadCredential=``/``LoadCredentialEncrypted=``: a directory
only the unit's processes can read, holding one file per credential."""
PASSPHRASE_CREDENTIAL = "passphrase"
_PURPOSE = b"minga/store-data-key/v1"
_KEY_BYTES = 32

__all__ = [
    "CREDENTIALS_DIRECTORY_ENV",
    "KEY_FILE_NAME",
    "PASSPHRASE_CREDENTIAL",
    "PASSPHRASE_ENV",
    "DataKey",
    "DataKeyExists",
    "WrongPassphrase",
    "change_passphrase",
    "create_data_key",
    "key_file",
    "passphrase_from",
    "unlock_data_key",
]


class DataKeyExists(StoreLocked):
    """``create_data_key`` refuses to replace an existing key: that would lose every record."""


class DataKey:
    """The 32-byte secret that encrypts the store. Its repr never shows the secret."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) != _KEY_BYTES:
            raise ValueError(f"a data key is {_KEY_BYTES} bytes, got {len(secret)}")
        self._secret = secret

    @classmethod
    def generate(cls) -> DataKey:
        return cls(secrets.token_bytes(_KEY_BYTES))

    def derive(self, purpose: bytes) -> bytes:
        """An independent 32-byte subkey for one use of the data key."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
            self._secret
        )

    def fingerprint(self) -> str:
        """A short non-secret tag that tells two keys apart (for diagnostics)."""
        return hashlib.sha256(self.derive(b"minga/store/fingerprint")).hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataKey) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        return "DataKey(<secret>)"

    def _wrap(self, passphrase: str, params: Argon2Params) -> bytes:
        return lock(self._secret, passphrase, purpose=_PURPOSE, params=params)


def key_file(data_dir: Path) -> Path:
    return data_dir / KEY_FILE_NAME


def _write_private_file(path: Path, content: bytes) -> None:
    """Write atomically with owner-only permissions, so a crash never leaves half a key."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def create_data_key(
    data_dir: Path, passphrase: str, params: Argon2Params = DEFAULT_PARAMS
) -> DataKey:
    """Make a new data key, lock it with ``passphrase`` and save it in ``data_dir``."""
    _require_passphrase(passphrase)
    path = key_file(data_dir)
    if path.exists():
        raise DataKeyExists(f"{path} already exists; refusing to replace the store's data key")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = DataKey.generate()
    _write_private_file(path, key._wrap(passphrase, params))
    return key


def unlock_data_key(data_dir: Path, passphrase: str) -> DataKey:
    """Open ``DATA_DIR/store.key``; raise :class:`WrongPassphrase` if the passphrase is wrong."""
    path = key_file(data_dir)
    try:
        box = path.read_bytes()
    except FileNotFoundError:
        raise StoreLocked(f"{path} does not exist: run `minga init` first") from None
    except OSError as error:
        raise StoreLocked(f"{path}: cannot read ({error.strerror})") from None
    try:
        return DataKey(unlock(box, passphrase, purpose=_PURPOSE))
    except MalformedBox as error:
        raise StoreLocked(f"{path} is damaged: {error}") from None


def change_passphrase(
    data_dir: Path, old: str, new: str, params: Argon2Params = DEFAULT_PARAMS
) -> None:
    """Rewrap the data key under a new passphrase (the old one must be right)."""
    _require_passphrase(new)
    key = unlock_data_key(data_dir, old)
    _write_private_file(key_file(data_dir), key._wrap(new, params))


def _require_passphrase(passphrase: str) -> None:
    if not passphrase:
        raise StoreLocked("the passphrase is empty")


def passphrase_from(
    config_passphrase_file: Path | None,
    env: Mapping[str, str],
    prompt: Callable[[], str] | None,
) -> str:
    """The node passphrase: from the configured file, else the systemd credential
    ``passphrase`` (``$CREDENTIALS_DIRECTORY/passphrase``), else ``MINGA_PASSPHRASE``, else
    ``prompt``.

    ``prompt`` is given only when a person is at a terminal (for example wrapping
    ``getpass.getpass``). A trailing newline in the file is not part of the passphrase.
    """
    if config_passphrase_file is not None:
        return _passphrase_from_file(config_passphrase_file)
    credentials = env.get(CREDENTIALS_DIRECTORY_ENV)
    if credentials and (Path(credentials) / PASSPHRASE_CREDENTIAL).exists():
        return _passphrase_from_file(Path(credentials) / PASSPHRASE_CREDENTIAL,
                                     "the systemd credential 'passphrase'")
    from_env = env.get(PASSPHRASE_ENV)
    if from_env:
        return from_env
    if prompt is not None:
        typed = prompt()
        if not typed:
            raise StoreLocked("no passphrase was typed")
        return typed
    raise StoreLocked(
        "the node is locked and no passphrase is available: set node.passphrase_file in"
        f" node.toml, give the service a credential named '{PASSPHRASE_CREDENTIAL}'"
        f" (LoadCredential=), set {PASSPHRASE_ENV}, or start the node from a terminal to be asked"
    )


def _passphrase_from_file(path: Path, source: str = "node.passphrase_file") -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StoreLocked(f"passphrase file {path} ({source}) does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise StoreLocked(f"passphrase file {path} ({source}): {reason}") from None
    passphrase = text.rstrip("\r\n")
    if not passphrase:
        raise StoreLocked(f"passphrase file {path} ({source}) is empty")
    return passphrase
