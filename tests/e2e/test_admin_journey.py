"""The administration console in a real browser: an admin invites a DPO (the invitation
arrives by mail and the DPO enrols their authenticator app), drafts a new consent text
and cannot approve it; the DPO approves it; a consumer then sees "Needs your renewal".
axe checks every page, in English and in French."""

from __future__ import annotations

import re
import uuid

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session

from tests.conftest import PASSWORD
from tests.e2e.conftest import LiveServer, sign_in_as, unique_email
from tests.mailbox import link_in
from vrm_portal.accounts.models import Account, StaffRole
from vrm_portal.clock import utcnow
from vrm_portal.consent import service
from vrm_portal.consent.catalogue import CatalogueSpec, import_catalogue
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change, Notary
from vrm_portal.consent.signing import signing_key
from vrm_portal.extensions import db

pytestmark = pytest.mark.e2e


def _brand_with_a_consent(live_server: LiveServer, consumer_email: str) -> str:
    """A brand of its own (other tests keep the demo texts), whose one purpose the
    consumer has given; returns its slug."""
    slug = f"e2e-admin-{uuid.uuid4().hex[:8]}"
    spec = CatalogueSpec.model_validate(
        {
            "brands": [
                {
                    "slug": slug,
                    "name": f"Maison {slug[-8:]}",
                    "controller_name": "Maison SAS",
                    "controller_email": "privacy@maison.example",
                    "policy_url": "https://maison.example/privacy",
                    "purposes": [
                        {
                            "key": "tailored-offers",
                            "category": "personalisation",
                            "text": {
                                "title_en": "Offers chosen for you",
                                "title_fr": "Offres choisies pour vous",
                                "text_en": "We choose offers from your interests.",
                                "text_fr": "Nous choisissons les offres pour vous.",
                            },
                        }
                    ],
                    "topics": [{"key": "gifts", "label_en": "Gifts", "label_fr": "Cadeaux"}],
                }
            ]
        }
    )
    app = live_server.app
    with app.app_context(), Session(db.engine) as session:
        import_catalogue(session, spec)
        account = session.query(Account).filter_by(email=consumer_email).one()
        purpose = service.find_purpose(session, slug, "tailored-offers")
        notary = Notary(signing_key(), app.config["PUBLIC_BASE_URL"])
        service.grant(
            session,
            notary,
            account,
            purpose,
            shown_version=1,
            change=Change(CollectionMethod.PORTAL, "en", utcnow()),
        )
        session.commit()
    return slug


def _enrol(page: Page) -> pyotp.TOTP:
    """On the set-up page: read the key as an authenticator app would, give its code."""
    expect(page).to_have_url(re.compile(r"/login/two-factor/setup$"))
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    app = pyotp.TOTP(secret)
    page.get_by_label("6-digit code from your authenticator app").fill(app.now())
    page.get_by_role("button", name="Turn on and sign in").click()
    return app


