"""The feature flags of one page, as the backend evaluates them for the caller.

Fetched at most once per request, lazily (the first template or view that asks),
with one `GET /api/v1/flags` through the backend client; never cached across
requests, so an edit of the flags shows on the next page. When the backend
cannot answer, or on a page of the sign-in (nobody is signed in yet), the page is
rendered with DEFAULT_FLAGS (features shown as the backend answers for a flag file
that lacks them, `read_only` off).
"""
import logging

from flask import g

from .backend_client import DEFAULT_FLAGS, BackendError, BackendUnavailable, backend

log = logging.getLogger(__name__)

# Main-menu entries that a flag switches off: endpoint -> flag.
GATED_PAGES = {"pages.stats": "stats", "pages.import_page": "markdown_import"}


def current():
    """The request's flags: {name: value} with every key of DEFAULT_FLAGS."""
    if "flags" not in g and "user" not in g:  # a page of the sign-in: the backend would refuse
        g.flags = dict(DEFAULT_FLAGS)
    if "flags" not in g:
        try:
            g.flags = backend().flags()
        except (BackendUnavailable, BackendError, ValueError) as exc:
            log.warning("flags unavailable, using the defaults: %s", exc.__class__.__name__)
            g.flags = dict(DEFAULT_FLAGS)
    return g.flags


def use_defaults():
    """The backend has just failed this request: render with the defaults, without asking again."""
    g.setdefault("flags", dict(DEFAULT_FLAGS))


def shown(endpoint):
    """True unless `endpoint` is a page whose feature is switched off."""
    flag = GATED_PAGES.get(endpoint)
    return flag is None or bool(current()[flag])
