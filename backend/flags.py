"""Feature flags: flagd's flag-definition JSON, read from a file that Kubernetes keeps live.

The file is a ConfigMap mounted as a directory: kubelet writes a new timestamped
directory and swaps the `..data` symlink, so the path never changes but the file
behind it does. `FlagFile` notices that with one `os.stat` at most every
RELOAD_SECONDS, inside the request that evaluates a flag, so it needs no thread and
is safe in preforked gunicorn workers. A file that does not parse or does not
follow the schema is rejected: the last good flags stay in force, the error is
logged and shown by /api/v1/flags and /readyz.

Evaluation goes through the OpenFeature SDK with `FlagFileProvider`; the rules are
flagd's: `state`, `variants`, `defaultVariant`, and `targeting` in JsonLogic with
flagd's `fractional`, `starts_with` and `ends_with` (see README for why not the flagd
provider itself).
"""
import hashlib
import json
import logging
import os
import threading
import time

from flask import current_app
from openfeature import api as openfeature
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

log = logging.getLogger(__name__)

RELOAD_SECONDS = 0.5
FLAG_KEYS = {"state", "variants", "defaultVariant", "targeting", "metadata"}


class FlagFileError(ValueError):
    pass


class FlagDisabled(Exception):
    pass


# --- JsonLogic, as flagd evaluates it ------------------------------------------------

