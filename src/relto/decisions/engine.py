"""The decision engine: facts in, explained :class:`Decision` out.

:class:`Engine` holds the world (admissions, per-nation rules, policy version) and
the two services it asks (:class:`~relto.decisions.LevelMapper`,
:class:`~relto.decisions.Recognition`), and answers with the rule table of
:mod:`relto.decisions.rules`. Service answers are cached per engine; rule groups
are memoised per subject plan under keys made of exactly the object attributes the
group reads, so deciding a list page of 100,000 objects costs a few dictionary
look-ups per object.

Fail closed: any exception while deciding becomes a denial with
``UNKNOWN_ATTRIBUTE``; unmapped levels, unknown categories, malformed Releasable
To codes, uninterpretable clearances and unknown actions all deny with a reason.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from relto.decisions._model import (
    ACTIONS,
    Action,
    Decision,
    Obligation,
    Reason,
    Resource,
    Subject,
    World,
)
from relto.decisions.errors import AccessDenied
from relto.decisions.protocols import COMMON_SCHEME, ExportCheck, LevelMapper, Recognition
from relto.decisions.rules import (
    CLEARANCE_CODES,
    COMPILED,
    PY,
    SECURITY_OFFICER,
    clearance_failures,
    clearance_known,
    clearance_score,
)
from relto.events import AuditSink

__all__ = ["Engine", "enforce_decision"]

_TRIGRAPH = re.compile(r"^[A-Z]{3}$")
_FOREVER = datetime.max.replace(tzinfo=UTC)
_DUAL_RULES = frozenset({"any", "all"})
_NO_REASONS: tuple[Reason, ...] = ()
#: Small codes of the known actions (for integer memo keys; below 4).
_ACTION_CODE = {a.value: i for i, a in enumerate(Action)}
#: Per-subject bound on remembered whole decisions (then the memo starts afresh).
_MAX_SIGNATURES = 100_000
#: Bound on remembered object profiles (they hold the object, so ids stay unique).
_MAX_PROFILES = 200_000
#: Recognition answers kept (keyed by evaluation time, so a long-lived engine asked
#: "now" on every request would otherwise grow without end).
_MAX_RECOGNITIONS = 65_536

#: (object, group key or -1 for an unreadable marking, Releasable To, Releasable
#: To well formed, ORCON or export controlled).
_Profile = tuple[Resource, int, frozenset[str], bool, bool]
#: An export-controlled object, the same without export data, its signature number
#: (None: asked alone), the latter's group key, Releasable To, and whether the
#: decision on it can be keyed by one int (well formed, not ORCON, readable marking).
_Base = tuple[Resource, Resource, int | None, int, frozenset[str], bool]

LOG = Obligation("log", "record this decision in the transparency log")
FINGERPRINT = Obligation("fingerprint", "fingerprint the released copy for this recipient")

_STATUS_PHRASE = {
    "expired": "has expired",
    "suspended": "is suspended",
    "under_review": "is under review and its issuing nation suspends access during review",
    "revoked": "was revoked",
    "lapsed": "has lapsed",
    "denied": "was denied",
    "sponsored": "is only sponsored, not granted",
    "investigating": "is still being investigated, not granted",
    "adjudicating": "is still being adjudicated, not granted",
}


# -- views handed to the rule table (Python backend) --------------------------


@dataclass(frozen=True, slots=True)
class _ClearanceView:
    status: str
    issuer: str
    level_known: bool
    rank: int
    recognised: bool
    mapped: str | None
    fact: Any


@dataclass(frozen=True, slots=True)
class _SubjectView:
    id: str
    nats: tuple[str, ...]
    clearances: tuple[_ClearanceView, ...]
    projects: frozenset[str]
    roles: frozenset[str]
    caveats: frozenset[str]


@dataclass(frozen=True, slots=True)
class _ObjectView:
    originator: str
    rank: int
    relto: frozenset[str]
    relto_wellformed: bool
    project: str | None
    cats: tuple[str, ...]
    orcon: bool
    approved: frozenset[str]
    export_flagged: bool
    export_ok: bool


@dataclass(frozen=True, slots=True)
class _AdmissionView:
    nation: str
    project: str
    ceil: int
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class _EnvView:
    action: str
    at: datetime
    dual_all: bool
    review_keeps: frozenset[str]
    implicit: frozenset[str]
    known_cats: frozenset[str]
    admissions: tuple[_AdmissionView, ...]


class _Plan:
    """Everything about one subject at one time that does not depend on the object."""

    __slots__ = (
        "at",
        "by_group",
        "canon",
        "decided",
        "decided_int",
        "export_answers",
        "export_class",
        "export_merged",
        "fast",
        "memo",
        "merged",
        "nats",
        "natset",
        "sid",
        "single",
        "subject",
        "views",
    )

    def __init__(self, subject: Subject, at: datetime) -> None:
        self.subject = subject
        self.at = at
        self.sid = subject.id
        self.nats = tuple(sorted(subject.nationalities))
        self.natset = frozenset(subject.nationalities)
        #: The one nationality of a single national (Releasable To is then one test).
        self.single = self.nats[0] if len(self.nats) == 1 else None
        self.merged: dict[tuple[int, ...], Decision] = {}
        #: Interned group answers (equal answers share one tuple object).
        self.canon: dict[Any, Any] = {}
        #: Object group key -> the clearance, admission and caveat answers.
        self.by_group: dict[int, tuple[tuple[Reason, ...], ...]] = {}
        #: Whole decisions for plain objects, keyed by (action, object group key,
        #: Releasable To key): exactly what the rule groups read (see Engine.evaluate).
        self.decided: dict[tuple[Any, ...], Decision] = {}
        #: The same for plain objects, known actions and well-formed Releasable
        #: To, keyed by one int (see Engine.evaluate): a single national's key is
        #: group key * 8 + action code + 4 if releasable; anyone else's is
        #: (group key * 8 + action code) shifted by the number of nationalities,
        #: or-ed with one bit per nationality in Releasable To. A plan is one
        #: subject, so the two forms never meet in one dict.
        self.decided_int: dict[int, Decision] = {}
        self.views: dict[str, _SubjectView] = {}
        self.fast: dict[str, dict[Any, bool]] = {}
        #: The hook's shared answers for this subject, by signature number * 8 +
        #: action code: (the answer's number, basis, sentence, the plain allowed
        #: decision and the same with the basis when it allows with one).
        self.export_answers: dict[
            int, tuple[int, str | None, str | None, Decision | None, Decision | None]
        ] = {}
        #: The subject's export class number (-1: asked alone), once asked.
        self.export_class: int | None = None
        #: Decisions denied by the export hook, by (id of the decision without
        #: export data, the answer's number): (that decision, the merged one).
        self.export_merged: dict[tuple[int, int], tuple[Decision, Decision]] = {}
        self.memo: tuple[dict[Any, tuple[Reason, ...]], ...] = tuple({} for _ in range(6))


class Engine:
    """Decides; never writes. Build one per world/policy version and reuse it."""

    def __init__(
        self,
        world: World,
        mapper: LevelMapper,
        recognition: Recognition,
        export_check: ExportCheck | None = None,
        *,
        max_plans: int = 4096,
    ) -> None:
        for nation, rule in world.dual_national_rule.items():
            if rule not in _DUAL_RULES:
                raise ValueError(f"dual-national rule for {nation} must be 'any' or 'all'")
        self.world = world
        self.mapper = mapper
        self.recognition = recognition
        self.export_check = export_check
        #: The hook's one-look-up answer, when it offers one (ExportControlCheck).
        self._answer_of = getattr(export_check, "export_answer", None)
        #: Answers shared by subjects of one class on objects of one signature.
        self._export_answers: dict[tuple[Any, ...], tuple[str | None, str | None]] = {}
        self._export_numbers: dict[Any, int] = {}
        #: Allowed decisions with their legal basis, by (action, basis).
        self._allowed_with_basis: dict[tuple[str, str], Decision] = {}
        self._stand_in: str = str(getattr(export_check, "stand_in", "") or "")
        #: Whether the hook says which subjects and objects share answers.
        self._signature_number_ok = all(
            getattr(export_check, name, None) is not None
            for name in ("subject_class", "object_signature", "raw_answer")
        )
        self._max_plans = max_plans
        self._plans: dict[tuple[int, datetime], _Plan] = {}
        self._last: _Plan | None = None
        #: The latest plan of each subject (keyed by id; the plan holds the subject).
        self._by_subject: dict[int, _Plan] = {}
        self._rank: dict[tuple[str, str], int] = {}
        self._mapped: dict[tuple[str, str, str], tuple[int, str | None]] = {}
        self._recog: dict[tuple[str, str, datetime], bool] = {}
        self._wellformed: dict[frozenset[str], bool] = {}
        self._adm: dict[tuple[str, str | None], tuple[_AdmissionView, ...]] = {}
        self._env: dict[tuple[str, datetime, str, str | None], _EnvView] = {}
        self._profiles: dict[int, _Profile] = {}
        #: Each export-controlled object: the object, the same object without its
        #: export data, its signature number, and the int-key parts of the latter
        #: (group key, Releasable To, whether the int key applies).
        self._bases: dict[int, _Base] = {}
        self._gkeys: dict[tuple[Any, ...], int] = {}
        # next() of a C iterator is atomic: threads sharing an engine never give two
        # different object groups one number (which would share their memoised
        # decisions), as a read-increment-write of an int attribute could.
        self._gk_numbers = itertools.count(1)
        pv = world.policy_version
        self._allow = {
            a.value: Decision(
                True,
                _NO_REASONS,
                f"permit:{a.value}",
                pv,
                (LOG, FINGERPRINT) if a in (Action.DOWNLOAD, Action.SHARE) else (LOG,),
            )
            for a in Action
        }

    # -- public API ------------------------------------------------------------

    def evaluate(self, subject: Subject, action: str, obj: Resource, *, at: datetime) -> Decision:
        """May ``subject`` do ``action`` to ``obj`` at ``at``? Every failing reason."""
        plan = self._by_subject.get(id(subject))
        if plan is None or plan.subject is not subject or plan.at is not at:
            plan = self._plan(subject, at)
        act = action.value if isinstance(action, Action) else action
        try:
            if obj.export is not None:
                return self._evaluate_export(plan, act, obj)
            prof = self._profiles.get(id(obj))
            if prof is None or prof[0] is not obj:
                prof = self._profile(obj)
            gk = prof[1]
            if gk < 0:  # an unreadable marking: denied, nothing to remember
                return self._decide(plan, act, obj)
            # The decision depends only on the action, the group key (originator,
            # classification, project, categories, ORCON, export controlled), what
            # the releasable group reads of Releasable To (the list itself when it
            # is malformed, else which of the subject's nationalities are in it)
            # and, for ORCON and export-controlled objects, the originator's
            # approval of this subject and the export hook's answer (asked on
            # every request, as before: the hook is not assumed to be pure).
            rel = prof[2]
            if not prof[3]:
                k1: Any = rel
            elif plan.single is not None:
                k1 = plan.single in rel
                code = _ACTION_CODE.get(act)
                if code is not None and not prof[4]:
                    # the commonest case, keyed by one int (no container to
                    # allocate, hash or keep): group key, action, releasable
                    ikey = gk * 8 + code + (4 if k1 else 0)
                    d = plan.decided_int.get(ikey)
                    if d is None:
                        if len(plan.decided_int) > _MAX_SIGNATURES:
                            plan.decided_int.clear()
                        d = plan.decided_int[ikey] = self._decide_fast(plan, act, obj, gk, k1, None)
                    return d
            else:
                code = _ACTION_CODE.get(act)
                if code is not None and not prof[4]:
                    # several (or no) nationalities: the releasable group reads
                    # which of them are in Releasable To, one bit each
                    bits = 0
                    for i, n in enumerate(plan.nats):
                        if n in rel:
                            bits |= 1 << i
                    ikey = ((gk * 8 + code) << len(plan.nats)) | bits
                    d = plan.decided_int.get(ikey)
                    if d is None:
                        if len(plan.decided_int) > _MAX_SIGNATURES:
                            plan.decided_int.clear()
                        d = plan.decided_int[ikey] = self._decide_fast(
                            plan, act, obj, gk, plan.natset & rel, None
                        )
                    return d
                k1 = plan.natset & rel
            if prof[4]:
                x = None if obj.export is None else self._export_sentence(plan, act, obj)
                key: tuple[Any, ...] = (act, gk, k1, plan.sid in obj.orcon_approved, x)
            else:
                x = None
                key = (act, gk, k1)
            d = plan.decided.get(key)
            if d is None:
                if len(plan.decided) > _MAX_SIGNATURES:
                    plan.decided.clear()
                d = plan.decided[key] = self._decide_fast(plan, act, obj, gk, k1, x)
            return d
        except Exception as exc:  # fail closed: an engine error denies
            reason = Reason(
                "UNKNOWN_ATTRIBUTE",
                f"The decision engine could not evaluate this request "
                f"({type(exc).__name__}); access is denied.",
            )
            return Decision(False, (reason,), reason.code, self.world.policy_version, (LOG,))

    def enforce(
        self,
        subject: Subject,
        action: str,
        obj: Resource,
        *,
        at: datetime,
        sink: AuditSink | None = None,
    ) -> Decision:
        """Evaluate, record the decision in ``sink`` if given, raise if denied."""
        decision = self.evaluate(subject, action, obj, at=at)
        return enforce_decision(decision, subject, action, obj, at=at, sink=sink)

    def readable(
        self,
        subject: Subject,
        objects: Iterable[Resource],
        *,
        at: datetime,
        action: str = "read",
    ) -> list[Resource]:
        """The objects ``subject`` may ``action`` (default read), in input order."""
        act = action.value if isinstance(action, Action) else action
        plan = self._plan(subject, at)
        # one look-up per object: the outcome depends only on this signature
        # (ORCON and export-controlled objects take the full path)
        fast = plan.fast.get(act)
        if fast is None:
            fast = plan.fast[act] = {}
        out: list[Resource] = []
        append = out.append
        decide = self._decide
        for obj in objects:
            try:
                if obj.export is not None:
                    ok = self._evaluate_export(plan, act, obj).allowed
                elif obj.orcon or obj.marking_error is not None:
                    ok = decide(plan, act, obj).allowed
                else:
                    key = (
                        obj.originator,
                        obj.classification,
                        obj.rel_to,
                        obj.project,
                        obj.categories,
                    )
                    ok = fast.get(key)  # type: ignore[assignment]
                    if ok is None:
                        ok = fast[key] = decide(plan, act, obj).allowed
            except Exception:  # fail closed
                ok = False
            if ok:
                append(obj)
        return out

    def readers(
        self,
        obj: Resource,
        subjects: Iterable[Subject],
        *,
        at: datetime,
        action: str = "read",
    ) -> list[Subject]:
        """The subjects who may ``action`` (default read) ``obj``, in input order."""
        return [s for s in subjects if self.evaluate(s, action, obj, at=at).allowed]

    def evaluate_many(
        self, requests: Iterable[tuple[Subject, str, Resource]], *, at: datetime
    ) -> list[Decision]:
        return [self.evaluate(s, a, o, at=at) for s, a, o in requests]

    # -- internals -------------------------------------------------------------

    def _plan(self, subject: Subject, at: datetime) -> _Plan:
        last = self._last
        if last is not None and last.subject is subject and last.at is at:
            return last
        key = (id(subject), at)
        plan = self._plans.get(key)
        if plan is None or plan.subject is not subject:
            if at.tzinfo is None or at.utcoffset() is None:
                raise ValueError("at must be timezone-aware (UTC)")
            if len(self._plans) >= self._max_plans:
                self._plans.clear()
                self._by_subject.clear()
            plan = self._plans[key] = _Plan(subject, at)
        self._last = plan
        self._by_subject[key[0]] = plan
        return plan

    def _profile(self, obj: Resource) -> _Profile:
        """Subject-independent facts of ``obj``, computed once per object."""
        special = obj.orcon or obj.export is not None
        if obj.marking_error is not None:
            gk = -1
        else:
            gkey = (
                obj.originator,
                obj.classification,
                obj.project,
                obj.categories,
                obj.orcon,
                obj.export is not None,
            )
            got = self._gkeys.get(gkey)
            if got is None:
                if len(self._gkeys) >= _MAX_PROFILES:
                    self._gkeys.clear()
                # numbers are never reused, so plans may keep keys made of old ones
                got = self._gkeys[gkey] = next(self._gk_numbers)
            gk = got
        rel = obj.rel_to
        prof = (obj, gk, rel, self._relto_ok(rel), special)
        if len(self._profiles) >= _MAX_PROFILES:
            self._profiles.clear()
        self._profiles[id(obj)] = prof
        return prof

    def _decide_fast(
        self,
        plan: _Plan,
        action: str,
        o: Resource,
        gk: int,
        rel_key: Any,
        export_sentence: str | None,
    ) -> Decision:
        """:meth:`_decide` for a readable object, given its group key ``gk``, the
        Releasable To key ``rel_key`` and the export hook's answer (see
        :meth:`evaluate`). Same rule groups, same memos, same answers, fewer
        look-ups: the clearance, admission and caveat groups read only what ``gk``
        stands for."""
        m = plan.memo
        orig = o.originator
        r024 = plan.by_group.get(gk)
        if r024 is None:
            level = o.classification
            k0 = (orig, level)
            r = m[0].get(k0)
            if r is None:
                r = m[0][k0] = self._canon_group(0, plan, action, o)
            k2 = (orig, level, o.project)
            r2 = m[2].get(k2)
            if r2 is None:
                r2 = m[2][k2] = self._canon_group(2, plan, action, o)
            k4 = o.categories
            r4 = m[4].get(k4)
            if r4 is None:
                r4 = m[4][k4] = self._canon_group(4, plan, action, o)
            both = (r, r2, r4)
            r024 = plan.by_group[gk] = plan.canon.setdefault(both, both)
        k1 = (orig, rel_key)  # the key _decide uses for the releasable group
        r1 = m[1].get(k1)
        if r1 is None:
            r1 = m[1][k1] = self._canon_group(1, plan, action, o)
        k3 = (o.project, action)
        r3 = m[3].get(k3)
        if r3 is None:
            r3 = m[3][k3] = self._canon_group(3, plan, action, o)
        if o.orcon or action == "relabel" or action == "share":
            k5 = (o.orcon, plan.sid in o.orcon_approved, action, orig)
            r5 = m[5].get(k5)
            if r5 is None:
                r5 = m[5][k5] = self._canon_group(5, plan, action, o)
        else:
            r5 = _NO_REASONS
        r, r2, r4 = r024
        if o.export is not None:
            r6 = self._group(6, plan, action, o, export_sentence)
            if r or r1 or r2 or r3 or r4 or r5 or r6:
                reasons = _merge(r + r1 + r2 + r3 + r4 + r5 + r6)
                return Decision(False, reasons, reasons[0].code, self.world.policy_version, (LOG,))
            return self._allow[action]
        if not (r or r1 or r2 or r3 or r4 or r5):
            return self._allow[action]
        # memo values live as long as the plan, so their ids are stable keys (four
        # ids here, six in _decide: the two kinds of key never compare equal)
        key = (id(r024), id(r1), id(r3), id(r5))
        d = plan.merged.get(key)
        if d is None:
            reasons = _merge(r + r1 + r2 + r3 + r4 + r5)
            d = plan.merged[key] = Decision(
                False, reasons, reasons[0].code, self.world.policy_version, (LOG,)
            )
        return d

    def _decide(self, plan: _Plan, action: str, o: Resource) -> Decision:
        """The hot path: one memo look-up per rule group, then one for the decision."""
        if o.marking_error is not None:
            reason = Reason(
                "UNKNOWN_ATTRIBUTE",
                f"The object's marking cannot be read ({o.marking_error[:200]}).",
            )
            return Decision(False, (reason,), reason.code, self.world.policy_version, (LOG,))
        m = plan.memo
        orig = o.originator
        level = o.classification
        k0 = (orig, level)
        r = m[0].get(k0)
        if r is None:
            r = m[0][k0] = self._canon_group(0, plan, action, o)
        # Releasable To is read only through "is this nationality in it", so the key
        # is that answer (a well-formed list) or the list itself (a malformed one).
        rel = o.rel_to
        wf = self._wellformed.get(rel)
        if wf is None:
            wf = self._relto_ok(rel)
        nats = plan.nats
        if not wf:
            k1: tuple[Any, ...] = (orig, rel)
        elif len(nats) == 1:
            k1 = (orig, nats[0] in rel)
        else:
            k1 = (orig, plan.natset & rel)
        r1 = m[1].get(k1)
        if r1 is None:
            r1 = m[1][k1] = self._canon_group(1, plan, action, o)
        k2 = (orig, level, o.project)
        r2 = m[2].get(k2)
        if r2 is None:
            r2 = m[2][k2] = self._canon_group(2, plan, action, o)
        k3 = (o.project, action)
        r3 = m[3].get(k3)
        if r3 is None:
            r3 = m[3][k3] = self._canon_group(3, plan, action, o)
        k4 = o.categories
        r4 = m[4].get(k4)
        if r4 is None:
            r4 = m[4][k4] = self._canon_group(4, plan, action, o)
        if o.orcon or action == "relabel" or action == "share":
            k5 = (o.orcon, plan.sid in o.orcon_approved, action, orig)
            r5 = m[5].get(k5)
            if r5 is None:
                r5 = m[5][k5] = self._canon_group(5, plan, action, o)
        else:
            r5 = _NO_REASONS
        if o.export is not None:
            r6 = self._group(6, plan, action, o, self._export_sentence(plan, action, o))
            if r or r1 or r2 or r3 or r4 or r5 or r6:
                reasons = _merge(r + r1 + r2 + r3 + r4 + r5 + r6)
                return Decision(False, reasons, reasons[0].code, self.world.policy_version, (LOG,))
        elif not (r or r1 or r2 or r3 or r4 or r5):
            return self._allow[action]
        else:
            # memo values live as long as the plan, so their ids are stable keys
            key = (id(r), id(r1), id(r2), id(r3), id(r4), id(r5))
            d = plan.merged.get(key)
            if d is None:
                reasons = _merge(r + r1 + r2 + r3 + r4 + r5)
                d = plan.merged[key] = Decision(
                    False, reasons, reasons[0].code, self.world.policy_version, (LOG,)
                )
            return d
        return self._allow[action]

    def _obj_rank(self, nation: str, level: str) -> int:
        key = (nation, level)
        r = self._rank.get(key)
        if r is None:
            got = self.mapper.rank(nation, level)
            r = self._rank[key] = -1 if got is None else got
        return r

    def _map_rank(self, from_nation: str, level: str, to_nation: str) -> tuple[int, str | None]:
        key = (from_nation, level, to_nation)
        hit = self._mapped.get(key)
        if hit is None:
            mapped = self.mapper.map_level(from_nation, level, to_nation)
            rank = -1 if mapped is None else self._obj_rank(to_nation, mapped)
            hit = self._mapped[key] = (rank, mapped if rank >= 0 else None)
        return hit

    def _recognises(self, issuer: str, info: str, at: datetime) -> bool:
        key = (issuer, info, at)
        hit = self._recog.get(key)
        if hit is None:
            if len(self._recog) >= _MAX_RECOGNITIONS:  # keyed by time: bound it
                self._recog.clear()
            hit = self._recog[key] = bool(self.recognition.recognises(issuer, info, at))
        return hit

    def _relto_ok(self, relto: frozenset[str]) -> bool:
        hit = self._wellformed.get(relto)
        if hit is None:
            hit = self._wellformed[relto] = all(
                isinstance(c, str) and _TRIGRAPH.match(c) is not None for c in relto
            )
        return hit

    def _admissions(self, orig: str, project: str | None) -> tuple[_AdmissionView, ...]:
        key = (orig, project)
        hit = self._adm.get(key)
        if hit is None:
            hit = self._adm[key] = tuple(
                _AdmissionView(
                    a.nation,
                    a.project,
                    self._map_rank(COMMON_SCHEME, a.ceiling, orig)[0],
                    a.start,
                    a.end or _FOREVER,
                )
                for a in self.world.admissions
                if a.project == project
            )
        return hit

    def _subject_view(self, plan: _Plan, orig: str) -> _SubjectView:
        view = plan.views.get(orig)
        if view is None:
            s = plan.subject
            cviews = []
            for c in s.clearances:
                rank, mapped = self._map_rank(c.nation, c.level, orig)
                cviews.append(
                    _ClearanceView(
                        c.status,
                        c.nation,
                        self.mapper.rank(c.nation, c.level) is not None,
                        rank,
                        self._recognises(c.nation, orig, plan.at),
                        mapped,
                        c,
                    )
                )
            view = plan.views[orig] = _SubjectView(
                s.id, plan.nats, tuple(cviews), s.projects, s.roles, s.caveats
            )
        return view

    def _views(
        self, plan: _Plan, action: str, o: Resource, export_ok: bool
    ) -> tuple[_SubjectView, _ObjectView, _EnvView]:
        w = self.world
        orig = o.originator
        ov = _ObjectView(
            orig,
            self._obj_rank(orig, o.classification),
            o.rel_to,
            self._relto_ok(o.rel_to),
            o.project,
            tuple(sorted(o.categories)),
            o.orcon,
            o.orcon_approved,
            o.export is not None,
            export_ok,
        )
        ekey = (action, plan.at, orig, o.project)
        ev = self._env.get(ekey)
        if ev is None:
            if len(self._env) > 65536:
                self._env.clear()
            ev = self._env[ekey] = _EnvView(
                action,
                plan.at,
                w.dual_national_rule.get(orig, "any") == "all",
                w.review_keeps_access,
                w.implicit_members,
                w.known_categories,
                self._admissions(orig, o.project),
            )
        return self._subject_view(plan, orig), ov, ev

    def _canon_group(self, index: int, plan: _Plan, action: str, o: Resource) -> tuple[Reason, ...]:
        """:meth:`_group`, one tuple object per distinct answer in a plan (so that
        equal answers to different group keys share one merged decision)."""
        r = self._group(index, plan, action, o)
        canon: tuple[Reason, ...] = plan.canon.setdefault(r, r)
        return canon

    def _export_sentence(self, plan: _Plan, action: str, o: Resource) -> str | None:
        """The export hook's answer for an export-controlled object (None allows)."""
        assert o.export is not None
        if self.export_check is None:
            return (
                f"The object is export controlled ({o.export.regime} "
                f"{o.export.classification}) and no export-control check is configured."
            )
        x = self.export_check.check(plan.subject, action, o, plan.at)
        # the rule reads only "is there an answer", the explanation its text
        return None if x is None else str(x)

    def _evaluate_export(self, plan: _Plan, action: str, o: Resource) -> Decision:
        """An export-controlled object: the decision on the same object without its
        export data (memoised like any other object), then the export group on the
        hook's answer. The export group reads nothing but that answer, so this is
        the same decision as evaluating every group together, with the legal basis
        of an allowed one -- and an allowed answer that names no basis (from a hook
        that names bases) denies: an allowed transfer of a controlled item always
        has its basis.

        Where the hook shares its answer between subjects of one class on objects
        of one signature, the plan (one subject, one time) remembers the answer by
        (signature, action); the decision without export data is found under the
        int key evaluate() gives it, and an allowing answer carries the allowed
        decision with its basis, while a denying one is merged once per (decision,
        answer): a request costs a few look-ups, not a decision."""
        base = self._bases.get(id(o))
        if base is None or base[0] is not o:
            base = self._base(o)
        sig = base[2]
        if sig is not None and base[5]:
            code = _ACTION_CODE.get(action)
            cls = plan.export_class
            if cls is None:
                cls = self._export_class(plan)
            if code is not None and cls >= 0:
                akey = sig * 8 + code
                answer = plan.export_answers.get(akey)
                if answer is None:
                    answer = self._plan_answer(plan, action, o, sig, akey)
                rel = base[4]
                if plan.single is not None:
                    ikey = base[3] * 8 + code + (4 if plan.single in rel else 0)
                else:
                    bits = 0
                    for i, n in enumerate(plan.nats):
                        if n in rel:
                            bits |= 1 << i
                    ikey = ((base[3] * 8 + code) << len(plan.nats)) | bits
                # the decision without export data, as evaluate() keys it
                d0 = plan.decided_int.get(ikey)
                if d0 is None:
                    d0 = self.evaluate(plan.subject, action, base[1], at=plan.at)
                if answer[2] is None:  # allowed by the hook
                    if d0 is answer[3]:
                        return answer[4]  # type: ignore[return-value]
                    return self._with_answer(plan, action, d0, answer[1], None)
                # denied by the hook: merged once per (decision, answer) and plan;
                # both are kept beside the result, so an id is never mistaken for
                # that of something since forgotten
                mkey = (id(d0), answer[0])
                got = plan.export_merged.get(mkey)
                if got is not None and got[0] is d0:
                    return got[1]
                d = self._with_answer(plan, action, d0, None, answer[2])
                if len(plan.export_merged) > _MAX_SIGNATURES:
                    plan.export_merged.clear()
                plan.export_merged[mkey] = (d0, d)
                return d
        d0 = self.evaluate(plan.subject, action, base[1], at=plan.at)
        if o.marking_error is not None:
            return d0  # an unreadable marking says all there is to say
        basis, sentence = self._shared_answer(plan, action, o, sig)
        return self._with_answer(plan, action, d0, basis, sentence)

    def _plan_answer(
        self, plan: _Plan, action: str, o: Resource, sig: int, akey: int
    ) -> tuple[int, str | None, str | None, Decision | None, Decision | None]:
        """The hook's shared answer for this plan: its number, basis and sentence,
        and, when it allows with a basis, the plain allowed decision for the action
        and that decision with the basis (the commonest merge, done once)."""
        basis, sentence = self._shared_answer(plan, action, o, sig)
        allow = with_basis = None
        if sentence is None and basis is not None:
            allow = self._allow.get(action)
            if allow is not None:
                with_basis = self._with_answer(plan, action, allow, basis, None)
        if len(plan.export_answers) > _MAX_SIGNATURES:
            plan.export_answers.clear()
        got = plan.export_answers[akey] = (
            self._number(("answer", basis, sentence)),
            basis,
            sentence,
            allow,
            with_basis,
        )
        return got

    def _with_answer(
        self, plan: _Plan, action: str, d0: Decision, basis: str | None, sentence: str | None
    ) -> Decision:
        """``d0`` (the decision without export data) with the hook's answer."""
        if sentence is None:
            if basis is None or not d0.allowed:
                return d0
            if d0 is self._allow.get(action):
                # the common allowed case, shared by every subject
                key = (action, basis)
                d = self._allowed_with_basis.get(key)
                if d is None:
                    if len(self._allowed_with_basis) >= _MAX_SIGNATURES:
                        self._allowed_with_basis.clear()
                    d = self._allowed_with_basis[key] = replace(d0, legal_basis=basis)
                return d
            return replace(d0, legal_basis=basis)
        if self._stand_in and self._stand_in in sentence:
            sentence = sentence.replace(self._stand_in, plan.subject.id)
        reasons = _merge((*d0.reasons, Reason("EXPORT_CONTROLLED", sentence)))
        return Decision(False, reasons, reasons[0].code, self.world.policy_version, (LOG,))

    def _base(self, o: Resource) -> _Base:
        """``o`` without its export data, its signature and int-key parts."""
        b = replace(o, export=None)
        prof = self._profiles.get(id(b))
        if prof is None or prof[0] is not b:
            prof = self._profile(b)
        if len(self._bases) >= _MAX_PROFILES:
            self._bases.clear()
        keyed = prof[1] >= 0 and prof[3] and not prof[4]
        base = self._bases[id(o)] = (o, b, self._signature_of(o), prof[1], prof[2], keyed)
        return base

    def _export_class(self, plan: _Plan) -> int:
        """The subject's export class number, asked once per plan (-1: asked alone)."""
        hook = self.export_check
        raw = None
        if hook is not None and self._signature_number_ok:
            try:
                raw = hook.subject_class(plan.subject)  # type: ignore[attr-defined]
            except Exception:
                raw = None
        cls = plan.export_class = -1 if raw is None else self._number(raw)
        return cls

    def _number(self, value: Any) -> int:
        """A small number for a class or signature the hook gave (never reused)."""
        got = self._export_numbers.get(value)
        if got is None:
            if len(self._export_numbers) >= _MAX_PROFILES:
                self._export_numbers.clear()
            got = self._export_numbers[value] = next(self._gk_numbers)
        return got

    def _signature_of(self, o: Resource) -> int | None:
        sig_of = getattr(self.export_check, "object_signature", None)
        if sig_of is None or getattr(self.export_check, "raw_answer", None) is None:
            return None
        try:
            sig = sig_of(o)
        except Exception:
            return None
        return None if sig is None else self._number(sig)

    def _shared_answer(
        self, plan: _Plan, action: str, o: Resource, sig: int | None
    ) -> tuple[str | None, str | None]:
        """The hook's answer, shared by every subject of the same class and object of
        the same signature (the hook says which are alike; ``None``: asked alone);
        one tuple per distinct answer, whose sentence may hold the hook's stand-in
        for the subject's id. Numbers are never reused, so a remembered key never
        names other facts."""
        hook = self.export_check
        if sig is None:
            return self._export_answer(plan, action, o)
        cls = plan.export_class
        if cls is None:
            cls = self._export_class(plan)
        if cls < 0:
            return self._export_answer(plan, action, o)
        key = (cls, sig, action, plan.at, plan.at.tzinfo)
        got = self._export_answers.get(key)
        if got is None:
            basis, sentence = hook.raw_answer(  # type: ignore[union-attr]
                plan.subject, action, o, plan.at
            )
            if sentence is None and not basis:
                sentence = _NO_BASIS
            got = (
                None if basis is None else str(basis),
                None if sentence is None else str(sentence),
            )
            if len(self._export_answers) >= _MAX_SIGNATURES:
                self._export_answers.clear()
            self._export_answers[key] = got
        return got  # its sentence may hold the stand-in: the caller puts the id back

    def _export_answer(
        self, plan: _Plan, action: str, o: Resource
    ) -> tuple[str | None, str | None]:
        """The hook's answer: ``(basis, None)`` allows (``basis`` may be ``None``
        for a hook that names no bases), ``(None, sentence)`` denies."""
        hook = self.export_check
        if hook is None:
            assert o.export is not None
            return None, (
                f"The object is export controlled ({o.export.regime} "
                f"{o.export.classification}) and no export-control check is configured."
            )
        subject, at = plan.subject, plan.at
        answer_of = self._answer_of
        if answer_of is not None:
            basis, sentence = answer_of(subject, action, o, at)
        else:
            sentence = hook.check(subject, action, o, at)
            basis_of = getattr(hook, "legal_basis", None)
            if sentence is not None or basis_of is None:
                return None, None if sentence is None else str(sentence)
            basis = basis_of(subject, action, o, at)
        if sentence is not None:
            return None, str(sentence)
        if not basis:
            return None, _NO_BASIS
        return str(basis), None

    def _group(
        self,
        index: int,
        plan: _Plan,
        action: str,
        o: Resource,
        export_sentence: str | None = None,
    ) -> tuple[Reason, ...]:
        """Run rule group ``index`` (for the export group, 6, on the hook's answer)."""
        s, ov, ev = self._views(plan, action, o, export_sentence is None)
        fired = COMPILED[index](s, ov, ev)
        explain = _EXPLAIN[index]
        if not any(fired.values()):
            return _NO_REASONS
        return explain(fired, s, ov, ev, o, export_sentence)


