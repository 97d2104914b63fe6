"""One real server for the serve tests: the tiny trained run of tests/conftest.py behind
`python -m minimind.serve`, with an API key (the official OpenAI client sends it), and the same
checkpoint loaded here to compute what `minimind.generate` answers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from minimind.checkpoints import load_checkpoint, resolve_tokenizer
from minimind.generate import Sampling, chat, generate_ids, render_chat
from serve_helpers import API_KEY, Server


@pytest.fixture(scope="session")
def server(trained_run, tmp_path_factory):
    run_dir, _ = trained_run
    running = Server([f"ckpt={run_dir}", "model_name=tiny"], tmp_path_factory.mktemp("serve") / "server.log",
                     env={"MINIMIND_API_KEY": API_KEY})
    yield running
    running.stop()


@pytest.fixture(scope="session")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)


@dataclass
class Reference:
    """`minimind.generate` on the checkpoint the server serves."""

    model: object
    tokenizer: object

    def reply(self, messages: list[dict[str, str]], **sampling) -> str:
        """What `minimind.generate`'s chat answers to the last user message after the others."""
        *history, last = messages
        system = history[0]["content"] if history and history[0]["role"] == "system" else None
        assert len(history) == (system is not None), "a single user turn (after an optional system message)"
        return chat(self.model, self.tokenizer, [last["content"]], Sampling(**sampling), system=system,
                    stream=False)[-1]["content"]

    def token_counts(self, messages: list[dict[str, str]], **sampling) -> tuple[int, list[int]]:
        """(prompt tokens, the new token ids) for `messages`."""
        ids = render_chat(self.tokenizer, messages)
        eos = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        return len(ids), generate_ids(self.model, ids, eos, Sampling(**sampling))


@pytest.fixture(scope="session")
def reference(trained_run) -> Reference:
    loaded = load_checkpoint(trained_run[0])
    return Reference(loaded.model, resolve_tokenizer(loaded))
