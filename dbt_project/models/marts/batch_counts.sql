-- R-BATCH: batches, candidates and passed per institution, registration period, occupation, level and
-- assessment year, over the plans that count (completed, within the period, on or before D).
with plans as (
    select * from {{ ref('int_plans_counted_in_period') }}
    where is_counting
),

levels as (
    select code, label_zh from {{ ref('code_labels') }} where code_type = 'level'
)

select
    institution_id,
    registered_on as period_start,
    expires_on as period_end,
    occupation_code,
    occupation_name,
    coalesce(work_type, '') as work_type,
    level,
    levels.label_zh as level_zh,
    year(assessment_date) as assessment_year,
    count(distinct plan_no) as batches,
    sum(candidates) as candidates,
    sum(passed) as passed,
    sum(issued_certificates) as issued_certificates,
    sum(queryable_certificates) as queryable_certificates,
    {{ as_of() }} as as_of
from plans
left join levels on cast(plans.level as varchar) = levels.code
group by all
