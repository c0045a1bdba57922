"""`flask --app backend import|export`: the journal from and to Markdown files;
`flask --app backend forget-cache`: after the database was changed behind the app's back."""
import json
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from . import cache, journal, schemas
from .errors import Problem


def _user(user):
    return user or current_app.config["DEFAULT_USER"]


def _date(value):
    if value is None:
        return None
    try:
        return schemas.valid_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--user", help="Whose journal (default: DEFAULT_USER).")
@click.option("--mode", type=click.Choice(["merge", "replace"]), default="merge", show_default=True)
def import_command(file, user, mode):
    """Import a Markdown journal FILE (- for stdin)."""
    try:
        text = file.read().decode("utf-8")
        result = journal.import_markdown(_user(user), text, mode)
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file.name} is not UTF-8 (byte {exc.start})") from None
    except Problem as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(json.dumps(result))


@click.command("export")
@click.option("--user", help="Whose journal (default: DEFAULT_USER).")
@click.option("--from", "date_from", help="First day (YYYY-MM-DD).")
@click.option("--to", "date_to", help="Last day (YYYY-MM-DD).")
def export_command(user, date_from, date_to):
    """Write the journal as Markdown to stdout."""
    text = journal.export_markdown(_user(user), _date(date_from), _date(date_to))
    sys.stdout.buffer.write(text.encode("utf-8"))


@click.command("forget-cache")
@with_appcontext
def forget_cache_command():
    """Make every cached view stale, in Redis and in every process's memory (after a restore)."""
    cache.get_cache().invalidate_everything()
    click.echo("every cached view will be read again from the database")


def init_app(app):
    app.cli.add_command(import_command)
    app.cli.add_command(export_command)
    app.cli.add_command(forget_cache_command)
