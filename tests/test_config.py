"""Configuration as a clinic's IT team meets it (issue 15): one-line errors naming the variable,
exit 2, .env only when named, secrets from files, and what production refuses."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli import main
from service.config import ENV_FILE_VARIABLE, Settings, get_settings, load_settings
from service.config_report import production_problems, refuse_unsafe_production
from service.errors import ConfigError
from service.main import create_app

ROOT = Path(__file__).resolve().parents[1]

GOOD_PRODUCTION = {
    "KETAMINE_ENVIRONMENT": "production",
    "KETAMINE_BASE_URL": "https://ketamine.clinic.example",
    "KETAMINE_REDIRECT_URI": "https://ketamine.clinic.example/callback",
    "KETAMINE_ALLOWED_ISSUERS": "https://ehr.clinic.example/fhir",
    "KETAMINE_CLIENT_SECRET": "a-real-secret-of-some-length",
    "KETAMINE_LOG_PSEUDONYM_KEY": "3b9f0c1e6a7d4e2f8a5b0c9d1e2f3a4b",
    "KETAMINE_SESSION_KEYS": "zzkV2AswDA352tDrgR_W1ww04ZXGhj2Fv9HG8LcDiJ4=",
    "KETAMINE_CANONICAL_BASE": "https://screening.clinic-zurich.ch/fhir",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No KETAMINE_* variable from the machine; a working directory of the test's own."""
    import os
    for name in list(os.environ):
        if name.startswith("KETAMINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(args), out=out), out.getvalue()


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("KETAMINE_FHIR_TIMEOUT_SECONDS", "soon-s3cr3t", "KETAMINE_FHIR_TIMEOUT_SECONDS must be a "
     "number, greater than 0"),
    ("KETAMINE_FHIR_PAGE_SIZE", "5", "KETAMINE_FHIR_PAGE_SIZE must be an integer, at least 10, "
     "at most 1000"),
    ("KETAMINE_RULESET", "v9", "KETAMINE_RULESET must be one of v1, v2"),
    ("KETAMINE_COOKIE_SECURE", "perhaps", "KETAMINE_COOKIE_SECURE must be true or false"),
    ("KETAMINE_METRICS_PORT", "http", "KETAMINE_METRICS_PORT must be an integer (or unset), "
     "at least 0, at most 65535"),
    ("KETAMINE_WORKERS", "0", "KETAMINE_WORKERS must be an integer, at least 1, at most 64"),
])
def test_a_bad_value_is_one_line_naming_the_variable_and_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        variable: str, value: str, expected: str) -> None:
    monkeypatch.setenv(variable, value)
    for command in (["demo"], ["serve"], ["check-config"]):
        code, out = run(*command)
        err = capsys.readouterr().err
        assert (code, out) == (2, "")
        assert err == f"ketamine-screen: error: configuration: {expected}\n"
        assert value not in err  # a value may be a secret put in the wrong variable


def test_two_bad_values_are_both_named_on_the_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KETAMINE_RULESET", "v9")
    monkeypatch.setenv("KETAMINE_BP_WINDOW_DAYS", "-3")
    assert run("demo")[0] == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "KETAMINE_RULESET" in err and "KETAMINE_BP_WINDOW_DAYS" in err


def test_dotenv_is_read_only_when_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".env").write_text("KETAMINE_RULESET=v1\n")
    assert load_settings().ruleset == "v2"  # a stray .env in the working directory is ignored
    assert load_settings(tmp_path / ".env").ruleset == "v1"
    monkeypatch.setenv(ENV_FILE_VARIABLE, str(tmp_path / ".env"))
    assert load_settings().ruleset == "v1"
    monkeypatch.setenv("KETAMINE_RULESET", "v2")
    assert load_settings().ruleset == "v2"  # the environment wins over the file
    code, _ = run("check-config", "--env-file", str(tmp_path / "missing.env"))
    assert code == 2 and "no such file" in capsys.readouterr().err


