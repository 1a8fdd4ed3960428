-- R-WORK report_termination (报人社部公示终止备案), a task of the provincial centre (五(三)): a termination record
-- notified within the last termination_report_days days, D included. A termination known only from the feed's
-- status has no date and yields no task. No deadline. One row per institution.
select
    terminations.institution_id,
    'report_termination' as item_code,
    null::date as item_deadline,
    '终止备案通知日期' || strftime(max(terminations.notified_on), '%Y年%-m月%-d日') as detail_zh
from {{ ref('stg_centre__terminations') }} as terminations
cross join {{ ref('int_policy_parameters') }} as policy
where
    terminations.notified_on between {{ as_of() }} - to_days(policy.termination_report_days)
    and {{ as_of() }}
group by terminations.institution_id
