with source as (
    select * from {{ source('centre', 'centre_disciplinary_cases') }}
),

renamed as (
    select * exclude (load_id)
    from source
)

select * from renamed
