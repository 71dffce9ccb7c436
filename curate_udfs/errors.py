"""Exceptions that separate bad input (a row with an error) from broken environments (stop)."""


class BadInputError(Exception):
    """This record cannot be processed; it becomes a row with ``status='error'``, the job goes on."""


class MediaError(BadInputError):
    """A file that is not a readable video: empty, truncated, corrupt, audio-only, not media."""


class EnvironmentProblem(RuntimeError):
    """Something the job needs is missing (an encoder, weights, JARs); the message says the fix."""


class StorageError(BadInputError):
    """Object storage refused or could not find something (no such bucket or object, access denied).

    For one input video it becomes that video's error row; on the driver (listing, the lake's
    bucket) it stops the job before any work, with this message.
    """


class LakeConflict(RuntimeError):
    """A table write still conflicted with other jobs' commits after its retries; the message says what to do."""
