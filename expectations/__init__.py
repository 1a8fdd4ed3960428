"""Great Expectations gate between dbt and publication.

How Great Expectations is imported, wherever it is (the gate, and the scheduler that preloads it for the tasks,
pipeline/scheduler.py): without usage statistics, and without the ~200 INFO lines about its own documentation
decorators that it logs while it is imported, which filled the gate's task log."""

import logging
import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
logging.getLogger("great_expectations").setLevel(logging.WARNING)
