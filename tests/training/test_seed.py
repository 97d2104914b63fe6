"""`seed=N` reaches both things it should decide: the model's initialisation (`seed_everything` before the
model is built) and the order of the training data (`data.seed`, which follows `seed` unless set)."""

from compose_train import TRAIN_OVERRIDES, compose_train
from seed_probe import SeedProbe

from minimind.training.run import train


def probe(tmp_path, tiny_corpus, tiny_tokenizer_dir, *overrides):
    run_dir = tmp_path / str(len(list(tmp_path.iterdir())))  # a new run dir per run
    shorter = [o for o in TRAIN_OVERRIDES if not o.startswith(("trainer.max_steps", "trainer.val_check_interval"))]
    cfg = compose_train(shorter + [f"data.path={tiny_corpus}", f"data.tokenizer={tiny_tokenizer_dir}",
                                   "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=1",
                                   "export_pth=false", "+callbacks.probe._target_=seed_probe.SeedProbe", *overrides],
                        run_dir=run_dir)
    _, built = train(cfg)
    [found] = [c for c in built["trainer"].callbacks if isinstance(c, SeedProbe)]
    return cfg, found


def test_seed_decides_initialisation_and_data_order(tmp_path, tiny_corpus, tiny_tokenizer_dir):
    cfg1, one = probe(tmp_path, tiny_corpus, tiny_tokenizer_dir, "seed=1")
    _, again = probe(tmp_path, tiny_corpus, tiny_tokenizer_dir, "seed=1")
    cfg2, two = probe(tmp_path, tiny_corpus, tiny_tokenizer_dir, "seed=2")
    _, mixed = probe(tmp_path, tiny_corpus, tiny_tokenizer_dir, "seed=2", "data.seed=1")
    assert cfg1.data.seed == 1 and cfg2.data.seed == 2  # data.seed follows seed
    assert (again.initial_weights, again.first_batch) == (one.initial_weights, one.first_batch)  # reproducible
    assert two.initial_weights != one.initial_weights and two.first_batch != one.first_batch
    assert mixed.initial_weights == two.initial_weights and mixed.first_batch == one.first_batch
