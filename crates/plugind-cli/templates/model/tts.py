import io
import wave
from collections.abc import Generator, Mapping
from typing import Optional

from dify_plugin import TTSModel
from dify_plugin.errors.model import InvokeBadRequestError, InvokeConnectionError, InvokeError


class {{class}}Text2SpeechModel(TTSModel):
    """Answers with a short silent WAV per request; replace with your speech service."""

    def _invoke(
        self,
        model: str,
        tenant_id: str,
        credentials: dict,
        content_text: str,
        voice: str,
        user: Optional[str] = None,
    ) -> Generator[bytes, None, None]:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(b"\x00\x00" * 800)
        yield buffer.getvalue()

    def validate_credentials(self, model: str, credentials: Mapping, user: Optional[str] = None) -> None:
        return None

    @property
    def _invoke_error_mapping(self) -> dict[type[InvokeError], list[type[Exception]]]:
        return {InvokeConnectionError: [ConnectionError], InvokeBadRequestError: [ValueError]}
