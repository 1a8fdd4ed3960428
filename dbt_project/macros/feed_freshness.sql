{#
    R-FEED (docs/rules.md): has 技能人才评价工作网 stopped changing? Judged on D, not on the clock, so that a rerun or
    a backfill for an earlier D judges as a run on that day did. The mart and dbt share one definition:

    - feed_newest_update(): the newest updated_at of any record the feed ever served (every version landed in the
      four raw tables, not only the latest one staging keeps) up to the end of D in Asia/Shanghai;
    - feed_warn_after_days(), feed_error_after_days(): the thresholds, declared once as the freshness of source
      feed.feed_loads in models/staging/feed/_feed__sources.yml, in whole days;
    - feed_freshness_loaded_at(): that source's loaded_at_query, which makes `dbt source freshness` judge on D too.
#}

{% macro feed_newest_update() -%}
    select max(updated_at) as newest_updated_at
    from (
    {%- for table in ['institutions', 'registered_occupations', 'plans', 'certificates'] %}
            select max(updated_at) as updated_at
            from {{ source('feed', table) }}
            where updated_at < timezone('Asia/Shanghai', cast({{ as_of() }} + 1 as timestamp))
            {% if not loop.last %}union all{% endif %}
    {%- endfor %}
    )
{%- endmacro %}

{# The days between D and the Shanghai date of the newest update (0: something changed on D itself). #}
{% macro feed_days_unchanged(newest_updated_at) -%}
    cast({{ as_of() }} - cast(timezone('Asia/Shanghai', {{ newest_updated_at }}) as date) as integer)
{%- endmacro %}

{# The thresholds in whole days. Two macros, not one with an argument, so that a unit test can set each
   (overrides: macros): a unit test's graph holds no sources. #}
{% macro feed_warn_after_days() -%}
    {{ return(feed_freshness_days('warn_after')) }}
{%- endmacro %}

{% macro feed_error_after_days() -%}
    {{ return(feed_freshness_days('error_after')) }}
{%- endmacro %}

{% macro feed_freshness_days(threshold) -%}
    {%- if not execute -%}
        {{ return(0) }}
    {%- endif -%}
    {%- set where = "models/staging/feed/_feed__sources.yml, source feed, table feed_loads, freshness." ~ threshold -%}
    {%- set node = (graph.get('sources') or {}).get('source.renewal.feed.feed_loads') -%}
    {%- if node is none -%}
        {{ exceptions.raise_compiler_error(
            "R-FEED reads its threshold from the graph's source feed.feed_loads (" ~ where ~ "), and there is none"
            ~ " (a unit test sets feed_warn_after_days and feed_error_after_days in overrides: macros)"
        ) }}
    {%- endif -%}
    {%- set freshness = (node.get('config') or {}).get('freshness') or node.get('freshness') or {} -%}
    {%- set declared = freshness.get(threshold) or {} -%}
    {%- if declared.get('period') != 'day' or declared.get('count') is none or declared.get('count') | int < 1 -%}
        {{ exceptions.raise_compiler_error(
            where ~ ": expected a whole number of days, e.g. {count: 4, period: day}, got " ~ (declared or 'nothing')
        ) }}
    {%- endif -%}
    {{ return(declared.get('count') | int) }}
{%- endmacro %}

{#
    `dbt source freshness` takes a source's age as now() minus what its loaded_at_query answers, and compares it
    with warn_after and error_after. Answering now() less D's days unchanged (exact seconds: an interval in days
    would follow the session time zone's daylight saving) makes that age exactly the days between D and the
    newest update, whenever and for whatever D it runs: dbt's verdict is then the mart's (models/marts/
    feed_freshness.sql). Its max_loaded_at is therefore not a time anything happened: read the age. No record at
    all answers null, which dbt takes for infinitely old.
#}
{% macro feed_freshness_loaded_at() -%}
    select now() - to_seconds(86400 * {{ feed_days_unchanged('newest_updated_at') }})
    from ({{ feed_newest_update() }})
{%- endmacro %}
