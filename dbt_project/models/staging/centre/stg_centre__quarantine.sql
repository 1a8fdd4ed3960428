-- The centre's own rows that ingest/centre_records.py quarantined (raw.quarantine also holds the feed's).
with source as (
    select * from {{ source('centre', 'quarantine') }}
    where source = 'centre_records'
),

renamed as (
    select
        load_id,
        regexp_extract(file, '[^/\\]+$') as source_file,
        record ->> 'kind' as record_kind,
        record ->> 'sheet' as sheet,
        row_number,
        record ->> 'institution_id' as institution_id,
        field,
        record ->> 'column' as column_header,
        reason,
        record ->> 'reason_zh' as reason_zh,
        record ->> 'expected_zh' as expected_zh,
        record -> 'cells' as cells
    from source
)

select * from renamed
