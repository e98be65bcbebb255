"""A whole node in one encrypted file: ``minga backup create FILE`` / ``minga backup restore``.

What is inside: every file of the data directory — the database (cases, roster, settings, the
Matrix login, API tokens, audit log, and every other package's tables such as the sync outbox,
since they share the database), ``store.key`` and ``node.toml`` — as a tar archive. The database
is copied with SQLite's online backup, so a running node can be backed up. A store on
PostgreSQL (``[store] url``) is copied from one consistent snapshot into an SQLite file in the
archive, every table's rows counted; it restores as an SQLite node (``[store] url`` emptied in
the restored node.toml), which ``minga store move --to URL`` puts back on PostgreSQL. Left
out: SQLite's side files (their content is in the copy), temporary files, and the passphrase file if
``node.passphrase_file`` points into the data directory (a backup must not carry the secret
that opens it).

How it is protected. A fresh random 256-bit file key encrypts the archive; the key is locked with
the node passphrase by :mod:`federation.secretbox` (Argon2id), so the backup restores on a fresh
machine with the passphrase the node had when the backup was made. The archive is cut into
1 MiB chunks, each sealed with ChaCha20-Poly1305 under a nonce made of its position and a
last-chunk flag, with the file header as associated data (the STREAM construction): a changed,
reordered, dropped or cut-off chunk makes the restore fail, before anything is put in place.

File layout::

    "MINGABK1" | u32 length of the key box | key box | chunks
    chunk = u32 length of ciphertext | ciphertext

Restoring refuses a data directory that exists and is not empty, unpacks into a temporary
directory next to it, opens the store with the passphrase to prove it works, and only then
renames it into place.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import secrets
import shutil
import sqlite3
import struct
import tarfile
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from federation.secretbox import (
    DEFAULT_PARAMS,
    Argon2Params,
    MalformedBox,
    WrongPassphrase,
    lock,
    unlock,
)
from node.core.config import ConfigError, NodeConfig, StoreSection, load_config
from node.core.runtime import SYNC_MIGRATIONS, NodeNotReady, store_location
from node.core.store import STORE_MIGRATIONS, StoreError, open_store, unlock_data_key
from node.core.store.database import DATABASE_FILE_NAME
from node.core.store.move import snapshot_database
from node.core.store.unlock import KEY_FILE_NAME
from node.core.store_move import with_store_section
from node.features.backup.record import record_backup

BACKUP_FORMAT = "minga.backup/1"
MAGIC = b"MINGABK1"
MANIFEST = "MANIFEST.json"
CONFIG_IN_ARCHIVE = "node.toml"
CHUNK_BYTES = 1 << 20
_PURPOSE = b"minga/backup-file-key/v1"
_LENGTH = struct.Struct(">I")
_MAX_BOX = 4096
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
_SNAPSHOT_PREFIX = ".minga-backup-"


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why."""


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    files: tuple[str, ...]
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestoreSummary:
    data_dir: Path
    config_file: Path | None
    org_id: str
    files: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())


# --- the sealed stream -------------------------------------------------------------------

def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class _SealingWriter:
    """A write-only file object that seals what it is given, chunk by chunk."""

    def __init__(self, out: IO[bytes], key: bytes, header: bytes) -> None:
        self._out = out
        self._aead = ChaCha20Poly1305(key)
        self._header = header
        self._buffer = bytearray()
        self._counter = 0
        out.write(header)

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > CHUNK_BYTES:
            self._seal(bytes(self._buffer[:CHUNK_BYTES]), last=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def finish(self) -> None:
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._counter, last), chunk, self._header)
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)
        self._counter += 1


class _OpeningReader:
    """A read-only file object over a sealed stream; fails on any change or truncation."""

    def __init__(self, source: IO[bytes], key: bytes, header: bytes) -> None:
        self._source = source
        self._aead = ChaCha20Poly1305(key)
        self._header = header
        self._buffer = bytearray()
        self._counter = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._open_next()
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _open_next(self) -> None:
        length = self._source.read(_LENGTH.size)
        if len(length) != _LENGTH.size:
            raise BackupError("the backup file is cut short")
        (size,) = _LENGTH.unpack(length)
        if size > CHUNK_BYTES + 16:
            raise BackupError("the backup file is damaged (a chunk is too long)")
        sealed = self._source.read(size)
        for last in (False, True):
            try:
                chunk = self._aead.decrypt(_nonce(self._counter, last), sealed, self._header)
            except InvalidTag:
                continue
            self._buffer += chunk
            self._counter += 1
            self._done = last
            if last and self._source.read(1):
                raise BackupError("the backup file has data after its end")
            return
        raise BackupError("the backup file was altered or damaged")


def _header(box: bytes) -> bytes:
    return MAGIC + _LENGTH.pack(len(box)) + box


