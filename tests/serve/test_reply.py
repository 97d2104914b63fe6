"""How a streamed reply is released: whole characters, stop strings cut even across pieces, reasoning split
from content; and the streamed pieces always add up to the text a non-streamed request returns."""

from __future__ import annotations

import torch

from minimind.data.tokenizer import load_tokenizer
from minimind.serve.reply import ReplyText, TokenStreamer, cut_at_stop, split_reasoning


def stream(pieces: list[str], **kwargs) -> tuple[ReplyText, list[tuple[str, str]]]:
    reply = ReplyText(**kwargs)
    sent = []
    for piece in pieces:
        delta = reply.add(piece)
        sent.append((delta.reasoning, delta.content))
        if reply.stopped:
            break
    delta = reply.finish()
    sent.append((delta.reasoning, delta.content))
    return reply, sent


def joined(sent: list[tuple[str, str]]) -> tuple[str, str]:
    return "".join(r for r, _ in sent), "".join(c for _, c in sent)


def test_a_stop_string_split_across_pieces_is_cut_and_never_sent():
    reply, sent = stream(["The cat", " sat.", "\n", "\nUser: more", " text"], stops=["\n\nUser:"])
    assert reply.stopped and reply.content == "The cat sat."
    assert joined(sent) == ("", "The cat sat.")
    assert sent[2] == ("", "")  # "\n" may begin the stop string: held back, then dropped


def test_held_back_text_is_released_when_it_turns_out_not_to_be_a_stop():
    reply, sent = stream(["a\n", "b", " c"], stops=["\n\n"])
    assert sent[0] == ("", "a") and sent[1] == ("", "\nb")
    assert not reply.stopped and reply.content == "a\nb c" == joined(sent)[1]
    assert cut_at_stop("abc\n", ["\n\n"], final=True) == ("abc\n", False)  # at the end nothing is held


def test_the_earliest_of_several_stops_wins():
    assert cut_at_stop("one. two! three", ["!", "."], final=False) == ("one", True)


def test_reasoning_is_split_when_the_prompt_opened_think():
    pieces = ["Let me", " think.\n", "</th", "ink>\n\n", "Four", "."]
    reply, sent = stream(pieces, stops=[], thinking=True, opened=True)
    assert (reply.reasoning, reply.content) == ("Let me think.\n", "Four.")
    assert joined(sent) == ("Let me think.\n", "Four.")
    assert all("<" not in r for r, _ in sent)  # "</th" was held back, not sent as reasoning


def test_a_reply_that_opens_think_itself_and_one_that_does_not():
    assert split_reasoning("<think>\nhmm</think>\n\nYes", opened=False, final=True) == ("\nhmm", "Yes")
    assert split_reasoning("<thi", opened=False, final=False) == (None, "")  # maybe "<think>": wait
    assert split_reasoning("Plain answer", opened=False, final=False) == (None, "Plain answer")
    reply, sent = stream(["<", "think>", "a", "</think>", "b"], stops=[], thinking=True)
    assert (reply.reasoning, reply.content) == ("a", "b") == joined(sent)


def test_a_template_without_thinking_keeps_think_tags_as_text():
    reply, _ = stream(["<think>a</think>b"], stops=[], thinking=False)
    assert reply.reasoning is None and reply.content == "<think>a</think>b"


def test_token_streamer_releases_whole_characters_only(tiny_tokenizer_dir):
    tokenizer = load_tokenizer(tiny_tokenizer_dir)  # byte-level BPE, 400 tokens: "猫" and "🐈" take several
    text = "a 猫 and a 🐈."
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) > len(text)  # some characters really span tokens
    pieces = []
    streamer = TokenStreamer(tokenizer, pieces.append)
    streamer.put(torch.tensor([[1, 2, 3]]))  # the prompt: skipped
    for token in ids:
        streamer.put(torch.tensor([token]))
    streamer.end()
    assert "".join(pieces) == text and all("\ufffd" not in p for p in pieces)
    assert streamer.tokens == ids
