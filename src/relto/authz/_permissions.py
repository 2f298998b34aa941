"""Every permission a person can be granted or refused, named in one place.

Names are ``<scope>:<resource>:<action>``. Every HTTP route and console form
declares the one it needs (``tests/server/test_authz_matrix.py`` fails for a
route that declares none). Keep the list alphabetised.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["OBJECT_PERMISSIONS", "Permission"]


class Permission(StrEnum):
    """What an action needs. Object actions are decided by the decision engine;
    every other permission by :func:`relto.authz.decide` from the directory."""

    ADMIN_ADMISSIONS_WRITE = "admin:admissions:write"
    ADMIN_PARTNERSHIPS_WRITE = "admin:partnerships:write"
    ADMIN_PROJECTS_WRITE = "admin:projects:write"
    AUDIT_ENTRIES_READ = "audit:entries:read"
    AUDIT_INTEGRITY_REPORT = "audit:integrity:report"
    AUDIT_LOG_READ = "audit:log:read"
    AUDIT_PARTNER_ENTRIES_READ = "audit:partner-entries:read"
    AUDIT_WITNESS_WRITE = "audit:witness:write"
    CLEARANCES_ADJUDICATE = "clearances:adjudicate"
    CLEARANCES_READ = "clearances:read"
    CLEARANCES_REPORT = "clearances:report"
    CLEARANCES_RESTRICT = "clearances:restrict"
    CLEARANCES_SPONSOR = "clearances:sponsor"
    CLEARANCES_SUPERVISE = "clearances:supervise"
    CONSOLE_USE = "console:use"
    DECISIONS_EXPLAIN = "decisions:explain"
    DECISIONS_WHAT_IF = "decisions:what-if"
    EXPORT_CHECK = "export:check"
    EXPORT_FACTS_READ = "export:facts:read"
    EXPORT_FACTS_WRITE = "export:facts:write"
    EXPORT_RECORDS_READ = "export:records:read"
    FEDERATION_ATTEST = "federation:attest"
    FEDERATION_DESCRIPTOR_READ = "federation:descriptor:read"
    FEDERATION_STATUS_READ = "federation:status:read"
    FEDERATION_TRUST_WRITE = "federation:trust:write"
    KAS_KEYS_READ = "kas:keys:read"
    KAS_KEYS_WRITE = "kas:keys:write"
    KAS_REWRAP = "kas:rewrap"
    NODE_OPERATE = "node:operate"
    OBJECTS_CREATE = "objects:create"
    OBJECTS_DOWNLOAD = "objects:download"
    OBJECTS_LIST = "objects:list"
    OBJECTS_METADATA_READ = "objects:metadata:read"
    OBJECTS_READ = "objects:read"
    OBJECTS_RELABEL = "objects:relabel"
    PARTNERSHIP_CHANGES_RECEIVE = "partnership:changes:receive"
    PARTNERSHIP_READ = "partnership:read"
    PEOPLE_READ = "people:read"
    PEOPLE_WRITE = "people:write"
    SESSION_MANAGE = "session:manage"
    TRACING_TRACE = "tracing:trace"


#: Permissions on one protected object: the decision engine answers them (with the
#: object's label, the person's clearances and the partnership's admissions).
OBJECT_PERMISSIONS: dict[Permission, str] = {
    Permission.OBJECTS_DOWNLOAD: "download",
    Permission.OBJECTS_READ: "read",
    Permission.OBJECTS_RELABEL: "relabel",
}
