"""The quick complaint form: fields, choices and server-side validation.

Validation runs on the server only (JavaScript may be off); every message is
a lazy string so it is shown in the resident's language.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from wtforms import BooleanField, Form, HiddenField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from ..i18n import lazy_gettext as _l

BODY_MIN, BODY_MAX = 20, 2000
KINDS = (
    ("pengaduan", _l("Complaint")),
    ("aspirasi", _l("Suggestion")),
    ("informasi", _l("Request for information")),
)
#: LAPOR!'s service areas (domain.md §1); keys are stable, labels translated.
CATEGORIES = (
    ("kesehatan", _l("Health")),
    ("pendidikan", _l("Education")),
    ("kependudukan", _l("Civil registration (KTP, KK, certificates)")),
    ("perizinan", _l("Permits")),
    ("infrastruktur", _l("Roads, water and public works")),
    ("perhubungan", _l("Transport")),
    ("lingkungan", _l("Environment and waste")),
    ("sosial", _l("Social assistance")),
    ("dana_desa", _l("Village funds")),
    ("pariwisata", _l("Tourism")),
    ("ketenagakerjaan", _l("Employment")),
    ("tik", _l("Internet and public WiFi")),
    ("lainnya", _l("Other")),
)
_PHONE = re.compile(r"^\+?[0-9][0-9 .-]{6,18}[0-9]$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
WITA = timezone(timedelta(hours=8))


def today_in_bali() -> date:
    """Today's date in Bali (WITA, UTC+8)."""
    return datetime.now(WITA).date()


class ComplaintForm(Form):
    """What a resident fills in; ``website`` is a honeypot and ``started`` a signed timestamp."""

    # Plain fields checked against KINDS/CATEGORIES below; the template renders the
    # radios and the select itself (no JavaScript, labels from the catalogs).
    kind = StringField(_l("Type"), default="pengaduan", validators=[InputRequired(_l("Choose the type of report."))])
    category = StringField(_l("Topic"), validators=[InputRequired(_l("Choose a topic."))])
    body = TextAreaField(_l("What happened?"), validators=[
        InputRequired(_l("Tell us what happened.")),
        Length(min=BODY_MIN, max=BODY_MAX,
               message=_l("Write between %(min)d and %(max)d characters.", min=BODY_MIN, max=BODY_MAX)),
    ])
    incident_date = StringField(_l("When did it happen?"), validators=[InputRequired(_l("Give the date."))])
    desa = StringField(_l("Village (desa/kelurahan)"), validators=[
        InputRequired(_l("Give the village.")), Length(max=100, message=_l("Too long."))])
    kecamatan = StringField(_l("District (kecamatan)"), validators=[
        InputRequired(_l("Give the district.")), Length(max=100, message=_l("Too long."))])
    kabupaten = StringField(_l("Regency or city"), validators=[
        InputRequired(_l("Give the regency or city.")), Length(max=100, message=_l("Too long."))])
    place = StringField(_l("Exact place (optional)"), validators=[
        Optional(), Length(max=200, message=_l("Too long."))])
    name = StringField(_l("Your name (optional)"), validators=[
        Optional(), Length(max=100, message=_l("Too long."))])
    contact = StringField(_l("Phone or e-mail (optional)"), validators=[
        Optional(), Length(max=120, message=_l("Too long."))])
    anonim = BooleanField(_l("Anonymous"))
    rahasia = BooleanField(_l("Confidential"))
    consent = BooleanField(_l("I agree to the privacy notice"), validators=[
        InputRequired(_l("Please agree to the privacy notice, or your report cannot be sent."))])
    website = StringField("Website")  # honeypot: hidden from people, filled by bots
    started = HiddenField()
    lang = HiddenField()

    def validate_kind(self, field):
        if field.data not in dict(KINDS):
            raise ValidationError(_l("Choose the type of report."))

    def validate_category(self, field):
        if field.data not in dict(CATEGORIES):
            raise ValidationError(_l("Choose a topic."))

    def validate_incident_date(self, field):
        try:
            when = date.fromisoformat((field.data or "").strip())
        except ValueError:
            raise ValidationError(_l("Write the date as year-month-day, for example 2026-11-29.")) from None
        if when > today_in_bali():
            raise ValidationError(_l("The date cannot be in the future."))
        if when < today_in_bali() - timedelta(days=3 * 365):
            raise ValidationError(_l("The date is more than three years ago."))

    def validate_contact(self, field):
        value = (field.data or "").strip()
        if value and not (_PHONE.match(value) or _EMAIL.match(value)):
            raise ValidationError(_l("Write a phone number (like 0812 3456 7890) or an e-mail address."))

    def validate_body(self, field):
        if field.data and len(field.data.strip()) < BODY_MIN:
            raise ValidationError(
                _l("Write between %(min)d and %(max)d characters.", min=BODY_MIN, max=BODY_MAX))
