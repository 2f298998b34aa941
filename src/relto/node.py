"""The composition root: one node's services, built once, in dependency order.

:func:`build_node` is the only place that knows how relto's capabilities fit
together; adapters (the HTTP app, the console, the CLI) receive the
:class:`Node` and call its services. Nothing is looked up by name later.

Order: settings checked -> storage (database, blobs) -> audit sink and log ->
authorisation point -> partnerships -> vetting and its directory -> decision facts -> key access
service (deciding with those facts, also as a custodian of partners' objects;
accepting partners' attestations through the pinned trust store) -> the home side
of federation (vouching for this node's people) -> the witness of the pinned
partners' logs -> sharing (keys through that KAS and, for objects held in joint
custody, partners' KASes) -> audit reader (entries filtered by the people and
documents above).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from relto.audit.access import AuditReader
from relto.audit.config import AuditSettings, node_signer, node_witness, open_log
from relto.audit.service import TransparencyLog
from relto.audit.witnessing import CheckpointPusher, Partner, PartnerWitness
from relto.authz import Authorizer
from relto.client.node import same_url
from relto.config import Settings
from relto.decisions import CODES
from relto.documents import (
    CUSTODY_REASONS,
    CustodyDecider,
    DecisionFacts,
    DocumentService,
    InProcessKas,
    PinnedCustodians,
    ProductDecider,
)
from relto.events import AuditSink
from relto.export_office import ExportOffice
from relto.federation import PinSnapshot, TrustStore
from relto.federation.acceptance import STATUS_REFUSALS, AttestationAcceptor
from relto.federation.config import FederationSettings
from relto.federation.home import HomeFederation, build_home_federation
from relto.federation.reachability import Reachability
from relto.federation.status_client import StatusListCache
from relto.kas.runtime import KasRuntime, build_runtime
from relto.metrics import DomainMetrics, NodeStateCollector, ScrapeAccess
from relto.partnership.registry import PartnershipRegistry
from relto.sessions import DatabaseSessionStore, SessionStore
from relto.store import BlobStore, Database, LocalBlobStore, create_database
from relto.store.federation import SqlPinRepository
from relto.store.witnessing import SqlAlarmStore, SqlContactStore, SqlCosignatureStore
from relto.tracing.copies import CopyIssuer
from relto.tracing.service import (
    TracingService,
    default_embedders,
    default_page_loader,
)
from relto.vetting.directory import Directory
from relto.vetting.service import VettingService

__all__ = ["Node", "build_node", "own_kas_url"]


@dataclass(frozen=True)
class Node:
    """Everything one relto node runs, wired."""

    settings: Settings
    db: Database
    blobs: BlobStore
    #: Where every decision and change is recorded (the log itself by default).
    sink: AuditSink
    #: The node's transparency log, served under /api/v1/audit.
    log: TransparencyLog
    authorizer: Authorizer
    partnerships: PartnershipRegistry
    vetting: VettingService
    directory: Directory
    facts: DecisionFacts
    kas: KasRuntime
    #: This node vouching for its own people: its descriptor, attestations and
    #: their status list (``None`` without a federation address).
    federation: HomeFederation | None
    documents: DocumentService
    #: The domain metrics the services count into, and who may scrape them.
    metrics: DomainMetrics
    audit: AuditReader
    #: Console sign-in sessions (revocable: signing out ends them on the node).
    sessions: SessionStore
    #: Partner nodes this node trusts, pinned by its security officers.
    trust: TrustStore
    #: Verifies partners' attestations of their people (KAS and REST API).
    attestations: AttestationAcceptor
    #: This node's witness (C2SP tlog-witness) of the pinned partners' logs and of
    #: ``RELTO_AUDIT_WITNESS_LOGS``, raising alarms on their forks and rollbacks
    #: (``None`` when it witnesses nothing).
    witness: PartnerWitness | None = None
    #: Sends this node's checkpoints to the pinned partners' witnesses and keeps
    #: their cosignatures (``None`` without a federation address).
    witnessing: CheckpointPusher | None = None
    #: When each pinned partner was last heard from; the silence alarm (``None``
    #: without a federation address).
    reachability: Reachability | None = None
    #: The export-control office: officers' facts, checks, transfer records.
    exports: ExportOffice | None = None
    #: Makes and records every recipient's copy (issue 17).
    copies: CopyIssuer | None = None
    #: Tracing leaked files to the recipients of fingerprinted copies (issue 17).
    tracing: TracingService | None = None


class _Nations:
    """Home nations and originators for the audit reader, from this node's records."""

    def __init__(self, directory: Directory, documents: DocumentService) -> None:
        self._directory = directory
        self._documents = documents

    def home_nations(self, person_ids: Iterable[str]) -> Mapping[str, str]:
        return self._directory.home_nations(person_ids)

    def originators(
        self, document_ids: Iterable[str], policy_uuids: Iterable[str]
    ) -> Mapping[str, str]:
        return self._documents.originators(document_ids, policy_uuids)