def enforce_decision(
    decision: Decision,
    subject: Subject,
    action: str,
    obj: Resource,
    *,
    at: datetime,
    sink: AuditSink | None = None,
) -> Decision:
    """Record ``decision`` (when ``sink`` is given) and raise if it denies."""
    if sink is not None:
        sink.record(
            "decision",
            {
                "subject": subject.id,
                "action": action.value if isinstance(action, Action) else str(action),
                "object": obj.id,
                "at": at.isoformat(),
                "allowed": decision.allowed,
                "reasons": [{"code": r.code, "sentence": r.sentence} for r in decision.reasons],
                "rule": decision.rule,
                "policy_version": decision.policy_version,
            },
        )
    if not decision.allowed:
        raise AccessDenied(decision)
    return decision


_by_code = operator.attrgetter("code")


_NO_BASIS = (
    "The export-control check allowed the request but named no legal basis; access is denied."
)


def _merge(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    if len(set(map(_by_code, reasons))) == len(reasons):
        return tuple(sorted(reasons, key=_by_code))
    by_code: dict[str, str] = {}
    for r in reasons:
        prev = by_code.get(r.code)
        by_code[r.code] = r.sentence if prev is None else f"{prev} {r.sentence}"
    return tuple(Reason(code, by_code[code]) for code in sorted(by_code))


# -- explanations: sentences for fired codes ----------------------------------


def _list(items: Iterable[str]) -> str:
    xs = sorted(items)
    return ", ".join(xs) if xs else "none"


def _explain_clearance(
    fired: dict[str, Any], s: _SubjectView, o: _ObjectView, e: _EnvView, obj: Resource, _x: Any
) -> tuple[Reason, ...]:
    out: list[Reason] = []
    if fired["CLEARANCE_MISSING"]:
        out.append(Reason("CLEARANCE_MISSING", f"{s.id} holds no security clearance."))
    chosen = None
    best = None
    for c in s.clearances:
        if not clearance_known(PY, c):
            continue
        score = clearance_score(PY, clearance_failures(PY, c, o, e))
        if best is None or score < best:
            chosen, best = c, score
    if chosen is not None and any(fired[code] for code in CLEARANCE_CODES):
        f = chosen.fact
        name = f"{chosen.issuer} {f.level} clearance {f.id}"
        if fired["CLEARANCE_NOT_CURRENT"]:
            phrase = _STATUS_PHRASE.get(chosen.status, f"has status {chosen.status}")
            cause = f" ({f.cause})" if f.cause else ""
            out.append(
                Reason(
                    "CLEARANCE_NOT_CURRENT",
                    f"The {name} is not current: it {phrase}{cause}.",
                )
            )
        if fired["CLEARANCE_NOT_RECOGNISED"]:
            out.append(
                Reason(
                    "CLEARANCE_NOT_RECOGNISED",
                    f"The {name} does not count for {o.originator} information: no "
                    f"agreement recognising {chosen.issuer} clearances is in force.",
                )
            )
        if fired["CLEARANCE_TOO_LOW"]:
            mapped = (
                f"maps to {chosen.mapped}" if chosen.mapped else "has no equivalent"
            ) + f" in {o.originator}'s scheme"
            out.append(
                Reason(
                    "CLEARANCE_TOO_LOW",
                    f"The {name} {mapped}, which does not dominate {obj.classification}.",
                )
            )
    if fired["UNKNOWN_ATTRIBUTE"]:
        bits = []
        if o.rank < 0:
            bits.append(
                f"The classification {obj.classification!r} is not a level of "
                f"{o.originator}'s scheme."
            )
        bad = [c.fact.id for c in s.clearances if not clearance_known(PY, c)]
        if bad:
            bits.append(f"Clearance {_list(bad)} has a status or level the engine cannot read.")
        out.append(Reason("UNKNOWN_ATTRIBUTE", " ".join(bits)))
    return tuple(out)


def _explain_releasable(
    fired: dict[str, Any], s: _SubjectView, o: _ObjectView, e: _EnvView, obj: Resource, _x: Any
) -> tuple[Reason, ...]:
    out: list[Reason] = []
    if fired["NOT_RELEASABLE"]:
        if e.dual_all and len(s.nats) > 1:
            text = (
                f"{o.originator} judges dual nationals by all their nationalities, and "
                f"{_list(n for n in s.nats if n not in o.relto)} is not in Releasable To."
            )
        else:
            text = f"No nationality of {s.id} ({_list(s.nats)}) is in Releasable To."
        out.append(Reason("NOT_RELEASABLE", text))
    if fired["UNKNOWN_ATTRIBUTE"]:
        bad = [str(c) for c in o.relto if not (isinstance(c, str) and _TRIGRAPH.match(c))]
        out.append(
            Reason(
                "UNKNOWN_ATTRIBUTE",
                f"Releasable To holds codes that are not nation trigraphs: {_list(bad)}.",
            )
        )
    return tuple(out)


def _explain_admission(
    fired: dict[str, Any], s: _SubjectView, o: _ObjectView, e: _EnvView, obj: Resource, _x: Any
) -> tuple[Reason, ...]:
    project = obj.project if obj.project is not None else "(none)"
    who = "/".join(s.nats) if s.nats else "no nation"
    return (
        Reason(
            "NATION_NOT_ADMITTED",
            f"{who} is not admitted to project {project} up to {obj.classification} "
            f"on {e.at.date().isoformat()}.",
        ),
    )


def _explain_ntk(
    fired: dict[str, Any], s: _SubjectView, o: _ObjectView, e: _EnvView, obj: Resource, _x: Any
) -> tuple[Reason, ...]:
    out: list[Reason] = []
    if fired["NO_NEED_TO_KNOW"]:
        bits = []
        if obj.project is None:
            bits.append("The object belongs to no project, so nobody has a need to know.")
        elif obj.project not in s.projects:
            bits.append(f"{s.id} is not a member of project {obj.project}.")
        if e.action == "relabel" and SECURITY_OFFICER not in s.roles:
            bits.append(f"Relabelling needs the {SECURITY_OFFICER} role.")
        out.append(Reason("NO_NEED_TO_KNOW", " ".join(bits)))
    if fired["UNKNOWN_ATTRIBUTE"]:
        out.append(
            Reason(
                "UNKNOWN_ATTRIBUTE",
                f"The action {str(e.action)[:40]!r} is not one of {_list(ACTIONS)}.",
            )
        )
    return tuple(out)


def _explain_caveats(
    fired: dict[str, Any], s: _SubjectView, o: _ObjectView, e: _EnvView, obj: Resource, _x: Any
) -> tuple[Reason, ...]:
    out: list[Reason] = []
    if fired["CAVEAT_NOT_HELD"]:
        lacking = [k for k in o.cats if k in e.known_cats and k not in s.caveats]
        out.append(Reason("CAVEAT_NOT_HELD", f"{s.id} does not hold {_list(lacking)}."))
    if fired["UNKNOWN_ATTRIBUTE"]:
        unknown = [str(k)[:40] for k in o.cats if k not in e.known_cats]
        out.append(Reason("UNKNOWN_ATTRIBUTE", f"Unknown restrictive category: {_list(unknown)}."))
    return tuple(out)


def _explain_originator(
    fired: dict[str, Any], s: _SubjectView, o: _ObjectView, e: _EnvView, obj: Resource, _x: Any
) -> tuple[Reason, ...]:
    bits = []
    if o.orcon and s.id not in o.approved:
        bits.append(f"The object is ORCON and {o.originator} has not approved {s.id}.")
    if o.orcon and e.action == "share":
        bits.append("ORCON objects cannot be shared on without the originator.")
    if e.action == "relabel" and o.originator not in s.nats:
        bits.append(f"Only a {o.originator} national may relabel {o.originator} information.")
    return (Reason("ORIGINATOR_CONTROLLED", " ".join(bits)),)


def _explain_export(
    fired: dict[str, Any], s: _SubjectView, o: _ObjectView, e: _EnvView, obj: Resource, x: Any
) -> tuple[Reason, ...]:
    return (Reason("EXPORT_CONTROLLED", str(x)),)


_Explain = Callable[
    [dict[str, Any], _SubjectView, _ObjectView, _EnvView, Resource, Any], tuple[Reason, ...]
]
_EXPLAIN: Sequence[_Explain] = (
    _explain_clearance,
    _explain_releasable,
    _explain_admission,
    _explain_ntk,
    _explain_caveats,
    _explain_originator,
    _explain_export,
)
