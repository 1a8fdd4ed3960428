with source as (
    select * from {{ source('centre', 'centre_terminations') }}
),

renamed as (
    select * exclude (load_id)
    from source
)

select * from renamed
