"""/api/docs: the spec in Swagger UI, served from files vendored from npm (swagger-ui-dist)."""
from flask import Blueprint, Response, url_for

bp = Blueprint("docs", __name__)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kyb API</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<main id="swagger-ui"></main>
<script src="{bundle}"></script>
<script src="{start}"></script>
</body>
</html>
"""


@bp.get("/api/docs")
def api_docs():
    page = PAGE.format(css=url_for("static", filename="swagger-ui/swagger-ui.css"),
                       bundle=url_for("static", filename="swagger-ui/swagger-ui-bundle.js"),
                       start=url_for("static", filename="docs.js"))
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
    return response
