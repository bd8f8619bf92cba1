"""Secrets never reach a record: the policy (which names are secret), the redaction of every form
a value is written in (arguments, Hydra overrides, YAML, JSON, logs, test ids), the environment
snapshot, the run summary, and end to end through ``pytest --deriva-run`` and ``deriva-run``,
reading back every byte the catalog folder holds.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from _plugin_helpers import catalog, make_project
from pytest_deriva import _secrets
from pytest_deriva._secrets import (
    REDACTED,
    configure,
    is_secret,
    redact_argv,
    redact_file,
    redact_mapping,
    redact_nodeid,
    redact_overrides,
    redact_text,
    redact_text_file,
    restore_policy,
    secret_values,
)
from pytest_deriva.report import format_nodeid, format_params, summary_lines

SECRET = "S3cr3tQx9Zp"  # one value, easy to find in any byte


@pytest.fixture(autouse=True)
def policy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts from the built-in policy and leaves it as it found it."""
    monkeypatch.delenv(_secrets.SECRET_NAMES_ENV, raising=False)
    monkeypatch.delenv(_secrets.NOT_SECRET_ENV, raising=False)
    previous = configure()
    yield
    restore_policy(previous)


# -- the policy ----------------------------------------------------------------------------------
SECRET_NAMES = [
    "token",
    "api_token",
    "apiToken",
    "APIToken",
    "model_config.api_token",
    "+token",
    "++model_config.auth_token",
    "token@pkg",
    "secret",
    "client_secret",
    "password",
    "db_password",
    "DB_PASSWORD",
    "passwd",
    "pw",
    "db.pass",
    "pwd",
    "key",
    "api_key",
    "apiKey",
    "api-key",
    "aws_secret_access_key",
    "AWS_SECRET_ACCESS_KEY",
    "private_key",
    "ssh.key",
    "credential",
    "credentials",
    "creds",
    "auth",
    "x_auth",
    "Authorization",
    "cookie",
    "session_cookie",
    "bearer",
    "bearer_token",
    "token2",
    "credentials.user",
    "hydra.job.env_set.DERIVA_TOKEN",
    "--pw",
    "--creds",
    "--token",
    "--api-key",
    "-P",
]
NOT_SECRET_NAMES = [
    "monkey",
    "keyboard",
    "KeyboardLayout",
    "monkey_patch",
    "author",
    "authors",
    "max_tokens",
    "num_tokens",
    "tokenizer",
    "tokenizer_name",
    "passes",
    "compass",
    "bypass_cache",
    "lr",
    "epochs",
    "model_config.lr",
    "description",
    "pad_token",
    "eos_token_id",
    "KeyError",
    "TokenError",
    "PermissionError",
    "keyring_backend",
    "turkey",
    "hockey",
    "deriva_secret_names",
    "-p",
    "-k",
    "--deriva-run",
    "",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names(name: str) -> None:
    assert is_secret(name)


@pytest.mark.parametrize("name", NOT_SECRET_NAMES)
def test_names_that_are_not_secret(name: str) -> None:
    assert not is_secret(name)


def test_more_names_from_configure_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not is_secret("user_ssn")
    configure(secret_names="ssn, license_number", not_secret=["primary_key"])
    assert is_secret("user_ssn")
    assert is_secret("model_config.drivers_license_number")
    assert not is_secret("license")  # an entry of two words matches them in a row
    assert not is_secret("model_config.primary_key")
    assert is_secret("api_key")

    monkeypatch.setenv("DERIVA_SECRET_NAMES", "pin,-K")
    monkeypatch.setenv("DERIVA_NOT_SECRET", "auth_mode api_key")
    assert is_secret("card_pin")
    assert is_secret("user_ssn"), "the configured names stay"
    assert not is_secret("auth_mode")
    assert not is_secret("model_config.api_key")
    assert redact_argv(["tool", "-K", SECRET, f"-K{SECRET}"]) == ["tool", "-K", REDACTED, f"-K{REDACTED}"]


def test_not_secret_wins_and_matches_whole_names_only() -> None:
    configure(secret_names="token_hint", not_secret="token_hint, model_config.api_key")
    assert not is_secret("token_hint")
    assert not is_secret("model_config.api_key")
    assert is_secret("api_key"), "only the dotted name given is declared not secret"
    assert is_secret("token_hint_secret")


def test_configure_returns_what_it_replaces() -> None:
    before = configure(secret_names="ssn")
    assert is_secret("ssn")
    restore_policy(before)
    assert not is_secret("ssn")


# -- arguments and overrides ---------------------------------------------------------------------
ARGV = [
    (["--pw", SECRET], ["--pw", REDACTED]),
    (["--creds", SECRET], ["--creds", REDACTED]),
    (["--token", SECRET], ["--token", REDACTED]),
    ([f"--token={SECRET}"], [f"--token={REDACTED}"]),
    (["--api-key", SECRET], ["--api-key", REDACTED]),
    (["-P", SECRET], ["-P", REDACTED]),
    ([f"-P{SECRET}"], [f"-P{REDACTED}"]),
    ([f"-P={SECRET}"], [f"-P={REDACTED}"]),
    ([f"token={SECRET}"], [f"token={REDACTED}"]),
    ([f"model_config.api_token={SECRET}"], [f"model_config.api_token={REDACTED}"]),
    ([f"+token={SECRET}"], [f"+token={REDACTED}"]),
    ([f"token={SECRET},other"], [f"token={REDACTED}"]),
    (["--deriva-sweep", f"token={SECRET}", "lr=0.1,0.01"], ["--deriva-sweep", f"token={REDACTED}", "lr=0.1,0.01"]),
    ([f"--deriva-sweep=token={SECRET}"], [f"--deriva-sweep=token={REDACTED}"]),
    ([f"https://user:{SECRET}@example.org/x"], [f"https://{REDACTED}@example.org/x"]),
    ([f"model_config={{api_token:{SECRET},lr:1}}"], [f"model_config={{api_token:{REDACTED},lr:1}}"]),
    # a secret option followed by another option: no value to hide
    (["--token", "--deriva-run", "x"], ["--token", "--deriva-run", "x"]),
    # kept: they say something and hold nothing
    (
        ["token=null", "--auth", "true", "api_key=${oc.env:API_KEY}"],
        ["token=null", "--auth", "true", "api_key=${oc.env:API_KEY}"],
    ),
    # not secret
    (["-p", "no:randomly", "-k", "token", "--keyboard", "us", "monkey=1"], None),
]


@pytest.mark.parametrize(("argv", "expected"), ARGV)
def test_redact_argv(argv: list[str], expected: list[str] | None) -> None:
    redacted = redact_argv(["prog", *argv])
    assert redacted == ["prog", *(argv if expected is None else expected)]


def test_redact_argv_is_still_importable_from_environment() -> None:
    from pytest_deriva.execution.environment import redact_argv as old

    assert old(["--pw", SECRET]) == ["--pw", REDACTED]


def test_redact_overrides() -> None:
    overrides = [
        f"model_config.api_token={SECRET}",
        f"+token={SECRET}",
        f"++deriva_ml.credential={SECRET}",
        f"token=choice({SECRET},b)",
        "~token",
        "model_config.lr=0.1,0.01",
        "+multirun=grid",
    ]
    assert redact_overrides(overrides) == [
        f"model_config.api_token={REDACTED}",
        f"+token={REDACTED}",
        f"++deriva_ml.credential={REDACTED}",
        f"token={REDACTED}",
        "~token",
        "model_config.lr=0.1,0.01",
        "+multirun=grid",
    ]


def test_redact_mapping_nested() -> None:
    doc = {
        "model_config": {"_target_": "m.train", "api_token": SECRET, "lr": 0.1, "max_tokens": 5},
        "deriva_ml": {"credential": {"bearer": SECRET, "cookie": [SECRET, 1234]}, "check_auth": True},
        "argv": ["run.py", "--pw", SECRET, f"model_config.api_token={SECRET}"],
        "password": None,
        "key": "${oc.env:KEY}",
        "url": f"https://u:{SECRET}@host/x",
        "note": f"token={SECRET} lr=0.1",
    }
    redacted = redact_mapping(doc)
    assert SECRET not in json.dumps(redacted)
    assert redacted["model_config"] == {"_target_": "m.train", "api_token": REDACTED, "lr": 0.1, "max_tokens": 5}
    assert redacted["deriva_ml"] == {
        "credential": {"bearer": REDACTED, "cookie": [REDACTED, REDACTED]},
        "check_auth": True,
    }
    assert redacted["argv"] == ["run.py", "--pw", REDACTED, f"model_config.api_token={REDACTED}"]
    assert redacted["password"] is None
    assert redacted["key"] == "${oc.env:KEY}"
    assert redacted["note"] == f"token={REDACTED} lr=0.1"
    assert doc["model_config"]["api_token"] == SECRET, "the input is not changed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"experiment.py::experiment_x[token={SECRET}]", f"experiment.py::experiment_x[token={REDACTED}]"),
        (f"'password': '{SECRET}', 'lr': 0.1", f"'password': '{REDACTED}', 'lr': 0.1"),
        (f'"api_key": "{SECRET}"', f'"api_key": "{REDACTED}"'),
        (f"Authorization: Bearer {SECRET}", f"Authorization: {REDACTED} {REDACTED}"),
        (f"sent Bearer {SECRET} to host", f"sent Bearer {REDACTED} to host"),
        (f"lr=0.1-token={SECRET}", f"lr=0.1-token={REDACTED}"),
        (f"model_config.api_token={SECRET},{SECRET}2,lr=0.1", f"model_config.api_token={REDACTED},lr=0.1"),
        ("KeyError: 'token'", "KeyError: 'token'"),
        ("see https://example.org:8080/x and lr: 0.1", "see https://example.org:8080/x and lr: 0.1"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_known_values_are_redacted_in_free_text() -> None:
    values = secret_values({"token": SECRET, "model": {"api_key": "k" * 8}, "lr": 0.1, "auth": True, "pw": "ab"})
    assert values == [SECRET, "k" * 8, "ab"]  # longest first
    traceback = f"E   RuntimeError: rejected {SECRET} with {'k' * 8}\nab, lr=0.1"
    assert redact_text(traceback, values) == f"E   RuntimeError: rejected {REDACTED} with {REDACTED}\nab, lr=0.1"


def test_redact_nodeid() -> None:
    params = {"lr": 0.1, "token": SECRET}
    assert redact_nodeid(f"e.py::experiment_x[0.1-{SECRET}]", params) == f"e.py::experiment_x[0.1-{REDACTED}]"
    assert redact_nodeid(f"e.py::experiment_x[token={SECRET}]", params) == f"e.py::experiment_x[token={REDACTED}]"
    assert redact_nodeid("e.py::experiment_x", params) == "e.py::experiment_x"
    assert redact_nodeid("e.py::experiment_x[1-2]", {"lr": 1, "pw": 2}) == f"e.py::experiment_x[1-{REDACTED}]"


def test_text_without_secrets_is_given_back_not_copied() -> None:
    # A sweep's summary rows keep each child's test id and parameters: no second copy of each.
    nodeid = "e.py::experiment_x[0.1-3]"
    assert redact_nodeid(nodeid, {"lr": 0.1, "epochs": 3}) is nodeid
    text = "lr=0.1, epochs=3, " + "x" * 600  # longer than the texts kept in the cache
    assert redact_text(text) is text
    assert redact_text(f"lr=0.1, token={SECRET}") == f"lr=0.1, token={REDACTED}"


# -- recorded files ------------------------------------------------------------------------------
# What Hydra writes in a run folder's .hydra/, with a secret given on the command line.
HYDRA_CONFIG = f"""\
deriva_ml:
  _target_: pytest_deriva.config.deriva_ml_config.DerivaMLConfig
  catalog: null
  credential: null
  check_auth: true
model_config:
  _target_: models.tiny.train
  _partial_: true
  lr: 0.1
  api_token: {SECRET}
  optimizer: sgd
description: Tiny model
"""
HYDRA_OVERRIDES = f"""\
- model_config.api_token={SECRET}
- +token='{SECRET}'
- model_config.lr=0.1
"""
HYDRA_HYDRA = f"""\
hydra:
  run:
    dir: outputs/${{now:%Y-%m-%d}}/${{now:%H-%M-%S}}
  sweeper:
    _target_: hydra._internal.core_plugins.basic_sweeper.BasicSweeper
    params:
      model_config.api_token: {SECRET},b
  overrides:
    hydra:
    - hydra.mode=RUN
    task:
    - model_config.api_token={SECRET}
    - model_config.lr=0.1
  job:
    name: deriva_run
    override_dirname: model_config.api_token={SECRET},model_config.lr=0.1
    env_set:
      DERIVA_TOKEN: {SECRET}
    config:
      override_dirname:
        kv_sep: '='
        item_sep: ','
        exclude_keys: []
  runtime:
    choices:
      model_config: default_model
"""


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("hydra-12-00-00-config.yaml", HYDRA_CONFIG),
        ("hydra-12-00-00-overrides.yaml", HYDRA_OVERRIDES),
        ("hydra-12-00-00-hydra.yaml", HYDRA_HYDRA),
        (
            "hydra-grid-multirun.yaml",
            HYDRA_HYDRA.replace(f"{SECRET},model", f"{SECRET},{SECRET}2,model") + HYDRA_CONFIG,
        ),
    ],
)
def test_hydra_files_are_redacted_and_stay_valid_yaml(name: str, text: str) -> None:
    data = redact_text_file(name, text.encode())
    assert SECRET.encode() not in data
    assert yaml.safe_load(data) == redact_mapping(yaml.safe_load(text))
    # Edited in place: the lines without secrets are as they were.
    kept = [line for line in text.splitlines() if SECRET not in line]
    assert [line for line in data.decode().splitlines() if REDACTED not in line] == kept


