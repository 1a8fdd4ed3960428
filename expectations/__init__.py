"""Great Expectations gate between dbt and publication."""

import logging

# Imported, Great Expectations logs ~200 INFO lines about its own documentation decorators into the gate's task log
logging.getLogger("great_expectations").setLevel(logging.WARNING)
