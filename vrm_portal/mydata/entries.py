"""The entries of one timeline page, as the consumer reads them.

``timeline`` finds which entries a page holds, as ``(source, id)`` keys in the merged
order; this module reads what each entry says, with one query per source present on the
page, and labels it for display: consents (a grant that follows a grant is a renewal),
sign-ins and other account events, interests and plans, the interactions brands recorded,
and data requests. It also names what the timeline is made of (sources, entry types) so
that the query side filters by the same vocabulary.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased

from vrm_portal.accounts.messages import event_label
from vrm_portal.accounts.models import Account, AccountEvent, EventKind
from vrm_portal.brands.models import Brand
from vrm_portal.consent import ledger
from vrm_portal.consent.models import Action, ConsentEvent, ConsentReceipt
from vrm_portal.consent.queries import purpose_titles
from vrm_portal.history.display import interaction_view
from vrm_portal.history.models import Interaction
from vrm_portal.interests.forms import category_label
from vrm_portal.interests.models import Intent, IntentBrand, Topic
from vrm_portal.requests.models import DataRequest, RequestKind, RequestStatus
from vrm_portal.time_zones import zone_label


class EntryType(enum.StrEnum):
    """What the consumer filters the timeline by (the ``type`` query parameter)."""

    CONSENTS = "consents"
    INTERESTS = "interests"
    INTERACTIONS = "interactions"
    ACCOUNT = "account"
    REQUESTS = "requests"


TYPE_LABELS = {
    EntryType.CONSENTS: _l("Consents"),
    EntryType.INTERESTS: _l("Interests and plans"),
    EntryType.INTERACTIONS: _l("Brand interactions"),
    EntryType.ACCOUNT: _l("Sign-ins and account"),
    EntryType.REQUESTS: _l("Data requests"),
}


class Source(enum.StrEnum):
    """Where an entry comes from; one letter, also the tie-breaker of the merged order."""

    ACCOUNT = "a"
    CONSENT = "c"
    INTERACTION = "i"
    REQUEST = "r"


#: Account events about interests and plans, not about the account itself.
INTEREST_KINDS = (
    EventKind.INTERESTS_CHANGED.value,
    EventKind.INTENT_STATED.value,
    EventKind.INTENT_WITHDRAWN.value,
)

_CONSENT_LABELS = {
    "granted": _l("Consent given"),
    "renewed": _l("Consent renewed"),
    Action.WITHDRAWN.value: _l("Consent withdrawn"),
    Action.EXPIRED.value: _l("Consent expired"),
}
_METHOD_LABELS = {
    "portal": _l("On this portal"),
    "email-confirmation": _l("Confirmed by email"),
    "gpc-signal": _l("By your browser's Global Privacy Control signal"),
    "expiry": _l("End of validity"),
    "import": _l("Imported"),
    "api": _l("Through the brand"),
    "staff": _l("By our privacy office"),
    "purpose-retired": _l("The brand stopped asking for this consent"),
}


@dataclass(frozen=True)
class BrandRef:
    slug: str
    name: str


@dataclass(frozen=True)
class Link:
    """A link the template builds with ``url_for(endpoint, **values)``."""

    endpoint: str
    values: tuple[tuple[str, str], ...]
    label: str
    #: A file to save (a receipt), not a page.
    download: bool = False

    @property
    def arguments(self) -> dict[str, str]:
        return dict(self.values)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    type: EntryType
    type_label: str
    #: What happened, e.g. "Consent renewed".
    label: str
    #: What it was about, e.g. the purpose's title or the interaction's summary.
    text: str
    notes: tuple[str, ...]
    brands: tuple[BrandRef, ...]
    link: Link | None
    #: Machine name of what happened (``consent-renewed``, ``signed_in``…), for tests and CSS.
    marker: str
    source: Source
    id: int


class EntryKey(Protocol):
    """Which entry: its source and its id within that source."""

    @property
    def source(self) -> Source: ...

    @property
    def id(self) -> int: ...


def read_entries(
    session: Session,
    account: Account,
    keys: Sequence[EntryKey],
    *,
    locale: str,
    brands: Sequence[Brand],
) -> list[TimelineEntry]:
    """The entries ``keys`` name, in the order of ``keys``, labelled for display.

    Only the account's own entries are read: a key naming someone else's is left out.
    ``brands`` is the catalogue the entries name brands from.
    """
    return _Details(session, account, locale, brands).entries(keys)


class _Details:
    """Reads what the page's entries say, one query per source present on the page."""

    def __init__(
        self, session: Session, account: Account, locale: str, brands: Sequence[Brand]
    ) -> None:
        self.session = session
        self.account = account
        self.locale = locale
        self.by_slug = {b.slug: BrandRef(b.slug, b.name) for b in brands}
        self.by_id = {b.id: BrandRef(b.slug, b.name) for b in brands}

    def entries(self, keys: Sequence[EntryKey]) -> list[TimelineEntry]:
        ids: dict[Source, list[int]] = defaultdict(list)
        for key in keys:
            ids[key.source].append(key.id)
        found: dict[tuple[Source, int], TimelineEntry] = {}
        if ids[Source.CONSENT]:
            found.update(((Source.CONSENT, e.id), e) for e in self._consents(ids[Source.CONSENT]))
        if ids[Source.ACCOUNT]:
            found.update(((Source.ACCOUNT, e.id), e) for e in self._account(ids[Source.ACCOUNT]))
        if ids[Source.INTERACTION]:
            found.update(
                ((Source.INTERACTION, e.id), e) for e in self._interactions(ids[Source.INTERACTION])
            )
        if ids[Source.REQUEST]:
            found.update(((Source.REQUEST, e.id), e) for e in self._requests(ids[Source.REQUEST]))
        return [found[(k.source, k.id)] for k in keys if (k.source, k.id) in found]

    def _brand(self, slug: str) -> BrandRef:
        return self.by_slug.get(slug) or BrandRef(slug, slug)

    def _consents(self, seqs: list[int]) -> Iterable[TimelineEntry]:
        previous = aliased(ConsentEvent)
        previous_action = (
            select(previous.action)
            .where(
                previous.subject_key == ConsentEvent.subject_key,
                previous.brand_slug == ConsentEvent.brand_slug,
                previous.purpose_key == ConsentEvent.purpose_key,
                previous.seq < ConsentEvent.seq,
            )
            .order_by(previous.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        rows = self.session.execute(
            select(ConsentEvent, ConsentReceipt.receipt_id, previous_action)
            .outerjoin(
                ConsentReceipt,
                and_(
                    ConsentReceipt.event_seq == ConsentEvent.seq,
                    ConsentReceipt.account_id == self.account.id,
                ),
            )
            .where(ConsentEvent.seq.in_(seqs), ConsentEvent.subject_key == self.account.subject_key)
        ).all()
        titles = purpose_titles(self.session, self.locale)
        for event, receipt_id, before in rows:
            doc: dict[str, Any] = ledger.document_of(event)
            action = doc["action"]
            renewed = action == Action.GRANTED.value and before == Action.GRANTED.value
            what = "renewed" if renewed else action
            title = titles.get(
                (doc["brand"], doc["purpose"], doc["purpose_version"]), doc["purpose"]
            )
            notes = [str(_METHOD_LABELS.get(doc["method"], doc["method"]))]
            if action == Action.GRANTED.value and doc.get("expires_at"):
                until = ledger.parse_timestamp(doc["expires_at"])
                notes.append(_("Valid until %(date)s", date=format_date(until, "long")))
            link = None
            if receipt_id:
                link = Link(
                    "consent.receipt",
                    (("receipt_id", receipt_id),),
                    _("Download the receipt"),
                    download=True,
                )
            yield TimelineEntry(
                at=event.occurred_at,
                type=EntryType.CONSENTS,
                type_label=str(TYPE_LABELS[EntryType.CONSENTS]),
                label=str(_CONSENT_LABELS.get(what, what)),
                text=_("%(title)s (version %(n)s)", title=title, n=doc["purpose_version"]),
                notes=tuple(notes),
                brands=(self._brand(doc["brand"]),),
                link=link,
                marker=f"consent-{what}",
                source=Source.CONSENT,
                id=event.seq,
            )

    def _account(self, ids: list[int]) -> Iterable[TimelineEntry]:
        events = list(
            self.session.scalars(
                select(AccountEvent).where(
                    AccountEvent.id.in_(ids), AccountEvent.account_id == self.account.id
                )
            )
        )
        details = [e.detail if isinstance(e.detail, dict) else {} for e in events]
        intent_ids = {d["intent"] for d in details if isinstance(d.get("intent"), int)}
        topic_brands = {d["brand"] for d in details if isinstance(d.get("brand"), str)}
        intents = self._intents(intent_ids)
        topics = self._topics(topic_brands)
        for event, detail in zip(events, details, strict=True):
            if event.kind in INTEREST_KINDS:
                yield self._interest_entry(event, detail, intents, topics)
            else:
                yield self._account_entry(event, detail)

    def _intents(self, ids: set[int]) -> dict[int, tuple[Intent, list[BrandRef]]]:
        if not ids:
            return {}
        found: dict[int, tuple[Intent, list[BrandRef]]] = {}
        rows = self.session.execute(
            select(Intent, IntentBrand.brand_id)
            .outerjoin(IntentBrand, IntentBrand.intent_id == Intent.id)
            .where(Intent.id.in_(sorted(ids)), Intent.account_id == self.account.id)
        )
        for intent, brand_id in rows:
            _intent, refs = found.setdefault(intent.id, (intent, []))
            if brand_id in self.by_id:
                refs.append(self.by_id[brand_id])
        return found

    def _topics(self, slugs: set[str]) -> dict[tuple[str, str], str]:
        if not slugs:
            return {}
        rows = self.session.execute(
            select(Brand.slug, Topic.key, Topic.label_en, Topic.label_fr)
            .join(Brand, Brand.id == Topic.brand_id)
            .where(Brand.slug.in_(sorted(slugs)))
        )
        return {
            (slug, key): label_fr if self.locale == "fr" else label_en
            for slug, key, label_en, label_fr in rows
        }

    def _interest_entry(
        self,
        event: AccountEvent,
        detail: Mapping[str, Any],
        intents: Mapping[int, tuple[Intent, list[BrandRef]]],
        topics: Mapping[tuple[str, str], str],
    ) -> TimelineEntry:
        notes: list[str] = []
        brands: tuple[BrandRef, ...] = ()
        text = ""
        if event.kind == EventKind.INTERESTS_CHANGED.value:
            slug = str(detail.get("brand", ""))
            brands = (self._brand(slug),) if slug else ()

            def named(keys: Any) -> str:
                keys = keys if isinstance(keys, list) else []
                return ", ".join(topics.get((slug, str(k)), str(k)) for k in keys)

            if detail.get("added"):
                notes.append(_("Added: %(topics)s", topics=named(detail["added"])))
            if detail.get("removed"):
                notes.append(_("Removed: %(topics)s", topics=named(detail["removed"])))
        else:
            found = intents.get(detail.get("intent", -1))
            if found is not None:
                intent, refs = found
                brands = tuple(sorted(refs, key=lambda ref: ref.name))
                text = intent.summary or category_label(intent.category)
                if intent.summary:
                    notes.append(category_label(intent.category))
                if event.kind == EventKind.INTENT_STATED.value:
                    notes.append(_("Shown until %(date)s", date=_long_date(intent.ends_on)))
            elif isinstance(detail.get("category"), str):
                text = category_label(detail["category"])
            if not brands and isinstance(detail.get("brands"), list):
                brands = tuple(self._brand(str(s)) for s in detail["brands"])
        return TimelineEntry(
            at=event.created_at,
            type=EntryType.INTERESTS,
            type_label=str(TYPE_LABELS[EntryType.INTERESTS]),
            label=event_label(event.kind),
            text=text,
            notes=tuple(notes),
            brands=brands,
            link=Link("interests.intents", (), _("My plans"))
            if event.kind != EventKind.INTERESTS_CHANGED.value
            else Link("interests.interests", (), _("My interests")),
            marker=event.kind,
            source=Source.ACCOUNT,
            id=event.id,
        )

    def _account_entry(self, event: AccountEvent, detail: Mapping[str, Any]) -> TimelineEntry:
        notes: list[str] = []
        provider = detail.get("provider")
        if isinstance(provider, str) and provider:
            notes.append(_("With %(provider)s", provider=_provider_name(provider)))
        zone = detail.get("time_zone")
        if isinstance(zone, str) and zone:
            if detail.get("source") == "browser":
                notes.append(_("%(zone)s, as your browser reported it", zone=zone_label(zone)))
            else:
                notes.append(zone_label(zone))
        if event.ip_address:
            notes.append(_("IP address: %(ip)s", ip=event.ip_address))
        return TimelineEntry(
            at=event.created_at,
            type=EntryType.ACCOUNT,
            type_label=str(TYPE_LABELS[EntryType.ACCOUNT]),
            label=event_label(event.kind),
            text="",
            notes=tuple(notes),
            brands=(),
            link=None,
            marker=event.kind,
            source=Source.ACCOUNT,
            id=event.id,
        )

    def _interactions(self, ids: list[int]) -> Iterable[TimelineEntry]:
        for interaction in self.session.scalars(
            select(Interaction).where(
                Interaction.id.in_(ids), Interaction.account_id == self.account.id
            )
        ):
            view = interaction_view(interaction)
            notes = [n for n in (view.amount,) if n]
            if view.reference:
                notes.append(_("Reference: %(reference)s", reference=view.reference))
            brand = self.by_id.get(interaction.brand_id)
            yield TimelineEntry(
                at=interaction.occurred_at,
                type=EntryType.INTERACTIONS,
                type_label=str(TYPE_LABELS[EntryType.INTERACTIONS]),
                label=view.type_label,
                text=view.summary,
                notes=tuple(notes),
                brands=(brand,) if brand else (),
                link=Link(
                    "consent.brand",
                    (("brand_slug", brand.slug),),
                    _("What %(brand)s holds", brand=brand.name),
                )
                if brand
                else None,
                marker=f"interaction-{interaction.type}",
                source=Source.INTERACTION,
                id=interaction.id,
            )

    def _requests(self, ids: list[int]) -> Iterable[TimelineEntry]:
        for request in self.session.scalars(
            select(DataRequest).where(
                DataRequest.id.in_(ids), DataRequest.account_id == self.account.id
            )
        ):
            notes: list[str] = []
            if request.kind == RequestKind.EXPORT.value:
                label = _("Data downloaded")
                if request.format is None:
                    text = _("Proof bundle of my consents")
                else:
                    text = _("Format: %(format)s", format=request.format.upper())
            else:
                label = _("Account deletion requested")
                text = _erasure_status(request)
            notes.append(_("Reference: %(reference)s", reference=request.reference))
            yield TimelineEntry(
                at=request.requested_at,
                type=EntryType.REQUESTS,
                type_label=str(TYPE_LABELS[EntryType.REQUESTS]),
                label=label,
                text=text,
                notes=tuple(notes),
                brands=(),
                link=None,
                marker=f"request-{request.kind}-{request.status}",
                source=Source.REQUEST,
                id=request.id,
            )


def _erasure_status(request: DataRequest) -> str:
    if request.status == RequestStatus.SCHEDULED.value and request.due_at:
        return str(
            _(
                "Scheduled for %(date)s; until then you can keep your account.",
                date=_long_date(request.due_at),
            )
        )
    if request.status == RequestStatus.CANCELLED.value and request.cancelled_at:
        return str(_("Cancelled on %(date)s.", date=_long_date(request.cancelled_at)))
    if request.status == RequestStatus.COMPLETED.value and request.completed_at:
        return str(_("Completed on %(date)s.", date=_long_date(request.completed_at)))
    return request.status


def _long_date(day: date | datetime) -> str:
    return str(format_date(day, "long"))


def _provider_name(provider: str) -> str:
    known = {"github": "GitHub", "oidc": "OpenID Connect"}
    return known.get(provider, provider.replace("-", " ").title())
