"""Who sees which rows in Superset: a role per supervising centre, made from the dbt seed
`supervising_centres`, whose members see only their centre's rows of every dataset (Superset's row level
security on `supervising_centre`); the province's role sees every row. import_dashboards.py calls it on
every import, so `make bi` and docker-compose's start both keep the roles in step with the seed."""

from __future__ import annotations

import csv
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("access")

# The seed sits beside bi/ in the checkout; the superset image copies it to the same place under /app.
SEED = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds" / "supervising_centres.csv"
CENTRE_COLUMN = "supervising_centre"
ROLE_PREFIX = "centre_"
# Every centre's filter has this group key: a user given two centres' roles sees both centres (Superset
# ORs filters of one group and ANDs the groups), not the empty intersection.
GROUP_KEY = CENTRE_COLUMN
# Beyond Gamma's: the rows behind a bar (钻取详情, drill to detail) come from the samples endpoint, which
# applies the same row filter.
DRILL_TO_DETAIL = [("can_samples", "Datasource")]


def is_province_code(code: str) -> bool:
    """Whether a centre's code in the seed is the province's: GB/T 2260's province-level code, two digits and
    0000 (350000); a city's ends in 00, and PT has none. The pipeline (pipeline/settings.py, province_code) and
    dbt (macros/province_centre.sql) find the province in the same seed by the same rule: Superset's image holds bi/
    and the seed, not the pipeline's packages."""
    return len(code) == 6 and code.isdigit() and code.endswith("0000")


@dataclass(frozen=True)
class Centre:
    code: str
    name_zh: str

    @property
    def role(self) -> str:
        return f"{ROLE_PREFIX}{self.code}"

    @property
    def login(self) -> str:
        """The demo login of `make bi` for this centre (same name as its role)."""
        return self.role

    @property
    def is_province(self) -> bool:
        return is_province_code(self.code)

    @property
    def clause(self) -> str:
        return f"{CENTRE_COLUMN} = '{self.code}'"


def read_centres(seed: Path = SEED) -> list[Centre]:
    """The supervising centres of the seed, the province first."""
    if not seed.exists():
        raise SystemExit(
            f"{seed} is missing: the centres' roles are made from the dbt seed supervising_centres "
            "(in an image, copy dbt_project/seeds/supervising_centres.csv to that path)"
        )
    with seed.open(encoding="utf-8", newline="") as fh:
        centres = [
            Centre(row["supervising_centre"], row["supervising_centre_zh"]) for row in csv.DictReader(fh)
        ]
    for centre in centres:
        # the code goes into SQL and role names: the seed's codes are 6 digits or letters
        if not centre.code.isalnum():
            raise SystemExit(f"{seed}: supervising_centre {centre.code!r} is not letters and digits")
    if sum(c.is_province for c in centres) != 1:
        raise SystemExit(f"{seed} must hold exactly one province-level code (like 350000), the province's")
    return sorted(centres, key=lambda c: (not c.is_province, c.code))


def datasets_without_centre(bundle: dict[str, dict[str, Any]]) -> list[str]:
    """Datasets of the bundle that have no supervising_centre column (a centre's filter could not apply)."""
    return [
        path
        for path, config in bundle.items()
        if path.startswith("datasets/")
        and CENTRE_COLUMN not in {column["column_name"] for column in config.get("columns", [])}
    ]


def grant_centres(bundle: dict[str, dict[str, Any]], centres: list[Centre]) -> None:
    """Creates or updates each centre's role and filter. Needs Superset's app context, after the import.

    A role reads the bundle's dashboards, charts and datasets (Gamma's permissions, access to each dataset
    and drill to detail); the province's role may also use SQL Lab on the marts database. Every city role has a Regular
    filter `supervising_centre = '<code>'` on every dataset of the marts database, also datasets an admin
    made by hand, so granting one later cannot show other centres' rows. A role whose centre left the seed
    loses every permission and its filter (its members keep their login, but see nothing)."""
    from superset import db, security_manager
    from superset.connectors.sqla.models import RowLevelSecurityFilter

    databases, datasets, shown = _marts_datasets(bundle)

    def pvm(permission: str, view: str) -> Any:  # a FAB PermissionView
        return security_manager.add_permission_view_menu(permission, view)

    gamma = list(security_manager.find_role("Gamma").permissions)
    sql_lab = list(security_manager.find_role("sql_lab").permissions)
    read = [pvm("datasource_access", d.get_perm()) for d in shown] + [pvm(*p) for p in DRILL_TO_DETAIL]
    filters = {
        f.name: f
        for f in db.session.query(RowLevelSecurityFilter)
        .filter(RowLevelSecurityFilter.name.like(f"{ROLE_PREFIX}%"))
        .all()
    }
    for centre in centres:
        role = security_manager.add_role(centre.role)
        if centre.is_province:
            role.permissions = _unique(
                gamma + read + sql_lab + [pvm("database_access", d.perm) for d in databases]
            )
            if centre.role in filters:
                db.session.delete(filters.pop(centre.role))
            continue
        role.permissions = _unique(gamma + read)
        db.session.add(_city_filter(filters.pop(centre.role, None), centre, role, datasets))
    _revoke_departed(filters)
    db.session.commit()
    log.info(
        "roles of %d centres (%s the province's) on %d datasets",
        len(centres),
        next(c.role for c in centres if c.is_province),
        len(datasets),
    )


