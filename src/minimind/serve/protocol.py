"""The OpenAI chat-completions wire format: requests as validated models, errors and responses as JSON.

A request field this server cannot honour (n > 1, logprobs, tools, a non-zero presence penalty)
is refused with a 400 that names it, rather than ignored; an unknown field is refused too
(a typo such as `temprature` would otherwise silently change nothing). `top_k`,
`repetition_penalty` and `chat_template_kwargs` are accepted as vLLM's server accepts them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from minimind.errors import ToolError


class RequestError(ToolError):
    """A request that cannot be served, answered as OpenAI answers it: a status and a JSON `error` object."""

    def __init__(self, message: str, status: int = 400, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error"):
        super().__init__(message)
        self.message, self.status, self.param, self.code, self.type = message, status, param, code, type

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def validation_error(error: ValidationError | Any) -> RequestError:
    """The problem pydantic (or FastAPI's body parsing) found, as one sentence naming the field. Of the
    alternatives of a union (`content`: a string or a list of parts), the one that got furthest is told."""
    first = max(error.errors(), key=lambda e: len(e.get("loc", ())))  # the first of the deepest
    # drop "body" (FastAPI's) and the union member tags ("str", "list[TextPart]") from the field's path
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "str") and "[" not in str(part)]
    param = ".".join(loc) or None
    kind = first.get("type", "")
    if kind == "json_invalid":
        return RequestError(f"the request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})",
                            code="invalid_json")
    if kind == "extra_forbidden":
        return RequestError(f"unrecognized request argument: {param}", param=param)
    if kind == "missing":
        return RequestError(f"{param or 'the request body'} is required", param=param)
    if kind in ("model_type", "model_attributes_type", "dict_type") and not loc:
        return RequestError("the request body must be a JSON object (with `messages`)")
    message = str(first.get("msg")).removeprefix("Value error, ")
    return RequestError(f"{param}: {message}" if param else message, param=param)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "yes" is not a boolean, "5" not a number


def unicode_text(text: str) -> str:
    """JSON may escape a lone UTF-16 surrogate (\\udcff), which is no character: no tokenizer takes it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text (it holds a lone surrogate)") from None
    return text


class TextPart(_Strict):
    type: Literal["text"]
    text: str

    @field_validator("text")
    @classmethod
    def _unicode(cls, value: str) -> str:
        return unicode_text(value)


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant"]  # developer: OpenAI's newer name for system
    content: str | list[TextPart]
    name: str | None = None  # accepted, as OpenAI does; the chat template has no place for it
    reasoning_content: str | None = None  # an earlier reply's reasoning, for templates that render it

    @field_validator("content", "reasoning_content")
    @classmethod
    def _unicode(cls, value: Any) -> Any:
        return unicode_text(value) if isinstance(value, str) else value

    def as_template_message(self) -> dict[str, str]:
        content = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        message = {"role": "system" if self.role == "developer" else self.role, "content": content}
        if self.reasoning_content is not None:
            message["reasoning_content"] = self.reasoning_content
        return message


class StreamOptions(_Strict):
    include_usage: bool = False


class ResponseFormat(_Strict):
    type: Literal["text"]  # JSON modes would need constrained decoding


class ChatRequest(_Strict):
    """POST /v1/chat/completions. None means: the server's default (serve.yaml)."""

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)  # OpenAI's newer name for max_tokens
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)  # 0: no top-k filter
    repetition_penalty: float | None = Field(default=None, gt=0)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    n: int = Field(default=1, ge=1)
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logprobs: bool = False
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None  # an end-user id for the caller's own records: accepted, not used

    def refuse_what_cannot_be_honoured(self) -> None:
        refusals = [
            (self.n != 1, "n", f"n={self.n}: this server returns one choice per request (n=1)"),
            (self.frequency_penalty != 0, "frequency_penalty",
             "frequency_penalty is not supported: use repetition_penalty (> 1 discourages repeats)"),
            (self.presence_penalty != 0, "presence_penalty",
             "presence_penalty is not supported: use repetition_penalty (> 1 discourages repeats)"),
            (self.logprobs or self.top_logprobs is not None, "logprobs", "logprobs are not supported"),
            (bool(self.logit_bias), "logit_bias", "logit_bias is not supported"),
            (bool(self.tools), "tools", "tools are not supported: this server does not call functions"),
            (self.tool_choice not in (None, "none"), "tool_choice", "tool_choice is not supported (no tools)"),
            (self.max_tokens is not None and self.max_completion_tokens is not None
             and self.max_tokens != self.max_completion_tokens, "max_completion_tokens",
             f"max_tokens={self.max_tokens} and max_completion_tokens={self.max_completion_tokens} disagree: "
             "send one of them"),
        ]
        for refused, param, message in refusals:
            if refused:
                raise RequestError(message, param=param)

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def stop_strings(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4:
            raise RequestError(f"stop holds {len(stops)} strings: at most 4", param="stop")
        if any(s == "" for s in stops):
            raise RequestError("stop strings must not be empty", param="stop")
        return stops


# --- responses -----------------------------------------------------------------------------------

def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion(id: str, model: str, content: str, reasoning: str | None, finish_reason: str,
               prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return {"id": id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": usage(prompt_tokens, completion_tokens)}


def chunk(id: str, model: str, delta: dict[str, str] | None = None, finish_reason: str | None = None,
          usage_counts: dict[str, int] | None = None) -> dict[str, Any]:
    """One `chat.completion.chunk`; with `usage_counts` (stream_options.include_usage) it has no choices."""
    body: dict[str, Any] = {"id": id, "object": "chat.completion.chunk", "created": int(time.time()),
                            "model": model}
    if usage_counts is not None:
        body["choices"], body["usage"] = [], usage_counts
    else:
        body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason, "logprobs": None}]
    return body
