-- R-VERDICT reasons: one row per institution and reason code that applies on D.
with conditions as (
    select * from {{ ref('int_institution_conditions_as_of') }}
),

institutions as (
    select
        institution_id,
        institution_type
    from {{ ref('int_institutions_dated') }}
),

judged as (
    select
        conditions.*,
        institutions.institution_type = 'employer' as is_employer,
        conditions.counting_application_id is not null as has_counting_application
    from conditions
    inner join institutions on conditions.institution_id = institutions.institution_id
),

reasons as (
    select
        institution_id,
        'rectification_unresolved' as reason_code
    from judged
    where rectification_unresolved_since is not null                                   -- R-REJECT-1
    union all
    select
        institution_id,
        'no_incentive_evidence'
    from judged
    where is_employer and has_counting_application and not incentive_evidence           -- R-REJECT-2
    union all
    select
        institution_id,
        'incentive_evidence_pending'
    from judged
    where is_employer and not has_counting_application                                  -- R-REJECT-2
    union all
    select
        institution_id,
        'article14_case'
    from judged
    where article14_case_since is not null                                              -- R-REJECT-3
    union all
    select
        institution_id,
        'certificate_data_incomplete'
    from judged
    where not certificates_all_queryable                                                -- R-CERT
    union all
    select
        institution_id,
        'below_batch_threshold'
    from judged
    where not meets_batch_threshold                                                     -- R-BATCH
    union all
    select
        institution_id,
        'force_majeure_statement_filed'
    from judged
    where has_counting_application and force_majeure_statement                          -- R-VERDICT
    union all
    select
        institution_id,
        'early_application'
    from judged
    where has_early_application and not has_counting_application                        -- R-APP
    union all
    select
        institution_id,
        'late_application'
    from judged
    where has_late_application and not has_counting_application                         -- R-APP
    union all
    select
        institution_id,
        'occupation_change_in_freeze'
    from judged
    where occupation_change_in_freeze_since is not null                                 -- R-FREEZE
    union all
    select
        institution_id,
        'application_missing_added_occupations'
    from judged
    where application_missing_occupation_codes is not null                              -- R-OCC
    union all
    select
        institution_id,
        'post_expiry_data'
    from judged
    where post_expiry_data_since is not null                                            -- R-POST
    union all
    select
        institution_id,
        'outstanding_obligations'
    from judged
    where outstanding_obligations_since is not null                                     -- R-OBLIG
)

select * from reasons
