with source as (
    select * from {{ source('centre', 'centre_rectification_notices') }}
),

renamed as (
    select * exclude (load_id)
    from source
)

select * from renamed