def test_pytest_sweep_files_keep_their_form() -> None:
    config = f'"lr": 0.1\n"token": "{SECRET}"\n"nested": {{"api_key": "{SECRET}"}}\n'
    overrides = f'- "lr=0.1"\n- "token={SECRET}"\n'
    assert redact_text_file("hydra-0-config.yaml", config.encode()) == (
        f'"lr": 0.1\n"token": "{REDACTED}"\n"nested": {{"api_key": "{REDACTED}"}}\n'.encode()
    )
    assert (
        redact_text_file("hydra-0-overrides.yaml", overrides.encode()) == f'- "lr=0.1"\n- "token={REDACTED}"\n'.encode()
    )


def test_yaml_under_a_secret_key_in_block_form() -> None:
    text = f"auth:\n  user: me\n  keys:\n  - {SECRET}\n  - other{SECRET}\nlr: 0.1\n"
    data = redact_text_file("config.yaml", text.encode())
    assert yaml.safe_load(data) == {"auth": {"user": REDACTED, "keys": [REDACTED, REDACTED]}, "lr": 0.1}


def test_yaml_that_does_not_parse_is_redacted_line_by_line() -> None:
    text = f"api_token: {SECRET}\nbroken: [unclosed\n  password: '{SECRET}'\nlr: 0.1\n"
    data = redact_text_file("config.yaml", text.encode()).decode()
    assert SECRET not in data
    assert "lr: 0.1" in data
    assert "broken: [unclosed" in data


