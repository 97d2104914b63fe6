"""Serve a trained MiniMind: an OpenAI-compatible API and a chat page, from one process.

    python -m minimind.serve ckpt=outputs/runs/DATE/TIME        # http://127.0.0.1:8000/ (chat page), /v1 (API)
    python -m minimind.serve ckpt=RUN_DIR port=0                # any free port (the address is printed)
    python -m minimind.serve ckpt=full_sft_512.pth model=small  # an upstream .pth, its shape from the preset
    MINIMIND_API_KEY=secret python -m minimind.serve ckpt=RUN_DIR host=0.0.0.0   # the network, with a key
    minimind-serve ckpt=RUN_DIR temperature=0 max_tokens=128    # request defaults (requests may override)

    curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
         -d '{"messages": [{"role": "user", "content": "What is a list?"}], "max_tokens": 32}'

`ckpt=` takes what every tool takes (`minimind.checkpoints`). The files, one concern each:

    protocol.py  the OpenAI wire format: validated requests, responses, chunks, errors
    prompt.py    request -> job: chat template and thinking switch, context checks, sampling defaults
    reply.py     streamed text: token-by-token decoding, stop strings, reasoning split from content
    engine.py    one worker thread generating queued jobs with `minimind.generate`
    app.py       FastAPI routes, OpenAI-style errors, the API key, the chat page (static/index.html)
    __main__.py  the Hydra app: load the checkpoint, bind the address, run uvicorn
    process.py   a server in a subprocess, ready when returned (benchmarks/serve.py, the tests)
"""