def _marts_datasets(bundle: dict[str, dict[str, Any]]) -> tuple[list[Any], list[Any], list[Any]]:
    """The bundle's databases, every dataset on them (also those an admin made by hand), and the bundle's own
    datasets; warns of each dataset a city's filter cannot apply to."""
    from superset import db
    from superset.connectors.sqla.models import SqlaTable
    from superset.models.core import Database

    bundle_datasets = {c["uuid"] for p, c in bundle.items() if p.startswith("datasets/")}
    database_uuids = {c["uuid"] for p, c in bundle.items() if p.startswith("databases/")}
    databases = db.session.query(Database).filter(Database.uuid.in_(database_uuids)).all()
    datasets = db.session.query(SqlaTable).filter(SqlaTable.database_id.in_([d.id for d in databases])).all()
    shown = [d for d in datasets if str(d.uuid) in bundle_datasets]
    for dataset in datasets:
        if CENTRE_COLUMN not in {c.column_name for c in dataset.columns}:
            log.warning(
                "dataset %s has no column %s: the city centres' queries on it fail (their filter needs it)",
                dataset.table_name,
                CENTRE_COLUMN,
            )
    return databases, datasets, shown


def _city_filter(rule: Any, centre: Centre, role: Any, datasets: list[Any]) -> Any:
    """A city centre's Regular row filter (its existing one, else a new one) on every dataset: its role sees only
    the rows of its own code."""
    from superset.connectors.sqla.models import RowLevelSecurityFilter
    from superset.utils.core import RowLevelSecurityFilterType

    rule = rule or RowLevelSecurityFilter(name=centre.role)
    rule.description = f"{centre.name_zh}：只看本中心的行"
    rule.filter_type = RowLevelSecurityFilterType.REGULAR
    rule.group_key = GROUP_KEY
    rule.clause = centre.clause
    rule.roles = [role]
    rule.tables = datasets
    return rule


def _revoke_departed(filters: dict[str, Any]) -> None:
    """The roles of centres no longer in the seed lose their filter and every permission."""
    from superset import db, security_manager

    for name, rule in filters.items():
        log.warning("centre role %s is not in the seed any more: it loses its filter and access", name)
        db.session.delete(rule)
        if role := security_manager.find_role(name):
            role.permissions = []


def _unique(pvms: list) -> list:
    seen, kept = set(), []
    for p in pvms:
        if p is not None and p.id not in seen:
            seen.add(p.id)
            kept.append(p)
    return kept


def password_file(state_dir: Path, login: str) -> Path:
    return state_dir / f"{login}_password"


def local_admin(state_dir: Path, username: str, first_name: str, last_name: str) -> str | None:
    """The admin login of a local Superset (`make bi`, `make dashboards`): made once with a generated
    password kept in state_dir/<login>_password. Returns the password when this call made the login."""
    from superset import db, security_manager

    path = password_file(state_dir, username)
    if security_manager.find_user(username=username) is not None and path.exists():
        return None
    password = secrets.token_urlsafe(12)
    user = security_manager.find_user(username=username)
    if user is None:
        security_manager.add_user(
            username,
            first_name,
            last_name,
            f"{username}@localhost",
            security_manager.find_role(security_manager.auth_role_admin),
            password=password,
        )
    else:
        security_manager.reset_password(user.id, password)
    db.session.commit()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password)
    return password


def demo_logins(centres: list[Centre], state_dir: Path) -> list[str]:
    """A login per centre role, named like the role, for trying the dashboards as that centre (`make bi`,
    `make dashboards CENTRE=…`). Each password is generated once and kept in state_dir/<login>_password; a
    login whose file is missing gets a new one. Returns the logins created or reset."""
    from superset import db, security_manager

    made = []
    for centre in centres:
        role = security_manager.find_role(centre.role)
        path = password_file(state_dir, centre.login)
        user = security_manager.find_user(username=centre.login)
        if user is None or not path.exists():
            password = secrets.token_urlsafe(12)
            if user is None:
                security_manager.add_user(
                    centre.login,
                    centre.name_zh,
                    "（演示）",
                    f"{centre.login}@localhost",
                    [role],
                    password=password,
                )
            else:
                security_manager.reset_password(user.id, password)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password)
            made.append(centre.login)
        else:
            user.roles = [role]  # exactly its centre's role, whatever was changed by hand
    db.session.commit()
    return made
