"""The catalogue from the console: brands, purposes and their retirement, topics, the
catalogue file, failed jobs; every change in the audit trail."""

from __future__ import annotations

import io
import json

from sqlalchemy import select

from tests.admin.conftest import page_text, post
from vrm_portal.audit.models import StaffAction
from vrm_portal.brands.models import Brand, BrandChange
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.models import CollectionMethod, ConsentState
from vrm_portal.consent.service import Change
from vrm_portal.interests.models import Topic
from vrm_portal.jobs.models import Job, JobStatus

BRAND = {
    "slug": "cafe-lumiere",
    "name": "Café Lumière",
    "controller_name": "Café Lumière SAS",
    "controller_address": "1 rue de la Paix, Paris",
    "controller_email": "privacy@cafe.example",
    "policy_url": "https://cafe.example/privacy",
    "jurisdiction": "FR",
}


def test_a_brand_is_created_once_with_precise_messages(as_role, db_session):
    admin, _ = as_role("admin")
    bad = post(
        admin,
        "/admin/brands/new",
        {
            **BRAND,
            "slug": "Bad Key",
            "controller_email": "x",
            "policy_url": "ftp://x",
            "jurisdiction": "fr",
        },
        "/admin/brands/new",
    )
    assert bad.status_code == 422
    text = page_text(bad)
    for message in ("lower-case letters", "privacy@example.com", "https://", "two capital letters"):
        assert message in text
    assert post(admin, "/admin/brands/new", BRAND, "/admin/brands/new").status_code == 302
    again = post(admin, "/admin/brands/new", BRAND, "/admin/brands/new")
    assert "Another brand already has this key." in page_text(again)
    assert len(db_session.scalars(select(Brand).where(Brand.slug == "cafe-lumiere")).all()) == 1
    edit = post(
        admin,
        "/admin/brands/cafe-lumiere/edit",
        {**BRAND, "controller_email": "dpo@cafe.example"},
        "/admin/brands/cafe-lumiere/edit",
    )
    assert edit.status_code == 302
    updated = db_session.scalars(
        select(StaffAction).where(StaffAction.action == "brand.updated")
    ).one()
    assert updated.before == {"controller_email": "privacy@cafe.example"}


def test_the_consumer_brand_page_shows_the_privacy_contact(client, make_account, catalogue):
    from tests.conftest import sign_in

    make_account("alice@example.com")
    sign_in(client)
    page = page_text(client.get("/consents/maison-berlingot"))
    assert (
        '<a href="mailto:privacy@maison-berlingot.example">privacy@maison-berlingot.example</a>'
        in page
    )


def test_retiring_a_purpose_withdraws_each_consent_and_tells_the_brand(
    as_role, db_session, make_account, notary
):
    purpose = service.find_purpose(db_session, "maison-berlingot", "sms-offers")
    for email in ("a@example.com", "b@example.com"):
        consumer = make_account(email)
        service.grant(
            db_session,
            notary,
            consumer,
            purpose,
            shown_version=purpose.current_version,
            change=Change(CollectionMethod.API, "en", utcnow()),
        )
    db_session.commit()
    admin, _ = as_role("admin")
    page = "/admin/brands/maison-berlingot/purposes/sms-offers/retire"
    assert "This withdraws the consents of 2 consumers." in page_text(admin.get(page))
    unconfirmed = post(admin, page, {"reason": "no more SMS"}, page)
    assert "Tick the box to confirm." in page_text(unconfirmed)
    assert post(admin, page, {"reason": "no more SMS", "confirm": "y"}, page).status_code == 302
    db_session.expire_all()
    states = db_session.scalars(
        select(ConsentState).where(ConsentState.purpose_id == purpose.id)
    ).all()
    assert {(s.status, s.method) for s in states} == {("withdrawn", "purpose-retired")}
    withdrawn = db_session.scalars(
        select(BrandChange).where(BrandChange.kind == "consent.withdrawn")
    ).all()
    assert len(withdrawn) == 2
    assert (
        post(admin, page, {"reason": "again", "confirm": "y"}, "/admin/brands").status_code == 302
    )
    assert (
        len(
            db_session.scalars(
                select(BrandChange).where(BrandChange.kind == "consent.withdrawn")
            ).all()
        )
        == 2
    )


def test_topics_are_added_renamed_and_retired(as_role, db_session):
    admin, _ = as_role("admin")
    brand = "/admin/brands/maison-berlingot"
    added = post(
        admin, brand + "/topics", {"key": "tea", "label_en": "Tea", "label_fr": "Thé"}, brand
    )
    assert added.status_code == 302
    twice = post(
        admin, brand + "/topics", {"key": "tea", "label_en": "Tea", "label_fr": "Thé"}, brand
    )
    assert "already has a topic with this key" in page_text(twice)
    topic_page = brand + "/topics/tea"
    assert (
        post(admin, topic_page, {"label_en": "Teas", "label_fr": "Thés"}, topic_page).status_code
        == 302
    )
    assert post(admin, topic_page + "/retire", {"retired": "1"}, topic_page).status_code == 302
    topic = db_session.scalars(select(Topic).where(Topic.key == "tea")).one()
    db_session.refresh(topic)
    assert (topic.label_en, topic.retired) == ("Teas", True)


