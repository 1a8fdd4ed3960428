with source as (
    select * from {{ source('calendar', 'prc_calendar') }}
),

renamed as (
    select
        cast(day as date) as calendar_day,
        is_workday,
        holiday_name
    from source
)

select * from renamed
