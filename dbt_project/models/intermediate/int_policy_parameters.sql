-- One row with every policy parameter of docs/rules.md as a typed column (seed renewal_policy).
with policy as (
    select
        parameter,
        cast(value as integer) as value
    from {{ ref('renewal_policy') }}
)

select
    max(value) filter (where parameter = 'window_days') as window_days,
    max(value) filter (where parameter = 'grace_days') as grace_days,
    max(value) filter (where parameter = 'min_batches') as min_batches,
    max(value) filter (where parameter = 'review_working_days') as review_working_days,
    max(value) filter (where parameter = 'window_opens_soon_days') as window_opens_soon_days,
    max(value) filter (where parameter = 'expiring_days') as expiring_days,
    max(value) filter (where parameter = 'grace_ending_days') as grace_ending_days,
    max(value) filter (where parameter = 'abandoned_notice_days') as abandoned_notice_days,
    max(value) filter (where parameter = 'warning_lead_days') as warning_lead_days,
    max(value) filter (where parameter = 'review_due_soon_working_days') as review_due_soon_working_days,
    max(value) filter (where parameter = 'new_letter_task_days') as new_letter_task_days,
    max(value) filter (where parameter = 'termination_report_days') as termination_report_days
from policy
