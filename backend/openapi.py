"""OpenAPI 3.1 for the API, built from the same pydantic models that validate requests.

Each view is described next to its route with `@doc(...)`; `spec(app)` walks the URL
map, so a route without a description, or a description without a route, cannot
hide (a test checks both ways).
"""
from pydantic.json_schema import models_json_schema

from . import schemas

PROBLEM = {"$ref": "#/components/schemas/Problem"}
ERROR_TEXT = {
    400: "The request is not valid; `errors` names each bad field.",
    401: "No valid access token: send `Authorization: Bearer <token>` from Keycloak.",
    403: "The feature is switched off by a flag.",
    404: "No such resource (or it belongs to someone else).",
    409: "It exists already.",
    412: "`If-Match` names a version that is no longer current.",
    413: "The body is too large.",
    415: "The body has the wrong media type.",
    429: "Too many requests from this user; `Retry-After` says when to try again.",
    503: "The database is unreachable, or the journal is read-only (flag `read_only`).",
}
PATH_PARAMS = {
    "date": {"description": "the day, as YYYY-MM-DD", "schema": schemas.DATE_SCHEMA},
    "task_id": {"description": "a task id", "schema": {"type": "string", "examples": ["6b06f6dca8c56bca20c5f048"]}},
    "note_id": {"description": "a note id", "schema": {"type": "string", "examples": ["6b06f6dca8c56bca20c5f047"]}},
}
ETAG_HEADER = {"ETag": {"description": "the version, for If-None-Match and If-Match",
                        "schema": {"type": "string", "examples": ['"3"']}}}


def doc(summary, tag, *, body=None, query=None, response=None, status=200, errors=(), if_match=False,
        etag=False, markdown_in=False, markdown_out=False, description=None, links=None):
    """Describe a view for the spec (it changes nothing about how the view runs).

    `links` is (path parameter, response field, operation ids): the response
    field fills that parameter of those operations, so clients (and
    schemathesis) can chain calls.
    """
    def mark(view):
        view.openapi = dict(summary=summary, tag=tag, body=body, query=query, response=response, status=status,
                            errors=set(errors), if_match=if_match, etag=etag, markdown_in=markdown_in,
                            markdown_out=markdown_out, description=description, links=links)
        return view
    return mark


def _models(described):
    """Every model the spec names, with the mode pydantic should describe it in."""
    found = {}
    for info in described:
        for model in (info["body"], info["query"]):
            if model is not None:
                found[(model, "validation")] = None
        if info["response"] is not None:
            found[(info["response"], "serialization")] = None
    found[(schemas.Problem, "serialization")] = None
    return list(found)


def _parameters(rule, info):
    params = [{"name": name, "in": "path", "required": True, **PATH_PARAMS[name]} for name in sorted(rule.arguments)]
    if info["query"] is not None:
        schema = info["query"].model_json_schema(by_alias=True)
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            # A query string has no null: an optional parameter is just left out.
            options = [p for p in prop.get("anyOf", []) if p != {"type": "null"}]
            if len(options) == 1:
                prop = {**options[0], **{k: v for k, v in prop.items() if k not in ("anyOf", "default")}}
            prop = {k: v for k, v in prop.items() if k not in ("title",) and not (k == "default" and v is None)}
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    if info["if_match"]:
        params.append({"name": "If-Match", "in": "header", "required": False,
                       "description": "only change it if it is still at this version (an ETag)",
                       "schema": {"type": "string", "pattern": '^(\\*|(W/)?"[0-9]+")$'}})
    return params


def _operation(rule, info, refs):
    op = {"tags": [info["tag"]], "summary": info["summary"], "operationId": rule.endpoint.split(".")[-1],
          "parameters": _parameters(rule, info), "responses": {}}
    if info["description"]:
        op["description"] = info["description"]
    errors = set(info["errors"]) | {503}
    if info["tag"] != "health":
        errors |= {400, 401, 429}  # X-User-Id malformed (development mode); no valid token; rate limit
        op["security"] = [{"bearer": []}]
    if rule.arguments:
        errors |= {400, 404} if "date" in rule.arguments else {404}
    if info["query"] is not None:
        errors.add(400)
    if info["body"] is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[info["body"]]}}}
        errors |= {400, 413, 415}
    if info["markdown_in"]:
        op["requestBody"] = {"required": True, "content": {"text/markdown": {"schema": {"type": "string"}}}}
        errors |= {400, 413, 415}
    if info["if_match"]:
        errors.add(412)
    ok = {"description": "OK" if info["status"] != 201 else "Created"}
    if info["markdown_out"]:
        ok["content"] = {"text/markdown": {"schema": {"type": "string"}}}
    elif info["response"] is not None:
        ok["content"] = {"application/json": {"schema": refs[info["response"]]}}
    elif info["status"] == 204:
        ok["description"] = "Done; no content."
    else:
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    if info["links"]:
        param, field, targets = info["links"]
        ok["links"] = {target: {"operationId": target, "parameters": {param: f"$response.body#/{field}"}}
                       for target in targets}
    if info["etag"]:
        ok["headers"] = ETAG_HEADER
        op["responses"]["304"] = {"description": "Not modified: If-None-Match names the current version."}
    op["responses"][str(info["status"])] = ok
    for code in sorted(errors):
        op["responses"][str(code)] = {"description": ERROR_TEXT[code],
                                      "content": {"application/problem+json": {"schema": PROBLEM}}}
    return op


def spec(app):
    """The OpenAPI 3.1 document for every described route of `app`."""
    described = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if hasattr(view, "openapi"):
            described.append((rule, view.openapi))
    keys, defs = models_json_schema(_models(info for _, info in described),
                                    ref_template="#/components/schemas/{model}")
    refs = {model: schema for (model, _mode), schema in keys.items()}
    paths = {}
    for rule, info in sorted(described, key=lambda item: item[0].rule):
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, info, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "kyb journal API", "version": "1.0.0",
                 "description": "A work journal kept as Markdown: days, tasks, backlog, notes, stats."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                           "description": "An access token from Keycloak, realm kyb"}},
        },
    }
