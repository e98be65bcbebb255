#!/usr/bin/env python3
"""Exempt the Minga node's Matrix account from the homeserver's message rate limits.

Synapse limits every account to 0.2 messages a second by default (``rc_message``), which is
right for people and throttles a node that posts a backlog of records. The limit is lifted for
the node's account only, with Synapse's admin API (``POST
/_synapse/admin/v1/users/<user>/override_ratelimit``), once the account exists (after ``minga
init``). Run it on the homeserver's machine (the admin API is on loopback only)::

    python3 exempt_from_rate_limits.py --admin-user admin @minga-node:matrix.example.org

It asks for the admin account's password (or reads ``--admin-password-file``, or uses the
access token in ``--admin-token-file``), logs in, sets the override, reads it back, and logs
out. Only the standard library: it runs with the system's Python 3, without Minga installed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

NO_LIMIT = {"messages_per_second": 0, "burst_count": 0}


class Refused(Exception):
    """The homeserver said no, or could not be reached; the message says which and why."""


def call(base: str, method: str, path: str, token: str | None = None,
         body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        base.rstrip("/") + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read() or b"{}")
            return answer
    except urllib.error.HTTPError as error:
        try:
            detail = json.loads(error.read()).get("error", "")
        except ValueError:
            detail = ""
        raise Refused(f"{method} {path}: HTTP {error.code} {detail}".rstrip()) from None
    except (urllib.error.URLError, OSError) as error:
        raise Refused(f"cannot reach {base} ({getattr(error, 'reason', error)})") from None


def read_secret(path: str, option: str) -> str:
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise Refused(f"{option}: cannot read {path} ({error.strerror})") from None
    if not secret:
        raise Refused(f"{option}: {path} is empty")
    return secret


def exempt(base: str, token: str, user_id: str) -> dict[str, Any]:
    path = f"/_synapse/admin/v1/users/{urllib.parse.quote(user_id, safe='')}/override_ratelimit"
    call(base, "POST", path, token, NO_LIMIT)
    return call(base, "GET", path, token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("user_id", help="the node's Matrix account, e.g. @minga-node:example.org")
    parser.add_argument("--homeserver", default="http://127.0.0.1:8008",
                        help="the homeserver's loopback address (default: %(default)s)")
    parser.add_argument("--admin-user", help="a server admin's account (its password is asked)")
    parser.add_argument("--admin-password-file", help="file holding that admin's password")
    parser.add_argument("--admin-token-file", help="file holding an admin's access token")
    args = parser.parse_args(argv)
    try:
        if args.admin_token_file:
            token, logged_in = read_secret(args.admin_token_file, "--admin-token-file"), False
        elif args.admin_user:
            password = (read_secret(args.admin_password_file, "--admin-password-file")
                        if args.admin_password_file
                        else getpass.getpass(f"Password of {args.admin_user}: "))
            token = call(args.homeserver, "POST", "/_matrix/client/v3/login", body={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": args.admin_user},
                "password": password, "initial_device_display_name": "rate-limit exemption",
            })["access_token"]
            logged_in = True
        else:
            parser.error("give --admin-user or --admin-token-file")
        try:
            now = exempt(args.homeserver, token, args.user_id)
        finally:
            if logged_in:
                call(args.homeserver, "POST", "/_matrix/client/v3/logout", token, {})
    except Refused as error:
        print(f"exempt_from_rate_limits: {error}", file=sys.stderr)
        return 2
    if now.get("messages_per_second") != 0 or now.get("burst_count") != 0:
        print(f"exempt_from_rate_limits: the homeserver kept a limit for {args.user_id}: {now}",
              file=sys.stderr)
        return 1
    print(f"{args.user_id} is exempt from message rate limits on {args.homeserver}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
