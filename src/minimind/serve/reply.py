"""A reply as it streams: token ids decoded as they come, stop strings cut, reasoning split from content.

Text is released only once it is final: a byte-level BPE token can end in the middle of a UTF-8
character (decoded as U+FFFD until its other bytes arrive), and the end of the text may be the
start of a stop string or of `</think>`; such a tail is held back until the next token settles it.
Each step works on the whole reply so far, so what was streamed adds up to exactly the text a
non-streamed request returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def partial_suffix(text: str, marker: str) -> int:
    """The length of the longest end of `text` that is a proper start of `marker` (text that may become it)."""
    for n in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0


def cut_at_stop(text: str, stops: list[str], final: bool) -> tuple[str, bool]:
    """(the text that may be released, whether a stop string was found). The stop string itself is not part
    of the reply (OpenAI's rule); unless `final`, a tail that may grow into one is held back."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    if found:
        return text[:min(found)], True
    if final or not stops:
        return text, False
    return text[:len(text) - max(partial_suffix(text, s) for s in stops)], False


def split_reasoning(text: str, opened: bool, final: bool) -> tuple[str | None, str]:
    """(reasoning, content) of a reply from a template that can think: the reasoning is what comes before
    `</think>`, from the start of the reply if the prompt opened `<think>`, else from a `<think>` the model
    writes first. None: the reply has no reasoning (so far)."""
    if not opened:
        stripped = text.lstrip()
        if stripped.startswith(THINK_OPEN):
            text = stripped[len(THINK_OPEN):]
        elif not final and THINK_OPEN.startswith(stripped):
            return None, ""  # nothing yet, or the start of "<think>"
        else:
            return None, text
    end = text.find(THINK_CLOSE)
    if end >= 0:
        return text[:end], text[end + len(THINK_CLOSE):].lstrip("\n")
    return (text if final else text[:len(text) - partial_suffix(text, THINK_CLOSE)]), ""


@dataclass
class Delta:
    reasoning: str = ""
    content: str = ""

    def __bool__(self) -> bool:
        return bool(self.reasoning or self.content)


class ReplyText:
    """The reply so far (`add` each decoded piece, then `finish`): what to send next, and where to stop.

    thinking: the chat template can think (reasoning is split into `reasoning_content`);
    opened: the prompt already opened a `<think>` block (the reply starts inside it)."""

    def __init__(self, stops: list[str], thinking: bool = False, opened: bool = False):
        self.stops, self.thinking, self.opened = stops, thinking, opened
        self.text = ""
        self.stopped = False  # a stop string was found: generation should end
        self.reasoning: str | None = None
        self.content = ""

    def add(self, piece: str) -> Delta:
        self.text += piece
        return self._release(final=False)

    def finish(self) -> Delta:
        return self._release(final=True)

    def _release(self, final: bool) -> Delta:
        visible, self.stopped = cut_at_stop(self.text, self.stops, final)
        final = final or self.stopped
        reasoning, content = split_reasoning(visible, self.opened, final) if self.thinking else (None, visible)
        delta = Delta(_grown(self.reasoning or "", reasoning or ""), _grown(self.content, content))
        if reasoning is not None:
            self.reasoning = reasoning
        self.content = content
        return delta


def _grown(before: str, now: str) -> str:
    assert now.startswith(before), "released text is never taken back"
    return now[len(before):]


class TokenStreamer:
    """Hugging Face's streamer interface for `generate`: skips the prompt, decodes the reply after every
    token and hands `on_text` each new piece of text (whole characters only).

    `on_text` may raise to end generation early (a stop string, a client that left): `generate` has no
    other way to be stopped from outside, and it leaves no state behind when interrupted."""

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]):
        self.tokenizer, self.on_text = tokenizer, on_text
        self.tokens: list[int] = []
        self._prompt_seen = False
        self._released = 0  # characters of the decoded reply already handed on

    def put(self, ids: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.tokens.extend(ids.reshape(-1).tolist())
        self._release(final=False)

    def end(self) -> None:
        self._release(final=True)

    def _release(self, final: bool) -> None:
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):
            return  # an unfinished UTF-8 character: wait for its other bytes
        if len(text) > self._released:
            piece, self._released = text[self._released:], len(text)
            self.on_text(piece)