def test_secrets_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "secret").write_text("from-a-file-Zq81\n")
    (tmp_path / "key").write_text("k" * 40)
    monkeypatch.setenv("KETAMINE_CLIENT_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("KETAMINE_LOG_PSEUDONYM_KEY_FILE", str(tmp_path / "key"))
    monkeypatch.setenv("KETAMINE_REDIS_URL", "redis://:pw-Zq81@cache:6379/0")
    settings = load_settings()
    assert settings.client_secret == "from-a-file-Zq81" and settings.log_pseudonym_key == "k" * 40
    code, out = run("check-config")
    assert code == 0
    assert "KETAMINE_CLIENT_SECRET=********\n" in out
    assert "KETAMINE_LOG_PSEUDONYM_KEY=********\n" in out
    assert "KETAMINE_REDIS_URL=redis://:********@cache:6379/0\n" in out
    assert "Zq81" not in out and "kkkk" not in out
    monkeypatch.setenv("KETAMINE_CLIENT_SECRET", "the-variable-wins")
    assert load_settings().client_secret == "the-variable-wins"
    monkeypatch.setenv("KETAMINE_CLIENT_SECRET_FILE", str(tmp_path / "nope"))
    assert run("demo")[0] == 2
    assert capsys.readouterr().err == ("ketamine-screen: error: KETAMINE_CLIENT_SECRET_FILE: "
                                       "cannot read the file (No such file or directory)\n")


def _production(**changes: object) -> Settings:
    values: dict[str, object] = {k.removeprefix("KETAMINE_").lower(): v
                                 for k, v in GOOD_PRODUCTION.items()}
    values["allowed_issuers"] = [values["allowed_issuers"]]
    values["session_keys"] = [values["session_keys"]]
    values.update(changes)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_good_production_settings_have_no_problems() -> None:
    assert production_problems(_production()) == []
    refuse_unsafe_production(_production())
    create_app(_production())


@pytest.mark.parametrize(("changes", "problem"), [
    ({"demo": True}, "KETAMINE_DEMO is on"),
    ({"redirect_uri": "http://ketamine.clinic.example/callback"},
     "KETAMINE_REDIRECT_URI must be an https URL"),
    ({"base_url": "http://ketamine.clinic.example"}, "KETAMINE_BASE_URL must be an https URL"),
    ({"workers": 4}, "KETAMINE_WORKERS is 4 without KETAMINE_REDIS_URL"),
    ({"client_secret": "changeme"}, "KETAMINE_CLIENT_SECRET is a placeholder"),
    ({"log_pseudonym_key": "development-only-pseudonym-key"},
     "KETAMINE_LOG_PSEUDONYM_KEY is the development default"),
    ({"allowed_issuers": []}, "KETAMINE_ALLOWED_ISSUERS must name at least one FHIR server"),
    ({"allowed_issuers": ["http://ehr.clinic.example/fhir"]},
     "KETAMINE_ALLOWED_ISSUERS: http://ehr.clinic.example/fhir is not an https URL"),
    ({"cookie_secure": False}, "KETAMINE_COOKIE_SECURE is false"),
    ({"session_keys": []}, "KETAMINE_SESSION_KEYS is unset"),
])
def test_production_refuses(changes: dict[str, object], problem: str) -> None:
    settings = _production(**changes)
    problems = production_problems(settings)
    assert len(problems) == 1 and problems[0].startswith(problem)
    with pytest.raises(ConfigError, match=problem):
        create_app(settings)
    # Outside production the same settings start (development uses http and the demo).
    create_app(settings.model_copy(update={"environment": "development"}))


def test_several_workers_with_redis_are_fine() -> None:
    assert production_problems(_production(workers=4, redis_url="redis://cache:6379/0")) == []


def test_check_config_lists_every_problem_and_exits_2_in_production(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in GOOD_PRODUCTION.items():
        monkeypatch.setenv(name, value)
    code, out = run("check-config")
    assert code == 0 and out.endswith("\nno production problems\n")
    assert "KETAMINE_ENVIRONMENT=production\n" in out and "a-real-secret" not in out
    monkeypatch.setenv("KETAMINE_DEMO", "1")
    monkeypatch.setenv("KETAMINE_REDIRECT_URI", "http://ketamine.clinic.example/callback")
    code, out = run("check-config", "--workers", "3")
    assert code == 2
    assert out.split("\nproduction refuses (3):\n")[1].splitlines() == [
        "  - KETAMINE_DEMO is on: the demo launcher stands in for an EHR; turn it off",
        "  - KETAMINE_REDIRECT_URI must be an https URL (it is http://...)",
        "  - KETAMINE_WORKERS is 3 without KETAMINE_REDIS_URL: each worker would keep its own "
        "launches and sessions"]
    # serve refuses the same before it starts anything.
    assert run("serve", "--workers", "3")[0] == 2
    err = capsys.readouterr().err
    assert err.startswith("ketamine-screen: error: production refuses: KETAMINE_DEMO is on")
    assert err.count("\n") == 1


def test_every_setting_is_in_the_example_and_the_example_loads() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    missing = [f"KETAMINE_{name.upper()}" for name in Settings.model_fields
               if f"KETAMINE_{name.upper()}=" not in example]
    assert missing == []
    settings = load_settings(ROOT / ".env.example")
    assert settings.frame_ancestors == ["'self'", "https://ehr.example-ehr.org"]
    assert settings.metrics_port is None and settings.client_secret is None


def test_serve_refuses_a_metrics_port_with_several_workers(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KETAMINE_METRICS_PORT", "9464")
    assert run("serve", "--workers", "2")[0] == 2
    assert "KETAMINE_METRICS_PORT needs KETAMINE_WORKERS=1" in capsys.readouterr().err


def test_a_bad_value_in_a_fresh_process_is_the_one_line_error_not_a_traceback(
        tmp_path: Path) -> None:
    # In-process tests import the service before setting the variable, so they cannot see a
    # module that reads the settings while it is imported; a fresh process can.
    env = {**os.environ, "KETAMINE_WORKERS": "0"}
    env.pop(ENV_FILE_VARIABLE, None)
    done = subprocess.run([sys.executable, "-m", "service", "check-config"], cwd=tmp_path,
                          env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("ketamine-screen: error: configuration: KETAMINE_WORKERS must be an "
                           "integer, at least 1, at most 64\n")
