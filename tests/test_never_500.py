"""Never a 500, whatever is typed or sent (outside security test, "Account security", Low).

Hypothesis generates values (control characters, NULs, huge strings, any Unicode, bytes
that are not UTF-8, numbers beyond every range) and sends them:

* into every field of every form. The routes come from the app's ``url_map``: each one
  that takes a POST is posted to from the page its form is on, found by crawling the
  site as whoever sees that form (a visitor, a signed-in consumer, staff half-way through
  signing in), with the page's CSRF token so that the input reaches the form's own
  checks; a quarter of the examples also change the path parameters of the form's
  address. A POST route no crawl finds a form for (a JSON endpoint of the browser, a
  step of a flow the crawl does not walk) is posted blind: generated field names and
  values, as a form or as JSON, to generated path parameters;
* into the query string (and path parameters) of every GET route;
* as the body, query parameters and headers of the brand API and its token endpoint.

Every answer must be below 500. The examples are derived from a fixed seed, so a run is
reproducible; set ``VRM_NEVER_500_SEED`` to explore others and ``VRM_NEVER_500_EXAMPLES``
for more (or fewer) examples per route.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect, Rule

from tests.api.conftest import ALL_SCOPES, basic
from tests.conftest import PASSWORD, app_overrides
from tests.identity_provider import DOWN_PROVIDER
from vrm_portal import create_app
from vrm_portal.accounts import email_tokens
from vrm_portal.accounts import service as accounts
from vrm_portal.accounts.models import Account, StaffRole, TokenPurpose
from vrm_portal.brands import clients
from vrm_portal.brands.service import brand_by_slug, pairwise_id_for
from vrm_portal.clock import utcnow
from vrm_portal.consent import service as consent
from vrm_portal.consent.models import CollectionMethod
from vrm_portal.consent.service import Change, Notary
from vrm_portal.consent.signing import signing_key
from vrm_portal.demo.catalogue import load_demo_catalogue
from vrm_portal.extensions import db, limiter
from vrm_portal.interests import service as interests
from vrm_portal.reminders import service as reminders

EXAMPLES = int(os.environ.get("VRM_NEVER_500_EXAMPLES", "20"))
SEED = os.environ.get("VRM_NEVER_500_SEED")
HOST = "localhost"


def _settings(examples: int = EXAMPLES) -> Callable[[Any], Any]:
    def decorate(test: Any) -> Any:
        test = settings(
            max_examples=examples,
            deadline=None,
            derandomize=SEED is None,
            database=None,
            suppress_health_check=[
                HealthCheck.function_scoped_fixture,
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
            ],
        )(test)
        return seed(int(SEED))(test) if SEED is not None else test

    return decorate


# ---- The routes, read from the url_map of an app built for the purpose ----------------


def _routes() -> list[Rule]:
    """Every route of the app (read at collection, to name each test after its route)."""
    with tempfile.TemporaryDirectory(prefix="vrm-never-500-") as name:
        folder = Path(name)
        app = create_app(app_overrides(f"sqlite:///{folder / 'routes.sqlite3'}", 25, folder))
        app.extensions["vrm_db"].engine.dispose()
        return sorted(app.url_map.iter_rules(), key=lambda rule: (rule.rule, rule.endpoint))


ROUTES = _routes()
#: The brand API and its token endpoint have their own tests below (a bearer token, JSON).
_API = ("api.", "oauth.")
POST_ROUTES = [r for r in ROUTES if "POST" in r.methods and not r.endpoint.startswith(_API)]
GET_ROUTES = [
    r
    for r in ROUTES
    if "GET" in r.methods and not r.endpoint.startswith(_API) and r.endpoint != "static"
]
#: Forms the crawl must find (a safeguard: without them it would silently post blind).
MUST_FIND_FORM = {
    "auth.login",
    "auth.register",
    "auth.forgot_password",
    "auth.reset_password",
    "auth.verify_email",
    "auth.logout",
    "account.change_email",
    "account.change_password",
    "account.confirm_email_change",
    "account.revoke_session",
    "account.revoke_other_sessions",
    "profile.edit",
    "consent.choose",
    "consent.confirm",
    "interests.save_interests",
    "interests.state_intent",
    "interests.withdraw_intent",
    "public.set_locale",
    "reminders.settings",
    "reminders.off",
    "erasure.request_erasure",
    "export.download",
    "two_factor.setup",
}


# ---- Generated values ----------------------------------------------------------------

_NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n",
    "\x1b[2J\x1b[31m",
    "\u202e\u200b\ufeff",
    "\x7f\x85\x9b",
    "0",
    "-1",
    "1e400",
    "NaN",
    "Infinity",
    "9" * 40,
    "-" + "9" * 40,
    "\uff11\uff12\uff13",
    "\u0663",
    "'; DROP TABLE accounts; --",
    "<script>alert(1)</script>",
    "{{ 7*7 }}",
    "%00%ff",
    "../../etc/passwd",
    "alice@example.com",
    "a@b",
    "x@example.com\r\nBcc: eve@example.net",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 \u01c5 \u00df \ufb00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "true",
    "null",
]
_TEXT = st.text(st.characters(codec="utf-8"), max_size=120)
_HUGE = st.builds(
    lambda unit, count: unit * count,
    st.sampled_from(["x", "\u00e9", "\x00", "9", "\n", "\U0001d518"]),
    st.integers(1_000, 60_000),
)
#: One value of a field or parameter: bytes are sent as they are (maybe not UTF-8). Huge
#: values are one draw in eight: they cost the most to send.
VALUE: st.SearchStrategy[str | bytes] = st.one_of(
    _TEXT,
    _TEXT,
    st.sampled_from(_NASTY),
    st.sampled_from(_NASTY),
    st.integers(-(10**30), 10**30).map(str),
    st.binary(max_size=40),
    st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
    _HUGE,
)
_NAME = st.one_of(
    st.sampled_from(
        ["email", "password", "code", "name", "next", "token", "new_password", "confirm", "id"]
    ),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
)
_JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    _TEXT,
    st.sampled_from(_NASTY),
)


def _json_values(depth: int) -> st.SearchStrategy[Any]:
    """JSON values nested up to ``depth`` levels. Built by hand: ``st.recursive`` warns
    (an error here) once Schemathesis' tests have run in the same process."""
    if depth == 0:
        return _JSON_SCALAR
    inner = _json_values(depth - 1)
    return st.one_of(
        _JSON_SCALAR, st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)
    )


