"""One CLI invocation: its output, its settings, its Temporal connection, and the one place
where anything that goes wrong becomes one line and an exit code.

Exit codes: 0 done (succeeded, with --wait); 1 a job did not succeed, or reconcile found a
mismatch; 2 a bad flag, request, file or config, or an operation the job refused (extend or
cancel a finished job); 3 Temporal unreachable; 4 unknown job; 5 no worker polls the queue
the command needs (or none answered in time); 70 a bug (its traceback with SEEDANCE_DEBUG=1);
130 interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from typer.exceptions import TyperException

from seedance_pipeline.clients.cli_output import Output
from seedance_pipeline.clients.failures import Refused
from seedance_pipeline.clients.jobs import JobFinished, JobUnanswered, UnknownJob
from seedance_pipeline.clients.pollers import NoWorker
from seedance_pipeline.clients.target import Target, resolve_target, same_address, stack_notes
from seedance_pipeline.clients.temporal_client import TemporalUnavailable, connect
from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.reconcile import InvoiceError
from seedance_pipeline.core.settings import ConfigError, Settings
from seedance_pipeline.core.validation import RequestInvalid

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_NO_TEMPORAL, EXIT_UNKNOWN, EXIT_NO_WORKER = range(6)
EXIT_BUG = 70
EXIT_INTERRUPTED = 130


class BadArgument(ValueError):
    """A flag or argument the command cannot use; the message names it and what is allowed."""


@dataclass
class Session:
    out: Output = field(default_factory=Output)
    _settings: Settings | None = None
    _client: Client | None = None
    target: Target | None = None
    argv: list[str] = field(default_factory=list)

    def settings(self) -> Settings:
        """This shell's settings, checked at load (a bad value is refused: exit 2)."""
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    async def client(self) -> Client:
        """The Temporal this command talks to; says which when it is not the default, and
        warns when the stack `make up` recorded is not the one answering."""
        if self._client is None:
            target, config = resolve_target()
            self.target = target
            self._client = await connect(config=config)
            for note in await stack_notes(self._client, target):
                if note.startswith("warning: "):
                    self.out.warn(note.removeprefix("warning: "))
                else:
                    self.out.info(note)
        return self._client

    def worker_log(self) -> str | None:
        """The stack's worker log, when this command talks to the recorded stack."""
        target = self.target
        if target is None or target.record is None:
            return None
        if same_address(target.record.temporal, target.address):
            return target.record.log_of("worker")
        return None


_CURRENT: list[Session] = []


def session() -> Session:
    """This invocation's session (one per `cli.run`, shared by every sub-command module)."""
    if not _CURRENT:
        _CURRENT.append(Session())
    return _CURRENT[-1]


def new_session() -> Session:
    _CURRENT.clear()
    return session()


def failure(exc: BaseException, session: Session) -> tuple[int, str] | None:
    """The exit code and the one line for an error a user can act on; None for a bug."""
    if isinstance(exc, TyperException):  # typer's click: bad flags, arguments, commands
        return EXIT_INVALID, _usage_line(exc)
    if isinstance(exc, ConfigError):
        return EXIT_INVALID, f"config: {exc}"
    if isinstance(exc, BadArgument | RequestInvalid | InvoiceError):
        return EXIT_INVALID, str(exc)
    if isinstance(exc, ValidationError):  # a value from outside that a model refused
        return EXIT_INVALID, "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
    if isinstance(exc, Refused):
        return EXIT_INVALID, f"refused: {exc}"
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        return EXIT_INVALID, f"refused: {getattr(cause, 'message', None) or cause}"
    if isinstance(exc, JobFinished):
        return EXIT_INVALID, (
            f"{exc}; nothing to do. `starter.py status {exc.job_id}` shows its record"
        )
    if isinstance(exc, UnknownJob):
        return EXIT_UNKNOWN, str(exc)
    if isinstance(exc, TemporalUnavailable):
        return EXIT_NO_TEMPORAL, f"Temporal unavailable: {exc}"
    if isinstance(exc, NoWorker):
        return EXIT_NO_WORKER, exc.with_log(session.worker_log())
    if isinstance(exc, JobUnanswered):
        return EXIT_NO_WORKER, exc.with_log(session.worker_log())
    if isinstance(exc, RPCError) and exc.status == RPCStatusCode.UNAVAILABLE:
        where = session.target.address if session.target else "its address"
        return EXIT_NO_TEMPORAL, f"Temporal at {where} stopped answering ({exc.message})"
    if isinstance(exc, RPCError) and exc.status == RPCStatusCode.INVALID_ARGUMENT:
        return EXIT_INVALID, f"Temporal refused the request: {exc.message}"
    return None


def _usage_line(exc: TyperException) -> str:
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command_path", None) or "starter.py"
    message = " ".join(exc.format_message().split())
    if not message:  # no arguments at all: the help has been printed
        return ""
    return f"{command}: {message} (see `{command} --help`)"