def _read_header(source: IO[bytes]) -> tuple[bytes, bytes]:
    """(header bytes, key box) of a backup file."""
    magic = source.read(len(MAGIC))
    length = source.read(_LENGTH.size)
    if magic != MAGIC or len(length) != _LENGTH.size:
        raise BackupError("this is not a Minga backup file")
    (size,) = _LENGTH.unpack(length)
    if size > _MAX_BOX:
        raise BackupError("this is not a Minga backup file (bad key box)")
    box = source.read(size)
    if len(box) != size:
        raise BackupError("the backup file is cut short")
    return magic + length + box, box


# --- creating ----------------------------------------------------------------------------

def _excluded(path: Path, data_dir: Path, skip: set[Path]) -> bool:
    name = path.name
    if path.resolve() in skip or name.endswith(".tmp") or name.startswith(_SNAPSHOT_PREFIX):
        return True
    return any(name == DATABASE_FILE_NAME + side for side in _SQLITE_SIDE_FILES) or (
        path.parent == data_dir and name == DATABASE_FILE_NAME
    )


def _data_files(data_dir: Path, skip: set[Path]) -> Iterator[tuple[Path, str]]:
    """(file, name in the archive) for every regular file to back up, in a stable order."""
    for root, directories, files in os.walk(data_dir, followlinks=False):
        directories.sort()
        directories[:] = [d for d in directories if not d.startswith(_SNAPSHOT_PREFIX)]
        for name in sorted(files):
            path = Path(root) / name
            if path.is_symlink() or not path.is_file() or _excluded(path, data_dir, skip):
                continue
            yield path, path.relative_to(data_dir).as_posix()


def _snapshot_database(database: Path, directory: Path) -> Path:
    """A consistent copy of the SQLite database, taken while the node may be writing."""
    copy = directory / DATABASE_FILE_NAME
    source = sqlite3.connect(database)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return copy


def _snapshot_postgresql(config: NodeConfig, directory: Path) -> Path:
    """The PostgreSQL store as an SQLite file, copied from one snapshot while the node runs."""
    try:
        source = store_location(config.store, config.node.data_dir)
        copy = snapshot_database(source, directory, [STORE_MIGRATIONS, SYNC_MIGRATIONS])
        # A thread of its own, so that this also works when called inside an event loop.
        with ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(asyncio.run, copy).result()
    except (NodeNotReady, StoreError) as error:
        raise BackupError(f"[store] url: {error}") from None
    return directory / DATABASE_FILE_NAME


def _add_bytes(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(content))


def _add_file(archive: tarfile.TarFile, path: Path, name: str) -> None:
    info = archive.gettarinfo(str(path), arcname=name)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    with path.open("rb") as handle:
        archive.addfile(info, handle)


def create_backup(
    config_file: Path,
    destination: Path,
    passphrase: str,
    *,
    created_at: int,
    params: Argon2Params = DEFAULT_PARAMS,
) -> BackupSummary:
    """Write the whole node configured in ``config_file`` to ``destination`` (a new file)."""
    try:
        config = load_config(config_file)
    except ConfigError as error:
        raise BackupError(str(error)) from None
    data_dir = config.node.data_dir
    on_sqlite = not config.store.is_postgresql
    if not (data_dir / KEY_FILE_NAME).exists() or (
            on_sqlite and not (data_dir / DATABASE_FILE_NAME).exists()):
        raise BackupError(f"no node in {data_dir}")
    if destination.exists():
        raise BackupError(f"{destination} already exists; choose a new file name")
    try:
        unlock_data_key(data_dir, passphrase)
    except WrongPassphrase:
        raise BackupError("wrong passphrase for this node") from None
    skip = {destination.resolve()}
    excluded = []
    if config.node.passphrase_file is not None:
        skip.add(config.node.passphrase_file.resolve())
        if config.node.passphrase_file.resolve().is_relative_to(data_dir.resolve()):
            excluded.append(config.node.passphrase_file.name)
    with tempfile.TemporaryDirectory(prefix=_SNAPSHOT_PREFIX, dir=data_dir) as scratch:
        snapshot = _snapshot_database(data_dir / DATABASE_FILE_NAME, Path(scratch)) \
            if on_sqlite else _snapshot_postgresql(config, Path(scratch))
        files = [(snapshot, DATABASE_FILE_NAME), *_data_files(data_dir, skip)]
        if not config_file.resolve().is_relative_to(data_dir.resolve()):
            files.append((config_file, CONFIG_IN_ARCHIVE))
        names = tuple(name for _, name in files)
        manifest = {"format": BACKUP_FORMAT, "created_at": created_at, "files": list(names),
                    "config": _config_name(config_file, data_dir),
                    "store": "postgresql" if not on_sqlite else "sqlite"}
        _write_archive(destination, passphrase, params, files, manifest)
    record_backup(data_dir, created_at, destination.name)
    return BackupSummary(destination, names, tuple(excluded))


def _config_name(config_file: Path, data_dir: Path) -> str:
    resolved, base = config_file.resolve(), data_dir.resolve()
    return resolved.relative_to(base).as_posix() if resolved.is_relative_to(base) \
        else CONFIG_IN_ARCHIVE


