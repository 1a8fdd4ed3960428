{#
    R-REJECT-1, the one place of "rectification in period": the rectification notices (质量督导整改) of each
    institution's current registration period known on D (registered_on ≤ issued_on ≤ expires_on, issued_on ≤ D),
    with is_unresolved: not completed by D, or completed only after expires_on (that never clears a notice).
    Read by int_institution_conditions_as_of (the reason), renewal_warnings (the open notices to fix) and
    renewal_application_facts (附件2 lists every notice of the period). `notices` is stg_centre__rectification_notices
    and `institutions` int_institutions_dated (a ref or a CTE of the caller).
#}
{% macro rectification_notices_in_period(notices, institutions) %}
    -- R-REJECT-1
    select
        notices.notice_id,
        notices.institution_id,
        notices.issued_on,
        notices.due_on,
        notices.completed_on,
        (
            notices.completed_on is null
            or notices.completed_on > {{ as_of() }}
            or notices.completed_on > institutions.expires_on
        ) as is_unresolved
    from {{ notices }} as notices
    inner join {{ institutions }} as institutions on notices.institution_id = institutions.institution_id
    where notices.issued_on between institutions.registered_on and institutions.expires_on
        and notices.issued_on <= {{ as_of() }}
{% endmacro %}
