"""`benchmark=lm_eval`: the shipped task, scores that match lm-evaluation-harness's own command line on
the exported model, and each bad request's one-line error."""

from __future__ import annotations

import json
import shutil

import pytest
from commands import assert_clean_failure, run_main
from tools_helpers import run_tool

from minimind.data import default_corpus
from minimind.data.records import is_val
from minimind.eval_tasks import TASKS_DIR
from minimind.eval_tasks.stdlib_docs import CHOICES, VAL_FRACTION, build_items, first_paragraph
from minimind.evaluate import main as evaluate_main

TASK = "minimind_stdlib_docs"
LIMIT = "40"  # documents: 160 log-likelihood requests, seconds for a tiny model


def test_stdlib_docs_items_are_deterministic_held_out_and_answerable():
    items = build_items()
    assert items == build_items() and len(items) >= 200
    paths = {default_corpus.module_name(p): p for p in default_corpus.module_files()}
    docs = {}  # module -> {header: docstring}
    for item in items:
        path = paths[item["module"]]
        assert is_val(default_corpus.module_doc_id(path), VAL_FRACTION)  # never in the default training split
        if item["module"] not in docs:
            docs[item["module"]] = dict(default_corpus.documented(path))
        module_docs = docs[item["module"]]
        assert item["choices"][item["answer"]] == first_paragraph(module_docs[item["header"]])
        paragraphs = {first_paragraph(d) for d in module_docs.values()}
        assert len(set(item["choices"])) == CHOICES and set(item["choices"]) <= paragraphs  # all from the module
    assert sorted({i["answer"] for i in items}) == [0, 1, 2, 3]  # the answer is not always in one place


def test_lm_eval_reads_the_task_as_we_build_it():
    from lm_eval.tasks import TaskManager

    task = TaskManager(include_path=str(TASKS_DIR), include_defaults=False).load([TASK])["tasks"][TASK]
    docs = list(task.test_docs())
    items = build_items()
    assert len(docs) == len(items)
    doc, item = docs[5], items[5]
    assert task.doc_to_text(doc) == item["header"] and task.config.target_delimiter == "\n\n"
    assert task.doc_to_choice(doc) == item["choices"] and task.doc_to_target(doc) == item["answer"]


@pytest.mark.slow
def test_scores_match_lm_eval_on_the_exported_model(trained_run, tmp_path, capsys, monkeypatch):
    import lm_eval
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # what benchmark=lm_eval sets; undone after the test
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run[0], run_dir)
    code, out, err = run_main(evaluate_main, [f"ckpt={run_dir}", "benchmark=lm_eval", f"tasks={TASK}",
                                              f"limit={LIMIT}", "batch_size=8"], capsys, monkeypatch)
    assert code == 0, err[-3000:]
    assert f"scores: {run_dir / 'lm_eval.json'}" in out
    entry = json.loads((run_dir / "lm_eval.json").read_text())["tasks"][TASK]
    assert entry["samples"] == int(LIMIT) and entry["ckpt"] == "checkpoints/last.ckpt" and entry["limit"] == 40

    # The reference: our export command, then lm_eval's own `hf` model and task loading, as `lm_eval run
    # --model hf --model_args pretrained=DIR,dtype=float32 --include_path TASKS_DIR` does.
    hf_dir = tmp_path / "hf"
    run_tool("export", f"ckpt={run_dir}", "format=hf", f"out={hf_dir}", timeout=300)
    results = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={hf_dir},dtype=float32", tasks=[TASK],
                                      task_manager=TaskManager(include_path=str(TASKS_DIR), include_defaults=False),
                                      limit=int(LIMIT), batch_size=8, device="cpu", log_samples=False)
    reference = results["results"][TASK]
    assert entry["metrics"]["acc"] == reference["acc,none"]
    assert entry["metrics"]["acc_norm"] == reference["acc_norm,none"]
    assert entry["metrics"]["acc_stderr"] == reference["acc_stderr,none"]
    assert f"{TASK}: acc {reference['acc,none']:.4f}" in out


def test_requests_lm_eval_cannot_serve_fail_with_one_message(trained_run, tmp_path, capsys, monkeypatch):
    run_dir = trained_run[0]
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # what benchmark=lm_eval sets; undone after the test
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def evaluate(*args):
        return run_main(evaluate_main, [f"ckpt={run_dir}", *args], capsys, monkeypatch)

    assert_clean_failure(*evaluate("benchmark=lm_eval"), "benchmark=lm_eval needs tasks")
    assert_clean_failure(*evaluate("benchmark=lm_eval", f"tasks={TASK}", "split=train"),
                         "split is a setting of benchmark=loss")
    assert_clean_failure(*evaluate(f"tasks={TASK}"), "tasks is a setting of benchmark=lm_eval", "add benchmark=lm_eval")
    assert_clean_failure(*evaluate("benchmark=bleu"), "benchmark='bleu': choose one of")
    assert_clean_failure(*evaluate("benchmark=lm_eval", f"tasks={TASK}", f"include_path={tmp_path / 'none'}"),
                         "include_path=", "no such directory")
    # A task whose data is on the Hub and not in the local cache: offline, it is refused, not downloaded.
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "absent.yaml").write_text("task: minimind_absent_data\ndataset_path: minimind-tests/no-such-dataset\n"
                                       "output_type: multiple_choice\ntest_split: test\ndoc_to_text: q\n"
                                       "doc_to_choice: choices\ndoc_to_target: answer\n")
    assert_clean_failure(*evaluate("benchmark=lm_eval", "tasks=minimind_absent_data", f"include_path={tasks}"),
                         "is not on this machine", "offline=false")
