{# The as-of date D (RULES.md Terms) as a SQL date literal. Fails the run when --vars as_of is missing;
   while dbt only parses (execute is false) a placeholder keeps `dbt parse` / `dbt ls` working. #}
{% macro as_of() -%}
    {%- set value = var('as_of') -%}
    {%- if not execute -%}
        date '1970-01-01'
    {%- elif value is none or modules.re.match('^\d{4}-\d{2}-\d{2}$', value | string) is none -%}
        {{ exceptions.raise_compiler_error("var 'as_of' must be a date YYYY-MM-DD, got: " ~ value) }}
    {%- else -%}
        date '{{ value }}'
    {%- endif -%}
{%- endmacro %}
