-- What each daily run fetched, landed, quarantined, repeated, looked up and retried: one number a row,
-- so the BI tool can chart any of them over time. Not a function of D (it grows with every run), which is
-- why it lives in schema ops, beside the marts rather than among them.
with metrics as (
    select * from {{ ref('stg_pipeline__run_metrics') }}
),

labels as (
    select
        code,
        label_zh
    from {{ ref('code_labels') }}
    where code_type = 'run_metric'
)

select
    metrics.load_id,
    metrics.as_of,
    metrics.step,
    metrics.subject,
    metrics.metric,
    coalesce(labels.label_zh, metrics.metric) as metric_zh,
    metrics.value,
    metrics.note,
    metrics.recorded_at
from metrics
left join labels on metrics.metric = labels.code