def test_json_log_and_unknown_files() -> None:
    doc = {"argv": ["run", "--pw", SECRET], "config_choices": {"model_config": "fast"}, "description": "x"}
    data = redact_text_file("configuration.json", json.dumps(doc).encode())
    assert json.loads(data) == {**doc, "argv": ["run", "--pw", REDACTED]}

    log = f"[2024-01-01][train][INFO] - token={SECRET} lr=0.1\n[INFO] - Bearer {SECRET}\n"
    assert redact_text_file("deriva_run.log", log.encode()).decode() == (
        f"[2024-01-01][train][INFO] - token={REDACTED} lr=0.1\n[INFO] - Bearer {REDACTED}\n"
    )

    binary = b"\x89PNG token=" + SECRET.encode()
    assert redact_text_file("plot.png", binary) is binary, "only text files we know are read"
    assert redact_text_file("x.yaml", b"\xff\xfe token: x") == b"\xff\xfe token: x"


def test_files_without_secrets_are_returned_as_they_are() -> None:
    for name, text in [("config.yaml", "lr: 0.1\nmax_tokens: 5\n"), ("o.yaml", "- lr=0.1\n"), ("c.json", "{}")]:
        data = text.encode()
        assert redact_text_file(name, data) is data


def test_redact_file_leaves_the_file_alone(tmp_path: Path) -> None:
    config = tmp_path / ".hydra" / "config.yaml"
    config.parent.mkdir()
    config.write_text(HYDRA_CONFIG)
    data = redact_file(config)
    assert data is not None
    assert SECRET.encode() not in data
    assert config.read_text() == HYDRA_CONFIG, "the user's file is not rewritten"
    plain = tmp_path / "plain.yaml"
    plain.write_text("lr: 0.1\n")
    assert redact_file(plain) is None
    assert redact_file(tmp_path / "model.pkl") is None


