#!/usr/bin/env python3
"""Print the least-privilege IAM policy for the configured AWS models, or check a policy with --check.

The models come from IMAGINE_CHAT_MODEL, IMAGINE_IMAGE_MODEL, IMAGINE_EMBED_MODEL and the image services
(IMAGINE_UPSCALE_MODEL, IMAGINE_REMOVE_BACKGROUND_MODEL, ... IMAGINE_STYLE_MODEL, which follow a Bedrock
image model unless set) (or .env), and the region from IMAGINE_AWS_REGION; `offline` and `local:` models
need no AWS permission at all. The policy
allows exactly one action per service on exactly the resources the bot calls:

* `bedrock:InvokeModel` (InvokeModel and Converse both need it) on each foundation model ARN, which has no
  account: arn:aws:bedrock:REGION::foundation-model/ID;
* for a cross-Region inference profile (an id that starts with us., eu., apac., jp., au., ca., us-gov. or
  global.): the profile ARN arn:aws:bedrock:REGION:ACCOUNT:inference-profile/ID, plus the foundation
  model in every Region the profile may route to, usable only through that profile (condition
  bedrock:InferenceProfileArn), as AWS requires;
* `sagemaker:InvokeEndpoint` on arn:aws:sagemaker:REGION:ACCOUNT:endpoint/NAME for `sagemaker:NAME`.

Profiles and SageMaker endpoints live in an account, so they need --account-id (a wildcard account is not
least privilege). No Action or Resource holds a wildcard.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python deploy/iam_policy.py` from a checkout
    sys.path.insert(0, str(ROOT))

from bot.config import (  # noqa: E402
    EDIT_MODELS,
    PROVIDERS_CHAT,
    PROVIDERS_EMBED,
    PROVIDERS_IMAGE,
    ConfigError,
    edit_model_variable,
    edit_models_for,
    load_config,
    split_provider,
)

logger = logging.getLogger("deploy.iam_policy")

VERSION = "2012-10-17"
INVOKE_MODEL = "bedrock:InvokeModel"
INVOKE_ENDPOINT = "sagemaker:InvokeEndpoint"
ACTIONS = (INVOKE_MODEL, INVOKE_ENDPOINT)
PROFILE_CONDITION = "bedrock:InferenceProfileArn"
CONDITION_OPERATOR = "ArnEquals"
GLOBAL = "global"
# Where a geographic cross-Region profile may send a request, by the prefix of its id. AWS lists each
# profile's exact destinations (they differ by model and source Region): `aws bedrock get-inference-profile
# --inference-profile-identifier ID --query 'models[].modelArn'`. These sets are the union per geography
# at the time of writing; the foundation-model grants are conditioned on the profile ARN, so a Region the
# profile never uses grants nothing, while a missing one fails when Bedrock routes there.
# Pin them with --destination-regions PREFIX=REGION,REGION.
DESTINATIONS: dict[str, tuple[str, ...]] = {
    "us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2"),
    "us-gov": ("us-gov-east-1", "us-gov-west-1"),
    "ca": ("ca-central-1", "ca-west-1"),
    "eu": (
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
    ),
    "apac": (
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
    ),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
}
PROFILE_PREFIX = re.compile(rf"^({'|'.join(sorted([*DESTINATIONS, GLOBAL], key=len, reverse=True))})\.(.+)$")
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
ACCOUNT = re.compile(r"^\d{12}$")
BEDROCK_ID = re.compile(r"^[a-z0-9][a-z0-9.:-]*[a-z0-9]$")
ENDPOINT = re.compile(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$")  # SageMaker's endpoint name rule
ARN = re.compile(
    r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:(bedrock|sagemaker):[a-z0-9-]*:(\d{12})?:[A-Za-z0-9./:_-]+$"
)
EPILOG = """\
examples:
  python deploy/iam_policy.py --account-id 123456789012 > imagine-bot-policy.json
  IMAGINE_IMAGE_MODEL=sagemaker:my-sdxl python deploy/iam_policy.py --account-id 123456789012
  python deploy/iam_policy.py --check imagine-bot-policy.json

Attach the policy to the role the bot runs as (task role, instance profile). --extra-image-model allows
the models people may pick with /imagine --model or in their defaults; others fail with AccessDenied.
"""


class PolicyError(ValueError):
    """The configuration cannot give a least-privilege policy (the message says what to set)."""


@dataclass
class Grants:
    """What the bot calls: direct resources per action, and foundation models reachable via a profile."""

    direct: dict[str, set[str]] = field(default_factory=lambda: {action: set() for action in ACTIONS})
    via_profile: dict[str, set[str]] = field(default_factory=dict)  # profile ARN -> foundation-model ARNs
    sources: list[str] = field(default_factory=list)  # the config each grant comes from


def partition(region: str) -> str:
    """The ARN partition of a Region."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def foundation_model_arn(region: str, model_id: str, within: str | None = None) -> str:
    """arn:aws:bedrock:REGION::foundation-model/ID (region '' for a global profile's other Regions)."""
    return f"arn:{within or partition(region)}:bedrock:{region}::foundation-model/{model_id}"


