"""Named errors. Each message names the file, layer, feature or parameter.

`PermanentError` subclasses describe bad input: retrying cannot help, so the
Airflow tasks fail them at once. Everything else (connection resets, lock
timeouts, lost workers) is left to Airflow's retries.
"""


class GadmError(Exception):
    """Base class of every error raised by gadm_airflow."""


class PermanentError(GadmError):
    """Bad input or configuration: fails the task without retries."""


class ParameterError(PermanentError):
    """A DAG param or setting is invalid."""


class SourceError(PermanentError):
    """The source cannot be found, fetched, opened or is not allowed."""


class SourceUnavailable(GadmError):
    """A remote source timed out or refused the connection: worth a retry."""


class LayoutError(PermanentError):
    """The source is readable but is not a GADM distribution we recognise."""


class SchemaError(PermanentError):
    """A layer lacks a column GADM guarantees (e.g. its GID key)."""


class DataError(PermanentError):
    """Feature data that cannot be loaded faithfully (e.g. no CRS)."""


class VerificationError(PermanentError):
    """Staged data does not reconcile with the source: publishing is refused."""
