"""``ozgflow users``: local accounts for the web inbox and API tokens for ``/api/v1``.

Registered on the main command group by the last line of ``ozgflow.cli``.
"""

import click

from ozgflow.cli import emit, handles_errors, json_option, main, runtime


@main.group()
def users():
    """Users of the web inbox and their API tokens."""


@users.command("add")
@click.argument("name")
@click.option("--tenant", required=True, help="The user's tenant (city), e.g. marburg.")
@click.option("--groups", default="", help="Comma-separated group names; unknown groups are created.")
@click.option("--role", required=True, type=click.Choice(["caseworker", "teamlead", "designer", "admin"]))
@json_option
@handles_errors
def users_add(name, tenant, groups, role, as_json):
    """Create a user. The password is read as one line from standard input (no prompt, no confirmation)."""
    from engine.users import add_user

    password = click.get_text_stream("stdin").readline().rstrip("\r\n")
    person = add_user(runtime(), name, tenant, role, password, groups.split(","))
    emit(as_json, person.as_dict(), f"user {person.name} ({person.role}, {person.tenant}) "
                                    f"groups={','.join(person.groups) or '-'}")


@users.command("token")
@click.argument("name")
@json_option
@handles_errors
def users_token(name, as_json):
    """Create an API token for NAME (shown once: only its hash is stored)."""
    from engine.users import create_token

    token = create_token(runtime(), name)
    emit(as_json, {"token": token}, token)
