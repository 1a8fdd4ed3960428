{#
    Gaps and islands: for each key, the first day of the unbroken run of days that reaches the as-of date D.
    `relation` holds one row per key and day (column `day`); consecutive days share day - row_number().
    Keys whose last day is before D have no current run and give no row.
#}
{% macro current_run_start(relation, keys, day='judged_on', as_column='first_day') %}
    {%- set key_list = keys | join(', ') -%}
    select {{ key_list }}, min({{ day }}) as {{ as_column }}
    from (
        select
            {{ key_list }},
            {{ day }},
            {{ day }} - cast(row_number() over (partition by {{ key_list }} order by {{ day }}) as integer) as run_key
        from {{ relation }}
    )
    group by {{ key_list }}, run_key
    having max({{ day }}) = {{ as_of() }}
{% endmacro %}
