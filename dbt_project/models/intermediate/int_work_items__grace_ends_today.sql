-- R-WORK grace_ends_today (存续期今日结束): the grace period ends on D with no application yet (stage
-- grace_period); its deadline is D. One row per institution.
select
    institution_id,
    'grace_ends_today' as item_code,
    {{ as_of() }} as item_deadline,
    null::varchar as detail_zh
from {{ ref('renewal_eligibility') }}
where grace_ends_on = {{ as_of() }} and lifecycle_stage = 'grace_period'
