-- R-BATCH and R-CERT per plan: whether a plan counts as a batch of the registration period
-- (completed, registered_on ≤ assessment_date ≤ min(expires_on, D)), and how its certificates stand.
with plans as (
    select * from {{ ref('stg_feed__plans') }}
),

institutions as (
    select * from {{ ref('int_institutions_dated') }}
),

-- a certificate is one row in int_certificates_with_latest_lookup (a view over
-- int_all_certificates_with_latest_lookup, whose unique_key it is; both have its unique test), so count(*) counts
-- certificates: count(distinct) hashed 5 M numbers, 1.2 s of every day's build
certificates as (
    select
        plan_no,
        count(*) as issued_certificates,
        count(*) filter (where is_queryable) as queryable_certificates
    from {{ ref('int_certificates_with_latest_lookup') }}
    group by plan_no
)

select
    plans.plan_no,
    plans.institution_id,
    plans.occupation_code,
    plans.occupation_name,
    plans.work_type,
    plans.level,
    plans.assessment_date,
    plans.status,
    plans.candidates,
    plans.passed,
    plans.certificates_online,
    institutions.registered_on,
    institutions.expires_on,
    coalesce(plans.passed, 0) as expected_certificates,
    coalesce(certificates.issued_certificates, 0) as issued_certificates,
    coalesce(certificates.queryable_certificates, 0) as queryable_certificates,
    plans.status = 'completed'
    and plans.assessment_date between institutions.registered_on
    and least(institutions.expires_on, {{ as_of() }}) as is_counting,
    coalesce(certificates.issued_certificates, 0) = coalesce(plans.passed, 0)
    and coalesce(certificates.queryable_certificates, 0) = coalesce(certificates.issued_certificates, 0)
        as certificates_all_queryable
from plans
inner join institutions on plans.institution_id = institutions.institution_id
left join certificates on plans.plan_no = certificates.plan_no
