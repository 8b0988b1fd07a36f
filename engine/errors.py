"""The engine's exception classes: flat, each with a message a person can act on."""


class OzgflowError(Exception):
    """Base class of every error the engine reports to a user."""


class ConfigError(OzgflowError):
    """The configuration (environment or tenant file) is invalid."""


class NotFound(OzgflowError):
    """A case, task, tenant or process that was asked for does not exist."""


class AlreadyCompleted(OzgflowError):
    """The task was completed before (or by another process at the same moment)."""


class ConcurrentUpdate(OzgflowError):
    """The case was changed by another process while this one worked on it."""


class FormInvalid(OzgflowError):
    """Task data does not satisfy the task's form. ``errors`` maps field -> message."""

    def __init__(self, message, errors):
        super().__init__(message)
        self.errors = errors


class CaseError(OzgflowError):
    """Running the case failed (a script, an expression, a service call)."""


class CaseSuspended(CaseError):
    """The case is suspended (engine.suspension): it does not advance until an admin resumes it."""


class CaseClosed(CaseError):
    """The case is completed or terminated: nothing changes it any more."""


class Problem:
    """One reason a model is refused at deploy: where (file, line, element) and what."""

    __slots__ = ("file", "line", "element", "message", "column")

    def __init__(self, file, line, element, message, column=None):
        self.file, self.line, self.element, self.message = file, line, element, message
        self.column = column  # 1-based, where known (XML syntax and schema errors)

    def as_dict(self):
        return {"file": self.file, "line": self.line, "column": self.column, "element": self.element,
                "message": self.message}

    def __str__(self):
        where = f"{self.file}:{self.line}" if self.line else f"{self.file}"
        where += f":{self.column}" if self.line and self.column else ""
        element = f" [{self.element}]" if self.element else ""
        return f"{where}{element}: {self.message}"


class DeployError(OzgflowError):
    """A model was refused. ``problems`` lists every reason found, each with file, line and element."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
