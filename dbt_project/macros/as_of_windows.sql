{#
    R-FREEZE, the one place of "an occupation change request in the freeze window": each request received between
    the institution's window_opens_on and expires_on and known on D (received_on ≤ D). Read by
    int_institution_conditions_as_of (the reason, from the first such request) and renewal_application_facts
    (附件2 lists them). `requests` is stg_centre__occupation_change_requests and `institutions`
    int_institutions_dated (a ref or a CTE of the caller).
#}
{% macro occupation_changes_in_freeze(requests, institutions) %}
    -- R-FREEZE
    select requests.*
    from {{ requests }} as requests
    inner join {{ institutions }} as institutions on requests.institution_id = institutions.institution_id
    where
        requests.received_on between institutions.window_opens_on and institutions.expires_on
        and requests.received_on <= {{ as_of() }}
{% endmacro %}

{#
    R-OCC, the one place of "the occupations registered by D": every registered occupation whose registered_on is
    on or before D. Read by int_institution_conditions_as_of (what the application must list) and
    renewal_application_facts (附件2 counts them). `occupations` is stg_feed__registered_occupations.
#}
{% macro occupations_registered_by_as_of(occupations) %}
    -- R-OCC
    select *
    from {{ occupations }}
    where registered_on <= {{ as_of() }}
{% endmacro %}
