with source as (
    select * from {{ source('centre', 'centre_occupation_change_requests') }}
),

renamed as (
    select * exclude (load_id)
    from source
)

select * from renamed
