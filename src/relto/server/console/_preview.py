"""The preview step of the console's two-step changes (admit, end an admission,
relabel): the what-if effect of the change (:meth:`DocumentService.what_if`:
own-nation people by name, everyone else as counts per nation) and a confirm
form carrying the same parameters, signed (:mod:`._confirm`), the CSRF token and
a required justification."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request
from fastapi.responses import HTMLResponse

from relto.authz import Principal
from relto.documents import WhatIfView
from relto.errors import AccessDenied, InvalidInput, NotFound
from relto.partnership import JUSTIFICATION_MAX, JUSTIFICATION_MIN
from relto.server.console._confirm import ConfirmTokens
from relto.server.console._pages import Pages

__all__ = ["NOT_PREVIEWED", "Change", "render_preview"]

NOT_PREVIEWED = (
    "This change was not previewed here, or the preview is more than 15 minutes old "
    "or was for other values: preview it again."
)


@dataclass(frozen=True)
class Change:
    """A change to preview: what to call it, the what-if change string, where the
    confirm form posts and its parameters (signed), and where "back" goes."""

    action: str  # the name the token is signed for
    heading: str
    what_if: str
    post_to: str
    params: Mapping[str, str]
    back: str
    confirm_label: str
    #: Form fields the confirm form repeats (a list field appears once per value).
    fields: Sequence[tuple[str, str]] = ()


def render_preview(
    pages: Pages,
    tokens: ConfirmTokens,
    request: Request,
    who: Principal,
    change: Change,
    at: datetime,
    *,
    justification: str = "",
    error: str | None = None,
) -> HTMLResponse:
    """The preview page (status 422 when re-shown with ``error``)."""
    service = pages.node.documents
    effect: WhatIfView | None = None
    effect_error = None
    try:
        effect = service.what_if(who, [change.what_if], at)
    except InvalidInput as exc:
        effect_error = str(exc)[:300]
    except (NotFound, AccessDenied):
        effect_error = "you may not ask what this change would do"
    shown = {oid for pairs in ((effect.gained, effect.lost) if effect else ()) for _, oid in pairs}
    docs = [d for d in service.all_visible(who) if d.id in shown] if shown else []
    return pages.render(
        request,
        "change_preview.html",
        who,
        "dashboard" if change.action.startswith("admission") else "documents",
        status_code=422 if error else 200,
        title=f"Confirm: {change.heading}",
        heading=change.heading,
        change=change.heading,
        effect=effect,
        effect_error=effect_error,
        titles={d.id: d.title for d in docs},
        banners={d.id: d.banner for d in docs},
        marked=docs,
        action=change.post_to,
        token=tokens.issue(change.action, change.params),
        hidden=list(change.fields) or sorted(change.params.items()),
        back=change.back,
        confirm_label=change.confirm_label,
        justification=justification[:JUSTIFICATION_MAX],
        just_min=JUSTIFICATION_MIN,
        just_max=JUSTIFICATION_MAX,
        error=error,
    )
