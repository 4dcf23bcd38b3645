import time
from collections.abc import Generator, Mapping
from typing import Optional, Union

from dify_plugin import LargeLanguageModel
from dify_plugin.entities.model.llm import LLMResult, LLMResultChunk, LLMResultChunkDelta, LLMUsage
from dify_plugin.entities.model.message import AssistantPromptMessage, PromptMessage, PromptMessageTool
from dify_plugin.errors.model import (
    CredentialsValidateFailedError,
    InvokeBadRequestError,
    InvokeConnectionError,
    InvokeError,
)

# The canned answer; replace `_invoke` with a call to your model's API.
ANSWER = "Hello from {{name}}! This answer is canned: connect a real model in models/llm/llm.py."


class {{class}}LargeLanguageModel(LargeLanguageModel):
    """A chat model that streams a fixed answer word by word."""

    def _invoke(
        self,
        model: str,
        credentials: dict,
        prompt_messages: list[PromptMessage],
        model_parameters: dict,
        tools: Optional[list[PromptMessageTool]] = None,
        stop: Optional[list[str]] = None,
        stream: bool = True,
        user: Optional[str] = None,
    ) -> Union[LLMResult, Generator[LLMResultChunk, None, None]]:
        if stream:
            return self._stream(model)
        return LLMResult(
            model=model,
            message=AssistantPromptMessage(content=ANSWER),
            usage=LLMUsage.empty_usage(),
        )

    def _stream(self, model: str) -> Generator[LLMResultChunk, None, None]:
        words = ANSWER.split(" ")
        for index, word in enumerate(words):
            last = index == len(words) - 1
            yield LLMResultChunk(
                model=model,
                delta=LLMResultChunkDelta(
                    index=index,
                    message=AssistantPromptMessage(content=word if last else word + " "),
                    usage=LLMUsage.empty_usage() if last else None,
                    finish_reason="stop" if last else None,
                ),
            )
            time.sleep(0.01)

    def get_num_tokens(
        self,
        model: str,
        credentials: dict,
        prompt_messages: list[PromptMessage],
        tools: Optional[list[PromptMessageTool]] = None,
    ) -> int:
        # A rough estimate (one token per word) that needs no tokenizer download.
        return sum(len(str(m.content or "").split()) for m in prompt_messages)

    def validate_credentials(self, model: str, credentials: Mapping) -> None:
        # Any key is accepted in this example.
        if not isinstance(credentials.get("api_key", ""), str):
            raise CredentialsValidateFailedError("api_key must be a string")

    @property
    def _invoke_error_mapping(self) -> dict[type[InvokeError], list[type[Exception]]]:
        return {
            InvokeConnectionError: [ConnectionError, TimeoutError],
            InvokeBadRequestError: [ValueError, KeyError],
        }
