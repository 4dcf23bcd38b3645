import json
from collections.abc import Mapping

from werkzeug import Request, Response

from dify_plugin import Endpoint


class {{class}}Endpoint(Endpoint):
    """GET /{{module}}/hello?name=x answers {"message": "<greeting>, x"}."""

    def _invoke(self, r: Request, values: Mapping, settings: Mapping) -> Response:
        greeting = settings.get("greeting") or "Hello"
        name = r.args.get("name", "world")
        body = json.dumps({"message": f"{greeting}, {name}"})
        return Response(body, status=200, content_type="application/json")
