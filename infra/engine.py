"""The Pulumi engine, offline: file state backend under state/, passphrase secrets, no update checks.

Users never export variables by hand: every govctl command that drives Pulumi goes through Engine,
which prepares the environment, selects (or creates) the stack, keeps its config in step with the
stack definition in infra/stacks/<stack>.yaml, and passes Pulumi's own progress output through.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import yamlfile

from core.errors import BadInput, GovctlError
from core.paths import ROOT, STATE, TOOLS, VENV

STACKS_DIR = ROOT / "infra" / "stacks"
BACKEND_DIR = STATE / "pulumi"
# Stack config files live with the state they belong to (their encryption salt matches the
# passphrase there), not in the checkout; every command gets them through --config-file.
CONFIG_DIR = STATE / "stacks"
PASSPHRASE_FILE = STATE / "passphrase"


@dataclass(frozen=True)
class StackDefinition:
    """infra/stacks/<name>.yaml: which backend renders which topology, plus backend config."""

    name: str
    backend: str
    topology: Path
    config: dict[str, Any]
    secrets: tuple[str, ...]
    generated_secrets: tuple[str, ...]  # random values made once per stack, kept as Pulumi secrets

    @classmethod
    def load(cls, name: str) -> "StackDefinition":
        """A stack by name (infra/stacks/<name>.yaml) or by the path of a stack file."""
        path = STACKS_DIR / f"{name}.yaml"
        if name.endswith((".yaml", ".yml")) and Path(name).exists():
            path = Path(name).resolve()
            name = path.stem
        if not path.exists():
            known = ", ".join(sorted(p.stem for p in STACKS_DIR.glob("*.yaml"))) or "none"
            raise BadInput(f"unknown stack {name!r}: no {path.relative_to(ROOT)}; "
                           f"known stacks: {known} (or give a stack file's path)")
        doc = yamlfile.load(path)  # YamlInputError (BadInput) names the file and what to change
        if not isinstance(doc, dict):
            raise BadInput(f"{path}: a stack file is a mapping (backend: lab, topology: FILE)")
        missing = [k for k in ("backend", "topology") if k not in doc]
        if missing:
            raise BadInput(f"{path}: missing {', '.join(missing)} (a stack names its backend "
                           "and its topology file)")
        topology = Path(doc["topology"])
        return cls(name, doc["backend"], topology if topology.is_absolute() else ROOT / topology,
                   dict(doc.get("config") or {}), tuple(doc.get("secrets") or ()),
                   tuple(doc.get("generated_secrets") or ()))

    def pulumi_config(self) -> dict[str, str]:
        """Flat `govctl:*` config the Pulumi program reads."""
        values = {"govctl:backend": self.backend, "govctl:topology": str(self.topology)}
        for key, value in self.config.items():
            values[key if ":" in key else f"govctl:{key}"] = (
                value if isinstance(value, str) else json.dumps(value))
        return values


def _passphrase_env() -> dict[str, str]:
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
        return {}
    if not PASSPHRASE_FILE.exists():
        PASSPHRASE_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(PASSPHRASE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(PASSPHRASE_FILE)}


def pulumi_env() -> dict[str, str]:
    """The environment every Pulumi invocation runs in."""
    pulumi_bin = TOOLS / "pulumi"
    if not (pulumi_bin / "pulumi").exists():
        raise GovctlError("the Pulumi CLI is not set up (.tools/pulumi/pulumi missing): run `make setup`")
    BACKEND_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        PATH=f"{pulumi_bin}:{VENV / 'bin'}:{env.get('PATH', '')}",
        PULUMI_HOME=str(STATE / "pulumi-home"),
        PULUMI_BACKEND_URL=f"file://{BACKEND_DIR}",
        PULUMI_SKIP_UPDATE_CHECK="true",
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        PULUMI_SKIP_CONFIRMATIONS="true",
        **_passphrase_env(),
    )
    return env


def _file_identity(path: Path) -> list[int] | None:
    """What changes whenever the file is written or replaced (None when it does not exist)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


