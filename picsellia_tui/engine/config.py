"""Settings: TOML file + environment (PICSELLIA_TUI_<KEY>, nested with __).

The file is the first of: `--config PATH`, `$PICSELLIA_TUI_CONFIG`, the user config
dir's `config.toml`. Environment variables win over the file; every key of
config.example.toml can be set that way.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from picsellia_tui.engine.hostconfig import HostConfig
from picsellia_tui.storage.domain import check_memory_limit, parse_memory

APP = "picsellia-tui"
BUNDLED_PROCESSINGS = Path(__file__).resolve().parents[2] / "processings"


class ConfigError(Exception):
    pass


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "config.toml"


def login_name() -> str:
    """The OS login name: what an SSH session logs in as."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return f"uid{os.getuid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PICSELLIA_TUI_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    organization: str = "default"
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(APP)))
    database: Path | None = None  # default: <data_dir>/picsellia.db
    executor: Literal["docker", "process"] = "docker"
    default_host: str = "local"
    hosts: list[HostConfig] = Field(default_factory=lambda: [HostConfig(name="local", url="local")])
    concurrency: int = Field(default=2, ge=1, le=64)
    # Cores a run may use unless its processing says (capped at the host's count).
    default_cpu: float | None = Field(default=2.0, gt=0)
    default_memory: str | None = "4g"
    pids_limit: int = Field(default=1024, ge=16)
    output_quota: str = "4g"
    import_quota: str = "64g"
    cancel_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    keep_failed_containers: bool = False
    log_retention_days: int = Field(default=0, ge=0)  # 0 keeps logs forever
    processings_dir: Path = BUNDLED_PROCESSINGS
    export_dir: Path = Field(default_factory=lambda: Path.home() / "picsellia-logs")
    lease_timeout_seconds: float = Field(default=15.0, ge=2)
    heartbeat_seconds: float = Field(default=3.0, gt=0)
    reconcile_seconds: float = Field(default=30.0, gt=0)
    engine_idle_seconds: float = Field(default=60.0, ge=0)
    notify_terminal: Literal["off", "osc9", "osc777", "bell"] = "off"
    user: str = Field(default_factory=login_name)
    # The file these settings were read from (None: defaults and environment only),
    # and whether another process can load the same ones (from that file, the
    # environment and root_args()): only then may the app use a shared engine.
    _config_file: Path | None = PrivateAttr(default=None)
    _reproducible: bool = PrivateAttr(default=False)
    # What these settings were made of (control_client.settings_key), when they
    # came from load_settings: a running engine serves only commands made alike.
    _source_key: str | None = PrivateAttr(default=None)

    @field_validator("data_dir", "database", "processings_dir", "export_dir")
    @classmethod
    def _home(cls, v: Path | None) -> Path | None:
        # "~/ws" in a config file means the home folder, not a folder named "~".
        return v.expanduser() if v is not None else None

    @field_validator("output_quota", "import_quota")
    @classmethod
    def _size(cls, v: str) -> str:
        parse_memory(v)
        return v

    @field_validator("default_memory")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        if v is not None:
            check_memory_limit(v)
        return v

    @model_validator(mode="after")
    def _host_known(self) -> Settings:
        names = [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            raise ValueError("two [[hosts]] share a name")
        if "local" not in names:
            # Adding a remote host does not take the local daemon away: `local` stays
            # (and stays the default unless default_host names another).
            self.hosts = [HostConfig(name="local", url="local"), *self.hosts]
            names.insert(0, "local")
        if self.default_host not in names:
            raise ValueError(f"default_host {self.default_host!r} is not one of the hosts: {names}")
        return self

    @property
    def database_path(self) -> Path:
        return self.database or self.data_dir / "picsellia.db"

    @property
    def config_file(self) -> Path | None:
        return self._config_file

    @property
    def reproducible(self) -> bool:
        return self._reproducible

    def root_args(self) -> list[str]:
        """Command-line root options opening this same workspace in another
        process (the background engine): the file, plus what overrides may change;
        the environment is inherited."""
        args = ["--config", str(self._config_file)] if self._config_file else []
        return [*args, "--data-dir", str(self.data_dir), "--executor", self.executor]

    @property
    def output_quota_bytes(self) -> int:
        return parse_memory(self.output_quota)

    @property
    def import_quota_bytes(self) -> int:
        return parse_memory(self.import_quota)

    def host(self, name: str | None) -> HostConfig:
        name = name or self.default_host
        for h in self.hosts:
            if h.name == name:
                return h
        raise ConfigError(
            f"unknown host {name!r}; configured: {', '.join(h.name for h in self.hosts)}"
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _CONFIG_FILE
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


_CONFIG_FILE: Path | None = None


def config_file(explicit: Path | None = None) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return explicit
    env = os.environ.get("PICSELLIA_TUI_CONFIG")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"PICSELLIA_TUI_CONFIG={env} does not exist")
        return p
    p = default_config_path()
    return p if p.is_file() else None


def load_settings(explicit: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the config lookup; one-line ConfigError on any problem."""
    global _CONFIG_FILE
    path = config_file(explicit)
    _CONFIG_FILE = path
    try:
        settings = Settings(**overrides)
        settings._config_file = path
        settings._reproducible = set(overrides) <= {"data_dir", "executor"}
        from picsellia_tui.engine.control_client import settings_key

        settings._source_key = settings_key(path, overrides)
        return settings
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "config"
        src = f" in {path}" if path else ""
        raise ConfigError(f"config{src}: {where}: {err['msg']}") from None
    except (OSError, ValueError) as exc:  # unreadable or broken TOML
        raise ConfigError(f"config {path}: {exc}") from None
    finally:
        _CONFIG_FILE = None
