from collections.abc import Mapping
from typing import Any

from werkzeug import Request

from dify_plugin.entities.trigger import Variables
from dify_plugin.interfaces.trigger import Event


class {{class}}Event(Event):
    """Turns a webhook call into workflow variables."""

    def _on_event(self, request: Request, parameters: Mapping[str, Any], payload: Mapping[str, Any]) -> Variables:
        body = request.get_json(silent=True) or {}
        return Variables(variables={"payload": body})