JSON_VALUE = _json_values(3)
#: Sentinel: leave the field out.
OMIT = object()


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def form_body(fields: dict[str, Any]) -> bytes:
    """``application/x-www-form-urlencoded``, each value as bytes (any of them may be a list)."""
    pairs: list[tuple[bytes, bytes]] = []
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            pairs.append((_encode(name), _encode(one)))
    return urlencode(pairs).encode("ascii")


def query_string(params: dict[Any, Any]) -> str:
    return urlencode([(_encode(k), _encode(v)) for k, v in params.items()])


_PARAM = re.compile(r"<(?:(?P<converter>\w+)(?:\([^>]*\))?:)?(?P<name>\w+)>")


def path_strategy(rule: Rule) -> st.SearchStrategy[str]:
    """Addresses of ``rule`` with generated path parameters."""
    parts: list[st.SearchStrategy[str]] = []
    last = 0
    for match in _PARAM.finditer(rule.rule):
        parts.append(st.just(rule.rule[last : match.start()]))
        if match.group("converter") == "int":
            parts.append(st.integers(0, 10**30).map(str))
        else:
            text = st.one_of(
                st.text(st.characters(codec="utf-8"), min_size=1, max_size=80),
                st.sampled_from([n for n in _NASTY if n]),
                st.integers(0, 10**30).map(str),
            )
            parts.append(
                text.map(lambda value: quote(value.encode("utf-8", "surrogatepass"), safe=""))
            )
        last = match.end()
    parts.append(st.just(rule.rule[last:]))
    return st.tuples(*parts).map("".join)


