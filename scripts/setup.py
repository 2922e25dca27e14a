#!/usr/bin/env python3
"""One-command set-up for govctl (run by `make setup`). Idempotent; quiet and fast when done.

Steps, each timed:
  1. Debian packages listed in scripts/apt-packages.txt (installed only when missing).
  2. The virtualenv `.venv` with govctl installed in editable mode (re-run only when pyproject changes).
  3. The Pulumi CLI and the Python language host, built from the Go module proxy at exactly the
     version of the pinned `pulumi` SDK, cached outside the checkout (keyed by version) and linked
     into `.tools/pulumi`. A `pulumi` of that version already on PATH is used instead.
  4. The console's web pages: `npm ci` into the cache (keyed by the hash of
     console/frontend/package-lock.json, linked as its node_modules) and `vite build` into the
     git-ignored console/frontend/dist, redone only when the lockfile or the sources change.

Only the standard library is used: this runs before the virtualenv exists.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
TOOLS = ROOT / ".tools"
CACHE = Path(os.environ.get("GOVCTL_CACHE", "/var/cache/govctl"))

# Replace directives of pkg/v3's own go.mod that a consuming module must repeat (Go ignores a
# dependency's replaces). Keyed by the Pulumi version they were read from.
PULUMI_REPLACES = {
    "3.79.0": {
        "github.com/sergi/go-diff": "github.com/sergi/go-diff v1.1.0",
        "github.com/xanzy/ssh-agent": "github.com/pulumi/ssh-agent v0.5.1",
    },
}
# Scripts that ship in the sdk module and must sit beside the binaries that look for them.
PULUMI_SCRIPTS = {
    "python/cmd/pulumi-language-python-exec": "pulumi-language-python-exec",
    "python/dist/pulumi-resource-pulumi-python": "pulumi-resource-pulumi-python",
    "python/dist/pulumi-analyzer-policy-python": "pulumi-analyzer-policy-python",
}


def say(msg: str) -> None:
    print(f"[setup] {msg}", flush=True)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


class Step:
    """Times a step and prints one line for it."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, exc_type, exc, tb):
        took = time.monotonic() - self.start
        state = "failed" if exc_type else "done"
        say(f"{self.name}: {state} in {took:.1f} s")
        return False


def pinned_pulumi_version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'"pulumi==([0-9.]+)"', text)
    if not match:
        sys.exit("setup: pyproject.toml must pin pulumi exactly (\"pulumi==X.Y.Z\")")
    return match.group(1)


def apt_packages() -> None:
    wanted = [
        line.split("#")[0].strip()
        for line in (ROOT / "scripts/apt-packages.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    missing = []
    for pkg in wanted:
        probe = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True
        )
        if "install ok installed" not in probe.stdout:
            missing.append(pkg)
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"setup: Debian packages missing ({' '.join(missing)}); run set-up as root")
    say(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    # Service packages must not start their daemons on the host: govctl runs them itself.
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = not policy.exists()
    if created_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env,
            stdout=subprocess.DEVNULL)
    finally:
        if created_policy:
            policy.unlink()


def virtualenv() -> None:
    stamp = VENV / ".govctl-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and (VENV / "bin/govctl").exists():
        return
    if not (VENV / "bin/python").exists():
        say("creating .venv")
        run([sys.executable, "-m", "venv", str(VENV)])
    say("installing govctl and its pinned dependencies into .venv")
    run([str(VENV / "bin/pip"), "install", "-q", "--disable-pip-version-check",
         "-e", f"{ROOT}[dev]"])
    stamp.write_text(digest)


def program_venv_link() -> None:
    """Pulumi v3.79 resolves `virtualenv: .venv` against the project root in the language host but
    against the program folder (main: infra/) in the dynamic-provider plugin; infra/.venv makes
    both find the same environment."""
    link = ROOT / "infra" / ".venv"
    if not link.is_symlink():
        link.symlink_to(Path("..") / ".venv")


def pulumi_on_path(version: str) -> Path | None:
    found = shutil.which("pulumi")
    if not found or Path(found).resolve().parent == (TOOLS / "pulumi").resolve():
        return None
    out = subprocess.run([found, "version"], capture_output=True, text=True).stdout.strip()
    if out.lstrip("v") == version and shutil.which("pulumi-language-python"):
        return Path(found).resolve().parent
    return None


