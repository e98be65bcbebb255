"""The evidence package: one ZIP a lawyer or a UN mechanism can check without Minga's network.

It holds:

- ``original/<name>``: the original file, byte for byte as it was received;
- ``original.sha256``: its SHA-256 in the form ``sha256sum -c`` reads;
- ``custody-log.json``: every custody entry, each signed by the issuing node;
- ``head.json``: a signed statement (``minga.evidence-package/1``) naming the file, its hash and
  size, how many entries the log has and the hash of the last, so no entry can be cut from the
  end;
- ``issuer.json``: the issuer's self-signed member entry (its public keys and the chain of key
  rotations back to the key its org id is the fingerprint of);
- ``witnesses/<org id>.json``: the member entry of each organisation that countersigned the
  file's existence (a ``countersignature`` entry of the log, checked with these keys);
- ``VERIFY-en.txt`` and ``VERIFICAR-es.txt``: how to check it, in plain language.

:func:`verify_package` checks a package with nothing but the package: it is what ``minga
evidence verify`` runs, and needs no node, no network and no data directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from federation.canonical import CanonicalJSONError, canonical_json
from federation.encoding import EncodingError, b64u_decode, b64u_encode
from federation.identity import IdentityError, read_member_entry, sign_member_entry, signing_kid
from node.core.runtime import Node
from node.core.store import RecordNotFound
from node.features.evidence.attachments import Attachment, AttachmentStore
from node.features.evidence.custody import (
    Action,
    Copy,
    CustodyEntry,
    head_after,
    verify_log,
)
from node.features.evidence.guide import GUIDE_EN, GUIDE_ES
from node.features.evidence.service import (
    AUDIT_ACCESS,
    append_custody,
    associated_data,
    copy_path,
    open_stream,
)
from node.features.evidence.witness import check_countersignature

PACKAGE_TYPE: Final = "minga.evidence-package/1"
PACKAGE_MEDIA_TYPE: Final = "application/zip"
LOG_FILE: Final = "custody-log.json"
HEAD_FILE: Final = "head.json"
ISSUER_FILE: Final = "issuer.json"
HASH_FILE: Final = "original.sha256"
ORIGINAL_DIR: Final = "original/"
WITNESS_DIR: Final = "witnesses/"
_READ: Final = 1024 * 1024


@dataclass(frozen=True)
class ExportedPackage:
    content: bytes
    file_name: str


def _signed_head(node: Node, attachment: Attachment, entries: list[dict[str, Any]],
                 now: int) -> dict[str, Any]:
    head = head_after(entries)
    statement: dict[str, Any] = {
        "type": PACKAGE_TYPE, "attachment": attachment.attachment_id,
        "file": ORIGINAL_DIR + attachment.name, "sha256": attachment.sha256,
        "size": attachment.size, "media_type": attachment.media_type,
        "entries": head.entries, "last_hash": head.last_hash, "issued_at": now,
        "org": node.org_id, "kid": signing_kid(node.keys.signing.public_key()),
    }
    statement["signature"] = b64u_encode(node.keys.signing.sign(canonical_json(statement)))
    return statement


async def write_package(node: Node, attachment_id: str, out: IO[bytes], *, actor: str,
                        now: int) -> Attachment:
    """Write the package of one attachment to ``out``; the export is a custody entry (the
    last one the package carries) and an audit entry."""
    async with node.store.transaction() as tx:
        attachments = AttachmentStore(tx.session, tx.cipher)
        attachment = await attachments.get(attachment_id)
        await append_custody(node, tx, attachment, Action.EXPORT, actor=actor, at=now,
                             details={"copy": Copy.ORIGINAL.value, "as": "evidence-package"})
        entries = await attachments.entries(attachment_id)
        await tx.audit.append(actor, AUDIT_ACCESS, target=attachment.record_id,
                              details={"attachment": attachment_id, "action": "export"})
        own = node.own
        witnesses = {}
        for witness in sorted(_witnesses(entries)):
            with contextlib.suppress(RecordNotFound):
                witnesses[witness] = (await tx.orgs.member(witness)).entry
    issuer = sign_member_entry(node.keys, {"name": own.name, "country": own.country})
    head = _signed_head(node, attachment, entries, now)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open(ORIGINAL_DIR + attachment.name, "w", force_zip64=True) as original:
            async for piece in open_stream(copy_path(node, attachment_id, Copy.ORIGINAL),
                                           attachment.key,
                                           associated_data(attachment_id, Copy.ORIGINAL)):
                original.write(piece)
        archive.writestr(HASH_FILE, f"{attachment.sha256}  {ORIGINAL_DIR}{attachment.name}\n")
        archive.writestr(LOG_FILE, json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
        archive.writestr(HEAD_FILE, json.dumps(head, indent=2, ensure_ascii=False) + "\n")
        archive.writestr(ISSUER_FILE, json.dumps(issuer, indent=2, ensure_ascii=False) + "\n")
        for witness, entry in witnesses.items():
            archive.writestr(f"{WITNESS_DIR}{witness}.json",
                             json.dumps(entry, indent=2, ensure_ascii=False) + "\n")
        archive.writestr("VERIFY-en.txt", GUIDE_EN)
        archive.writestr("VERIFICAR-es.txt", GUIDE_ES)
    return attachment


def _witnesses(entries: list[dict[str, Any]]) -> set[str]:
    return {str(entry["details"].get("witness")) for entry in entries
            if entry.get("action") == Action.COUNTERSIGNATURE.value
            and isinstance(entry.get("details"), dict)}


async def export_package(node: Node, attachment_id: str, *, actor: str,
                         now: int) -> ExportedPackage:
    buffer = io.BytesIO()
    attachment = await write_package(node, attachment_id, buffer, actor=actor, now=now)
    return ExportedPackage(buffer.getvalue(), f"evidence-{attachment.attachment_id}.zip")


# --- verification (no node needed) ------------------------------------------------------------


@dataclass(frozen=True)
class PackageReport:
    problems: tuple[str, ...]
    org_id: str = ""
    org_name: str = ""
    safety_code: str = ""
    file: str = ""
    sha256: str = ""
    entries: tuple[Mapping[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def _json(archive: zipfile.ZipFile, name: str) -> Any:
    return json.loads(archive.read(name))


def _issuer_keys(issuer: Any) -> tuple[dict[str, Ed25519PublicKey], Any]:
    member = read_member_entry(issuer)
    keys = [member.first_signing, *(r.signing for r in member.rotations),
            member.public.signing_public()]
    return {signing_kid(key): key for key in keys}, member


def _head_problems(head: Any, keys: Mapping[str, Ed25519PublicKey], org_id: str) -> list[str]:
    if not isinstance(head, dict) or head.get("type") != PACKAGE_TYPE:
        return [f"{HEAD_FILE} is not a {PACKAGE_TYPE} statement"]
    key = keys.get(str(head.get("kid")))
    try:
        if key is None:
            raise InvalidSignature
        unsigned = canonical_json({k: v for k, v in head.items() if k != "signature"})
        key.verify(b64u_decode(str(head.get("signature"))), unsigned)
    except (InvalidSignature, EncodingError, CanonicalJSONError):
        return [f"{HEAD_FILE}: the issuer's signature does not verify"]
    if head.get("org") != org_id:
        return [f"{HEAD_FILE} names another organisation than {ISSUER_FILE}"]
    return []


def _original_problems(archive: zipfile.ZipFile, head: Mapping[str, Any]) -> list[str]:
    name = str(head.get("file", ""))
    try:
        info = archive.getinfo(name)
    except KeyError:
        return [f"the package holds no {name}"]
    digest = hashlib.sha256()
    with archive.open(info) as original:
        while piece := original.read(_READ):
            digest.update(piece)
    problems = []
    if digest.hexdigest() != head.get("sha256"):
        problems.append(f"{name}: its SHA-256 is not the one the issuer signed: the file was"
                        " changed")
    if info.file_size != head.get("size"):
        problems.append(f"{name}: its size is not the one the issuer signed")
    return problems


def verify_package(path: Path | IO[bytes]) -> PackageReport:
    """Check a package with only what is in it (see the module docstring)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _verify_archive(archive)
    except (OSError, zipfile.BadZipFile) as error:
        return PackageReport((f"not a readable evidence package ({error})",))


