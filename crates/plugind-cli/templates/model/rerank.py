from collections.abc import Mapping
from typing import Optional

from dify_plugin import RerankModel
from dify_plugin.entities.model.rerank import RerankDocument, RerankResult
from dify_plugin.errors.model import InvokeBadRequestError, InvokeConnectionError, InvokeError


class {{class}}RerankModel(RerankModel):
    """Scores documents by the share of query words they contain; replace with your model."""

    def _invoke(
        self,
        model: str,
        credentials: dict,
        query: str,
        docs: list[str],
        score_threshold: Optional[float] = None,
        top_n: Optional[int] = None,
        user: Optional[str] = None,
    ) -> RerankResult:
        words = set(query.lower().split())
        scored = []
        for index, text in enumerate(docs):
            hits = len(words & set(text.lower().split()))
            score = hits / len(words) if words else 0.0
            if score_threshold is None or score >= score_threshold:
                scored.append(RerankDocument(index=index, text=text, score=score))
        scored.sort(key=lambda d: d.score, reverse=True)
        if top_n is not None:
            scored = scored[:top_n]
        return RerankResult(model=model, docs=scored)

    def validate_credentials(self, model: str, credentials: Mapping) -> None:
        return None

    @property
    def _invoke_error_mapping(self) -> dict[type[InvokeError], list[type[Exception]]]:
        return {InvokeConnectionError: [ConnectionError], InvokeBadRequestError: [ValueError]}
