"""Daily exports of the OFA-VE metrics and before/after comparisons of model revisions.

Talks to the stack only through public HTTP APIs (the Prometheus query API of VictoriaMetrics or
Prometheus, VictoriaMetrics' snapshot API through vmbackup).
"""

__version__ = "0.1.0"

# Version of the files a snapshot writes (CSV columns, JSON layout, manifest). Raised on any change
# a reader would notice; README.md describes each version.
SCHEMA_VERSION = 1
