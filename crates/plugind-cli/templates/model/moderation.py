from collections.abc import Mapping
from typing import Optional

from dify_plugin import ModerationModel
from dify_plugin.errors.model import InvokeBadRequestError, InvokeConnectionError, InvokeError

# Words this example flags; replace with a call to your moderation service.
BLOCKED = {"forbidden"}


class {{class}}ModerationModel(ModerationModel):
    """Returns True (flagged) when the text contains a blocked word."""

    def _invoke(self, model: str, credentials: dict, text: str, user: Optional[str] = None) -> bool:
        return any(word in BLOCKED for word in text.lower().split())

    def validate_credentials(self, model: str, credentials: Mapping) -> None:
        return None

    @property
    def _invoke_error_mapping(self) -> dict[type[InvokeError], list[type[Exception]]]:
        return {InvokeConnectionError: [ConnectionError], InvokeBadRequestError: [ValueError]}
