with source as (
    select * from {{ source('feed', 'registered_occupations') }}
),

renamed as (
    select
        institution_id,
        occupation_code,
        occupation_name,
        work_type,
        registered_on,
        updated_at,
        load_id
    from source
)

select * from renamed
where institution_id is not null and occupation_code is not null
qualify row_number() over (
    partition by institution_id, occupation_code order by updated_at desc nulls last, load_id desc
) = 1
