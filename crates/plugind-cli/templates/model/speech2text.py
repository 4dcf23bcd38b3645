from collections.abc import Mapping
from typing import IO, Optional

from dify_plugin import Speech2TextModel
from dify_plugin.errors.model import InvokeBadRequestError, InvokeConnectionError, InvokeError


class {{class}}Speech2TextModel(Speech2TextModel):
    """Reports the size of the audio instead of transcribing it; replace with your service."""

    def _invoke(self, model: str, credentials: dict, file: IO[bytes], user: Optional[str] = None) -> str:
        size = len(file.read())
        return f"received {size} bytes of audio"

    def validate_credentials(self, model: str, credentials: Mapping) -> None:
        return None

    @property
    def _invoke_error_mapping(self) -> dict[type[InvokeError], list[type[Exception]]]:
        return {InvokeConnectionError: [ConnectionError], InvokeBadRequestError: [ValueError]}
