"""Checking a ProofMode proof bundle with Debian's ``gpg`` (the thin adapter; decision 0031).

The bundle is the plaintext ZIP that :func:`.service.make_working_copy` has already written into
its private directory; its members are read from the ZIP as streams and never extracted: a media
file's bytes are hashed and piped into ``gpg --verify`` in one pass. ``gpg`` runs with a new,
empty home directory (0700, removed afterwards) holding only the bundle's ``pubkey.asc``, so the
machine's keyrings are never used, and with key retrieval and dirmngr off, so it never touches
the network. Its machine-readable status lines (``--status-file``) say GOODSIG, VALIDSIG, BADSIG,
ERRSIG...; :mod:`.proofmode` turns them into the verdict. Sizes and run times are bounded.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
import subprocess
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import IO, Final, Protocol

from node.features.evidence.credentials import Credentials
from node.features.evidence.proofmode import (
    PUBKEY,
    Item,
    ItemFacts,
    Signature,
    expected_hash,
    judge,
    named_media,
    plan,
    unreadable,
)

log = logging.getLogger(__name__)

GPG: Final = "/usr/bin/gpg"
GPGCONF: Final = "/usr/bin/gpgconf"
MAX_MEMBERS: Final = 1000
MAX_SMALL_BYTES: Final = 1024 * 1024
"""The most read of a key, a proof JSON or a signature."""
MAX_MEDIA_BYTES: Final = 16 * 2**30
TIMEOUT_SECONDS: Final = 300
PIECE: Final = 1024 * 1024
_OPTIONS: Final = ("--batch", "--no-tty", "--no-greeting", "--quiet", "--no-options",
                   "--no-auto-key-retrieve", "--disable-dirmngr", "--trust-model", "always")


class _Source(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _Unusable(Exception):
    """The bundle cannot be checked at all; the message is a reason code."""


def _small(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > MAX_SMALL_BYTES:
        raise _Unusable("bundle.partTooLarge")
    with archive.open(info) as member:
        return member.read(MAX_SMALL_BYTES + 1)[:MAX_SMALL_BYTES]


def status_of(lines: list[str]) -> tuple[Signature, str]:
    """What ``gpg --verify``'s status lines say about one signature, and the fingerprint of the
    primary key that made it when it verifies."""
    words = [line.split() for line in lines if line.startswith("[GNUPG:] ")]
    said = {parts[1]: parts[2:] for parts in words if len(parts) > 1}
    fingerprint = ""
    if said.get("VALIDSIG"):
        fingerprint = said["VALIDSIG"][-1]
    if "BADSIG" in said:
        return Signature.BAD, ""
    if "REVKEYSIG" in said:
        return Signature.REVOKED_KEY, fingerprint
    if "EXPKEYSIG" in said:
        return Signature.EXPIRED_KEY, fingerprint
    if "GOODSIG" in said and "VALIDSIG" in said:
        return Signature.GOOD, fingerprint
    if "NO_PUBKEY" in said or ("ERRSIG" in said and said["ERRSIG"][-1:] == ["9"]):
        return Signature.UNKNOWN_KEY, ""
    return Signature.BAD, ""


class _Gpg:
    """``gpg`` confined to one temporary home holding only the bundle's key."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def _command(self, *args: str) -> list[str]:
        return [GPG, "--homedir", str(self.home), *_OPTIONS,
                "--status-file", str(self.home / "status"), *args]

    def _run(self, command: list[str], data: _Source | None, sink: list[str]) -> int:
        """Run ``command`` feeding it ``data``; status lines into ``sink``; killed on timeout."""
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        timer = threading.Timer(TIMEOUT_SECONDS, process.kill)
        timer.start()
        try:
            assert process.stdin is not None
            try:
                while data is not None and (piece := data.read(PIECE)):
                    process.stdin.write(piece)
                process.stdin.close()
            except BrokenPipeError:
                pass
            code = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        status = self.home / "status"
        if status.exists():
            sink += status.read_text(errors="replace").splitlines()
            status.unlink()
        return code

    def import_key(self, key: bytes) -> bool:
        (self.home / PUBKEY).write_bytes(key)
        lines: list[str] = []
        self._run(self._command("--import", str(self.home / PUBKEY)), None, lines)
        return any(line.startswith("[GNUPG:] IMPORT_OK") for line in lines)

    def verify(self, signature: bytes, data: _Source) -> tuple[Signature, str]:
        path = self.home / "signature.asc"
        path.write_bytes(signature)
        lines: list[str] = []
        self._run(self._command("--verify", str(path), "-"), data, lines)
        path.unlink()
        return status_of(lines)


