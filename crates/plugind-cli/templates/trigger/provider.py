from werkzeug import Request, Response

from dify_plugin.entities.trigger import EventDispatch, Subscription
from dify_plugin.errors.trigger import TriggerDispatchError
from dify_plugin.interfaces.trigger import Trigger


class {{class}}Trigger(Trigger):
    """Receives webhook calls and names the events they carry."""

    def _dispatch_event(self, subscription: Subscription, request: Request) -> EventDispatch:
        secret = subscription.properties.get("webhook_secret")
        if secret and request.headers.get("X-Webhook-Secret") != secret:
            raise TriggerDispatchError("webhook secret mismatch")
        response = Response('{"status": "ok"}', status=200, mimetype="application/json")
        return EventDispatch(events=["{{module}}_event"], response=response)
