-- R-WORK reminder (转达续期提醒): every R-REMIND reminder whose condition holds on D, new or continuing, whatever
-- its audience (the centre passes the institution's reminders on). One row per institution; its deadline is the
-- earliest key date among its reminders (none for abandoned).
select
    institution_id,
    'reminder' as item_code,
    min(case
        when reminder_type in ('window_open', 'expiring_30d', 'overdue') then apply_by
        when reminder_type = 'window_opens_soon' then window_opens_on
        when reminder_type in ('grace_period', 'grace_ending') then grace_ends_on
    end) as item_deadline,
    -- each reminder with its key date named for what it is (a window's opening day is no 截止日期)
    string_agg(
        reminder_type_zh || coalesce(
            '，' || deadline_label_zh || '为' || strftime(deadline, '%Y年%-m月%-d日'), ''
        ),
        '；' order by reminder_type
    ) as detail_zh
from {{ ref('reminders') }}
group by institution_id
