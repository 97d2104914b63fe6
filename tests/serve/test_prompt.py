"""From request to job: the thinking switch of each template family, the context and max_tokens rules, the
server's defaults, and a full queue refused (a real Engine on a real tiny model)."""

from __future__ import annotations

import asyncio

import pytest
import torch

from minimind.data.tokenizer import load_tokenizer
from minimind.errors import ToolError
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.serve.engine import Engine, Finished
from minimind.serve.prompt import ChatPrompts, Defaults, template_variables
from minimind.serve.protocol import ChatRequest, RequestError

_MESSAGES = ("{%- for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
             "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}")
# The generation-prompt ends of upstream's templates (model/tokenizer_config.json): minimind-3 thinks
# only when `open_thinking` is true; MiniMind2 (like Qwen3) thinks unless `enable_thinking` is false.
MINIMIND3 = (_MESSAGES + "{%- if open_thinking is defined and open_thinking is true %}{{ '<think>\\n' }}"
             "{%- else %}{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}")
MINIMIND2 = (_MESSAGES + "{%- if enable_thinking is defined and enable_thinking is false %}"
             "{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}")


@pytest.fixture
def tokenizer(tiny_tokenizer_dir):
    return load_tokenizer(tiny_tokenizer_dir)


def request(**fields) -> ChatRequest:
    return ChatRequest.model_validate({"messages": [{"role": "user", "content": "the red cat"}], **fields})


def prompt_text(prompts: ChatPrompts, **fields) -> str:
    return prompts.tokenizer.decode(prompts.job(request(**fields)).ids)


def test_chatml_has_no_thinking_switch(tokenizer):
    prompts = ChatPrompts(tokenizer, context=256, model_name="m")
    assert template_variables(tokenizer) == {"messages", "add_generation_prompt"}
    assert prompts.thinking_switch is None and prompts.model_card()["thinking"] is False
    job = prompts.job(request(chat_template_kwargs={"enable_thinking": False}))
    assert not job.thinking and not job.opened
    with pytest.raises(RequestError, match="cannot think"):
        prompts.job(request(chat_template_kwargs={"enable_thinking": True}))
    with pytest.raises(RequestError, match="no such variable"):
        prompts.job(request(chat_template_kwargs={"persona": "pirate"}))


def test_minimind3_template_thinks_on_request(tokenizer):
    tokenizer.chat_template = MINIMIND3
    prompts = ChatPrompts(tokenizer, context=256, model_name="m")
    assert prompts.thinking_switch == "open_thinking" and prompts.model_card()["thinking_switch"] == "open_thinking"
    for asked in ({"enable_thinking": True}, {"open_thinking": True}):  # either name reaches the template
        job = prompts.job(request(chat_template_kwargs=asked))
        assert tokenizer.decode(job.ids).endswith("<|im_start|>assistant\n<think>\n") and job.opened and job.thinking
    off = prompts.job(request(chat_template_kwargs={"enable_thinking": False}))
    assert tokenizer.decode(off.ids).endswith("<think>\n\n</think>\n\n") and not off.opened
    assert prompt_text(prompts).endswith("</think>\n\n")  # off unless asked
    with pytest.raises(RequestError, match="disagree"):
        prompts.job(request(chat_template_kwargs={"enable_thinking": True, "open_thinking": False}))
    with pytest.raises(RequestError, match="true or false"):
        prompts.job(request(chat_template_kwargs={"enable_thinking": "yes"}))


def test_minimind2_template_thinks_unless_told_not_to(tokenizer):
    tokenizer.chat_template = MINIMIND2
    prompts = ChatPrompts(tokenizer, context=256, model_name="m")
    assert prompts.thinking_switch == "enable_thinking"
    default = prompts.job(request())
    assert tokenizer.decode(default.ids).endswith("assistant\n") and default.thinking and not default.opened
    assert prompt_text(prompts, chat_template_kwargs={"enable_thinking": False}).endswith("</think>\n\n")


def test_max_tokens_defaults_and_limits(tokenizer):
    prompts = ChatPrompts(tokenizer, context=64, model_name="m", defaults=Defaults(max_tokens=200, temperature=0.5,
                                                                                   max_tokens_limit=40))
    job = prompts.job(request())
    room = 64 - len(job.ids)
    assert job.sampling.max_new_tokens == min(40, room)  # the default, capped by the limit and the room left
    assert (job.sampling.temperature, job.sampling.top_p, job.sampling.seed) == (0.5, 0.85, None)
    assert prompts.job(request(max_completion_tokens=7, temperature=0, seed=3)).sampling.max_new_tokens == 7
    with pytest.raises(RequestError, match="max_completion_tokens=41 is more than this server allows"):
        prompts.job(request(max_completion_tokens=41))
    with pytest.raises(RequestError, match="disagree"):
        prompts.job(request(max_tokens=5, max_completion_tokens=6))
    with pytest.raises(RequestError, match="model `other` does not exist") as caught:
        prompts.job(request(model="other"))
    assert caught.value.status == 404


def test_impossible_server_defaults_are_refused():
    with pytest.raises(ToolError, match="temperature=3 must be between 0 and 2"):
        Defaults(temperature=3)
    with pytest.raises(ToolError, match="max_tokens=0 must be a whole number >= 1"):
        Defaults(max_tokens=0)
    with pytest.raises(ToolError, match="top_p='high'"):
        Defaults(top_p="high")


def test_a_full_queue_is_refused_with_503(tokenizer):
    model = MiniMindForCausalLM(MiniMindConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                                               num_key_value_heads=2, intermediate_size=128, vocab_size=400))
    engine = Engine(model, tokenizer, max_waiting=1)  # not started: nothing leaves the queue
    prompts = ChatPrompts(tokenizer, context=256, model_name="m")

    async def submit_two():
        engine.submit(prompts.job(request()))
        engine.submit(prompts.job(request()))

    with pytest.raises(RequestError, match="busy: 1 requests are already waiting") as caught:
        asyncio.run(submit_two())
    assert caught.value.status == 503


def test_the_engine_sends_reasoning_apart_when_the_prompt_opened_think(tokenizer):
    """minimind-3's template with thinking on: the whole reply (no `</think>` from a random model) is reasoning."""
    tokenizer.chat_template = MINIMIND3
    torch.manual_seed(0)
    model = MiniMindForCausalLM(MiniMindConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                                               num_key_value_heads=2, intermediate_size=128, vocab_size=400)).eval()
    engine = Engine(model, tokenizer)
    prompts = ChatPrompts(tokenizer, context=256, model_name="m")

    async def generate():
        engine.start()
        try:
            job = engine.submit(prompts.job(request(max_tokens=12, temperature=0,
                                                    chat_template_kwargs={"enable_thinking": True})))
            return [event async for event in job.events()]
        finally:
            engine.stop()

    *deltas, finished = asyncio.run(generate())
    assert isinstance(finished, Finished) and finished.completion_tokens == 12
    assert finished.reasoning == "".join(d.reasoning for d in deltas) != ""
    assert finished.content == "" and all(d.content == "" for d in deltas)
