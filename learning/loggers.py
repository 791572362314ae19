"""Where a run's scalars go besides ``metrics.jsonl``: TensorBoard (the default), Weights & Biases, or nowhere.

``--logger tensorboard|wandb|none`` on every training command picks one; :class:`~unio4.learning.curves.CurveLogger`
writes through it. Every logger has the same three calls: ``scalar(tag, value, step)``, ``image(tag, path)``
(the run's curve PNGs, once at the end) and ``close()``.

- ``tensorboard``: ``RUN/tb/`` events, exactly as before (scalars only; the PNGs stay files in the run).
- ``wandb``: the same scalars at the same steps, the run's resolved configs as the W&B config and the curve
  PNGs as images, in a W&B run whose files land in ``RUN/wandb/``. Without an API key (``WANDB_API_KEY``,
  or ``wandb login``'s ``~/.netrc`` entry) and without ``WANDB_MODE`` set, the run is recorded offline:
  ``wandb sync RUN/wandb/offline-run-*`` uploads it later. W&B never stops a run: a failed start or
  write is one warning line and training goes on.
- ``none``: no events at all (``metrics.jsonl`` and the PNGs are still written).
"""

from __future__ import annotations

import importlib.util
import netrc
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import urlparse

KINDS = ("tensorboard", "wandb", "none")
WANDB_PROJECT = "unio4"  # the W&B project unless WANDB_PROJECT says otherwise
WANDB_INIT_TIMEOUT_S = 30.0  # a server that does not answer: the run goes on offline after this
WANDB_FINISH_TIMEOUT_S = 60.0  # at the end, wait at most this for uploads; what is left stays for `wandb sync`


class Logger(Protocol):
    """What :class:`~unio4.learning.curves.CurveLogger` writes through."""

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Record ``value`` under ``tag`` at ``step`` (steps never go back within a run)."""

    def image(self, tag: str, path: Path) -> None:
        """Attach the picture at ``path`` (a curve PNG) under ``tag``."""

    def close(self) -> None:
        """Flush and finish; nothing is written after this."""


def check_logger(kind: str) -> None:
    """Refuse, before any work, a logger whose package is missing (one line; the CLI exits 2)."""
    if kind not in KINDS:
        raise ValueError(f"--logger {kind}: expected one of {', '.join(KINDS)}")
    if kind == "wandb" and importlib.util.find_spec("wandb") is None:
        raise ImportError("--logger wandb needs the wandb package: pip install 'unio4[wandb]'")


def make_logger(
    kind: str, run_dir: Path, configs: Mapping[str, Any] | None = None, name: str | None = None, job_type: str | None = None
) -> Logger:
    """The logger ``kind`` (one of :data:`KINDS`) for the run in ``run_dir``; ``configs`` and ``name`` label a W&B run."""
    if kind == "tensorboard":
        return TensorBoardLogger(run_dir)
    if kind == "wandb":
        return WandbLogger(run_dir, configs or {}, name, job_type)
    if kind == "none":
        return NullLogger()
    raise ValueError(f"logger {kind!r}: expected one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class LoggerSpec:
    """A logger to open once the run directory exists (a training function may make several runs)."""

    kind: str = "tensorboard"
    configs: Mapping[str, Any] | None = None
    name: str | None = None
    job_type: str | None = None

    def open(self, run_dir: Path) -> Logger:
        """The logger, opened for the run in ``run_dir``."""
        return make_logger(self.kind, run_dir, self.configs, self.name, self.job_type)


class NullLogger:
    """``--logger none``: writes nothing."""

    def scalar(self, tag: str, value: float, step: int) -> None:
        """See :meth:`Logger.scalar`."""

    def image(self, tag: str, path: Path) -> None:
        """See :meth:`Logger.image`."""

    def close(self) -> None:
        """See :meth:`Logger.close`."""


class TensorBoardLogger:
    """Scalars to ``run_dir/tb`` (the PNGs are not copied into the events)."""

    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tb"))

    def scalar(self, tag: str, value: float, step: int) -> None:
        """See :meth:`Logger.scalar`."""
        self.writer.add_scalar(tag, value, step)

    def image(self, tag: str, path: Path) -> None:
        """See :meth:`Logger.image`."""

    def close(self) -> None:
        """See :meth:`Logger.close`."""
        self.writer.close()


def _warn(text: str) -> None:
    print(f"unio4: warning: {text}", file=sys.stderr, flush=True)


def has_wandb_credentials() -> bool:
    """Whether W&B would find an API key: ``WANDB_API_KEY``, an identity token, or a ``.netrc`` entry for its host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return path.is_file() and netrc.netrc(str(path)).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    """``WANDB_MODE`` when set; otherwise online with an API key and offline without one."""
    return os.environ.get("WANDB_MODE") or ("online" if has_wandb_credentials() else "offline")


