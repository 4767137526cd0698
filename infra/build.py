"""Build the Lambda artefacts (python3.12, arm64) without Docker or SAM, laid out as `sam build` does.

    python infra/build.py all --out .aws-sam/build [--pin-installed]   # what `make build` runs
    python infra/build.py layer --out DIR [--pin-installed]            # make build-SharedLayer
    python infra/build.py function --src functions/join --out DIR     # make build-<Function>

`all` builds every function and layer of template.yaml into ``<out>/<LogicalId>/`` and writes
``<out>/template.yaml`` pointing at those folders, which is what `sam deploy` picks up.
The layer's dependencies are installed by pip for the Lambda platform (manylinux aarch64 wheels,
CPython 3.12) whatever machine builds them. ``--pin-installed`` pins them to the versions
installed next to the interpreter running this script (the dev venv: what the tests ran with).

Standard library only, except PyYAML for `all` (it reads and writes the template).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER_PACKAGE = ROOT / "shared" / "membergate"

LAMBDA_PYTHON_VERSION = "3.12"
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to 2.34 loads.
LAMBDA_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")

# Never shipped: caches, tests, and packaging leftovers.
EXCLUDED_NAMES = {"__pycache__", "tests", "test", "conftest.py", ".pytest_cache", ".DS_Store"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".egg-info")


class BuildError(RuntimeError):
    """The build cannot go on; the message says what to do."""


def _excluded(name: str) -> bool:
    return (
        name in EXCLUDED_NAMES
        or name.endswith(EXCLUDED_SUFFIXES)
        or (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
    )


def _ignore(_directory: str, names: Iterable[str]) -> set[str]:
    return {name for name in names if _excluded(name)}


def _fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The project's runtime dependencies: exactly what the layer ships."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11 (e.g. the python3 `sam build` finds on an older Mac)
        block = re.search(r"(?ms)^dependencies\s*=\s*\[(.*?)^\]", pyproject.read_text(encoding="utf-8"))
        if block is None:
            raise BuildError(f"no [project] dependencies list in {pyproject}") from None
        return re.findall(r'"([^"]+)"', re.sub(r"#.*", "", block.group(1)))
    with pyproject.open("rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_pins() -> list[str]:
    """``name==version`` for every distribution installed alongside this interpreter."""
    pins: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata.get("Name")
        if name and _canonical(name) != "membergate":
            pins[_canonical(name)] = f"{name}=={dist.version}"
    return sorted(pins.values())


def build_function(src: Path, out: Path) -> Path:
    """Copy one function's code (its handler and nothing test-related) into ``out``."""
    src = Path(src)
    if not (src / "handler.py").is_file():
        raise BuildError(f"{src} has no handler.py; every function folder needs handler.lambda_handler")
    _fresh_dir(out)
    shutil.copytree(src, out, ignore=_ignore, dirs_exist_ok=True)
    return out


def build_layer(out: Path, pin_installed: bool = False, python: str = sys.executable) -> Path:
    """``out/python/``: the membergate package plus its runtime dependencies for Lambda arm64."""
    site = _fresh_dir(Path(out)) / "python"
    shutil.copytree(LAYER_PACKAGE, site / "membergate", ignore=_ignore)
    command = [
        python, "-m", "pip", "install",
        "--quiet", "--disable-pip-version-check", "--no-compile",
        *(arg for platform in LAMBDA_PLATFORMS for arg in ("--platform", platform)),
        "--implementation", "cp",
        "--python-version", LAMBDA_PYTHON_VERSION,
        "--only-binary=:all:",
        "--target", str(site),
        *runtime_requirements(),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        if pin_installed:
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text("\n".join(installed_pins()) + "\n", encoding="utf-8")
            command += ["--constraint", str(constraints)]
        result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise BuildError(
            "pip could not install the layer's dependencies for Lambda (manylinux aarch64, "
            f"CPython {LAMBDA_PYTHON_VERSION}); see pip's message above. It needs PyPI (or your index) "
            "and a wheel of every dependency for that platform."
        )
    # Console scripts are useless in a layer; caches compiled by this machine's Python are wrong.
    shutil.rmtree(site / "bin", ignore_errors=True)
    for cache in site.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    check_native_code_is_arm64(site)
    check_trimmed_botocore_data(site, python)
    return out


def check_trimmed_botocore_data(site: Path, python: str = sys.executable) -> None:
    """The trimmed botocore models and endpoints (adapters/botocore_models) equal the layer's own botocore."""
    result = subprocess.run([python, "-m", "infra.botocore_models", "--check"], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(site)}, check=False)
    if result.returncode != 0:
        raise BuildError(
            "the trimmed botocore data the layer ships differs from the layer's botocore "
            f"({(result.stdout or result.stderr).strip()}): install that botocore version in the venv, run "
            "`python -m infra.botocore_models`, commit the files and build again (or build with --pin-installed)"
        )


