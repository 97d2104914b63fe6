"""LoRA: the adapted layer, merging, and upstream MiniMind's adapter file format in both directions.

Two independent references: `peft` (the de-facto LoRA library: same forward, same meaning of
alpha) and upstream's reader, reimplemented below from its documented key format
(`model/model_lora.py`: `apply_lora` adds `lora.A` / `lora.B` to every square nn.Linear and adds
B A x to its output; `load_lora` loads `{module}.lora.A.weight` / `.lora.B.weight`, dropping a
`module.` prefix).
"""

import pytest
import torch
from torch import nn

from minimind.checkpoints import CheckpointError, load_checkpoint, save_upstream_pth
from minimind.checkpoints.lora import Adapter, merge_lora, read_adapter, save_adapter
from minimind.errors import ConfigurationError
from minimind.model.lora import LoRAConfig, LoRALinear, adapter_state, add_lora, target_names


# --- upstream's reader, from its key format ----------------------------------------------------------

class UpstreamAdapter(nn.Module):
    def __init__(self, width: int, rank: int):
        super().__init__()
        self.A = nn.Linear(width, rank, bias=False)
        self.B = nn.Linear(rank, width, bias=False)


def upstream_apply_and_load(model: nn.Module, path, rank: int = 16) -> None:
    """What upstream's apply_lora + load_lora do to a model: every square nn.Linear gets `lora`
    (A, B), its output becomes W x + B A x, and the file's tensors are loaded strictly per module."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and module.in_features == module.out_features:
            module.lora = UpstreamAdapter(module.in_features, rank)
            module.forward = lambda x, w=module.weight, lora=module.lora: x @ w.T + lora.B(lora.A(x))
            module.lora.load_state_dict({k.replace(f"{name}.lora.", ""): v for k, v in state.items()
                                         if f"{name}.lora." in k})  # strict: A.weight and B.weight, nothing else


def trained_adapters(model: nn.Module, seed: int = 3) -> None:
    """Give the adapters values training would (B is zero at the start, which would test nothing)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if ".lora." in name:
            p.data = torch.randn(p.shape, generator=g) * 0.05


def logits(model, tokens):
    with torch.no_grad():
        return model(tokens).logits


# --- the adapted model ---------------------------------------------------------------------------------

def test_upstream_defaults_adapt_the_square_layers_and_start_at_the_base(make_model, tokens):
    model = make_model()
    base = logits(model, tokens)
    names = add_lora(model, LoRAConfig())
    # GQA: q_proj and o_proj are hidden x hidden; k/v (to 2 kv heads), the MLP and lm_head are not square.
    assert names == [f"model.layers.{i}.self_attn.{p}" for i in range(2) for p in ("q_proj", "o_proj")]
    assert all(isinstance(model.get_submodule(n), LoRALinear) for n in names)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.lora.{m}.weight" for n in names for m in "AB"}
    a = model.get_submodule(names[0]).lora.A.weight
    assert a.shape == (16, 64) and abs(a.std().item() - 0.02) < 0.003  # upstream: A ~ N(0, 0.02)
    assert all(not model.get_submodule(n).lora.B.weight.any() for n in names)  # B = 0 ...
    torch.testing.assert_close(logits(model, tokens), base, rtol=0, atol=0)  # ... so training starts at the base
    # base parameters keep their names: a state dict with the adapters is upstream's layout
    assert "model.layers.0.self_attn.q_proj.weight" in model.state_dict()
    assert set(adapter_state(model)) == {f"{n}.lora.{m}.weight" for n in names for m in "AB"}


@pytest.mark.parametrize("targets,expected", [
    (["*.q_proj", "*.v_proj"], ["self_attn.q_proj", "self_attn.v_proj"]),
    (["square", "*.mlp.gate_proj"], ["self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj"]),
])
def test_targets_are_module_name_patterns(make_model, targets, expected):
    names = target_names(make_model(), targets)
    assert names == [f"model.layers.{i}.{e}" for i in range(2) for e in expected]


def test_unusable_targets_and_settings_are_refused(make_model):
    with pytest.raises(ConfigurationError, match=r"'\*\.qproj' matches no linear layer.*model\.layers\.N\.self_attn\.q_proj"):
        target_names(make_model(), ["square", "*.qproj"])
    with pytest.raises(ConfigurationError, match="tie_word_embeddings"):
        target_names(make_model(tie_word_embeddings=True), ["lm_head"])
    with pytest.raises(ConfigurationError, match="rank=0 must be an integer >= 1"):
        LoRAConfig(rank=0)
    with pytest.raises(ConfigurationError, match="alpha=-1 must be > 0"):
        LoRAConfig(alpha=-1)
    with pytest.raises(ConfigurationError, match="dropout=1.0 must be in"):
        LoRAConfig(dropout=1.0)


