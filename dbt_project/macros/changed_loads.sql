{#
    Which rows count as changed since the last passed check: the rows of a load that finished after it. The one
    statement of that rule, rendered twice: by get_where_subquery (macros/changed_rows.sql) for the dbt tests, and
    by the gate's changed() (expectations/suites.py) with plain Jinja, outside dbt, so it may use nothing of dbt's
    context (no ref, source, var or config). `since` is SQL of type timestamptz.
#}
{% macro changed_loads(since) -%}
    select distinct load_id from raw.feed_loads where finished_at > {{ since }}
{%- endmacro %}
