from collections.abc import Generator
from typing import Any

from dify_plugin.entities.agent import AgentInvokeMessage
from dify_plugin.interfaces.agent import AgentStrategy


class {{class}}AgentStrategy(AgentStrategy):
    """A starting point: reports the query back. A real strategy would call
    `self.session.model.llm.invoke(...)` and the selected tools in a loop."""

    def _invoke(self, parameters: dict[str, Any]) -> Generator[AgentInvokeMessage, None, None]:
        query = str(parameters.get("query", ""))
        yield self.create_text_message(f"{{name}} received: {query}")
