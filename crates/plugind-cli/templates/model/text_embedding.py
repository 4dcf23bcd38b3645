import hashlib
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Optional

from dify_plugin import TextEmbeddingModel
from dify_plugin.entities.model import EmbeddingInputType
from dify_plugin.entities.model.text_embedding import EmbeddingUsage, TextEmbeddingResult
from dify_plugin.errors.model import InvokeBadRequestError, InvokeConnectionError, InvokeError

DIMENSIONS = 8


class {{class}}TextEmbeddingModel(TextEmbeddingModel):
    """Deterministic toy embeddings (hash-based); replace with your model's API."""

    def _invoke(
        self,
        model: str,
        credentials: dict,
        texts: list[str],
        user: Optional[str] = None,
        input_type: EmbeddingInputType = EmbeddingInputType.DOCUMENT,
    ) -> TextEmbeddingResult:
        started = time.perf_counter()
        embeddings = []
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()
            embeddings.append([b / 255.0 for b in digest[:DIMENSIONS]])
        tokens = sum(len(t.split()) for t in texts)
        usage = EmbeddingUsage(
            tokens=tokens,
            total_tokens=tokens,
            unit_price=Decimal(0),
            price_unit=Decimal(0),
            total_price=Decimal(0),
            currency="USD",
            latency=time.perf_counter() - started,
        )
        return TextEmbeddingResult(model=model, embeddings=embeddings, usage=usage)

    def get_num_tokens(self, model: str, credentials: dict, texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    def validate_credentials(self, model: str, credentials: Mapping) -> None:
        return None

    @property
    def _invoke_error_mapping(self) -> dict[type[InvokeError], list[type[Exception]]]:
        return {InvokeConnectionError: [ConnectionError], InvokeBadRequestError: [ValueError]}
