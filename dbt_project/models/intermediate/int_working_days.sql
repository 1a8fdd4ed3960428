-- R-SLA calendar: every day 2000–2099 with whether it is a working day on the official PRC calendar.
-- Source order: the centre's calendar_additions seed, then chinesecalendar (raw.prc_calendar); a year in
-- neither is estimated as Monday–Friday minus the fixed-date statutory holidays (is_estimate = true).
with spine as (
    select unnest(generate_series(date '2000-01-01', date '2099-12-31', interval 1 day))::date as calendar_day
),

additions as (
    select
        day::date as calendar_day,
        is_workday::boolean as is_workday
    from {{ ref('calendar_additions') }}
),

official as (
    select
        calendar_day,
        is_workday
    from {{ ref('stg_calendar__prc_calendar') }}
),

covered_years as (
    select distinct year(calendar_day) as calendar_year from official
    union
    select distinct year(calendar_day) from additions
),

judged as (
    select
        spine.calendar_day,
        coalesce(
            additions.is_workday,
            official.is_workday,
            case
                when covered_years.calendar_year is not null then isodow(spine.calendar_day) <= 5
                else
                    isodow(spine.calendar_day) <= 5
                    and strftime(spine.calendar_day, '%m-%d') not in (
                        '01-01', '05-01', '05-02', '10-01', '10-02', '10-03'
                    )
            end
        ) as is_workday,
        covered_years.calendar_year is null as is_estimate
    from spine
    left join additions on spine.calendar_day = additions.calendar_day
    left join official on spine.calendar_day = official.calendar_day
    left join covered_years on year(spine.calendar_day) = covered_years.calendar_year
)

select
    calendar_day,
    is_workday,
    is_estimate,
    -- number of working days up to and including this day: the n-th working day after day x is the
    -- working day whose workday_seq is workday_seq(x) + n
    sum(case when is_workday then 1 else 0 end) over (order by calendar_day) as workday_seq
from judged