def test_the_catalogue_exports_and_reimports_and_a_bad_file_is_refused_whole(as_role, db_session):
    admin, _ = as_role("admin")
    exported = admin.get("/admin/catalogue/export.json")
    assert exported.status_code == 200
    document = json.loads(exported.get_data(as_text=True))
    assert {b["slug"] for b in document["brands"]} >= {"maison-berlingot"}

    def upload(doc):
        data = {"file": (io.BytesIO(json.dumps(doc).encode()), "catalogue.json")}
        from tests.admin.conftest import csrf_of

        data["csrf_token"] = csrf_of(admin, "/admin/catalogue")
        return admin.post("/admin/catalogue/import", data=data, content_type="multipart/form-data")

    assert upload(document).status_code == 302
    bad = json.loads(json.dumps(document))
    bad["brands"][0]["policy_url"] = "not a url"
    bad["brands"][0]["purposes"][0]["text"]["text_en"] = "Changed behind the reviewer's back."
    bad["brands"].append({**bad["brands"][0], "slug": "new-brand", "controller_email": "nope"})
    refused = upload(bad)
    assert refused.status_code == 422
    text = page_text(refused)
    last = len(bad["brands"]) - 1
    assert "brands.0.policy_url" in text
    assert f"brands.{last}.controller_email" in text
    assert db_session.scalar(select(Brand).where(Brand.slug == "new-brand")) is None
    changed = json.loads(json.dumps(document))
    changed["brands"][0]["purposes"][0]["text"]["text_en"] = "Changed behind the reviewer's back."
    review = upload(changed)
    assert "brands.0.purposes.0.text" in page_text(review)


def test_a_failed_job_is_retried_once(as_role, db_session):
    job = Job(
        id="job-failed-1",
        kind="mail.send",
        payload={},
        status=JobStatus.FAILED.value,
        attempts=3,
        last_error="SMTP down",
        created_at=utcnow(),
        next_attempt_at=utcnow(),
        finished_at=utcnow(),
    )
    db_session.add(job)
    db_session.commit()
    admin, _ = as_role("admin")
    assert "SMTP down" in page_text(admin.get("/admin/jobs"))
    assert post(admin, "/admin/jobs/job-failed-1/retry", {}, "/admin/jobs").status_code == 302
    db_session.expire_all()
    assert db_session.get(Job, "job-failed-1").status == JobStatus.QUEUED.value
    assert post(admin, "/admin/jobs/job-failed-1/retry", {}, "/admin/staff").status_code == 302
    assert (
        len(
            db_session.scalars(select(StaffAction).where(StaffAction.action == "job.retried")).all()
        )
        == 1
    )


def test_the_audit_trail_searches_and_refuses_bad_dates(as_role):
    admin, _ = as_role("admin")
    post(admin, "/admin/brands/new", BRAND, "/admin/brands/new")
    found = page_text(admin.get("/admin/audit?action=brand.created"))
    assert "cafe-lumiere" in found
    bad = admin.get("/admin/audit?since=31/12/2026")
    assert bad.status_code == 422
    assert "Enter a date like 2026-12-31." in page_text(bad)
    csv_text = page_text(admin.get("/admin/audit/export.csv?action=brand.created"))
    assert csv_text.startswith("id,occurred_at")
    assert "cafe-lumiere" in csv_text


def test_a_retired_purpose_is_no_longer_asked(as_role, client, make_account, db_session):
    from tests.conftest import sign_in

    admin, _ = as_role("admin")
    page = "/admin/brands/maison-berlingot/purposes/sms-offers/retire"
    assert post(admin, page, {"reason": "gone", "confirm": "y"}, page).status_code == 302
    make_account("alice@example.com")
    sign_in(client)
    assert 'id="purpose-sms-offers"' not in page_text(client.get("/consents/maison-berlingot"))
    from tests.admin.conftest import csrf_of

    token = csrf_of(client, "/consents/maison-berlingot")
    response = client.post(
        "/consents/maison-berlingot/sms-offers",
        data={"csrf_token": token, "choice": "grant", "version": "1"},
    )
    assert response.status_code == 303
    purpose = service.find_purpose(db_session, "maison-berlingot", "sms-offers")
    assert (
        db_session.scalar(select(ConsentState).where(ConsentState.purpose_id == purpose.id)) is None
    )


def test_the_command_refuses_a_key_given_twice_with_its_path(app, tmp_path):
    document = {
        "brands": [
            {
                **BRAND,
                "topics": [
                    {"key": "tea", "label_en": "Tea", "label_fr": "Thé"},
                    {"key": "tea", "label_en": "Tea again", "label_fr": "Thé encore"},
                ],
            }
        ]
    }
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["vrm", "import-catalogue", str(path)])
    assert result.exit_code != 0
    assert "brands.0.topics: Value error, the key 'tea' is given more than once" in result.output


def test_control_characters_get_a_message_not_a_crash(as_role):
    admin, _ = as_role("admin")
    response = post(admin, "/admin/brands/new", {**BRAND, "name": "Caf\x00é"}, "/admin/brands/new")
    assert response.status_code == 422
    assert "Remove the control characters from this field." in page_text(response)
    search = admin.get("/admin/audit?object_id=a%00b")
    assert search.status_code == 422
    assert "Remove the control characters from this field." in page_text(search)
    from tests.admin.conftest import csrf_of

    document = {"brands": [{**BRAND, "name": "Caf\u0000é"}]}
    upload = admin.post(
        "/admin/catalogue/import",
        data={
            "csrf_token": csrf_of(admin, "/admin/catalogue"),
            "file": (io.BytesIO(json.dumps(document).encode()), "catalogue.json"),
        },
        content_type="multipart/form-data",
    )
    assert upload.status_code == 422
    assert "brands.0.name" in page_text(upload)
