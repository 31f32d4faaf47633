"""The ``sessionsgit`` command line: parsing, output and error translation only.

Everything it does is a library call (``sessionsgit``'s public API). It imports only what a
command needs, when it runs: ``--help`` loads no Git code, ``list`` no yaml, sync or provider
code (see ``tests/test_cli_imports.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import click

from . import __version__
from .errors import (InvalidRevisionError, SessionConflictError, SessionNotFoundError,
                     SessionsGitError)
from .resolve import resolve_deleted_id, resolve_id, resolve_revision


def _lazy_module(name: str) -> Any:
    """``name`` imported on first attribute access (the stdlib's ``LazyLoader`` recipe), so
    ``--help`` and commands that print nothing formatted never load it."""
    found = sys.modules.get(name)
    if found is not None:
        return found
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, module)  # as an import would: ``sessionsgit.render``
    return module


if TYPE_CHECKING:
    from . import render
    from .metadata import StoredSession
    from .stores.git import GitSessionStore
else:
    render = _lazy_module(f"{__package__}.render")

DEFAULT_REPO = "./.sessions"
ROLES = ("user", "assistant", "system", "tool")

Records = list[dict[str, Any]]
Progress = Callable[[int, int], None]


# ---- error translation, once for every command -----------------------------------------
class SessionsGroup(click.Group):
    """A click group that turns library errors, and OS errors of the files the CLI itself
    reads and writes (``import PATH``, ``export -o``), into one ``Error: ...`` line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SessionsGitError as exc:
            raise click.ClickException(_one_line(str(exc))) from None
        except OSError as exc:
            raise click.ClickException(_one_line(_os_error(exc))) from None


def _one_line(text: str) -> str:
    return " ".join(text.split()) or "unknown error"


def _os_error(exc: OSError) -> str:
    text = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
    if isinstance(exc, PermissionError) or "Permission denied" in text or \
            "Read-only file system" in text:
        return (f"permission denied: {text}; this user cannot write there: fix the "
                "permissions, or work on a copy you can write")
    return text


# ---- shared state: the repository ---------------------------------------------------------
@dataclasses.dataclass
class State:
    """What the global options chose: the repository path (and the store, once opened)."""

    repo: Path
    store: "GitSessionStore | None" = None


def _store(create: bool = False) -> "GitSessionStore":
    """The store at ``--repo``; a missing repository is an error unless ``create`` (only
    ``init`` and an explicit ``--create`` make one, so a mistyped path is not a new home)."""
    ctx = click.get_current_context()
    state = ctx.find_object(State)
    assert state is not None
    if state.store is None:
        if not create and not state.repo.exists():
            raise click.ClickException(
                f"no sessions repository at {state.repo}; run `sessionsgit init` (or pass "
                "--create to new, chat or import)")
        from .stores.git import GitSessionStore

        state.store = GitSessionStore(state.repo, create=create)
        ctx.find_root().call_on_close(state.store.close)
    return state.store


def _resolve(store: "GitSessionStore", argument: str, *, deleted: bool = False) -> str:
    """A session argument (id, unique id prefix or label) as a session id."""
    return resolve_deleted_id(store, argument) if deleted else resolve_id(store, argument)


def _load(store: "GitSessionStore", session_id: str, rev: str | None = None
          ) -> "StoredSession":
    """The session (at save ``rev``: ``~N`` or a commit prefix); gone is an error."""
    session = store.load(session_id, at=rev)
    if session is None:
        raise SessionNotFoundError(session_id)
    return session


def _warn_damaged(store: "GitSessionStore") -> None:
    for session_id, reason in store.last_damaged:
        click.echo(f"warning: skipped damaged session {session_id}: {reason}", err=True)


def _hint_remote_only(store: "GitSessionStore") -> None:
    """A plain ``git clone`` puts sessions under ``refs/remotes/<remote>/sessions/``, where
    they are not this store's: say so, and how to take them in, instead of a bare "none"."""
    from .hints import remote_only_sessions

    for remote, count in sorted(remote_only_sessions(store).items()):
        click.echo(f"hint: {render.plural(count, 'session')} under refs/remotes/{remote}/"
                   f"sessions/ (a plain `git clone`?) are not local sessions yet: run "
                   f"`sessionsgit pull {remote}` to take them in (or clone with "
                   "`git clone --mirror`)", err=True)


# ---- the shared record output -------------------------------------------------------------
@dataclasses.dataclass
class Printed:
    """What a record-printing command returns: records, plus its own text for the default
    output when a table of ``records`` is not what it shows (``single``: one object, not a list)."""

    records: Records
    text: str | None = None
    single: bool = False


def output_options(table: str | Callable[[Any], str] | None = None
                   ) -> Callable[[Callable[..., Any]], Any]:
    """Add ``--json``, ``--yaml`` and ``--nl`` to a command returning records (or ``Printed``),
    and print them: by default through ``render.<table>`` (or the ``Printed`` text)."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, json_: bool, yaml_: bool, nl: bool, **kwargs: Any) -> None:
            chosen = [name for name, on in (("json", json_), ("yaml", yaml_), ("nl", nl)) if on]
            if len(chosen) > 1:
                raise click.UsageError("choose one of --json, --yaml and --nl")
            result = fn(*args, **kwargs)
            printed = result if isinstance(result, Printed) else Printed(list(result))
            if not chosen:
                renderer = table if callable(table) or table is None else getattr(render, table)
                text = printed.text if printed.text is not None or renderer is None else \
                    renderer(printed.records)
                click.echo(text or "", nl=False)
            elif printed.single and chosen[0] != "nl":
                value = printed.records[0] if printed.records else {}
                click.echo(render.to_json(value) + "\n" if chosen[0] == "json"
                           else render.to_yaml(value), nl=False)
            else:
                click.echo(render.records_text(printed.records, chosen[0]), nl=False)

        wrapper.__click_params__ = list(getattr(fn, "__click_params__", []))  # type: ignore
        for flag, name, what in (("--nl", "nl", "newline-delimited JSON"),
                                 ("--yaml", "yaml_", "YAML"), ("--json", "json_", "JSON")):
            wrapper = click.option(flag, name, is_flag=True, help=f"Output {what}.")(wrapper)
        return wrapper

    return decorator


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Progress | None]:
    """A ``progress(done, total)`` callback drawing a bar on stderr, or None when stderr is not
    a terminal (pipes, CI, tests)."""
    stream = sys.stderr
    if not stream.isatty():
        yield None
        return
    bars: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(click.progressbar(length=max(total, 1), label=label, file=stream))
            bars[0].__enter__()
        bar = bars[0]
        bar.length = max(total, 1)
        if done > bar.pos:
            bar.update(done - bar.pos)

    try:
        yield update
    finally:
        if bars:
            bars[0].__exit__(None, None, None)


# ---- the command group --------------------------------------------------------------------
@click.group(cls=SessionsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="sessionsgit")
@click.option("--repo", type=click.Path(path_type=Path), envvar="SESSIONSGIT_REPO",
              default=DEFAULT_REPO, show_default=True, show_envvar=True,
              help="The sessions repository (a Git repository, bare by default).")
@click.pass_context
def cli(ctx: click.Context, repo: Path) -> None:
    """Durable LLM conversations stored in Git: every session a branch, every save a commit.

    SESSION arguments take a full id, a unique id prefix (4+ characters) or an exact label."""
    ctx.obj = State(repo)


@cli.command(name="init")
def cli_init() -> None:
    """Create the sessions repository at --repo.

    It is a bare Git repository: every session a branch, every save a commit."""
    state = click.get_current_context().find_object(State)
    assert state is not None
    existed = state.repo.is_dir() and any(state.repo.iterdir())
    store = _store(create=True)
    where = store.path.resolve()
    click.echo(f"{'Reinitialized existing' if existed else 'Initialized empty'} sessions "
               f"repository in {where}")
    _hint_ignore(where)


def _hint_ignore(where: Path) -> None:
    """A sessions repository inside a code repository's working tree should be ignored there,
    or ``git add -A`` commits it: say so when it is not."""
    from .hints import unignored_in_worktree

    found = unignored_in_worktree(where)
    if found is not None:
        workdir, relative = found
        click.echo(f"hint: {where} is inside the Git working tree {workdir}/; add "
                   f"`{relative}/` to its .gitignore", err=True)


_CREATE = click.option("--create", is_flag=True,
                       help="Create the repository at --repo if it does not exist.")


@cli.command(name="new")
@click.option("--label", "-l", help="A label for the new session.")
@_CREATE
def cli_new(label: str | None, create: bool) -> None:
    """Create an empty session and print its id."""
    from .ids import new_session_id

    store = _store(create=create)
    session_id = new_session_id()
    store.save(session_id, [], {"label": label} if label else None)
    click.echo(session_id)


@cli.command(name="list")
@click.option("--limit", "-n", type=click.IntRange(min=0), help="Show at most N sessions.")
@click.option("--all", "all_", is_flag=True,
              help="Include every deleted version (marked), even of ids that are live again.")
@click.option("--deleted", is_flag=True,
              help="Only deleted sessions: every version `restore --version N` can bring back.")
@output_options("sessions_table")
def cli_list(limit: int | None, all_: bool, deleted: bool) -> Printed:
    """List sessions, most recently updated first."""
    records = None if all_ or deleted else _quick_records()
    if records is None:
        from .listing import list_sessions

        store = _store()
        records = list_sessions(store, include_deleted=all_, only_deleted=deleted)
        if not deleted:
            _warn_damaged(store)
        if not records and not deleted:
            _hint_remote_only(store)
    shown = records[:limit] if limit is not None else records
    if records and not shown:
        return Printed(shown, f"(0 of {render.plural(len(records), 'session')} shown)\n")
    return Printed(shown)


def _quick_records() -> Records | None:
    """The live sessions read without opening the store (no pygit2: ``quicklist``), or None
    when the store must answer: it reports damage and hints, this never does."""
    from .quicklist import quick_list

    state = click.get_current_context().find_object(State)
    assert state is not None
    found = None if state.store is not None else quick_list(state.repo)
    return [meta.to_dict() for meta in found] if found else None


@cli.command(name="show")
@click.argument("session")
@click.option("--at", "at", metavar="REV",
              help="A save of the session: commit (prefix), or ~N saves back from the head.")
@click.option("--format", "format_", type=click.Choice(["text", "markdown", "json", "yaml",
                                                        "jsonl"]),
              default=None, help="Output format.  [default: text]")
@click.option("--json", "json_", is_flag=True, help="Output JSON (same as --format json).")
def cli_show(session: str, at: str | None, format_: str | None, json_: bool) -> None:
    """Show a session's transcript.

    SESSION@REV (or --at REV) shows that save."""
    if json_ and format_ not in (None, "json"):
        raise click.UsageError("give --json or --format, not both")
    format_ = "json" if json_ else format_ or "text"
    store = _store()
    session_id, rev = resolve_revision(store, session)
    if rev is not None and at is not None:
        raise click.UsageError("give the revision either as SESSION@REV or as --at, not both")
    click.echo(render.render_session(_load(store, session_id, at or rev), format_), nl=False)


@cli.command(name="log")
@click.argument("session")
@click.option("--limit", "-n", type=click.IntRange(min=0), help="Show at most N saves.")
@output_options("log_table")
def cli_log(session: str, limit: int | None) -> Records:
    """List a session's saves, newest first.

    One line per save; a fork's log includes the saves it inherited."""
    store = _store()
    records = [dataclasses.asdict(record) for record in store.history(_resolve(store, session))]
    return records[:limit] if limit is not None else records


@cli.command(name="diff")
@click.argument("old")
@click.argument("new", required=False)
@click.option("--stat", is_flag=True, help="Only count added, removed and changed messages.")
@output_options()
def cli_diff(old: str, new: str | None, stat: bool) -> Printed:
    """Show which messages were added, removed or changed.

    OLD and NEW are sessions, SESSION@REV saves, or (NEW only) a revision of OLD's session.
    With one argument, compare the session's head (or the given save) with the save before."""
    from .msgdiff import diff_messages

    store = _store()
    old_id, old_rev = resolve_revision(store, old)
    if new is None:
        after = _load(store, old_id, old_rev)
        history = [record.commit for record in store.history(old_id)]
        position = history.index(after.metadata.head) if after.metadata.head in history else -1
        if 0 <= position < len(history) - 1:
            before = _load(store, old_id, history[position + 1])
            before_messages, before_name = before.messages, _name(before)
        else:
            before_messages, before_name = [], "(nothing)"
        after_messages, after_name = after.messages, _name(after)
    else:
        before = _load(store, old_id, old_rev)
        after = _load_other(store, old_id, new)
        before_messages, before_name = before.messages, _name(before)
        after_messages, after_name = after.messages, _name(after)
    diff = diff_messages(before_messages, after_messages)
    text = render.render_diff(diff, before_name, after_name, len(before_messages),
                              len(after_messages), stat=stat)
    text = "".join(click.style(line, fg=render.diff_line_color(line)) + "\n"
                   for line in text.splitlines())
    if stat:
        return Printed([{"old": before_name, "new": after_name, **diff.stat()}], text, single=True)
    return Printed(diff.to_dict()["changes"], text)


def _name(session: "StoredSession") -> str:
    return f"{render.short_id(session.id)}@{render.short_id(session.metadata.head)}"


def _load_other(store: "GitSessionStore", old_id: str, argument: str) -> "StoredSession":
    """``diff``'s NEW: a session, SESSION@REV, or else a revision of OLD's session."""
    try:
        session_id, rev = resolve_revision(store, argument)
    except SessionNotFoundError:
        try:
            return _load(store, old_id, argument)
        except InvalidRevisionError:
            raise SessionNotFoundError(argument, f"{argument!r} is neither a session nor a "
                                                 f"save of {old_id}") from None
    return _load(store, session_id, rev)


@cli.command(name="fork")
@click.argument("session")
@click.option("--at", "at", metavar="N|MSG_ID|REV",
              help="Fork point: the first N messages, up to a message id, or a save (commit "
                   "prefix or ~N). Default: the whole transcript.")
@click.option("--label", "-l", help="A label for the fork.")
@click.option("--detached", is_flag=True, help="Start empty, only recording the parent.")
def cli_fork(session: str, at: str | None, label: str | None, detached: bool) -> None:
    """Fork a session and print the new id.

    SESSION@REV forks at that save (like --at REV)."""
    store = _store()
    session_id, rev = resolve_revision(store, session)
    if rev is not None and at is not None:
        raise click.UsageError("give the fork point either as SESSION@REV or as --at, not both")
    at = at or rev
    point: int | str | None = at
    if at is not None and at.isascii() and at.isdigit():
        point = int(at)
    new_id = store.fork(session_id, at=point, detached=detached,
                        metadata={"label": label} if label else None)
    click.echo(new_id)


@cli.command(name="tree")
@output_options("tree_text")
def cli_tree() -> Records:
    """Show the fork tree of all sessions.

    Forks are indented under their parents; detached forks are marked."""
    store = _store()
    records = render.tree_records(store.list())
    _warn_damaged(store)
    if not records:
        _hint_remote_only(store)
    return records


@cli.command(name="rename")
@click.argument("session")
@click.argument("label")
def cli_rename(session: str, label: str) -> None:
    """Set a session's label (an empty LABEL clears it)."""
    store = _store()
    session_id = _resolve(store, session)
    store.rename(session_id, label or None)
    click.echo(f"Renamed {render.short_session_id(session_id)} to {label!r}" if label
               else f"Cleared the label of {render.short_session_id(session_id)}")


@cli.command(name="delete")
@click.argument("session")
def cli_delete(session: str) -> None:
    """Delete a session (`restore` brings it back)."""
    from . import delete_session

    store = _store()
    session_id = _resolve(store, session)
    delete_session(store, session_id)  # a LangGraph thread: every branch of it
    click.echo(f"Deleted {session_id} (undo: sessionsgit restore "
               f"{render.short_session_id(session_id)})")


@cli.command(name="restore")
@click.argument("session")
@click.option("--as", "as_id", metavar="NEW_ID",
              help="Restore under this new id (when a live session has the old one).")
@click.option("--version", "version", type=click.IntRange(min=1), metavar="N",
              help="Which deleted version: 1 is the latest deletion (see `list --deleted`).")
def cli_restore(session: str, as_id: str | None, version: int | None) -> None:
    """Bring back a deleted session.

    SESSION is the deleted session's id, id prefix or label."""
    from .listing import deleted_version_ref

    store = _store()
    session_id = _resolve(store, session, deleted=True)
    ref = None if version is None else deleted_version_ref(store, session_id, version)
    store.restore(session_id, ref, as_id=as_id)
    click.echo(f"Restored {session_id}" + (f" as {as_id}" if as_id else ""))


@cli.command(name="purge")
@click.argument("session", required=False)
@click.option("--all", "all_", is_flag=True, help="Every deleted session.")
def cli_purge(session: str | None, all_: bool) -> None:
    """Forget deleted sessions for good (no `restore` after this).

    SESSION (a deleted session's id, id prefix or label) loses every deleted version; --all
    empties the trash. `sessionsgit gc` then reclaims the space."""
    if (session is None) == (not all_):
        raise click.ClickException("give a deleted SESSION to purge, or --all for every one")
    store = _store()
    session_id = None if session is None else _resolve(store, session, deleted=True)
    dropped = store.purge(session_id)
    click.echo(f"Purged {render.plural(dropped, 'deleted version')}"
               + (f" of {session_id}" if session_id else ""))


@cli.command(name="append")
@click.argument("session")
@click.argument("text", required=False)
@click.option("--role", type=click.Choice(ROLES),
              help="Role of the text message (default: user); not with --json.")
@click.option("--json", "json_input", is_flag=True,
              help="Read stdin as JSON messages instead of text.")
def cli_append(session: str, text: str | None, role: str | None, json_input: bool) -> None:
    """Append messages to a session; prints their ids.

    Text is text: TEXT, or without TEXT (or with -) all of stdin, becomes one text message
    from --role (default: user), whatever it looks like. With --json, stdin holds a JSON
    message or a JSON array of messages, each an object with its own role and content (or
    tool_calls). Roles are user, assistant, system or tool; empty messages are refused."""
    from_stdin = text is None or text == "-"
    if json_input and (role is not None or not from_stdin):
        raise click.UsageError("--json reads messages (each with its own role) from stdin; "
                               "give neither TEXT nor --role with it")
    if json_input:
        messages = _json_messages(sys.stdin.read())
    else:
        raw = sys.stdin.read() if from_stdin else text
        messages = [_text_message(role or "user", (raw or "").rstrip("\n"))]
    from .stamps import now_ms, stamp_message

    store = _store()
    session_id = _resolve(store, session)
    now = now_ms()
    messages = [stamp_message(message, now=now) for message in messages]
    store.append(session_id, messages)  # builds on a concurrent writer's save, never fails on one
    for message in messages:
        click.echo(message["id"])


def _text_message(role: str, text: str) -> dict[str, Any]:
    if not text.strip():
        raise click.ClickException("refusing to append an empty message")
    return {"role": role, "content": [{"type": "text", "text": text}]}


def _json_messages(raw: str) -> list[dict[str, Any]]:
    """``append --json`` input: a message or an array of messages, each checked."""
    from .codec import loads

    try:
        data = loads(raw, what="stdin")
    except ValueError as exc:
        raise click.ClickException(f"stdin is not valid JSON: {exc}") from None
    messages = data if isinstance(data, list) else [data]
    if not messages:
        raise click.ClickException("stdin holds no messages (an empty JSON array)")
    for index, message in enumerate(messages, 1):
        _check_message(message, index)
    return messages


def _check_message(message: Any, index: int) -> None:
    """One rule for every appended message: an object, a known role, something in it."""
    where = f"message {index}"
    if not isinstance(message, dict):
        raise click.ClickException(f"{where} is not a JSON object")
    if message.get("role") not in ROLES:
        raise click.ClickException(f"{where} has role {message.get('role')!r}; a role is one "
                                   f"of {', '.join(ROLES)}")
    content = message.get("content")
    if content is None and not message.get("tool_calls"):
        raise click.ClickException(f"{where} has no content (nor tool_calls): it is empty")
    if content is not None and (content in ("", [], {}) or
                                (isinstance(content, str) and not content.strip())):
        raise click.ClickException(f"{where} is empty")


@cli.command(name="chat")
@click.argument("session", required=False)
@click.option("--new", "new", is_flag=True, help="Start a new session.")
@click.option("--label", "-l", help="Label for the new session (with --new).")
@click.option("--provider", type=click.Choice(["echo", "openai"]),
              help="Model provider: echo (offline), or openai (any OpenAI-compatible server). "
                   "Default: openai when OPENAI_BASE_URL is set, else echo.")
@click.option("--model", help="Model name (openai: default OPENAI_MODEL).")
@_CREATE
def cli_chat(session: str | None, new: bool, label: str | None, provider: str | None,
             model: str | None, create: bool) -> None:
    """Chat in a session, one prompt per line.

    Each stdin line is a prompt and the reply is printed; /exit or end of input stops.
    Every exchange is saved as it completes."""
    from .conversation import Conversation
    from .manager import SessionManager
    from .providers import EchoProvider, OpenAICompatibleProvider, ProviderError
    from .stamps import stamp_message

    if new and session is not None:
        raise click.UsageError(f"--new starts a new session, so SESSION {session!r} is not "
                               f"used; to label the new one: --new --label {session!r}")
    if not new and session is None:
        raise click.UsageError("give a SESSION to continue, or --new")
    if label is not None and not new:
        raise click.UsageError("--label applies to --new; use `sessionsgit rename` otherwise")
    kind = provider or ("openai" if os.environ.get("OPENAI_BASE_URL") else "echo")
    if kind == "openai" and not (model or os.environ.get("OPENAI_MODEL")):
        raise click.ClickException("the openai provider needs a model: pass --model NAME or "
                                   "set OPENAI_MODEL")
    backend = OpenAICompatibleProvider(model) if kind == "openai" else (
        EchoProvider(model) if model else EchoProvider())
    store = _store(create=create)
    conversation = Conversation(backend)
    manager = SessionManager(store, conversation)

    def fail(payload: dict[str, Any]) -> None:
        raise payload["error"]

    manager.on("lifecycle_error", fail)
    unanswered: list[str] = []
    prompts = 0
    with manager, conversation:
        session_id = (manager.start_new(label) if session is None
                      else manager.load(_resolve(store, session)))
        stdin = sys.stdin
        interactive = stdin.isatty()
        click.echo(f"Session {session_id} ({backend.name}/{backend.model}); "
                   "/exit or Ctrl-D to quit.", err=True)
        while True:
            if interactive:
                click.echo("> ", nl=False)
            line = stdin.readline()
            if not line:
                break
            prompt = line.strip()
            if prompt in ("/exit", "/quit"):
                break
            if not prompt:
                continue
            prompts += 1
            before = len(conversation.messages)
            try:
                reply = conversation.prompt(prompt)
            except SessionConflictError:
                # another writer moved the session: keep this exchange, after its news
                store.append(session_id, conversation.messages[before:])
                manager.load(session_id)
                click.echo(f"note: session {session_id} was changed by another writer; "
                           "reloaded it and appended this exchange after the new messages",
                           err=True)
                reply = conversation.messages[-1]
            except ProviderError as exc:
                # no reply: the prompt is still kept, so nothing typed is lost
                store.append(session_id, [stamp_message(_text_message("user", prompt))])
                manager.load(session_id)
                unanswered.append(_one_line(str(exc)))
                if interactive:
                    click.echo(f"Error: {unanswered[-1]} (your prompt is saved)", err=True)
                continue
            parts = [text for kind_, text in render.message_parts(reply) if kind_ == "text"]
            click.echo("\n".join(parts))
    if unanswered and not interactive:
        raise click.ClickException(
            f"{len(unanswered)} of {prompts} prompts got no reply (saved in session "
            f"{session_id} without one): {unanswered[0]}")


@cli.command(name="export")
@click.argument("session")
@click.option("--format", "format_", type=click.Choice(["json", "jsonl", "markdown", "yaml"]),
              default="json", show_default=True,
              help="json and jsonl round-trip through `sessionsgit import`.")
@click.option("--at", "at", metavar="REV", help="Export this save instead of the head.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of stdout.")
def cli_export(session: str, format_: str, at: str | None, output: Path | None) -> None:
    """Export a session as JSON, JSONL, Markdown or YAML.

    SESSION@REV (or --at) exports that save."""
    from .transcripts import export_session

    store = _store()
    session_id, rev = resolve_revision(store, session)
    if rev is not None and at is not None:
        raise click.UsageError("give the revision either as SESSION@REV or as --at, not both")
    text = export_session(_load(store, session_id, at or rev), format_)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@cli.command(name="import")
@click.argument("path", type=click.Path(path_type=Path, allow_dash=True))
@click.option("--id", "id_", help="Session id to import a single file as.")
@click.option("--label", "-l", help="Label for a single imported file.")
@click.option("--skip-damaged", is_flag=True,
              help="Exit 0 even when sessions were skipped (each is still reported).")
@_CREATE
def cli_import(path: Path, id_: str | None, label: str | None, skip_damaged: bool,
               create: bool) -> None:
    """Import transcripts; prints the imported ids.

    PATH is a JSON or JSONL transcript (- for stdin), or a directory written by the npm
    package's FileSessionStore (its attached forks stay forks). Each skipped session is
    reported on one line with its reason, and then the exit status is 1 unless
    --skip-damaged."""
    from .importers import ImportResult, import_path, import_transcript
    from .transcripts import parse_transcript

    store = _store(create=create)
    if str(path) == "-":
        transcript = parse_transcript(sys.stdin.read(), source="stdin")
        result = ImportResult([import_transcript(store, transcript, session_id=id_, label=label)])
    else:
        with _progress("Importing") as progress:
            result = import_path(store, path, session_id=id_, label=label, progress=progress)
    for session_id in result.imported:
        click.echo(session_id)
    for session_id, reason in result.warnings:
        click.echo(f"warning {session_id}: {reason}", err=True)
    for session_id, reason in result.skipped:
        click.echo(f"skipped {session_id}: {reason}", err=True)
    if result.skipped and not skip_damaged:
        raise SystemExit(1)


# ---- remotes ------------------------------------------------------------------------------
def _sync() -> Any:
    """The sync module, imported only when a remote command runs."""
    try:
        from . import sync
    except ImportError as exc:
        if exc.name not in ("sessionsgit.sync", f"{__package__}.sync"):
            raise
        raise click.ClickException("remote support (sessionsgit.sync) is not installed") from None
    return sync


#: The report keys each remote command's text output counts (JSON has every key).
_PUSH_KEYS = ("pushed", "pruned", "unchanged", "rejected", "damaged")
_PULL_KEYS = ("fetched", "created", "diverged", "diverged_threads", "pruned", "unchanged",
              "rejected")


def _report(report: Any, keys: Sequence[str] | None = None) -> Printed:
    record = report.to_dict() if hasattr(report, "to_dict") else dataclasses.asdict(report)
    shown = {key: value for key, value in record.items() if keys is None or key in keys}
    return Printed([record], render.sync_summary([shown]), single=True)


@cli.group(name="remote")
def cli_remote() -> None:
    """Manage remotes (add, list, remove)."""


@cli_remote.command(name="add")
@click.argument("name")
@click.argument("url")
def remote_add(name: str, url: str) -> None:
    """Add a remote NAME at URL."""
    _sync().add_remote(_store(), name, url)


@cli_remote.command(name="list")
@output_options("remotes_table")
def remote_list() -> Records:
    """List remotes with their URLs."""
    return [{"name": name, "url": url} for name, url in _sync().list_remotes(_store())]


@cli_remote.command(name="remove")
@click.argument("name")
def remote_remove(name: str) -> None:
    """Remove the remote NAME."""
    _sync().remove_remote(_store(), name)


@cli.command(name="push")
@click.argument("remote", default="origin", required=False)
@click.argument("sessions", nargs=-1)
@click.option("--prune", is_flag=True, help="Delete remote sessions deleted here.")
@output_options("sync_summary")
def cli_push(remote: str, sessions: Sequence[str], prune: bool) -> Printed:
    """Push sessions to a remote.

    All sessions, or the SESSIONS given, to REMOTE (default: origin): a remote's name, or a
    path or URL as with git. Damaged sessions are skipped and reported."""
    sync, store = _sync(), _store()
    ids = [_resolve(store, s) for s in sessions] or None
    with _progress("Pushing") as progress:
        return _report(sync.push(store, remote, ids, prune=prune, progress=progress),
                       _PUSH_KEYS)


@cli.command(name="pull")
@click.argument("remote", default="origin", required=False)
@click.option("--prune", is_flag=True, help="Delete local sessions deleted on the remote.")
@output_options("sync_summary")
def cli_pull(remote: str, prune: bool) -> Printed:
    """Fetch sessions from a remote.

    REMOTE is a remote's name, or a path or URL as with git. A session that diverged keeps
    both sides: it takes the remote version, and the local continuation moves to a new fork
    session (reported as diverged). A LangGraph thread keeps both as checkpoint branches of
    the thread itself."""
    sync, store = _sync(), _store()
    with _progress("Pulling") as progress:
        return _report(sync.pull(store, remote, prune=prune, progress=progress), _PULL_KEYS)


@cli.command(name="sync")
@click.argument("remote", default="origin", required=False)
@click.option("--prune", is_flag=True, help="Propagate deletions both ways.")
@output_options("sync_summary")
def cli_sync(remote: str, prune: bool) -> Printed:
    """Pull from a remote, then push to it."""
    sync, store = _sync(), _store()
    with _progress("Syncing") as progress:
        return _report(sync.sync(store, remote, prune=prune, progress=progress))


@cli.command(name="gc")
@click.option("--prune", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Also delete unreachable objects (such as purged sessions) older than "
                   "SECONDS; 0 is unsafe while another process saves.")
@output_options("report_text")
def cli_gc(prune: float | None) -> Printed:
    """Repack everything into one pack (with deltas), and pack refs.

    Saves write a small pack each and roll them up as they go; this also compresses them
    against each other and packs any loose objects. Unreachable objects are kept unless
    --prune is given: `purge` then `gc --prune 0` forgets a deleted session for good."""
    store = _store()
    if sys.stderr.isatty():
        click.echo("Packing objects…", err=True)
    result = dict(store.gc(prune=prune))
    return Printed([result], render.report_text([result]), single=True)


@cli.command(name="install-diff-driver")
def cli_install_diff_driver() -> None:
    """Make `git diff` show stored messages readably.

    Sets the diff driver in the repository's config (running `sessionsgit textconv`) and
    adds attributes for message files to its info/attributes; prints what it edited."""
    click.echo(_sync().install_diff_driver(_store()))


@cli.command(name="textconv", hidden=True)
@click.argument("path", type=click.Path(dir_okay=False))
def cli_textconv(path: str) -> None:
    """Print a stored message file as text (git's diff driver, see install-diff-driver)."""
    from .textconv import main as textconv_main
    sys.exit(textconv_main([path]))


# ---- search and the web viewer (issue 17): the search module and web stack load lazily ------
def _hits_text(records: Records) -> str:
    """Search hits, one per line: session, label, message number, role and the snippet."""
    if not records:
        return "No matches.\n"
    lines = []
    for r in records:
        where = render.short_session_id(r["session_id"])
        label = f" ({r['label']})" if r.get("label") else ""
        notes = "".join(f" [{note}]" for note, on in (("deleted", r.get("deleted")),
                                                      ("earlier save", not r.get("current")))
                        if on)
        lines.append(f"{where}{label} #{r['index'] + 1} {r.get('role') or '?'}{notes}: "
                     f"{r['snippet']}")
    return "\n".join(lines) + "\n"


@cli.command(name="search")
@click.argument("query")
@click.option("--session", "-s", "session", metavar="SESSION",
              help="Only this session (id, id prefix or label).")
@click.option("--role", "-r", type=click.Choice(ROLES), help="Only messages of this role.")
@click.option("--since", metavar="TIME", help="Only sessions saved at or after this ISO time.")
@click.option("--all-history", is_flag=True,
              help="Also search earlier saves and deleted sessions.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=20, show_default=True)
@output_options(_hits_text)
def cli_search(query: str, session: str | None, role: str | None, since: str | None,
               all_history: bool, limit: int) -> Records:
    """Full-text search over messages: words and "quoted phrases", case-insensitive.

    Matches are marked «like this». The index is a cache under the repository's git dir,
    built on first use and then updated from the sessions that changed."""
    store = _store()
    session_id = _resolve(store, session) if session is not None else None
    with _progress("Indexing") as progress:
        hits = store.search(query, limit=limit, session=session_id, role=role, since=since,
                            all_history=all_history, progress=progress)
    return [hit.to_dict() for hit in hits]


@cli.command(name="serve")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--host", default=None, metavar="HOST",
              help="Address to listen on (default 127.0.0.1: this machine only). Any other "
                   "address exposes your sessions to whoever can reach it.")
@click.option("--open", "open_", is_flag=True, help="Open the viewer in a web browser.")
def cli_serve(port: int, host: str | None, open_: bool) -> None:
    """A local web viewer: session list, search, fork tree, transcripts, diffs, actions.

    Needs the optional web stack: pip install 'sessionsgit[serve]'."""
    state = click.get_current_context().find_object(State)
    assert state is not None
    if not state.repo.exists():
        _store()  # the usual "no sessions repository" error
    try:
        from .web.server import serve
    except ImportError as exc:
        raise click.ClickException(f"the viewer needs the web extra ({exc.name} is missing): "
                                   "pip install 'sessionsgit[serve]'") from None
    chosen = host if host is not None else "127.0.0.1"

    def ready(url: str) -> None:
        where = "this machine only" if host is None or chosen in ("127.0.0.1", "localhost",
                                                                  "::1") else "the network"
        click.echo(f"Serving {state.repo} at {url} ({where}); Ctrl-C stops.", err=True)

    with contextlib.suppress(KeyboardInterrupt):
        serve(state.repo, host=chosen, port=port, allow_remote=host is not None,
              open_browser=open_, ready=ready)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="sessionsgit")