def murmur3_32(data: bytes, seed=0):
    """MurmurHash3 x86 32-bit, signed, as flagd uses it for `fractional` buckets."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed
    rounded = len(data) - len(data) % 4
    for i in range(0, rounded, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    k = int.from_bytes(data[rounded:], "little") if len(data) % 4 else 0
    if len(data) % 4:
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        h ^= (k * c2) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def _var(data, path, default=None):
    value = data
    for part in str(path).split(".") if path != "" else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return default
    return value


def _fractional(args, data):
    if args and not isinstance(args[0], list):
        key = apply(args[0], data)
        buckets = args[1:]
    else:
        targeting_key = data.get("targetingKey")
        if not targeting_key:
            return None
        key = f"{data['$flagd']['flagKey']}{targeting_key}"
        buckets = args
    if not isinstance(key, str) or not buckets:
        return None
    total = sum(weight for _, weight in buckets)
    bucket = abs(murmur3_32(key.encode())) / (2 ** 31 - 1) * 100
    end = 0.0
    for variant, weight in buckets:
        end += weight * 100 / total
        if bucket < end:
            return variant
    return buckets[-1][0]


def _compare(op):
    def run(*values):
        return all(op(a, b) for a, b in zip(values, values[1:]))
    return run


OPERATORS = {
    "==": lambda a, b: a == b, "===": lambda a, b: a == b,
    "!=": lambda a, b: a != b, "!==": lambda a, b: a != b,
    "<": _compare(lambda a, b: a < b), "<=": _compare(lambda a, b: a <= b),
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "!": lambda a: not a, "!!": bool,
    "in": lambda needle, haystack: needle in haystack if isinstance(haystack, (str, list)) else False,
    "cat": lambda *parts: "".join(str(p) for p in parts),
    "starts_with": lambda s, prefix: isinstance(s, str) and s.startswith(prefix),
    "ends_with": lambda s, suffix: isinstance(s, str) and s.endswith(suffix),
}
LAZY = {"var", "and", "or", "if", "?:", "fractional"}
KNOWN = set(OPERATORS) | LAZY


def apply(rule, data):
    """Evaluate a JsonLogic rule against `data` (the evaluation context)."""
    if isinstance(rule, list):
        return [apply(r, data) for r in rule]
    if not isinstance(rule, dict) or len(rule) != 1:
        return rule
    (op, args), = rule.items()
    if not isinstance(args, list):
        args = [args]
    if op == "var":
        return _var(data, apply(args[0], data) if args else "", apply(args[1], data) if len(args) > 1 else None)
    if op == "and":
        value = True
        for arg in args:
            value = apply(arg, data)
            if not value:
                return value
        return value
    if op == "or":
        value = False
        for arg in args:
            value = apply(arg, data)
            if value:
                return value
        return value
    if op in ("if", "?:"):
        for i in range(0, len(args) - 1, 2):
            if apply(args[i], data):
                return apply(args[i + 1], data)
        return apply(args[-1], data) if len(args) % 2 else None
    if op == "fractional":
        return _fractional([apply(a, data) if not isinstance(a, list) else a for a in args], data)
    try:
        return OPERATORS[op](*[apply(a, data) for a in args])
    except (TypeError, ValueError):
        return None


# --- the flag document -----------------------------------------------------------------

def _operators_in(rule):
    """Every operator name used in a rule (iteratively: rules come from a file)."""
    found, stack = set(), [rule]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for op, args in node.items():
                found.add(op)
                stack.append(args)
    return found


def _resolve_refs(rule, evaluators):
    if isinstance(rule, list):
        return [_resolve_refs(r, evaluators) for r in rule]
    if isinstance(rule, dict):
        if set(rule) == {"$ref"}:
            if rule["$ref"] not in evaluators:
                raise FlagFileError(f"unknown $ref {rule['$ref']!r}")
            return _resolve_refs(evaluators[rule["$ref"]], evaluators)
        return {k: _resolve_refs(v, evaluators) for k, v in rule.items()}
    return rule


def validate(document):
    """The flags of a flagd document, checked against the schema; FlagFileError otherwise."""
    if not isinstance(document, dict) or not isinstance(document.get("flags"), dict):
        raise FlagFileError("the document needs a 'flags' object")
    extra = set(document) - {"$schema", "flags", "$evaluators", "metadata"}
    if extra:
        raise FlagFileError(f"unknown top-level keys: {sorted(extra)}")
    evaluators = document.get("$evaluators", {})
    flags = {}
    for key, flag in document["flags"].items():
        where = f"flag {key!r}"
        if not isinstance(flag, dict):
            raise FlagFileError(f"{where} is not an object")
        if set(flag) - FLAG_KEYS:
            raise FlagFileError(f"{where} has unknown keys {sorted(set(flag) - FLAG_KEYS)}")
        if flag.get("state") not in ("ENABLED", "DISABLED"):
            raise FlagFileError(f"{where}: state must be ENABLED or DISABLED")
        variants = flag.get("variants")
        if not isinstance(variants, dict) or not variants:
            raise FlagFileError(f"{where}: variants must be a non-empty object")
        kinds = {type(v) if not isinstance(v, (int, float)) or isinstance(v, bool) else float for v in variants.values()}
        if len(kinds) != 1:
            raise FlagFileError(f"{where}: all variants must have one type")
        if flag.get("defaultVariant") not in variants:
            raise FlagFileError(f"{where}: defaultVariant must name a variant")
        targeting = _resolve_refs(flag.get("targeting", {}), evaluators)
        unknown = {op for op in _operators_in(targeting) if op not in KNOWN} if targeting else set()
        if unknown:
            raise FlagFileError(f"{where}: unsupported targeting operators {sorted(unknown)}")
        flags[key] = dict(flag, targeting=targeting)
    return flags


def evaluate(flags, key, context):
    """(value, variant, reason) of flag `key` for a context dict.

    KeyError if there is no such flag, FlagDisabled if its state is DISABLED.
    """
    flag = flags[key]
    if flag["state"] == "DISABLED":
        raise FlagDisabled(key)
    variant, reason = flag["defaultVariant"], Reason.STATIC
    if flag["targeting"]:
        data = dict(context, **{"$flagd": {"flagKey": key, "timestamp": int(time.time())}})
        chosen = apply(flag["targeting"], data)
        if isinstance(chosen, bool):
            chosen = str(chosen).lower()
        if chosen in flag["variants"]:
            variant, reason = chosen, Reason.TARGETING_MATCH
        else:
            reason = Reason.DEFAULT
    return flag["variants"][variant], variant, reason


# --- the live file ----------------------------------------------------------------------

class FlagFile:
    """The flags of one file, reloaded when the file behind the path changes."""

    def __init__(self, path):
        self.path = path
        self.flags, self.version, self.error = {}, None, None
        self._seen = None
        self._next_check = 0.0
        self._lock = threading.Lock()
        self._load()

    def _load(self):
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            self._reject(f"cannot read {self.path}: {exc.strerror}", None)
            return
        signature = (stat.st_ino, stat.st_dev, stat.st_mtime_ns, stat.st_size)
        if signature == self._seen:
            return
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
            flags = validate(json.loads(raw))
        except (OSError, ValueError) as exc:
            self._reject(str(exc), signature)
            return
        self.flags, self.version, self.error, self._seen = flags, hashlib.sha256(raw).hexdigest()[:12], None, signature
        log.info("flags loaded", extra={"flags_version": self.version})

    def _reject(self, message, signature):
        if message != self.error:
            log.error("flag file rejected, keeping the last good flags: %s", message)
        self.error, self._seen = message, signature

    def current(self):
        """The flags in force, after a reload if the file changed (checked at most every RELOAD_SECONDS)."""
        now = time.monotonic()
        if now >= self._next_check and self._lock.acquire(blocking=False):
            try:
                self._next_check = now + RELOAD_SECONDS
                self._load()
            finally:
                self._lock.release()
        return self.flags


class FlagFileProvider(AbstractProvider):
    """An OpenFeature provider answering from a FlagFile."""

    def __init__(self, flag_file):
        super().__init__()
        self.file = flag_file

    def get_metadata(self):
        return Metadata(name="kyb-flag-file")

    def _resolve(self, key, default, context, kind):
        data = dict(context.attributes) if context else {}
        if context and context.targeting_key:
            data["targetingKey"] = context.targeting_key
        try:
            value, variant, reason = evaluate(self.file.current(), key, data)
        except KeyError:
            return FlagResolutionDetails(default, ErrorCode.FLAG_NOT_FOUND, f"no flag {key!r}", Reason.ERROR)
        except FlagDisabled:
            return FlagResolutionDetails(default, reason=Reason.DISABLED)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            return FlagResolutionDetails(default, ErrorCode.TYPE_MISMATCH, f"{key!r} has another type",
                                         Reason.ERROR)
        return FlagResolutionDetails(value, reason=reason, variant=variant)

    def resolve_boolean_details(self, flag_key, default_value, evaluation_context=None):
        return self._resolve(flag_key, default_value, evaluation_context, bool)

    def resolve_string_details(self, flag_key, default_value, evaluation_context=None):
        return self._resolve(flag_key, default_value, evaluation_context, str)

    def resolve_integer_details(self, flag_key, default_value, evaluation_context=None):
        return self._resolve(flag_key, default_value, evaluation_context, int)

    def resolve_float_details(self, flag_key, default_value, evaluation_context=None):
        return self._resolve(flag_key, default_value, evaluation_context, float)

    def resolve_object_details(self, flag_key, default_value, evaluation_context=None):
        return self._resolve(flag_key, default_value, evaluation_context, (dict, list))


# --- Flask ------------------------------------------------------------------------------

# What the app asks for, with the value used when the file lacks a flag.
DEFAULTS = {"read_only": False, "markdown_import": True, "stats": True, "carry_over": True,
            "ui_theme": "light", "progress_bar": False}


class Flags:
    """The app's flags: an OpenFeature client bound to its own FlagFileProvider."""

    def __init__(self, path, domain):
        self.file = FlagFile(path)
        openfeature.set_provider(FlagFileProvider(self.file), domain)
        self.client = openfeature.get_client(domain)

    def value(self, key, user, email=None, roles=()):
        """One flag for one user (through the SDK); a request asks only for what it needs."""
        default = DEFAULTS[key]
        context = EvaluationContext(targeting_key=user,
                                    attributes={"user_id": user, "email": email or "", "roles": list(roles)})
        if isinstance(default, bool):
            return self.client.get_boolean_value(key, default, context)
        return self.client.get_string_value(key, default, context)

    def all_for(self, user, email=None, roles=()):
        return {key: self.value(key, user, email, roles) for key in DEFAULTS}

    def status(self):
        self.file.current()
        return {"version": self.file.version, "error": self.file.error}


def get_flags():
    return current_app.extensions["kyb.flags"]


def init_app(app):
    app.extensions["kyb.flags"] = Flags(app.config["FLAGS_FILE"], f"kyb-{id(app)}")