def _account(account_id: str | None, what: str) -> str:
    """The account id, or PolicyError saying why it is needed."""
    if account_id is None:
        raise PolicyError(f"{what} lives in an AWS account: pass --account-id (12 digits)")
    if not ACCOUNT.match(account_id):
        raise PolicyError(f"--account-id must be 12 digits, got {account_id!r}")
    return account_id


def add_bedrock(
    grants: Grants,
    model_id: str,
    region: str,
    account_id: str | None,
    destinations: Mapping[str, Sequence[str]],
) -> None:
    """The resources of one Bedrock model id (foundation model, cross-Region profile or a given ARN)."""
    if model_id.startswith("arn:"):
        if ":application-inference-profile/" in model_id or not ARN.match(model_id):
            raise PolicyError(
                f"{model_id!r}: only foundation-model and cross-Region inference-profile ids are supported; "
                "write the policy for an application inference profile by hand"
            )
        match = re.search(r":(foundation-model|inference-profile)/(.+)$", model_id)
        if match is None:
            raise PolicyError(f"{model_id!r} is not a foundation-model or inference-profile ARN")
        model_id = match.group(2)
    if not BEDROCK_ID.match(model_id):
        raise PolicyError(f"{model_id!r} is not a Bedrock model id")
    profile = PROFILE_PREFIX.match(model_id)
    if profile is None:
        grants.direct[INVOKE_MODEL].add(foundation_model_arn(region, model_id))
        return
    prefix, base = profile.groups()
    account = _account(account_id, f"the inference profile {model_id}")
    profile_arn = f"arn:{partition(region)}:bedrock:{region}:{account}:inference-profile/{model_id}"
    grants.direct[INVOKE_MODEL].add(profile_arn)
    if prefix == GLOBAL:  # AWS: the source Region's model plus the Region-less ARN for all others
        reached = [foundation_model_arn(region, base), foundation_model_arn("", base, partition(region))]
    else:
        regions = tuple(destinations.get(prefix, ()))
        if not regions:
            raise PolicyError(f"no destination Regions known for {prefix}.: pass --destination-regions")
        if region not in regions:
            raise PolicyError(
                f"{model_id} is a {prefix}. profile but IMAGINE_AWS_REGION={region} is not one of its "
                f"Regions ({', '.join(regions)}); call it from one of them"
            )
        reached = [foundation_model_arn(r, base) for r in regions]
    grants.via_profile.setdefault(profile_arn, set()).update(reached)


def add_sagemaker(grants: Grants, endpoint: str, region: str, account_id: str | None) -> None:
    """The ARN of one SageMaker endpoint (SageMaker ARNs spell resource names in lower case)."""
    if not ENDPOINT.match(endpoint):
        raise PolicyError(f"{endpoint!r} is not a SageMaker endpoint name")
    account = _account(account_id, f"the SageMaker endpoint {endpoint}")
    arn = f"arn:{partition(region)}:sagemaker:{region}:{account}:endpoint/{endpoint.lower()}"
    grants.direct[INVOKE_ENDPOINT].add(arn)


def collect(
    models: Mapping[str, str],
    region: str,
    account_id: str | None = None,
    destinations: Mapping[str, Sequence[str]] = DESTINATIONS,
) -> Grants:
    """The grants for config `models` (variable name -> 'provider:model-id')."""
    if not REGION.match(region):
        raise PolicyError(f"IMAGINE_AWS_REGION={region!r} is not an AWS Region")
    providers = {
        "IMAGINE_CHAT_MODEL": PROVIDERS_CHAT,
        "IMAGINE_CONCEPT_PLANNER": PROVIDERS_CHAT,
        "IMAGINE_EMBED_MODEL": PROVIDERS_EMBED,
    }
    grants = Grants()
    for variable, value in models.items():
        try:
            provider, model_id = split_provider(value, variable, providers.get(variable, PROVIDERS_IMAGE))
        except ConfigError as exc:
            raise PolicyError(str(exc)) from None
        if provider == "bedrock":
            add_bedrock(grants, model_id, region, account_id, destinations)
        elif provider == "sagemaker":
            add_sagemaker(grants, model_id, region, account_id)
        else:
            continue
        grants.sources.append(f"{variable}={value}")
    return grants


