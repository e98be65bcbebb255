"""Staff account operations, shared by the admin pages and ``minga user``: each writes its audit
entry in the caller's transaction.

Audit entries name the acting user and target the account's id; they never hold passwords,
secrets, or what someone typed into a login form.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Final

from federation.secretbox import DEFAULT_PARAMS, Argon2Params
from node.core.store import Role, StaffUser, StoreTransaction, staff_users
from node.features.accounts.passwords import check_new_password, hash_password
from node.features.accounts.totp import new_secret

USER_CREATED: Final = "user.create"
USER_PASSWORD_RESET: Final = "user.password_reset"
USER_PASSWORD_CHANGED: Final = "user.password_change"
USER_ROLE_CHANGED: Final = "user.role"
USER_DISABLED: Final = "user.disable"
USER_ENABLED: Final = "user.enable"
USER_TOTP_ENROLLED: Final = "user.totp_enrol"
USER_TOTP_REMOVED: Final = "user.totp_remove"
USER_LOGGED_OUT_EVERYWHERE: Final = "user.logout_everywhere"
USER_LANGUAGE: Final = "user.language"

GENERATED_PASSWORD_BYTES = 12  # 16 characters of base64url


class AccountError(ValueError):
    """An account change was refused; the message says why."""


class LastAdmin(AccountError):
    def __init__(self) -> None:
        super().__init__("this is the last active admin; make another admin first")


@dataclass(frozen=True)
class IssuedCredentials:
    """What to hand over once: a generated password and/or a TOTP secret (never stored plain)."""

    user: StaffUser
    password: str | None = field(default=None, repr=False)
    totp_secret: bytes | None = field(default=None, repr=False)


def generated_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


async def create_account(
    tx: StoreTransaction,
    username: str,
    role: Role,
    *,
    actor: str,
    password: str | None = None,
    language: str = "en",
    with_totp: bool = False,
    params: Argon2Params = DEFAULT_PARAMS,
) -> IssuedCredentials:
    """A new account. Without ``password`` one is generated and must be changed at first login."""
    chosen = password if password is not None else generated_password()
    check_new_password(chosen)
    secret = new_secret() if with_totp else None
    user = await staff_users(tx).add(
        username, role, hash_password(chosen, params), language=language, totp_secret=secret,
        must_change_password=password is None,
    )
    await tx.audit.append(actor, USER_CREATED, target=user.user_id,
                          details={"role": role.value, "totp": with_totp})
    return IssuedCredentials(user, None if password is not None else chosen, secret)


async def reset_password(
    tx: StoreTransaction,
    user: StaffUser,
    *,
    actor: str,
    password: str | None = None,
    new_totp: bool = False,
    params: Argon2Params = DEFAULT_PARAMS,
) -> IssuedCredentials:
    """Set a new password (generated: to be changed at first login), end every session, and
    optionally enrol a new TOTP secret (a lost phone)."""
    chosen = password if password is not None else generated_password()
    check_new_password(chosen)
    users = staff_users(tx)
    await users.set_password(user.user_id, hash_password(chosen, params),
                             must_change=password is None)
    secret = new_secret() if new_totp else None
    if new_totp:
        await users.set_totp(user.user_id, secret)
    await users.end_sessions(user.user_id)
    await tx.audit.append(actor, USER_PASSWORD_RESET, target=user.user_id,
                          details={"new_totp": new_totp})
    return IssuedCredentials(await users.get(user.user_id),
                             None if password is not None else chosen, secret)


async def change_own_password(
    tx: StoreTransaction, user: StaffUser, new_password: str, *,
    params: Argon2Params = DEFAULT_PARAMS,
) -> None:
    """The user chose a new password; other sessions of theirs end (the caller starts a new one)."""
    check_new_password(new_password)
    users = staff_users(tx)
    await users.set_password(user.user_id, hash_password(new_password, params))
    await users.end_sessions(user.user_id)
    await tx.audit.append(user.username, USER_PASSWORD_CHANGED, target=user.user_id)


async def _refuse_removing_last_admin(tx: StoreTransaction, user: StaffUser) -> None:
    is_admin = user.role == Role.admin and not user.disabled
    if is_admin and await staff_users(tx).count_active_admins() <= 1:
        raise LastAdmin()


async def set_role(tx: StoreTransaction, user: StaffUser, role: Role, *, actor: str) -> None:
    if role == user.role:
        return
    if role != Role.admin:
        await _refuse_removing_last_admin(tx, user)
    await staff_users(tx).set_role(user.user_id, role)
    await tx.audit.append(actor, USER_ROLE_CHANGED, target=user.user_id,
                          details={"from": user.role.value, "to": role.value})


async def set_disabled(
    tx: StoreTransaction, user: StaffUser, disabled: bool, *, actor: str
) -> None:
    if disabled == user.disabled:
        return
    if disabled:
        await _refuse_removing_last_admin(tx, user)
    await staff_users(tx).set_disabled(user.user_id, disabled)
    await tx.audit.append(actor, USER_DISABLED if disabled else USER_ENABLED,
                          target=user.user_id)


async def enrol_totp(tx: StoreTransaction, user: StaffUser, secret: bytes, step: int) -> None:
    """Save a TOTP secret the user proved to hold with a code of ``step``."""
    users = staff_users(tx)
    await users.set_totp(user.user_id, secret)
    await users.use_totp_step(user.user_id, step)
    await tx.audit.append(user.username, USER_TOTP_ENROLLED, target=user.user_id)


async def remove_totp(tx: StoreTransaction, user: StaffUser, *, actor: str) -> None:
    """Remove a second factor (an admin must enrol a new one at the next login)."""
    await staff_users(tx).set_totp(user.user_id, None)
    await tx.audit.append(actor, USER_TOTP_REMOVED, target=user.user_id)


async def log_out_everywhere(tx: StoreTransaction, user: StaffUser, *, actor: str) -> int:
    ended = await staff_users(tx).end_sessions(user.user_id)
    await tx.audit.append(actor, USER_LOGGED_OUT_EVERYWHERE, target=user.user_id,
                          details={"sessions": ended})
    return ended
