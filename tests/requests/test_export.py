"""Download my data (GDPR art. 15 and 20): the JSON, CSV and HTML exports of one builder."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import tracemalloc
import uuid
import zipfile
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from sqlalchemy import Connection, event, func, insert, select
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.consent.conftest import events_of
from tests.requests.conftest import AURORE, Story, find_brand
from vrm_portal import schema as db_schema
from vrm_portal.accounts.models import Account
from vrm_portal.accounts.passkeys.models import Passkey
from vrm_portal.brands.models import ApiClient, Brand
from vrm_portal.clock import utcnow
from vrm_portal.consent.models import ConsentReceipt
from vrm_portal.db import create_db_engine
from vrm_portal.history.models import Interaction
from vrm_portal.requests.export import SECTIONS, begin_snapshot, build_export, section_counts
from vrm_portal.requests.export_formats import json_chunks
from vrm_portal.requests.models import DataRequest

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
SCHEMA_PATH = SCHEMAS / "export-v2.schema.json"
PAGE = "/my-data/export/"
SCHEMA_URL = "http://localhost/my-data/export/export-v2.schema.json"


def download(client: FlaskClient, name: str, **data: str) -> Any:
    return client.post(
        f"/my-data/export/{name}", data={"csrf_token": csrf_token(client, PAGE), **data}
    )


def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def exports_of(session: Session, account: Account) -> list[DataRequest]:
    return list(
        session.scalars(
            select(DataRequest)
            .where(DataRequest.account_id == account.id)
            .order_by(DataRequest.id)
            .execution_options(populate_existing=True)
        )
    )


# ---- JSON ---------------------------------------------------------------------------


def test_json_export_validates_against_the_schema_and_holds_exactly_alices_data(
    client: FlaskClient, db_session: Session, story: Story
) -> None:
    alice = story.alice
    response = download(client, "json")

    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "application/json"
    assert re.fullmatch(
        r'attachment; filename="vrm-portal-export-\d{4}-\d{2}-\d{2}\.json"',
        response.headers["Content-Disposition"],
    )
    assert response.headers["Cache-Control"] == "no-store"
    raw = response.get_data(as_text=True)
    document = json.loads(raw)
    errors = [error.message for error in validator().iter_errors(document)]
    assert errors == []

    assert document["format"] == "vrm-portal-export"
    assert document["version"] == 2
    assert document["schema"] == SCHEMA_URL
    assert document["profile"]["email"] == "alice@example.com"

    events = events_of(db_session, alice)
    history = document["consent_history"]
    assert [row["seq"] for row in history] == [e.seq for e in events]
    assert [row["hash"] for row in history] == [e.hash.hex() for e in events]
    receipts = {
        r.event_seq: r
        for r in db_session.scalars(
            select(ConsentReceipt).where(ConsentReceipt.account_id == alice.id)
        )
    }
    for row in history:
        receipt = receipts[row["seq"]]
        assert (row["receipt_id"], row["receipt_jws"]) == (receipt.receipt_id, receipt.jws)
    assert [(row["brand"], row["purpose"], row["action"]) for row in history] == [
        (AURORE, "analytics", "granted"),
        (AURORE, "personalised-offers", "granted"),
        (AURORE, "analytics", "withdrawn"),
        ("maison-berlingot", "analytics", "granted"),
    ]

    current = {(row["brand"], row["purpose"]): row["status"] for row in document["consents"]}
    assert current == {
        (AURORE, "analytics"): "withdrawn",
        (AURORE, "personalised-offers"): "granted",
        ("maison-berlingot", "analytics"): "granted",
    }
    assert [(row["brand"], row["topic"]) for row in document["interests"]] == [
        (AURORE, "electric-vehicles")
    ]
    [intent] = document["intents"]
    assert (intent["summary"], intent["brands"]) == ("A family estate car", [AURORE])
    assert [row["interaction_id"] for row in document["interactions"]] == [
        story.alice_interaction.interaction_id
    ]
    assert document["interactions"][0]["body"]["amount"] == {"value": "420", "currency": "EUR"}

    client_id = story.api.client_id
    assert sorted((row["kind"], row["client_id"]) for row in document["access_log"]) == [
        ("changes", client_id),
        ("consumer", client_id),
    ]
    requests = document["data_requests"]
    assert [(row["kind"], row["format"], row["status"]) for row in requests] == [
        ("export", "csv", "completed"),
        ("export", "json", "completed"),  # this very download, recorded before it streamed
    ]
    assert {row["kind"] for row in document["account_activity"]} >= {
        "registered",
        "signed_in",
        "interests_changed",
        "intent_stated",
    }

    for foreign in (
        "bob@example.com",
        story.bob_interaction.interaction_id,
        "Bob's secret purchase",
        story.bob_pairwise,
        alice.subject_key,
    ):
        assert foreign not in raw
    assert "password" not in raw
    assert "secret_hash" not in raw


def test_an_empty_account_exports_valid_json(
    client: FlaskClient, db_session: Session, alice: Account
) -> None:
    document = json.loads(download(client, "json").get_data())

    assert list(validator().iter_errors(document)) == []
    for name in SECTIONS:
        if name not in {"profile", "account_activity", "data_requests"}:
            assert document[name] == [], name
    assert len(document["data_requests"]) == 1


def test_each_download_records_a_completed_data_request(
    client: FlaskClient, db_session: Session, alice: Account
) -> None:
    for name in ("json", "csv", "html"):
        assert download(client, name).status_code == 200

    requests = exports_of(db_session, alice)
    assert [(r.kind, r.format, r.status) for r in requests] == [
        ("export", "json", "completed"),
        ("export", "csv", "completed"),
        ("export", "html", "completed"),
    ]
    assert all(r.completed_at == r.requested_at for r in requests)
    assert all(r.subject_key == alice.subject_key for r in requests)


# ---- CSV ZIP ------------------------------------------------------------------------


def test_csv_zip_has_one_file_per_section_with_header_and_rows(
    client: FlaskClient, db_session: Session, story: Story
) -> None:
    response = download(client, "csv")

    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].endswith('.zip"')
    archive = zipfile.ZipFile(io.BytesIO(response.get_data()))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == sorted(
        ["README.txt", *(f"{name}.csv" for name in SECTIONS)]
    )
    counts = section_counts(db_session, story.alice)
    tables: dict[str, list[dict[str, str]]] = {}
    for name, columns in SECTIONS.items():
        data = archive.read(f"{name}.csv")
        assert data.startswith(b"\xef\xbb\xbf"), name
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        header, *rows = list(reader)
        assert tuple(header) == columns
        assert len(rows) == counts[name], name
        tables[name] = [dict(zip(header, row, strict=True)) for row in rows]

    receipts = {
        str(r.event_seq): r.jws
        for r in db_session.scalars(
            select(ConsentReceipt).where(ConsentReceipt.account_id == story.alice.id)
        )
    }
    assert {row["seq"]: row["receipt_jws"] for row in tables["consent_history"]} == receipts
    assert tables["profile"][0]["email"] == "alice@example.com"
    [intent] = tables["intents"]
    assert json.loads(intent["brands"]) == [AURORE]
    [interaction] = tables["interactions"]
    assert json.loads(interaction["body"])["amount"] == {"value": "420", "currency": "EUR"}
    assert tables["data_requests"][-1]["format"] == "csv"
    assert "Bob" not in archive.read("interactions.csv").decode("utf-8-sig")
    assert "schema.json" in archive.read("README.txt").decode()


def test_csv_cells_that_a_spreadsheet_would_run_are_defused(
    client: FlaskClient, db_session: Session, alice: Account, catalogue: None
) -> None:
    from tests.requests.conftest import add_interaction

    add_interaction(db_session, alice, find_brand(db_session, AURORE), "=HYPERLINK(1)")
    db_session.commit()

    archive = zipfile.ZipFile(io.BytesIO(download(client, "csv").get_data()))
    text = archive.read("interactions.csv").decode("utf-8-sig")

    assert "'=HYPERLINK(1)" in text


# ---- HTML ---------------------------------------------------------------------------


def test_printable_page_holds_the_values_and_is_self_contained(
    client: FlaskClient, db_session: Session, story: Story
) -> None:
    response = download(client, "html")

    assert response.status_code == 200
    assert response.is_streamed
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment; ")
    page = response.get_data(as_text=True)
    assert '<html lang="en">' in page
    policy = response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce
    assert f'<style nonce="{nonce.group(1)}">' in page
    assert "default-src 'none'" in policy
    assert "<script" not in page
    assert "<link" not in page
    receipt = db_session.scalars(
        select(ConsentReceipt).where(ConsentReceipt.account_id == story.alice.id)
    ).first()
    assert receipt is not None
    for value in (
        "alice@example.com",
        receipt.jws,
        story.alice_interaction.interaction_id,
        "Bought winter tyres",
        "A family estate car",
        story.api.client_id,
    ):
        assert value in page
    assert "Bob&#39;s secret purchase" not in page
    assert "Bob's secret purchase" not in page
    assert page.count("<h2 ") == len(SECTIONS)
    assert SCHEMA_URL in page


def test_printable_page_can_open_inline(client: FlaskClient, alice: Account) -> None:
    response = download(client, "html", inline="1")

    assert response.headers["Content-Disposition"].startswith("inline; ")
    assert "Nothing in this section." in response.get_data(as_text=True)


# ---- The page, the schema, and the guards ---------------------------------------------


def test_export_page_describes_the_formats_and_counts(client: FlaskClient, story: Story) -> None:
    response = client.get(PAGE)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for name in ("json", "csv", "html"):
        assert f'action="/my-data/export/{name}"' in page
    assert SCHEMA_URL in page
    assert "Consent history and receipts" in page
    assert "<td>4</td>" in page  # four consent events


def test_schema_is_public_and_is_the_file_in_the_repository(client: FlaskClient) -> None:
    response = client.get("/my-data/export/export-v2.schema.json")

    assert response.status_code == 200
    assert response.mimetype == "application/schema+json"
    assert response.get_json(force=True) == json.loads(SCHEMA_PATH.read_text())


def test_earlier_versions_schemas_stay_published(client: FlaskClient) -> None:
    version_1 = json.loads((SCHEMAS / "export-v1.schema.json").read_text())
    # Files of version 1 name the address without a version.
    for path in ("/my-data/export/schema.json", "/my-data/export/export-v1.schema.json"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.get_json(force=True) == version_1
    assert client.get("/my-data/export/export-v3.schema.json").status_code == 404


def test_passkeys_are_exported_by_name_and_dates_never_their_keys(
    client: FlaskClient, db_session: Session, alice: Account
) -> None:
    passkey = Passkey(
        account_id=alice.id,
        credential_id=b"credential-id",
        public_key=b"public-key-bytes",
        user_handle=b"handle",
        name="My phone",
    )
    db_session.add(passkey)
    db_session.commit()
    raw = download(client, "json").get_data(as_text=True)
    document = json.loads(raw)

    assert list(validator().iter_errors(document)) == []
    [row] = document["passkeys"]
    assert row == {
        "name": "My phone",
        "created_at": row["created_at"],
        "last_used_at": None,
    }
    assert base64.b64encode(b"public-key-bytes").decode() not in raw
    assert "credential-id" not in raw


def test_signed_out_visitors_are_sent_to_sign_in(client: FlaskClient, catalogue: None) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]

    token = csrf_token(client, "/login")
    response = client.post("/my-data/export/json", data={"csrf_token": token})
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_download_without_csrf_token_is_refused_and_records_nothing(
    client: FlaskClient, db_session: Session, alice: Account
) -> None:
    response = client.post("/my-data/export/json", data={})

    assert response.status_code == 400
    assert exports_of(db_session, alice) == []


def test_download_urls_refuse_get_and_unknown_formats(
    client: FlaskClient, db_session: Session, alice: Account
) -> None:
    assert client.get("/my-data/export/json").status_code == 405
    assert download(client, "xml").status_code == 404
    assert exports_of(db_session, alice) == []


def test_downloads_are_rate_limited_per_account(client: FlaskClient, alice: Account) -> None:
    token = csrf_token(client, PAGE)
    statuses = [
        client.post("/my-data/export/json", data={"csrf_token": token}).status_code
        for _ in range(11)
    ]

    assert statuses == [200] * 10 + [429]


# ---- Streaming ----------------------------------------------------------------------

ROWS = 10_000
BODY_TEXT = "x" * 1500


def _bulk_interactions(session: Session, account: Account, brand: Brand, count: int) -> None:
    now = utcnow()
    session.execute(
        insert(Interaction),
        [
            {
                "interaction_id": str(uuid.uuid4()),
                "account_id": account.id,
                "brand_id": brand.id,
                "type": "purchase",
                "occurred_at": now,
                "recorded_at": now,
                "summary": f"Purchase {n}",
                "body": {"type": "purchase", "summary": f"Purchase {n}", "note": BODY_TEXT},
                "request_hash": "0" * 64,
            }
            for n in range(count)
        ],
    )
    session.commit()


def test_builder_streams_with_bounded_queries_and_memory(
    db_session: Session, connection: Connection, alice: Account
) -> None:
    """10,000 interactions of ~1.7 KB: holding them as rows or dicts would take well over
    the output's size; streaming holds one fetch batch (500 rows) at most."""
    _bulk_interactions(db_session, alice, find_brand(db_session, AURORE), ROWS)
    assert alice.subject_key  # loaded now, not during the export
    statements: list[str] = []

    def count(*args: Any) -> None:
        if not args[2].startswith(("SAVEPOINT", "RELEASE")):
            statements.append(args[2])

    event.listen(connection, "before_cursor_execute", count)
    tracemalloc.start()
    try:
        export = build_export(db_session, alice, utcnow(), "en")
        size = sum(len(chunk) for chunk in json_chunks(export, SCHEMA_URL))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        event.remove(connection, "before_cursor_execute", count)

    assert size > ROWS * len(BODY_TEXT)
    assert peak < size / 3, f"peak {peak / 1e6:.1f} MB for {size / 1e6:.1f} MB of JSON"
    assert len(statements) <= len(SECTIONS), statements  # one query per section