def build_policy(grants: Grants) -> dict[str, Any] | None:
    """The IAM policy document for the grants, or None when no AWS permission is needed."""
    statements: list[dict[str, Any]] = []
    if grants.direct[INVOKE_MODEL]:
        statements.append(_statement("InvokeBedrockModels", INVOKE_MODEL, grants.direct[INVOKE_MODEL]))
    for number, (profile_arn, models) in enumerate(sorted(grants.via_profile.items()), start=1):
        statement = _statement(f"InvokeModelsThroughProfile{number}", INVOKE_MODEL, models)
        statement["Condition"] = {CONDITION_OPERATOR: {PROFILE_CONDITION: profile_arn}}
        statements.append(statement)
    if grants.direct[INVOKE_ENDPOINT]:
        statements.append(
            _statement("InvokeSageMakerEndpoints", INVOKE_ENDPOINT, grants.direct[INVOKE_ENDPOINT])
        )
    return {"Version": VERSION, "Statement": statements} if statements else None


def _statement(sid: str, action: str, resources: Iterable[str]) -> dict[str, Any]:
    """One Allow statement."""
    return {"Sid": sid, "Effect": "Allow", "Action": action, "Resource": sorted(resources)}


def check(policy: Any) -> list[str]:
    """Every way the document falls short of a least-privilege policy for this bot (empty when none)."""
    if not isinstance(policy, dict):
        return ["the policy is not a JSON object"]
    problems = [
        f"unexpected top-level key {key!r}" for key in policy if key not in ("Version", "Statement", "Id")
    ]
    if policy.get("Version") != VERSION:
        problems.append(f"Version must be {VERSION!r}")
    statements = policy.get("Statement")
    if not isinstance(statements, list) or not statements:
        return [*problems, "Statement must be a non-empty list"]
    sids: set[str] = set()
    for index, statement in enumerate(statements):
        where = f"Statement[{index}]"
        if not isinstance(statement, dict):
            problems.append(f"{where} is not an object")
            continue
        problems += _check_statement(statement, where, sids)
    return problems


def _check_statement(statement: dict[str, Any], where: str, sids: set[str]) -> list[str]:
    """The problems of one statement."""
    problems = []
    allowed = {"Sid", "Effect", "Action", "Resource", "Condition"}
    problems += [
        f"{where}: {key} is not allowed (only {sorted(allowed)})" for key in statement if key not in allowed
    ]
    sid = statement.get("Sid")
    if not isinstance(sid, str) or not re.fullmatch(r"[A-Za-z0-9]+", sid) or sid in sids:
        problems.append(f"{where}: Sid must be a unique alphanumeric string")
    sids.add(str(sid))
    if statement.get("Effect") != "Allow":
        problems.append(f"{where}: Effect must be Allow")
    actions = statement.get("Action")
    actions = [actions] if isinstance(actions, str) else actions
    if not isinstance(actions, list) or not actions or not all(isinstance(a, str) for a in actions):
        return [*problems, f"{where}: Action must be a string or a list of strings"]
    problems += [f"{where}: action {a!r} is not one of {ACTIONS}" for a in actions if a not in ACTIONS]
    resources = statement.get("Resource")
    resources = [resources] if isinstance(resources, str) else resources
    if not isinstance(resources, list) or not resources or not all(isinstance(r, str) for r in resources):
        return [*problems, f"{where}: Resource must be a string or a non-empty list of strings"]
    for resource in resources:
        if "*" in resource or "?" in resource or not ARN.match(resource):
            problems.append(f"{where}: {resource!r} is not a specific ARN (no wildcards)")
        elif any(resource.split(":")[2] != action.split(":")[0] for action in actions):
            problems.append(f"{where}: {resource!r} does not belong to {actions}")
        elif (":inference-profile/" in resource or ":endpoint/" in resource) and not ACCOUNT.match(
            resource.split(":")[4]
        ):
            problems.append(f"{where}: {resource!r} needs its 12-digit account")
    condition = statement.get("Condition")
    if condition is not None and not _profile_condition(condition):
        problems.append(f"{where}: the only Condition allowed is {CONDITION_OPERATOR} {PROFILE_CONDITION}")
    return problems


def _profile_condition(condition: Any) -> bool:
    """True for {"ArnEquals": {"bedrock:InferenceProfileArn": "<an inference-profile ARN>"}}."""
    if not isinstance(condition, dict) or set(condition) != {CONDITION_OPERATOR}:
        return False
    inner = condition[CONDITION_OPERATOR]
    if not isinstance(inner, dict) or set(inner) != {PROFILE_CONDITION}:
        return False
    value = inner[PROFILE_CONDITION]
    return isinstance(value, str) and bool(ARN.match(value)) and ":inference-profile/" in value