def test_names_made_secret_reach_the_files() -> None:
    text = f"ssn: {SECRET}\nauth_mode: basic\n"
    assert redact_text_file("c.yaml", text.encode()) == text.encode().replace(b"basic", b"'***'")
    configure(secret_names="ssn", not_secret="auth_mode")
    assert redact_text_file("c.yaml", text.encode()) == f"ssn: '{REDACTED}'\nauth_mode: basic\n".encode()


# -- the environment snapshot --------------------------------------------------------------------
def test_environment_snapshot_redacts_argv_and_allowed_variables(tmp_path: Path) -> None:
    # A fresh process: the snapshot is made once per process, from its own argv and environment.
    script = textwrap.dedent(
        f"""
        import sys
        sys.argv = ["train.py", "--pw", "{SECRET}", "-P", "{SECRET}", "--creds={SECRET}",
                    "model_config.api_token={SECRET}", "ssn={SECRET}", "lr=0.1"]
        from pytest_deriva.execution.environment import environment_snapshot
        name, text = environment_snapshot()
        print(text)
        """
    )
    env = {
        **os.environ,
        "DERIVA_SECRET_NAMES": "ssn",
        "CI": f"https://ci:{SECRET}@ci.example.org",
        "MY_API_TOKEN": SECRET,
    }
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    snapshot = json.loads(done.stdout)
    assert SECRET not in done.stdout
    assert snapshot["argv"] == [
        "train.py",
        "--pw",
        REDACTED,
        "-P",
        REDACTED,
        f"--creds={REDACTED}",
        f"model_config.api_token={REDACTED}",
        f"ssn={REDACTED}",
        "lr=0.1",
    ]
    assert snapshot["environment"]["CI"] == f"https://{REDACTED}@ci.example.org"
    assert snapshot["environment"]["DERIVA_SECRET_NAMES"] == "ssn", "the policy in use is recorded"
    assert "MY_API_TOKEN" not in snapshot["environment"]


