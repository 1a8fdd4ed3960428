-- R-BATCH / R-CERT per plan: the plans that count as batches of the current registration period on D, with how
-- their certificates stand. 附件1 of the renewal application lists up to six of these.
with plans as (
    select * from {{ ref('int_plans_counted_in_period') }}
),

levels as (
    select code, label_zh from {{ ref('code_labels') }} where code_type = 'level'
)

select
    plan_no,
    institution_id,
    occupation_code,
    occupation_name,
    coalesce(work_type, '') as work_type,
    level,
    levels.label_zh as level_zh,
    assessment_date,
    year(assessment_date) as assessment_year,
    status,
    candidates,
    passed,
    certificates_online,
    is_counting,
    expected_certificates,
    issued_certificates,
    queryable_certificates,
    certificates_all_queryable,
    {{ as_of() }} as as_of
from plans
left join levels on cast(plans.level as varchar) = levels.code
where is_counting
