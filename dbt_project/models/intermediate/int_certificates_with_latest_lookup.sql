-- R-CERT: certificates that exist as of D (issued_on ≤ D) with the latest lookup answer, whatever D is.
-- A certificate never looked up has is_queryable = false.
with certificates as (
    select * from {{ ref('stg_feed__certificates') }}
),

lookups as (
    select
        certificate_no,
        arg_max(found, checked_at) as found,
        max(checked_at) as last_checked_at
    from {{ ref('stg_feed__certificate_lookups') }}
    group by certificate_no
)

select
    certificates.certificate_no,
    certificates.plan_no,
    certificates.institution_id,
    certificates.occupation_code,
    certificates.level,
    certificates.issued_on,
    lookups.last_checked_at,
    coalesce(lookups.found, false) as is_queryable
from certificates
left join lookups on certificates.certificate_no = lookups.certificate_no
where certificates.issued_on <= {{ as_of() }}