class Engine:
    """One stack of the govctl Pulumi project."""

    def __init__(self, stack: str):
        self.definition = StackDefinition.load(stack)
        self.stack = self.definition.name
        self.env = pulumi_env()
        self.config_file = CONFIG_DIR / f"Pulumi.{self.stack}.yaml"

    def _run(self, args: list[str], capture: bool = False, check: bool = True,
             stream_to_stderr: bool = False) -> subprocess.CompletedProcess:
        cmd = [str(TOOLS / "pulumi" / "pulumi"), *args]
        if capture:
            proc = subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True)
        else:
            proc = subprocess.run(cmd, cwd=ROOT, env=self.env, text=True,
                                  stdout=sys.stderr if stream_to_stderr else None)
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout or "").strip() if capture else ""
            raise GovctlError(f"pulumi {' '.join(args[:2])} failed for stack {self.stack!r}"
                              + (f":\n{detail}" if detail else " (see the output above)"))
        return proc

    # -- stack and config ---------------------------------------------------------------
    def _config_stamp(self) -> Path:
        return BACKEND_DIR / f".{self.stack}.config-digest"

    def prepare(self) -> None:
        """Validate the topology, select or create the stack, and sync its config (only on change)."""
        from infra.topology import load_topology, TopologyError

        try:
            load_topology(self.definition.topology)
        except TopologyError as err:
            raise BadInput(err.render()) from None
        config = self.definition.pulumi_config()
        digest = hashlib.sha256(json.dumps([config, self.definition.generated_secrets],
                                           sort_keys=True).encode()).hexdigest()
        stamp = self._config_stamp()
        state_file = BACKEND_DIR / ".pulumi" / "stacks" / "govctl" / f"{self.stack}.json"
        if not state_file.exists() or not self.config_file.exists():
            self._run(["stack", "select", "--create", self.stack, "--non-interactive"], capture=True)
            created = ROOT / f"Pulumi.{self.stack}.yaml"  # stack init writes it beside Pulumi.yaml
            CONFIG_DIR.mkdir(parents=True, exist_ok=True)
            if created.exists():
                created.replace(self.config_file)
            stamp.unlink(missing_ok=True)
        if stamp.exists() and stamp.read_text() == digest:
            return
        args = ["config", "set-all", "--stack", self.stack, "--config-file", str(self.config_file)]
        for key, value in config.items():
            flag = "--secret" if key.split(":", 1)[1] in self.definition.secrets else "--plaintext"
            args += [flag, f"{key}={value}"]
        for name in self.definition.generated_secrets:
            key = f"govctl:{name}"
            known = self._run(["config", "get", key, "--stack", self.stack,
                               "--config-file", str(self.config_file)], capture=True, check=False)
            if known.returncode != 0:
                args += ["--secret", f"{key}={secrets.token_urlsafe(24)}"]
        self._run(args, capture=True)
        stamp.write_text(digest)

    # -- operations ---------------------------------------------------------------------
    def _operation(self, op: str, extra: list[str], quiet: bool) -> None:
        self.prepare()
        args = [op, "--stack", self.stack, "--non-interactive", "--config-file", str(self.config_file)]
        if op in ("up", "destroy", "refresh"):
            args.append("--yes")
        self._run(args + extra, stream_to_stderr=quiet)

    def preview(self, extra: list[str] = (), quiet: bool = False) -> None:
        self._operation("preview", list(extra), quiet)

    def up(self, extra: list[str] = (), quiet: bool = False) -> None:
        self._operation("up", list(extra), quiet)

    def refresh(self, extra: list[str] = (), quiet: bool = False) -> None:
        self._operation("refresh", list(extra), quiet)

    def destroy(self, extra: list[str] = (), quiet: bool = False) -> None:
        self._operation("destroy", list(extra), quiet)

    def preview_json(self, extra: list[str] = ()) -> dict[str, Any]:
        """`pulumi preview --json`: the planned steps and the change summary."""
        self.prepare()
        proc = self._run(["preview", "--stack", self.stack, "--non-interactive", "--json",
                          "--config-file", str(self.config_file), *extra],
                         capture=True, check=False)
        try:
            data = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise GovctlError(f"pulumi preview failed for stack {self.stack!r}:\n"
                              f"{(proc.stderr or proc.stdout).strip()}") from None
        if proc.returncode != 0:
            messages = [d.get("message", "") for d in data.get("diagnostics", [])
                        if d.get("severity") in ("error", None)]
            raise GovctlError(f"pulumi preview failed for stack {self.stack!r}:\n"
                              + "\n".join(m.strip() for m in messages if m.strip()))
        return data

    def last_update(self) -> dict[str, Any]:
        """The newest entry of the stack's history (result and resource changes)."""
        proc = self._run(["stack", "history", "--stack", self.stack, "--json"], capture=True)
        history = json.loads(proc.stdout or "[]")
        return history[0] if history else {}

    def outputs(self, show_secrets: bool = False) -> dict[str, Any]:
        # A Pulumi start costs 1–4 s on a loaded machine (most of a warm `govctl up`'s lab check), and
        # the outputs change only with the stack's checkpoint file: keep them keyed by that file's
        # identity, size and time. Secrets are never kept.
        checkpoint_file = BACKEND_DIR / ".pulumi" / "stacks" / "govctl" / f"{self.stack}.json"
        checkpoint = _file_identity(checkpoint_file)
        cache = BACKEND_DIR / f".{self.stack}.outputs.json"
        if not show_secrets and checkpoint:
            try:
                kept = json.loads(cache.read_text())
                if kept["checkpoint"] == checkpoint:
                    return kept["outputs"]
            except (OSError, ValueError, KeyError, TypeError):
                pass
        args = ["stack", "output", "--stack", self.stack, "--json"]
        if show_secrets:
            args.append("--show-secrets")
        proc = self._run(args, capture=True, check=False)
        if proc.returncode != 0:
            return {}
        outputs = json.loads(proc.stdout or "{}")
        # kept only when the checkpoint was not rewritten while Pulumi read it
        if not show_secrets and checkpoint and checkpoint == _file_identity(checkpoint_file):
            tmp = cache.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"checkpoint": checkpoint, "outputs": outputs}, f)
            os.replace(tmp, cache)
        return outputs

    def config_value(self, key: str) -> str | None:
        """A stack config value (secrets decrypted), or None when it is not set."""
        proc = self._run(["config", "get", key, "--stack", self.stack, "--config-file",
                          str(self.config_file)], capture=True, check=False)
        return proc.stdout.rstrip("\n") if proc.returncode == 0 else None

    def resource_count(self) -> int:
        proc = self._run(["stack", "export", "--stack", self.stack], capture=True)
        deployment = json.loads(proc.stdout).get("deployment", {})
        return len(deployment.get("resources") or [])
