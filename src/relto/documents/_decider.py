"""The KAS decider of this node: the decision engine over this node's facts."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from relto.decisions import Decision
from relto.documents._custody import CustodyDecider
from relto.documents._facts import DecisionFacts
from relto.documents._model import DocumentView
from relto.federation.attestation import AttestedPerson
from relto.kas.decider import KasDecision, Reason, RewrapFacts
from relto.vetting import Person

__all__ = ["ProductDecider"]


class ProductDecider:
    """Decides a rewrap with the decision engine, on facts this node verified.

    The key access service hands over the verified token's subject, the nation
    its issuer is bound to, the action and the policy; the document is found by
    its policy UUID (so the label, originator and project are those recorded when
    it was protected), the person in this node's directory. Denied: a policy this
    node did not protect, a person the directory does not know, and a person
    whose home nation is not the nation whose issuer vouched for the token.
    Facts come from per-process caches checked against the database's change
    counters on every call (one query when nothing changed).

    A policy this node did not protect goes to ``custody`` (when wired): a share
    of a partner's object this node's KAS holds in joint custody, decided on the
    policy's own attributes (:class:`~relto.documents._custody.CustodyDecider`).
    """

    #: It reads the document and the person from the database.
    blocking = True

    def __init__(self, facts: DecisionFacts, custody: CustodyDecider | None = None) -> None:
        self.facts = facts
        self._custody = custody

    def decide(self, facts: RewrapFacts) -> KasDecision:
        if facts.attested is not None:
            doc, decision = self.facts.decide_attested(
                facts.attested, facts.action, facts.policy_uuid, facts.at
            )
            if doc is None and self._custody is not None:
                return self._custody.decide(facts)
            return self._transfer(_attested_answer(doc, decision, facts), doc, decision, facts)
        subject = str(facts.subject.get("sub", ""))
        doc, decision, person = self.facts.decide_policy(
            subject, facts.action, facts.policy_uuid, facts.at
        )
        if doc is None and self._custody is not None:
            return self._custody.decide(facts)
        return self._transfer(_answer(doc, decision, person, facts.nation), doc, decision, facts)

    def _transfer(
        self,
        answer: KasDecision,
        doc: DocumentView | None,
        decision: Decision | None,
        facts: RewrapFacts,
    ) -> KasDecision:
        """An allowed release of an export-controlled object, with its legal basis
        and the transfer the KAS records before releasing the key."""
        if not answer.allowed or doc is None or decision is None or not decision.legal_basis:
            return answer
        who: str | AttestedPerson = (
            facts.attested if facts.attested is not None else str(facts.subject.get("sub", ""))
        )
        record = self.facts.transfer_record(who, facts.action, doc, decision, facts.at)
        return replace(answer, legal_basis=decision.legal_basis, transfer=record)

    async def decide_async(self, facts: RewrapFacts) -> KasDecision:
        """:meth:`decide` for the KAS's event loop (never waits on the database)."""
        if facts.attested is not None:
            doc, decision = await self.facts.decide_attested_async(
                facts.attested, facts.action, facts.policy_uuid, facts.at
            )
            if doc is None and self._custody is not None:
                return await asyncio.to_thread(self._custody.decide, facts)
            answer = _attested_answer(doc, decision, facts)
        else:
            subject = str(facts.subject.get("sub", ""))
            doc, decision, person = await self.facts.decide_policy_async(
                subject, facts.action, facts.policy_uuid, facts.at
            )
            if doc is None and self._custody is not None:
                return await asyncio.to_thread(self._custody.decide, facts)
            answer = _answer(doc, decision, person, facts.nation)
        if answer.allowed and decision is not None and decision.legal_basis:
            return await asyncio.to_thread(self._transfer, answer, doc, decision, facts)
        return answer


def _answer(
    doc: DocumentView | None,
    decision: Decision | None,
    person: Person | None,
    nation: str | None,
) -> KasDecision:
    if doc is None or decision is None:
        return KasDecision(
            False, (Reason("unknown_object", "this node did not protect that object"),)
        )
    reasons = tuple(Reason(r.code, r.sentence) for r in decision.reasons)
    if person is not None and (nation is None or person.home_nation != nation):
        vouch = Reason(
            "not_vouched",
            "the identity provider that signed the token does not vouch for this person's "
            "home nation",
        )
        return KasDecision(False, (vouch, *reasons), object_id=doc.id, originator=doc.originator)
    return KasDecision(
        bool(decision.allowed),
        reasons,
        tuple(o.kind for o in decision.obligations),
        object_id=doc.id,
        originator=doc.originator,
    )


def _attested_answer(
    doc: DocumentView | None, decision: Decision | None, facts: RewrapFacts
) -> KasDecision:
    if doc is None or decision is None:
        return KasDecision(
            False, (Reason("unknown_object", "this node did not protect that object"),)
        )
    attested = facts.attested
    reasons = tuple(Reason(r.code, r.sentence) for r in decision.reasons)
    if attested is None or facts.nation != attested.home_nation:
        vouch = Reason(
            "not_vouched", "the attestation is not from the node of the person's home nation"
        )
        return KasDecision(False, (vouch, *reasons), object_id=doc.id, originator=doc.originator)
    return KasDecision(
        bool(decision.allowed),
        reasons,
        tuple(o.kind for o in decision.obligations),
        object_id=doc.id,
        originator=doc.originator,
    )
