"""The HTTP side: OpenAI's routes, its error format for every failure, the API key, the chat page.

    GET  /                     the chat page (static/index.html)
    GET  /health               {"status": "ok", "waiting": N}
    GET  /v1/models            the one model served, with its context length and thinking switch
    POST /v1/chat/completions  plain JSON, or `stream: true` as server-sent events ending in `data: [DONE]`
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from minimind.serve.engine import Engine, Failed, Finished, Job
from minimind.serve.prompt import ChatPrompts
from minimind.serve.protocol import (ChatRequest, RequestError, chunk, completion, completion_id, error_body, usage,
                                     validation_error)
from minimind.serve.reply import Delta

DISCONNECT_POLL_S = 0.5  # how often a non-streamed request checks that its client is still there


def create_app(engine: Engine, prompts: ChatPrompts, api_key: str | None = None) -> FastAPI:
    """The server for one model; the engine's worker runs while the app does."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        yield
        engine.stop()

    # No /docs: FastAPI's docs page loads its scripts from a CDN; /openapi.json describes the API.
    app = FastAPI(title="MiniMind", lifespan=lifespan, docs_url=None, redoc_url=None)
    _error_handlers(app)

    def authorized(request: Request) -> None:
        if not api_key:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise RequestError("this server needs an API key: send `Authorization: Bearer <key>`", status=401,
                               code="invalid_api_key")
        if not hmac.compare_digest(given.strip().encode(), api_key.encode()):
            raise RequestError("incorrect API key provided", status=401, code="invalid_api_key")

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((files("minimind.serve") / "static" / "index.html").read_text(encoding="utf-8"))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "waiting": engine.waiting}

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [prompts.model_card()]}

    @app.get("/v1/models/{model}", dependencies=[Depends(authorized)])
    def model(model: str) -> dict[str, Any]:
        if model != prompts.model_name:
            raise RequestError(f"the model `{model}` does not exist: this server serves `{prompts.model_name}`",
                               status=404, param="model", code="model_not_found")
        return prompts.model_card()

    @app.post("/v1/chat/completions", dependencies=[Depends(authorized)])
    async def chat_completions(body: ChatRequest, request: Request) -> Any:
        job = engine.submit(prompts.job(body))
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return StreamingResponse(_stream(job, prompts.model_name, include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        return await _complete(job, prompts.model_name, request)

    return app


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def _delta(delta: Delta) -> dict[str, str]:
    out = {}
    if delta.reasoning:
        out["reasoning_content"] = delta.reasoning
    if delta.content:
        out["content"] = delta.content
    return out


async def _stream(job: Job, model: str, include_usage: bool) -> AsyncIterator[str]:
    """OpenAI's chunks: the role first, each new piece of text, the finish reason, usage if asked, [DONE].
    A client that disconnects cancels this generator, and with it the job."""
    id = completion_id()
    try:
        yield _sse(chunk(id, model, {"role": "assistant", "content": ""}))
        async for event in job.events():
            if isinstance(event, Delta):
                yield _sse(chunk(id, model, _delta(event)))
            elif isinstance(event, Failed):
                yield _sse(error_body(event.message, "server_error"))
                return
            else:
                yield _sse(chunk(id, model, finish_reason=event.finish_reason))
                if include_usage:
                    yield _sse(chunk(id, model, usage_counts=usage(event.prompt_tokens, event.completion_tokens)))
        yield "data: [DONE]\n\n"
    finally:
        job.cancel()


async def _complete(job: Job, model: str, request: Request) -> Any:
    """Wait for the whole reply; give the job up if the client disconnects while it waits."""
    while True:
        try:
            event = await asyncio.wait_for(job.next_event(), DISCONNECT_POLL_S)
        except asyncio.TimeoutError:
            if await request.is_disconnected():
                job.cancel()
                return JSONResponse(error_body("the client disconnected"), status_code=499)
            continue
        if isinstance(event, Failed):
            return JSONResponse(error_body(event.message, "server_error"), status_code=500)
        if isinstance(event, Finished):
            return completion(completion_id(), model, event.content, event.reasoning, event.finish_reason,
                              event.prompt_tokens, event.completion_tokens)


def _error_handlers(app: FastAPI) -> None:
    """Every failure answers with OpenAI's `{"error": {"message", "type", "param", "code"}}`."""

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        refused = validation_error(error)
        return JSONResponse(refused.body(), status_code=refused.status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = str(error.detail)
        if error.status_code == 404:
            message = f"no route {request.method} {request.url.path}: the API is under /v1 (see /openapi.json)"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return JSONResponse(error_body(message), status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(error_body(f"internal error: {type(error).__name__}: {error}", "server_error"),
                            status_code=500)
