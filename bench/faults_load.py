"""The mixed load of bench/faults.py: consumers signing in and giving and withdrawing
consents through the real forms (CSRF tokens scraped from the pages, cookies kept by
hand since production cookies are ``Secure`` and this client talks plain http),
confirming email consents from the link in the email, downloading their export; brands
following ``/changes`` and reading ``/consumers``; a probe on ``/readyz``.

Every request is recorded (kind, start, answer or transport error) and every consent
change the consumer saw recorded (the 303, then the brand page's flash) is remembered,
in order, per consumer, brand and purpose: the end checks compare that with the ledger.
"""

from __future__ import annotations

import html
import json
import random
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import requests

from bench.faults_services import Mail, SmtpSink

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FLASH = re.compile(r'<div class="flash flash--(\w+)"[^>]*>\s*<p>.*?</span>\s*(.*?)\s*</p>', re.S)
CONFIRM_LINK = re.compile(r"(https?://\S+/consents/confirm/\S+)")
#: Purposes whose grant is recorded at once (the email ones wait for the link).
DIRECT_PURPOSES = ("sms-offers", "personalised-offers", "postal-offers", "analytics")
EMAIL_PURPOSE = "email-offers"
TIMEOUT = (5, 40)


@dataclass
class Request:
    kind: str
    started: float
    ended: float
    #: HTTP status, or 0 for a transport error (``error`` says which).
    status: int
    error: str = ""
    retry_after: str | None = None
    content_type: str = ""
    traceback: bool = False
    snippet: str = ""


@dataclass
class Attempt:
    """A consent change that got no clear answer: the page, read later, says what stood."""

    key: tuple[str, str, str]
    target: str
    request: Request


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        #: (email, brand, purpose) -> actions the consumer saw recorded, in order.
        self.seen: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        #: Changes whose request errored and that the page later showed as recorded.
        self.recorded_after_error: list[tuple[Attempt, str]] = []
        #: Changes whose request errored and that the page later showed as not recorded.
        self.clean_after_error = 0
        #: Unresolved (the run ended before the page could be read again).
        self.unresolved: list[Attempt] = []
        #: A 303 whose page said something else than the change (or said nothing).
        self.flash_mismatch: list[str] = []
        #: email -> "Almost done" confirmations asked (each must bring one email).
        self.confirmations_asked: dict[str, int] = defaultdict(int)
        #: Asked with an unclear answer: may or may not have sent an email.
        self.confirmations_unclear = 0
        self.confirmed_links: set[str] = set()
        self.exports_ok = 0
        self.exports_bad: list[str] = []
        #: brand -> feed seqs in the order the reader got them, and the problems it saw.
        self.feed_seen: dict[str, list[int]] = defaultdict(list)
        self.feed_problems: list[str] = []
        self.feed_cursor: dict[str, int] = {}
        #: API reads answered 200 with items (each must leave one access record), with
        #: when they ended: kind (consumers, changes) -> [end time].
        self.api_reads: dict[str, list[float]] = defaultdict(list)

    def add(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)

    def saw(self, key: tuple[str, str, str], action: str) -> None:
        with self.lock:
            self.seen[key].append(action)