class _Hashing:
    """A readable that hashes what is read through it."""

    def __init__(self, source: IO[bytes]) -> None:
        self.source = source
        self.digest = hashlib.sha256()

    def read(self, size: int) -> bytes:
        piece = self.source.read(size)
        self.digest.update(piece)
        return piece


def _media_facts(archive: zipfile.ZipFile, gpg: _Gpg, item: Item,
                 proof: bytes) -> ItemFacts:
    expected = expected_hash(proof, item.proof)
    proof_signature, proof_fingerprint = Signature.MISSING, ""
    if item.proof_signature:
        proof_signature, proof_fingerprint = gpg.verify(
            _small(archive, item.proof_signature), io.BytesIO(proof))
    if not item.media:
        return ItemFacts(False, expected, "", Signature.MISSING, proof_signature,
                         proof_fingerprint)
    info = archive.getinfo(item.media)
    if info.file_size > MAX_MEDIA_BYTES:
        raise _Unusable("bundle.partTooLarge")
    media_signature, media_fingerprint = Signature.MISSING, ""
    with archive.open(info) as member:
        hashing = _Hashing(member)
        if item.media_signature:
            media_signature, media_fingerprint = gpg.verify(
                _small(archive, item.media_signature), hashing)
        while hashing.read(PIECE):  # the rest, when gpg stopped early or there is no signature
            pass
    fingerprints = {proof_fingerprint, media_fingerprint} - {""}
    return ItemFacts(True, expected, hashing.digest.hexdigest(), media_signature,
                     proof_signature, fingerprints.pop() if len(fingerprints) == 1 else "")


def _check(bundle: Path, home: Path) -> Credentials:
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        if len(names) > MAX_MEMBERS:
            raise _Unusable("bundle.tooManyParts")
        keys = [name for name in names if name.rsplit("/", 1)[-1] == PUBKEY]
        proofs = {name: _small(archive, name) for name in names if name.endswith(".proof.json")}
        items = plan(names, {name: named_media(data) for name, data in proofs.items()})
        gpg = _Gpg(home)
        has_key = len(keys) == 1 and gpg.import_key(_small(archive, keys[0]))
        facts = [_media_facts(archive, gpg, item, proofs[item.proof]) for item in items]
    return judge(has_key=has_key, items=facts)


def check_bundle(bundle: Path) -> Credentials:
    """The verdict on the ProofMode bundle at ``bundle`` (a ZIP :mod:`.provenance` recognised)."""
    if not Path(GPG).exists():
        log.warning("gpg is not installed: ProofMode bundles are not checked")
        return unreadable("gpg.unavailable")
    home = Path(tempfile.mkdtemp(prefix="minga-gpg-"))  # 0700
    try:
        return _check(bundle, home)
    except _Unusable as reason:
        return unreadable(str(reason))
    except (OSError, zipfile.BadZipFile, ValueError, json.JSONDecodeError, KeyError) as error:
        log.info("a ProofMode bundle could not be checked: %s", type(error).__name__)
        return unreadable("bundle.unreadable")
    finally:
        _stop_daemons(home)
        shutil.rmtree(home, ignore_errors=True)


def _stop_daemons(home: Path) -> None:
    """Stop any gpg-agent the check made start (importing a secret key does), so that nothing
    outlives the temporary home."""
    if any(home.glob("S.*")) and Path(GPGCONF).exists():
        subprocess.run([GPGCONF, "--homedir", str(home), "--kill", "all"], check=False,
                       capture_output=True, timeout=TIMEOUT_SECONDS)