# -- the summary ---------------------------------------------------------------------------------
def test_summary_hides_secret_parameters_and_ids() -> None:
    rows = [
        {
            "nodeid": f"experiment_a.py::experiment_a[0.1-{SECRET}]",
            "rid": "1-A",
            "status": "Completed",
            "params": {"lr": "0.1", "token": repr(SECRET)},
        },
        {
            "nodeid": f"experiment_b.py::experiment_b[{SECRET}]",
            "rid": "1-C",
            "status": "Completed",
            "parent": "1-P",
            "sequence": 0,
            "params": {"api_key": repr(SECRET), "cfg": repr({"password": SECRET})},
        },
    ]
    lines = summary_lines(rows, [], "/tmp/catalog", dry_run=False)
    assert not [line for line in lines if SECRET in line], lines
    assert any(f"experiment_a[0.1-{REDACTED}]" in line for line in lines), lines
    assert any(f"api_key={REDACTED}, cfg={{'password': '{REDACTED}'}}" in line for line in lines), lines
    assert format_params({"token": repr(SECRET), "lr": "0.1"}) == f"token={REDACTED}, lr=0.1"
    assert format_nodeid(f"e.py::x[{SECRET}]", {"token": repr(SECRET)}) == f"e.py::x[{REDACTED}]"


# -- deriva-run's messages -----------------------------------------------------------------------
def _train(api_token: int = 0, lr: float = 0.1, ml_instance: object = None, execution: object = None) -> None:
    """A model whose secret parameter has a type."""


def test_a_refused_secret_value_is_not_printed() -> None:
    from pytest_deriva.config.runner import check_model_arguments
    from pytest_deriva.exceptions import DerivaMLConfigurationError

    with pytest.raises(DerivaMLConfigurationError) as refused:
        check_model_arguments(functools.partial(_train, api_token=SECRET, lr="fast"))
    message = str(refused.value)
    assert SECRET not in message
    assert f"api_token: expects int, got {REDACTED} (str)" in message
    assert "lr: expects float, got 'fast'" in message


# -- end to end ----------------------------------------------------------------------------------
def stored_bytes(folder: Path) -> dict[Path, bytes]:
    """Every file in a catalog folder: its SQLite database (and journal) and its object store."""
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_nowhere(secret: str, folder: Path, *outputs: str) -> None:
    holding = [str(p.relative_to(folder)) for p, data in stored_bytes(folder).items() if secret.encode() in data]
    assert not holding, f"{secret!r} is stored in {holding}"
    for text in outputs:
        assert secret not in text, f"{secret!r} is printed:\n{text}"