# ---- Reading pages: forms, links, CSRF tokens -----------------------------------------


@dataclass
class Form:
    method: str
    action: str
    fields: dict[str, list[str]] = field(default_factory=dict)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = Form(a.get("method", "get").lower(), a.get("action", ""))
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "textarea", "button", "select"):
            if a.get("name"):
                self._form.fields.setdefault(a["name"], []).append(a.get("value", ""))
                self._select = a["name"] if tag == "select" else None
        elif self._form is not None and tag == "option" and self._select:
            self._form.fields[self._select].append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def parse_page(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    return parser


def csrf_of(html: str) -> str | None:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    return match.group(1) if match else None


def local_path(base: str, href: str) -> str | None:
    """``href`` (relative to ``base``) as a path with its query, or None if off-site."""
    url = urlsplit(urljoin(f"http://{HOST}{base}", href))
    if url.scheme not in ("http", "https") or url.hostname != HOST:
        return None
    return url.path + (f"?{url.query}" if url.query else "")


# ---- The world: data, and the people who browse it ------------------------------------
# One world for the module (seeding it and crawling the site once is most of the cost);
# each test runs in a savepoint of the world's transaction, rolled back after it.

CSRF_REFUSED = "did not come from this site"


@dataclass
class Persona:
    """A browser, how to tell it is still where it was, and how to get it back there."""

    name: str
    browser: FlaskClient
    home: str
    credentials: tuple[str, str] | None
    seeds: list[str]
    token: str | None = None

    def fresh(self) -> None:
        """Signed in (or half-way through signing in) again if it no longer is, and a
        CSRF token of its current session."""
        page = self.browser.get(self.home)
        if self.credentials is not None and page.status_code != 200:
            with self.browser.application.app_context():
                limiter.reset()
            _sign_in(self.browser, *self.credentials)
            page = self.browser.get(self.home)
        self.token = csrf_of(page.get_data(as_text=True)) or csrf_of(
            self.browser.get("/").get_data(as_text=True)
        )

    def send(self, request: Callable[[str], Any]) -> Any:
        """``request(csrf_token)``, again after ``fresh`` if the persona lost its place."""
        if self.token is None:
            self.fresh()
        response = request(self.token or "")
        lost = (
            response.status_code == 400 and CSRF_REFUSED in response.get_data(as_text=True)
        ) or (response.status_code == 302 and "/login" in response.headers.get("Location", ""))
        if lost:
            self.fresh()
            response = request(self.token or "")
        return response


@dataclass
class World:
    app: Flask
    connection: Connection
    personas: dict[str, Persona]
    api_token: str
    api_client: tuple[str, str]
    consumer_id: str
    #: For each POST endpoint: (persona, form) of the first form found for it.
    forms: dict[str, tuple[str, Form]] = field(default_factory=dict)
    #: For each GET endpoint: concrete addresses seen in links.
    addresses: dict[str, list[str]] = field(default_factory=dict)
    query_keys: set[str] = field(default_factory=set)


def _sign_in(browser: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    token = csrf_of(browser.get("/login").get_data(as_text=True))
    return browser.post("/login", data={"csrf_token": token, "email": email, "password": password})


def _pending_link_secret(session: Session, account: Account) -> str | None:
    """An emailed identity-link secret, as a provider sign-in with a known address makes."""
    from vrm_portal.accounts.social import service as social
    from vrm_portal.accounts.social.models import PendingIdentityLink

    try:
        pending = PendingIdentityLink(
            account_id=account.id,
            provider="test-id",
            subject="never-500",
            email=account.email,
            detail={},
            expires_at=utcnow() + timedelta(hours=1),
        )
        session.add(pending)
        session.flush()
        return social.issue_pending_link_secret(session, pending)
    except (TypeError, AttributeError):  # the social service changed shape: post blind
        return None


def _account(session: Session, email: str, *, verified: bool = True) -> Account:
    account = accounts.register_account(
        session, email, PASSWORD, verification_ttl=timedelta(hours=1)
    ).account
    if verified:
        account.email_verified_at = utcnow()
    return account


def _seed(app: Flask, session: Session) -> tuple[dict[str, list[str]], str, tuple[str, str], str]:
    """The data the pages show: Alice with consents, interests, a plan and pending links;
    an unverified Bob; staff; a brand API client. Returns each persona's extra pages, the
    API token's client, and Alice's id for the brand."""
    with app.app_context():
        notary = Notary(signing_key(), "http://localhost")
    load_demo_catalogue(session)
    alice = _account(session, "alice@example.com")
    bob = _account(session, "bob@example.com", verified=False)
    _account(session, "dpo@example.com").staff_role = StaffRole.DPO.value
    change = Change(CollectionMethod.IMPORT, "en", utcnow())
    for key in ("analytics", "personalised-offers"):
        purpose = consent.find_purpose(session, "aurore-automobiles", key)
        consent.grant(
            session, notary, alice, purpose, shown_version=purpose.current_version, change=change
        )
    email_offers = consent.find_purpose(session, "aurore-automobiles", "email-offers")
    pending = consent.grant(
        session,
        notary,
        alice,
        email_offers,
        shown_version=email_offers.current_version,
        change=Change(CollectionMethod.PORTAL, "en", utcnow()),
    )
    aurore = brand_by_slug(session, "aurore-automobiles")
    assert aurore is not None
    interests.set_interests(session, alice, aurore, {"electric-vehicles"})
    interests.state_intent(
        session,
        alice,
        interests.IntentInput(
            "replace-vehicle", "A smaller car", 6, 1000, 20000, frozenset({"aurore-automobiles"})
        ),
        utcnow().date(),
    )
    hour = timedelta(hours=1)
    reset = accounts.request_password_reset(session, "alice@example.com", ttl=hour)
    assert reset is not None
    verify = email_tokens.issue_email_token(session, bob, TokenPurpose.VERIFY_EMAIL, hour)
    new_email = email_tokens.issue_email_token(
        session, alice, TokenPurpose.CHANGE_EMAIL, hour, email="alice.new@example.com"
    )
    link_secret = _pending_link_secret(session, alice)
    created = clients.create_client(
        session, aurore, clients.parse_scopes(ALL_SCOPES), utcnow(), "CRM"
    )
    consumer_id = pairwise_id_for(session, alice.id, aurore)
    session.commit()
    consumer = [
        f"/consents/confirm/{pending.confirmation_token}",
        f"/account/email/confirm/{new_email.secret}",
        f"/attention-emails/off/{reminders.off_token(app.config['SECRET_KEY'], alice)}",
    ]
    if link_secret:
        consumer.append(f"/auth/oauth/link/email/{link_secret}")
    visitor = [f"/password/reset/{reset.secret}", f"/verify-email/{verify.secret}"]
    pages = {"consumer": consumer, "visitor": visitor}
    return pages, consumer_id, (created.client.client_id, created.secret), alice.email


@pytest.fixture(scope="module")
def world(app: Flask, engine: Engine, smtp: Any) -> Iterator[World]:
    connection = engine.connect()
    transaction = connection.begin()
    db.bind_to_connection(app, connection)
    try:
        with app.app_context():
            limiter.reset()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        pages, consumer_id, (client_id, secret), _email = _seed(app, session)
        session.close()
        # Alice on a second device, so that the Sessions page offers to sign it out.
        _sign_in(app.test_client(), "alice@example.com")
        api = app.test_client()
        token = api.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic(client_id, secret),
        ).json["access_token"]
        public = [r.rule for r in GET_ROUTES if not r.arguments]
        personas = {
            "consumer": Persona(
                "consumer",
                app.test_client(),
                "/account/",
                ("alice@example.com", PASSWORD),
                public + pages["consumer"],
            ),
            "visitor": Persona("visitor", app.test_client(), "/", None, public + pages["visitor"]),
            "staff": Persona(
                "staff",
                app.test_client(),
                "/login/two-factor/setup",
                ("dpo@example.com", PASSWORD),
                ["/login/two-factor/setup"],
            ),
        }
        world = World(app, connection, personas, token, (client_id, secret), consumer_id)
        for persona in personas.values():
            persona.fresh()
            crawl(world, persona)
        yield world
    finally:
        transaction.rollback()
        connection.close()


@pytest.fixture(autouse=True)
def isolated(world: World, mailbox: Any) -> Iterator[None]:
    """Each test in a savepoint of the world's transaction: what it did is undone after it
    (a persona that lost its sign-in gets it back when it next sends something)."""
    db.bind_to_connection(world.app, world.connection)
    with world.app.app_context():
        limiter.reset()
    savepoint = world.connection.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()
        for persona in world.personas.values():
            persona.token = None


#: Links the crawl notes but does not follow: they start a sign-in at a provider (each
#: start keeps its state in the session, as a second tab would).
_NOT_FOLLOWED = {"social.start", "social.link"}


def crawl(world: World, persona: Persona, limit: int = 200) -> None:
    """Visit ``persona``'s pages breadth first, noting its forms and links."""
    adapter = world.app.url_map.bind(HOST)
    queue = list(dict.fromkeys(persona.seeds))
    seen: set[str] = set(queue)
    while queue and len(seen) <= limit:
        page = queue.pop(0)
        response = persona.browser.get(page)
        targets: list[str] = []
        if response.status_code in (301, 302, 303, 307, 308):
            targets.append(response.headers.get("Location", ""))
        elif response.mimetype == "text/html":
            parsed = parse_page(response.get_data(as_text=True))
            for form in parsed.forms:
                action = local_path(page, form.action or page)
                if action is None:
                    continue
                form.action = action
                if form.method == "post":
                    endpoint = _endpoint(adapter, urlsplit(action).path, "POST")
                    if endpoint and endpoint not in world.forms:
                        world.forms[endpoint] = (persona.name, form)
                else:
                    world.query_keys.update(form.fields)
                    targets.append(action)
            targets.extend(parsed.links)
        for href in targets:
            path = local_path(page, href)
            if path is None or path.startswith(("/static/", "/api/")):
                continue
            world.query_keys.update(k for k, _ in parse_qsl(urlsplit(path).query))
            endpoint = _endpoint(adapter, urlsplit(path).path, "GET")
            if endpoint:
                known = world.addresses.setdefault(endpoint, [])
                if path not in known:
                    known.append(path)
            if path not in seen and endpoint not in _NOT_FOLLOWED:
                seen.add(path)
                queue.append(path)


def _endpoint(adapter: Any, path: str, method: str) -> str | None:
    try:
        endpoint, _args = adapter.match(path, method=method)
    except (RequestRedirect, HTTPException):
        return None
    return str(endpoint)


def served(response: Any, address: str) -> bool:
    """Below 500; or the designed 502/504 page of the provider that is down, on purpose."""
    return response.status_code < 500 or (
        response.status_code in (502, 504) and f"/{DOWN_PROVIDER}/" in address
    )


def _problem(response: Any, what: str) -> str:
    return f"{response.status_code} for {what}: {response.get_data(as_text=True)[:300]!r}"


# ---- Forms ---------------------------------------------------------------------------


def _field_strategy(values: list[str]) -> st.SearchStrategy[Any]:
    known = [v for v in values if v]
    own = st.sampled_from(known) if known else st.just("")
    return st.one_of(own, VALUE, st.just(OMIT), st.lists(VALUE, min_size=2, max_size=3))


@pytest.mark.parametrize("rule", POST_ROUTES, ids=lambda rule: rule.endpoint)
def test_no_form_field_gives_a_500(world: World, rule: Rule) -> None:
    if rule.endpoint not in world.forms:
        assert rule.endpoint not in MUST_FIND_FORM, f"the crawl found no form for {rule.rule}"
        _post_blind(world, rule)
        return
    name, form = world.forms[rule.endpoint]
    persona = world.personas[name]
    fields = {k: _field_strategy(v) for k, v in form.fields.items() if k != "csrf_token"}
    # Mostly the form's own address; a quarter of the time generated path parameters.
    addresses = st.one_of(*[st.just(form.action)] * 3, path_strategy(rule))

    @_settings()
    @given(values=st.fixed_dictionaries(fields), address=addresses)
    def post(values: dict[str, Any], address: str) -> None:
        sent = {k: v for k, v in values.items() if v is not OMIT}
        response = persona.send(
            lambda token: persona.browser.post(
                address,
                data=form_body({"csrf_token": token, **sent}),
                content_type="application/x-www-form-urlencoded",
            )
        )
        assert served(response, address), _problem(response, f"POST {address} {sent!r}")

    post()


def _post_blind(world: World, rule: Rule) -> None:
    persona = world.personas["consumer"]
    fields = st.dictionaries(_NAME, VALUE, max_size=5)
    json_body = st.one_of(JSON_VALUE, st.dictionaries(_NAME, JSON_VALUE, max_size=5))

    @_settings()
    @given(address=path_strategy(rule), values=fields, as_json=st.booleans(), document=json_body)
    def post(address: str, values: dict[str, Any], as_json: bool, document: Any) -> None:
        def send(token: str) -> Any:
            if as_json:
                return persona.browser.post(
                    address,
                    data=json.dumps(document),
                    content_type="application/json",
                    headers={"X-CSRFToken": token},
                )
            return persona.browser.post(
                address,
                data=form_body({"csrf_token": token, **values}),
                content_type="application/x-www-form-urlencoded",
                headers={"X-CSRFToken": token},
            )

        response = persona.send(send)
        assert served(response, address), _problem(response, f"POST {address} (blind)")

    post()


def test_the_crawl_finds_the_forms_it_must(world: World) -> None:
    missing = MUST_FIND_FORM - world.forms.keys()
    assert not missing, sorted(missing)


# ---- Query strings -------------------------------------------------------------------

KNOWN_KEYS = {
    "page",
    "cursor",
    "brand",
    "type",
    "next",
    "limit",
    "after",
    "state",
    "code",
    "error",
    "token",
    "locale",
    "format",
    "purpose",
    "q",
    "id",
    "iss",
}


@pytest.mark.parametrize("rule", GET_ROUTES, ids=lambda rule: rule.endpoint)
def test_no_query_parameter_gives_a_500(world: World, rule: Rule) -> None:
    seen = [rule.rule] if not rule.arguments else world.addresses.get(rule.endpoint, [])
    paths = st.one_of(st.sampled_from(seen), path_strategy(rule)) if seen else path_strategy(rule)
    keys = st.one_of(st.sampled_from(sorted(KNOWN_KEYS | world.query_keys)), _NAME)
    personas = ["consumer", "visitor"] + (
        ["staff"] if rule.rule in world.personas["staff"].seeds else []
    )

    @_settings()
    @given(
        who=st.sampled_from(personas), path=paths, params=st.dictionaries(keys, VALUE, max_size=4)
    )
    def get(who: str, path: str, params: dict[str, Any]) -> None:
        persona = world.personas[who]
        address = urlsplit(path).path
        query = query_string({**dict(parse_qsl(urlsplit(path).query)), **params})
        response = persona.send(lambda _token: persona.browser.get(f"{address}?{query}"))
        assert served(response, address), _problem(response, f"GET {address}?{query[:200]}")

    get()


# ---- The brand API -------------------------------------------------------------------

_VALID = {
    "type": "purchase",
    "occurred_at": "2026-11-20T10:30:00+01:00",
    "summary": "Bought winter tyres",
    "reference": "INV-1",
    "channel": "store",
    "amount": {"value": "480.00", "currency": "EUR"},
    "details": {"store": "Lyon Est", "items": 4},
}


def _mutated_body() -> st.SearchStrategy[Any]:
    fields = {
        key: st.one_of(st.just(value), JSON_VALUE, st.just(OMIT)) for key, value in _VALID.items()
    }
    fields["details"] = st.one_of(
        st.just(_VALID["details"]),
        st.dictionaries(st.one_of(_TEXT, st.sampled_from(_NASTY)), JSON_VALUE, max_size=6),
    )
    return st.fixed_dictionaries(fields).map(
        lambda body: {k: v for k, v in body.items() if v is not OMIT}
    )


def _serialised(document: Any, ascii_only: bool) -> bytes:
    return json.dumps(document, allow_nan=True, ensure_ascii=ascii_only).encode(
        "utf-8", "surrogatepass"
    )


def _problem_document(response: Any) -> bool:
    return response.status_code < 400 or response.mimetype == "application/problem+json"


@pytest.fixture
def api(world: World) -> Iterator[FlaskClient]:
    saved = world.app.extensions["vrm_api_limits"]
    world.app.extensions["vrm_api_limits"] = []
    try:
        yield world.app.test_client()
    finally:
        world.app.extensions["vrm_api_limits"] = saved


def test_no_interaction_body_gives_a_500(world: World, api: FlaskClient) -> None:
    bodies = st.one_of(
        _mutated_body().map(lambda b: ("json", b)),
        JSON_VALUE.map(lambda b: ("json", b)),
        st.binary(max_size=200).map(lambda b: ("raw", b)),
        st.sampled_from(["[" * 5000, '{"a":' * 3000, "NaN", "1e400", "[1e400]"]).map(
            lambda t: ("raw", t.encode())
        ),
    )
    consumer = st.one_of(
        st.just(world.consumer_id), path_strategy(Rule("/<consumer_id>")).map(lambda p: p[1:])
    )
    key = st.one_of(st.none(), st.text(st.characters(codec="latin-1"), max_size=300))
    media_types = st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain", "application/x"]
    )

    @_settings(EXAMPLES * 2)
    @given(
        body=bodies,
        ascii_only=st.booleans(),
        who=consumer,
        idempotency_key=key,
        media_type=media_types,
    )
    def post(
        body: tuple[str, Any],
        ascii_only: bool,
        who: str,
        idempotency_key: str | None,
        media_type: str,
    ) -> None:
        kind, document = body
        data = _serialised(document, ascii_only) if kind == "json" else document
        headers = {"Authorization": f"Bearer {world.api_token}", "Content-Type": media_type}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        response = api.post(f"/api/v1/consumers/{who}/interactions", data=data, headers=headers)
        assert response.status_code < 500, _problem(response, f"body {data[:300]!r}")
        assert _problem_document(response), _problem(response, "not a problem document")

    post()


