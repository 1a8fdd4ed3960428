{#
    R-APP / R-STAGE / R-SLA, "Nothing from after D" for a review: the one place that says what an application's
    review looked like on `day` (D, or the first day of each span of int_institution_days). The result is known
    unless its review_completed_on is after the day (a result recorded without a date is known); the completion
    date only once it has passed. Which applications count is int_applications_in_period's `timing`. Read by
    int_applications_counted_by_day (every span) and review_sla (D). Gives two columns, review_result and
    review_completed_on, of the applications relation or CTE named `applications`.
#}
{% macro review_known_on(day, applications='applications') -%}
    -- R-APP: a review result dated after the judged day did not exist yet
    case
        when {{ applications }}.review_completed_on is null or {{ applications }}.review_completed_on <= {{ day }}
            then {{ applications }}.review_result
    end as review_result,
    case
        when {{ applications }}.review_completed_on <= {{ day }} then {{ applications }}.review_completed_on
    end as review_completed_on
{%- endmacro %}
