-- R-BATCH: batches, candidates and passed per institution, registration period, occupation, level and
-- assessment year, over the plans that count (completed, within the period, on or before D).
with plans as (
    select * from {{ ref('int_plans_counted_in_period') }}
    where is_counting
),

levels as (
    select
        code,
        label_zh
    from {{ ref('code_labels') }}
    where code_type = 'level'
)

select
    plans.institution_id,
    plans.registered_on as period_start,
    plans.expires_on as period_end,
    plans.occupation_code,
    plans.occupation_name,
    coalesce(plans.work_type, '') as work_type,
    plans.level,
    levels.label_zh as level_zh,
    year(plans.assessment_date) as assessment_year,
    count(distinct plans.plan_no) as batches,
    sum(plans.candidates) as candidates,
    sum(plans.passed) as passed,
    sum(plans.issued_certificates) as issued_certificates,
    sum(plans.queryable_certificates) as queryable_certificates,
    {{ as_of() }} as as_of
from plans
left join levels on cast(plans.level as varchar) = levels.code
group by all
