"""The OpenAI API of `python -m minimind.serve`, driven by the official `openai` client: the same text and
token counts as `minimind.generate`, streamed or not, 8 clients at once, and every bad request refused
with OpenAI's error format while the server keeps serving."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from serve_helpers import API_KEY

GREEDY = dict(temperature=0.0, max_new_tokens=24)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def greedy(client, messages, stream: bool = False, max_tokens: int = 24, **extra):
    return client.chat.completions.create(model="tiny", messages=messages, temperature=0, max_tokens=max_tokens,
                                          stream=stream, **extra)


def streamed_text(stream) -> tuple[str, list, str | None]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return text, chunks, finish[-1] if finish else None


def test_models_lists_the_served_model(client):
    (card,) = client.models.list().data
    assert card.id == "tiny" and card.object == "model"
    extra = card.model_dump()
    assert extra["context_length"] == 256 and extra["max_tokens_limit"] == 256
    assert extra["thinking"] is False and extra["thinking_switch"] is None  # ChatML: no thinking switch
    assert client.models.retrieve("tiny").id == "tiny"


def test_a_completion_is_what_generate_answers_with_its_token_counts(client, reference):
    messages = [{"role": "system", "content": "Be brief."}, *user("Question 3: the red cat sees a dog")]
    out = greedy(client, messages)
    prompt_tokens, new_ids = reference.token_counts(messages, **GREEDY)
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content.strip() == reference.reply(messages, **GREEDY)
    assert out.usage.prompt_tokens == prompt_tokens
    assert out.usage.completion_tokens == len(new_ids) > 0
    assert out.usage.total_tokens == prompt_tokens + len(new_ids)
    eos = reference.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert out.choices[0].finish_reason == ("stop" if new_ids[-1] == eos else "length")
    assert out.model == "tiny" and out.id.startswith("chatcmpl-") and out.object == "chat.completion"


def test_streaming_sends_the_same_text_piece_by_piece(client, reference):
    messages = user("the small bird finds a tree")
    plain = greedy(client, messages, max_tokens=32).choices[0].message.content
    text, chunks, finish = streamed_text(greedy(client, messages, stream=True, max_tokens=32,
                                                stream_options={"include_usage": True}))
    assert text == plain and text.strip() == reference.reply(messages, temperature=0.0, max_new_tokens=32)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(bool(c.choices and c.choices[0].delta.content) for c in chunks) > 3  # really streamed
    assert finish in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(
        reference.token_counts(messages, temperature=0.0, max_new_tokens=32)[1])
    assert len({c.id for c in chunks}) == 1 and all(c.object == "chat.completion.chunk" for c in chunks)


def test_the_stream_is_openai_server_sent_events_ending_with_done(server):
    body = {"messages": user("the dog"), "max_tokens": 6, "temperature": 0, "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {API_KEY}"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert payloads[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_max_tokens_stop_and_seed(client, reference):
    messages = user("Document 5. the old house near the river")
    short = greedy(client, messages, max_tokens=3)
    assert short.usage.completion_tokens <= 3
    _, new_ids = reference.token_counts(messages, temperature=0.0, max_new_tokens=3)
    eos = reference.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert short.choices[0].finish_reason == ("stop" if eos in new_ids else "length")

    full = greedy(client, messages, max_tokens=40).choices[0].message.content
    stop = full.strip()[4:7]  # a piece from the middle of the greedy reply
    assert len(stop) == 3
    cut = greedy(client, messages, max_tokens=40, stop=[stop, "never appears"])
    assert cut.choices[0].message.content == full[:full.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    assert cut.usage.completion_tokens < len(reference.token_counts(messages, temperature=0.0, max_new_tokens=40)[1])
    text, _, finish = streamed_text(greedy(client, messages, max_tokens=40, stop=stop, stream=True))
    assert text == full[:full.index(stop)] and finish == "stop"

    sampling = dict(temperature=1.0, top_p=0.9)
    sampled = [client.chat.completions.create(model="tiny", messages=messages, max_tokens=24, seed=seed,
                                              extra_body={"top_k": 0}, **sampling).choices[0].message.content
               for seed in (1, 1, 2)]
    assert sampled[0] == sampled[1] != sampled[2]
    assert sampled[0].strip() == reference.reply(messages, max_new_tokens=24, top_k=0, seed=1, **sampling)


def test_eight_concurrent_clients_each_get_what_generate_answers(client, reference):
    """Every client asks something else, at a length of its own (so that no two answers are alike and a reply
    handed to the wrong client is seen); half of them stream."""
    asks = [(f"Question {i}: the {color} cat", 8 + 3 * i) for i, color in enumerate(["red", "blue", "old", "new"] * 2)]

    def ask(i: int) -> str:
        prompt, max_tokens = asks[i]
        if i % 2:
            return streamed_text(greedy(client, user(prompt), stream=True, max_tokens=max_tokens))[0]
        return greedy(client, user(prompt), max_tokens=max_tokens).choices[0].message.content

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    expected = [reference.reply(user(p), temperature=0.0, max_new_tokens=n) for p, n in asks]
    assert [a.strip() for a in answers] == expected
    assert len(set(expected)) == 8


def refused(call, status: int, *fragments: str, param: str | None = None, code: str | None = None):
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    error = caught.value
    assert error.status_code == status, error
    body = error.body
    assert set(body) == {"message", "type", "param", "code"}, body  # the client unwraps {"error": ...}
    for fragment in fragments:
        assert fragment in body["message"], body
    assert body["param"] == param and body["code"] == code, body
    return body


def test_requests_that_cannot_be_served_get_openai_errors(client, server):
    refused(lambda: client.chat.completions.create(model="gpt-4o", messages=user("hi")), 404,
            "`gpt-4o` does not exist", "serves `tiny`", param="model", code="model_not_found")
    refused(lambda: greedy(client, user("hi"), max_tokens=1000), 400, "max_tokens=1000", "allows (256)",
            param="max_tokens")
    refused(lambda: greedy(client, user("hi"), max_tokens=250), 400, "maximum context length is 256",
            "lower max_tokens", param="max_tokens", code="context_length_exceeded")
    long = " ".join(["the red cat sees a dog"] * 80)
    refused(lambda: greedy(client, user(long)), 400, "maximum context length is 256", "shorten",
            param="messages", code="context_length_exceeded")
    refused(lambda: client.chat.completions.create(model="tiny", messages=user("hi"), temperature=3), 400,
            "temperature", "less than or equal to 2", param="temperature")
    refused(lambda: client.chat.completions.create(model="tiny", messages=user("hi"), top_p=0), 400,
            "top_p", param="top_p")
    refused(lambda: client.chat.completions.create(model="tiny", messages=[]), 400, "messages", param="messages")
    refused(lambda: client.chat.completions.create(model="tiny", messages=user("hi"), n=2), 400, "n=2",
            param="n")
    refused(lambda: client.chat.completions.create(model="tiny", messages=user("hi"), presence_penalty=1), 400,
            "use repetition_penalty", param="presence_penalty")
    refused(lambda: client.chat.completions.create(model="tiny", messages=user("hi"), stop=["a", "b", "c", "d", "e"]),
            400, "at most 4", param="stop")
    refused(lambda: client.chat.completions.create(model="tiny", messages=user("hi"),
                                                   extra_body={"temprature": 0.5}), 400,
            "unrecognized request argument: temprature", param="temprature")
    refused(lambda: client.chat.completions.create(model="tiny", messages=user("hi"),
                                                   extra_body={"chat_template_kwargs": {"enable_thinking": True}}),
            400, "cannot think", param="chat_template_kwargs")
    refused(lambda: client.chat.completions.create(model="tiny", messages=[{"role": "tool", "content": "x"}]),
            400, "messages.0.role", param="messages.0.role")
    # thinking off is what this template does anyway: served
    off = client.chat.completions.create(model="tiny", messages=user("hi"), max_tokens=4,
                                         extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert off.usage.completion_tokens >= 1
    assert server.alive()


def test_malformed_requests_are_refused_and_the_server_keeps_serving(server, client, reference):
    auth = {"Authorization": f"Bearer {API_KEY}"}
    post = lambda body, **kw: httpx.post(server.url + "/v1/chat/completions", timeout=30,  # noqa: E731
                                         headers={**auth, "Content-Type": "application/json"}, content=body, **kw)
    cases = [
        (b'{"messages": [{"role": "user", "content": "hi"}', 400, "not valid JSON"),
        (b"", 400, "required"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"model": "tiny"}', 400, "messages is required"),
        (b'{"messages": "hello"}', 400, "messages"),
        (b'{"messages": [{"role": "user"}]}', 400, "messages.0.content is required"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}', 400, "max_tokens"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}', 400, "max_tokens"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', 400, "stream"),
        (b'{"messages": [{"role": "user", "content": "\\udcff"}]}', 400, "messages.0.content: is not valid Unicode"),
        (b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}', 400,
         "messages.0.content.0.type: Input should be 'text'"),
        ('{"messages": [{"role": "user", "content": "\udcff"}]}'.encode("utf-8", "surrogatepass"), 400,
         "not valid Unicode"),  # bytes that are not UTF-8
        (b'{"messages": [{"role": "user", "content": "\xff"}]}', 400, "error parsing the body"),
    ]
    for body, status, fragment in cases:
        response = post(body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert fragment in error["message"] and error["type"] == "invalid_request_error", (body, error)
    missing_route = httpx.get(server.url + "/v1/completions", headers=auth, timeout=30)
    assert missing_route.status_code == 404 and "the API is under /v1" in missing_route.json()["error"]["message"]
    wrong_method = httpx.get(server.url + "/v1/chat/completions", headers=auth, timeout=30)
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    assert server.alive()
    messages = user("the green fish")
    assert greedy(client, messages).choices[0].message.content.strip() == reference.reply(messages, **GREEDY)


def test_the_api_key_is_checked_and_the_page_needs_none(server):
    no_key = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        no_key.models.list()
    assert caught.value.body["code"] == "invalid_api_key"
    missing = httpx.post(server.url + "/v1/chat/completions", json={"messages": user("hi")}, timeout=30)
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["error"]["message"]
    page = httpx.get(server.url + "/", timeout=30)
    assert page.status_code == 200 and "<title>MiniMind chat</title>" in page.text
    assert API_KEY not in page.text
    assert httpx.get(server.url + "/health", timeout=30).json()["status"] == "ok"


def test_a_client_that_leaves_mid_stream_frees_the_server(server, client, reference):
    body = {"messages": user("the big tree"), "max_tokens": 200, "temperature": 0, "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60,
                      headers={"Authorization": f"Bearer {API_KEY}"}) as response:
        next(response.iter_lines())  # the first event, then hang up
    messages = user("the blue road")
    assert greedy(client, messages).choices[0].message.content.strip() == reference.reply(messages, **GREEDY)
    assert server.alive()
