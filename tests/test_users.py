"""Users, groups, logins, sessions and API tokens (engine.users) and the ``ozgflow users`` commands."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from test_web_fixtures import *  # noqa: F403  (clock, web_rt)

from engine.errors import NotFound
from engine.schema import ApiToken, User
from engine.users import (
    LOCK_AFTER,
    LoginRefused,
    UserError,
    add_user,
    authenticate,
    close_session,
    create_token,
    open_session,
    session_person,
    token_person,
)

HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)


def test_add_user_hashes_with_argon2_and_creates_groups(web_rt):
    p = add_user(web_rt, "anna", "marburg", "caseworker", "geheim", ["steuern", "buergerbuero", "steuern"])
    assert p.groups == ("buergerbuero", "steuern") and p.tenant == "marburg"
    with web_rt.reader.connect() as conn:
        stored = conn.execute(select(User.password_hash).where(User.name == "anna")).scalar_one()
    assert stored.startswith("$argon2id$") and "geheim" not in stored
    assert add_user(web_rt, "ben", "marburg", "teamlead", "x", ["steuern"]).groups == ("steuern",)


@pytest.mark.parametrize("args, message", [
    (("anna", "marburg", "chef", "pw"), "unknown role"),
    (("anna", "marburg", "admin", ""), "password is empty"),
    (("", "marburg", "admin", "pw"), "1 to 255"),
])
def test_add_user_refuses_bad_input(web_rt, args, message):
    with pytest.raises(UserError, match=message):
        add_user(web_rt, *args)


def test_add_user_refuses_unknown_tenant_and_duplicates(web_rt):
    with pytest.raises(NotFound, match="unknown tenant"):
        add_user(web_rt, "x", "atlantis", "caseworker", "pw")
    add_user(web_rt, "x", "marburg", "caseworker", "pw")
    with pytest.raises(UserError, match="exists already"):
        add_user(web_rt, "x", "wetzlar", "caseworker", "pw")


def test_login_counts_failures_slows_down_and_locks(web_rt, clock):
    add_user(web_rt, "anna", "marburg", "caseworker", "geheim")
    with pytest.raises(LoginRefused, match="falsch") as wrong_name:
        authenticate(web_rt, "niemand", "geheim")
    assert wrong_name.value.locked_until is None
    for _ in range(2):
        with pytest.raises(LoginRefused):
            authenticate(web_rt, "anna", "falsch")
    assert authenticate(web_rt, "anna", "geheim").name == "anna"  # resets the counter
    for i in range(LOCK_AFTER):
        with pytest.raises(LoginRefused) as exc:
            authenticate(web_rt, "anna", "falsch")
        if i >= 2:  # from the third failure on, the next try has to wait
            assert exc.value.locked_until > clock.now
            clock.advance(seconds=20)
    with pytest.raises(LoginRefused, match="gesperrt"):
        authenticate(web_rt, "anna", "geheim")  # locked: even the right password is refused
    clock.advance(minutes=16)
    assert authenticate(web_rt, "anna", "geheim").name == "anna"


def test_sessions_end_on_logout_idle_and_age(web_rt, clock):
    p = add_user(web_rt, "anna", "marburg", "caseworker", "geheim", ["steuern"])
    sid = open_session(web_rt, p)
    assert session_person(web_rt, sid, HOUR, 10 * HOUR) == p
    assert session_person(web_rt, "forged", HOUR, 10 * HOUR) is None
    close_session(web_rt, sid)
    assert session_person(web_rt, sid, HOUR, 10 * HOUR) is None
    sid = open_session(web_rt, p)
    clock.advance(minutes=61)
    assert session_person(web_rt, sid, HOUR, 10 * HOUR) is None  # idle too long
    sid = open_session(web_rt, p)
    for _ in range(11):
        clock.advance(minutes=59)
        session_person(web_rt, sid, HOUR, 10 * HOUR)
    assert session_person(web_rt, sid, HOUR, 10 * HOUR) is None  # older than 10 hours


def test_tokens_are_stored_as_hashes(web_rt):
    add_user(web_rt, "anna", "marburg", "caseworker", "geheim")
    token = create_token(web_rt, "anna")
    assert token_person(web_rt, token).name == "anna"
    assert token_person(web_rt, token + "x") is None and token_person(web_rt, "") is None
    with web_rt.reader.connect() as conn:
        stored = conn.execute(select(ApiToken.token_hash)).scalar_one()
    assert token not in stored and len(stored) == 64
    with pytest.raises(NotFound):
        create_token(web_rt, "niemand")


def test_cli_users_add_and_token(cli):
    cli("init")
    proc = cli("users", "add", "anna", "--tenant", "marburg", "--groups", "steuern,neu", "--role", "caseworker",
               "--json", input="ein Passwort mit Leerzeichen\n")
    assert json.loads(proc.stdout) == {"id": 1, "name": "anna", "tenant": "marburg", "role": "caseworker",
                                       "groups": ["neu", "steuern"]}
    token = json.loads(cli("users", "token", "anna", "--json").stdout)["token"]
    assert token.startswith("ozg_") and len(token) > 40
    again = cli("users", "add", "anna", "--tenant", "marburg", "--role", "caseworker", input="x\n", check=False)
    assert again.returncode == 1 and "exists already" in again.stderr
    bad = cli("users", "add", "bob", "--tenant", "marburg", "--role", "boss", input="x\n", check=False)
    assert bad.returncode == 2 and "boss" in bad.stderr
