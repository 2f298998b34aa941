"""The partnership: member and partner nations, projects, and admissions.

Pure model and service functions; persistence is in :mod:`relto.store.partnership`,
HTTP in :mod:`relto.server.routes.partnership`.
"""

from relto.partnership.errors import (
    AdmissionConflict,
    InvalidPartnership,
    NotPermitted,
    PartnershipError,
    UnknownRecord,
)
from relto.partnership.model import (
    CLASSIFICATIONS,
    MEMBER_NATIONS,
    PARTNER_NATIONS,
    ROLES,
    Admission,
    Partnership,
    Project,
    classification_rank,
)
from relto.partnership.service import (
    JUSTIFICATION_MAX,
    JUSTIFICATION_MIN,
    MAX_PAGE,
    Actor,
    MemoryRepository,
    Page,
    PartnershipRepository,
    admit,
    ceiling_for,
    check_justification,
    create_partnership,
    create_project,
    end_admission,
    matrix,
    page_bounds,
    set_joint_custody,
)

__all__ = [
    "CLASSIFICATIONS",
    "JUSTIFICATION_MAX",
    "JUSTIFICATION_MIN",
    "MAX_PAGE",
    "MEMBER_NATIONS",
    "PARTNER_NATIONS",
    "ROLES",
    "Actor",
    "Admission",
    "AdmissionConflict",
    "InvalidPartnership",
    "MemoryRepository",
    "NotPermitted",
    "Page",
    "Partnership",
    "PartnershipError",
    "PartnershipRepository",
    "Project",
    "UnknownRecord",
    "admit",
    "ceiling_for",
    "check_justification",
    "classification_rank",
    "create_partnership",
    "create_project",
    "end_admission",
    "matrix",
    "page_bounds",
    "set_joint_custody",
]