PARAMETRIZED = f'''
import pytest


@pytest.mark.parametrize("token", ["{SECRET}"])
@pytest.mark.parametrize("lr", [0.1, 0.2])
def experiment_token(lr, token, ml_instance, execution):
    """Uses a token"""
    return {{"lr": lr}}


@pytest.mark.parametrize("ssn", ["{SECRET}X"])
@pytest.mark.parametrize("auth_mode", ["visible-mode"])
def experiment_fails(ssn, auth_mode, ml_instance, execution):
    """Fails quoting its secrets"""
    token = "{SECRET}"
    raise RuntimeError(f"rejected token={{token}} for {{ssn}}")
'''


def test_parametrized_secrets_are_stored_nowhere(pytester: pytest.Pytester) -> None:
    root = make_project(
        pytester,
        {"experiment_token.py": PARAMETRIZED},
        ini="deriva_secret_names = ssn\nderiva_not_secret = auth_mode\n",
    )
    # pytest's own failure report quotes the exception as the experiment raised it (and, with CI
    # set, untruncated): that is pytest's output, not a record of ours, so it is turned off here.
    result = pytester.runpytest_subprocess("--deriva-run", "-v", "--tb=no", "-rN", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    assert_nowhere(SECRET, root / ".deriva", "\n".join(result.outlines), "\n".join(result.errlines))
    with catalog(root / ".deriva") as ml:
        details = [r["Status_Detail"] for r in ml.catalog.select("deriva-ml", "Execution") if r["Status"] == "Failed"]
        assert f"RuntimeError: rejected token={REDACTED} for {REDACTED}" in details, details
    # What is not secret is still recorded.
    assert any(b"visible-mode" in data for data in stored_bytes(root / ".deriva").values())


MODEL = """
def experiment_model(token="none", lr=0.1, ml_instance=None, execution=None):
    return {"lr": lr}
"""


def test_a_swept_secret_is_stored_nowhere(pytester: pytest.Pytester) -> None:
    root = make_project(pytester, {"experiment_model.py": MODEL})
    result = pytester.runpytest_subprocess(
        "--deriva-run",
        "-v",
        "-p",
        "no:cacheprovider",
        "experiment_model.py",
        "--deriva-sweep",
        f"token={SECRET}",
        "lr=0.1,0.2",
    )
    result.assert_outcomes(passed=2)
    assert_nowhere(SECRET, root / ".deriva", "\n".join(result.outlines), "\n".join(result.errlines))


TINY_WITH_TOKEN = '''\
"""A tiny model with a secret parameter."""


def train(
    lr: float = 0.1, epochs: int = 2, optimizer: str = "sgd", api_token: str = "", ml_instance=None, execution=None
) -> None:
    if execution is not None:
        execution.asset_file_path("Execution_Asset", "done.txt").write_text(f"lr={lr}")
'''


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "multirun"])
def test_deriva_run_secrets_are_stored_nowhere(project: Path, multirun: bool) -> None:
    from test_config_project import run_git, subprocess_env, write_project

    write_project(project)
    (project / "models" / "tiny.py").write_text(TINY_WITH_TOKEN)
    run_git(project, "commit", "-qam", "a model with a token")
    secret = f"model_config.api_token={SECRET},{SECRET}2" if multirun else f"model_config.api_token={SECRET}"
    args = ["--multirun", secret] if multirun else [secret]
    command = [str(Path(sys.executable).with_name("deriva-run")), "--config-dir", "configs", *args]
    done = subprocess.run(
        command, cwd=project, capture_output=True, text=True, timeout=120, env=subprocess_env(), check=False
    )
    assert done.returncode == 0, done.stderr
    with catalog(project / ".deriva") as ml:
        statuses = [r["Status"] for r in ml.catalog.select("deriva-ml", "Execution")]
        assert statuses, "nothing was recorded"
        assert set(statuses) == {"Completed"}, statuses
    # Hydra's own files in the run folders (out of the project and the catalog, named in the
    # summary) are the user's: left as they were.
    [where] = [line for line in done.stdout.splitlines() if line.startswith("Hydra's output folders: ")]
    folder = Path(where.removeprefix("Hydra's output folders: "))
    assert not folder.is_relative_to(project), folder
    assert any(SECRET in p.read_text() for p in folder.rglob(".hydra/overrides.yaml"))
    printed = [] if multirun else [done.stdout, done.stderr]  # Hydra itself prints a sweep's overrides
    assert_nowhere(SECRET, project / ".deriva", *printed)