def _verify_archive(archive: zipfile.ZipFile) -> PackageReport:
    try:
        issuer, head, entries = (_json(archive, name) for name in (ISSUER_FILE, HEAD_FILE,
                                                                   LOG_FILE))
    except (KeyError, ValueError) as error:
        return PackageReport((f"the package is incomplete or unreadable ({error})",))
    try:
        keys, member = _issuer_keys(issuer)
    except IdentityError as error:
        return PackageReport((f"{ISSUER_FILE}: {error}",))
    org_id = member.public.org_id
    problems = _head_problems(head, keys, org_id)
    if problems:
        return PackageReport(tuple(problems), org_id)
    if not isinstance(entries, list):
        entries = []
        problems.append(f"{LOG_FILE} is not a list of entries")
    log = verify_log(entries, keys, attachment=head.get("attachment"),
                     sha256=head.get("sha256"))
    problems.extend(f"{LOG_FILE}: {problem}" for problem in log.problems)
    if (log.head.entries, log.head.last_hash) != (head.get("entries"), head.get("last_hash")):
        problems.append(f"{LOG_FILE} is not the log the issuer signed in {HEAD_FILE}: entries"
                        " were removed, added or changed")
    problems.extend(f"{LOG_FILE}: an entry is signed by another organisation"
                    for entry in log.entries if entry.org != org_id)
    problems.extend(_original_problems(archive, head))
    problems.extend(_countersignature_problems(archive, log.entries, org_id,
                                               str(head.get("sha256", ""))))
    return PackageReport(tuple(problems), org_id, str(member.profile.get("name", "")),
                         member.public.safety_code(), str(head.get("file", "")),
                         str(head.get("sha256", "")), tuple(entries))


def _countersignature_problems(archive: zipfile.ZipFile, entries: Sequence[CustodyEntry],
                               org_id: str, sha256: str) -> list[str]:
    """Each countersignature checked with its witness's keys, as the package carries them."""
    problems = []
    for entry in entries:
        if entry.action is not Action.COUNTERSIGNATURE:
            continue
        where = f"{LOG_FILE}: entry {entry.seq}"
        witness = str(entry.details.get("witness"))
        try:
            keys, member = _issuer_keys(_json(archive, f"{WITNESS_DIR}{witness}.json"))
        except (KeyError, ValueError, IdentityError):
            problems.append(f"{where}: the package holds no valid member entry of the witness"
                            f" {witness}")
            continue
        if member.public.org_id != witness:
            problems.append(f"{where}: the witness's member entry is another organisation's")
            continue
        statement = entry.details.get("statement")
        problems.extend(f"{where}: {problem}" for problem in check_countersignature(
            statement if isinstance(statement, dict) else {}, sha256_hex=sha256,
            salt=str(entry.details.get("salt", "")), holder=org_id, keys=keys))
    return problems
