"""`make build` ships bytecode for Lambda's python3.12, or refuses and says how to get that interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infra import build

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_python312(monkeypatch):
    monkeypatch.setattr(build, "lambda_python", lambda: None)
    monkeypatch.delenv("ALLOW_NO_BYTECODE", raising=False)


def _function_src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "handler.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    return src


def test_build_function_without_python312_refuses_and_says_how_to_get_it(tmp_path, no_python312, capsys):
    # Given no CPython 3.12 on this machine
    # When a function is built the way `sam build` / `make build` do
    code = build.main(["function", "--src", str(_function_src(tmp_path)), "--out", str(tmp_path / "out")])
    # Then the build fails, naming the interpreter, how to install it and how to override
    err = capsys.readouterr().err
    assert code == 1
    assert "uv python install 3.12" in err and "pyenv install 3.12" in err
    assert "ALLOW_NO_BYTECODE=1" in err


def test_build_all_without_python312_refuses_before_installing_anything(tmp_path, no_python312, monkeypatch):
    # Given no CPython 3.12 and a pip that must not be reached
    monkeypatch.setattr(build, "build_layer", lambda *a, **k: pytest.fail("the layer was built before refusing"))
    # When everything is built / Then it refuses first
    with pytest.raises(build.BuildError, match="uv python install 3.12"):
        build.build_all(ROOT / "template.yaml", tmp_path / "build")
    assert not (tmp_path / "build").exists()


@pytest.mark.parametrize("how", [["--allow-no-bytecode"], []])
def test_build_function_without_python312_when_told_ships_without_bytecode(tmp_path, no_python312, monkeypatch,
                                                                          capsys, how):
    # Given no CPython 3.12, and the override as a flag or ALLOW_NO_BYTECODE=1
    if not how:
        monkeypatch.setenv("ALLOW_NO_BYTECODE", "1")
    # When the function is built
    out = tmp_path / "out"
    code = build.main(["function", "--src", str(_function_src(tmp_path)), "--out", str(out), *how])
    # Then it is built, without bytecode, with a warning saying what that costs
    assert code == 0
    assert (out / "handler.py").is_file() and not list(out.rglob("*.pyc"))
    assert "cold start" in capsys.readouterr().err


def test_compile_for_lambda_writes_unchecked_hash_bytecode(tmp_path):
    # Given a folder of code and an interpreter (this one stands in for python3.12)
    src = _function_src(tmp_path)
    # When it is compiled for Lambda
    assert build.compile_for_lambda(src, python=sys.executable)
    # Then .pyc files exist whose flags say "hash-based, unchecked" (valid whatever the zip's timestamps)
    (pyc,) = list(src.rglob("*.pyc"))
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, check_source off


def test_build_layer_with_another_botocore_than_the_trimmed_data_refuses(tmp_path):
    # Given a layer whose botocore (another version) has other models and endpoints than the trimmed copies
    site = tmp_path / "python"
    (site / "botocore").mkdir(parents=True)
    (site / "botocore" / "__init__.py").write_text('__version__ = "0.0-other"\n')
    (site / "botocore" / "loaders.py").write_text(
        "class Loader:\n"
        "    def determine_latest_version(self, service, type_name):\n"
        "        return {'ssm': '2014-11-06', 'dynamodb': '2012-08-10', 'lambda': '2015-03-31'}[service]\n"
        "    def load_service_model(self, service, type_name, version):\n"
        "        return {'metadata': {}, 'operations': {'GetParameter': {}, 'PutItem': {}, 'Invoke': {}}, 'shapes': {}}\n"
        "    def load_data(self, name):\n"
        "        return {'partitions': [], 'version': 3}\n"
    )
    (site / "membergate").symlink_to(ROOT / "shared" / "membergate")
    # When the build checks the trimmed data against it
    with pytest.raises(build.BuildError) as refused:
        build.check_trimmed_botocore_data(site)
    # Then it refuses, naming that botocore and saying how to regenerate the copies
    assert "botocore 0.0-other" in str(refused.value)
    assert "python -m infra.botocore_models" in str(refused.value)


def test_build_layer_with_the_installed_botocore_accepts_the_trimmed_data(tmp_path):
    import botocore

    # Given a layer holding the botocore the trimmed data was copied from
    site = tmp_path / "python"
    site.mkdir()
    (site / "botocore").symlink_to(Path(botocore.__file__).parent)
    (site / "membergate").symlink_to(ROOT / "shared" / "membergate")
    # When the build checks the trimmed data against it, then it passes
    build.check_trimmed_botocore_data(site)
