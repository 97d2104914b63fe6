"""Named model sizes, read from the Hydra group `conf/model/` so there is one source for both.

A preset file may start from another one (`defaults: [small, _self_]`) and change a few
fields, exactly as Hydra composes it for `python train.py model=NAME`.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from minimind.paths import CONF_DIR

PRESET_DIR = CONF_DIR / "model"


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_fields(name: str) -> dict[str, Any]:
    """The config fields of preset `name`, with its `defaults` chain applied."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown model preset {name!r}: choose one of {preset_names()} (files in {PRESET_DIR})")
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    chain = raw.pop("defaults", [])
    if "_self_" not in chain:  # Hydra's rule: a config's own fields come last unless placed
        chain.append("_self_")
    fields: dict[str, Any] = {}
    for entry in chain:
        fields.update(raw if entry == "_self_" else preset_fields(entry))
    fields.pop("_target_", None)
    return fields
