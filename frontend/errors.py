"""Every failure becomes a page in one style; views stay free of try/except.

A refused form (`Invalid`, from the backend or from the frontend's own checks)
is shown again on the page it came from, with each message next to its field.
A change refused by a feature flag (sent from a page older than the flag) goes
back to that page with the backend's message; a page whose feature is off is a
"Switched off" 404. When sign-in cannot work (Keycloak or the session store out of
reach, an answer from Keycloak that is refused) the page says so, with a way to try again.
"""
import logging

from flask import current_app, flash, g, redirect, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound as NoRoute
from werkzeug.routing import RequestRedirect

from . import flags
from .auth import SignInFailed, SignInUnavailable
from .backend_client import BackendError, BackendUnavailable, Invalid, NotFound, SwitchedOff
from .security import safe_next
from .sessions import SessionStoreUnavailable

log = logging.getLogger(__name__)

TITLES = {
    400: "That did not work",
    401: "Not signed in",
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

    @app.errorhandler(SignInFailed)
    def _sign_in_failed(exc):
        log.warning("sign-in refused: %s", exc)
        return error_page(400, "Signing in did not work (the answer from the sign-in service was refused). "
                               "Go back to the journal to sign in again.", "Sign-in failed")

    @app.errorhandler(SignInUnavailable)
    def _sign_in_unavailable(exc):
        log.warning("sign-in unavailable: %s", exc)
        return error_page(503, "The sign-in service cannot be reached right now. Nothing was lost; "
                               "try again in a moment.", "Sign-in is unavailable")

    @app.errorhandler(SessionStoreUnavailable)
    def _no_session_store(exc):
        return error_page(503, "Sessions cannot be kept right now (the session store is out of reach), "
                               "so nobody can be signed in. Nothing was lost; try again in a moment.",
                          "Sign-in is unavailable")

    @app.errorhandler(HTTPException)
    def _http(exc):
        # A session that could not be saved fails after the view, where Flask wraps it in a 500.
        if isinstance(exc, InternalServerError) and isinstance(exc.original_exception, SessionStoreUnavailable):
            return _no_session_store(exc.original_exception)
        return error_page(exc.code or 500, exc.description)

    @app.errorhandler(Exception)
    def _unexpected(exc):
        log.exception("unhandled error")
        return error_page(500, "Something went wrong on our side.")
