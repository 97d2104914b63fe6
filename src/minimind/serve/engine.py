"""One model, one worker thread, a queue in front: every request is answered, one at a time.

Generation is compute bound and the model (its KV cache, the torch threads) serves one request
well at a time, so requests wait in a FIFO queue and a single thread generates them, while the
asyncio event loop goes on accepting connections and streaming. The worker hands each piece of
text to the request's asyncio queue (thread-safely); a request whose client has gone is skipped,
or stopped at its next token.

    engine = Engine(model, tokenizer)
    engine.start()
    job = engine.submit(Job(ids, sampling, stops=["\\n\\n"]))
    async for event in job.events(): ...   # Delta, then Finished (or Failed)
    engine.stop()
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from minimind.data.tokenizer import IM_END
from minimind.generate import Sampling, generate_ids
from minimind.serve.protocol import RequestError
from minimind.serve.reply import Delta, ReplyText, TokenStreamer

log = logging.getLogger("minimind.serve")


@dataclass
class Finished:
    finish_reason: str  # "stop" (end of turn or a stop string) | "length" (max_tokens reached)
    prompt_tokens: int
    completion_tokens: int
    reasoning: str | None  # the whole reply, split as it was streamed
    content: str


@dataclass
class Failed:
    message: str


class _Stop(Exception):
    """Raised from the streamer to end generation: a stop string was found, or the client left."""


@dataclass
class Job:
    """One chat completion to generate: the prompt's token ids and how to continue them."""

    ids: list[int]
    sampling: Sampling
    stops: list[str] = field(default_factory=list)
    thinking: bool = False  # the template can think: split reasoning from content
    opened: bool = False  # the prompt ends inside a `<think>` block

    def __post_init__(self) -> None:
        self.cancelled = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: asyncio.Queue | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._events = loop, asyncio.Queue()

    def emit(self, event: Delta | Finished | Failed) -> None:
        """From the worker thread: hand `event` to the request's coroutine."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:  # the event loop has closed (server shutting down): nobody is listening
            self.cancelled.set()

    async def next_event(self) -> Delta | Finished | Failed:
        """The worker's next event (safe to cancel: a cancelled wait loses nothing)."""
        return await self._events.get()

    async def events(self) -> AsyncIterator[Delta | Finished | Failed]:
        """The events until the last (Finished or Failed)."""
        while True:
            event = await self.next_event()
            yield event
            if not isinstance(event, Delta):
                return

    def cancel(self) -> None:
        self.cancelled.set()


class Engine:
    """Generates queued jobs one at a time on a worker thread (`start`, `submit`, `stop`)."""

    def __init__(self, model, tokenizer, max_waiting: int = 64):
        self.model, self.tokenizer = model, tokenizer
        self.eos = tokenizer.convert_tokens_to_ids(IM_END)  # the end of an assistant turn
        self.max_waiting = max_waiting
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max_waiting)
        self._thread: threading.Thread | None = None
        self._current: Job | None = None

    @property
    def waiting(self) -> int:
        return self._jobs.qsize()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="minimind-generate", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel what is waiting and the running job (it ends at its next token), and join the worker."""
        if (current := self._current) is not None:
            current.cancel()
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.cancel()
        self._jobs.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(self, job: Job) -> Job:
        """Queue `job` for the running event loop; a full queue is refused (503: retry later)."""
        job.bind(asyncio.get_running_loop())
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise RequestError(f"the server is busy: {self.max_waiting} requests are already waiting; retry later",
                               status=503, type="server_error", code="server_busy") from None
        return job

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if not job.cancelled.is_set():
                self._current = job
                self._generate(job)
                self._current = None

    def _generate(self, job: Job) -> None:
        reply = ReplyText(job.stops, job.thinking, job.opened)

        def on_text(piece: str) -> None:
            if delta := reply.add(piece):
                job.emit(delta)
            if reply.stopped or job.cancelled.is_set():
                raise _Stop

        streamer = TokenStreamer(self.tokenizer, on_text)
        try:
            generate_ids(self.model, job.ids, self.eos, job.sampling, streamer)
            finish_reason = "stop" if streamer.tokens[-1:] == [self.eos] else "length"
        except _Stop:
            finish_reason = "stop"
        except Exception as error:  # a bug or out of memory: this request fails, the server keeps serving
            log.exception("generation failed")
            job.emit(Failed(f"generation failed: {type(error).__name__}: {error}"))
            return
        if delta := reply.finish():
            job.emit(delta)
        job.emit(Finished(finish_reason, len(job.ids), len(streamer.tokens), reply.reasoning, reply.content))
