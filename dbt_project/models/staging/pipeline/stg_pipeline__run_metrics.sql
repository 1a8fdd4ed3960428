with source as (
    select * from {{ source('pipeline', 'run_metrics') }}
),

renamed as (
    select
        load_id,
        as_of,
        step,
        subject,
        metric,
        value,
        note,
        recorded_at
    from source
)

select * from renamed