def parse_destinations(values: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """DESTINATIONS with each PREFIX=REGION,REGION override applied."""
    chosen = dict(DESTINATIONS)
    for value in values:
        prefix, sep, regions = value.partition("=")
        listed = tuple(r.strip() for r in regions.split(",") if r.strip())
        if not sep or prefix not in DESTINATIONS or not listed or not all(REGION.match(r) for r in listed):
            raise PolicyError(
                f"--destination-regions {value!r}: use PREFIX=REGION[,REGION…], e.g. us=us-east-1"
            )
        chosen[prefix] = listed
    return chosen


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python deploy/iam_policy.py",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--account-id", help="the 12-digit AWS account (needed for profiles and SageMaker)")
    parser.add_argument("--region", help="default: IMAGINE_AWS_REGION")
    parser.add_argument("--chat-model", help="default: IMAGINE_CHAT_MODEL")
    parser.add_argument("--image-model", help="default: IMAGINE_IMAGE_MODEL")
    parser.add_argument("--embed-model", help="default: IMAGINE_EMBED_MODEL")
    parser.add_argument(
        "--extra-image-model",
        action="append",
        default=[],
        metavar="MODEL",
        help="another image model people may choose (provider:model-id); repeatable",
    )
    parser.add_argument(
        "--destination-regions",
        action="append",
        default=[],
        metavar="PREFIX=REGIONS",
        help="the Regions a us./eu./apac./… profile routes to, e.g. us=us-east-1,us-west-2; repeatable",
    )
    parser.add_argument(
        "--check",
        nargs="?",
        const="-",
        metavar="FILE",
        help="validate a policy file (or, with no FILE, the generated policy) instead of printing",
    )
    parser.add_argument("--compact", action="store_true", help="print the JSON on one line")
    return parser


def models_of(args: argparse.Namespace) -> tuple[dict[str, str], str]:
    """The models to grant (variable -> value) and the Region, from the flags or the config."""
    config = None
    if None in (args.chat_model, args.image_model, args.embed_model, args.region):
        config = load_config()
    models = {
        "IMAGINE_CHAT_MODEL": args.chat_model or (config.chat_model if config else "offline"),
        "IMAGINE_IMAGE_MODEL": args.image_model or (config.image_model if config else "offline"),
        "IMAGINE_EMBED_MODEL": args.embed_model or (config.embed_model if config else "local:x"),
    }
    if config and config.concept_planner != "off":  # Claude writing the search's concept plans
        models["IMAGINE_CONCEPT_PLANNER"] = config.concept_planner
    chosen = {op: getattr(config, field) for op, (field, _) in EDIT_MODELS.items()} if config else {}
    for operation, value in edit_models_for(models["IMAGINE_IMAGE_MODEL"], chosen).items():
        models[edit_model_variable(operation)] = value  # the image services follow a Bedrock image model
    for number, extra in enumerate(args.extra_image_model, start=1):
        models[f"--extra-image-model #{number}"] = extra
    region = args.region or (config.aws_region if config else "us-east-1")
    return models, region


def main(argv: Sequence[str] | None = None) -> int:
    """Print the policy (exit 0), or check one (exit 1 on problems); 2 when the configuration is unusable."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.check not in (None, "-"):
        try:
            policy = json.loads(Path(args.check).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            logger.error("cannot read %s: %s", args.check, error)
            return 2
        return _report(check(policy), args.check)
    try:
        models, region = models_of(args)
        grants = collect(models, region, args.account_id, parse_destinations(args.destination_regions))
    except (PolicyError, ConfigError) as error:
        logger.error("error: %s", error)
        return 2
    policy = build_policy(grants)
    if policy is None:
        logger.info(
            "no AWS permission is needed: the chat, image and embedding models are offline or local "
            "(set IMAGINE_CHAT_MODEL / IMAGINE_IMAGE_MODEL / IMAGINE_EMBED_MODEL to bedrock:… or sagemaker:…)"
        )
        return 0
    if args.check == "-":
        return _report(check(policy), "the generated policy")
    sys.stdout.write(json.dumps(policy, indent=None if args.compact else 2) + "\n")
    logger.info("granted for %s in %s", ", ".join(grants.sources), region)
    return 0


def _report(problems: list[str], what: str) -> int:
    """Log the problems of a checked policy; the exit status."""
    for problem in problems:
        logger.error("%s: %s", what, problem)
    if problems:
        return 1
    logger.info("%s is a least-privilege policy: only %s on named ARNs", what, " and ".join(ACTIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
