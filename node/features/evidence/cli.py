"""``minga case attach`` and ``minga evidence verify|export|check-c2pa``.

``verify`` opens no node: it checks an evidence package with only what the package holds, so
it runs on a lawyer's machine with Minga installed and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from node.core.cli_support import CommandFailed, friendly, unix_now
from node.core.runtime import open_node
from node.features.evidence.attachments import Attachment, AttachmentNotFound
from node.features.evidence.chunks import CHUNK_SIZE
from node.features.evidence.credentials import Credentials, Verdict
from node.features.evidence.package import verify_package, write_package
from node.features.evidence.service import (
    EvidenceError,
    attach_file,
    check_credentials,
    unchecked_attachments,
)

ATTACH_AUTHOR = "minga case attach"
EXPORT_AUTHOR = "minga evidence export"
CHECK_AUTHOR = "minga evidence check-c2pa"
_friendly = friendly(EvidenceError)


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while piece := await asyncio.to_thread(source.read, CHUNK_SIZE):
            yield piece


def _describe(attachment: Attachment) -> str:
    working = attachment.working
    if working is not None and working.made:
        cleaned = (f"working copy without {len(working.removed)} metadata field(s)"
                   if working.removed else "working copy (no metadata found)")
    else:
        cleaned = "no working copy (mat2 cannot clean this kind of file)"
    found = attachment.credentials
    credentials = (f"  {attachment.manifest or 'c2pa'} {_verdict(found)}"
                   if found is not None and found.verdict is not Verdict.NONE else "")
    return (f"{attachment.attachment_id}  {attachment.media_type}  {attachment.size} bytes"
            f"  sha256 {attachment.sha256}  {cleaned}{credentials}")


def _verdict(found: Credentials) -> str:
    untrusted = found.verdict is Verdict.VALID and not found.signer_trusted
    return (found.verdict.value + (" (signer not on a trust list)" if untrusted else "")
            + (f" ({', '.join(problem.value for problem in found.problems)})"
               if found.problems else ""))


async def _attach(config: str | None, record_id: str, files: list[Path]) -> None:
    async with open_node(config) as node:
        for path in files:
            attachment = await attach_file(node, record_id, path.name, _read(path),
                                            actor=ATTACH_AUTHOR, now=unix_now())
            print(f"{path.name}: {_describe(attachment)}")


@_friendly
def cmd_attach(args: argparse.Namespace) -> int:
    files = [Path(name) for name in args.files]
    for path in files:
        if not path.is_file():
            raise CommandFailed(f"{path}: no such file")
    asyncio.run(_attach(args.config, args.record_id, files))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify_package(Path(args.package))
    if report.org_id:
        print(f"issuer: {report.org_name} ({report.org_id})")
        print(f"issuer's safety code: {report.safety_code}")
        print("  compare these with the organisation by a channel you trust")
    if report.file:
        print(f"file: {report.file}  sha256 {report.sha256}")
    for entry in report.entries:
        if isinstance(entry, dict):
            print(f"  {entry.get('seq')}. {entry.get('action')} at {entry.get('at')}")
    if report.ok:
        print("the package verifies: the file is the one collected, and its custody log is"
              " complete, in order and signed by the issuer")
        return 0
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print("the package does NOT verify", file=sys.stderr)
    return 1


async def _export(config: str | None, attachment_id: str, out: Path) -> None:
    async with open_node(config) as node:
        with out.open("xb") as target:
            try:
                await write_package(node, attachment_id, target, actor=EXPORT_AUTHOR,
                                    now=unix_now())
            except AttachmentNotFound:
                raise CommandFailed(f"there is no attached file {attachment_id}") from None


@_friendly
def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists():
        raise CommandFailed(f"--out: {out} already exists; choose a new file name")
    try:
        asyncio.run(_export(args.config, args.attachment_id, out))
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    print(f"wrote {out}", file=sys.stderr)
    print("This package holds the original file: keep it somewhere safe.", file=sys.stderr)
    return 0


async def _check_c2pa(config: str | None) -> None:
    async with open_node(config) as node:
        unchecked = await unchecked_attachments(node)
        checked = 0
        for attachment_id in unchecked:
            attachment = await check_credentials(node, attachment_id, actor=CHECK_AUTHOR,
                                                 now=unix_now())
            if attachment.credentials is None:
                continue  # the library failed on a file where no manifest was recognised
            checked += 1
            print(f"{attachment_id}  {attachment.manifest or 'c2pa'}"
                  f" {_verdict(attachment.credentials)}")
        print(f"checked {checked} of {len(unchecked)} file(s) not checked before",
              file=sys.stderr)


@_friendly
def cmd_check_c2pa(args: argparse.Namespace) -> int:
    asyncio.run(_check_c2pa(args.config))
    return 0


def add_commands(commands: Any) -> None:
    case = commands.add_parser("case", help="cases: attach files as evidence")
    case_actions = case.add_subparsers(dest="case_action", required=True)
    attach = case_actions.add_parser(
        "attach", help="attach files to a case: kept encrypted and unchanged, with a custody"
                       " log and a working copy without identifying metadata")
    attach.add_argument("record_id", help="the case's record id")
    attach.add_argument("files", nargs="+", help="the files to attach")
    attach.set_defaults(handler=cmd_attach)

    evidence = commands.add_parser("evidence", help="evidence files and their custody")
    actions = evidence.add_subparsers(dest="evidence_action", required=True)
    verify = actions.add_parser(
        "verify", help="check an evidence package offline (no node needed)")
    verify.add_argument("package", help="the evidence package (.zip)")
    verify.set_defaults(handler=cmd_verify)
    export = actions.add_parser("export", help="write the evidence package of an attached file")
    export.add_argument("attachment_id")
    export.add_argument("--out", required=True, help="the .zip file to write (a new file)")
    export.set_defaults(handler=cmd_export)
    check = actions.add_parser(
        "check-c2pa", help="check the C2PA content credentials and ProofMode bundles of files"
                           " attached before this node checked them on arrival (each check is"
                           " a custody entry)")
    check.set_defaults(handler=cmd_check_c2pa)
