"""The node's encrypted store: SQLAlchemy 2 (async), SQLite by default or
PostgreSQL, Alembic migrations.

Sensitive columns are encrypted with a data key (:mod:`node.core.store.cipher`); the data key is
locked
with the node passphrase in ``DATA_DIR/store.key`` (:mod:`node.core.store.unlock`). Start with
:func:`unlock_data_key` and :func:`open_store`; see :mod:`node.core.store.store` for an example.
"""

from node.core.store.audit import AuditEvent, AuditLog
from node.core.store.cases import (
    CaseFilter,
    CaseIndex,
    CasePage,
    CaseRepository,
    CaseVersion,
    InvalidCursor,
    NewCase,
    StoredCase,
)
from node.core.store.errors import (
    CiphertextRejected,
    DatabaseInUse,
    RecordDeleted,
    RecordExists,
    RecordNotFound,
    StoreError,
    StoreHalfMoved,
    StoreLocked,
    StoreSchemaTooNew,
    StoreUnavailable,
    VersionConflict,
    WrongDataKey,
)
from node.core.store.ids import InvalidRecordId
from node.core.store.imported import ImportedRow, ImportedRowRepository
from node.core.store.migrate import STORE_MIGRATIONS, MigrationSet
from node.core.store.orgs import Member, OrgRepository, OwnOrg
from node.core.store.received import ReceivedRecord, ReceivedRepository
from node.core.store.store import Store, StoreTransaction, check_new_store, open_store
from node.core.store.tokens import Role, TokenInfo, TokenOwner, TokenRepository
from node.core.store.unlock import (
    DataKey,
    DataKeyExists,
    WrongPassphrase,
    change_passphrase,
    create_data_key,
    passphrase_from,
    unlock_data_key,
)
from node.core.store.users import (
    StaffSession,
    StaffUser,
    UsernameTaken,
    UserRepository,
    staff_users,
)

__all__ = [
    "STORE_MIGRATIONS",
    "AuditEvent",
    "AuditLog",
    "CaseFilter",
    "CaseIndex",
    "CasePage",
    "CaseRepository",
    "CaseVersion",
    "CiphertextRejected",
    "DataKey",
    "DataKeyExists",
    "DatabaseInUse",
    "ImportedRow",
    "ImportedRowRepository",
    "InvalidCursor",
    "InvalidRecordId",
    "Member",
    "MigrationSet",
    "NewCase",
    "OrgRepository",
    "OwnOrg",
    "ReceivedRecord",
    "ReceivedRepository",
    "RecordDeleted",
    "RecordExists",
    "RecordNotFound",
    "Role",
    "StaffSession",
    "StaffUser",
    "Store",
    "StoreError",
    "StoreHalfMoved",
    "StoreLocked",
    "StoreSchemaTooNew",
    "StoreTransaction",
    "StoreUnavailable",
    "StoredCase",
    "TokenInfo",
    "TokenOwner",
    "TokenRepository",
    "UserRepository",
    "UsernameTaken",
    "VersionConflict",
    "WrongDataKey",
    "WrongPassphrase",
    "change_passphrase",
    "check_new_store",
    "create_data_key",
    "open_store",
    "passphrase_from",
    "staff_users",
    "unlock_data_key",
]
