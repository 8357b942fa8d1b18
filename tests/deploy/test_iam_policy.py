"""deploy/iam_policy.py: the least-privilege IAM policy for the configured models, and its --check."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "iam_policy.py"
ACCOUNT = "123456789012"
HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"
SD35 = "stability.sd3-5-large-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"


@pytest.fixture(scope="module")
def iam() -> ModuleType:
    """deploy/iam_policy.py as a module."""
    spec = importlib.util.spec_from_file_location("deploy_iam_policy", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def policy_for(
    iam: ModuleType, region: str = "us-east-1", account: str | None = ACCOUNT, **models: str
) -> Any:
    """The policy for models given as chat=/image=/embed=/extra= values."""
    names = {"chat": "IMAGINE_CHAT_MODEL", "image": "IMAGINE_IMAGE_MODEL", "embed": "IMAGINE_EMBED_MODEL"}
    settings = {names.get(key, key): value for key, value in models.items()}
    return iam.build_policy(iam.collect(settings, region, account))


def resources(policy: dict[str, Any]) -> list[str]:
    """Every Resource of every statement."""
    return [r for statement in policy["Statement"] for r in statement["Resource"]]


def assert_least_privilege(iam: ModuleType, policy: dict[str, Any]) -> None:
    """The structure check passes and no Action or Resource has a wildcard."""
    assert iam.check(policy) == []
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Action"] in iam.ACTIONS
        assert "*" not in json.dumps(statement["Action"]) and "*" not in json.dumps(statement["Resource"])


def test_a_foundation_model_is_its_own_arn_without_an_account(iam: ModuleType) -> None:
    policy = policy_for(iam, account=None, chat="offline", image=f"bedrock:{SD35}", embed="local:x")
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeBedrockModels",
                "Effect": "Allow",
                "Action": "bedrock:InvokeModel",
                "Resource": [f"arn:aws:bedrock:us-east-1::foundation-model/{SD35}"],
            }
        ],
    }
    assert_least_privilege(iam, policy)


def test_a_us_profile_grants_the_profile_and_its_models_only_through_it(iam: ModuleType) -> None:
    policy = policy_for(
        iam, "us-west-2", chat=f"bedrock:us.{HAIKU}", image=f"bedrock:{SD35}", embed=f"bedrock:{TITAN}"
    )
    profile = f"arn:aws:bedrock:us-west-2:{ACCOUNT}:inference-profile/us.{HAIKU}"
    direct, routed = policy["Statement"]
    assert direct["Resource"] == sorted(
        [
            profile,
            f"arn:aws:bedrock:us-west-2::foundation-model/{SD35}",
            f"arn:aws:bedrock:us-west-2::foundation-model/{TITAN}",
        ]
    )
    assert routed["Resource"] == [
        f"arn:aws:bedrock:{region}::foundation-model/{HAIKU}"
        for region in ("us-east-1", "us-east-2", "us-west-1", "us-west-2")
    ]
    assert routed["Condition"] == {"ArnEquals": {"bedrock:InferenceProfileArn": profile}}
    assert_least_privilege(iam, policy)


@pytest.mark.parametrize(
    ("prefix", "region", "reached"),
    [
        ("eu", "eu-west-1", {"eu-central-1", "eu-north-1", "eu-west-1", "eu-west-3"}),
        ("apac", "ap-southeast-2", {"ap-northeast-1", "ap-south-1", "ap-southeast-2"}),
        ("jp", "ap-northeast-1", {"ap-northeast-1", "ap-northeast-3"}),
        ("au", "ap-southeast-2", {"ap-southeast-2", "ap-southeast-4"}),
    ],
)
def test_each_geography_expands_to_its_regions(
    iam: ModuleType, prefix: str, region: str, reached: set[str]
) -> None:
    policy = policy_for(iam, region, chat=f"bedrock:{prefix}.{HAIKU}")
    routed = policy["Statement"][1]["Resource"]
    regions = {arn.split(":")[3] for arn in routed}
    assert reached <= regions and regions == set(iam.DESTINATIONS[prefix])
    assert all(arn.endswith(f"::foundation-model/{HAIKU}") for arn in routed)
    assert_least_privilege(iam, policy)


def test_a_global_profile_adds_the_region_less_model_arn(iam: ModuleType) -> None:
    policy = policy_for(iam, "eu-central-1", chat=f"bedrock:global.{HAIKU}")
    assert policy["Statement"][1]["Resource"] == sorted(
        [
            f"arn:aws:bedrock:::foundation-model/{HAIKU}",
            f"arn:aws:bedrock:eu-central-1::foundation-model/{HAIKU}",
        ]
    )
    assert_least_privilege(iam, policy)


def test_pinned_destination_regions_replace_the_default_set(iam: ModuleType) -> None:
    destinations = iam.parse_destinations(["us=us-east-1,us-west-2"])
    grants = iam.collect({"IMAGINE_CHAT_MODEL": f"bedrock:us.{HAIKU}"}, "us-east-1", ACCOUNT, destinations)
    routed = iam.build_policy(grants)["Statement"][1]["Resource"]
    assert [arn.split(":")[3] for arn in routed] == ["us-east-1", "us-west-2"]
    for bad in ("us", "xx=us-east-1", "us=", "us=not-a-region"):
        with pytest.raises(iam.PolicyError, match="--destination-regions"):
            iam.parse_destinations([bad])


def test_a_sagemaker_endpoint_is_invoke_endpoint_on_its_lower_case_arn(iam: ModuleType) -> None:
    policy = policy_for(iam, "us-east-1", chat="offline", image="sagemaker:My-SDXL-Endpoint")
    assert policy["Statement"] == [
        {
            "Sid": "InvokeSageMakerEndpoints",
            "Effect": "Allow",
            "Action": "sagemaker:InvokeEndpoint",
            "Resource": [f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/my-sdxl-endpoint"],
        }
    ]
    assert_least_privilege(iam, policy)
    with pytest.raises(iam.PolicyError, match="not a SageMaker endpoint name"):
        policy_for(iam, image="sagemaker:bad_name!")


def test_profiles_and_endpoints_need_the_account(iam: ModuleType) -> None:
    for model in (f"bedrock:us.{HAIKU}", "sagemaker:sdxl"):
        with pytest.raises(iam.PolicyError, match="--account-id"):
            policy_for(iam, account=None, image=model)
        with pytest.raises(iam.PolicyError, match="12 digits"):
            policy_for(iam, account="*", image=model)


def test_a_profile_must_be_called_from_its_geography(iam: ModuleType) -> None:
    with pytest.raises(iam.PolicyError, match="IMAGINE_AWS_REGION=eu-west-1 is not one of its Regions"):
        policy_for(iam, "eu-west-1", chat=f"bedrock:us.{HAIKU}")
    with pytest.raises(iam.PolicyError, match="not an AWS Region"):
        policy_for(iam, "*", chat=f"bedrock:{HAIKU}")


def test_offline_and_local_models_need_no_policy(iam: ModuleType) -> None:
    assert (
        policy_for(iam, account=None, chat="offline", image="offline", embed="local:all-MiniLM-L6-v2") is None
    )


def test_the_same_model_twice_is_granted_once_and_arns_pass_through(iam: ModuleType) -> None:
    arn = f"arn:aws:bedrock:us-east-1::foundation-model/{SD35}"
    policy = policy_for(iam, image=f"bedrock:{SD35}", extra=f"bedrock:{arn}")
    assert resources(policy) == [arn]
    profile = f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/us.{HAIKU}"
    assert profile in resources(policy_for(iam, chat=f"bedrock:{profile}"))
    with pytest.raises(iam.PolicyError, match="application inference profile"):
        policy_for(iam, chat=f"bedrock:arn:aws:bedrock:us-east-1:{ACCOUNT}:application-inference-profile/abc")


def test_other_partitions_get_their_arn_prefix(iam: ModuleType) -> None:
    assert resources(policy_for(iam, "cn-north-1", image=f"bedrock:{SD35}")) == [
        f"arn:aws-cn:bedrock:cn-north-1::foundation-model/{SD35}"
    ]
    gov = policy_for(iam, "us-gov-west-1", chat=f"bedrock:us-gov.{HAIKU}")
    assert all(arn.startswith("arn:aws-us-gov:bedrock:us-gov-") for arn in resources(gov))


FM_STAR = "arn:aws:bedrock:us-east-1::foundation-model/*"
NO_ACCOUNT = "arn:aws:sagemaker:us-east-1::endpoint/sdxl"
SD35_ARN = f"arn:aws:bedrock:us-east-1::foundation-model/{SD35}"
REGION_CONDITION = {"StringLike": {"aws:RequestedRegion": "*"}}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda p: p["Statement"][0].update(Resource=["*"]), "no wildcards"),
        (lambda p: p["Statement"][0].update(Resource=[FM_STAR]), "wildcard"),
        (lambda p: p["Statement"][0].update(Action="bedrock:*"), "is not one of"),
        (lambda p: p["Statement"][0].update(Action="bedrock:InvokeModelWithResponseStream"), "is not one of"),
        (lambda p: p["Statement"][0].update(Effect="Deny"), "Effect must be Allow"),
        (lambda p: p["Statement"][0].update(NotResource=["x"]), "NotResource is not allowed"),
        (lambda p: p["Statement"][1].update(Condition=REGION_CONDITION), "Condition"),
        (lambda p: p["Statement"][2].update(Resource=[NO_ACCOUNT]), "account"),
        (lambda p: p["Statement"][2].update(Resource=[SD35_ARN]), "does not belong"),
        (lambda p: p["Statement"][1].update(Sid=p["Statement"][0]["Sid"]), "Sid"),
        (lambda p: p.update(Version="2008-10-17"), "Version"),
        (lambda p: p.update(Statement=[]), "non-empty"),
    ],
)
def test_check_names_what_is_not_least_privilege(iam: ModuleType, change: Any, problem: str) -> None:
    policy = policy_for(iam, chat=f"bedrock:us.{HAIKU}", image="sagemaker:sdxl", embed=f"bedrock:{TITAN}")
    assert iam.check(policy) == []
    change(policy)
    problems = iam.check(policy)
    assert problems and any(problem in p for p in problems), problems


def test_every_combination_of_model_kinds_is_least_privilege(iam: ModuleType) -> None:
    chats = ["offline", f"bedrock:{HAIKU}", f"bedrock:us.{HAIKU}", f"bedrock:global.{HAIKU}"]
    images = ["offline", f"bedrock:{SD35}", "bedrock:amazon.nova-canvas-v1:0", "sagemaker:sdxl"]
    embeds = ["local:all-MiniLM-L6-v2", f"bedrock:{TITAN}"]
    checked = 0
    for chat in chats:
        for image in images:
            for embed in embeds:
                policy = policy_for(iam, chat=chat, image=image, embed=embed)
                if policy is None:
                    assert (chat, image, embed) == ("offline", "offline", embeds[0])
                    continue
                assert_least_privilege(iam, policy)
                for model in (chat, image, embed):
                    if model.startswith(("bedrock:", "sagemaker:")):
                        name = model.split(":", 1)[1].lower()
                        assert any(arn.endswith("/" + name) for arn in resources(policy)), (model, policy)
                checked += 1
    assert checked == len(chats) * len(images) * len(embeds) - 1


# --- the command line --------------------------------------------------------------------------------------
def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """python deploy/iam_policy.py with IMAGINE_* taken from `env` only."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "AWS_"))}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=False,
        timeout=60,
    )


