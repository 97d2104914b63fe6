"""From a chat request to a job: the chat template (and its thinking switch), the context, the sampling.

Thinking: upstream minimind-3's template takes `open_thinking`, MiniMind2's and Qwen3's take
`enable_thinking`; this project's ChatML template takes neither. A request turns thinking on
or off with `chat_template_kwargs: {"enable_thinking": bool}` (either name is accepted and given
to the template under the name it reads). Asking a template without a switch to think is
refused; asking it not to is what it does anyway. `/v1/models` says which switch a model has.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.meta

from minimind.errors import ToolError
from minimind.generate import Sampling, render_chat
from minimind.serve.engine import Job
from minimind.serve.protocol import ChatRequest, RequestError
from minimind.serve.reply import THINK_OPEN

THINKING_SWITCHES = ("enable_thinking", "open_thinking")


def template_variables(tokenizer: Any) -> frozenset[str]:
    """The variables the tokenizer's chat template reads (besides what every template gets)."""
    template = tokenizer.chat_template
    if not isinstance(template, str):
        return frozenset()
    try:
        ast = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(template)
    except jinja2.TemplateSyntaxError:
        return frozenset()
    return frozenset(jinja2.meta.find_undeclared_variables(ast))


@dataclass(frozen=True)
class Defaults:
    """What a request gets for what it does not say (serve.yaml), and the most it may ask for."""

    max_tokens: int = 256
    temperature: float = 0.85
    top_p: float = 0.85
    top_k: int = 50
    repetition_penalty: float = 1.0
    max_tokens_limit: int | None = None  # None: the model's context

    def __post_init__(self) -> None:
        whole = lambda v, low: isinstance(v, int) and not isinstance(v, bool) and v >= low  # noqa: E731
        number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
        checks = [("max_tokens", whole(self.max_tokens, 1), "a whole number >= 1"),
                  ("temperature", number(self.temperature) and 0 <= self.temperature <= 2, "between 0 and 2"),
                  ("top_p", number(self.top_p) and 0 < self.top_p <= 1, "in (0, 1]"),
                  ("top_k", whole(self.top_k, 0), "a whole number >= 0 (0: no top-k filter)"),
                  ("repetition_penalty", number(self.repetition_penalty) and self.repetition_penalty > 0, "> 0"),
                  ("max_tokens_limit", self.max_tokens_limit is None or whole(self.max_tokens_limit, 1),
                   "null (the model's context) or a whole number >= 1")]
        for name, ok, rule in checks:
            if not ok:
                raise ToolError(f"{name}={getattr(self, name)!r} must be {rule}")


class ChatPrompts:
    """Turns requests for one model and tokenizer into jobs, refusing what cannot be served."""

    def __init__(self, tokenizer: Any, context: int, model_name: str, defaults: Defaults = Defaults()):
        self.tokenizer, self.context, self.model_name, self.defaults = tokenizer, context, model_name, defaults
        self.variables = template_variables(tokenizer)
        self.thinking_switch = next((v for v in THINKING_SWITCHES if v in self.variables), None)
        self.max_tokens_limit = min(defaults.max_tokens_limit or context, context)
        self.created = int(time.time())

    def job(self, request: ChatRequest) -> Job:
        request.refuse_what_cannot_be_honoured()
        if request.model is not None and request.model != self.model_name:
            raise RequestError(f"the model `{request.model}` does not exist: this server serves `{self.model_name}`",
                               status=404, param="model", code="model_not_found")
        stops = request.stop_strings
        try:
            ids = render_chat(self.tokenizer, [m.as_template_message() for m in request.messages],
                              **self.template_kwargs(request.chat_template_kwargs))
        except jinja2.TemplateError as error:  # e.g. a template that raises "roles must alternate"
            raise RequestError(f"the model's chat template refused the messages: {error}", param="messages") from None
        max_tokens = self.max_tokens(request, len(ids))
        d = self.defaults
        pick = lambda value, default: default if value is None else value  # noqa: E731
        sampling = Sampling(max_new_tokens=max_tokens, temperature=pick(request.temperature, d.temperature),
                            top_k=pick(request.top_k, d.top_k), top_p=pick(request.top_p, d.top_p),
                            repetition_penalty=pick(request.repetition_penalty, d.repetition_penalty),
                            seed=request.seed)
        opened = self.tokenizer.decode(ids[-32:]).rstrip().endswith(THINK_OPEN)  # 32: "<think>\n" as bytes, at worst
        return Job(ids, sampling, stops, thinking=self.thinking_switch is not None, opened=opened)

    def template_kwargs(self, requested: dict[str, Any] | None) -> dict[str, Any]:
        kwargs = dict(requested or {})
        asked = {name: kwargs.pop(name) for name in THINKING_SWITCHES if name in kwargs}
        if len(set(map(repr, asked.values()))) > 1:
            raise RequestError(f"chat_template_kwargs {asked} disagree: send one of them",
                               param="chat_template_kwargs")
        unknown = sorted(set(kwargs) - self.variables)
        if unknown:
            raise RequestError(f"chat_template_kwargs.{unknown[0]}: this model's chat template has no such "
                               f"variable (it reads: {', '.join(sorted(self.variables)) or 'none'})",
                               param="chat_template_kwargs")
        if asked:
            thinking = next(iter(asked.values()))
            if not isinstance(thinking, bool):
                raise RequestError(f"chat_template_kwargs.{next(iter(asked))} must be true or false",
                                   param="chat_template_kwargs")
            if self.thinking_switch is not None:
                kwargs[self.thinking_switch] = thinking
            elif thinking:
                raise RequestError("this model's chat template cannot think (it reads neither enable_thinking nor "
                                   "open_thinking): drop chat_template_kwargs.enable_thinking",
                                   param="chat_template_kwargs")
        return kwargs

    def max_tokens(self, request: ChatRequest, prompt_tokens: int) -> int:
        """The request's max_tokens, checked against the limit and what the context has left; else the default."""
        asked = request.requested_max_tokens
        param = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
        room = self.context - prompt_tokens
        if room < 1:
            raise RequestError(f"this model's maximum context length is {self.context} tokens, and the messages "
                               f"take {prompt_tokens}: shorten them (or start a new conversation)",
                               param="messages", code="context_length_exceeded")
        if asked is None:
            return min(self.defaults.max_tokens, self.max_tokens_limit, room)
        if asked > self.max_tokens_limit:
            raise RequestError(f"{param}={asked} is more than this server allows ({self.max_tokens_limit})",
                               param=param)
        if asked > room:
            raise RequestError(f"this model's maximum context length is {self.context} tokens, but "
                               f"{prompt_tokens + asked} were requested ({prompt_tokens} in the messages, {asked} "
                               f"for the completion): lower {param} to at most {room} or shorten the messages",
                               param=param, code="context_length_exceeded")
        return asked

    def model_card(self) -> dict[str, Any]:
        """The entry of /v1/models: OpenAI's fields, plus what a client may want to know before asking."""
        return {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "minimind",
                "context_length": self.context, "max_tokens_limit": self.max_tokens_limit,
                "default_max_tokens": self.defaults.max_tokens, "thinking": self.thinking_switch is not None,
                "thinking_switch": self.thinking_switch}
