"""The command line: contract output, bad input handling, exit codes, the demo."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from service.cli import main
from tests.builders import PatientBuilder


def run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(args), out=out)
    return code, out.getvalue()


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_screen_json_contract(tmp_path: Path) -> None:
    p = PatientBuilder("cli1")
    avm = p.condition("Q28.2", "Arteriovenous malformation of cerebral vessels")
    path = write(tmp_path, "p.json", json.dumps(p.bundle()))
    code, out = run_cli("screen", "--bundle", str(path), "--format", "json",
                        "--as-of", "2026-06-15T12:00:00Z")
    assert code == 0
    contract = json.loads(out)
    assert contract["verdict"] == "contraindicated"
    assert contract["as_of"] == "2026-06-15T12:00:00Z"
    assert contract["findings"][0]["evidence"] == [avm]


def test_screen_text_report_puts_the_verdict_first(tmp_path: Path) -> None:
    p = PatientBuilder("cli2")
    lorazepam = p.medication("6470", "lorazepam")
    path = write(tmp_path, "p.json", json.dumps(p.bundle()))
    code, out = run_cli("screen", "--bundle", str(path), "--as-of", "2026-06-15")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].startswith("Verdict for ketamine: NEEDS REVIEW")
    assert lines[2].startswith("Verdict for esketamine (Spravato): NEEDS REVIEW")
    assert "Drug interactions (1)" in out
    assert "source: SPRAVATO-PI Drug Interactions (CNS depressants); ANDRADE-2017; CDC-VS" in out
    assert f"record: {lorazepam} (lorazepam; recorded 2026-05-01)" in out


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "not JSON (line 1, column 2)"),
        ('{"resourceType": "Patient", "id": "x"}', "not a FHIR Bundle (resourceType is 'Patient')"),
        ('[1, 2]', "not a FHIR Bundle"),
        ('{"resourceType": "Bundle", "type": "collection", "entry": {}}', "Bundle.entry is not"),
        ('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
         '{"resourceType": "Condition", "id": "c", "bogus": 1}}]}', "no resource in the Bundle"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, body: str, message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.json", body)
    code, out = run_cli("screen", "--bundle", str(path))
    err = capsys.readouterr().err
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert str(path) in err and message in err
    assert "Traceback" not in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("screen", "--bundle", str(tmp_path / "nope.json"))
    assert code == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_bad_as_of_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli("screen", "--bundle", "x.json", "--as-of", "yesterday")
    assert exc.value.code == 2


def test_warning_for_an_unreadable_resource(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    p = PatientBuilder("cli3")
    bundle = p.bundle()
    bundle["entry"].append({"resource": {"resourceType": "Observation", "id": "odd",
                                         "status": "final", "code": {"text": "x"},
                                         "valueQuantity": {"value": "abc"}}})
    path = write(tmp_path, "p.json", json.dumps(bundle))
    code, out = run_cli("screen", "--bundle", str(path), "--format", "json")
    assert code == 0
    assert ("warning: Observation/odd: not valid FHIR R4: valueQuantity.value: expected a number"
            in capsys.readouterr().err)
    assert json.loads(out)["verdict"] == "insufficient-data"


def test_demo_covers_every_verdict() -> None:
    code, out = run_cli("demo", "--format", "json")
    assert code == 0
    verdicts = {json.loads(chunk)["verdict"]
                for chunk in out.replace("}\n{", "}\n\x00{").split("\x00")}
    assert verdicts == {"contraindicated", "needs-review", "insufficient-data", "suitable"}


def test_python_dash_m_entry_point() -> None:
    done = subprocess.run([sys.executable, "-m", "service", "--version"], capture_output=True,
                          text=True, check=True)
    assert done.stdout.startswith("ketamine-screen ")


def test_product_flag_picks_the_verdicts(tmp_path: Path) -> None:
    p = PatientBuilder("cli-prod")
    stroke = p.condition("I63.9", "Cerebral infarction, unspecified")
    path = write(tmp_path, "p.json", json.dumps(p.bundle()))
    base = ("screen", "--bundle", str(path), "--format", "json", "--as-of", "2026-06-15")
    both = json.loads(run_cli(*base)[1])
    assert both["products"] == ["ketamine", "esketamine"]
    assert both["verdicts"] == {"ketamine": "contraindicated", "esketamine": "needs-review"}
    esk = json.loads(run_cli(*base, "--product", "esketamine")[1])
    assert esk["verdict"] == "needs-review" and esk["verdicts"] == {"esketamine": "needs-review"}
    assert [f["evidence"] for f in esk["findings"] if f["rule"] == "pr-prior-stroke"] == [[stroke]]
    ket = json.loads(run_cli(*base, "--product", "ketamine")[1])
    assert ket["verdict"] == "contraindicated" and ket["products"] == ["ketamine"]
    assert json.loads(run_cli(*base, "--ruleset", "v1")[1])["ruleset"] == "v1"
    code, text = run_cli("screen", "--bundle", str(path), "--as-of", "2026-06-15")
    assert code == 0 and "Eligibility (treatment-resistant depression)" in text
    assert text.index("Verdict for esketamine") < text.index("Eligibility") < text.index(
        "Contraindications")


@pytest.mark.parametrize(("flag", "value", "allowed"), [
    ("--product", "arketamine", "allowed: ketamine, esketamine, both"),
    ("--ruleset", "v3", "allowed: v1, v2"),
])
def test_unknown_product_or_ruleset_exits_2_naming_the_choices(
        tmp_path: Path, flag: str, value: str, allowed: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "p.json", json.dumps(PatientBuilder("cli-bad").bundle()))
    code, out = run_cli("screen", "--bundle", str(path), flag, value)
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and repr(value) in err and allowed in err