ELF_MACHINE_AARCH64 = 183


def check_native_code_is_arm64(folder: Path) -> None:
    """Refuse a layer holding a compiled library for another CPU (it would fail only at import)."""
    wrong = []
    for path in folder.rglob("*.so*"):
        if not path.is_file():
            continue
        with path.open("rb") as f:
            header = f.read(20)
        if header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") != ELF_MACHINE_AARCH64:
            wrong.append(str(path.relative_to(folder)))
    if wrong:
        raise BuildError("native libraries not built for arm64 (aarch64): " + ", ".join(sorted(wrong)))


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def lambda_python() -> str | None:
    """A working local CPython 3.12 (PATH, then pyenv's versions), or None."""
    candidates = [shutil.which(f"python{LAMBDA_PYTHON_VERSION}")]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob(f"versions/{LAMBDA_PYTHON_VERSION}*/bin/python{LAMBDA_PYTHON_VERSION}"))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == LAMBDA_PYTHON_VERSION:
            return candidate
    return None


NO_BYTECODE_HELP = (
    f"no CPython {LAMBDA_PYTHON_VERSION} found to compile the bytecode Lambda's python{LAMBDA_PYTHON_VERSION} "
    "runtime loads (Lambda cannot write __pycache__: without .pyc files every cold start compiles every "
    "module, about 2.8x the CPU of the first event). Install one and build again: "
    f"`uv python install {LAMBDA_PYTHON_VERSION}` (then put its python{LAMBDA_PYTHON_VERSION} on PATH, see "
    f"`uv python find {LAMBDA_PYTHON_VERSION}`) or `pyenv install {LAMBDA_PYTHON_VERSION}`. To ship without "
    "bytecode anyway: ALLOW_NO_BYTECODE=1 make build (or --allow-no-bytecode)."
)


def compile_for_lambda(folder: Path, allow_no_bytecode: bool = False, python: str | None = None) -> bool:
    """Compile bytecode with a CPython 3.12 (Lambda cannot cache .pyc at run time).

    Unchecked-hash .pyc files stay valid whatever timestamps the zip gives the sources. Without a
    local python3.12 the build stops (BuildError saying how to get one) unless told to ship
    without bytecode; then it returns False and the code compiles on each cold start.
    """
    python = python or lambda_python()
    if not python:
        if allow_no_bytecode:
            print(f"warning: {NO_BYTECODE_HELP}", file=sys.stderr)
            return False
        raise BuildError(NO_BYTECODE_HELP)
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(folder)],
        check=True,
    )
    return True


def allow_no_bytecode_from_env(environ: dict[str, str] | None = None) -> bool:
    value = (os.environ if environ is None else environ).get("ALLOW_NO_BYTECODE", "")
    return value.strip().lower() in ("1", "true", "yes")


# --- the whole template -------------------------------------------------------------------------

CODE_PROPERTY = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


def _local_path(value: Any) -> str | None:
    if isinstance(value, str) and not value.startswith("s3://"):
        return value
    return None


