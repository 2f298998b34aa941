"""Helpers for the console's two-step changes in tests: preview, then confirm
with the form the preview page rendered (as a browser would)."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from httpx import Response

__all__ = ["confirm_change", "confirm_form", "went_back_bad"]

_FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*id="confirm-form">(.*?)</form>', re.S)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def confirm_form(page: str) -> tuple[str, list[tuple[str, str]]]:
    """The confirm form of a preview page: where it posts and its hidden fields."""
    found = _FORM.search(page)
    assert found, "no confirm form on the page"
    fields = [(n, html.unescape(v)) for n, v in _HIDDEN.findall(found.group(2))]
    return html.unescape(found.group(1)), fields


def confirm_change(
    client: TestClient, preview: str, form: dict[str, object], csrf: str, justification: str
) -> Response:
    """Preview the change at ``preview``, then confirm it with ``justification``."""
    page = client.post(preview, data={**form, "csrf": csrf})
    assert page.status_code == 200, (page.status_code, page.text[:300])
    action, fields = confirm_form(page.text)
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    data["justification"] = [justification]
    return client.post(action, data=data)


def went_back_bad(client: TestClient, r: Response) -> bool:
    """Whether a form sent the browser back with its message shown as a failure."""
    assert r.status_code == 303, (r.status_code, r.text[:300])
    location = r.headers["location"]
    if "kind=bad" in location:
        return True
    return 'class="flash bad"' in client.get(location).text