@pytest.mark.parametrize(
    ("path", "names", "examples"),
    [
        ("/api/v1/consumers", ["limit", "cursor"], EXAMPLES),
        ("/api/v1/changes", ["limit", "after"], EXAMPLES),
        ("/api/v1/consumers/{consumer}", [], EXAMPLES),
        ("/api/v1/openapi.json", [], 5),
        ("/api/v1/docs", [], 5),
    ],
)
def test_no_api_query_parameter_gives_a_500(
    world: World, api: FlaskClient, path: str, names: list[str], examples: int
) -> None:
    keys = st.one_of(st.sampled_from(names or ["limit"]), _NAME)
    consumer = st.one_of(
        st.just(world.consumer_id), path_strategy(Rule("/<consumer_id>")).map(lambda p: p[1:])
    )

    @_settings(examples)
    @given(params=st.dictionaries(keys, VALUE, max_size=3), who=consumer)
    def get(params: dict[str, Any], who: str) -> None:
        address = path.replace("{consumer}", who)
        response = api.get(
            f"{address}?{query_string(params)}",
            headers={"Authorization": f"Bearer {world.api_token}"},
        )
        assert response.status_code < 500, _problem(response, f"GET {address} {params!r}")
        assert _problem_document(response) or path.endswith("docs"), _problem(response, "type")

    get()


