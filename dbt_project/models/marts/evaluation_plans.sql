-- R-BATCH / R-CERT per plan: the plans that count as batches of the current registration period on D, with how
-- their certificates stand. 附件1 of the renewal application lists up to six of these.
with plans as (
    select * from {{ ref('int_plans_counted_in_period') }}
),

levels as (
    select
        code,
        label_zh
    from {{ ref('code_labels') }}
    where code_type = 'level'
)

select
    plans.plan_no,
    plans.institution_id,
    plans.occupation_code,
    plans.occupation_name,
    coalesce(plans.work_type, '') as work_type,
    plans.level,
    levels.label_zh as level_zh,
    plans.assessment_date,
    year(plans.assessment_date) as assessment_year,
    plans.status,
    plans.candidates,
    plans.passed,
    plans.certificates_online,
    plans.is_counting,
    plans.expected_certificates,
    plans.issued_certificates,
    plans.queryable_certificates,
    plans.certificates_all_queryable,
    {{ as_of() }} as as_of
from plans
left join levels on cast(plans.level as varchar) = levels.code
where plans.is_counting
