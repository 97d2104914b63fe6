"""What a run dir is and what the user asked for: the one place that reads both.

A training run dir holds `config.yaml` (the resolved config), `summary.json`, `metrics.csv`
and `checkpoints/`; Hydra adds `.hydra/` (its own copy of the config and the overrides).
Overrides are `key=value` strings as typed on the command line (`+`/`~` prefixes allowed);
`hydra.*` ones configure Hydra itself and are never part of a run's identity.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

RUN_CONFIG = "config.yaml"
SUMMARY = "summary.json"
METRICS = "metrics.csv"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


# --- overrides ------------------------------------------------------------------------------------

def parse_override(text: str) -> tuple[str, str]:
    """"+model.hidden_size=256" -> ("model.hidden_size", "256"); "~callbacks.samples" -> (key, "~")."""
    key, sep, value = text.partition("=")
    if not sep:
        return key.lstrip("+~"), "~" if key.startswith("~") else ""
    return key.lstrip("+~"), value


def user_overrides(overrides: list[str]) -> list[str]:
    """Leave out `hydra.*` overrides (where outputs go, launcher settings): not part of what a run is."""
    return [o for o in overrides if not parse_override(o)[0].startswith("hydra.")]


def command_line_overrides() -> list[str]:
    """This job's `key=value` overrides as the user typed them (empty outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return user_overrides(list(HydraConfig.get().overrides.task))


def overridden(overrides: list[str], key: str) -> bool:
    """Whether `overrides` set `key` itself, or (for a group such as `model`) chose it or one of its fields."""
    for override in overrides:
        name = parse_override(override)[0]
        if name == key or name.startswith(key + "."):
            return True
    return False


def overrides_under(overrides: list[str], prefix: str) -> list[str]:
    """`["data.seq_len=64", "seed=1"]`, "data" -> `["seq_len=64"]`: the overrides of one node, relative to it."""
    found = []
    for override in overrides:
        key, value = parse_override(override)
        if key.startswith(prefix + "."):
            found.append(f"{key[len(prefix) + 1:]}={value}")
    return found


# --- run dirs -------------------------------------------------------------------------------------

def load_yaml(path: Path, resolve: bool = False) -> Any:
    """A YAML file as plain containers; with `resolve`, interpolations that cannot resolve stay as written."""
    cfg = OmegaConf.load(path)
    if resolve:
        try:
            return OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # Hydra's own copy may hold ${hydra:...} interpolations
            pass
    return OmegaConf.to_container(cfg, resolve=False)


def _is_run_config(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        data = load_yaml(path)
    except Exception:  # not a YAML we understand: not a run's config
        return False
    return isinstance(data, dict) and isinstance(data.get("model"), dict)


def is_run_dir(path: Path) -> bool:
    """A training run dir: it has a summary, a run config, or (a job killed early) metrics beside Hydra's files."""
    path = Path(path)
    return ((path / SUMMARY).is_file() or _is_run_config(path / RUN_CONFIG)
            or ((path / METRICS).is_file() and (path / ".hydra").is_dir()))


def find_run_dir(path: Path) -> Path | None:
    """The run dir a file or folder belongs to: a file's folder or the one above it (run/checkpoints/x.ckpt),
    a folder itself or its parent."""
    path = Path(path)
    for folder in (path.parent, path.parent.parent) if path.is_file() else (path, path.parent):
        if is_run_dir(folder):
            return folder
    return None


def run_config_file(run_dir: Path) -> Path | None:
    """The run's resolved `config.yaml`; else Hydra's `.hydra/config.yaml` (written before the job starts)."""
    for candidate in (Path(run_dir) / RUN_CONFIG, Path(run_dir) / ".hydra" / "config.yaml"):
        if candidate.is_file():
            return candidate
    return None


def run_config(run_dir: Path | None) -> dict[str, Any] | None:
    """The run's config as plain containers (None if it has none)."""
    if run_dir is None:
        return None
    path = run_config_file(run_dir)
    if path is None:
        return None
    data = load_yaml(path, resolve=True)
    return data if isinstance(data, dict) else None


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """`summary.json` of a run; None if it is missing, unreadable or not an object."""
    path = Path(run_dir) / SUMMARY
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def recorded_overrides(run_dir: Path) -> list[str] | None:
    """The overrides a run was started with: from `summary.json`, else Hydra's `.hydra/overrides.yaml`."""
    summary = read_summary(run_dir) or {}
    items = summary.get("overrides")
    if items is None:
        file = Path(run_dir) / ".hydra" / "overrides.yaml"
        try:
            items = load_yaml(file) if file.is_file() else None
        except Exception:
            items = None
    if not isinstance(items, list):
        return None
    return user_overrides([str(o) for o in items])
