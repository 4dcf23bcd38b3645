from collections.abc import Generator
from typing import Any

from dify_plugin import Tool
from dify_plugin.entities.tool import ToolInvokeMessage


class {{class}}Tool(Tool):
    """An echo tool: answers with the `text` parameter, as text and as JSON."""

    def _invoke(self, tool_parameters: dict[str, Any]) -> Generator[ToolInvokeMessage, None, None]:
        text = str(tool_parameters.get("text", ""))
        yield self.create_text_message(text)
        yield self.create_json_message({"text": text})
