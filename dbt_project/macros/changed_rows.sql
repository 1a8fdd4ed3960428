{#
    The data tests on the million-row certificate and lookup models check only the rows changed since the last
    passed check, and every row once a week (pipeline/check_scope.py decides, from raw.run_metrics; README,
    "Checks: changed rows and the weekly full check"). Such a test says which of its model's rows changed in its
    `where` config, with these placeholders:
      __last_passed_check__  the time of the last passed check, e.g. where: "checked_at > __last_passed_check__"
      __changed_loads__      the loads landed since then (macros/changed_loads.sql, which the gate renders too),
                             as a list, e.g. where: "load_id in __changed_loads__"
      __model__              the tested model itself: a uniqueness test checks every row whose key a changed
                             row has, e.g. "id in (select id from __model__ where load_id in __changed_loads__)"
    When the run checks changed rows (env RENEWAL_CHECK_CHANGED_SINCE holds that time) the placeholders become
    literals (a literal list keeps DuckDB's filter in the scan: an `in (subquery)` took longer than the whole
    test); on a full check (the variable unset or empty, or `dbt build --full-refresh`) the test sees every row.
    Any other `where` works as in dbt. dbt renders `where` when it parses, so the values are put in here, when
    the test runs; this replaces dbt's own get_where_subquery, which does the same without the placeholders.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and ('__last_passed_check__' in where or '__changed_loads__' in where or '__model__' in where) -%}
        {%- set changed_since = last_passed_check() -%}
        {%- if changed_since is none -%}
            {%- set where = '' -%}
        {%- else -%}
            {%- set since = "'" ~ changed_since ~ "'::timestamptz" -%}
            {%- if '__changed_loads__' in where -%}
                {%- set loads = run_query(changed_loads(since) ~ " order by 1").columns[0].values() -%}
                {%- set quoted = [] -%}
                {%- for load in loads -%}
                    {%- do quoted.append("'" ~ (load | replace("'", "''")) ~ "'") -%}
                {%- endfor -%}
                {%- set where = where | replace('__changed_loads__', '(' ~ (quoted | join(', ') or 'null') ~ ')') -%}
            {%- endif -%}
            {%- set where = where | replace('__last_passed_check__', since) -%}
            {%- set where = where | replace('__model__', relation | string) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if where -%}
        (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}

{# The time after which rows count as changed, or none for a full check. Read only when the test runs (execute),
   so that parsing never depends on the variable. #}
{% macro last_passed_check() -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set value = env_var('RENEWAL_CHECK_CHANGED_SINCE', '') -%}
    {%- if value == '' -%}
        {{ return(none) }}
    {%- elif modules.re.match('^\d{4}-\d{2}-\d{2}[T ][0-9:.]+([+-]\d{2}:?\d{2}|Z)?$', value) is none -%}
        {{ exceptions.raise_compiler_error(
            "env RENEWAL_CHECK_CHANGED_SINCE must be an ISO timestamp or empty, got: " ~ value) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}
