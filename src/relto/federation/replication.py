"""Replicating partnership changes: every node offers every change it holds, with
every signed word on it, to every partner node it pins.

Each round (``RELTO_FEDERATION_CHANGES_PUSH_SECONDS``, default 30 s) a node POSTs
to each pinned partner's ``/api/v1/partnership/changes/receive``:

- the applied changes from the partner's head onwards (the head it reported last
  time; 0 at first, so a node back after an hour catches up from where it was),
  at most :data:`BATCH` a round, in chain order;
- every pending change, with the approvals this node holds.

What is sent needs no trust in the sender: the receiver verifies every approval
against the node keys its own officers pinned, applies what reaches its quorum in
its chain's order, records a rival for an applied place as a fork, and answers its
head. Receiving the same change twice changes nothing (the first word of a nation
stands), so nothing is applied twice.

A partner that answers is heard from (``changes``,
:mod:`relto.federation.reachability`); one that does not is offered the same
again next round, from the head it last reported, with no back-off: a node back
after an hour is caught up at the first round that reaches it, ``BATCH`` changes a
round.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
import structlog

from relto.federation.descriptor import PinnedNode
from relto.federation.ledger import ChangeLedger, Standing
from relto.federation.reachability import Reachability

__all__ = ["BATCH", "ChangePusher", "Pushed", "http_post"]

log = structlog.stdlib.get_logger("relto.federation")

#: Applied changes offered to one partner per round.
BATCH = 50
_TIMEOUT = 5.0
RECEIVE_PATH = "/api/v1/partnership/changes/receive"

#: ``post(url, json body) -> (status, json answer)``
Post = Callable[[str, dict[str, object]], tuple[int, dict[str, object]]]


def http_post(url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    with httpx.Client(timeout=_TIMEOUT, follow_redirects=False) as http:
        resp = http.post(
            url, content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
    try:
        answer = resp.json()
    except ValueError:
        answer = {}
    return resp.status_code, answer if isinstance(answer, dict) else {}


@dataclass(frozen=True)
class Pushed:
    """One round's outcome for one partner."""

    nation: str
    sent: int
    head: int | None
    refused: int
    unreachable: bool = False


class ChangePusher:
    """Offers this node's changes to its pinned partners (see the module docstring)."""

    def __init__(
        self,
        ledger: ChangeLedger,
        pins: Callable[[], Mapping[str, PinnedNode]],
        *,
        post: Post = http_post,
        contacts: Reachability | None = None,
    ) -> None:
        self._ledger = ledger
        self._pins = pins
        self._post = post
        self._contacts = contacts
        #: The head each partner reported (its next place), in memory.
        self.heads: dict[str, int] = {}

    def push(self) -> list[Pushed]:
        standings = self._ledger.standings()
        applied = [s for s in standings if s.status == "applied"]
        pending = [s for s in standings if s.status == "pending"]
        results = []
        for nation, pin in sorted(self._pins().items()):
            if nation == self._ledger.nation:
                continue
            head = self.heads.get(nation, 0)
            batch = [s for s in applied if s.change.seq >= head][:BATCH] + pending
            results.append(self._offer(nation, pin.descriptor.base_url, batch))
        return results

    def _heard(self, nation: str) -> None:
        if self._contacts is None:
            return
        try:
            self._contacts.heard(nation, "changes")
        except Exception as failure:  # the offer stands; the failure is logged
            log.error("change_push_contact_failed", error=type(failure).__name__)

    def _offer(self, nation: str, base_url: str, batch: list[Standing]) -> Pushed:
        url = base_url.rstrip("/") + RECEIVE_PATH
        sent = refused = 0
        head: int | None = None
        for s in batch:
            if head is not None and s.status == "applied" and s.change.seq < head:
                continue  # it said it holds these (a pusher that forgot its head, say)
            body: dict[str, object] = {
                "change": s.change.canonical().decode(),
                "approvals": [a.token for a in s.approvals],
            }
            try:
                status, answer = self._post(url, body)
            except httpx.HTTPError:
                log.info("change_push_unreachable", nation=nation)
                return Pushed(nation, sent, head, refused, unreachable=True)
            sent += 1
            if status < 500 and sent == 1:
                self._heard(nation)
            error = answer.get("error")
            reported = error.get("head") if isinstance(error, dict) else answer.get("head")
            if isinstance(reported, int) and reported >= 0:
                head = reported
                self.heads[nation] = reported
            if status != 200:
                refused += 1
                log.warning(
                    "change_push_refused",
                    nation=nation,
                    change=s.change.id[:16],
                    status=status,
                    reason=str(error.get("message", "") if isinstance(error, dict) else "")[:200],
                )
        return Pushed(nation, sent, head, refused)