def _write_archive(
    destination: Path,
    passphrase: str,
    params: Argon2Params,
    files: list[tuple[Path, str]],
    manifest: dict[str, object],
) -> None:
    key = secrets.token_bytes(32)
    header = _header(lock(key, passphrase, purpose=_PURPOSE, params=params))
    partial = destination.with_name(destination.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            writer = _SealingWriter(out, key, header)
            with tarfile.open(fileobj=cast(IO[bytes], writer), mode="w|",
                              format=tarfile.PAX_FORMAT) as archive:
                _add_bytes(archive, MANIFEST, json.dumps(manifest, indent=2).encode())
                for path, name in files:
                    _add_file(archive, path, name)
            writer.finish()
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, destination)
    except BaseException:
        with suppress(FileNotFoundError):
            partial.unlink()
        raise


# --- restoring ---------------------------------------------------------------------------

def _check_target(data_dir: Path) -> None:
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty; restore into a new or empty directory")


def _safe_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or any(p in ("..", "") for p in path.parts):
        raise BackupError("the backup contains a file name outside the node directory")
    return path


def _unpack(archive_file: Path, passphrase: str, target: Path) -> dict[str, object]:
    with archive_file.open("rb") as source:
        header, box = _read_header(source)
        try:
            key = unlock(box, passphrase, purpose=_PURPOSE)
        except WrongPassphrase:
            raise BackupError("wrong passphrase for this backup, or the file was altered") \
                from None
        except MalformedBox as error:
            raise BackupError(f"the backup file is damaged ({error})") from None
        reader = _OpeningReader(source, key, header)
        manifest: dict[str, object] | None = None
        try:
            with tarfile.open(fileobj=cast(IO[bytes], reader), mode="r|") as archive:
                for member in archive:
                    manifest = _unpack_member(archive, member, target) or manifest
        except tarfile.TarError as error:
            raise BackupError(f"the backup archive is damaged ({type(error).__name__})") \
                from None
        reader.read()  # the stream must end with its sealed last chunk
    if manifest is None or manifest.get("format") != BACKUP_FORMAT:
        raise BackupError("the backup has no manifest of a known format")
    return manifest


def _unpack_member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, target: Path
) -> dict[str, object] | None:
    if not member.isfile():
        raise BackupError("the backup contains something other than regular files")
    name = _safe_name(member.name)
    handle = archive.extractfile(member)
    assert handle is not None
    if str(name) == MANIFEST:
        loaded = json.loads(handle.read())
        return loaded if isinstance(loaded, dict) else None
    path = target.joinpath(*name.parts)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError("the backup contains the same file twice") from None
    with os.fdopen(descriptor, "wb") as out:
        shutil.copyfileobj(handle, out)
    return None


async def _open_restored(directory: Path, passphrase: str) -> str:
    try:
        data_key = unlock_data_key(directory, passphrase)
        store = await open_store(directory, data_key)
    except (WrongPassphrase, StoreError) as error:
        raise BackupError(f"the restored node does not open: {error}") from None
    try:
        async with store.read() as tx:
            own = await tx.orgs.own()
    finally:
        await store.close()
    if own is None:
        raise BackupError("the restored store holds no organisation")
    return own.org_id


def _config_warnings(config_file: Path | None, data_dir: Path) -> list[str]:
    if config_file is None:
        return ["the backup has no node.toml; write one before starting the node"]
    try:
        config = load_config(config_file)
    except ConfigError as error:
        return [f"node.toml does not load: {error}"]
    warnings = []
    if config.node.data_dir.resolve() != data_dir.resolve():
        warnings.append(f"{config_file}: set [node] data_dir = \".\" so it points at"
                        " the restored directory")
    if config.node.passphrase_file is not None and not config.node.passphrase_file.exists():
        warnings.append(f"{config_file}: node.passphrase_file does not exist here; create it"
                        " or remove the setting")
    return warnings


async def restore_backup(archive_file: Path, data_dir: Path, passphrase: str) -> RestoreSummary:
    """Restore a backup into ``data_dir``, which must not exist or be empty."""
    _check_target(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restoring-", dir=data_dir.parent))
    try:
        manifest = _unpack(archive_file, passphrase, staging)
        org_id = await _open_restored(staging, passphrase)
        _check_target(data_dir)
        if data_dir.exists():
            data_dir.rmdir()
        staging.rename(data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    config_name = manifest.get("config")
    config_file = data_dir / str(config_name) if isinstance(config_name, str) else None
    if config_file is not None and not config_file.exists():
        config_file = None
    notes = []
    if manifest.get("store") == "postgresql" and config_file is not None:
        config_file.write_text(with_store_section(config_file.read_text(encoding="utf-8"),
                                                  StoreSection()), encoding="utf-8")
        notes.append("the backup was taken from PostgreSQL and restores as an SQLite store"
                     " ([store] url emptied in node.toml); put it back with"
                     f" `minga --config {config_file} store move --to URL`")
    files = manifest.get("files")
    return RestoreSummary(
        data_dir=data_dir,
        config_file=config_file,
        org_id=org_id,
        files=tuple(str(f) for f in files) if isinstance(files, list) else (),
        warnings=(*notes, *_config_warnings(config_file, data_dir)),
    )
