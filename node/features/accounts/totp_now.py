"""``python -m node.features.accounts.totp_now SECRET``: print the current 6-digit code of a TOTP
secret.

What an authenticator app shows, for the demo and for testing on a machine without a phone.
It only computes; whoever has the secret can do the same with any authenticator app.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from node.features.accounts.totp import InvalidTotpSecret, secret_from_text, totp


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m node.features.accounts.totp_now SECRET", file=sys.stderr)
        return 2
    try:
        secret = secret_from_text(argv[0])
    except InvalidTotpSecret as error:
        print(f"totp_now: {error}", file=sys.stderr)
        return 2
    print(totp(secret, int(time.time())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