class WandbLogger:
    """A W&B run in ``run_dir/wandb``; every failure is one warning, after which it writes nothing more."""

    def __init__(self, run_dir: Path, configs: Mapping[str, Any], name: str | None, job_type: str | None) -> None:
        import wandb

        from unio4.configs.loader import to_dict

        self._wandb = wandb
        run_dir.mkdir(parents=True, exist_ok=True)
        self._step: int | None = None
        self._row: dict[str, Any] = {}  # the current step's values, logged as one row when the step moves on
        mode = wandb_mode()
        if mode == "offline" and not os.environ.get("WANDB_MODE"):
            print(f"W&B: no API key configured: logging offline to {run_dir / 'wandb'} (upload later: wandb sync)", flush=True)
        kwargs: dict[str, Any] = {
            "project": os.environ.get("WANDB_PROJECT", WANDB_PROJECT),
            "name": name,
            "job_type": job_type,
            "dir": str(run_dir),
            "config": {key: to_dict(value) for key, value in configs.items()},
        }
        self.run: Any = None
        for attempt in (mode, "offline"):  # a server that cannot be reached: record offline instead
            try:
                settings = wandb.Settings(
                    mode=cast(Any, attempt),  # WANDB_MODE's word, checked by W&B
                    init_timeout=WANDB_INIT_TIMEOUT_S,
                    finish_timeout=WANDB_FINISH_TIMEOUT_S,
                    console="off",  # stdout stays the terminal's (progress lines, Rich bars)
                    reinit="create_new",  # bench walk: one run per seed, in one process
                )
                self.run = wandb.init(settings=settings, **kwargs)
                break
            except Exception as exc:  # noqa: BLE001 - W&B must never stop training
                if attempt == "offline":
                    _warn(f"W&B could not start ({_one_line(exc)}); training goes on without it")
                else:
                    _warn(f"W&B could not start {attempt} ({_one_line(exc)}); trying offline")
            if mode == "offline":
                break

    def _failed(self, exc: BaseException) -> None:
        _warn(f"W&B stopped logging ({_one_line(exc)}); training goes on without it")
        run, self.run = self.run, None
        try:
            run.finish(exit_code=1)
        except Exception:  # noqa: BLE001 - already warned
            pass

    def scalar(self, tag: str, value: float, step: int) -> None:
        """See :meth:`Logger.scalar`."""
        if self.run is None:
            return
        if step != self._step:
            self._flush()
        self._step = int(step)
        self._row[tag] = value

    def _flush(self) -> None:
        """Log the scalars of the current step as one row."""
        if self.run is None or not self._row:
            return
        row, self._row = self._row, {}
        try:
            self.run.log(row, step=self._step)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def image(self, tag: str, path: Path) -> None:
        """See :meth:`Logger.image`."""
        if self.run is None or not Path(path).is_file():
            return
        try:
            self._row[tag] = self._wandb.Image(str(path))
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    def close(self) -> None:
        """See :meth:`Logger.close`."""
        self._flush()
        if self.run is None:
            return
        run, self.run = self.run, None
        try:
            run.finish()
        except Exception as exc:  # noqa: BLE001
            _warn(f"W&B could not finish the run ({_one_line(exc)}); what it wrote stays in its wandb/ folder")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:199] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
