"""``DerivaMLConfig``: which catalog a configured run records to, as a config value.

It selects the embedded store (a folder) or a DERIVA server, and, unlike upstream's, can be
built anywhere: in a config module, a test, a notebook, not only inside a running Hydra app::

    DerivaMLConfig()                                  # $DERIVA_CATALOG, else .deriva at the project root
    DerivaMLConfig(catalog="/data/catalogs/cifar")    # an existing embedded catalog
    DerivaMLConfig(catalog="runs/.deriva", create=True)   # one made on first use
    DerivaMLConfig(hostname="www.example.org", catalog_id="52")   # a server

In a hydra-zen store: ``store(group="deriva_ml")(DerivaMLConfig(...), name="default_deriva")``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, model_validator

from pytest_deriva.catalog.embedded import is_embedded_catalog
from pytest_deriva.catalog.schema import ML_SCHEMA
from pytest_deriva.exceptions import DerivaMLConfigurationError

if TYPE_CHECKING:
    from pytest_deriva.ml import DerivaML

__all__ = ["DerivaMLConfig", "hydra_output_dir"]


def hydra_output_dir() -> Path | None:
    """The output folder of the running Hydra job, or ``None`` outside one."""
    if "hydra" not in sys.modules:  # Hydra cannot be running: do not pay for importing it
        return None
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return None
    hc: Any = HydraConfig.get()
    out = OmegaConf.select(hc, "runtime.output_dir", default=None)  # unset outside a job (--cfg)
    return Path(out) if out else None


class DerivaMLConfig(BaseModel):
    """How to reach the catalog: an embedded store in a folder, or a DERIVA server.

    Attributes:
        catalog: A catalog folder, or ``https://host/ermrest/catalog/N``. A folder named here
            must hold a catalog already, unless ``create`` is set. Default (with no
            ``hostname``): ``$DERIVA_CATALOG``, else ``.deriva`` at the project root, made on
            first use.
        create: Make the catalog named by ``catalog`` if the folder does not exist yet.
        hostname: A DERIVA server (with ``catalog_id``), as upstream.
        catalog_id: The catalog's id on ``hostname`` (default 1).
        domain_schema, project_name, working_dir, cache_dir, ml_schema, logging_level,
        credential, clean_execution_dir: passed to :class:`~pytest_deriva.DerivaML`.
        hydra_runtime_output_dir: Hydra's output folder of the run, whose files each execution
            records; filled in from Hydra when built inside a running Hydra job.
        deriva_logging_level, use_minid, check_auth: accepted for upstream configs; unused by
            the embedded store.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    catalog: str | Path | None = None
    create: bool = False
    hostname: str | None = None
    catalog_id: str | int | None = None
    domain_schema: str | None = None
    project_name: str | None = None
    cache_dir: str | Path | None = None
    working_dir: str | Path | None = None
    hydra_runtime_output_dir: str | Path | None = None
    ml_schema: str = ML_SCHEMA
    logging_level: Any = logging.WARNING
    deriva_logging_level: Any = logging.WARNING
    credential: Any = None
    use_minid: bool = True
    check_auth: bool = True
    clean_execution_dir: bool = True

    @model_validator(mode="after")
    def _check_catalog(self) -> DerivaMLConfig:
        if self.hydra_runtime_output_dir is None:
            self.hydra_runtime_output_dir = hydra_output_dir()
        if self.is_server:
            return self
        if self.catalog is None:
            return self  # the default catalog is made on first use, like DerivaML()'s
        path = Path(self.catalog).expanduser().absolute()
        if not path.exists():
            if self.create:
                return self
            raise DerivaMLConfigurationError(
                f"Catalog {self.catalog!r} does not exist ({path}). Name an existing catalog folder, "
                "or set create=True (deriva_ml.create=true on the command line) to make a new catalog there."
            )
        if not path.is_dir():
            raise DerivaMLConfigurationError(
                f"Catalog {self.catalog!r} ({path}) is a file, not a catalog folder; name the folder of a catalog."
            )
        if not is_embedded_catalog(path):
            if self.create and not any(path.iterdir()):
                return self  # an empty folder may become a catalog
            raise DerivaMLConfigurationError(
                f"{path} is not a pytest-deriva catalog (it has no catalog.sqlite). Name the folder that "
                "holds one (the default is .deriva at the project root), or an empty/new folder with create=True."
            )
        return self

    @property
    def is_server(self) -> bool:
        """Whether this names a DERIVA server rather than an embedded store."""
        return self.hostname is not None or str(self.catalog or "").startswith(("http://", "https://"))

    @property
    def location(self) -> str:
        """Where the catalog is: a folder or a server URL (what ``DerivaML(catalog=...)`` takes)."""
        if self.hostname is not None:
            return f"https://{self.hostname}/ermrest/catalog/{self.catalog_id if self.catalog_id is not None else 1}"
        if self.catalog is not None:
            text = str(self.catalog)
            return text if self.is_server else str(Path(text).expanduser().absolute())
        from pytest_deriva.ml.deriva_ml import find_project_root

        return os.environ.get("DERIVA_CATALOG") or str(find_project_root() / ".deriva")

    @classmethod
    def coerce(cls, value: Any) -> DerivaMLConfig:
        """A ``DerivaMLConfig`` from what a config may hold: one already, a mapping of its fields
        (or an OmegaConf node), a catalog location string, or ``None`` (the default catalog)."""
        if isinstance(value, DerivaMLConfig):
            return value
        if value is None:
            return cls()
        if isinstance(value, str | os.PathLike):
            return cls(catalog=os.fspath(value))
        if isinstance(value, Mapping) or hasattr(value, "keys"):  # a dict or an OmegaConf DictConfig
            fields = {str(k): value[k] for k in value if not str(k).startswith("_")}
            return cls(**fields)
        raise DerivaMLConfigurationError(
            f"deriva_ml must be a DerivaMLConfig, a mapping of its fields or a catalog location, "
            f"not {type(value).__name__} ({value!r})."
        )

    def ml_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``DerivaML(...)`` this config stands for."""
        kwargs: dict[str, Any] = {
            "domain_schema": self.domain_schema,
            "project_name": self.project_name,
            "working_dir": self.working_dir,
            "cache_dir": self.cache_dir,
            "hydra_runtime_output_dir": self.hydra_runtime_output_dir,
            "ml_schema": self.ml_schema,
            "logging_level": self.logging_level,
            "credential": self.credential,
            "clean_execution_dir": self.clean_execution_dir,
        }
        if self.hostname is not None:
            kwargs.update(hostname=self.hostname, catalog_id=self.catalog_id if self.catalog_id is not None else 1)
        else:
            kwargs["catalog"] = self.location
        return kwargs

    def instantiate(self, ml_class: type[DerivaML] | None = None) -> DerivaML:
        """Open the catalog: a ``DerivaML`` (or ``ml_class``) handle on it."""
        if ml_class is None:
            from pytest_deriva.ml import DerivaML

            ml_class = DerivaML
        return ml_class(**self.ml_arguments())