def test_forward_equals_peft_with_the_same_adapters(make_model, tokens):
    """alpha means what it means in peft (scaling alpha / r), on any targets; dropout only in training."""
    from peft import LoraConfig, inject_adapter_in_model, set_peft_model_state_dict

    ours = make_model(tie_word_embeddings=False)
    theirs = make_model(tie_word_embeddings=False)
    config = LoRAConfig(rank=4, alpha=12, targets=["square", "*.down_proj", "lm_head"], dropout=0.1)
    names = add_lora(ours, config)
    trained_adapters(ours)
    theirs = inject_adapter_in_model(LoraConfig(r=4, lora_alpha=12, target_modules=names, lora_dropout=0.1), theirs)
    renamed = {k.replace(".lora.A.", ".lora_A.").replace(".lora.B.", ".lora_B."): v
               for k, v in adapter_state(ours).items()}
    assert not set_peft_model_state_dict(theirs, renamed).unexpected_keys
    theirs.eval(), ours.eval()
    torch.testing.assert_close(logits(ours, tokens), logits(theirs, tokens), rtol=0, atol=1e-5)


def test_merged_weights_compute_the_adapted_model(make_model, tokens):
    adapted = make_model()
    base_state = {k: v.clone() for k, v in adapted.state_dict().items()}
    config = LoRAConfig(rank=8, alpha=4, targets=["square", "*.up_proj"])
    add_lora(adapted, config)
    trained_adapters(adapted)
    merged_state = merge_lora(base_state, Adapter(adapter_state(adapted), config.scaling, "test"))
    merged = make_model()
    merged.load_state_dict(merged_state, strict=True)
    assert not any(".lora." in k for k in merged.state_dict())
    torch.testing.assert_close(logits(merged, tokens), logits(adapted, tokens), rtol=0, atol=1e-5)
    for name, value in base_state.items():  # untouched weights are the base's, exactly
        if not name.endswith(("q_proj.weight", "o_proj.weight", "up_proj.weight")):
            assert torch.equal(merged_state[name], value), name


# --- upstream's adapter files, both ways --------------------------------------------------------------

def test_our_adapter_file_loads_with_upstreams_reader(make_model, tokens, tmp_path):
    """alpha != rank: the file holds B scaled, because upstream's reader applies no scaling."""
    adapted = make_model()
    config = LoRAConfig(rank=16, alpha=32)
    add_lora(adapted, config)
    trained_adapters(adapted)
    path = save_adapter(adapted, tmp_path / "lora_medical_64.pth", config.scaling)
    saved = torch.load(path, weights_only=True)
    assert set(saved) == set(adapter_state(adapted)) and all(v.dtype == torch.float16 for v in saved.values())

    upstream = make_model()
    upstream_apply_and_load(upstream, path)
    # The same function, up to the file's fp16 rounding of A and B.
    torch.testing.assert_close(logits(upstream, tokens), logits(adapted, tokens), rtol=0, atol=2e-3)
    for name, module in upstream.named_modules():
        if hasattr(module, "lora"):
            ours = adapted.get_submodule(name).lora
            assert torch.equal(module.lora.A.weight, ours.A.weight.half().float())
            assert torch.equal(module.lora.B.weight, (2 * ours.B.weight).half().float())


def test_an_upstream_adapter_file_loads_here(make_model, tokens, tmp_path):
    """A file built by upstream's naming rule (DDP-saved: `module.` prefix), fp16, on an upstream .pth base."""
    base = make_model()
    save_upstream_pth(base, tmp_path / "full_sft_64.pth", dtype=torch.float32)
    g = torch.Generator().manual_seed(7)
    state = {}
    for name, module in base.named_modules():
        if isinstance(module, nn.Linear) and module.in_features == module.out_features:
            state[f"module.{name}.lora.A.weight"] = (torch.randn(16, 64, generator=g) * 0.02).half()
            state[f"module.{name}.lora.B.weight"] = (torch.randn(64, 16, generator=g) * 0.02).half()
    torch.save(state, tmp_path / "lora_identity_64.pth")

    loaded = load_checkpoint(tmp_path / "full_sft_64.pth", base.config, lora=tmp_path / "lora_identity_64.pth")
    assert "lora_identity_64.pth merged" in loaded.config_source
    reference = make_model()
    upstream_apply_and_load(reference, tmp_path / "lora_identity_64.pth")
    torch.testing.assert_close(logits(loaded.model, tokens), logits(reference, tokens), rtol=0, atol=1e-5)


def test_adapters_that_do_not_fit_are_refused(make_model, tmp_path):
    wide = make_model(hidden_size=96, num_attention_heads=4, num_key_value_heads=2)
    add_lora(wide, LoRAConfig())
    path = save_adapter(wide, tmp_path / "lora_medical_96.pth")
    base = make_model()
    save_upstream_pth(base, tmp_path / "full_sft_64.pth")
    with pytest.raises(CheckpointError, match=r"does not fit this base model(.|\n)*model\.layers\.0-1\.self_attn\."
                                              r"o_proj\.lora: B \(96, 16\) @ A \(16, 96\) does not fit the base weight"):
        load_checkpoint(tmp_path / "full_sft_64.pth", base.config, lora=path)
    with pytest.raises(CheckpointError, match="is a LoRA adapter .* not a model: give the model it was trained on"):
        load_checkpoint(path, base.config)
    with pytest.raises(CheckpointError, match="is not a LoRA adapter"):
        read_adapter(tmp_path / "full_sft_64.pth")
