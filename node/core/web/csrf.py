"""Cross-site request forgery protection for every form.

Every POST to a page must carry the field ``csrf``. Its expected value is an HMAC of a secret the
browser holds only in an HttpOnly, SameSite=Strict cookie: the session cookie once logged in,
else a random pre-session cookie (``minga_pre``; the login and language forms). Another site can
neither read the cookie nor compute the token, and a page script could not read it either. The
token stays the same for the life of the session, so pages opened in several tabs keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

FIELD: Final = "csrf"
SESSION_COOKIE: Final = "minga_session"
PRE_SESSION_COOKIE: Final = "minga_pre"
_PURPOSE: Final = b"minga/web/csrf/v1"


def new_pre_session_secret() -> str:
    return secrets.token_urlsafe(32)


def token_for(cookie_secret: str) -> str:
    return hmac.new(cookie_secret.encode("utf-8"), _PURPOSE, hashlib.sha256).hexdigest()