def test_no_token_request_gives_a_500(world: World, api: FlaskClient) -> None:
    client_id, secret = world.api_client
    credentials = st.one_of(
        st.just(f"{client_id}:{secret}".encode()),
        st.builds(lambda a, b: _encode(a) + b":" + _encode(b), VALUE, VALUE),
        st.binary(max_size=80),
    )
    authorization = st.one_of(
        credentials.map(lambda c: "Basic " + base64.b64encode(c).decode()),
        st.text(st.characters(codec="latin-1"), max_size=200),
        st.none(),
    )
    fields = st.fixed_dictionaries(
        {
            "grant_type": st.one_of(st.just("client_credentials"), VALUE, st.just(OMIT)),
            "scope": st.one_of(st.sampled_from(ALL_SCOPES.split()), VALUE, st.just(OMIT)),
        },
        optional={"client_id": VALUE, "client_secret": VALUE},
    )

    @_settings()
    @given(auth=authorization, values=fields)
    def post(auth: str | None, values: dict[str, Any]) -> None:
        sent = {k: v for k, v in values.items() if v is not OMIT}
        headers = {"Authorization": auth} if auth is not None else {}
        with world.app.app_context():
            limiter.reset()
        response = api.post(
            "/oauth/token",
            data=form_body(sent),
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )
        assert response.status_code < 500, _problem(response, f"token {auth!r} {sent!r}")

    post()


