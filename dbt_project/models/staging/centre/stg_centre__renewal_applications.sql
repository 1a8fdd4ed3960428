with source as (
    select * from {{ source('centre', 'centre_renewal_applications') }}
),

renamed as (
    select
        application_id,
        institution_id,
        received_on,
        incentive_evidence,
        force_majeure_statement,
        occupation_codes,
        review_result,
        review_completed_on,
        source_file,
        row_number
    from source
)

select * from renamed
