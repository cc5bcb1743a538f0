"""The browser tier: Debian's chromium (apt: chromium, chromium-driver) driven by Selenium against
the real app under gunicorn, on a SQLite database of its own, with a clinic seeded on the ORM.

Every page is screenshotted into tmp/artifacts/browser/ (CI keeps the folder). axe-core (npm,
tests/browser/package-lock.json) is injected into each page to check accessibility. Without
chromium or chromedriver the tier is skipped, unless REQUIRE_BROWSER is set (.ci/run sets it).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from booking.services.history import record_past_session
from booking.services.tenancy import create_organization, issue_api_key
from migrations import upgrade
from models import Organization, make_engine

from .. import factories
from ..scaffold import ROOT, running_gunicorn

HERE = Path(__file__).resolve().parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "tmp" / "artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# The page reads Date.now() for its countdown; a test moves the page's clock with this offset.
CLOCK_SHIM = (
    "(() => { const real = Date.now.bind(Date); Date.now = () => real() + (window.__testClockOffset || 0); })();"
)


def _missing() -> str | None:
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        return "chromium and chromium-driver (apt) are not installed"
    if not AXE.exists():
        return "axe-core is not installed (npm ci --prefix tests/browser)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="session", autouse=True)
def _browser_tools():
    missing = _missing()
    if missing:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)


@dataclass
class Site:
    base: str
    database_url: str
    admin: str
    pk: str
    organization_id: str
    clinic_id: str
    rooms: list[str]
    practitioner_id: str
    consultation_id: str
    microneedling_id: str
    patients: list[tuple[str, str]]

    def book_url(self) -> str:
        return f"{self.base}/book/test-clinic"

    def session(self):
        engine = make_engine(self.database_url)
        return engine, sessionmaker(bind=engine, expire_on_commit=False)()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'browser.sqlite3'}"
    upgrade(url)
    pages_file = folder / "booking-pages.json"
    env = {"BOOKING_PAGES_FILE": str(pages_file), "RATE_LIMIT_ENABLED": "0", "HOLD_TTL": "600"}
    # Threads (gunicorn's gthread worker): a browser opens connections ahead of need and leaves them
    # idle, which would each hold a sync worker until its timeout and stall the page's next calls.
    env["GUNICORN_CMD_ARGS"] = "--threads 4"
    with running_gunicorn(url, workers=2, env=env) as base:
        engine = make_engine(url)
        with sessionmaker(bind=engine, expire_on_commit=False)() as db:
            organization, admin = create_organization(db, "Browser Clinic")
            org = organization.id
            # Any notice, a day's horizon of weeks, the default grid: the pages' tests pick next week.
            db.get_one(Organization, org).booking_policy = {"min_notice_minutes": 0, "horizon_days": 60}
            every_day = range(7)
            clinic = factories.make_clinic(db, org, name="Soho", address="1 Greek Street", days=every_day)
            rooms = [factories.make_room(db, clinic, name=f"Room {i}") for i in (1, 2)]
            consultation = factories.make_treatment_type(db, org, "consultation", name="Skin consultation")
            microneedling = factories.make_treatment_type(db, org, "microneedling", name="Microneedling session")
            practitioner = factories.make_practitioner(
                db, [clinic], [consultation, microneedling], name="Dr Amara Okafor", hours=("09:00", "12:00"),
                days=every_day,
            )  # fmt: skip
            patients = []
            for name in ("Alice Archer", "Bilal Haddad"):
                p = factories.make_patient(db, org, name=name, email=f"{name.split()[0].lower()}@example.com")
                record_past_session(
                    db, org, p.id, treatment_type_id=consultation.id, performed_at=datetime.now(UTC) - timedelta(days=9)
                )
                patients.append((p.id, name))
            _, pk = issue_api_key(db, org, "Booking page", None, kind="publishable", origins=[base])
            site = Site(
                base, url, admin, pk, org, clinic.id, [r.id for r in rooms], practitioner.id, consultation.id,
                microneedling.id, patients,
            )  # fmt: skip
            db.commit()
        engine.dispose()
        pages_file.write_text(json.dumps({"test-clinic": pk}))
        yield site


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CLOCK_SHIM})
    # The page's "this week" is the visitor's calendar; the tests count weeks in UTC, whatever the machine's zone.
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "UTC"})
    browser.implicitly_wait(0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield browser
    browser.quit()
