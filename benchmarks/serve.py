"""Requests/s and time to first token of `python -m minimind.serve`, measured by OpenAI clients.

    .venv/bin/python benchmarks/serve.py --ckpt outputs/runs/DATE/TIME            # 1, 4 and 8 clients
    .venv/bin/python benchmarks/serve.py --ckpt RUN_DIR --clients 1 8 --requests 32 --max-tokens 128
    taskset -c 0,1 .venv/bin/python benchmarks/serve.py --ckpt RUN_DIR           # on two cores of a bigger machine

The server runs in its own process (as a user runs it, greedy so every run asks the same work);
each level sends `--requests` streamed chat completions from that many client threads at once.
Time to first token is from sending a request to its first piece of text: with several clients
it includes the time a request waits in the server's queue. Requests/s is requests finished
divided by the wall time of the level. Figures: median [min, max] of the requests, p90 beside.
For scale, the same greedy replies are then generated in this process with `minimind.generate`
(no server, no HTTP): what one client could get at best.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402
from openai import OpenAI  # noqa: E402

from common import Measurement, machine_facts  # noqa: E402
from minimind.checkpoints import load_checkpoint, resolve_tokenizer  # noqa: E402
from minimind.generate import Sampling, generate_ids, render_chat  # noqa: E402
from minimind.serve.process import ServerProcess  # noqa: E402
from minimind.cli import expected_errors

PROMPTS = ["What is a list?", "How do I open a file?", "Explain a dictionary.", "What does import do?",
           "A string is", "How do I read a line?", "What is a tuple?", "Write a loop."]


def one_request(client: OpenAI, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    """(seconds to the first piece of text, seconds to the end, completion tokens) of one streamed request."""
    start = time.perf_counter()
    first, tokens = None, 0
    stream = client.chat.completions.create(model="minimind", messages=[{"role": "user", "content": prompt}],
                                            max_tokens=max_tokens, stream=True,
                                            stream_options={"include_usage": True})
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter() - start
    return (end if first is None else first), end, tokens


def level(client: OpenAI, clients: int, requests: int, max_tokens: int) -> dict:
    with ThreadPoolExecutor(clients) as pool:
        start = time.perf_counter()
        results = list(pool.map(lambda i: one_request(client, PROMPTS[i % len(PROMPTS)], max_tokens),
                                range(requests)))
        wall = time.perf_counter() - start
    ttft = Measurement("time to first token", "ms", [r[0] * 1000 for r in results])
    latency = Measurement("latency", "ms", [r[1] * 1000 for r in results])
    tokens = sum(r[2] for r in results)
    return dict(clients=clients, requests=requests, wall=wall, rps=requests / wall, tokens_per_s=tokens / wall,
                mean_tokens=tokens / requests, ttft=ttft, latency=latency,
                ttft_p90=statistics.quantiles(ttft.values, n=10)[-1] if len(ttft.values) > 1 else ttft.median)


def in_process(ckpt: str, requests: int, max_tokens: int) -> tuple[float, float]:
    """(requests/s, tokens/s) of `minimind.generate` alone on the same greedy requests, one after another."""
    loaded = load_checkpoint(ckpt)
    tokenizer = resolve_tokenizer(loaded)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    sampling = Sampling(max_new_tokens=max_tokens, temperature=0.0)
    prompts = [render_chat(tokenizer, [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}])
               for i in range(requests)]
    generate_ids(loaded.model, prompts[0], eos, sampling)  # warm-up
    start = time.perf_counter()
    tokens = sum(len(generate_ids(loaded.model, ids, eos, sampling)) for ids in prompts)
    wall = time.perf_counter() - start
    return requests / wall, tokens / wall


@expected_errors  # a bad path or checkpoint: one `error: ...` line, as the tools print
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="what `python -m minimind.serve ckpt=` takes")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=16, help="requests per level")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, help="torch CPU threads, for the server and the in-process baseline "
                        "(default: torch's, one per core)")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    server_args = [f"ckpt={args.ckpt}", "temperature=0", "log_level=warning"]
    if args.threads:
        server_args.append(f"threads={args.threads}")
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="minimind-serve-bench-") as tmp, \
            ServerProcess(server_args, Path(tmp) / "server.log", cwd=tmp) as server:
        client = OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=600)
        print(server.output().strip().splitlines()[0], flush=True)  # what was loaded
        level(client, 1, 2, args.max_tokens)  # warm-up
        rows = []
        for clients in args.clients:
            row = level(client, clients, max(args.requests, clients), args.max_tokens)
            rows.append(row)
            print(f"{clients} clients: {row['rps']:.2f} requests/s, {row['tokens_per_s']:.0f} tokens/s, "
                  f"time to first token {row['ttft'].cell('.0f')} ms (p90 {row['ttft_p90']:.0f})", flush=True)

    alone_rps, alone_tps = in_process(args.ckpt, args.requests, args.max_tokens)
    print(f"minimind.generate in this process: {alone_rps:.2f} requests/s, {alone_tps:.0f} tokens/s", flush=True)
    facts = machine_facts(torch.device("cpu"))
    lines = [f"Server: `python -m minimind.serve {' '.join(a for a in server_args if not a.startswith('log_level'))}`; "
             f"{args.requests} streamed requests per level, max_tokens={args.max_tokens}; cores available: "
             f"{len(os.sched_getaffinity(0))} ({facts['cpu']}), torch {facts['torch']} with {torch.get_num_threads()} "
             "threads.", "",
             "| clients | requests/s | tokens/s | time to first token, ms | p90, ms | latency, ms | tokens/reply |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['clients']} | {r['rps']:.2f} | {r['tokens_per_s']:.0f} | {r['ttft'].cell('.0f')} | "
                     f"{r['ttft_p90']:.0f} | {r['latency'].cell('.0f')} | {r['mean_tokens']:.1f} |")
    lines.append(f"| `minimind.generate`, no server | {alone_rps:.2f} | {alone_tps:.0f} | | | | |")
    lines += ["", f"Load average while it ran: {os.getloadavg()[0]:.1f} (1 minute)."]
    print("\n" + "\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