def build_pulumi(version: str, dest: Path) -> None:
    """Build cmd/pulumi and the Python language host from the Go module proxy into dest/bin."""
    if shutil.which("go") is None:
        sys.exit("setup: Go is needed to build the Pulumi CLI and was not found on PATH")
    work = dest / "build"
    work.mkdir(parents=True, exist_ok=True)
    replaces = "".join(f"replace {old} => {new}\n" for old, new in PULUMI_REPLACES.get(version, {}).items())
    (work / "go.mod").write_text(
        "module govctl.local/pulumi-build\n\ngo 1.21\n\n"
        f"require (\n\tgithub.com/pulumi/pulumi/pkg/v3 v{version}\n"
        f"\tgithub.com/pulumi/pulumi/sdk/v3 v{version}\n)\n\n{replaces}"
    )
    # A build-tagged file lists the two commands so `go mod tidy` resolves everything they import.
    (work / "tools.go").write_text(
        "//go:build tools\n\npackage tools\n\nimport (\n"
        '\t_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n'
        '\t_ "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"\n)\n'
    )
    env = dict(os.environ, GOFLAGS="-mod=mod")
    say(f"resolving Pulumi v{version} modules from the Go module proxy")
    run(["go", "mod", "tidy"], cwd=work, env=env)
    bin_dir = dest / "bin"
    bin_dir.mkdir(exist_ok=True)
    # -checklinkname=0: Pulumi v3.79's dependency github.com/pgavlin/text links to a Go runtime
    # internal that newer Go toolchains refuse by default.
    ldflags = (
        "-checklinkname=0 -s -w "
        f"-X github.com/pulumi/pulumi/pkg/v3/version.Version=v{version} "
        f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{version}"
    )
    say(f"compiling pulumi and pulumi-language-python v{version} (a few minutes on 2 cores)")
    run(["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(bin_dir) + "/",
         "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
         "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"], cwd=work, env=env)
    sdk_dir = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "github.com/pulumi/pulumi/sdk/v3"],
        cwd=work, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    for source, name in PULUMI_SCRIPTS.items():
        target = bin_dir / name
        shutil.copyfile(Path(sdk_dir) / source, target)
        target.chmod(0o755)  # the module cache is read-only and drops the run bit
    shutil.rmtree(work)


def pulumi_cli() -> None:
    version = pinned_pulumi_version()
    link = TOOLS / "pulumi"
    existing = pulumi_on_path(version)
    if existing is not None:
        target = existing
    else:
        cached = CACHE / f"pulumi-v{version}"
        complete = all((cached / "bin" / n).exists() for n in
                       ["pulumi", "pulumi-language-python", *PULUMI_SCRIPTS.values()])
        if not complete:
            build_pulumi(version, cached)
        target = cached / "bin"
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    TOOLS.mkdir(exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
    out = subprocess.run([str(link / "pulumi"), "version"], capture_output=True, text=True).stdout
    say(f"pulumi {out.strip()} linked at .tools/pulumi -> {target}")


def elasticsearch_distribution() -> None:
    """The local Elasticsearch node's distribution (secops/es/distribution.json): fetched with Maven into
    the cache once, by the same code `govctl es up` and the tests use."""
    import json

    version = json.loads((ROOT / "secops/es/distribution.json").read_text())["version"]
    if (CACHE / f"elasticsearch-{version}" / f"elasticsearch-{version}" / "bin/elasticsearch").exists():
        return
    with Step(f"Elasticsearch {version} from Maven Central"):
        run([str(VENV / "bin/python"), "-c", "from secops.es.node import fetch_distribution; fetch_distribution()"])


CONSOLE = ROOT / "console" / "frontend"
NODE_MINIMUM = (20, 19)  # Vite 8


def _tree_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(CONSOLE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def console_assets() -> None:
    """npm ci (cached by lockfile hash) and vite build of the console, only when something changed."""
    sources = [CONSOLE / n for n in ("package.json", "package-lock.json", "vite.config.js", "index.html")]
    sources += [p for p in (CONSOLE / "src").rglob("*") if p.is_file()]
    wanted = _tree_digest(sources)
    stamp = CONSOLE / "dist" / ".govctl-build"
    if stamp.exists() and stamp.read_text() == wanted and (CONSOLE / "dist" / "index.html").exists():
        return
    node = shutil.which("node")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout if node else ""
    found = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
    if len(found) < 2 or found < NODE_MINIMUM:
        sys.exit(f"setup: the console needs Node.js >= {'.'.join(map(str, NODE_MINIMUM))} with npm "
                 f"(found: {version.strip() or 'none'})")
    lock = hashlib.sha256((CONSOLE / "package-lock.json").read_bytes()).hexdigest()[:16]
    cached = CACHE / f"console-npm-{lock}"
    if not (cached / ".complete").exists():
        say("installing the console's npm packages (npm ci) into the cache")
        shutil.rmtree(cached, ignore_errors=True)
        cached.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(CONSOLE / name, cached / name)
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=cached, stdout=subprocess.DEVNULL)
        (cached / ".complete").write_text(lock)
    modules = CONSOLE / "node_modules"
    if not (modules.is_symlink() and Path(os.readlink(modules)) == cached / "node_modules"):
        if modules.is_symlink() or modules.is_file():
            modules.unlink()
        elif modules.exists():
            shutil.rmtree(modules)
        modules.symlink_to(cached / "node_modules")
    say("building the console's pages (vite build)")
    run(["npm", "run", "--silent", "build", "--", "--logLevel", "warn"], cwd=CONSOLE)
    stamp.write_text(wanted)


def main() -> None:
    total = time.monotonic()
    with Step("Debian packages"):
        apt_packages()
    with Step("virtualenv"):
        virtualenv()
        program_venv_link()
    with Step("Pulumi CLI"):
        pulumi_cli()
    elasticsearch_distribution()
    with Step("console pages"):
        console_assets()
    say(f"ready in {time.monotonic() - total:.1f} s — try: .venv/bin/govctl --help")


if __name__ == "__main__":
    main()