#: The reason codes the key access service and this node's decider give besides
#: the decision engine's (:data:`relto.decisions.CODES`): bounded metric labels.
_KAS_REASONS = (
    "decider_error",
    "export_licence_exhausted",
    "export_records_unavailable",
    "no_decider",
    "not_in_dissem",
    "not_vouched",
    "unknown_object",
    "unsafe_allow_all",
    *CUSTODY_REASONS,
    *STATUS_REFUSALS,
)


def _pinned_partners(pins: PinSnapshot, own: str) -> Callable[[], list[Partner]]:
    """The partners as pinned now (at most 1 s old, ADR 0131), for witnessing."""

    def partners() -> list[Partner]:
        return [
            Partner(p.nation, p.descriptor.base_url, p.descriptor.log_key, p.descriptor.witness_key)
            for p in pins.trusted().values()
            if p.nation != own
        ]

    return partners


def own_kas_url(settings: Settings) -> str:
    """The KAS URL new containers name unless ``RELTO_KAS_URL`` says otherwise: under
    the node's public address (partners reach it there), else where it listens."""
    base = settings.public_url or f"http://{settings.bind}:{settings.port}"
    return base.rstrip("/") + "/kas"


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store ``RELTO_BLOB_STORE`` names: a local folder, or an S3 bucket
    whose bucket must answer now (else ``ConfigError``: refuse to start)."""
    location = settings.blob_bucket
    if location is None:
        return LocalBlobStore(settings.blob_dir)
    settings.check_blob_store()
    # Imported here: boto3 takes a while to import, and only S3 nodes need it.
    from relto.store.s3 import S3BlobStore, S3Options

    key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
    options = S3Options(
        bucket=location[0],
        prefix=location[1],
        access_key_id="" if key_id is None else key_id.get_secret_value(),
        secret_access_key="" if secret is None else secret.get_secret_value(),
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        addressing_style=settings.s3_addressing_style,
        max_attempts=settings.s3_max_attempts,
        retry_mode=settings.s3_retry_mode,
        connect_timeout=settings.s3_connect_timeout,
        read_timeout=settings.s3_read_timeout,
        part_size=settings.s3_part_size_mib << 20,
        concurrency=settings.s3_upload_concurrency,
        grace=timedelta(seconds=settings.s3_grace_seconds),
        ca_bundle=None if settings.s3_ca_bundle is None else str(settings.s3_ca_bundle),
    )
    return S3BlobStore.connect(options, settings.data_dir / "blob-staging")


def build_node(
    settings: Settings,
    *,
    db: Database | None = None,
    blobs: BlobStore | None = None,
    sink: AuditSink | None = None,
) -> Node:
    """Build a node. Raises ``ConfigError`` on unsafe settings.

    Without ``sink`` the node's transparency log records every event (ADR 0072);
    tests pass a :class:`~relto.events.MemorySink` or a
    :class:`~relto.events.NullSink`.
    """
    settings = settings.with_demo_secrets()
    settings.check_startup()
    db = db or create_database(settings.effective_database_url)
    blobs = blobs or open_blob_store(settings)
    token = settings.metrics_token
    metrics = DomainMetrics(
        reasons=(*CODES, *_KAS_REASONS),
        access=ScrapeAccess(None if token is None else token.get_secret_value()),
    )
    if sink is None:
        log = open_log(settings, metrics=metrics)
        sink = log
    else:
        log = sink if isinstance(sink, TransparencyLog) else open_log(settings, metrics=metrics)
    authorizer = Authorizer(sink)
    trust = TrustStore(SqlPinRepository(db), authorizer, sink, settings.nation)
    # A node that pins partners changes the partnership only by quorum-signed
    # changes (relto.federation.ledger): no nation alone admits or ends admissions.
    partnerships = PartnershipRegistry(db, sink, authorizer, federated=lambda: bool(trust.pinned()))
    vetting = VettingService(db, sink)
    directory = Directory(vetting)
    facts = DecisionFacts(db, vetting, demo=settings.demo)
    # Attestations are verified against the pins as read at most 1 s ago (an untrust
    # here stops them at once, one made elsewhere within 1 s; ADR 0131), and each
    # one's status is read from its home node's Token Status List (cached 30 s;
    # refused when no verified list younger than 60 s can be had).
    pins = PinSnapshot(trust)
    attestations = AttestationAcceptor(pins.trusted, StatusListCache(pins), cached=pins.cached)
    # A share this node's KAS holds of a partner's object (joint custody) is decided
    # on the policy it is bound to, for originators pinned here (ADR 0132).
    custody = CustodyDecider(
        facts, nation=settings.nation, namespace=settings.attribute_namespace, trusted=trust.trusted
    )
    # Every allowed release of a controlled item is recorded (and counted against
    # its licence) before the KAS releases the key (issue 16).
    exports = ExportOffice(db, sink, authorizer, facts)
    kas = build_runtime(
        settings,
        sink,
        ProductDecider(facts, custody),
        db=db,
        metrics=metrics,
        acceptor=attestations,
        transfers=exports,
    )
    federation = build_home_federation(
        settings,
        vetting=vetting,
        authorizer=authorizer,
        sink=sink,
        kas_keys=kas.service.store,
        db=db,
    )
    # The node witnesses the logs of the partners it pins (read at every
    # add-checkpoint: an untrust stops it) besides RELTO_AUDIT_WITNESS_LOGS.
    partners = None if federation is None else _pinned_partners(pins, settings.nation)
    # When each partner was last heard from (witnessing and replication tell it);
    # one silent for more than a few push rounds is shown until it is heard again.
    reachability = (
        None
        if partners is None
        else Reachability(
            SqlContactStore(log.db), lambda: [p.nation for p in pins.trusted().values()],
            sink=sink, authorizer=authorizer, nation=settings.nation,
            interval=timedelta(seconds=AuditSettings().witness_push_seconds),
            rounds=FederationSettings().partner_silent_rounds,  # type: ignore[call-arg]
        )
    )  # fmt: skip
    alarms = SqlAlarmStore(log.db)
    bare = node_witness(settings, partners=partners)
    witness = (
        None
        if bare is None
        else PartnerWitness(
            bare, partners or (lambda: []), sink=sink, alarms=alarms, authorizer=authorizer,
            nation=settings.nation, contacts=reachability,
        )
    )  # fmt: skip
    # ... and offers its own checkpoints to theirs (on a schedule: relto.server.witnessing).
    witnessing = (
        None
        if partners is None
        else CheckpointPusher(
            log, node_signer(settings), partners, SqlCosignatureStore(log.db),
            nation=settings.nation, sink=sink, alarms=alarms, contacts=reachability,
        )
    )  # fmt: skip
    keys = InProcessKas(kas.service, default_url=own_kas_url(settings))
    # Every copy that leaves the node is the recipient's own, recorded first
    # (issue 17): its tracing secret sealed for this node's KAS key.
    copies = CopyIssuer(
        db=db,
        sink=sink,
        keys=lambda: kas.service.store,
        target=keys.target,
        embedders=default_embedders(),
        log_index=log,
    )
    documents = DocumentService(
        facts=facts,
        keys=keys,
        db=db,
        blobs=blobs,
        sink=sink,
        vetting=vetting,
        authorizer=authorizer,
        attribute_namespace=settings.attribute_namespace,
        max_upload_bytes=settings.max_upload_bytes,
        metrics=metrics,
        # Partner custodians' KAS keys from their pinned descriptors; their shares
        # asked for with this node's attestation of the local person.
        custodians=PinnedCustodians(trust.trusted, federation),
        copies=copies,
    )
    # What writers that died left behind (uploads cut off, changes never recorded):
    # swept before anything is served; live workers' uploads are left alone.
    documents.sweep(datetime.now(UTC))
    tracing = TracingService(
        copies=copies,
        documents=documents,
        authorizer=authorizer,
        sink=sink,
        keys=lambda: kas.service.store,
        own_kas=lambda url: same_url(url, keys.target().url),
        nation=settings.nation,
        load_pages=default_page_loader(),
        log=log,
        signer=lambda: node_signer(settings),
    )
    audit = AuditReader(
        log, authorizer, _Nations(directory, documents), node_nation=settings.nation
    )
    metrics.registry.register(
        NodeStateCollector(checkpoint=log.checkpoint_state, expiries=vetting.clearance_expiries)
    )
    return Node(
        settings=settings,
        db=db,
        blobs=blobs,
        sink=sink,
        log=log,
        authorizer=authorizer,
        partnerships=partnerships,
        vetting=vetting,
        directory=directory,
        facts=facts,
        kas=kas,
        federation=federation,
        documents=documents,
        metrics=metrics,
        audit=audit,
        sessions=DatabaseSessionStore(db),
        trust=trust,
        attestations=attestations,
        witness=witness,
        witnessing=witnessing,
        reachability=reachability,
        exports=exports,
        copies=copies,
        tracing=tracing,
    )
