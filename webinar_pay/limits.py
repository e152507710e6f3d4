"""Every bound on what people and programs send, named once.

The input models (`services/schemas.py`), the services' own checks, the forms' `maxlength`/`min`/`max`, the OpenAPI
document and README's table of limits (kept equal by tests/test_limits.py) all read them from here.
"""

from __future__ import annotations

from datetime import timedelta

# -- text: most of these are also the length of the column that keeps the value ------------------------------------

MAX_TITLE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 20_000
MAX_NAME_LENGTH = 120  # attendees and creators
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit
MAX_URL_LENGTH = 500  # join links, stream and replay URLs, logos
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 200
MAX_TOKEN_NAME_LENGTH = 80  # an API token's label
MAX_CODE_LENGTH = 40  # a TOTP or recovery code as typed, spaces and dashes included
MAX_IDEMPOTENCY_KEY_LENGTH = 64  # a refund's `Idempotency-Key`, printable ASCII
MAX_TOKEN_LENGTH = 200  # a bearer token that can be one of ours (they are about 50 characters)
MIN_SLUG_LENGTH = 3  # a creator's page address, /c/<slug>
MAX_SLUG_LENGTH = 50
MAX_BIO_LENGTH = 2_000  # a creator's short bio, on their page

# -- a session's numbers ---------------------------------------------------------------------------------------------

MAX_DURATION_MINUTES = 24 * 60
MAX_CAPACITY = 100_000
MAX_PRICE = 100_000_000  # minor units
MAX_CANCELLATION_HOURS = 365 * 24
# Each reminder is an email to every attendee: a few, none closer than 5 minutes, none further than 30 days.
MAX_REMINDERS = 10
MIN_REMINDER_OFFSET = 5
MAX_REMINDER_OFFSET = 30 * 24 * 60
# A Zoom meeting or webinar ID has 9 to 12 digits.
MIN_ZOOM_MEETING_ID_DIGITS = 9
MAX_ZOOM_MEETING_ID_DIGITS = 12

# A new start (a session created or moved) lies between a day ago (a creator fixing yesterday's session) and five
# years ahead. Further out is a typo or an attack: a start near year 9999 cannot even be shown in most time zones.
EARLIEST_START = timedelta(days=1)
LATEST_START = timedelta(days=5 * 365 + 1)

# -- discount codes ---------------------------------------------------------------------------------------------------

# A code is 3 to 32 letters, digits, `-` or `_`, compared without case: short enough to type, nothing to escape.
MIN_DISCOUNT_CODE_LENGTH = 3
MAX_DISCOUNT_CODE_LENGTH = 32
MAX_DISCOUNT_USES = 1_000_000
MAX_DISCOUNT_CODES = 1_000  # codes a creator may have at once (deleted ones do not count)

# -- amounts typed in a form ---------------------------------------------------------------------------------------

# No price or refund comes near this (the sessions' own limit is far lower); beyond it a typed amount is refused
# before any arithmetic, so that '1e999999' costs nothing.
MAX_MAJOR_DIGITS = 15
MAX_TYPED_AMOUNT_LENGTH = 40

# -- ids --------------------------------------------------------------------------------------------------------------

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL: a larger one in a URL finds nothing
