"""Replies to held-out questions before and after SFT: does the model answer in the chat format?

    .venv/bin/python benchmarks/sft_replies.py --before <pretrain run dir> --after <SFT run dir>

The questions are the first user turns of the embedded SFT set's validation split (definitions
never trained on: `data.path=default data.format=sft`, split by a hash of the definition's name).
Each model answers each question in a fresh conversation, greedily, through the chat template.
Prints, per model: how many replies end their turn (`<|im_end|>` within `--max-new-tokens`), how
many take the form of the set's answers ("Call it as ...", "Create one with ..." for signature
questions), how many equal the reference answer exactly; then a few question/reply rows.
"""

from __future__ import annotations

import argparse
from itertools import islice

import torch

from minimind.checkpoints import load_checkpoint, resolve_tokenizer
from minimind.data.default_sft import CALL, conversations
from minimind.data.records import is_val
from minimind.generate import chat_ids
from minimind.cli import expected_errors

FORMS = tuple(form.split("{")[0] for form in CALL.values())  # "Call it as ", "Create one with "


def held_out(n: int, val_fraction: float) -> list[tuple[str, str]]:
    """(question, reference answer) of the first n held-out conversations."""
    pairs = ((c[0]["content"], c[1]["content"]) for doc_id, c in conversations() if is_val(doc_id, val_fraction))
    return list(islice(pairs, n))


@torch.inference_mode()
def replies(run: str, questions: list[str], max_new_tokens: int) -> list[tuple[str, bool]]:
    """(reply, ended its turn) per question, greedy, each in a conversation of its own."""
    loaded = load_checkpoint(run)
    tokenizer = resolve_tokenizer(loaded)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    out = []
    for question in questions:
        ids = chat_ids(tokenizer, [{"role": "user", "content": question}],
                       loaded.config.max_position_embeddings - max_new_tokens)
        new = loaded.model.generate(torch.tensor([ids]), max_new_tokens=max_new_tokens, do_sample=False,
                                    eos_token_id=end)[0, len(ids):].tolist()
        ended = end in new
        out.append((tokenizer.decode(new[: new.index(end)] if ended else new, skip_special_tokens=True).strip(),
                    ended))
    return out


@expected_errors  # a bad path or checkpoint: one `error: ...` line, as the tools print
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, help="the pretrained run (or any checkpoint the tools load)")
    p.add_argument("--after", required=True, help="the fine-tuned run")
    p.add_argument("--n", type=int, default=100, help="held-out questions")
    p.add_argument("--show", type=int, default=6, help="question/reply rows to print")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--val-fraction", type=float, default=0.05, help="the runs' data.val_fraction")
    args = p.parse_args()
    pairs = held_out(args.n, args.val_fraction)
    questions = [q for q, _ in pairs]
    results = {name: replies(run, questions, args.max_new_tokens) for name, run in
               (("before", args.before), ("after", args.after))}
    how = [i for i, (_, ref) in enumerate(pairs) if ref.startswith(FORMS)]
    print(f"{len(pairs)} held-out questions of the embedded SFT set ({len(how)} about signatures), greedy, "
          f"at most {args.max_new_tokens} new tokens")
    for name, result in results.items():
        ended = sum(e for _, e in result)
        formed = sum(result[i][0].startswith(FORMS) for i in how)
        exact = sum(r == ref for (r, _), (_, ref) in zip(result, pairs))
        print(f"{name:>6}: {ended}/{len(pairs)} end their turn (<|im_end|>), {formed}/{len(how)} signature replies "
              f"in the answers' form, {exact}/{len(pairs)} equal the reference")
    for i, (question, reference) in enumerate(pairs[: args.show]):
        print(f"\nQ: {question}\n   reference: {reference}")
        for name, result in results.items():
            reply, ended = result[i]
            print(f"   {name}: {reply!r}{'' if ended else ' (no <|im_end|>)'}")


if __name__ == "__main__":
    main()
