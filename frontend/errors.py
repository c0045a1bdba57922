"""Every failure becomes a page in one style; views stay free of try/except.

A refused form (`Invalid`, from the backend or from the frontend's own checks)
is shown again on the page it came from, with each message next to its field.
A change refused by a feature flag (sent from a page older than the flag) goes
back to that page with the backend's message; a page whose feature is off is a
"Switched off" 404.
"""
import logging

from flask import current_app, flash, g, redirect, render_template, request
from werkzeug.exceptions import HTTPException, NotFound as NoRoute
from werkzeug.routing import RequestRedirect

from . import flags
from .backend_client import BackendError, BackendUnavailable, Invalid, NotFound, SwitchedOff
from .security import safe_next

log = logging.getLogger(__name__)

TITLES = {
    400: "That did not work",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Already there",
    413: "Too large",
    500: "Something went wrong",
    503: "The journal is unavailable",
}


def error_page(status, message, title=None):
    title = title or TITLES.get(status, "Error")
    return render_template("error.html", status=status, title=title, message=message), status


def switched_off(message):
    """The page of a feature whose flag is off: as if it were not there, with the reason."""
    return error_page(404, message, "Switched off")


def form_page(exc):
    """The page the refused form is on, rendered again with the form's values and messages."""
    if request.method != "POST":
        return error_page(exc.status, exc.detail)
    g.form = {"name": request.form.get("form", ""), "values": request.form.to_dict(),
              "errors": exc.field_errors, "detail": exc.detail}
    g.here = safe_next(request.form.get("next"))
    path = g.here.partition("?")[0]
    try:
        endpoint, args = current_app.url_map.bind("").match(path, method="GET")
    except (NoRoute, RequestRedirect):
        return error_page(exc.status, exc.detail)
    return current_app.view_functions[endpoint](**args), exc.status


def refused_form(name):
    """The refused form's values and messages if the form called `name` was refused, else None."""
    form = g.get("form")
    return form if form and form["name"] == name else None


def init_app(app):
    app.jinja_env.globals["refused_form"] = refused_form

    @app.errorhandler(Invalid)
    def _invalid(exc):
        return form_page(exc)

    @app.errorhandler(NotFound)
    def _not_found(exc):
        return error_page(404, exc.detail)

    @app.errorhandler(SwitchedOff)
    def _switched_off(exc):
        if request.method == "POST":
            flash(exc.detail, "error")
            return redirect(safe_next(request.form.get("next")), 303)
        return switched_off(exc.detail)

    @app.errorhandler(BackendError)
    def _refused(exc):
        return error_page(exc.status, exc.detail)

    @app.errorhandler(BackendUnavailable)
    def _unavailable(exc):
        flags.use_defaults()
        return error_page(503, "The journal cannot be reached right now. Nothing was lost; "
                               "try again in a moment.")

    @app.errorhandler(HTTPException)
    def _http(exc):
        return error_page(exc.code or 500, exc.description)

    @app.errorhandler(Exception)
    def _unexpected(exc):
        log.exception("unhandled error")
        return error_page(500, "Something went wrong on our side.")
