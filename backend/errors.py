"""One error shape for the whole API: RFC 9457 problem details.

Views raise `Problem` (or let pymongo/validation errors escape); the handlers
registered here turn every failure into `application/problem+json`, and an
unexpected exception into a 500 without a stack trace.
"""
import logging

from flask import jsonify
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, PyMongoError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    429: "Too Many Requests",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    428: "Precondition Required",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """An error the client should see: status, a code word and a message."""

    def __init__(self, status, code, detail, errors=None, headers=None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.errors = status, code, detail, errors
        self.headers = headers or {}


def not_found(what):
    return Problem(404, "not_found", f"No such {what}.")


def problem_response(status, code, detail, errors=None):
    body = {
        "type": f"https://kyb.example/problems/{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def validation_errors(exc):
    """Pydantic's errors as [{"field": "a.b", "message": ...}]; the field is named."""
    out = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        out.append({"field": field, "message": err["msg"].removeprefix("Value error, ")})
    return out


def init_app(app):
    @app.errorhandler(Problem)
    def _problem(exc):
        response = problem_response(exc.status, exc.code, exc.detail, exc.errors)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(ValidationError)
    def _invalid(exc):
        return problem_response(400, "invalid", "The request is not valid.", validation_errors(exc))

    @app.errorhandler(HTTPException)
    def _http(exc):
        code = (exc.name or "error").lower().replace(" ", "_")
        response = problem_response(exc.code or 500, code, exc.description or exc.name)
        # Keep what the exception says about itself, such as Allow on a 405.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(ConnectionFailure)
    def _db_down(exc):
        log.warning("database unavailable: %s", exc.__class__.__name__)
        return problem_response(503, "database_unavailable", "The database cannot be reached; try again shortly.")

    @app.errorhandler(PyMongoError)
    def _db_error(exc):
        log.error("database error: %s", exc)
        return problem_response(503, "database_error", "The database could not complete the request.")

    @app.errorhandler(Exception)
    def _unexpected(exc):
        log.exception("unhandled error")
        return problem_response(500, "internal", "Something went wrong on our side.")
