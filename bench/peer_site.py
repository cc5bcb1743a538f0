"""The peer's Django project, as text: bench/peer.py writes it into bench/out/peer-project at run time.

Nothing here is imported by the peer's processes; they run in their own virtual environment
(bench/out/peer-venv, with django-appointment from PyPI) on the files written from these strings.
"""

# __DATABASE__, __ZONE__ and __STEP__ are filled in by bench/peer.py.
SETTINGS = """\
SECRET_KEY = "needlebook-bench-peer"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles", "phonenumber_field", "appointment",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "peer_site.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request", "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages"]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "__DATABASE__", "USER": "postgres",
                         "HOST": "127.0.0.1", "PORT": "5432", "CONN_MAX_AGE": None}}
# The package ships no migrations: makemigrations writes them into the project, not the venv.
MIGRATION_MODULES = {"appointment": "peer_migrations.appointment"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TIME_ZONE = "__ZONE__"
USE_TZ = True
LANGUAGE_CODE = "en"
STATIC_URL = "static/"
APPOINTMENT_SLOT_DURATION = __STEP__
APPOINTMENT_BUFFER_TIME = 0
LOGGING = {"version": 1, "disable_existing_loggers": True, "root": {"level": "WARNING"}}
"""

URLS = """\
from django.urls import include, path

urlpatterns = [path("appointment/", include("appointment.urls"))]
"""

WSGI = """\
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_site.settings")
application = get_wsgi_application()
"""

# Run with the peer's python: `python seed.py spec.json`. One staff member who offers one service,
# works one weekday from `start` to `end`, and has the given appointments on `date`.
SEED = """\
import datetime
import json
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_site.settings")
import django

django.setup()
from django.contrib.auth import get_user_model
from appointment.models import (Appointment, AppointmentRequest, Config, Service, StaffMember,
                                WorkingHours)
from appointment.utils.db_helpers import get_weekday_num_from_date

spec = json.load(open(sys.argv[1]))
t = datetime.time.fromisoformat
day = datetime.date.fromisoformat(spec["date"])
User = get_user_model()
Config.objects.create(slot_duration=spec["step"], lead_time=t(spec["start"]), finish_time=t(spec["end"]),
                      slot_gap_time=0, appointment_buffer_time=0)
service = Service.objects.create(name="Microneedling", duration=datetime.timedelta(minutes=spec["service_minutes"]),
                                 price=0)
staff_user = User.objects.create_user(username="practitioner", email="practitioner@example.com",
                                      first_name="Dr", last_name="Bench")
staff = StaffMember.objects.create(user=staff_user, slot_duration=spec["step"], lead_time=t(spec["start"]),
                                   finish_time=t(spec["end"]), work_on_saturday=True, work_on_sunday=True,
                                   slot_gap_time=0, appointment_buffer_time=0)
staff.services_offered.add(service)
WorkingHours.objects.create(staff_member=staff, day_of_week=get_weekday_num_from_date(day),
                            start_time=t(spec["start"]), end_time=t(spec["end"]))
for number, (start, end) in enumerate(spec["appointments"]):
    client = User.objects.create_user(username=f"patient{number}", email=f"patient{number}@example.com")
    request = AppointmentRequest.objects.create(date=day, start_time=t(start), end_time=t(end), service=service,
                                                staff_member=staff)
    Appointment.objects.create(client=client, appointment_request=request, phone="+442079460000",
                               address="London")
print(json.dumps({"staff_member": staff.id, "service_id": service.id,
                  "appointments": Appointment.objects.count()}))
"""
