"""A licence's value ceiling under concurrent transfers, on SQLite and PostgreSQL.

Stops: two transfers decided on the same consumption both taking the last of a
licence's ceiling (the licence overrun), and a refused transfer leaving a record
or a log entry behind.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest

import relto.export_office.service as office_module
from relto.authz import Authorizer, Principal
from relto.errors import InvalidInput
from relto.events import MemorySink
from relto.export_control.errors import TransferRefused
from relto.export_control.records import TransferRecord
from relto.export_office import ExportOffice
from relto.store import Database

WHY = "Recorded for the licence consumption test."
OFFICER = Principal(
    person_id="usa-eco",
    name="Export officer",
    home_nation="USA",
    nationalities=frozenset({"USA"}),
    roles=frozenset({("export_control_officer", "USA")}),
)


def _record(i: int, value: int) -> TransferRecord:
    return TransferRecord(
        at=datetime(2026, 6, 1, tzinfo=UTC),
        decision_id=f"race:{i}",
        action="download",
        document_id="doc-1",
        item_description="Test item",
        regime="ITAR",
        designator="USML XI(a)(1)",
        item_kind="technical_data",
        sme=False,
        sender="us-prime",
        sender_organisation="us-prime",
        recipient="jp-eng",
        recipient_organisation="jp-lab",
        recipient_nationalities=("JPN",),
        recipient_location="JPN",
        legal_basis="licence DSP-5 L-1",
        licence_number="L-1",
        value=Decimal(value),
    )


def _office(database: Database) -> tuple[ExportOffice, MemorySink]:
    sink = MemorySink()
    office = ExportOffice(database, sink, Authorizer(sink))
    office.put_licence(
        OFFICER,
        {
            "number": "L-1",
            "regime": "ITAR",
            "kind": "DSP-5",
            "items": ["USML XI"],
            "organisations": ["us-prime", "jp-lab"],
            "nationalities": ["JPN"],
            "end_use": "test",
            "valid_from": "2026-01-01",
            "valid_until": "2027-01-01",
            "value_ceiling": "100",
        },
        justification=WHY,
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return office, sink


def test_concurrent_transfers_never_overrun_a_licence_ceiling(database: Database) -> None:
    office, sink = _office(database)
    workers = 8
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def transfer(i: int) -> None:
        barrier.wait()
        try:
            office.record_transfers([(_record(i, 30), "USA")])
            result = "recorded"
        except TransferRefused:
            result = "refused"
        except Exception as exc:  # a serialisation failure is a refusal too
            result = f"failed:{type(exc).__name__}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=transfer, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorded = outcomes.count("recorded")
    assert 1 <= recorded <= 3, outcomes  # 3 x 30 fits under 100, a 4th never does
    (lic,) = office.summary(OFFICER).licences
    assert Decimal(lic["value_consumed"]) == 30 * recorded
    assert lic["quantity_consumed"] == recorded
    assert len(office.records(OFFICER)) == recorded
    assert sink.kinds().count("export.transfer") == recorded


def test_a_refused_transfer_leaves_nothing_behind(database: Database) -> None:
    office, sink = _office(database)
    office.record_transfers([(_record(1, 90), "USA")])
    try:
        # a batch whose second transfer does not fit: neither is recorded
        office.record_transfers([(_record(2, 5), "USA"), (_record(3, 50), "USA")])
    except TransferRefused:
        pass
    else:
        raise AssertionError("the overrun was not refused")
    assert [r.decision_id for r in office.records(OFFICER)] == ["race:1"]
    assert sink.kinds().count("export.transfer") == 1
    (lic,) = office.summary(OFFICER).licences
    assert Decimal(lic["value_consumed"]) == 90


def test_consumption_cannot_be_set_by_an_officer(database: Database) -> None:
    office, _ = _office(database)
    try:
        office.put_licence(
            OFFICER,
            {"number": "L-2", "regime": "ITAR", "kind": "DSP-5", "items": ["USML XI"],
             "organisations": [], "nationalities": [], "end_use": "x",
             "valid_from": "2026-01-01", "valid_until": "2027-01-01", "value_consumed": "0"},
            justification=WHY,
            at=datetime(2026, 1, 1, tzinfo=UTC),
        )  # fmt: skip
    except InvalidInput as exc:
        assert "counted by relto" in str(exc)
    else:
        raise AssertionError("value_consumed was accepted")


def test_a_records_export_is_never_silently_shortened(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    office, _ = _office(database)
    office.record_transfers([(_record(1, 10), "USA")])
    office.record_transfers([(_record(2, 10), "USA")])
    monkeypatch.setattr(office_module, "MAX_RECORDS", 1)
    with pytest.raises(InvalidInput, match="shorter one"):
        office.records(OFFICER)
    monkeypatch.setattr(office_module, "MAX_RECORDS", 2)
    assert len(office.records(OFFICER)) == 2
