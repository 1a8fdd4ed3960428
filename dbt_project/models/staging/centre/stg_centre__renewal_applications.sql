with source as (
    select * from {{ source('centre', 'centre_renewal_applications') }}
),

renamed as (
    select * exclude (load_id)
    from source
)

select * from renamed
