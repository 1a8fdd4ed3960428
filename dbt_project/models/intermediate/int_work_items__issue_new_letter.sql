-- R-WORK issue_new_letter (出具新的备案函), a task of the provincial centre (四(三)): the review passed (stage
-- renewed) within the last new_letter_task_days days, D included. No deadline. One row per institution.
select
    eligibility.institution_id,
    'issue_new_letter' as item_code,
    null::date as item_deadline,
    '续期评估于' || strftime(eligibility.review_completed_on, '%Y年%-m月%-d日') || '通过' as detail_zh
from {{ ref('renewal_eligibility') }} as eligibility
cross join {{ ref('int_policy_parameters') }} as policy
where
    eligibility.lifecycle_stage = 'renewed'
    and eligibility.review_completed_on between {{ as_of() }} - to_days(policy.new_letter_task_days)
    and {{ as_of() }}
