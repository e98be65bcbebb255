"""Real ProofMode-style bundles for the tests: an OpenPGP key made with ``gpg`` in a temporary
home, a JPEG and its proof JSON signed with detached armoured signatures, and a ZIP holding them
with the device's ``pubkey.asc``, laid out as ProofMode's Android app does (parts named by the
media's SHA-256)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tests.features.evidence.samples import jpeg_with_gps

GPG = "/usr/bin/gpg"


@dataclass(frozen=True)
class Device:
    """A signing key in its own gpg home."""

    home: Path

    def _gpg(self, *args: str, data: bytes = b"") -> bytes:
        return subprocess.run([GPG, "--homedir", str(self.home), "--batch", "--no-tty",
                               "--pinentry-mode", "loopback", "--passphrase", "", *args],
                              input=data, capture_output=True, check=True).stdout

    def public_key(self) -> bytes:
        return self._gpg("--armor", "--export")

    def sign(self, data: bytes) -> bytes:
        return self._gpg("--armor", "--detach-sign", "--output", "-", data=data)

    def fingerprint(self) -> str:
        for line in self._gpg("--with-colons", "--list-keys").decode().splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        raise AssertionError("no key")

    def close(self) -> None:
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"], check=False,
                       capture_output=True)


def new_device(root: Path, name: str = "device") -> Device:
    home = Path(tempfile.mkdtemp(prefix="pm-", dir=root))
    device = Device(home)
    device._gpg("--quick-gen-key", f"{name} <{name}@proofmode.example>", "ed25519", "sign",
                "never")
    return device


def bundle(device: Device, *, media: bytes | None = None, change_media: bool = False,
           signer: Device | None = None, corrupt_signature: bool = False,
           drop: tuple[str, ...] = ()) -> bytes:
    """A ProofMode bundle of one JPEG. ``change_media``: the media in the ZIP differs from what
    was hashed and signed; ``signer``: another key signs the media; ``corrupt_signature``: the
    media signature is damaged; ``drop``: parts left out (``media-signature``, ``pubkey``...)."""
    photo = media if media is not None else jpeg_with_gps()
    digest = hashlib.sha256(photo).hexdigest()
    proof = json.dumps({"File Path": "/storage/emulated/0/DCIM/IMG_0001.jpg",
                        "File Hash SHA256": digest, "Proof Generated": "2026-12-01T10:00Z",
                        "Location.Latitude": "", "Notes": ""}).encode()
    media_signature = (signer or device).sign(photo)
    if corrupt_signature:
        media_signature = media_signature.replace(media_signature[60:70], b"AAAAAAAAAA")
    parts = {"IMG_0001.jpg": photo[:-3] + b"\x00\x00\x00" if change_media else photo,
             f"{digest}.proof.json": proof, f"{digest}.proof.json.asc": device.sign(proof),
             f"{digest}.proof.csv": b"File Path,File Hash SHA256\n",
             f"{digest}.asc": media_signature,
             "pubkey.asc": device.public_key()}
    names = {"media-signature": f"{digest}.asc", "proof-signature": f"{digest}.proof.json.asc",
             "pubkey": "pubkey.asc", "media": "IMG_0001.jpg"}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in parts.items():
            if name not in {names[part] for part in drop}:
                archive.writestr(name, data)
    return out.getvalue()