class Browser:
    """One consumer's browser: its own cookies, plain http, a real form each time."""

    def __init__(self, base: str, recorder: Recorder) -> None:
        self.base = base
        self.recorder = recorder
        self.http = requests.Session()
        self.jar: dict[str, str] = {}

    def _merge(self, response: requests.Response) -> None:
        for cookie in response.cookies:
            if cookie.value == "" or (cookie.expires is not None and cookie.expires < time.time()):
                self.jar.pop(cookie.name, None)
            else:
                self.jar[cookie.name] = cookie.value or ""

    def call(
        self, kind: str, method: str, path: str, data: dict[str, str] | None = None
    ) -> tuple[Request, requests.Response | None]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())}
        if method == "POST":
            headers["Origin"] = self.base
            headers["Referer"] = self.base + path
        started = time.time()
        try:
            response = self.http.request(
                method,
                self.base + path,
                data=data,
                headers=headers,
                allow_redirects=False,
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            record = Request(kind, started, time.time(), 0, error=_transport_error(exc))
            self.recorder.add(record)
            return record, None
        record = _record(kind, started, response)
        self.recorder.add(record)
        self._merge(response)
        return record, response


def _transport_error(exc: BaseException) -> str:
    text = repr(exc)
    if "Read timed out" in text or isinstance(exc, requests.Timeout):
        return "timeout"
    if "Connection refused" in text:
        return "refused"
    return "dropped"


def _record(kind: str, started: float, response: requests.Response) -> Request:
    content_type = response.headers.get("Content-Type", "")
    body = response.text if response.status_code >= 500 else ""
    return Request(
        kind,
        started,
        time.time(),
        response.status_code,
        retry_after=response.headers.get("Retry-After"),
        content_type=content_type.split(";")[0],
        traceback="Traceback" in body or 'File "' in body,
        snippet=re.sub(r"\s+", " ", body)[:200] if body else "",
    )


@dataclass
class Card:
    standing: str  # the choice the page offers: grant, withdraw, or pending
    csrf: str
    version: str


def parse_cards(page: str) -> dict[str, Card]:
    cards = {}
    for match in re.finditer(
        r'<section class="card card--wide purpose" id="purpose-([\w-]+)"', page
    ):
        key = match.group(1)
        end = page.find("</section>", match.end())
        card = page[match.end() : end]
        choices = re.findall(r'name="choice" value="(\w+)"', card)
        csrf = CSRF.search(card)
        version = re.search(r'name="version" value="(\d+)"', card)
        if not choices or not csrf or not version:
            continue
        standing = "pending" if len(choices) == 2 else choices[0]
        cards[key] = Card(standing, html.unescape(csrf.group(1)), version.group(1))
    return cards


def flashes(page: str) -> list[tuple[str, str]]:
    return [
        (kind, html.unescape(re.sub(r"<[^>]+>", "", text))) for kind, text in FLASH.findall(page)
    ]


@dataclass
class Consumer:
    email: str
    browser: Browser
    signed_in: bool = False
    #: (brand, purpose) -> "grant" when the page offers to give it, "withdraw" when given.
    offers: dict[tuple[str, str], str] = field(default_factory=dict)
    unsure: list[Attempt] = field(default_factory=list)


class ConsumerLoad(threading.Thread):
    def __init__(
        self,
        name: str,
        base: str,
        emails: list[str],
        password: str,
        brands: list[str],
        recorder: Recorder,
        sink: SmtpSink,
        stop: threading.Event,
        seed: int,
        think: float,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.consumers = [Consumer(email, Browser(base, recorder)) for email in emails]
        self.password = password
        self.brands = brands
        self.recorder = recorder
        self.sink = sink
        self.stop = stop
        self.rng = random.Random(seed)
        self.think = think

    def run(self) -> None:
        index = 0
        while not self.stop.is_set():
            consumer = self.consumers[index % len(self.consumers)]
            index += 1
            try:
                self.step(consumer)
            except Exception as exc:  # a harness bug must not end the load silently
                self.recorder.feed_problems.append(f"consumer thread error: {exc!r}")
            self.stop.wait(self.rng.uniform(0.3, 1.7) * self.think)

    def pause(self) -> None:
        self.stop.wait(self.rng.uniform(0.5, 1.5))

    # ---- one step of one consumer ----------------------------------------------------

    def step(self, consumer: Consumer) -> None:
        if not consumer.signed_in and not self.sign_in(consumer):
            return
        if consumer.unsure:
            self.resolve(consumer)
            return
        roll = self.rng.random()
        if roll < 0.03:
            self.export(consumer)
            return
        brand = self.rng.choice(self.brands)
        cards = self.brand_page(consumer, brand)
        if cards is None:
            return
        email_card = cards.get(EMAIL_PURPOSE)
        if roll < 0.2 and email_card is not None:
            self.email_consent(consumer, brand, email_card)
            return
        purpose = self.rng.choice([p for p in DIRECT_PURPOSES if p in cards])
        self.change(consumer, brand, purpose, cards[purpose])

    def sign_in(self, consumer: Consumer) -> bool:
        browser = consumer.browser
        browser.jar.clear()
        _, response = browser.call("page", "GET", "/login")
        if response is None or response.status_code != 200:
            return False
        csrf = CSRF.search(response.text)
        if not csrf:
            return False
        form = {
            "csrf_token": html.unescape(csrf.group(1)),
            "email": consumer.email,
            "password": self.password,
            "next": "",
        }
        _, response = browser.call("sign-in", "POST", "/login", form)
        if response is not None and response.status_code in (302, 303):
            consumer.signed_in = True
            return True
        return False

    def brand_page(self, consumer: Consumer, brand: str) -> dict[str, Card] | None:
        _, response = consumer.browser.call("page", "GET", f"/consents/{brand}")
        if response is None or response.status_code != 200:
            if response is not None and response.status_code in (302, 303):
                consumer.signed_in = False  # session ended (e.g. signed out): sign in again
            return None
        cards = parse_cards(response.text)
        for purpose, card in cards.items():
            consumer.offers[(brand, purpose)] = card.standing
        return cards

    def change(self, consumer: Consumer, brand: str, purpose: str, card: Card) -> None:
        """Give or withdraw, as the page offers; then read the page it sends back to."""
        target = card.standing
        if target == "pending":
            return
        form = {"csrf_token": card.csrf, "choice": target, "version": card.version}
        record, response = consumer.browser.call(
            "consent", "POST", f"/consents/{brand}/{purpose}", form
        )
        key = (consumer.email, brand, purpose)
        action = "granted" if target == "grant" else "withdrawn"
        if response is not None and response.status_code == 303:
            self.recorder.saw(key, action)
            self.check_flash(consumer, brand, action)
            return
        consumer.unsure.append(Attempt(key, target, record))

    def check_flash(self, consumer: Consumer, brand: str, action: str) -> None:
        _, response = consumer.browser.call("page", "GET", f"/consents/{brand}")
        if response is None or response.status_code != 200:
            return  # the flash stays in the session cookie; the page is read again later
        said = " | ".join(text for _, text in flashes(response.text))
        expected = "Consent given" if action == "granted" else "Consent withdrawn"
        if expected not in said:
            self.recorder.flash_mismatch.append(f"{consumer.email} {brand} {action}: {said!r}")

    def resolve(self, consumer: Consumer) -> None:
        """After an unclear answer, read the page again to learn what was recorded."""
        attempt = consumer.unsure[0]
        _email, brand, purpose = attempt.key
        cards = self.brand_page(consumer, brand)
        if cards is None or purpose not in cards:
            return
        consumer.unsure.pop(0)
        now_offers = cards[purpose].standing
        # The change happened iff the page now offers the opposite of what was asked
        # (a grant still waiting for its email link was not recorded).
        if (attempt.target, now_offers) in (("grant", "withdraw"), ("withdraw", "grant")):
            action = "granted" if attempt.target == "grant" else "withdrawn"
            self.recorder.saw(attempt.key, action)
            with self.recorder.lock:
                self.recorder.recorded_after_error.append((attempt, now_offers))
        else:
            with self.recorder.lock:
                self.recorder.clean_after_error += 1

    # ---- email consents: ask, receive the email, confirm from its link --------------

    def email_consent(self, consumer: Consumer, brand: str, card: Card) -> None:
        key = (consumer.email, brand, EMAIL_PURPOSE)
        if card.standing == "withdraw":
            self.change(consumer, brand, EMAIL_PURPOSE, card)
            return
        if card.standing == "pending":
            link = self.latest_link(consumer.email, brand)
            if link is None:
                return  # the email is not here yet (the sink may be down): later
            self.confirm(consumer, key, link)
            return
        form = {"csrf_token": card.csrf, "choice": "grant", "version": card.version}
        _, response = consumer.browser.call(
            "consent", "POST", f"/consents/{brand}/{EMAIL_PURPOSE}", form
        )
        if response is None or response.status_code != 303:
            with self.recorder.lock:
                self.recorder.confirmations_unclear += 1
        if response is not None and response.status_code == 303:
            with self.recorder.lock:
                self.recorder.confirmations_asked[f"{consumer.email} {brand}"] += 1
            _, page = consumer.browser.call("page", "GET", f"/consents/{brand}")
            if page is not None and page.status_code == 200:
                said = " | ".join(text for _, text in flashes(page.text))
                if "Almost done" not in said:
                    self.recorder.flash_mismatch.append(
                        f"{consumer.email} {brand} email grant: {said!r}"
                    )
        # An unclear answer leaves the purpose pending or not: the next page shows which,
        # and a pending one is confirmed from whichever email arrives.

    def latest_link(self, email: str, brand: str) -> str | None:
        names = {
            "aurore-automobiles": "Aurore",
            "maison-berlingot": "Berlingot",
            "domaine-des-coteaux": "Coteaux",
        }
        mails: list[Mail] = [
            m
            for m in self.sink.snapshot()
            if email in m.to and names.get(brand, brand) in m.subject
        ]
        for mail in reversed(mails):
            found = CONFIRM_LINK.search(mail.body)
            if found:
                return found.group(1)
        return None

    def confirm(self, consumer: Consumer, key: tuple[str, str, str], link: str) -> None:
        path = "/" + link.split("/", 3)[3]
        if path in self.recorder.confirmed_links:
            return
        record, response = consumer.browser.call("page", "GET", path)
        if response is None or response.status_code != 200:
            return
        csrf = CSRF.search(response.text)
        if not csrf:
            return
        record, response = consumer.browser.call(
            "confirm", "POST", path, {"csrf_token": html.unescape(csrf.group(1))}
        )
        if response is not None and response.status_code == 303:
            self.recorder.confirmed_links.add(path)
            self.recorder.saw(key, "granted")
        elif response is not None and response.status_code in (404, 410):
            self.recorder.confirmed_links.add(path)  # superseded by a newer link
        else:
            consumer.unsure.append(Attempt(key, "grant", record))

    # ---- export ---------------------------------------------------------------------

    def export(self, consumer: Consumer) -> None:
        _, response = consumer.browser.call("page", "GET", "/my-data/export/")
        if response is None or response.status_code != 200:
            return
        csrf = CSRF.search(response.text)
        if not csrf:
            return
        form = {"csrf_token": html.unescape(csrf.group(1))}
        _, response = consumer.browser.call("export", "POST", "/my-data/export/json", form)
        if response is None:
            return
        if response.status_code == 200:
            try:
                json.loads(response.content)
                self.recorder.exports_ok += 1
            except ValueError:
                self.recorder.exports_bad.append(
                    f"{consumer.email}: 200 with an unreadable body ({len(response.content)} B)"
                )


class BrandReader(threading.Thread):
    """A brand's CRM: follows ``/changes`` from 0 and pages through ``/consumers``."""

    def __init__(
        self,
        base: str,
        brand: str,
        client_id: str,
        secret: str,
        recorder: Recorder,
        stop: threading.Event,
        interval: float,
    ) -> None:
        super().__init__(name=f"reader-{brand}", daemon=True)
        self.base = base
        self.brand = brand
        self.client = (client_id, secret)
        self.recorder = recorder
        self.stop = stop
        self.interval = interval
        self.http = requests.Session()
        self.token: str | None = None
        self.cursor = 0
        self.consumers_cursor: str | None = None
        self.rounds = 0

    def _call(self, kind: str, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        started = time.time()
        try:
            response = self.http.request(method, self.base + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            self.recorder.add(Request(kind, started, time.time(), 0, _transport_error(exc)))
            return None
        self.recorder.add(_record(kind, started, response))
        return response

    def get_token(self) -> bool:
        response = self._call(
            "api-token", "POST", "/oauth/token", data={"grant_type": "client_credentials"},
            auth=self.client,
        )  # fmt: skip
        if response is None or response.status_code != 200:
            return False
        self.token = response.json()["access_token"]
        return True

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(self.interval)

    def poll(self) -> bool:
        """One round; True when the feed had nothing new."""
        if self.token is None and not self.get_token():
            return False
        headers = {"Authorization": f"Bearer {self.token}"}
        response = self._call(
            "api-changes", "GET", f"/api/v1/changes?after={self.cursor}&limit=500", headers=headers
        )
        if response is None:
            return False
        if response.status_code == 401:
            self.token = None
            return False
        if response.status_code != 200:
            return False
        document = response.json()
        seqs = [item["seq"] for item in document["items"]]
        expected = list(range(self.cursor + 1, self.cursor + 1 + len(seqs)))
        if seqs != expected:
            self.recorder.feed_problems.append(
                f"{self.brand}: after={self.cursor} got {seqs[:5]}... expected {expected[:5]}..."
            )
        with self.recorder.lock:
            self.recorder.feed_seen[self.brand].extend(seqs)
            if seqs:
                self.recorder.api_reads["changes"].append(time.time())
        if document["next_cursor"] is not None:
            self.cursor = int(document["next_cursor"])
        self.recorder.feed_cursor[self.brand] = self.cursor
        self.rounds += 1
        if self.rounds % 4 == 0:
            path = "/api/v1/consumers?limit=100"
            if self.consumers_cursor:
                path += f"&cursor={self.consumers_cursor}"
            page = self._call("api-consumers", "GET", path, headers=headers)
            if page is not None and page.status_code == 200:
                document = page.json()
                self.consumers_cursor = document.get("next_cursor")
                if document.get("items"):
                    with self.recorder.lock:
                        self.recorder.api_reads["consumers"].append(time.time())
        return not seqs


class Probe(threading.Thread):
    """``/readyz`` every ``interval`` s: what it says, when."""

    def __init__(self, base: str, recorder: Recorder, stop: threading.Event, interval: float):
        super().__init__(name="probe", daemon=True)
        self.base = base
        self.recorder = recorder
        self.stop = stop
        self.interval = interval
        self.http = requests.Session()
        self.answers: list[tuple[float, int, dict[str, Any]]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.time()
            try:
                response = self.http.get(self.base + "/readyz", timeout=TIMEOUT)
                self.recorder.add(_record("readyz", started, response))
                try:
                    checks = response.json().get("checks", {})
                except ValueError:
                    checks = {}
                self.answers.append((started, response.status_code, checks))
            except requests.RequestException as exc:
                self.recorder.add(Request("readyz", started, time.time(), 0, _transport_error(exc)))
                self.answers.append((started, 0, {}))
            self.stop.wait(self.interval)
