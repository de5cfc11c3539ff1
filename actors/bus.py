"""The event bus: delivers published events to subscribers' callbacks, off the matching path.

Account and symbol actors `tell` it events and go on; the bus calls each matching callback in
its own thread. A callback that raises is logged and breaks nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from actors.base import BrokerActor, handles
from actors.messages import AddSubscription, Flush, Publish, RemoveSubscription, Subscription
from engine.events import (
    AlertTriggered,
    MarginCall,
    OrderAccepted,
    OrderCancelled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    PriceChanged,
)

_EVENT_CLASSES = (
    OrderAccepted,
    OrderRejected,
    OrderFilled,
    OrderCancelled,
    OrderReplaced,
    PriceChanged,
    AlertTriggered,
    MarginCall,
)


class Interest:
    """Which event classes have a subscriber now. Written only by the bus; read by the actors
    that publish, so that an event nobody wants is never built or sent."""

    def __init__(self) -> None:
        self.wanted: frozenset[type] = frozenset()

    def update(self, subscriptions: Iterable[Subscription]) -> None:
        """Recompute from the live subscriptions (one atomic assignment)."""
        wanted: set[type] = set()
        for subscription in subscriptions:
            kinds = subscription.kinds or (object,)
            wanted.update(c for c in _EVENT_CLASSES if issubclass(c, kinds))
        self.wanted = frozenset(wanted)


class EventBusActor(BrokerActor):
    """Holds the subscriptions and calls their callbacks, one event at a time, in order."""

    side_work = True  # callbacks may block: keep them off the trading workers
    supervised = True  # a stop request outside close restarts it from its state

    def __init__(self, log: Any, interest: Interest) -> None:
        super().__init__(log, actor="bus")
        self.interest = interest
        self.subscriptions: dict[int, Subscription] = {}
        self.delivered = 0

    @handles(Publish)
    def _publish(self, message: Publish) -> None:
        for subscription in list(self.subscriptions.values()):
            if not subscription.wants(message.event):
                continue
            try:
                subscription.callback(message.event)
                self.delivered += 1
            except Exception as error:  # a subscriber's bug must not reach the engine
                self.log.warning(
                    "subscriber.failed",
                    subscription_id=subscription.subscription_id,
                    event_type=type(message.event).__name__,
                    error=repr(error),
                )

    @handles(AddSubscription)
    def _add(self, message: AddSubscription) -> None:
        self.subscriptions[message.subscription.subscription_id] = message.subscription
        self.interest.update(self.subscriptions.values())
        message.reply.set(message.subscription.subscription_id)

    @handles(RemoveSubscription)
    def _remove(self, message: RemoveSubscription) -> None:
        removed = self.subscriptions.pop(message.subscription_id, None) is not None
        self.interest.update(self.subscriptions.values())
        message.reply.set(removed)

    @handles(Flush)
    def _flush(self, message: Flush) -> None:
        message.reply.set(self.delivered)