def _in_french_too(page: Page, check_a11y, what: str) -> None:
    """Check the page in English, switch it to French, check again, switch back."""
    check_a11y(page, what)
    page.get_by_role("button", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    check_a11y(page, f"{what} (French)")
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_invite_a_dpo_draft_a_text_the_dpo_approves_the_consumer_renews(
    page: Page, browser: Browser, live_server: LiveServer, make_account, check_a11y
):
    consumer = make_account(unique_email("consumer"))
    slug = _brand_with_a_consent(live_server, consumer)
    admin = make_account(unique_email("admin"), role=StaffRole.ADMIN)

    # The admin signs in (password, then their authenticator app) and opens the console.
    page.goto("/login")
    page.get_by_label("Email address").fill(admin)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    _enrol(page)
    page.goto("/admin/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Administration")
    _in_french_too(page, check_a11y, "the console's front page")

    # The admin invites a DPO; the invitation arrives by mail.
    dpo_email = unique_email("dpo")
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Staff").click()
    _in_french_too(page, check_a11y, "the staff page")
    page.get_by_role("link", name="Invite a staff member").click()
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter an email address like")
    _in_french_too(page, check_a11y, "the invitation form with an error")
    page.get_by_label("Email address").fill(dpo_email)
    page.get_by_label("Role").select_option("dpo")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Invitation sent to {dpo_email}")
    link = link_in(live_server.mailbox.wait_for(dpo_email, timeout=30), "/staff-invitation/")

    # The DPO, in a browser of their own, chooses a password and enrols their app.
    dpo_context = browser.new_context(base_url=live_server.url, locale="en-GB")
    dpo_page = dpo_context.new_page()
    dpo_page.goto(link)
    expect(dpo_page.get_by_role("heading", level=1)).to_have_text("Join the staff")
    _in_french_too(dpo_page, check_a11y, "the invitation page")
    dpo_page.get_by_label("Choose a password").fill(PASSWORD)
    dpo_page.get_by_label("Type it again").fill(PASSWORD)
    dpo_page.get_by_role("button", name="Continue").click()
    _enrol(dpo_page)
    expect(dpo_page.get_by_role("status").first).to_contain_text("Two-step verification is on")

    # The admin drafts a new text; the page counts who will need to renew.
    page.goto(f"/admin/brands/{slug}/purposes/tailored-offers")
    _in_french_too(page, check_a11y, "a purpose's page")
    page.get_by_role("link", name="Draft a new text version").click()
    expect(page.get_by_text("1 consumer will need to renew")).to_be_visible()
    _in_french_too(page, check_a11y, "the draft form")
    page.get_by_label("Text (English)").fill("We choose offers from your interests and plans.")
    page.get_by_label("Text (French)").fill(
        "Nous choisissons les offres selon vos centres d'intérêt et vos projets."
    )
    page.get_by_role("button", name="Save the draft for review").click()
    expect(page.get_by_role("status").first).to_contain_text("Draft saved.")
    # The author sees the comparison but cannot approve their own draft.
    expect(page.get_by_role("table", name="Text (English)")).to_contain_text("and plans")
    expect(page.get_by_role("button", name="Approve and publish")).to_have_count(0)
    expect(page.locator("#no-review")).to_contain_text("must review it")
    _in_french_too(page, check_a11y, "the draft, seen by its author")
    draft_url = page.url

    # The DPO approves it with a comment: it is published.
    dpo_page.goto("/admin/drafts")
    _in_french_too(dpo_page, check_a11y, "the drafts waiting for review")
    dpo_page.goto(draft_url)
    _in_french_too(dpo_page, check_a11y, "the draft, seen by the reviewer")
    dpo_page.get_by_label("Comment").fill("Clear and accurate.")
    dpo_page.get_by_role("button", name="Approve and publish").click()
    expect(dpo_page.get_by_role("status").first).to_contain_text("version 2 is published")
    dpo_page.goto("/admin/audit?action=text_version.approved")
    expect(dpo_page.get_by_role("table")).to_contain_text(dpo_email)
    _in_french_too(dpo_page, check_a11y, "the audit trail")
    dpo_context.close()

    # The admin's other pages.
    for path, what in (
        ("/admin/brands", "the brands"),
        (f"/admin/brands/{slug}", "a brand"),
        ("/admin/catalogue", "the catalogue file"),
        ("/admin/jobs", "the failed jobs"),
        (f"/admin/brands/{slug}/purposes/tailored-offers/retire", "retiring a purpose"),
        ("/admin/brands/new", "the new brand form"),
        (f"/admin/brands/{slug}/edit", "the brand form"),
        (f"/admin/brands/{slug}/purposes/new", "the new purpose form"),
        (f"/admin/brands/{slug}/topics/gifts", "a topic"),
    ):
        page.goto(path)
        _in_french_too(page, check_a11y, what)

    page.goto("/admin/staff")
    page.get_by_role("link", name=dpo_email).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(dpo_email)
    _in_french_too(page, check_a11y, "a staff member's page")

    # The consumer now sees that their consent needs renewing.
    page.context.clear_cookies()
    sign_in_as(page, consumer)
    page.goto(f"/consents/{slug}")
    expect(page.get_by_text("Needs your renewal").first).to_be_visible()