def test_a_long_read_does_not_block_writers_and_sees_one_snapshot(
    scratch_database_url: str,
) -> None:
    """The export's transaction reads a snapshot without the write lock (SQLite) and keeps
    it while others write (both engines)."""
    engine = create_db_engine(scratch_database_url)
    try:
        db_schema.upgrade(engine)
        with Session(engine) as setup:
            account = Account(email="reader@example.com")
            brand = Brand(
                slug="snap",
                name="Snap",
                controller_name="Snap SA",
                controller_email="privacy@snap.example",
                policy_url="https://snap.example/privacy",
            )
            setup.add_all([account, brand])
            setup.commit()
            _bulk_interactions(setup, account, brand, 1200)
            account_id, brand_id = account.id, brand.id

        with Session(engine, expire_on_commit=False) as reader:
            account = reader.get_one(Account, account_id)
            reader.commit()
            begin_snapshot(reader)
            sections = {s.name: s for s in build_export(reader, account, utcnow(), "en").sections}
            rows = sections["interactions"].rows
            first = next(rows)

            with engine.connect() as writer:
                dbapi: Any = writer.connection.dbapi_connection
                if engine.dialect.name == "sqlite":
                    dbapi.execute("PRAGMA busy_timeout = 200")  # fail fast if locked out
                with writer.begin():
                    writer.execute(
                        insert(Interaction),
                        {
                            "interaction_id": str(uuid.uuid4()),
                            "account_id": account_id,
                            "brand_id": brand_id,
                            "type": "purchase",
                            "occurred_at": utcnow(),
                            "recorded_at": utcnow(),
                            "summary": "written during the export",
                            "body": {},
                            "request_hash": "0" * 64,
                        },
                    )
            rest = list(rows)
            assert len([first, *rest]) == 1200
            assert all(row["summary"] != "written during the export" for row in rest)
        with Session(engine) as check:
            total = check.scalar(select(func.count()).select_from(Interaction))
            assert total == 1201
            assert check.scalar(select(func.count()).select_from(ApiClient)) == 0
    finally:
        engine.dispose()
