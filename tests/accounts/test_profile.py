"""The profile page: names, phone and postal address, saved tidied, refused with a reason."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.accounts.flows import CSRF_MESSAGE, error_summary, field_errors, text
from tests.conftest import submit
from vrm_portal.accounts.models import AccountEvent, EventKind
from vrm_portal.accounts.profile import ProfileInput, ProfileInvalid, update_profile

PROFILE = "/account/profile"
EMPTY = {"given_name": "", "family_name": "", "phone": "", "postal_address": ""}
FULL = {
    "given_name": "  Alice ",
    "family_name": "Martin",
    "phone": "06 12 34 56 78",
    "postal_address": "  12 rue des Lilas  \r\n\r\n75011 Paris\r\n",
}


def profile_events(db_session, account) -> list[AccountEvent]:
    return list(
        db_session.scalars(
            select(AccountEvent)
            .where(
                AccountEvent.account_id == account.id,
                AccountEvent.kind == EventKind.PROFILE_CHANGED.value,
            )
            .order_by(AccountEvent.id)
        )
    )


def stored(db_session, account) -> dict[str, str]:
    db_session.refresh(account)
    return {field: getattr(account, field) for field in EMPTY}


def save(client, **fields):
    return submit(client, PROFILE, {**EMPTY, **fields})


# ---- the page ---------------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(PROFILE)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_the_page_explains_consent_and_is_linked_from_the_account_pages(client, alice):
    page = client.get(PROFILE)
    assert page.status_code == 200
    html = text(page)
    assert "<h1>Your profile</h1>" in html
    assert "only while you give it a consent that covers that detail" in html
    assert 'href="/consents/"' in html
    assert f'href="{PROFILE}" aria-current="page"' in html
    assert f'href="{PROFILE}"' in text(client.get("/account/"))
    for label in ("Given name", "Family name", "Phone number", "Postal address"):
        assert label in html


# ---- saving -----------------------------------------------------------------------------


def test_the_profile_is_saved_normalised(client, alice, db_session):
    response = save(client, **FULL)

    assert response.status_code == 303
    assert response.headers["Location"] == PROFILE
    assert stored(db_session, alice) == {
        "given_name": "Alice",
        "family_name": "Martin",
        "phone": "+33612345678",
        "postal_address": "12 rue des Lilas\n75011 Paris",
    }
    page = client.get(PROFILE)
    html = text(page)
    assert "Your profile has been saved." in html
    assert 'value="Alice"' in html
    assert 'value="+33612345678"' in html
    assert "12 rue des Lilas\n75011 Paris</textarea>" in html


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("0612345678", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("01.23.45.67.89", "+33123456789"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (202) 555-0143", "+12025550143"),
    ],
)
def test_phone_numbers_are_stored_as_e164(client, alice, db_session, typed, e164):
    assert save(client, phone=typed).status_code == 303
    assert stored(db_session, alice)["phone"] == e164


def test_a_change_records_the_names_of_the_fields_not_their_values(client, alice, db_session):
    save(client, **FULL)

    [event] = profile_events(db_session, alice)
    assert event.detail == {"fields": ["given_name", "family_name", "phone", "postal_address"]}
    assert "Alice" not in repr(event.detail)
    assert "612345678" not in repr(event.detail)
    assert event.ip_address is not None

    save(client, **{**FULL, "phone": "+33 6 98 76 54 32"})
    assert [e.detail for e in profile_events(db_session, alice)][1] == {"fields": ["phone"]}
    assert "Profile changed" in text(client.get("/account/activity"))


def test_emptying_a_field_removes_it(client, alice, db_session):
    save(client, **FULL)

    response = save(client, **{**FULL, "phone": "   ", "postal_address": "\r\n  \r\n"})

    assert response.status_code == 303
    assert stored(db_session, alice)["phone"] == ""
    assert stored(db_session, alice)["postal_address"] == ""
    assert profile_events(db_session, alice)[-1].detail == {"fields": ["phone", "postal_address"]}


def test_saving_without_a_change_says_so_and_records_nothing(client, alice, db_session):
    save(client, **FULL)
    before = len(profile_events(db_session, alice))

    # The same values, typed differently: nothing changes once they are tidied.
    response = save(
        client,
        given_name="Alice",
        family_name=" Martin",
        phone="+33612345678",
        postal_address="12 rue des Lilas\n75011 Paris",
    )

    assert response.status_code == 303
    assert len(profile_events(db_session, alice)) == before
    assert "You did not change anything" in text(client.get(PROFILE))


def test_an_empty_profile_sent_as_is_is_unchanged(client, alice, db_session):
    assert save(client).status_code == 303
    assert profile_events(db_session, alice) == []


# ---- bad input --------------------------------------------------------------------------

BAD_INPUT = [
    ("phone", "06 12 34", "This is not a phone number that exists."),
    ("phone", "not a number", "This is not a phone number that exists."),
    ("phone", "+33 6 12 34 56 78 90 12", "This is not a phone number that exists."),
    ("phone", "0" * 200, "This is not a phone number that exists."),
    ("phone", "06 12\t34 56 78", "Remove the tabs, line breaks"),
    ("given_name", "A" * 81, "A given name has at most 80 characters."),
    ("family_name", "B" * 81, "A family name has at most 80 characters."),
    ("given_name", "Ali\x00ce", "Remove the tabs, line breaks or invisible formatting"),
    ("given_name", "Alice\nBob", "Remove the tabs, line breaks or invisible formatting"),
    ("family_name", "Mar\u202etin", "Remove the tabs, line breaks or invisible formatting"),
    ("postal_address", "1\n2\n3\n4\n5\n6\n7", "Write your address on at most 6 lines."),
    ("postal_address", "x" * 61, "Each line of your address has at most 60 characters"),
    (
        "postal_address",
        "\n".join(["y" * 60] * 6),
        "Your address has at most 300 characters in all.",
    ),
    ("postal_address", "12 rue\tdes Lilas", "Remove the tabs or invisible formatting characters"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_INPUT)
def test_bad_input_is_refused_with_its_message_and_changes_nothing(
    client, alice, db_session, field, value, message
):
    save(client, **FULL)
    before = stored(db_session, alice)
    events = len(profile_events(db_session, alice))

    response = save(client, **{**FULL, "given_name": "Changed", field: value})

    assert response.status_code == 422
    [shown] = field_errors(response, field)
    assert shown.startswith(message), shown
    assert f'href="#{field}"' in error_summary(response)
    assert text(response).count('aria-invalid="true"') == 1
    assert stored(db_session, alice) == before
    assert len(profile_events(db_session, alice)) == events


def test_a_refused_phone_is_shown_back_as_typed(client, alice):
    response = save(client, phone="06 12 34")
    assert 'value="06 12 34"' in text(response)


def test_several_bad_fields_each_get_their_message(client, alice, db_session):
    response = save(client, given_name="A" * 81, phone="123", postal_address="1\n2\n3\n4\n5\n6\n7")

    assert response.status_code == 422
    assert field_errors(response, "given_name") == ["A given name has at most 80 characters."]
    assert field_errors(response, "phone")[0].startswith("This is not a phone number")
    assert field_errors(response, "postal_address") == ["Write your address on at most 6 lines."]
    assert field_errors(response, "family_name") == []
    assert stored(db_session, alice) == EMPTY


def test_without_the_csrf_token_nothing_changes(client, alice, db_session):
    client.get(PROFILE)

    response = client.post(PROFILE, data={**FULL})

    assert response.status_code == 400
    assert CSRF_MESSAGE in text(response)
    assert stored(db_session, alice) == EMPTY
    assert profile_events(db_session, alice) == []


# ---- the service, as the API and the CLI would call it --------------------------------


def test_the_service_refuses_what_the_form_refuses(db_session, make_account):
    account = make_account("bob@example.com")

    with pytest.raises(ProfileInvalid) as refused:
        update_profile(db_session, account, ProfileInput(phone="12"))

    assert (refused.value.field, refused.value.reason) == ("phone", "invalid_phone")
    assert account.phone == ""
    assert profile_events(db_session, account) == []


def test_the_service_returns_the_changed_fields(db_session, make_account):
    account = make_account("bob@example.com")

    changed = update_profile(db_session, account, ProfileInput(family_name="Dupont"))

    assert changed == ["family_name"]
    assert account.family_name == "Dupont"
    assert update_profile(db_session, account, ProfileInput(family_name=" Dupont ")) == []
