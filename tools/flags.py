"""Change the feature flags in the cluster: `python -m tools.flags list|get|set|enable|disable`.

Edits the flags ConfigMap through the Kubernetes API (kubeconfig, or the in-cluster
service account). Every change is validated before it is written and patched with
the resourceVersion it was read at; on a conflict the ConfigMap is read again and
the change re-applied, so concurrent changes are never lost.
"""
import argparse
import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from backend.flags import FlagFileError, validate

RETRIES = 5


class FlagsToolError(Exception):
    pass


def describe(document):
    """One line per flag: name, state, default variant, and whether it has targeting."""
    lines = []
    for name, flag in sorted(document["flags"].items()):
        rule = " (targeting)" if flag.get("targeting") else ""
        lines.append(f"{name}\t{flag['state']}\t{flag['defaultVariant']}{rule}\tvariants: {', '.join(flag['variants'])}")
    return lines


def change(document, command, name, variant=None):
    """The document after `command` (set/enable/disable) on flag `name`, and what changed."""
    new = json.loads(json.dumps(document))
    flag = new["flags"].get(name)
    if flag is None:
        raise FlagsToolError(f"no flag {name!r}; flags: {', '.join(sorted(new['flags']))}")
    if command == "set":
        if variant not in flag["variants"]:
            raise FlagsToolError(f"{name} has no variant {variant!r}; variants: {', '.join(flag['variants'])}")
        field, old, value = "defaultVariant", flag["defaultVariant"], variant
    else:
        field, old, value = "state", flag["state"], "ENABLED" if command == "enable" else "DISABLED"
    flag[field] = value
    try:
        validate(new)
    except FlagFileError as exc:
        raise FlagsToolError(f"the result would be invalid: {exc}") from None
    return new, f"{name}: {field} {old} -> {value}" if old != value else f"{name}: {field} already {value}"


def parse_document(configmap, key):
    try:
        document = json.loads((configmap.data or {})[key])
        validate(document)
    except KeyError:
        raise FlagsToolError(f"ConfigMap {configmap.metadata.name} has no key {key}") from None
    except (ValueError, FlagFileError) as exc:
        raise FlagsToolError(f"the flags in the cluster are invalid: {exc}") from None
    return document


def _api_error(exc, args):
    if exc.status == 403:
        return FlagsToolError(f"not allowed: this account may not do that to ConfigMap {args.configmap} in namespace "
                              f"{args.namespace} (Kubernetes answered 403 Forbidden)")
    if exc.status == 404:
        return FlagsToolError(f"ConfigMap {args.configmap} not found in namespace {args.namespace}")
    return FlagsToolError(f"Kubernetes answered {exc.status} {exc.reason}")


def run(args, api):
    """Carry out one command against the API; returns the lines to print."""
    try:
        for _ in range(RETRIES):
            configmap = api.read_namespaced_config_map(args.configmap, args.namespace)
            document = parse_document(configmap, args.key)
            if args.command == "list":
                return describe(document)
            if args.command == "get":
                flag = document["flags"].get(args.name)
                if flag is None:
                    raise FlagsToolError(f"no flag {args.name!r}")
                return [json.dumps(flag, indent=2)]
            new, what = change(document, args.command, args.name, getattr(args, "variant", None))
            if new == document:
                return [what]
            body = {"metadata": {"resourceVersion": configmap.metadata.resource_version},
                    "data": {args.key: json.dumps(new, indent=2) + "\n"}}
            try:
                api.patch_namespaced_config_map(args.configmap, args.namespace, body)
                return [what]
            except ApiException as exc:
                if exc.status != 409:
                    raise
        raise FlagsToolError(f"gave up after {RETRIES} conflicting updates; try again")
    except ApiException as exc:
        raise _api_error(exc, args) from None


def parser():
    p = argparse.ArgumentParser(prog="python -m tools.flags", description=__doc__.splitlines()[0])
    p.add_argument("--namespace", default="kyb")
    p.add_argument("--configmap", default="kyb-flags")
    p.add_argument("--key", default="flags.json")
    p.add_argument("--kubeconfig", help="default: $KUBECONFIG, ~/.kube/config, or in-cluster")
    p.add_argument("--as", dest="impersonate", help="act as this user or system:serviceaccount:NS:NAME")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every flag with its state and default variant")
    for name in ("get", "enable", "disable"):
        sub.add_parser(name).add_argument("name")
    set_cmd = sub.add_parser("set", help="make VARIANT the flag's default variant")
    set_cmd.add_argument("name")
    set_cmd.add_argument("variant")
    return p


def api_client(args):
    if args.kubeconfig:
        config.load_kube_config(config_file=args.kubeconfig)
    else:
        config.load_config()
    api = client.ApiClient()
    if args.impersonate:
        api.set_default_header("Impersonate-User", args.impersonate)
    return client.CoreV1Api(api)


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        lines = run(args, api_client(args))
    except FlagsToolError as exc:
        print(f"flags: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
