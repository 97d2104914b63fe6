"""The frozen reference model of the preference and RL stages: what the policy is measured against.

By default the reference is the weights the run starts from (`init_from=`): the policy itself at
step 0, with the policy's config. `ref=PATH` takes any checkpoint the tools load instead (a bare
`.pth` with `ref_model=PRESET` for its shape), refused when it was trained with another tokenizer.

A resumed run keeps the reference it started with. Its `record` (the file read, the config it was
built with, a fingerprint of its weights) is saved in every checkpoint through the objective's
extra state; resuming builds the reference again from the record and refuses weights that have
changed since (a run dir's `last.ckpt` that was trained further, say), since the loss would no
longer continue the same run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from minimind.checkpoints import checkpoint_kind, read_weights
from minimind.checkpoints.mismatch import load_state_strict
from minimind.errors import ConfigurationError
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.training.objectives.base import Frozen, load_frozen

if TYPE_CHECKING:
    from minimind.training.init import InitWeights


def weights_fingerprint(model: MiniMindForCausalLM) -> str:
    """A hash of a model's config and the bytes of its weights: equal exactly when the model computes the same."""
    h = hashlib.blake2b(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode(), digest_size=16)
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy())
    return h.hexdigest()


def _build(fields: dict[str, Any], state: dict[str, torch.Tensor], what: str) -> MiniMindForCausalLM:
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten: leave the run's RNG as it was
        model = MiniMindForCausalLM(MiniMindConfig.from_dict(fields))
    load_state_strict(model, state, what)
    return model


class Reference:
    """Where a stage's reference comes from, and the frozen model once `prepare`d (`release` drops it)."""

    def __init__(self, path: str | None = None, model_fields: dict[str, Any] | None = None, stage: str = "this stage",
                 init_from: str | None = None, resuming: bool = False):
        """path: `ref=PATH` (None: the init weights). init_from, resuming: whether the run starts from weights
        or resumes a checkpoint; with neither and no path there is nothing to measure against (refused now,
        before any data is read)."""
        self.path = None if path in (None, "") else str(path)
        self.model_fields, self.stage = model_fields, stage
        if self.path is None and init_from in (None, "") and not resuming:
            raise ConfigurationError(
                f"{stage} measures the policy against a reference model, and none was given: start from the weights "
                "to align with init_from=<an SFT run dir, .ckpt, .pth or Hugging Face dir> (they are also the "
                "reference), or give ref=PATH")
        self.frozen: Frozen | None = None
        self.record: dict[str, Any] | None = None

    @property
    def model(self) -> MiniMindForCausalLM:
        if self.frozen is None:
            raise RuntimeError("the reference model was released (its log-probabilities are precomputed)")
        return self.frozen.model

    def prepare(self, *, tokenizer: Any, model_config: MiniMindConfig, init: InitWeights | None,
                recorded: dict[str, Any] | None, resuming: bool) -> None:
        """Build the reference: the recorded one when resuming, else `ref=PATH`, else the init weights."""
        if resuming:
            model = self._recorded(recorded)
        elif self.path is not None:
            loaded = load_frozen(self.path, self.model_fields, tokenizer, "reference")
            model, source = loaded.model, loaded.path
        else:  # the init weights (checked in __init__: the run starts from some)
            model, source = _build(model_config.to_dict(), init.state, f"init_from={init.path}"), init.path
        if not resuming:
            self.record = {"path": str(Path(source).resolve()), "config": model.config.to_dict(),
                           "fingerprint": weights_fingerprint(model)}
        self.frozen = Frozen(model)

    def _recorded(self, recorded: dict[str, Any] | None) -> MiniMindForCausalLM:
        if not recorded or not {"path", "config", "fingerprint"} <= set(recorded):
            raise ConfigurationError(
                f"the checkpoint to resume records no reference model, so it is not a checkpoint of a {self.stage} "
                "run: resume the run it belongs to, or start a new run from its weights with init_from=")
        path = recorded["path"]
        if self.path is not None and Path(self.path).exists() and checkpoint_kind(self.path)[1].resolve() != Path(path):
            raise ConfigurationError(
                f"ref={self.path}, but the run being resumed was started against the reference {path}: a resumed run "
                "keeps its reference; drop ref= (or start a new run)")
        if not Path(path).exists():
            raise ConfigurationError(f"the reference of the run being resumed, {path}, no longer exists: restore it "
                                     "to resume, or start a new run")
        _, _, _, state, _ = read_weights(path, recorded["config"], what="reference")
        model = _build(recorded["config"], state, f"the reference {path}")
        if weights_fingerprint(model) != recorded["fingerprint"]:
            raise ConfigurationError(
                f"the reference {path} has changed since the run being resumed was started (its weights differ), so "
                "resuming would not continue the same run: restore the original weights, or start a new run")
        self.record = dict(recorded)
        return model

    def release(self) -> None:
        """Drop the model (its log-probabilities are precomputed): only the record stays."""
        self.frozen = None
