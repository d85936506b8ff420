"""Which channels an alert goes to and whom it names: the ``[alerts]`` routes, as plain values.

The first route that matches an alert (its crawl object, marketplace, check and level) gives
its channels (Airflow connection ids), owner and @mentions, unless it says ``continue``, when
the next matching routes add theirs; an alert no route matches goes to ``default_channels``.
Nothing here reads or writes anything: ``crawlops.delivery`` queues what this returns.
"""

from __future__ import annotations

import dataclasses
import json

from crawlops.settings import AlertSettings, Route


@dataclasses.dataclass(frozen=True)
class Mentions:
    """Whom a message @mentions: DingTalk mobiles and user ids (other channels print them)."""

    mobiles: tuple[str, ...] = ()
    user_ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.mobiles or self.user_ids)

    def __or__(self, other: Mentions) -> Mentions:
        return Mentions(_union(self.mobiles, other.mobiles), _union(self.user_ids, other.user_ids))

    def handles(self) -> list[str]:
        """``@13800000000``, ``@user``: what the message text names."""
        return [f"@{who}" for who in (*self.mobiles, *self.user_ids)]

    def to_json(self) -> str:
        return json.dumps({"mobiles": list(self.mobiles), "user_ids": list(self.user_ids)})

    @classmethod
    def from_json(cls, text: str | None) -> Mentions:
        data = json.loads(text) if text else {}
        return cls(tuple(data.get("mobiles", ())), tuple(data.get("user_ids", ())))

    @classmethod
    def of(cls, route: Route) -> Mentions:
        return cls(route.at_mobiles, route.at_user_ids)


NO_MENTIONS = Mentions()


def _union(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*a, *b)))


@dataclasses.dataclass(frozen=True)
class Routed:
    """Where one alert goes: channel -> mentions there, and the owner (the first route's)."""

    owner: str
    targets: dict[str, Mentions]


def route(
    settings: AlertSettings, *, crawl_object: str | None, marketplace: str | None, check: str, level: str
) -> Routed:
    """The channels, mentions and owner of an alert (see the module docstring)."""
    targets: dict[str, Mentions] = {}
    owner, matched = "", False
    for candidate in settings.routes:
        if not candidate.matches(crawl_object=crawl_object, marketplace=marketplace, check=check, level=level):
            continue
        matched = True
        owner = owner or candidate.owner
        for channel in candidate.channels or settings.default_channels:
            targets[channel] = targets.get(channel, Mentions()) | Mentions.of(candidate)
        if not candidate.continue_matching:
            break
    if not matched:
        targets = dict.fromkeys(settings.default_channels, Mentions())
    return Routed(owner, targets)


def escalation(settings: AlertSettings, channels: tuple[str, ...]) -> dict[str, Mentions]:
    """Where an escalation goes: ``[alerts.escalation]``'s channels, or else the alert's own
    (``channels``, else the default ones), with the escalation's mentions."""
    target = settings.escalation
    mentions = Mentions.of(target)
    return dict.fromkeys(target.channels or channels or settings.default_channels, mentions)
