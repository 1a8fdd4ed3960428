{#
    Gaps and islands over spans: for each key, the first day of the unbroken run of days that reaches the as-of
    date D. `relation` holds one row per key and span of days (first day `day`, last day `until`, spans of one key
    never overlap); a span that starts the day after the previous one ends continues its run. Keys whose last
    span ends before D have no current run and give no row.
#}
{% macro current_run_start(relation, keys, day='judged_on', until='judged_until', as_column='first_day') %}
    {%- set key_list = keys | join(', ') -%}
    select {{ key_list }}, min({{ day }}) as {{ as_column }}
    from (
        select
            {{ key_list }},
            {{ day }},
            {{ until }},
            sum(starts_run) over (partition by {{ key_list }} order by {{ day }}) as run_key
        from (
            select
                {{ key_list }},
                {{ day }},
                {{ until }},
                case
                    when {{ day }} = lag({{ until }}) over (partition by {{ key_list }} order by {{ day }}) + 1 then 0
                    else 1
                end as starts_run
            from {{ relation }}
        )
    )
    group by {{ key_list }}, run_key
    having max({{ until }}) = {{ as_of() }}
{% endmacro %}
