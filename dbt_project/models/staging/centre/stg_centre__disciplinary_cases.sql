with source as (
    select * from {{ source('centre', 'centre_disciplinary_cases') }}
),

renamed as (
    select
        case_id,
        institution_id,
        opened_on,
        article,
        terminates_registration,
        closed_on,
        source_file,
        row_number
    from source
)

select * from renamed
