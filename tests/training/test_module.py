"""The LightningModule's own behaviour under a real Trainer."""

import lightning as L
import torch

from minimind.model import MiniMindConfig
from minimind.training.module import MiniMindModule


class GradientsAfterStep(L.Callback):
    """Gradients stay on the parameters until the next step: they are what the optimizer used."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        self.norm = torch.nn.utils.get_total_norm(grads).item()
        self.logged = trainer.callback_metrics["train/grad_norm"].item()


def test_logged_grad_norm_is_before_clipping_and_the_step_uses_clipped_gradients():
    config = MiniMindConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                            vocab_size=64, max_position_embeddings=64)
    ids = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(0))
    probe = GradientsAfterStep()
    trainer = L.Trainer(max_steps=1, gradient_clip_val=0.01, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[probe], accelerator="cpu")
    loader = torch.utils.data.DataLoader([{"input_ids": ids, "labels": ids}], batch_size=None)
    trainer.fit(MiniMindModule(config), train_dataloaders=loader)
    assert probe.logged > 0.01  # the raw norm, far above the threshold
    assert abs(probe.norm - 0.01) < 1e-4  # what the optimizer stepped with