def test_the_cli_prints_the_policy_for_the_configured_models(tmp_path: Path) -> None:
    help_text = run("--help")
    assert help_text.returncode == 0 and "--account-id" in help_text.stdout and "--check" in help_text.stdout
    done = run(
        "--account-id",
        ACCOUNT,
        IMAGINE_CHAT_MODEL=f"bedrock:us.{HAIKU}",
        IMAGINE_IMAGE_MODEL=f"bedrock:{SD35}",
        IMAGINE_AWS_REGION="us-east-2",
    )
    assert done.returncode == 0, done.stderr
    policy = json.loads(done.stdout)
    assert f"arn:aws:bedrock:us-east-2:{ACCOUNT}:inference-profile/us.{HAIKU}" in resources(policy)
    assert "IMAGINE_CHAT_MODEL" in done.stderr
    for service in (
        "stable-fast-upscale-v1:0",
        "stable-image-remove-background-v1:0",
        "stable-outpaint-v1:0",
    ):
        # the image services follow the Bedrock image model: their profiles, and their models through them
        assert f"arn:aws:bedrock:us-east-2:{ACCOUNT}:inference-profile/us.stability.{service}" in resources(
            policy
        )
        assert f"arn:aws:bedrock:us-west-2::foundation-model/stability.{service}" in resources(policy)
    assert "IMAGINE_UPSCALE_MODEL=bedrock:us.stability.stable-fast-upscale-v1:0" in done.stderr
    planning = run(
        "--account-id", ACCOUNT, IMAGINE_CONCEPT_PLANNER=f"bedrock:{HAIKU}", IMAGINE_AWS_REGION="us-east-2"
    )
    assert planning.returncode == 0, planning.stderr  # the search's concept planner is granted its model
    assert resources(json.loads(planning.stdout)) == [f"arn:aws:bedrock:us-east-2::foundation-model/{HAIKU}"]
    assert f"IMAGINE_CONCEPT_PLANNER=bedrock:{HAIKU}" in planning.stderr
    offline_edits = run(
        "--account-id", ACCOUNT, IMAGINE_IMAGE_MODEL=f"bedrock:{SD35}", IMAGINE_UPSCALE_MODEL="offline"
    )
    assert "stable-fast-upscale" not in offline_edits.stdout and "stable-outpaint" in offline_edits.stdout
    saved = tmp_path / "policy.json"
    saved.write_text(done.stdout)
    assert run("--check", str(saved)).returncode == 0
    policy["Statement"][0]["Resource"].append("arn:aws:bedrock:*::foundation-model/*")
    saved.write_text(json.dumps(policy))
    bad = run("--check", str(saved))
    assert bad.returncode == 1 and "no wildcards" in bad.stderr
    generated = run("--check", "--account-id", ACCOUNT, IMAGINE_IMAGE_MODEL="sagemaker:sdxl")
    assert generated.returncode == 0 and "least-privilege" in generated.stderr


def test_the_cli_explains_offline_models_and_missing_accounts() -> None:
    offline = run()
    assert (
        offline.returncode == 0 and offline.stdout == "" and "no AWS permission is needed" in offline.stderr
    )
    missing = run(IMAGINE_CHAT_MODEL=f"bedrock:us.{HAIKU}")
    assert missing.returncode == 2 and "--account-id" in missing.stderr and missing.stdout == ""
    broken = run(IMAGINE_IMAGE_MODEL="dalle:3")
    assert broken.returncode == 2 and "IMAGINE_IMAGE_MODEL" in broken.stderr
