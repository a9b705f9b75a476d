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


def compose(config_name: str, overrides: list[str] = (), with_choices: bool = False) -> dict:
    """Compose conf/<config_name>.yaml with Hydra overrides into a plain dict.

    with_choices adds the chosen option of each config group under "_choices".
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    if not (CONF_DIR / f"{config_name}.yaml").exists():
        raise PipelineError(f"{CONF_DIR / config_name}.yaml not found: run from the repository root")
    try:
        with initialize_config_dir(str(CONF_DIR.resolve()), version_base="1.3"):
            composed = hydra_compose(config_name, list(overrides), return_hydra_config=with_choices)
            choices = OmegaConf.to_container(composed.hydra.runtime.choices) if with_choices else None
            if with_choices:
                with open_dict(composed):
                    del composed["hydra"]
            data = OmegaConf.to_container(composed, resolve=True)
    except (HydraException, OmegaConfBaseException) as error:
        # Hydra spreads one message over several lines; keep it on one.
        raise PipelineError("bad override or config: " + " ".join(str(error).split())) from None
    if choices is not None:
        data["_choices"] = choices
    return data


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
