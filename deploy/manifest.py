#!/usr/bin/env python3
"""Print manifest.yml as JSON for Slack's apps.manifest.* API, or validate it with --check SCHEMA."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger("deploy.manifest")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = ROOT / "manifest.yml"
ENTRY_SCHEMA = "manifest.schema.json"
EPILOG = """\
examples:
  python deploy/manifest.py > manifest.json
  python deploy/manifest.py --check ../shared/data/slack-manifest-schema

The JSON is what apps.manifest.create / apps.manifest.update / apps.manifest.validate take as `manifest`.
--check accepts Slack's schema directory (its entry manifest.schema.json selects the versioned schema by
_metadata.major_version) or one schema file; $refs to Slack's published schema URLs resolve to files of
the same name beside it, never to the network.
"""


def load_manifest(path: Path) -> dict[str, Any]:
    """The manifest YAML as a dict; ValueError when it is not a mapping."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    return data


def schema_file(schema: Path) -> Path:
    """The schema to validate with: a directory's entry schema, or the given file."""
    return schema / ENTRY_SCHEMA if schema.is_dir() else schema


def _registry(directory: Path) -> Any:
    """A referencing.Registry that maps any schema URL to the file of the same name in `directory`."""
    referencing: Any = importlib.import_module("referencing")
    draft7 = importlib.import_module("referencing.jsonschema").DRAFT7

    def retrieve(uri: str) -> Any:
        path = directory / uri.rstrip("/").rsplit("/", 1)[-1]
        if not path.is_file():
            raise referencing.exceptions.NoSuchResource(ref=uri)
        contents = json.loads(path.read_text(encoding="utf-8"))
        return referencing.Resource.from_contents(contents, default_specification=draft7)

    return referencing.Registry(retrieve=retrieve)


def validate(manifest: dict[str, Any], schema: Path) -> list[str]:
    """Every schema violation of the manifest as 'path: message'; empty when it is valid."""
    jsonschema: Any = importlib.import_module("jsonschema")
    path = schema_file(schema)
    contents = json.loads(path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(contents, registry=_registry(path.parent))
    problems: list[str] = []
    for error in validator.iter_errors(manifest):
        for leaf in _leaves(error):
            problem = f"{'/'.join(map(str, leaf.absolute_path)) or '(root)'}: {leaf.message}"
            problems += [problem] if problem not in problems else []
    return sorted(problems)


def _leaves(error: Any) -> list[Any]:
    """The errors that explain a failure: for oneOf/anyOf, those of the branch that came closest."""
    if not error.context:
        return [error]
    branches: dict[Any, list[Any]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    return [leaf for sub in min(branches.values(), key=len) for leaf in _leaves(sub)]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the manifest as JSON, or check it against Slack's schema; the exit status says how it went."""
    parser = argparse.ArgumentParser(
        prog="python deploy/manifest.py",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST, help="default: %(default)s")
    parser.add_argument(
        "--check",
        metavar="SCHEMA",
        type=Path,
        help="validate against Slack's manifest JSON schema (a directory or a file) instead of printing",
    )
    parser.add_argument("--compact", action="store_true", help="print the JSON on one line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        manifest = load_manifest(args.manifest)
    except (OSError, ValueError, yaml.YAMLError) as error:
        logger.error("cannot read the manifest: %s", error)
        return 2
    if args.check is None:
        text = json.dumps(manifest, indent=None if args.compact else 2, ensure_ascii=False)
        sys.stdout.write(text + "\n")
        return 0
    try:
        problems = validate(manifest, args.check)
    except (OSError, ValueError, ImportError) as error:
        logger.error("cannot validate against %s: %s", args.check, error)
        return 2
    for problem in problems:
        logger.error("%s: %s", args.manifest.name, problem)
    if problems:
        return 1
    logger.info("%s is valid against %s", args.manifest, schema_file(args.check))
    return 0


if __name__ == "__main__":
    sys.exit(main())
