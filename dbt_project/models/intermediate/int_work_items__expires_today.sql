-- R-WORK expires_today (备案今日到期): the registration period ends on D and no application counts yet (stage
-- window_open, or overdue when a cohort's deadline has passed); its deadline is D. One row per institution.
select
    institution_id,
    'expires_today' as item_code,
    {{ as_of() }} as item_deadline,
    null::varchar as detail_zh
from {{ ref('renewal_eligibility') }}
where expires_on = {{ as_of() }} and lifecycle_stage in ('window_open', 'overdue')
