{# The as-of date D (docs/rules.md) as a SQL date literal: `--vars as_of` when given (unit tests, by hand),
   else the environment variable RENEWAL_AS_OF (the DAG's dbt task). Both are read only when dbt executes, never
   while it parses: a new D every day then leaves dbt's partial parse valid (a change of --vars makes dbt parse
   the whole project again, 3-4 s). Fails the run when neither is set; while dbt only parses (execute is false) a
   placeholder keeps `dbt parse` / `dbt ls` working. #}
{% macro as_of() -%}
    {%- if not execute -%}
        date '1970-01-01'
    {%- else -%}
        {%- set value = var('as_of') or env_var('RENEWAL_AS_OF', '') or none -%}
        {{- checked_as_of(value) -}}
    {%- endif -%}
{%- endmacro %}

{% macro checked_as_of(value) -%}
    {%- if value is none or modules.re.match('^\d{4}-\d{2}-\d{2}$', value | string) is none -%}
        {{ exceptions.raise_compiler_error("D must be a date YYYY-MM-DD (--vars as_of, or env RENEWAL_AS_OF), got: " ~ value) }}
    {%- else -%}
        date '{{ value }}'
    {%- endif -%}
{%- endmacro %}
