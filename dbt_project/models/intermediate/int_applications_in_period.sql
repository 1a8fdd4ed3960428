-- R-APP, the one owner of "which applications belong to the current period, and when each was received":
-- an application received before the period's registered_on belongs to an earlier period (the renewal that
-- started this one) and is dropped here, with no reason code, so that no rule downstream ever sees it.
-- The others are timed against the renewal window: early (before window_opens_on), counting
-- (window_opens_on ≤ received_on ≤ grace_ends_on) or late (after grace_ends_on).
with applications as (
    select * from {{ ref('stg_centre__renewal_applications') }}
),

institutions as (
    select * from {{ ref('int_institutions_dated') }}
)

select
    applications.application_id,
    applications.institution_id,
    applications.received_on,
    applications.incentive_evidence,
    applications.force_majeure_statement,
    applications.occupation_codes,
    applications.review_result,
    applications.review_completed_on,
    case
        when applications.received_on < institutions.window_opens_on then 'early'
        when applications.received_on > institutions.grace_ends_on then 'late'
        else 'counting'
    end as timing
from applications
inner join institutions on applications.institution_id = institutions.institution_id
where applications.received_on >= institutions.registered_on
