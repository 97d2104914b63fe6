"""Frozen models a stage reads and never trains, named by a path: the reference of the preference and RL
stages (DPO, GRPO), the teacher of distillation.

A reference defaults to the weights the run starts from (`init_from=`): the policy itself at step 0,
with the policy's config. `ref=PATH` (`teacher=PATH`) takes any checkpoint the tools load instead (a
bare `.pth` with `ref_model=PRESET` / `teacher_model=PRESET` for its shape), refused when it was
trained with another tokenizer.

A resumed run keeps the model it started with. Its `record` (the file read, the config it was built
with, a fingerprint of its weights) is saved in every checkpoint through the objective's extra state,
under the model's role; resuming builds the model again from the record and refuses weights that
have changed since (a run dir's `last.ckpt` that was trained further, say), since the loss would no
longer continue the same run. The checkpoints hold the record, never a second copy of a model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from minimind.checkpoints import checkpoint_kind, load_checkpoint, read_weights, resolve_tokenizer
from minimind.checkpoints.mismatch import load_state_strict
from minimind.errors import ConfigurationError
from minimind.model import MiniMindConfig, MiniMindForCausalLM
from minimind.model.presets import preset_fields
from minimind.training.objectives.base import recorded_state, run_param_dtype

if TYPE_CHECKING:
    from minimind.checkpoints import LoadedCheckpoint
    from minimind.training.init import InitWeights
    from minimind.training.module import MiniMindModule


class Frozen:
    """A model an objective reads but never trains (a teacher, a reference). Not an `nn.Module`
    attribute of the objective on purpose: it stays out of the module tree, so checkpoints hold
    only what trains, and the optimizer never sees its parameters."""

    def __init__(self, model: MiniMindForCausalLM):
        self.model = model.eval().requires_grad_(False)

    def to_run(self, module: MiniMindModule) -> None:
        """Follow the trained model: same device, and the run's parameter dtype."""
        self.model.to(device=module.device, dtype=run_param_dtype(module))


def load_frozen(path: str, model_fields: dict[str, Any] | None, tokenizer: Any, role: str) -> LoadedCheckpoint:
    """A checkpoint an objective reads (`role`: teacher, reference), from any source the tools load
    (`model_fields`: the shape of a bare .pth); refused when it was trained with another tokenizer than
    the run's, since its distributions would not be over the same tokens."""
    loaded = load_checkpoint(path, model_fields)
    theirs = resolve_tokenizer(loaded)
    if theirs.get_vocab() != tokenizer.get_vocab():
        raise ConfigurationError(
            f"the {role} {loaded.path} was trained with another tokenizer ({len(theirs)} tokens) than this run's "
            f"({len(tokenizer)} tokens), so their next-token distributions are not over the same tokens: "
            f"train with the {role}'s tokenizer (data.tokenizer=<the {role}'s>), or choose a {role} trained with "
            "this one")
    return loaded


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


class PinnedModel:
    """Where a frozen model comes from, its record, and the model once `prepare`d (`release` drops it)."""

    def __init__(self, role: str, key: str, path: str | None, shape: str | dict[str, Any] | None, *, stage: str,
                 resuming: bool, missing: str, init_from: str | None = None):
        """role: what the stage calls it (reference, teacher), also the key of its record in the objective's
        extra state; key: the config key that names it (`ref`, `teacher`); path: `<key>=PATH`; shape: a bare
        .pth's (`<key>_model=`: a preset name, or config fields). init_from: the run's, the model's default
        when no path is given (a reference's; a teacher has none). resuming: whether the run resumes a
        checkpoint. missing: the refusal when nothing names the model (raised now, before any data is read)."""
        self.role, self.key, self.stage = role, key, stage
        self.path = None if path in (None, "") else str(path)
        self.model_fields = preset_fields(shape) if isinstance(shape, str) else shape
        if self.path is None and init_from in (None, "") and not resuming:
            raise ConfigurationError(missing)
        self.frozen: Frozen | None = None
        self.record: dict[str, Any] | None = None

    @classmethod
    def reference(cls, ref: str | None, ref_model: str | dict[str, Any] | None, *, stage: str,
                  init_from: str | None, resuming: bool, or_else: str = "") -> PinnedModel:
        """The frozen reference of a preference or RL stage (`ref=`, `ref_model=`; default: the init weights).
        or_else: another way out when there is none, for the refusal."""
        return cls("reference", "ref", ref, ref_model, stage=stage, resuming=resuming, init_from=init_from,
                   missing=f"{stage} measures the policy against a reference model, and none was given: start from "
                           "the weights to align with init_from=<an SFT run dir, .ckpt, .pth or Hugging Face dir> "
                           f"(they are also the reference), or give ref=PATH{or_else}")

    @property
    def model(self) -> MiniMindForCausalLM:
        if self.frozen is None:
            raise RuntimeError(f"the {self.role} model was released")
        return self.frozen.model

    def prepare(self, *, tokenizer: Any, model_config: MiniMindConfig, init: InitWeights | None,
                resume: str | None) -> None:
        """Build the model: the one recorded in the checkpoint `resume` continues, else `<key>=PATH`, else
        the init weights."""
        if resume is not None:
            model = self._recorded((recorded_state(resume) or {}).get(self.role))
        elif self.path is not None:
            loaded = load_frozen(self.path, self.model_fields, tokenizer, self.role)
            model, source = loaded.model, loaded.path
        else:  # the init weights (checked in __init__: the run starts from some)
            model, source = _build(model_config.to_dict(), init.state, f"init_from={init.path}"), init.path
        if resume is None:
            self.record = {"path": str(Path(source).resolve()), "config": model.config.to_dict(),
                           "fingerprint": weights_fingerprint(model)}
        self.frozen = Frozen(model)

    def _recorded(self, recorded: dict[str, Any] | None) -> MiniMindForCausalLM:
        role = self.role
        if not recorded or not {"path", "config", "fingerprint"} <= set(recorded):
            raise ConfigurationError(
                f"the checkpoint to resume records no {role} model, so it is not a checkpoint of a {self.stage} "
                "run: resume the run it belongs to, or start a new run from its weights with init_from=")
        path = recorded["path"]
        if self.path is not None and Path(self.path).exists() and checkpoint_kind(self.path)[1].resolve() != Path(path):
            raise ConfigurationError(
                f"{self.key}={self.path}, but the run being resumed was started with the {role} {path}: a resumed "
                f"run keeps its {role}; drop {self.key}= (or start a new run)")
        if not Path(path).exists():
            raise ConfigurationError(f"the {role} of the run being resumed, {path}, no longer exists: restore it "
                                     "to resume, or start a new run")
        _, _, _, state, _ = read_weights(path, recorded["config"], what=role)
        model = _build(recorded["config"], state, f"the {role} {path}")
        if weights_fingerprint(model) != recorded["fingerprint"]:
            raise ConfigurationError(
                f"the {role} {path} has changed since the run being resumed was started (its weights differ), so "
                "resuming would not continue the same run: restore the original weights, or start a new run")
        self.record = dict(recorded)
        return model

    def release(self) -> None:
        """Drop the model (what it computes is kept elsewhere): only the record stays."""
        self.frozen = None
