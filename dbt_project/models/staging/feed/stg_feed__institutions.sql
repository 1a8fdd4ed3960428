with source as (
    select * from {{ source('feed', 'institutions') }}
),

renamed as (
    select
        institution_id,
        name as institution_name,
        institution_type,
        registration_no,
        supervising_centre,
        region_code,
        registered_on,
        expires_on,
        cohort,
        status,
        responsible_person,
        responsible_phone,
        contact_person,
        contact_phone,
        email,
        address,
        updated_at,
        load_id
    from source
)

-- the feed may repeat an item across pages and runs: keep the latest version of each key
select * from renamed
where institution_id is not null
qualify row_number() over (partition by institution_id order by updated_at desc nulls last, load_id desc) = 1
