"""Hydra composition of conf/: the pipeline's params.yaml and ad-hoc runs.

`dvc exp run -S ...` composes params.yaml itself (hydra.enabled in
.dvc/config); `python -m pipeline.params [OVERRIDES]` does the same by hand,
after editing conf/.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from pipeline.config import PARAMS_FILE, PipelineConfig
from pipeline.core.atomic import write_text
from pipeline.core.errors import PipelineError, cli
from pipeline.core.schema import validate

CONF_DIR = Path("conf")


def config_dir(config_name: str) -> Path:
    """conf/ as an absolute path, once it is found to hold <config_name>.yaml."""
    if not (CONF_DIR / f"{config_name}.yaml").exists():
        raise PipelineError(f"{CONF_DIR / config_name}.yaml not found: run from the repository root")
    return CONF_DIR.resolve()


def bad_config(error: Exception) -> PipelineError:
    # Hydra spreads one message over several lines; keep it on one.
    return PipelineError("bad override or config: " + " ".join(str(error).split()))


def compose(config_name: str, overrides: list[str] = ()) -> dict:
    """Compose conf/<config_name>.yaml with Hydra overrides into a plain dict."""
    return compose_choosing(config_name, overrides)[0]


def compose_choosing(config_name: str, overrides: list[str] = ()) -> tuple[dict, dict[str, str]]:
    """compose(), and which option of each config group it chose ({"dataset": "moons", ...})."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(str(config_dir(config_name)), version_base="1.3"):
            composed = hydra_compose(config_name, list(overrides), return_hydra_config=True)
            choices = OmegaConf.to_container(composed.hydra.runtime.choices)
            with open_dict(composed):
                del composed["hydra"]
            return OmegaConf.to_container(composed, resolve=True), choices
    except (HydraException, OmegaConfBaseException) as error:
        raise bad_config(error) from None


def render(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


@cli
def main(argv: list[str] | None = None) -> None:
    overrides = sys.argv[1:] if argv is None else argv
    data = compose("config", overrides)
    validate(PipelineConfig, data, "conf/config.yaml")
    write_text(PARAMS_FILE, render(data))
    print(f"wrote {PARAMS_FILE}")


if __name__ == "__main__":
    main()
