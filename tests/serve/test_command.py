"""The command: its settings checked before anything loads, one clean message for what cannot be served,
request defaults from the command line, no key needed when none is set, and a clean stop on Ctrl+C."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from commands import assert_clean_failure, run_main
from minimind.serve.__main__ import main
from serve_helpers import Server


@pytest.mark.parametrize("args, fragments", [
    (["port=70000"], ["port=70000 is not a port"]),
    (["temperature=5"], ["temperature=5 must be between 0 and 2"]),
    (["max_waiting=0"], ["max_waiting=0 must be a whole number >= 1"]),
    (["log_level=loud"], ["log_level='loud' is unknown"]),
    (["threads=0"], ["threads=0 must be a whole number >= 1"]),
])
def test_impossible_settings_are_refused(trained_run, capsys, monkeypatch, args, fragments):
    code, out, err = run_main(main, [f"ckpt={trained_run[0]}", *args], capsys, monkeypatch)
    assert_clean_failure(code, out, err, *fragments)


def test_a_port_in_use_is_refused_with_what_to_do(trained_run, capsys, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run_main(main, [f"ckpt={trained_run[0]}", f"port={port}"], capsys, monkeypatch)
    assert_clean_failure(code, out, err, f"cannot listen on 127.0.0.1:{port}", "port=0 for any free one")


def test_a_missing_checkpoint_is_refused(tmp_path, capsys, monkeypatch):
    code, out, err = run_main(main, [f"ckpt={tmp_path / 'nothing'}"], capsys, monkeypatch)
    assert_clean_failure(code, out, err, "nothing")


@pytest.mark.slow
def test_console_script_defaults_no_key_and_ctrl_c(trained_run, reference, tmp_path):
    import openai

    script = Path(__import__("sys").executable).parent / "minimind-serve"
    server = Server([f"ckpt={trained_run[0]}", "host=localhost", "max_tokens=5", "temperature=0"],
                    tmp_path / "server.log", env={"MINIMIND_API_KEY": ""}, command=[str(script)])
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="anything", max_retries=0)
        messages = [{"role": "user", "content": "the old dog"}]
        out = client.chat.completions.create(model="minimind", messages=messages)  # the default name
        assert out.usage.completion_tokens <= 5
        assert out.choices[0].message.content.strip() == reference.reply(messages, temperature=0.0, max_new_tokens=5)
        assert "API key required" not in server.output()
    finally:
        code = server.stop(signal.SIGINT)
    assert code == 0, server.output()
    assert "Traceback" not in server.output()
