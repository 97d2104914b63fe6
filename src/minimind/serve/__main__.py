"""`python -m minimind.serve ckpt=PATH [host=127.0.0.1] [port=8000]` (see minimind.serve for more)."""

from __future__ import annotations

import ipaddress
import socket
import sys

import torch
import uvicorn
from omegaconf import DictConfig

from minimind.checkpoints import load_checkpoint, resolve_tokenizer
from minimind.cli import command_line_model_config, describe, hydra_app, pick_device, pick_dtype
from minimind.errors import ToolError
from minimind.serve.app import create_app
from minimind.serve.engine import Engine
from minimind.serve.prompt import ChatPrompts, Defaults

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), or a message that says what to change."""
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ToolError(f"port={port!r} is not a port: use 1-65535, or 0 for any free port")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise ToolError(f"host={host!r} is not an address of this machine ({error.strerror}): "
                        "use 127.0.0.1 (this machine only) or 0.0.0.0 (every network)") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise ToolError(f"cannot listen on {host}:{port} ({error.strerror}): choose another port=N "
                        "(or port=0 for any free one)") from None
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@hydra_app("serve")
def main(cfg: DictConfig) -> None:
    if cfg.log_level not in LOG_LEVELS:
        raise ToolError(f"log_level={cfg.log_level!r} is unknown: use one of {', '.join(LOG_LEVELS)}")
    if not isinstance(cfg.max_waiting, int) or cfg.max_waiting < 1:
        raise ToolError(f"max_waiting={cfg.max_waiting!r} must be a whole number >= 1")
    defaults = Defaults(max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                        repetition_penalty=cfg.repetition_penalty, max_tokens_limit=cfg.max_tokens_limit)
    if cfg.threads is not None:
        if not isinstance(cfg.threads, int) or cfg.threads < 1:
            raise ToolError(f"threads={cfg.threads!r} must be a whole number >= 1 (or null: torch's default)")
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    loaded = load_checkpoint(cfg.ckpt, command_line_model_config(cfg), dtype=pick_dtype(cfg.dtype, device),
                             device=device)
    tokenizer = resolve_tokenizer(loaded, cfg.tokenizer)
    print(describe(loaded), file=sys.stderr, flush=True)
    prompts = ChatPrompts(tokenizer, loaded.config.max_position_embeddings, str(cfg.model_name), defaults)
    api_key = None if cfg.api_key in (None, "") else str(cfg.api_key)
    sock = bind(str(cfg.host), cfg.port)
    if not is_loopback(str(cfg.host)) and api_key is None:
        print(f"warning: host={cfg.host} is reachable from other machines and there is no API key: "
              "set api_key=... (or MINIMIND_API_KEY)", file=sys.stderr, flush=True)
    print(f"serving {prompts.model_name} at {url(sock)}/ (the chat page) and {url(sock)}/v1 (the OpenAI API)"
          f"{', API key required' if api_key else ''}; Ctrl+C stops", file=sys.stderr, flush=True)
    app = create_app(Engine(loaded.model, tokenizer, cfg.max_waiting), prompts, api_key)
    config = uvicorn.Config(app, log_level=cfg.log_level, timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down cleanly on Ctrl+C, then hands the signal back
        print("stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
