-- R-FEED (docs/rules.md): has 技能人才评价工作网 stopped changing? The newest updated_at of any record the feed
-- ever served, on or before D, and the days since, against the freshness thresholds of source feed.feed_loads
-- (the ones `dbt source freshness` applies, macros/feed_freshness.sql). One row per supervising centre, all alike:
-- the feed is the province's, and a row per centre lets each centre's row-level security (PostgreSQL, Superset)
-- show it its own row. notice_zh is the line the workbooks and dashboards show at the top.
with newest as (
    {{ feed_newest_update() }}
),

judged as (
    select
        newest_updated_at,
        cast(timezone('Asia/Shanghai', newest_updated_at) as date) as newest_updated_on,
        {{ feed_days_unchanged('newest_updated_at') }} as days_unchanged,
        {{ feed_warn_after_days() }} as warn_after_days,
        {{ feed_error_after_days() }} as error_after_days
    from newest
),

statuses as (
    select
        *,
        case
            when days_unchanged is null or days_unchanged > error_after_days then 'stopped'
            when days_unchanged > warn_after_days then 'stale'
            else 'fresh'
        end as freshness_status
    from judged
),

labels as (
    select
        code,
        label_zh
    from {{ ref('code_labels') }}
    where code_type = 'feed_freshness'
),

centres as (
    select * from {{ ref('supervising_centres') }}
)

select
    centres.supervising_centre,
    centres.supervising_centre_zh,
    statuses.freshness_status,
    labels.label_zh as freshness_status_zh,
    statuses.newest_updated_at,
    statuses.newest_updated_on,
    statuses.days_unchanged,
    statuses.warn_after_days,
    statuses.error_after_days,
    case
        when statuses.newest_updated_at is null
            then '注意：截至' || strftime({{ as_of() }}, '%Y-%m-%d') || '未收到工作网的任何数据，以下结果可能不完整'
        when statuses.freshness_status = 'fresh'
            then '工作网数据正常更新（最新更新 ' || strftime(statuses.newest_updated_on, '%Y-%m-%d') || '）'
        else
            '注意：工作网数据已 ' || statuses.days_unchanged || ' 天未更新（最新更新 '
            || strftime(statuses.newest_updated_on, '%Y-%m-%d') || '），'
            || case when statuses.freshness_status = 'stopped' then '可能已停止推送，请与工作网核实；' else '' end
            || '以下结果可能不是最新'
    end as notice_zh,
    {{ as_of() }} as as_of
from centres
cross join statuses
left join labels on statuses.freshness_status = labels.code