def build_all(template_path: Path, out_root: Path, pin_installed: bool = False,
              allow_no_bytecode: bool = False) -> dict[str, Any]:
    """Build every function and layer of the template; write ``out_root/template.yaml``."""
    sys.path.insert(0, str(ROOT))
    from infra.cfn_yaml import dump_template, load_template

    template_path = Path(template_path).resolve()
    base = template_path.parent
    template = load_template(template_path)
    resources: dict[str, Any] = template.get("Resources", {})
    buildable = {
        logical_id: (resource, CODE_PROPERTY[resource["Type"]])
        for logical_id, resource in resources.items()
        if resource.get("Type") in CODE_PROPERTY
        and _local_path(resource.get("Properties", {}).get(CODE_PROPERTY[resource["Type"]]))
    }
    missing = [
        f"{resource['Properties'][prop]} ({logical_id})"
        for logical_id, (resource, prop) in buildable.items()
        if not (base / resource["Properties"][prop]).is_dir()
    ]
    if missing:
        raise BuildError("missing code folders named in the template: " + ", ".join(missing))

    if not allow_no_bytecode and not lambda_python():
        raise BuildError(NO_BYTECODE_HELP)  # before minutes of pip, not after
    _fresh_dir(out_root)
    for logical_id, (resource, prop) in buildable.items():
        started = time.monotonic()
        target = out_root / logical_id
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            if (base / resource["Properties"][prop]).resolve() != LAYER_PACKAGE.parent.resolve():
                raise BuildError(f"{logical_id}: only the shared/ layer is known to this build script")
            build_layer(target, pin_installed=pin_installed)
        else:
            build_function(base / resource["Properties"][prop], target)
        compiled = compile_for_lambda(target, allow_no_bytecode)
        resource["Properties"][prop] = logical_id  # relative to the built template, as sam build writes it
        resource.setdefault("Metadata", {})["SamResourceId"] = logical_id
        size = folder_size(target) / 1_000_000
        print(f"built {logical_id:<28} {time.monotonic() - started:5.1f}s {size:6.1f} MB{' (+pyc)' if compiled else ''}")

    (out_root / "template.yaml").write_text(dump_template(template), encoding="utf-8")
    print(f"wrote {out_root / 'template.yaml'}")
    return template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    every = sub.add_parser("all", help="every function and layer of the template, plus the built template")
    every.add_argument("--template", default=str(ROOT / "template.yaml"))
    every.add_argument("--out", default=str(ROOT / ".aws-sam" / "build"))
    every.add_argument("--pin-installed", action="store_true")
    layer = sub.add_parser("layer", help="the shared layer into --out (sam's ARTIFACTS_DIR)")
    layer.add_argument("--out", required=True)
    layer.add_argument("--pin-installed", action="store_true")
    function = sub.add_parser("function", help="one function folder into --out (sam's ARTIFACTS_DIR)")
    function.add_argument("--src", required=True)
    function.add_argument("--out", required=True)
    for command in (every, layer, function):
        command.add_argument("--allow-no-bytecode", action="store_true",
                             help="ship without .pyc when no python3.12 is found (also ALLOW_NO_BYTECODE=1)")
    args = parser.parse_args(argv)
    allow = args.allow_no_bytecode or allow_no_bytecode_from_env()

    if getattr(args, "out", None) in ("", None):
        print("build: --out is empty (sam build sets ARTIFACTS_DIR; otherwise run `make build`)", file=sys.stderr)
        return 2
    try:
        if args.command == "all":
            build_all(Path(args.template), Path(args.out).resolve(), pin_installed=args.pin_installed,
                      allow_no_bytecode=allow)
        elif args.command == "layer":
            out = Path(args.out).resolve()
            if not allow and not lambda_python():
                raise BuildError(NO_BYTECODE_HELP)
            build_layer(out, pin_installed=args.pin_installed)
            compile_for_lambda(out, allow)
        else:
            out = Path(args.out).resolve()
            build_function(Path(args.src), out)
            compile_for_lambda(out, allow)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_NO_INPUT", "1")
    sys.exit(main())
