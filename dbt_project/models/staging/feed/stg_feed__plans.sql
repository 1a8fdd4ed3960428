with source as (
    select * from {{ source('feed', 'plans') }}
),

renamed as (
    select
        plan_no,
        institution_id,
        occupation_code,
        occupation_name,
        work_type,
        level,
        assessment_date,
        status,
        candidates,
        passed,
        certificates_online,
        updated_at,
        load_id
    from source
)

select * from renamed
where plan_no is not null
qualify row_number() over (partition by plan_no order by updated_at desc nulls last, load_id desc) = 1