# ---- What the generated input found, pinned ------------------------------------------


@pytest.mark.parametrize("document", ["1", "[1, 2]", '{"reason": {"a": [1]}}', "null", "[" * 3000])
def test_a_json_body_sent_to_a_page_is_refused_not_a_crash(world: World, document: str) -> None:
    persona = world.personas["consumer"]
    for address in ("/account/delete/cancel", "/account/profile", "/locale"):
        response = persona.send(
            lambda token, address=address: persona.browser.post(
                address,
                data=document,
                content_type="application/json",
                headers={"X-CSRFToken": token},
            )
        )
        assert response.status_code == 415, _problem(response, f"{address} {document[:20]}")


_INT = re.compile(r"<int(?:\([^>]*\))?:\w+>")


@pytest.mark.parametrize(
    "rule", [r for r in ROUTES if _INT.search(r.rule)], ids=lambda rule: rule.endpoint
)
def test_an_id_beyond_64_bits_in_an_address_is_not_found(world: World, rule: Rule) -> None:
    address = _PARAM.sub("x", _INT.sub(str(2**63), rule.rule))
    persona = world.personas["consumer"]
    method = "GET" if "GET" in rule.methods else "POST"
    response = persona.send(
        lambda token: persona.browser.open(address, method=method, data={"csrf_token": token})
    )
    # 405 when werkzeug tried a same-path rule of another method first.
    assert response.status_code in (404, 405), _problem(response, f"{method} {address}")


_TEXT_PARAM = re.compile(r"<(?:(?:string|default)(?:\([^>]*\))?:)?\w+>")


@pytest.mark.parametrize(
    "rule",
    [r for r in ROUTES if _TEXT_PARAM.search(r.rule) and r.endpoint != "static"],
    ids=lambda rule: rule.endpoint,
)
def test_a_control_character_in_an_address_part_is_not_found(world: World, rule: Rule) -> None:
    persona = world.personas["consumer"]
    method = "GET" if "GET" in rule.methods else "POST"
    for character in ("%00", "%0A", "%1B"):
        address = _PARAM.sub("1", _TEXT_PARAM.sub(f"a{character}b", rule.rule))
        response = persona.send(
            lambda token, address=address: persona.browser.open(
                address, method=method, data={"csrf_token": token}
            )
        )
        assert response.status_code in (404, 405), _problem(response, f"{method} {address}")
