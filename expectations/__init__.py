"""Great Expectations gate between dbt and publication."""
